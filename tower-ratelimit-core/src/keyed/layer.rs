//! `KeyedRateLimitLayer`: a rate limit per key derived from each request.
//!
//! ```
//! use std::time::Duration;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_ratelimit_core::error::{BoxError, RateLimited};
//! use tower_ratelimit_core::keyed::KeyedRateLimitLayer;
//! use tower_ratelimit_core::Quota;
//!
//! struct Request { client: u32 }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), BoxError> {
//! // A server: 2 requests per second per client, refused beyond.
//! let layer = KeyedRateLimitLayer::new(Quota::per_second(2)?, |req: &Request| req.client).reject();
//! let mut service = ServiceBuilder::new()
//!     .layer(layer)
//!     .service_fn(|req: Request| async move { Ok::<_, BoxError>(req.client) });
//!
//! for _ in 0..2 {
//!     service.ready().await?.call(Request { client: 1 }).await?;
//! }
//! let denied = service.ready().await?.call(Request { client: 1 }).await.unwrap_err();
//! let denied = denied.downcast_ref::<RateLimited>().expect("a rate-limit denial");
//! assert_eq!(denied.retry_after(), Duration::from_millis(500));
//! // Another client has its own bucket.
//! assert_eq!(service.ready().await?.call(Request { client: 2 }).await?, 2);
//! # Ok(()) }
//! ```

use super::key::UnitCost;
use super::limiter::KeyedRateLimiter;
use super::service::KeyedRateLimit;
use super::store::KeyedMemoryStore;
use super::KeyExtractor;
use crate::quota::Quota;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;
use tower_layer::Layer;

/// Whether a request over its key's limit waits or is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Reserve the next slot and wait for it in the response future, unless it is
    /// more than `max_wait` away.
    Wait { max_wait: Duration },
    /// Decide in `call`; a denial is a [`crate::error::RateLimited`] error.
    Reject,
}

/// Applies a [`KeyedRateLimiter`] to a service: each request's key comes from an
/// extractor (a closure `Fn(&Req) -> K` or a [`KeyExtractor`]), its cost from
/// [`KeyedRateLimitLayer::cost`] (1 by default).
///
/// * **Wait mode** (the default, [`KeyedRateLimitLayer::max_wait`]): the key is known
///   only in `call`, so the request reserves its key's next slot there and its
///   response future sleeps until the slot before calling the inner service. The
///   inner service's readiness (a concurrency permit, say) is taken in `poll_ready`
///   and held during that sleep. **What the caller must know**: `poll_ready` does not
///   hold requests back, so waiting requests pile up as futures; put a concurrency
///   limit (or a load-shed layer) in front to bound how many wait at once, and set a
///   `max_wait` so that a hot key is refused ([`crate::error::WaitTooLong`]) instead
///   of queueing without end. A request dropped while it sleeps (a caller's timeout)
///   leaves its slot to the key's next request, which starts there instead of booking
///   a later one (in a [`KeyedMemoryStore`], and in `tower-ratelimit-redis`'s store for
///   the requests of its own process; other remote stores leave it unused): a line of
///   requests that time out before their slots does not take the key's rate down with
///   it.
///   Holding the readiness through the sleep is deliberate: it keeps backpressure (an
///   inner concurrency limit bounds how many requests wait) and keeps every start within
///   its key's quota (a request never queues for capacity after its slot came, which
///   would start late requests in a burst). The price: with a concurrency limit *inside*
///   this layer, one hot key's sleepers can hold every permit and delay the other keys.
///   Where many keys share a small pool, use reject mode, or a `max_wait` of a few slots.
///   With a [`SlidingLog`](crate::algorithm::SlidingLog), whose log grows with every
///   booking, a request that would wait more than one period is refused with
///   [`crate::error::RateLimited`] whatever the `max_wait` (see
///   [`Algorithm::booking_horizon`](crate::algorithm::Algorithm::booking_horizon)).
///   A quota change ([`KeyedRateLimiter::set_quota`](super::KeyedRateLimiter::set_quota))
///   moves the slots of the requests already sleeping as it moves their key's debt
///   (GCRA, the leaky bucket): they keep their order and start at the new spacing. The
///   window algorithms keep the units booked in their windows, so there the slots keep
///   their instants, and after a raise a later request may start before them.
/// * **Reject mode** ([`KeyedRateLimitLayer::reject`]): the decision is taken in
///   `call`; a denied request fails with [`crate::error::RateLimited`] (boxed) carrying
///   the retry-after and the bucket's snapshot, and the inner service is not called.
///   `poll_ready` is still the inner service's, which keeps backpressure for a client
///   driving the layer with `call_all`; so behind a concurrency limit *inside* this
///   layer, a request the limit will refuse first waits for a permit. To shed load at
///   once, put the concurrency limit outside (a refused request then holds a permit
///   for no time at all), or on a server use `tower-ratelimit-http`'s
///   `HttpRateLimitLayer`, which decides before it waits for its inner service.
///
/// In both modes a cost above what the key's quota can ever admit fails at once with
/// [`crate::error::CostTooLarge`], and a full store that refuses new keys fails with
/// [`crate::error::StoreError::TooManyKeys`]. The inner service must be `Clone`, as
/// under [`RateLimitLayer`](crate::RateLimitLayer) (see the [`rate`](crate::rate)
/// module's docs for a service that is not). Services are `Clone` and clones share
/// one limiter.
pub struct KeyedRateLimitLayer<K, X, C = UnitCost, St = KeyedMemoryStore<K>> {
    limiter: KeyedRateLimiter<K, St>,
    extractor: Arc<X>,
    cost: Arc<C>,
    mode: Mode,
}

impl<K, X> KeyedRateLimitLayer<K, X>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    /// A GCRA bucket per key with `quota`, in memory, keys from `extractor`; wait mode
    /// without a maximum wait.
    pub fn new<Req>(quota: Quota, extractor: X) -> Self
    where
        X: KeyExtractor<Req, Key = K>,
    {
        KeyedRateLimitLayer::with_limiter(KeyedRateLimiter::new(quota), extractor)
    }
}

impl<K, X, St> KeyedRateLimitLayer<K, X, UnitCost, St> {
    /// A layer over an existing limiter (any store and algorithm), shared with whoever
    /// else holds it; keys from `extractor`; wait mode without a maximum wait.
    pub fn with_limiter<Req>(limiter: KeyedRateLimiter<K, St>, extractor: X) -> Self
    where
        X: KeyExtractor<Req, Key = K>,
    {
        KeyedRateLimitLayer {
            limiter,
            extractor: Arc::new(extractor),
            cost: Arc::new(UnitCost),
            mode: Mode::Wait {
                max_wait: Duration::MAX,
            },
        }
    }
}

impl<K, X, C, St> KeyedRateLimitLayer<K, X, C, St> {
    /// Reject mode: a request over its key's limit fails at once with
    /// [`crate::error::RateLimited`].
    pub fn reject(mut self) -> Self {
        self.mode = Mode::Reject;
        self
    }

    /// Wait mode, refusing with [`crate::error::WaitTooLong`] a request whose slot is
    /// more than `max_wait` away (nothing is taken from its bucket then).
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.mode = Mode::Wait { max_wait };
        self
    }

    /// Charges each request `cost(&req)` units (a closure `Fn(&Req) -> u64` or a
    /// [`super::RequestCost`]).
    pub fn cost<C2>(self, cost: C2) -> KeyedRateLimitLayer<K, X, C2, St> {
        KeyedRateLimitLayer {
            limiter: self.limiter,
            extractor: self.extractor,
            cost: Arc::new(cost),
            mode: self.mode,
        }
    }

    /// The shared limiter (to read snapshots, change the quota, remove keys).
    pub fn limiter(&self) -> &KeyedRateLimiter<K, St> {
        &self.limiter
    }
}

impl<K, X, C, St> Clone for KeyedRateLimitLayer<K, X, C, St> {
    fn clone(&self) -> Self {
        KeyedRateLimitLayer {
            limiter: self.limiter.clone(),
            extractor: Arc::clone(&self.extractor),
            cost: Arc::clone(&self.cost),
            mode: self.mode,
        }
    }
}

impl<S, K, X, C, St> Layer<S> for KeyedRateLimitLayer<K, X, C, St> {
    type Service = KeyedRateLimit<S, K, X, C, St>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyedRateLimit::new(
            inner,
            self.limiter.clone(),
            Arc::clone(&self.extractor),
            Arc::clone(&self.cost),
            self.mode,
        )
    }
}

impl<K, X, C, St> fmt::Debug for KeyedRateLimitLayer<K, X, C, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimitLayer")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}
