//! `RateLimitMiddleware::fallback_pause`: a 429 that names no wait holds a reqwest
//! client for the pause set here (GitHub wants at least a minute after a
//! secondary-limit 429 without `Retry-After`), as `FeedbackLayer::fallback_pause` does.
#![cfg(feature = "reqwest-middleware")]

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower_ratelimit_core::{Quota, RateLimiter};
use tower_ratelimit_http::reqwest::RateLimitMiddleware;

/// Stands in for GitHub after the middleware (so the paused clock applies): the
/// first request gets a secondary-limit 429 with no `Retry-After`.
struct GitHubSecondary {
    sent: Arc<Mutex<Vec<Instant>>>,
}

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for GitHubSecondary {
    async fn handle(
        &self,
        _request: reqwest::Request,
        _: &mut http::Extensions,
        _: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let n = {
            let mut sent = self.sent.lock().unwrap();
            sent.push(Instant::now());
            sent.len()
        };
        let mut response = http::Response::builder()
            .header("x-ratelimit-limit", "5000")
            .header("x-ratelimit-remaining", "4990")
            .header("x-ratelimit-resource", "core");
        if n == 1 {
            response = response.status(429);
        }
        Ok(reqwest::Response::from(
            response.body(Vec::<u8>::new()).unwrap(),
        ))
    }
}

#[tokio::test(start_paused = true)]
async fn a_reqwest_client_can_wait_githubs_minute_after_a_429_without_retry_after() {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(
            RateLimitMiddleware::new(RateLimiter::new(Quota::per_second(10).unwrap()))
                .fallback_pause(Duration::from_secs(60)),
        )
        .with(GitHubSecondary {
            sent: Arc::clone(&sent),
        })
        .build();
    let response = client
        .get("https://api.github.test/user")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "retried after the pause");
    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert!(
        sent[1] - sent[0] >= Duration::from_secs(60),
        "retried after {:?}",
        sent[1] - sent[0]
    );
}
