//! The keyed rate-limit service: derives the key and cost in `call` and asks the
//! store there.
//!
//! ```
//! use std::time::Duration;
//! use tower::{Service, ServiceExt};
//! use tower_ratelimit_core::error::BoxError;
//! use tower_ratelimit_core::keyed::{KeyedRateLimit, KeyedRateLimitLayer};
//! use tower_ratelimit_core::Quota;
//! use tower_layer::Layer;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), BoxError> {
//! // Wait mode, weighted: a tenant may move 1000 rows a second.
//! struct Export { tenant: u32, rows: u64 }
//! let layer = KeyedRateLimitLayer::new(Quota::per_second(1000)?, |e: &Export| e.tenant)
//!     .cost(|e: &Export| e.rows)
//!     .max_wait(Duration::from_secs(10));
//! let mut service: KeyedRateLimit<_, _, _, _, _> =
//!     layer.layer(tower::service_fn(|e: Export| async move { Ok::<_, BoxError>(e.rows) }));
//!
//! let start = tokio::time::Instant::now();
//! service.ready().await?.call(Export { tenant: 7, rows: 1000 }).await?; // the whole burst
//! service.ready().await?.call(Export { tenant: 7, rows: 500 }).await?; // waits half a second
//! assert_eq!(start.elapsed(), Duration::from_millis(500));
//! # Ok(()) }
//! ```

use super::future::{Booking, ResponseFuture};
use super::key::{KeyExtractor, RequestCost};
use super::layer::Mode;
use super::limiter::KeyedRateLimiter;
use crate::error::{BoxError, NotReady, RateLimited};
use crate::limiter::booked_slot::booked_under;
use crate::store::{Decision, RateStore};
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_service::Service;

/// A service limited per key; built by [`super::KeyedRateLimitLayer`].
pub struct KeyedRateLimit<S, K, X, C, St> {
    inner: S,
    limiter: KeyedRateLimiter<K, St>,
    extractor: Arc<X>,
    cost: Arc<C>,
    mode: Mode,
    /// Whether `inner` said it was ready and that readiness is not yet used.
    ready: bool,
}

impl<S, K, X, C, St> KeyedRateLimit<S, K, X, C, St> {
    pub(super) fn new(
        inner: S,
        limiter: KeyedRateLimiter<K, St>,
        extractor: Arc<X>,
        cost: Arc<C>,
        mode: Mode,
    ) -> Self {
        KeyedRateLimit {
            inner,
            limiter,
            extractor,
            cost,
            mode,
            ready: false,
        }
    }

    /// The shared limiter.
    pub fn limiter(&self) -> &KeyedRateLimiter<K, St> {
        &self.limiter
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming the wrapper.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, K, X, C, St> Clone for KeyedRateLimit<S, K, X, C, St> {
    /// A clone shares the limiter; it starts not ready, as its inner clone has not
    /// been polled.
    fn clone(&self) -> Self {
        KeyedRateLimit {
            inner: self.inner.clone(),
            limiter: self.limiter.clone(),
            extractor: Arc::clone(&self.extractor),
            cost: Arc::clone(&self.cost),
            mode: self.mode,
            ready: false,
        }
    }
}

impl<S, Req, K, X, C, St> Service<Req> for KeyedRateLimit<S, K, X, C, St>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    X: KeyExtractor<Req, Key = K>,
    C: RequestCost<Req>,
    St: RateStore<K>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, K, St>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.ready {
            return Poll::Ready(Ok(()));
        }
        match self.inner.poll_ready(cx) {
            Poll::Ready(Ok(())) => {
                self.ready = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn call(&mut self, req: Req) -> Self::Future {
        if !std::mem::take(&mut self.ready) {
            return ResponseFuture::failed(NotReady.into());
        }
        let key = match self.extractor.extract(&req) {
            Ok(key) => key,
            Err(e) => return ResponseFuture::failed(e),
        };
        let cost = self.cost.cost(&req);
        // Reject mode with an in-memory store: decided here, and the inner service,
        // ready since `poll_ready`, is called at once without a clone.
        if let Mode::Reject = self.mode {
            if let Some(decided) = self.limiter.store().try_check_now(&key, cost) {
                return match decided {
                    Ok(Decision::Allowed { .. }) => ResponseFuture::calling(self.inner.call(req)),
                    Ok(Decision::Denied {
                        retry_after,
                        snapshot,
                    }) => ResponseFuture::failed(RateLimited::new(retry_after, snapshot).into()),
                    Err(e) => ResponseFuture::failed(e.into_box()),
                };
            }
        }
        // Otherwise (wait mode, or a remote store) the future decides: an in-memory
        // store's is already resolved, a remote store's runs when first polled.
        let (decision, booking) = match self.mode {
            Mode::Reject => (self.limiter.check(&key, cost), None),
            Mode::Wait { max_wait } => {
                let decision = self.limiter.reserve(&key, cost, max_wait);
                let booked = booked_under(self.limiter.store(), &key);
                let booking = Booking {
                    key,
                    limiter: self.limiter.clone(),
                    booked,
                    cost,
                    booked_at: tokio::time::Instant::now(),
                };
                (decision, Some(booking))
            }
        };
        // The ready inner service goes with the future, which calls it once the
        // decision (and, in wait mode, the slot) allows; `self` keeps a fresh clone
        // that must be polled ready before the next call, as Tower requires.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::deciding(decision, inner, req, self.mode, booking)
    }
}

impl<S: fmt::Debug, K, X, C, St: fmt::Debug> fmt::Debug for KeyedRateLimit<S, K, X, C, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimit")
            .field("inner", &self.inner)
            .field("limiter", &self.limiter)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}
