use super::{Mode, RateLimit, UnitCost};
use crate::algorithm::Gcra;
use crate::limiter::RateLimiter;
use crate::quota::Quota;
use crate::store::{MemoryStore, RateStore};
use tower_layer::Layer;

/// Applies a shared rate limit to services. See the [module docs](super).
///
/// Every service this layer makes shares its one [`RateLimiter`].
#[derive(Debug)]
pub struct RateLimitLayer<St = MemoryStore<Gcra>, C = UnitCost> {
    limiter: RateLimiter<St>,
    mode: Mode,
    cost: C,
}

impl<St, C: Clone> Clone for RateLimitLayer<St, C> {
    fn clone(&self) -> Self {
        RateLimitLayer {
            limiter: self.limiter.clone(),
            mode: self.mode,
            cost: self.cost.clone(),
        }
    }
}

impl RateLimitLayer {
    /// A wait-mode GCRA limit with a new limiter.
    pub fn new(quota: Quota) -> Self {
        RateLimitLayer::with_limiter(RateLimiter::new(quota))
    }
}

impl<St> RateLimitLayer<St> {
    /// A wait-mode limit over an existing (shared) limiter.
    pub fn with_limiter(limiter: RateLimiter<St>) -> Self {
        RateLimitLayer {
            limiter,
            mode: Mode::Wait,
            cost: UnitCost,
        }
    }
}

impl<St, C> RateLimitLayer<St, C> {
    /// Denied requests fail at once with [`crate::error::RateLimited`].
    pub fn reject(self) -> Self {
        self.mode(Mode::Reject)
    }

    /// Requests wait for their turn in `poll_ready` (the default).
    pub fn wait(self) -> Self {
        self.mode(Mode::Wait)
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Charges each request `cost(&request)` units.
    ///
    /// In reject mode the whole cost is decided in `call`. In wait mode `poll_ready`
    /// waits for one unit (it cannot see the request) and `call` reserves the rest:
    /// the response future holds the request until those units fall due, then calls
    /// the inner service. A heavy request thus waits for its own cost instead of
    /// starting at once and leaving the debt to later requests, so weighted requests
    /// start at the quota's rate (ten ready clones of cost 10 at 10/s start one per
    /// second, not all at once). A cost above the burst fails at once.
    ///
    /// The unit `poll_ready` took goes back to the store (see [`RateStore::refund`])
    /// when the request costs 0, when `call` refuses it for a cost above the burst, and
    /// when a ready service is dropped without a call. In-memory stores take it back;
    /// remote stores keep it, which only ever admits less.
    pub fn cost<C2>(self, cost: C2) -> RateLimitLayer<St, C2> {
        RateLimitLayer {
            limiter: self.limiter,
            mode: self.mode,
            cost,
        }
    }

    /// The shared limiter.
    pub fn limiter(&self) -> &RateLimiter<St> {
        &self.limiter
    }
}

impl<S, St: RateStore, C: Clone> Layer<S> for RateLimitLayer<St, C> {
    type Service = RateLimit<S, St, C>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(inner, self.limiter.clone(), self.mode, self.cost.clone())
    }
}
