//! [`RateLimitLayer`]: how often requests start, waiting or rejecting.
//!
//! ```
//! use std::time::Duration;
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//! use tower_ratelimit_core::{Quota, RateLimitLayer};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), tower_ratelimit_core::error::BoxError> {
//! // Wait mode: requests wait their turn in poll_ready, in FIFO order.
//! let mut svc = ServiceBuilder::new()
//!     .layer(RateLimitLayer::new(Quota::per_second(10)?.with_burst(1)?))
//!     .service(service_fn(|n: u32| async move { Ok::<_, std::convert::Infallible>(n * 2) }));
//! let start = tokio::time::Instant::now();
//! for n in 0..3 {
//!     assert_eq!(svc.ready().await?.call(n).await?, n * 2);
//! }
//! assert_eq!(start.elapsed(), Duration::from_millis(200)); // 0, 100, 200 ms
//!
//! // Reject mode: a denied request fails at once with `RateLimited`.
//! let mut strict = ServiceBuilder::new()
//!     .layer(RateLimitLayer::new(Quota::per_second(1)?).reject())
//!     .service(service_fn(|n: u32| async move { Ok::<_, std::convert::Infallible>(n) }));
//! assert!(strict.ready().await?.call(1).await.is_ok());
//! let err = strict.ready().await?.call(2).await.unwrap_err();
//! let denied = err.downcast_ref::<tower_ratelimit_core::error::RateLimited>().unwrap();
//! assert_eq!(denied.retry_after(), Duration::from_secs(1));
//! # Ok(()) }
//! ```
//!
//! Every service made by one layer, and every clone of them, shares the layer's
//! [`RateLimiter`](crate::RateLimiter): a limit that each clone enforced alone would be
//! no limit (the failure of `tower::limit::RateLimit` behind axum).
//!
//! # What the inner service must be
//!
//! `Clone`: a service made ready and then left unused gives its readiness back by
//! swapping in a clone, and a weighted request's response future takes the ready
//! service with it while it waits for the rest of its cost. For a service that is not
//! `Clone` (a `BoxService`, hyper's `SendRequest`), use `BoxCloneService` or put a
//! `tower::buffer::Buffer` under the layer. The compiler's error does not name the
//! bound: it says that a method such as `oneshot` "exists but its trait bounds were
//! not satisfied".
//!
//! An inner service whose error type is `BoxError` itself (a `service_fn` returning
//! `Result<_, BoxError>`, common in tests) can meet a rustc limitation when the call
//! is awaited inside `tokio::spawn(async move { .. })`: "implementation of `From` is
//! not general enough". Spawn the call's future itself
//! (`tokio::spawn(svc.clone().oneshot(req))`), or give the service a concrete error
//! type. The concurrency layer (which maps errors to `BoxError` the same way) shares
//! the limitation.
//!
//! # A waiting service that is no longer polled
//!
//! In wait mode, a service whose `poll_ready` returned `Pending` holds a place in the
//! limiter's FIFO queue. If its owner stops polling it but keeps it (a
//! `timeout(d, svc.ready())` that gave up, a `select!`), it cannot hold up the clones
//! behind it: about a second after its turn came, the next waiter takes its place, and
//! the idle service joins the queue again at the back when it is polled. Dropping it
//! frees its place at once.

mod cost;
mod future;
mod layer;
mod service;

pub use cost::{Cost, UnitCost};
pub use future::ResponseFuture;
pub use layer::RateLimitLayer;
pub use service::RateLimit;

/// What a limited request does when its units are not available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Wait in `poll_ready` (clients, bulk jobs). Backpressure reaches the caller.
    #[default]
    Wait,
    /// Fail at once in `call` with [`crate::error::RateLimited`] (servers).
    Reject,
}
