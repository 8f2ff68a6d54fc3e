//! No outcome sequence panics a controller or makes its rate negative, zero or NaN.
//! `PROPTEST_CASES` raises the number of cases (256 by default).

use std::time::Duration;

use proptest::prelude::*;
use tower_ratelimit_adaptive::controller::{
    Aimd, AwsCubic, Controller, Goodput, Gradient2, SreThrottle,
};
use tower_ratelimit_adaptive::{Hints, Outcome, Policy};

fn outcome() -> impl Strategy<Value = Outcome> {
    let latency = (0u64..10_000_000_000).prop_map(Duration::from_nanos);
    let hints = (
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<u64>()),
        proptest::option::of(
            (any::<u64>(), 0u64..u64::MAX)
                .prop_map(|(q, w)| Policy::new(q, Duration::from_nanos(w))),
        ),
    )
        .prop_map(|(remaining, limit, policy)| Hints {
            remaining,
            limit,
            reset: None,
            policy,
            partition: None,
        });
    prop_oneof![
        (latency.clone(), hints.clone())
            .prop_map(|(latency, hints)| Outcome::Success { latency, hints }),
        (
            latency.clone(),
            proptest::option::of(any::<u64>().prop_map(Duration::from_nanos)),
            hints
        )
            .prop_map(|(latency, retry_after, hints)| Outcome::Throttled {
                latency,
                retry_after,
                hints
            }),
        latency.prop_map(|latency| Outcome::Overload { latency }),
        Just(Outcome::Ignored),
    ]
}

fn check(c: &dyn Controller) -> Result<(), TestCaseError> {
    if let Some(r) = c.rate() {
        prop_assert!(r.is_finite() && r > 0.0, "{} rate {r}", c.name());
    }
    prop_assert!(c.burst() >= 1);
    if let Some(n) = c.concurrency() {
        prop_assert!(n >= 1);
    }
    Ok(())
}

proptest! {
    #[test]
    fn rates_stay_positive_and_finite(
        steps in proptest::collection::vec((0u64..5_000_000_000, outcome(), 0.0f64..1.0), 1..300)
    ) {
        let mut cs: Vec<Box<dyn Controller>> = vec![
            Box::new(Goodput::default()),
            Box::new(Aimd::default()),
            Box::new(AwsCubic::new()),
            Box::new(Gradient2::default()),
            Box::new(SreThrottle::default()),
        ];
        let mut now = Duration::ZERO;
        for (dt, o, u) in steps {
            now += Duration::from_nanos(dt);
            for c in cs.iter_mut() {
                let _ = c.admit(now, u);
                c.observe(now, &o);
                check(c.as_ref())?;
            }
        }
    }
}
