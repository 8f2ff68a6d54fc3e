//! [`ServiceBuilderExt`]: the layers of this crate as `ServiceBuilder` methods.
//!
//! ```
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use tower_ratelimit_core::{Quota, ServiceBuilderExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), tower_ratelimit_core::error::BoxError> {
//! // The client stack: at most 100 requests start per second, at most 8 in flight.
//! let svc = ServiceBuilder::new()
//!     .limit_rate(Quota::per_second(100)?)
//!     .limit_concurrency(8)
//!     .service(service_fn(|n: u32| async move { Ok::<_, std::convert::Infallible>(n) }));
//! assert_eq!(svc.oneshot(1).await?, 1);
//! # Ok(()) }
//! ```

use crate::concurrency::{ConcurrencyLimitLayer, ConcurrencyLimiter};
use crate::limiter::RateLimiter;
use crate::quota::Quota;
use crate::rate::RateLimitLayer;
use tower::layer::util::Stack;
use tower::ServiceBuilder;

mod sealed {
    pub trait Sealed {}
    impl<L> Sealed for tower::ServiceBuilder<L> {}
}

/// Adds this crate's layers to [`tower::ServiceBuilder`].
///
/// The names differ from `ServiceBuilder`'s own `rate_limit` and `concurrency_limit`
/// (tower's layers, which neither share state between clones nor wait in order).
/// The order of `limit_rate` and `limit_concurrency` does not matter: the rate layer
/// always waits for its inner service's readiness first, so the rate is measured where
/// requests actually start.
pub trait ServiceBuilderExt<L>: sealed::Sealed + Sized {
    /// Waits for a GCRA slot in `poll_ready` (clients, bulk jobs).
    fn limit_rate(self, quota: Quota) -> ServiceBuilder<Stack<RateLimitLayer, L>>;

    /// Fails a request at once with [`crate::error::RateLimited`] when over the quota
    /// (servers).
    fn limit_rate_or_reject(self, quota: Quota) -> ServiceBuilder<Stack<RateLimitLayer, L>>;

    /// Waits on an existing, shared limiter.
    fn limit_rate_with<St>(
        self,
        limiter: RateLimiter<St>,
    ) -> ServiceBuilder<Stack<RateLimitLayer<St>, L>>;

    /// At most `limit` requests in flight, shared by every clone.
    fn limit_concurrency(self, limit: usize) -> ServiceBuilder<Stack<ConcurrencyLimitLayer, L>>;

    /// Shares an existing concurrency limiter.
    fn limit_concurrency_with(
        self,
        limiter: ConcurrencyLimiter,
    ) -> ServiceBuilder<Stack<ConcurrencyLimitLayer, L>>;
}

impl<L> ServiceBuilderExt<L> for ServiceBuilder<L> {
    fn limit_rate(self, quota: Quota) -> ServiceBuilder<Stack<RateLimitLayer, L>> {
        self.layer(RateLimitLayer::new(quota))
    }

    fn limit_rate_or_reject(self, quota: Quota) -> ServiceBuilder<Stack<RateLimitLayer, L>> {
        self.layer(RateLimitLayer::new(quota).reject())
    }

    fn limit_rate_with<St>(
        self,
        limiter: RateLimiter<St>,
    ) -> ServiceBuilder<Stack<RateLimitLayer<St>, L>> {
        self.layer(RateLimitLayer::with_limiter(limiter))
    }

    fn limit_concurrency(self, limit: usize) -> ServiceBuilder<Stack<ConcurrencyLimitLayer, L>> {
        self.layer(ConcurrencyLimitLayer::new(limit))
    }

    fn limit_concurrency_with(
        self,
        limiter: ConcurrencyLimiter,
    ) -> ServiceBuilder<Stack<ConcurrencyLimitLayer, L>> {
        self.layer(ConcurrencyLimitLayer::with_limiter(limiter))
    }
}
