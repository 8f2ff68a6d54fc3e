//! `HttpRateLimit` decides before it waits for the inner service: a request the limit
//! refuses is answered at once, not after the capacity it will not use frees, and an
//! allowed request waits for that capacity in its response future. Paused clock.

use futures_util::StreamExt;
use std::convert::Infallible;
use std::time::Duration;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::Quota;
use tower_ratelimit_http::server::HttpRateLimitLayer;

type Body = http_body_util::Empty<bytes::Bytes>;

/// One request at a time, each taking `took`.
fn one_at_a_time(
    took: Duration,
) -> impl Service<
    http::Request<()>,
    Response = http::Response<Body>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send {
    ServiceBuilder::new()
        .concurrency_limit(1)
        .service_fn(move |_: http::Request<()>| async move {
            tokio::time::sleep(took).await;
            Ok::<_, Infallible>(http::Response::new(Body::new()))
        })
}

/// Behind a pool whose one permit a 10 s request holds, an over-limit request was
/// answered 9 s late, when the permit freed; now at once. An allowed request behind the
/// same pool waits for the permit and is served with its fields.
#[tokio::test(start_paused = true)]
async fn a_refused_request_does_not_wait_for_the_inner_services_capacity() {
    let svc = HttpRateLimitLayer::global(MemoryStore::new(Quota::per_minute(2).unwrap()))
        .layer(one_at_a_time(Duration::from_secs(10)));
    let t0 = Instant::now();
    let first = tokio::spawn(svc.clone().oneshot(http::Request::new(())));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = tokio::spawn(svc.clone().oneshot(http::Request::new(())));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let third = svc.clone().oneshot(http::Request::new(())).await.unwrap();
    assert_eq!(third.status(), 429);
    assert_eq!(t0.elapsed(), Duration::from_secs(2), "the 429 waited");
    assert_eq!(first.await.unwrap().unwrap().status(), 200);
    let second = second.await.unwrap().unwrap();
    assert_eq!(second.status(), 200);
    assert!(second.headers().contains_key("ratelimit"));
    // It waited for the permit: done 10 s after the first finished.
    assert_eq!(t0.elapsed(), Duration::from_secs(20));
}

/// The README's "`call` without `poll_ready`: typed error, not a panic": the inner
/// service is readied in the response future, so the request is simply served (tower's
/// `ConcurrencyLimit` panicked when called unpolled).
#[tokio::test(start_paused = true)]
async fn call_without_poll_ready_is_served() {
    let mut svc = HttpRateLimitLayer::global(MemoryStore::new(Quota::per_minute(10).unwrap()))
        .layer(one_at_a_time(Duration::ZERO));
    let response = svc.call(http::Request::new(())).await.unwrap();
    assert_eq!(response.status(), 200);
}

/// One long-lived service driven by `poll_ready` and `call` in turn (`call_all`) over a
/// pool of one: a readiness left waiting in the service when `poll_ready` found no
/// permit would take the permit from the clone the allowed request waits on, and the
/// last request would wait for the service to be dropped. All five finish, one second
/// apart.
#[tokio::test(start_paused = true)]
async fn one_service_driven_in_turn_over_a_busy_pool_finishes_every_request() {
    let svc = HttpRateLimitLayer::global(MemoryStore::new(Quota::per_minute(100).unwrap()))
        .layer(one_at_a_time(Duration::from_secs(1)));
    let t0 = Instant::now();
    let requests = futures_util::stream::iter((0..5).map(|_| http::Request::new(())));
    // Bounded, so that a hang fails the test (the paused clock jumps to the bound).
    let responses: Vec<_> =
        tokio::time::timeout(Duration::from_secs(60), svc.call_all(requests).collect())
            .await
            .expect("every request finished");
    assert_eq!(responses.len(), 5);
    assert!(responses
        .iter()
        .all(|r| r.as_ref().is_ok_and(|r| r.status() == 200)));
    assert_eq!(t0.elapsed(), Duration::from_secs(5));
}

/// Load shedding goes directly over the concurrency limit, inside this layer: the
/// request the pool has no permit for is shed at once (`Overloaded`), and the one the
/// rate limit refuses is answered 429 at once. (A `LoadShed` outside the rate layer
/// sees it always ready: the request waited for the permit and was served.)
#[tokio::test(start_paused = true)]
async fn load_shed_over_the_pool_inside_the_rate_layer_sheds_at_once() {
    let svc = ServiceBuilder::new()
        .layer(HttpRateLimitLayer::global(MemoryStore::new(
            Quota::per_minute(2).unwrap(),
        )))
        .load_shed()
        .service(one_at_a_time(Duration::from_secs(10)));
    let first = tokio::spawn(svc.clone().oneshot(http::Request::new(())));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t0 = Instant::now();
    let shed = svc.clone().oneshot(http::Request::new(())).await;
    assert!(
        shed.as_ref()
            .is_err_and(|e| e.is::<tower::load_shed::error::Overloaded>()),
        "{:?}",
        shed.map(|r| r.status())
    );
    let refused = svc.clone().oneshot(http::Request::new(())).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(t0.elapsed(), Duration::ZERO);
    assert_eq!(first.await.unwrap().unwrap().status(), 200);
}
