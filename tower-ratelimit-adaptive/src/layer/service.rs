use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::time::Instant;
use tower_ratelimit_core::BoxError;
use tower_service::Service;

use super::builder::AdaptiveRateLimitLayer;
use super::partition::Partition;
use crate::Outcome;

/// A request failed locally by the controller's client-side throttle (Google SRE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LocallyRejected;

impl fmt::Display for LocallyRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request rejected locally by adaptive client-side throttling")
    }
}

impl std::error::Error for LocallyRejected {}

/// The service made by [`AdaptiveRateLimitLayer`].
///
/// A request keeps the inner service's readiness while it waits for its partition's
/// cap, rate or hold, which keeps backpressure and starts within each partition's
/// rate; with a concurrency limit inside this layer, a held partition's requests
/// therefore occupy permits the other partitions could use.
pub struct AdaptiveRateLimit<S, Cl, P: Partition<Req>, Req> {
    inner: S,
    layer: AdaptiveRateLimitLayer<Cl, P, Req>,
}

impl<S: Clone, Cl: Clone, P: Partition<Req>, Req> Clone for AdaptiveRateLimit<S, Cl, P, Req> {
    fn clone(&self) -> Self {
        AdaptiveRateLimit {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug, Cl, P: Partition<Req>, Req> fmt::Debug for AdaptiveRateLimit<S, Cl, P, Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveRateLimit")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, Cl, P: Partition<Req>, Req> AdaptiveRateLimit<S, Cl, P, Req> {
    /// Wraps `inner` with the layer's shared partitions.
    pub fn new(inner: S, layer: AdaptiveRateLimitLayer<Cl, P, Req>) -> Self {
        AdaptiveRateLimit { inner, layer }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// A uniform sample in `[0, 1)` for client-side throttling; a shared counter hashed
/// with SplitMix64 is enough (and keeps runs under a paused clock deterministic).
fn sample() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0x2545_F491_4F6C_DD1D);
    let mut z = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

impl<S, Cl, P, Req> Service<Req> for AdaptiveRateLimit<S, Cl, P, Req>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    S::Response: Send + 'static,
    Cl: Fn(&Result<S::Response, S::Error>) -> Outcome + Clone + Send + Sync + 'static,
    P: Partition<Req>,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        // The inner service was made ready by `poll_ready`; take that one and leave a
        // clone behind, so the ready instance is the one called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let key = self.layer.partition.key(&req);
        let shared = self.layer.shared.clone();
        let mut slot = shared.slot(&key);
        let max_hold = shared.max_hold;
        let classify = self.layer.classify.clone();
        Box::pin(async move {
            let _permit = loop {
                let permit = match &slot.concurrency {
                    Some(c) => Some(c.acquire().await),
                    None => None,
                };
                slot.limiter.acquire(1).await?;
                // A response that named a server partition may have moved the key while
                // this request waited: it then waits again where the key lives now, so
                // that the partition's holds and pace reach it.
                let now = shared.slot(&key);
                if Arc::ptr_eq(&now, &slot) {
                    break permit;
                }
                slot = now;
            };
            if !slot.admit(sample()) {
                return Err(Box::new(LocallyRejected) as BoxError);
            }
            let started = Instant::now();
            let result = inner.call(req).await;
            let outcome = classify(&result).with_latency(started.elapsed());
            // Learn first: a response that names a server partition (often a 429,
            // the first time) belongs to that partition's slot, hold and all.
            shared.learn(&key, &slot, &outcome);
            shared.slot(&key).observe(&outcome, max_hold);
            result.map_err(Into::into)
        })
    }
}
