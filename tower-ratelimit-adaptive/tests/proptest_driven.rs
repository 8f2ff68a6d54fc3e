//! The default controller in closed loop with simulated servers of any kind, window,
//! limit and feedback, under any configuration: its rate stays finite and within its
//! configured bounds after every response. Random outcome sequences (as in
//! `proptest_rates.rs`) never reach the window-server and sliding-log rules; these
//! runs do, since only a real loop produces runs of refusals that follow a window.
//! `PROPTEST_CASES` raises the number of cases (24 by default: each is a run of 12
//! simulated seconds).

use std::time::Duration;

use proptest::prelude::*;
use tower_ratelimit_adaptive::controller::{Controller, Goodput, GoodputConfig};
use tower_ratelimit_adaptive::sim::{
    simulate, Change, Demand, Feedback, Phase, Schedule, ServerKind, SimConfig,
};
use tower_ratelimit_adaptive::Outcome;

/// A goodput controller that checks its own rate after every response.
struct Checked {
    inner: Goodput,
    min: f64,
    max: f64,
}

impl Checked {
    fn check(&self) {
        let rate = self.inner.rate().unwrap_or(f64::NAN);
        assert!(
            rate.is_finite() && rate >= self.min && rate <= self.max,
            "rate {rate} outside [{}, {}]",
            self.min,
            self.max
        );
    }
}

impl Controller for Checked {
    fn name(&self) -> &'static str {
        "checked goodput"
    }
    fn observe(&mut self, now: Duration, outcome: &Outcome) {
        self.inner.observe(now, outcome);
        self.check();
    }
    fn rate(&self) -> Option<f64> {
        self.inner.rate()
    }
    fn burst(&self) -> u64 {
        self.inner.burst()
    }
    fn admit(&mut self, now: Duration, sample: f64) -> bool {
        self.inner.admit(now, sample)
    }
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_nanos(1)),
        (1u64..5_000).prop_map(Duration::from_millis),
        Just(Duration::MAX),
    ]
}

/// Any configuration: each group of fields is either the default or arbitrary.
fn config() -> impl Strategy<Value = GoodputConfig> {
    (
        any::<u8>(),
        (duration(), duration(), duration(), duration()),
        prop_oneof![
            Just(f64::NAN),
            Just(0.0),
            Just(1.0),
            Just(1e9),
            0.1f64..100.0
        ],
        any::<u32>(),
        (0.5f64..50.0, 100.0f64..5_000.0),
    )
        .prop_map(|(mask, (a, b, c, d), samples, factor, (min, max))| {
            let mut g = GoodputConfig::default();
            if mask & 1 != 0 {
                g.window_guard = a;
                g.settle = b;
            }
            if mask & 2 != 0 {
                g.cruise_time = c;
                g.wide_revert_cruise = d;
            }
            if mask & 4 != 0 {
                g.measure_min = a;
                g.measure_max = c;
                g.measure_samples = samples;
            }
            if mask & 8 != 0 {
                g.step = b;
                g.probe_step_max = d;
                g.cruise_max = a;
                g.cruise_samples = samples;
            }
            if mask & 16 != 0 {
                g.hold_cruise_factor = factor;
            }
            if mask & 32 != 0 {
                g.min_rate = min;
                g.max_rate = max;
            }
            g
        })
}

fn server() -> impl Strategy<Value = ServerKind> {
    let window = (50u64..3_000).prop_map(Duration::from_millis);
    prop_oneof![
        (0.001f64..3.0).prop_map(|burst_secs| ServerKind::TokenBucket { burst_secs }),
        window
            .clone()
            .prop_map(|window| ServerKind::FixedWindow { window }),
        window.prop_map(|window| ServerKind::SlidingLog { window }),
        Just(ServerKind::SlidingLog {
            window: Duration::from_secs(1)
        }),
    ]
}

/// The bounds `Goodput` promises for a configuration (a bad bound falls back to the
/// default one, as `GoodputConfig` documents).
fn bounds(config: &GoodputConfig) -> (f64, f64) {
    let defaults = GoodputConfig::default();
    let usable = |v: f64| v.is_finite() && v > 0.0;
    let min = if usable(config.min_rate) {
        config.min_rate
    } else {
        defaults.min_rate
    };
    let max = if usable(config.max_rate) {
        config.max_rate
    } else {
        defaults.max_rate
    };
    (min, max.max(min))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24),
        ..ProptestConfig::default()
    })]

    #[test]
    fn rates_stay_in_bounds_against_any_server(
        config in config(),
        server in server(),
        headers in any::<bool>(),
        retry_after in any::<bool>(),
        limit in prop_oneof![Just(5.0), Just(100.0), Just(400.0)],
        change in 0.2f64..2.0,
        rtt_ms in 1u64..300,
        seed in any::<u64>(),
    ) {
        let (min, max) = bounds(&config);
        let schedule = Schedule {
            phases: vec![
                Phase::constant(Change::Start, Duration::from_secs(6), limit),
                Phase::constant(Change::Drop, Duration::from_secs(6), limit * change),
            ],
            demand: Demand::Backlog,
        };
        let sim = SimConfig {
            server,
            feedback: Feedback { headers, retry_after },
            honour_retry_after: true,
            clients: 1,
            schedule,
            rtt: Duration::from_millis(rtt_ms),
            jitter: 0.2,
            seed,
        };
        let trace = simulate(&sim, &|| {
            Box::new(Checked { inner: Goodput::new(config), min, max })
        });
        prop_assert!(trace.accepted.iter().flatten().sum::<u64>() > 0);
    }
}
