//! The leaky bucket's slots after a quota change. Since da4c7e5,
//! `GcraState::rescale` (which `LeakyBucket::rescale` calls) caps the debt at the new
//! burst, as for a GCRA bucket, but a leaky bucket's debt is nothing but booked slots
//! (it has no fill level: a unit passes only when `tat <= now`), and its
//! `moved_slot` is still the default proportional map. The bookings are cut off the
//! bucket while the sleepers keep their (proportionally moved) slots, so new requests
//! start between them: a strict 1/s leaky bucket starts requests 0.5 s apart.

use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::algorithm::LeakyBucket;
use tower_ratelimit_core::keyed::KeyedMemoryStore;
use tower_ratelimit_core::{KeyedRateLimitLayer, KeyedRateLimiter, Quota};

#[tokio::test(start_paused = true)]
async fn leaky_bucket_keeps_strict_spacing_across_a_cut() {
    // 10/s (burst 10: only a cost cap for the leaky bucket) -> 1/s (burst 1).
    let store = KeyedMemoryStore::with_algorithm(LeakyBucket, Quota::per_second(10).unwrap());
    let limiter: KeyedRateLimiter<u32, _> = KeyedRateLimiter::from_store(store);
    let start = Instant::now();
    let service = ServiceBuilder::new()
        .layer(KeyedRateLimitLayer::with_limiter(
            limiter.clone(),
            |r: &u32| *r,
        ))
        .service(service_fn(move |_: u32| async move {
            Ok::<_, std::convert::Infallible>(start.elapsed().as_millis())
        }));
    let mut all = Vec::new();
    for _ in 0..5 {
        all.push(tokio::spawn(service.clone().oneshot(1)));
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    limiter.set_quota(Quota::per_second(1).unwrap());
    for _ in 0..5 {
        all.push(tokio::spawn(service.clone().oneshot(1)));
        tokio::task::yield_now().await;
    }
    let mut starts = Vec::new();
    for r in all {
        starts.push(r.await.unwrap().unwrap());
    }
    starts.sort();
    // After the change (50 ms) the bucket is a strict 1/s: consecutive starts at least
    // 1 s apart (1 ms of rounding slack).
    let after: Vec<u128> = starts.iter().copied().filter(|&s| s >= 50).collect();
    for pair in after.windows(2) {
        assert!(
            pair[1] - pair[0] >= 999,
            "two starts {} ms apart under a strict 1/s leaky bucket: {starts:?}",
            pair[1] - pair[0]
        );
    }
}
