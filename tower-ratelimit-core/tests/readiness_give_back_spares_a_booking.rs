//! A weighted wait-mode request's readiness unit is given back in `call` only when no
//! other request booked a slot after it: the end of the debt is then that booking,
//! and giving back off it started a newcomer in its slot.

mod support;

use std::time::Duration;
use tokio::time::Instant;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};

#[tokio::test(start_paused = true)]
async fn a_readiness_give_back_does_not_cut_a_sleepers_booking() {
    let quota = Quota::per_second(2).unwrap().with_burst(3).unwrap();
    let limiter = RateLimiter::new(quota);
    let (starts, api) = support::starts::recorder(Instant::now());
    let svc = ServiceBuilder::new()
        .layer(RateLimitLayer::with_limiter(limiter.clone()).cost(|c: &u64| *c))
        .service(api);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut a = svc.clone();
    a.ready().await.unwrap();
    let b = tokio::spawn(svc.clone().oneshot(3));
    tokio::task::yield_now().await;
    let a = a.call(2);
    a.await.unwrap();
    b.await.unwrap().unwrap();
    support::starts::assert_within_quota(quota, &starts.lock().unwrap());
}
