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
    /// Wait mode charges at least one unit per request: a cost of 0 still takes the
    /// unit `poll_ready` waited for, and so do a request refused in `call` and a ready
    /// service dropped without a call. Giving that unit back later could admit more
    /// than the quota, since its slot may have passed and been counted by others.
    /// For the same reason a response future dropped while it waits for the rest of
    /// its cost (a caller's timeout) keeps the units it booked: later requests may
    /// already be booked behind them. Put a timeout around a weighted request only
    /// where giving up also gives up its cost.
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
