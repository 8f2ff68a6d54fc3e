//! Schedules: how the server's limit and the clients' demand change over a run.

use std::time::Duration;

/// What a phase does to the limit, which decides the convergence target it is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The first phase: the client starts knowing nothing.
    Start,
    /// The limit fell at the start of the phase.
    Drop,
    /// The limit rose at the start of the phase.
    Rise,
    /// The limit moves linearly through the phase.
    Ramp,
}

/// One phase of a schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// How the limit changes.
    pub change: Change,
    /// Length of the phase.
    pub duration: Duration,
    /// Limit at the start of the phase, requests per second.
    pub limit_from: f64,
    /// Limit at the end of the phase (equal to `limit_from` unless ramping).
    pub limit_to: f64,
}

impl Phase {
    /// A phase with a constant limit.
    pub fn constant(change: Change, duration: Duration, limit: f64) -> Phase {
        Phase {
            change,
            duration,
            limit_from: limit,
            limit_to: limit,
        }
    }

    /// The limit at `t` seconds into the phase.
    pub fn limit_at(&self, t: f64) -> f64 {
        let d = self.duration.as_secs_f64();
        if d <= 0.0 {
            return self.limit_to;
        }
        let f = (t / d).clamp(0.0, 1.0);
        self.limit_from + (self.limit_to - self.limit_from) * f
    }
}

/// How much the clients want to send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Demand {
    /// Always more work queued (a bulk job): the controller alone sets the pace.
    Backlog,
    /// Poisson arrivals at this total rate (requests per second, split evenly between
    /// clients); failed requests are retried.
    Poisson(f64),
}

/// A sequence of phases and a demand.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The phases, in order.
    pub phases: Vec<Phase>,
    /// The demand during the whole run.
    pub demand: Demand,
}

impl Schedule {
    /// `L` for `secs`, then `L/2`, then `L` again (a drop, then a doubling).
    pub fn halve_double(limit: f64, secs: u64) -> Schedule {
        let d = Duration::from_secs(secs);
        Schedule {
            phases: vec![
                Phase::constant(Change::Start, d, limit),
                Phase::constant(Change::Drop, d, limit / 2.0),
                Phase::constant(Change::Rise, d, limit),
            ],
            demand: Demand::Backlog,
        }
    }

    /// `L`, then a linear ramp to `2L`, then `2L`.
    pub fn ramp(limit: f64, secs: u64) -> Schedule {
        let d = Duration::from_secs(secs);
        Schedule {
            phases: vec![
                Phase::constant(Change::Start, d, limit),
                Phase {
                    change: Change::Ramp,
                    duration: d,
                    limit_from: limit,
                    limit_to: 2.0 * limit,
                },
                Phase::constant(Change::Ramp, d, 2.0 * limit),
            ],
            demand: Demand::Backlog,
        }
    }

    /// The halve/double schedule with Poisson demand at `fraction · L` (below the
    /// limit, except during the halved phase when `fraction > 0.5`).
    pub fn below_demand(limit: f64, secs: u64, fraction: f64) -> Schedule {
        Schedule {
            demand: Demand::Poisson(limit * fraction),
            ..Schedule::halve_double(limit, secs)
        }
    }

    /// Total length.
    pub fn duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    /// The highest limit anywhere in the schedule.
    pub fn max_limit(&self) -> f64 {
        self.phases
            .iter()
            .flat_map(|p| [p.limit_from, p.limit_to])
            .fold(0.0, f64::max)
    }

    /// The limit at `t` seconds from the start of the run.
    pub fn limit_at(&self, t: f64) -> f64 {
        let mut start = 0.0;
        for p in &self.phases {
            let d = p.duration.as_secs_f64();
            if t < start + d {
                return p.limit_at(t - start);
            }
            start += d;
        }
        self.phases.last().map_or(1.0, |p| p.limit_to)
    }
}
