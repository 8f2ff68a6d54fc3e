//! A weighted request held through a throttle is booked again at the throttle's end
//! (its readiness unit taken before it, or the units it had booked and was sleeping
//! until). The drain has already set the bucket's debt (empty as of that point), and
//! that debt holds those units: giving back what time had not refilled of them came
//! out of the drain itself, and at one unit per 10 s the request after the held one
//! started seconds after it instead of the held request's cost in intervals.

use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, Layer, Service, ServiceExt};
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};

/// One unit every 10 s, burst 10.
fn slow() -> Quota {
    Quota::new(10, Duration::from_secs(100))
        .and_then(|q| q.with_burst(10))
        .expect("quota")
}

/// A service that answers with the instant it was called, behind `limiter`, each
/// request costing the units it carries.
fn service(
    limiter: &RateLimiter,
) -> impl Service<u64, Response = Instant, Error = tower_ratelimit_core::BoxError> + Clone {
    let api = service_fn(|_: u64| async { Ok::<_, std::convert::Infallible>(Instant::now()) });
    RateLimitLayer::with_limiter(limiter.clone())
        .cost(|units: &u64| *units)
        .layer(api)
}

/// When a request of `units` starts, once the service is ready for it.
async fn call<S>(service: &mut S, units: u64) -> Instant
where
    S: Service<u64, Response = Instant, Error = tower_ratelimit_core::BoxError>,
{
    let ready = service.ready().await.expect("ready");
    ready.call(units).await.expect("request")
}

#[tokio::test(start_paused = true)]
async fn a_request_ready_before_a_throttle_leaves_the_drain_whole() {
    let limiter = RateLimiter::new(slow());
    // Away from the clock's origin, where nothing is ever given back.
    tokio::time::advance(Duration::from_secs(5)).await;
    let start = Instant::now();
    let mut service = service(&limiter);
    // Ready (a unit taken at 0 s), then a server's refusal until 1 s, then the call.
    service.ready().await.expect("ready");
    tokio::time::advance(Duration::from_millis(500)).await;
    limiter.throttle_for(Duration::from_millis(500));
    let held = service.call(1).await.expect("held request");
    assert_eq!(
        held - start,
        Duration::from_secs(1),
        "the held request starts at the throttle's end"
    );
    assert_eq!(
        call(&mut service, 1).await - held,
        Duration::from_secs(10),
        "the next one an interval later"
    );
}

#[tokio::test(start_paused = true)]
async fn a_booked_request_a_throttle_holds_leaves_the_drain_whole() {
    let limiter = RateLimiter::new(slow());
    tokio::time::advance(Duration::from_secs(5)).await;
    let mut service = service(&limiter);
    // The whole burst spent; a request of cost 3 is ready 10 s later and books the
    // rest of its units, due 20 s after that.
    call(&mut service, 10).await;
    let mut booked = Box::pin(service.ready().await.expect("ready").call(3));
    let sleeping = tokio::time::timeout(Duration::from_secs(1), &mut booked).await;
    assert!(sleeping.is_err(), "the request sleeps until its units");
    // A server's refusal for 30 s holds it past its slot; the bucket is empty at its
    // end, so the held request pays its 3 units at the rate from there.
    limiter.throttle_for(Duration::from_secs(30));
    let until = Instant::now() + Duration::from_secs(30);
    let held = booked.await.expect("held request");
    assert_eq!(
        held - until,
        Duration::from_secs(20),
        "two intervals after the throttle's end"
    );
    assert_eq!(
        call(&mut service, 1).await - held,
        Duration::from_secs(10),
        "the next one an interval later"
    );
}
