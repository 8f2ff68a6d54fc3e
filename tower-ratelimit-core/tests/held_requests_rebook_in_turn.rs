//! Two weighted wait-mode requests held through one pause are booked again in turn
//! when it ends, and the second gives nothing back off the first's fresh booking
//! (given back, the two started within less than their cost's time).

mod support;

use std::time::Duration;
use tokio::time::Instant;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};

#[tokio::test(start_paused = true)]
async fn two_held_weighted_requests_do_not_overlap_after_a_pause() {
    let quota = Quota::per_second(2).unwrap().with_burst(3).unwrap();
    let limiter = RateLimiter::new(quota);
    let (starts, api) = support::starts::recorder(Instant::now());
    let svc = ServiceBuilder::new()
        .layer(RateLimitLayer::with_limiter(limiter.clone()).cost(|c: &u64| *c))
        .service(api);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut a = svc.clone();
    let a = tokio::spawn(async move {
        a.ready().await?;
        tokio::time::sleep(Duration::from_millis(1)).await;
        a.call(2).await
    });
    tokio::task::yield_now().await;
    let b = tokio::spawn(svc.clone().oneshot(3));
    tokio::task::yield_now().await;
    limiter.pause_for(Duration::from_secs(1));
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    support::starts::assert_within_quota(quota, &starts.lock().unwrap());
}
