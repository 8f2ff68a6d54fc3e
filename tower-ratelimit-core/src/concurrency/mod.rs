//! [`ConcurrencyLimitLayer`]: how many requests are in flight (the worker pool).
//!
//! ```
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//! use tower_ratelimit_core::concurrency::ConcurrencyLimiter;
//! use tower_ratelimit_core::ConcurrencyLimitLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower_ratelimit_core::error::BoxError> {
//! let pool = ConcurrencyLimiter::new(2);
//! let mut svc = ServiceBuilder::new()
//!     .layer(ConcurrencyLimitLayer::with_limiter(pool.clone()))
//!     .service(service_fn(|n: u32| async move { Ok::<_, std::convert::Infallible>(n) }));
//! let response = svc.ready().await?.call(7);
//! assert_eq!(pool.in_flight(), 1); // held until the response future completes
//! assert_eq!(response.await?, 7);
//! assert_eq!(pool.in_flight(), 0);
//! pool.set_limit(8); // grows (or shrinks) at run time
//! assert_eq!(pool.limit(), 8);
//! # Ok(()) }
//! ```
//!
//! A permit is taken in `poll_ready`, moved into the response future by `call`, and
//! released when that future completes or is dropped (cancellation and panics
//! included). Waiters are served in FIFO order.
//!
//! One pool may serve several rate limiters (one per upstream host, say). A wait-mode
//! [`RateLimit`](crate::rate::RateLimit) above it takes its permit before its rate
//! slot, so that starts keep the rate, and keeps it while it waits for the slot. A
//! pause is waited out without it: a request that meets a pause does not take a
//! permit, and requests already waiting for their slot when it begins give theirs
//! back, so a host paused for 30 s does not hold the pool from the other hosts. They
//! go back to their places in line after it: ahead of everyone who came later, except
//! a waiter that holds the head of the line by then (the head is not taken from a
//! waiter that may be deciding). A request whose `call` had begun gives its permit back
//! too: at once if it was granted just before the pause, or when the rest of a cost
//! above one unit falls due. The keyed layers and the feedback partitions of
//! `tower-ratelimit-http` still hold a permit while they wait (see their docs).
//!
//! Giving a readiness back loses what the inner service took to become ready: with
//! two wait-mode rate layers stacked, a pause of the outer one costs the inner one a
//! unit for each request that was waiting in the outer one's line when it began. Put
//! outside the limiter whose pauses are rarer, or whose units are cheaper.

mod future;
mod layer;
mod limiter;
mod service;

pub use future::ResponseFuture;
pub use layer::ConcurrencyLimitLayer;
pub use limiter::{ConcurrencyLimiter, ConcurrencyPermit};
pub use service::ConcurrencyLimit;
