//! `RetryPolicy` retries a local reject-mode denial (`RateLimited`) within the parser's
//! cap, as it does a server's wait: a local `limit_rate_or_reject` of `per_hour(1)` made
//! the retry sleep an hour (a quota of one per century, a century) before the caller
//! heard anything.
use std::time::Duration;
use tokio::time::Instant;
use tower::retry::RetryLayer;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::{Quota, RateLimitLayer};
use tower_ratelimit_http::retry::RetryPolicy;

#[tokio::test(start_paused = true)]
async fn a_local_denial_longer_than_the_cap_is_not_retried() {
    let api = service_fn(|_req: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(()))
    });
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::new()))
        .layer(RateLimitLayer::new(Quota::per_hour(1).unwrap()).reject())
        .service(api);
    client
        .clone()
        .oneshot(http::Request::new(()))
        .await
        .unwrap();
    let start = Instant::now();
    // Denied locally for an hour: over the 5-minute cap.
    let second = tokio::time::timeout(
        Duration::from_secs(301),
        client.clone().oneshot(http::Request::new(())),
    )
    .await;
    assert!(
        second.is_ok(),
        "the caller was still waiting after {:?}: the retry sleeps the whole local retry_after",
        start.elapsed()
    );
    assert!(second.unwrap().is_err(), "an over-cap denial fails");
}
