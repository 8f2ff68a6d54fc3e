//! A bucket a throttle emptied is empty under any later quota. The drain leaves it
//! owing `burst - 1` units, and a quota change keeps the units owed; kept whole, a
//! client whose old burst was large owed far more than the new bucket can hold: after
//! `per_second(1000)` was drained and cut to `per_second(10)` (what
//! `FeedbackLayer::adopt_policy` does when the 429 carried no policy and the next
//! response does), the next request waited 99.1 s instead of one interval.
use std::time::Duration;
use tokio::time::Instant;
use tower_ratelimit_core::{Quota, RateLimiter};

#[tokio::test(start_paused = true)]
async fn a_quota_cut_after_a_throttle_does_not_turn_the_drain_into_minutes() {
    // Burst 1000; a 429 with `Retry-After: 1` and no policy on it.
    let limiter = RateLimiter::new(Quota::per_second(1000).unwrap());
    limiter.throttle_for(Duration::from_secs(1));
    tokio::time::advance(Duration::from_secs(1)).await;
    // The pause is over and the bucket emptied; the next response advertises 10/s.
    limiter.acquire(1).await.unwrap();
    limiter.set_quota(Quota::per_second(10).unwrap());
    let start = Instant::now();
    limiter.acquire(1).await.unwrap();
    let waited = start.elapsed();
    // An empty bucket at 10/s gives the next unit within one interval.
    assert!(
        waited <= Duration::from_millis(200),
        "after the cut to 10/s the next request waited {waited:?}"
    );
}
