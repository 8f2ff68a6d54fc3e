//! `AdaptiveRateLimitLayer`: close the loop between responses and a shared limiter.
//!
//! ```
//! use std::time::Duration;
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//! use tower_ratelimit_adaptive::layer::classify;
//! use tower_ratelimit_adaptive::AdaptiveRateLimitLayer;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), tower_ratelimit_core::BoxError> {
//! let layer = AdaptiveRateLimitLayer::new(classify::by_result);
//! let mut svc = ServiceBuilder::new()
//!     .layer(layer.clone())
//!     .service(service_fn(|n: u32| async move { Ok::<_, std::io::Error>(n * 2) }));
//! assert_eq!(svc.ready().await?.call(21).await?, 42);
//! // The partition's controller now drives the limiter.
//! assert!(layer.rate(&()).unwrap() > 0.0);
//! # Ok(())
//! # }
//! ```
//!
//! Each request is assigned a partition (one by default; see
//! [`AdaptiveRateLimitLayer::partition_by`], per host or API key). With
//! [`AdaptiveRateLimitLayer::learn_server_partitions`], keys whose responses name the
//! same server partition (the `pk` of the IETF RateLimit headers, read by the `http`
//! classifier into [`Hints::partition`](crate::Hints::partition)) then share one. A partition owns one
//! [`Controller`](crate::controller::Controller), one core
//! [`RateLimiter`](tower_ratelimit_core::RateLimiter) that every clone of the service
//! shares, and optionally a
//! [`ConcurrencyLimiter`](tower_ratelimit_core::concurrency::ConcurrencyLimiter). A
//! request takes a concurrency permit (when managed), then waits its turn in the rate
//! limiter (FIFO, honouring pauses), then asks the controller's client-side throttle,
//! then runs. Its result is classified into an [`Outcome`](crate::Outcome) with the
//! measured latency; the controller observes it, and the layer applies the new rate
//! with `set_quota` (which wakes the waiters it affects), the new cap with
//! `set_limit`, and a Retry-After as a pause of the whole partition.
//!
//! The wait happens in `call`, because the partition depends on the request; put a
//! concurrency limit or a buffer in front to bound how many requests wait.

mod builder;
pub mod classify;
mod partition;
mod service;

pub use builder::AdaptiveRateLimitLayer;
pub use partition::{Partition, PartitionFn, SinglePartition};
pub use service::{AdaptiveRateLimit, LocallyRejected};
