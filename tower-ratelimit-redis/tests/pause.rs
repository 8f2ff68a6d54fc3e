//! Requests held through a pause over a Redis GCRA store are booked again when it
//! ends, as over the core's in-memory store: the pause refilled the bucket, and the
//! units they took before it must not let them start on top of a full burst. Real
//! redis-server, real clock (Redis keeps its own).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::RedisServer;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};
use tower_ratelimit_core::error::BoxError;
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};
use tower_ratelimit_redis::RedisStore;

#[tokio::test]
async fn requests_held_through_a_pause_are_booked_again_when_it_ends() {
    let server = RedisServer::start();
    // 2 per second with a burst of 2: one start each 500 ms after the burst.
    let quota = Quota::per_second(2).expect("quota");
    let store = RedisStore::builder(quota)
        .prefix("pause:")
        .timeout(Duration::from_secs(2))
        .connect(server.url())
        .expect("store");
    let limiter = RateLimiter::from_store(store);
    let t0 = Instant::now();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&starts);
    let service =
        RateLimitLayer::with_limiter(limiter.clone()).layer(tower::service_fn(move |()| {
            log.lock().expect("lock").push(t0.elapsed());
            async { Ok::<_, BoxError>(()) }
        }));
    // Two requests take the burst, then a pause of 1.5 s begins before they call.
    let mut ready = Vec::new();
    for _ in 0..2 {
        let mut held = service.clone();
        held.ready().await.expect("ready");
        ready.push(held);
    }
    let pause = Duration::from_millis(1_500);
    limiter.pause_for(pause);
    let mut requests: Vec<_> = ready
        .into_iter()
        .map(|mut held| tokio::spawn(held.call(())))
        .collect();
    tokio::time::sleep_until(t0 + pause).await;
    for _ in 0..2 {
        requests.push(tokio::spawn(service.clone().oneshot(())));
    }
    for request in requests {
        request.await.expect("task").expect("request");
    }
    let mut starts = starts.lock().expect("lock").clone();
    starts.sort();
    // Without booking them again, the two held requests started on the units they
    // took before the pause, and the two new ones on the burst the pause refilled:
    // four at once.
    assert!(starts[0] >= pause, "{starts:?}");
    let first_burst = starts
        .iter()
        .filter(|&&at| at < starts[0] + Duration::from_millis(300))
        .count();
    assert_eq!(first_burst, 2, "{starts:?}");
    assert!(
        starts[3] >= starts[0] + Duration::from_millis(900),
        "{starts:?}"
    );
}
