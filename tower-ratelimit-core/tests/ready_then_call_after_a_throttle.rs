//! A weighted request made ready before a throttle and called after the
//! throttle ended (without being held: its `call` comes after the pause is over)
//! gets its readiness unit back from the drained bucket. `rate/service.rs:257` calls
//! `reserve_whole(taken = 1, ready_at)` without `drained_since`, unlike the held path
//! (`rate/future.rs:268`), whose comment says the drain's debt already holds the unit.
//!
//! 1/s, burst 5. t = 0: A ready (one unit). Throttle 200 ms. t = 0.3: A calls (cost 2).
//! The drain left "one unit at 0.2, the next at 1.2"; A's two units start at 0.5.
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};

#[tokio::test(start_paused = true)]
async fn a_ready_request_called_after_a_throttle_leaves_the_drain_whole() {
    let limiter = RateLimiter::new(Quota::per_second(1).unwrap().with_burst(5).unwrap());
    let t0 = Instant::now();
    let starts: Arc<Mutex<Vec<(u128, u64)>>> = Arc::default();
    let s2 = Arc::clone(&starts);
    let svc = ServiceBuilder::new()
        .layer(RateLimitLayer::with_limiter(limiter.clone()).cost(|c: &u64| *c))
        .service(service_fn(move |c: u64| {
            s2.lock().unwrap().push((t0.elapsed().as_millis(), c));
            async { Ok::<_, std::convert::Infallible>(()) }
        }));
    let mut a = svc.clone();
    a.ready().await.unwrap();
    limiter.throttle_for(Duration::from_millis(200));
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.call(2).await.unwrap();
    let starts = starts.lock().unwrap().clone();
    // After the drain at 200 ms: the first unit at 200 ms, the second at 1200 ms.
    assert!(
        starts[0].0 >= 1200,
        "two units started before the drained bucket allows (1200 ms): {starts:?}"
    );
}
