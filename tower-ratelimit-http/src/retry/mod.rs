//! Retrying what the server said can be retried, when it said so.
//!
//! ```
//! use std::time::Duration;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use tower::{retry::RetryLayer, service_fn, ServiceBuilder, ServiceExt};
//! use tower_ratelimit_core::{BoxError, Quota, RateLimitLayer, RateLimiter};
//! use tower_ratelimit_http::feedback::FeedbackLayer;
//! use tower_ratelimit_http::retry::RetryPolicy;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), BoxError> {
//! let calls = Arc::new(AtomicUsize::new(0));
//! let counter = Arc::clone(&calls);
//! let api = service_fn(move |_req: http::Request<()>| {
//!     let n = counter.fetch_add(1, Ordering::SeqCst);
//!     async move {
//!         let status = if n == 0 { 429 } else { 200 };
//!         let res = http::Response::builder().status(status).header("retry-after", "2");
//!         Ok::<_, BoxError>(res.body(()).unwrap())
//!     }
//! });
//! let limiter = RateLimiter::new(Quota::per_second(10)?);
//! // Retry outside the limiter: every retry goes back through it.
//! let client = ServiceBuilder::new()
//!     .layer(RetryLayer::new(RetryPolicy::new()))
//!     .layer(RateLimitLayer::with_limiter(limiter.clone()))
//!     .layer(FeedbackLayer::new(limiter))
//!     .service(api);
//!
//! let start = tokio::time::Instant::now();
//! let response = client.oneshot(http::Request::new(())).await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(calls.load(Ordering::SeqCst), 2);
//! assert!(start.elapsed() >= Duration::from_secs(2));
//! # Ok(()) }
//! ```

mod backoff;
mod idempotency;
mod policy;

pub use backoff::Backoff;
pub use idempotency::Idempotency;
pub use policy::RetryPolicy;
pub use tower::retry::budget::{Budget, TpsBudget};
