//! A throttle empties the primary quota only: a client held to "10 per second and
//! 1000 per hour" stayed at the hour's steady rate (one per 3.6 s) for an hour after
//! one 429, when every bucket was drained.
use std::time::Duration;
use tokio::time::Instant;
use tower_ratelimit_core::algorithm::Gcra;
use tower_ratelimit_core::{Quota, RateLimiter};

#[tokio::test(start_paused = true)]
async fn a_throttle_does_not_empty_the_hour_budget() {
    let limiter = RateLimiter::with_quotas(
        Gcra,
        [
            Quota::per_second(10).unwrap(),
            Quota::per_hour(1000).unwrap(),
        ],
    )
    .unwrap();
    limiter.acquire(1).await.unwrap();
    limiter.throttle_for(Duration::from_secs(1));
    let start = Instant::now();
    for _ in 0..5 {
        limiter.acquire(1).await.unwrap();
    }
    let took = start.elapsed();
    // At the primary quota's rate after the throttle: 1 s, then 4 × 100 ms.
    assert!(
        took <= Duration::from_millis(1_500),
        "five requests after a 1 s throttle took {took:?}"
    );
}
