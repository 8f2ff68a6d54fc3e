//! Adaptive limits for tower-ratelimit: find an unknown, changing rate limit from the
//! responses a server sends, and keep a shared limiter just under it.
//!
//! Most APIs do not publish their limit, or change it under load. This crate closes
//! the loop: each response is classified into an [`Outcome`] (success with its
//! latency, throttled with the server's wait and header hints, overload, or
//! ignored); a [`Controller`](controller::Controller) turns the stream of outcomes
//! into a rate (and optionally a concurrency cap); and [`AdaptiveRateLimitLayer`]
//! applies it to a shared core [`RateLimiter`](tower_ratelimit_core::RateLimiter)
//! (`set_quota`, which wakes the waiters it affects) and pauses it for Retry-After.
//!
//! ```
//! use std::time::Duration;
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//! use tower_ratelimit_adaptive::{AdaptiveRateLimitLayer, Outcome};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), tower_ratelimit_core::BoxError> {
//! // Any service; this toy backend answers with a status code.
//! let backend = service_fn(|n: u32| async move {
//!     Ok::<u16, std::io::Error>(if n % 10 == 9 { 429 } else { 200 })
//! });
//! let classify = |r: &Result<u16, std::io::Error>| match r {
//!     Ok(429) => Outcome::throttled(Duration::ZERO),
//!     Ok(_) => Outcome::success(Duration::ZERO),
//!     Err(_) => Outcome::Overload { latency: Duration::ZERO },
//! };
//! let layer = AdaptiveRateLimitLayer::new(classify);
//! let mut svc = ServiceBuilder::new().layer(layer.clone()).service(backend);
//! for n in 0..5 {
//!     svc.ready().await?.call(n).await?;
//! }
//! assert!(layer.rate(&()).is_some());
//! # Ok(())
//! # }
//! ```
//!
//! # Controllers
//! One small type per algorithm behind one trait, pure and deterministic (time is
//! passed in), so each is testable without a runtime:
//!
//! | controller | what it moves | idea |
//! |---|---|---|
//! | [`Goodput`](controller::Goodput) (default) | rate | measure the accepted rate while throttled, cruise at 97 % of it, probe up multiplicatively; seeds from `RateLimit-Policy` |
//! | [`Aimd`](controller::Aimd) | rate | +20 req/s per second, ×0.7 per throttle episode |
//! | [`AwsCubic`](controller::AwsCubic) | rate | a port of the AWS SDKs' adaptive retry rate limiter |
//! | [`Gradient2`](controller::Gradient2) | concurrency | Netflix's latency gradient |
//! | [`SreThrottle`](controller::SreThrottle) | local rejection | Google SRE client-side throttling |
//!
//! # How well they work
//! The [`sim`] module is a deterministic discrete-event harness (server models, limit
//! schedules, several clients, fixed seeds); `cargo run --release -p
//! tower-ratelimit-adaptive --example simulate` prints every controller on every
//! scenario, and `BENCHMARKS.md` at the repository root holds the table and an honest reading
//! of it. `examples/real_loop.rs` checks the default controller against a real hyper
//! server on 127.0.0.1.
//!
//! # Features
//! * `http`: HTTP classifiers, `layer::classify::http_feedback` (built on
//!   tower-ratelimit-http's feedback parser: Retry-After, RateLimit and
//!   RateLimit-Policy, vendor headers) and a minimal `layer::classify::http_status`.

pub mod controller;
pub mod layer;
mod outcome;
pub mod sim;

pub use layer::AdaptiveRateLimitLayer;
pub use outcome::{Hints, Outcome, Policy, ServerPartition};
