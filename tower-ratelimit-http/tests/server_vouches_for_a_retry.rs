//! An explicit "yes, retry this" (`x-should-retry: true`, OpenAI's SDK contract;
//! `Stripe-Should-Retry: true`) lets `RetryPolicy` repeat a request whose method is
//! not idempotent (every OpenAI call is a POST), as `false` already stops one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tower::{retry::RetryLayer, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::BoxError;
use tower_ratelimit_http::RetryPolicy;

#[tokio::test(start_paused = true)]
async fn a_post_the_server_marks_retryable_is_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let api = tower::service_fn(move |_req: http::Request<String>| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            let b = match n {
                0 => http::Response::builder()
                    .status(500)
                    .header("x-should-retry", "true"),
                _ => http::Response::builder(),
            };
            Ok::<_, BoxError>(b.body(()).unwrap())
        }
    });
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::new()))
        .service(api);
    let request = http::Request::post("https://api.openai.test/v1/chat/completions")
        .body("{}".to_owned())
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    assert_eq!(
        (response.status().as_u16(), calls.load(Ordering::SeqCst)),
        (200, 2),
        "the 500 marked x-should-retry: true was not retried"
    );
}
