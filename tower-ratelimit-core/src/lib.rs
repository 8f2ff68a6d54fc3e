//! Tower middleware that controls how fast and how many requests flow through any
//! [`tower::Service`]: a **rate** limit decides how often requests *start*, a
//! **concurrency** limit decides how many are *in flight*. They are two axes, each
//! with its own layer, made to stack.
//!
//! ```
//! use std::time::Duration;
//! use futures_util::StreamExt;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use tower_ratelimit_core::{Quota, ServiceBuilderExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), tower_ratelimit_core::error::BoxError> {
//! // A bulk job: 1,000 requests at 100 per second, at most 32 in flight, against an
//! // API that answers in 300 ms. The total time is set by the rate, not the latency.
//! let api = service_fn(|page: u32| async move {
//!     tokio::time::sleep(Duration::from_millis(300)).await;
//!     Ok::<_, std::convert::Infallible>(page)
//! });
//! let client = ServiceBuilder::new()
//!     .limit_rate(Quota::per_second(100)?.with_burst(1)?)
//!     .limit_concurrency(32) // ≥ rate × latency = 30, so the rate is the bottleneck
//!     .service(api);
//! let start = tokio::time::Instant::now();
//! // call_all pulls the next request only when the stack is ready: backpressure,
//! // flat memory; results stream out as they complete.
//! let done = client
//!     .call_all(futures_util::stream::iter(0..1_000u32))
//!     .fold(0, |n, r| async move { n + r.map(|_| 1).unwrap_or(0) })
//!     .await;
//! assert_eq!(done, 1_000);
//! // 999 spacings of 10 ms, plus the last response's 300 ms.
//! assert_eq!(start.elapsed(), Duration::from_millis(9_990 + 300));
//! # Ok(()) }
//! ```
//!
//! # The pieces
//!
//! * [`Quota`]: a count per period plus a burst, validated (errors, never panics).
//! * [`algorithm`]: GCRA (the default, lock-free), leaky bucket, fixed window, sliding
//!   log and sliding counter, behind one trait; each can check and reserve, for a
//!   cost of `n` units; several quotas can hold at once, all or nothing.
//! * [`store`]: where buckets live, the one trait every layer talks to. In memory
//!   here; in Redis with `tower-ratelimit-redis`.
//! * [`RateLimiter`]: the shared handle. Every service and clone holding it is one
//!   limit. FIFO waiting; pause until an instant (a server's `Retry-After`); quota
//!   changes at run time; snapshots for headers.
//! * [`RateLimitLayer`] (wait or reject mode) and [`ConcurrencyLimitLayer`] (the
//!   worker pool, resizable, permits released on completion or drop).
//! * [`keyed`]: per-client limits with bounded memory.
//! * [`ServiceBuilderExt`]: all of it as `ServiceBuilder` methods.
//!
//! # Which stack to write
//!
//! * **Client or bulk job**: `limit_rate` (wait mode) and `limit_concurrency`, in
//!   either order: the rate layer polls its inner service's readiness before taking a
//!   slot, so a request takes its rate slot only once it holds a concurrency permit,
//!   and the starts keep the rate whichever layer is outside. Drive it with
//!   `ServiceExt::call_all` or a bounded stream for backpressure.
//! * **Server**: reject mode (`limit_rate_or_reject`, or keyed per client), so that
//!   excess requests fail at once with a `RateLimited` error. For HTTP, use
//!   `tower-ratelimit-http`'s `HttpRateLimitLayer` instead: it makes the same
//!   decision and answers 429 with `Retry-After` and `RateLimit` headers itself, so
//!   the service keeps its error type (axum's `Infallible`).
//!
//! # Guarantees
//!
//! No panic on any quota, cost, key or request: bad input is a typed error. Waiters
//! are served in order and none is lost however many clones wait (across a pause, the
//! [`concurrency`] module docs say where the order is not kept). Permits are
//! released on completion, cancellation or panic. Memory is bounded: the wait queue
//! holds one entry per waiting caller, keyed limits cap their keys.

pub mod algorithm;
pub mod builder;
pub mod clock;
pub mod concurrency;
pub mod error;
pub mod keyed;
pub mod limiter;
pub mod quota;
pub mod rate;
pub mod store;

pub use builder::ServiceBuilderExt;
pub use concurrency::{ConcurrencyLimitLayer, ConcurrencyLimiter};
pub use error::{BoxError, RateLimited};
pub use keyed::{KeyedMemoryStore, KeyedRateLimitLayer, KeyedRateLimiter};
pub use limiter::RateLimiter;
pub use quota::{Quota, QuotaError};
pub use rate::RateLimitLayer;
pub use store::MemoryStore;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Polls a future once without a task: the in-memory stores answer at once, so the
/// layers can decide inside `call` without cloning the inner service.
pub(crate) fn poll_now<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(future).poll(&mut cx) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

/// The README's examples, compiled and run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
