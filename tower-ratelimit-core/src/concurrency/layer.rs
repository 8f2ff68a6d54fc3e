use super::{ConcurrencyLimit, ConcurrencyLimiter};
use tower_layer::Layer;

/// Caps the requests in flight. Every service this layer makes shares one
/// [`ConcurrencyLimiter`] (unlike `tower::limit::ConcurrencyLimitLayer`, which makes
/// a new semaphore per service). See the [module docs](super).
#[derive(Debug, Clone)]
pub struct ConcurrencyLimitLayer {
    limiter: ConcurrencyLimiter,
}

impl ConcurrencyLimitLayer {
    /// At most `limit` requests in flight across every service of this layer.
    pub fn new(limit: usize) -> Self {
        ConcurrencyLimitLayer::with_limiter(ConcurrencyLimiter::new(limit))
    }

    /// Shares an existing limiter.
    pub fn with_limiter(limiter: ConcurrencyLimiter) -> Self {
        ConcurrencyLimitLayer { limiter }
    }

    /// The shared limiter.
    pub fn limiter(&self) -> &ConcurrencyLimiter {
        &self.limiter
    }
}

impl<S> Layer<S> for ConcurrencyLimitLayer {
    type Service = ConcurrencyLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConcurrencyLimit::new(inner, self.limiter.clone())
    }
}
