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
//! | [`Goodput`](controller::Goodput) (default) | rate | measure the accepted rate while throttled, cruise at 97 % of it (3 s, or 30 × the hold after a +5 % or +15 % probe step that drew a `Retry-After` hold), probe up multiplicatively; seeds from `RateLimit-Policy` |
//! | [`Aimd`](controller::Aimd) | rate | +20 req/s per second, ×0.7 per throttle episode; a comparison anchor: use it with `honour_retry_after(None)` |
//! | [`AwsCubic`](controller::AwsCubic) | rate | a port of the AWS SDKs' adaptive retry rate limiter; a comparison anchor: use it with `honour_retry_after(None)` |
//! | [`Gradient2`](controller::Gradient2) | concurrency | Netflix's latency gradient |
//! | [`SreThrottle`](controller::SreThrottle) | local rejection | Google SRE client-side throttling |
//!
//! `Aimd` and `AwsCubic` are faithful to the algorithms they name, as the simulation's
//! comparison anchors: they do not pause their growth while the layer holds the
//! client for a `Retry-After` (`Aimd` adds its 20/s per second, `AwsCubic`'s cubic
//! curve runs on, capped only by twice the measured rate), and after the hold the
//! grown rate can draw the next 429 at once. Against a 15/s token bucket answering
//! `Retry-After: 1`, `Aimd` under the layer's default holds settles at about 1 request
//! a second; with `.honour_retry_after(None)` it gets 13.8/s. Use them with
//! `honour_retry_after(None)` (and a retry policy for the refused request) or with a
//! server that sends no `Retry-After`. The default [`Goodput`](controller::Goodput)
//! measures across holds and is meant for the layer's default.
//!
//! Against a server that answers `429` with a whole-second `Retry-After` and sends no
//! `RateLimit` fields, each probe that finds the limit costs the client a whole hold,
//! so once a probe has found the limit within 15 %, `Goodput` cruises 30 holds
//! (30 s after `Retry-After: 1`) before the next (`hold_cruise_factor`). Over the last
//! 30 s of a minute against token buckets of 10–20/s at round trips of 1–100 ms it
//! gets 0.88–1.00 of the limit, 0.95 on average (`tests/retry_after_bucket.rs`); at
//! 30–60/s, 0.78–1.00. With `honour_retry_after(None)` and a retry policy it probes
//! every few seconds instead and sits closer to the limit: in the simulation's
//! "+ Retry-After" row at 100/s, 0.99 of the limit against 0.85 with holds. The
//! table runs the anchors without holds there, as they are meant to run, and AIMD
//! (0.99) is ahead of the default on that one row.
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
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod controller;
pub mod layer;
mod outcome;
pub mod sim;

pub use layer::AdaptiveRateLimitLayer;
pub use outcome::{Hints, Outcome, Policy, ServerPartition};

/// The README's examples, compiled and run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
