//! The client stack the story ends with, in one place: retries outermost so each
//! retry goes back through the limits, the worker pool (concurrency limit), the shared rate limiter inside it so requests take
//! their rate slot only once they hold a worker, the feedback layer under both so
//! a 429's `Retry-After` pauses the shared limiter, then the counting and the
//! HTTP client.
//!
//! ```
//! use examples::api_server::{ApiConfig, ApiServer};
//! use examples::client::{page_request, page_uri};
//! use examples::observe::Attempts;
//! use tower::ServiceExt;
//! use tower_ratelimit_core::{Quota, RateLimiter};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let server = ApiServer::start(ApiConfig::default()).await?;
//! let limiter = RateLimiter::new(Quota::per_second(50)?);
//! let attempts = Attempts::default();
//! let client = examples::stack::paced(limiter, 8, attempts.clone());
//! let response = client.oneshot(page_request(&page_uri(&server.url(), 1)?)?).await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(attempts.sent(), 1);
//! server.shutdown().await;
//! # Ok(()) }
//! ```

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use tower::retry::budget::TpsBudget;
use tower::retry::RetryLayer;
use tower::{BoxError, Service, ServiceBuilder};
use tower_ratelimit_adaptive::layer::{classify, SinglePartition};
use tower_ratelimit_adaptive::{AdaptiveRateLimitLayer, Outcome};
use tower_ratelimit_core::store::RateStore;
use tower_ratelimit_core::{RateLimiter, ServiceBuilderExt};
use tower_ratelimit_http::feedback::FeedbackLayer;
use tower_ratelimit_http::retry::RetryPolicy;

use crate::client::{ApiRequest, HttpClient};
use crate::observe::{Attempts, CountLayer};

/// Retries (the http crate's policy with [`retry_policy`]), concurrency limit, rate
/// limit on `limiter`, feedback steering `limiter`, attempts counted into
/// `attempts`, over a fresh [`HttpClient`].
pub fn paced<St: RateStore>(
    limiter: RateLimiter<St>,
    concurrency: usize,
    attempts: Attempts,
) -> impl Service<ApiRequest, Response = Response<Bytes>, Error = BoxError, Future: Send>
       + Clone
       + Send
       + 'static {
    ServiceBuilder::new()
        .layer(RetryLayer::new(retry_policy()))
        .limit_concurrency(concurrency)
        .limit_rate_with(limiter.clone())
        // The rate given is a ceiling: a server that advertises a slower one sets it.
        .layer(FeedbackLayer::new(limiter).adopt_policy(true))
        .layer(CountLayer::new(attempts))
        .service(HttpClient::new())
}

/// Retries for a bulk job: up to 10 per page, from a budget that allows a retry
/// for every request (a job that must deliver every page may not give up on a
/// throttled one because many others were throttled too; the pause, not the
/// budget, is what keeps it from hammering).
pub fn retry_policy() -> RetryPolicy<tower_ratelimit_http::feedback::DefaultClassifier, TpsBudget> {
    RetryPolicy::new()
        .max_retries(10)
        .budget(TpsBudget::new(Duration::from_secs(10), 100, 1.0))
}

/// The adaptive layer of [`adaptive`], kept to read the rate it found.
pub type Adaptive = AdaptiveRateLimitLayer<Classifier, SinglePartition, ApiRequest>;

/// How the adaptive layer reads an answer: by status code and `Retry-After`.
pub type Classifier = fn(&Result<Response<Bytes>, BoxError>) -> Outcome;

/// Retries, concurrency limit, then the adaptive layer (no rate configured: it
/// discovers one from the answers), attempts counted, over a fresh [`HttpClient`].
///
/// With `feedback`, a 429's `Retry-After` also pauses every request of the layer
/// (the adaptive layer's own pause); without it, only the throttled request waits
/// (in its retry) and the controller alone slows the rest down.
pub fn adaptive(
    concurrency: usize,
    feedback: bool,
    attempts: Attempts,
) -> (
    impl Service<ApiRequest, Response = Response<Bytes>, Error = BoxError, Future: Send>
        + Clone
        + Send
        + 'static,
    Adaptive,
) {
    let classify: Classifier = classify::http_status::<Bytes, BoxError>;
    let hold = feedback.then_some(Duration::from_secs(60));
    let layer = AdaptiveRateLimitLayer::new(classify).honour_retry_after(hold);
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(retry_policy()))
        // The adaptive layer waits in `call`: the concurrency limit in front bounds
        // how many requests wait there.
        .limit_concurrency(concurrency)
        .layer(layer.clone())
        .layer(CountLayer::new(attempts))
        .service(HttpClient::new());
    (service, layer)
}
