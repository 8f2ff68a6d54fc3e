//! A policy adopted after a throttle does not stall the client. A gateway answers a
//! bare `429 Retry-After: 1` (no policy on it); the next response advertises
//! `RateLimit-Policy: "default";q=10;w=1`. The client (`per_second(1000)`, its default
//! burst) adopts 10/s; its bucket, emptied by the throttle, owed 999 units, which the
//! quota change kept whole at 100 ms each: the client stalled 99.1 s where the server
//! would take 10 requests a second.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};
use tower_ratelimit_http::feedback::FeedbackLayer;

#[tokio::test(start_paused = true)]
async fn a_policy_adopted_after_a_throttle_does_not_stall_the_client() {
    let limiter = RateLimiter::new(Quota::per_second(1000).unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let api = service_fn(move |_req: http::Request<()>| {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        async move {
            let response = if n == 0 {
                http::Response::builder()
                    .status(429)
                    .header("retry-after", "1")
            } else {
                http::Response::builder()
                    .status(200)
                    .header("ratelimit-policy", "\"default\";q=10;w=1")
            };
            Ok::<_, std::convert::Infallible>(response.body(()).unwrap())
        }
    });
    let client = ServiceBuilder::new()
        .layer(RateLimitLayer::with_limiter(limiter.clone()))
        .layer(FeedbackLayer::new(limiter.clone()).adopt_policy(true))
        .service(api);
    // One request through a clone of the client: the status it answered.
    let status = || {
        let client = client.clone();
        async move {
            client
                .oneshot(http::Request::new(()))
                .await
                .unwrap()
                .status()
        }
    };
    let t0 = Instant::now();
    assert_eq!(status().await, 429);
    // Held for the Retry-After, then the 200 that advertises 10/s.
    assert_eq!(status().await, 200);
    assert_eq!(limiter.quota().count(), 10, "the policy was adopted");
    let before = t0.elapsed();
    status().await;
    let third = t0.elapsed() - before;
    assert!(
        third <= Duration::from_millis(200),
        "the third request waited {third:?} (second at {before:?})"
    );
}
