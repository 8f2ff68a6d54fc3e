//! The standard scenarios, the contenders, and the markdown table.
//!
//! ```
//! use tower_ratelimit_adaptive::sim::table::{contenders, run_row, scenarios};
//!
//! let s = &scenarios(6)[0];
//! let row = run_row(s, &contenders()[0]);
//! assert_eq!(row.phases.len(), 3);
//! ```

use std::time::Duration;

use super::engine::{simulate, SimConfig};
use super::metrics::{phase_metrics, PhaseMetrics};
use super::schedule::{Change, Schedule};
use super::server::{Feedback, ServerKind};
use crate::controller::{Aimd, AwsCubic, Controller, Goodput, Gradient2, SreThrottle};

/// A named simulation setup.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// What varies from the base case.
    pub name: String,
    /// The starting limit, requests per second.
    pub limit: f64,
    /// The run's configuration.
    pub config: SimConfig,
}

/// A controller under test: a name and how to build one per client.
pub struct Contender {
    /// Name in the table.
    pub name: &'static str,
    /// Builds a fresh controller.
    pub make: fn() -> Box<dyn Controller>,
}

/// The five controllers, the project's default first.
pub fn contenders() -> Vec<Contender> {
    vec![
        Contender {
            name: "goodput (default)",
            make: || Box::new(Goodput::default()),
        },
        Contender {
            name: "aws cubic",
            make: || Box::new(AwsCubic::new()),
        },
        Contender {
            name: "aimd",
            make: || Box::new(Aimd::default()),
        },
        Contender {
            name: "gradient2",
            make: || Box::new(Gradient2::default()),
        },
        Contender {
            name: "google sre",
            make: || Box::new(SreThrottle::default()),
        },
    ]
}

/// The standard scenarios at L = 5, 100 and 2000 requests/s, with phases of
/// `phase_secs` seconds.
pub fn scenarios(phase_secs: u64) -> Vec<Scenario> {
    let mut out = Vec::new();
    let none = Feedback {
        headers: false,
        retry_after: false,
    };
    let small = ServerKind::TokenBucket { burst_secs: 0.1 };
    for limit in [5.0, 100.0, 2000.0] {
        let base = SimConfig {
            server: small,
            feedback: none,
            honour_retry_after: true,
            clients: 1,
            schedule: Schedule::halve_double(limit, phase_secs),
            rtt: Duration::from_millis(50),
            jitter: 0.2,
            seed: 1,
        };
        let mut add = |name: &str, f: &dyn Fn(&mut SimConfig)| {
            let mut c = base.clone();
            f(&mut c);
            out.push(Scenario {
                name: name.to_string(),
                limit,
                config: c,
            });
        };
        add("token bucket, burst 0.1 s", &|_| {});
        add("token bucket, burst 1 s", &|c| {
            c.server = ServerKind::TokenBucket { burst_secs: 1.0 }
        });
        add("fixed window 1 s", &|c| {
            c.server = ServerKind::FixedWindow {
                window: Duration::from_secs(1),
            }
        });
        add("sliding log 1 s", &|c| {
            c.server = ServerKind::SlidingLog {
                window: Duration::from_secs(1),
            }
        });
        add("+ RateLimit headers", &|c| c.feedback.headers = true);
        add("+ Retry-After", &|c| c.feedback.retry_after = true);
        add("+ headers + Retry-After", &|c| {
            c.feedback = Feedback {
                headers: true,
                retry_after: true,
            }
        });
        add("ramp L → 2L", &|c| {
            c.schedule = Schedule::ramp(limit, phase_secs)
        });
        add("4 clients", &|c| c.clients = 4);
        add("4 clients + headers", &|c| {
            c.clients = 4;
            c.feedback.headers = true;
        });
        add("demand 0.6 L (Poisson)", &|c| {
            c.schedule = Schedule::below_demand(limit, phase_secs, 0.6)
        });
    }
    out
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Scenario name.
    pub scenario: String,
    /// Starting limit.
    pub limit: f64,
    /// Controller name.
    pub controller: &'static str,
    /// Metrics per phase.
    pub phases: Vec<PhaseMetrics>,
}

impl Row {
    /// Mean over phases of `min(goodput, 1) − 429 share`: one number to rank controllers
    /// on a row (goodput above the limit, drawn from a server's burst, earns nothing).
    pub fn score(&self) -> f64 {
        let n = self.phases.len().max(1) as f64;
        self.phases
            .iter()
            .map(|p| p.goodput.min(1.0) - p.refused_share)
            .sum::<f64>()
            / n
    }

    /// The targets this row misses (goodput ≥ 0.95, ≤ 2 % 429s in every phase's steady
    /// state; convergence ≤ 1 s after a drop and ≤ 10 s after a rise).
    pub fn misses(&self) -> Vec<String> {
        let mut m = Vec::new();
        for (i, p) in self.phases.iter().enumerate() {
            let ph = i + 1;
            if p.goodput < 0.95 {
                m.push(format!("p{ph} goodput {:.2}", p.goodput));
            }
            if p.refused_share > 0.02 {
                m.push(format!("p{ph} 429 {:.1}%", 100.0 * p.refused_share));
            }
            let limit = match p.change {
                Change::Drop => Some(1.0),
                Change::Rise => Some(10.0),
                _ => None,
            };
            if let Some(l) = limit {
                let why = p.convergence_infeasible.map_or(String::new(), |t| {
                    format!(" (infeasible: no whole count per 1 s is within 10 % of {t:.1}/s)")
                });
                match p.convergence {
                    Some(c) if c <= l => {}
                    Some(c) => m.push(format!("p{ph} conv {c:.0} s{why}")),
                    None => m.push(format!("p{ph} no conv{why}")),
                }
            }
        }
        m
    }

    /// The targets of this row no controller can meet (see
    /// [`PhaseMetrics::convergence_infeasible`]), e.g. `["p2 conv"]`.
    pub fn infeasible(&self) -> Vec<String> {
        self.phases
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                matches!(p.change, Change::Drop | Change::Rise)
                    && p.convergence_infeasible.is_some()
            })
            .map(|(i, _)| format!("p{} conv", i + 1))
            .collect()
    }
}

/// Runs one scenario with one contender.
pub fn run_row(s: &Scenario, c: &Contender) -> Row {
    let mut config = s.config.clone();
    if matches!(c.name, "aws cubic" | "aimd") && config.feedback.retry_after {
        // The anchors as their docs say to run them: without Retry-After holds (the
        // AWS SDK's limiter does not pause for them; held, both collapse).
        config.honour_retry_after = false;
    }
    let trace = simulate(&config, &|| (c.make)());
    Row {
        scenario: s.name.clone(),
        limit: s.limit,
        controller: c.name,
        phases: phase_metrics(&trace, &s.config.schedule),
    }
}

fn join(p: &[PhaseMetrics], f: impl Fn(&PhaseMetrics) -> String) -> String {
    p.iter().map(f).collect::<Vec<_>>().join(" / ")
}

/// Whether `row` scores strictly higher than both anchors (AWS CUBIC and rate AIMD)
/// on its scenario and scale among `rows`; `false` when no anchor ran there.
pub fn ahead_of_anchors(row: &Row, rows: &[Row]) -> bool {
    let mut anchors = rows
        .iter()
        .filter(|o| {
            o.scenario == row.scenario
                && o.limit == row.limit
                && (o.controller == "aws cubic" || o.controller == "aimd")
        })
        .peekable();
    anchors.peek().is_some() && anchors.all(|o| row.score() > o.score())
}

/// The rows as a markdown table; the default controller's rows end with the targets
/// it misses and whether it beats AWS CUBIC and AIMD on the row's score.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::new();
    s.push_str("| scenario | L | controller | goodput / L | 429 % | conv. s | p99 wait ms | Jain | score | targets (default only) |\n");
    s.push_str("|---|---:|---|---|---|---|---|---|---:|---|\n");
    for r in rows {
        let verdict = if r.controller == "goodput (default)" {
            let ahead = ahead_of_anchors(r, rows);
            let misses = r.misses();
            let mut v = if misses.is_empty() {
                "all met".to_string()
            } else {
                misses.join(", ")
            };
            v.push_str(if ahead {
                "; ahead of cubic & aimd"
            } else {
                "; NOT ahead of cubic & aimd"
            });
            v
        } else {
            String::new()
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.3} | {} |\n",
            r.scenario,
            r.limit,
            r.controller,
            join(&r.phases, |p| format!("{:.2}", p.goodput)),
            join(&r.phases, |p| format!("{:.1}", 100.0 * p.refused_share)),
            join(&r.phases, |p| p
                .convergence
                .map_or("—".into(), |c| format!("{c:.0}"))),
            join(&r.phases, |p| format!("{:.0}", 1000.0 * p.p99_wait)),
            join(&r.phases, |p| format!("{:.2}", p.fairness)),
            r.score(),
            verdict,
        ));
    }
    s
}
