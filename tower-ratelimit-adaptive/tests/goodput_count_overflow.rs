//! `Goodput` keeps its counts without overflow at any configured rate: at a floor of
//! 1e300/s the count of what a provisional hold allowed (`rate × span`, saturated to
//! `u64::MAX`) was added to the accepted count unchecked ("attempt to add with
//! overflow" in debug builds, a wrapped count in release).
use std::time::Duration;
use tower_ratelimit_adaptive::controller::{Controller, Goodput, GoodputConfig};
use tower_ratelimit_adaptive::Outcome;

#[test]
fn goodput_with_a_huge_rate_floor_does_not_overflow() {
    let run = std::panic::catch_unwind(|| {
        let mut g = Goodput::new(GoodputConfig {
            min_rate: 1e300,
            measure_min: Duration::from_nanos(1),
            measure_max: Duration::ZERO,
            ..GoodputConfig::default()
        });
        g.observe(
            Duration::ZERO,
            &Outcome::throttled(Duration::ZERO).with_retry_after(Some(Duration::MAX)),
        );
        g.observe(Duration::from_millis(1), &Outcome::success(Duration::ZERO));
        g.observe(
            Duration::from_secs(3_153_600_000),
            &Outcome::success(Duration::ZERO),
        );
        g.rate()
    });
    let rate = run
        .expect("Goodput panicked")
        .expect("Goodput always limits");
    assert!(rate.is_finite() && rate > 0.0);
}
