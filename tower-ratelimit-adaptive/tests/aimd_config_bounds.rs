//! `Aimd::new` takes a floor above the default ceiling without a panic: the ceiling
//! rises to the floor, as `Goodput::new` does (`f64::clamp` panicked with min > max).
use tower_ratelimit_adaptive::controller::{Aimd, AimdConfig, Controller};

#[test]
fn aimd_with_a_floor_above_the_default_ceiling_does_not_panic() {
    let built = std::panic::catch_unwind(|| {
        Aimd::new(AimdConfig {
            min_rate: 2e6,
            ..AimdConfig::default()
        })
    });
    let aimd = built.expect("Aimd::new panicked on a positive, finite min_rate");
    let rate = aimd.rate().unwrap();
    assert!(rate.is_finite() && rate > 0.0);
}
