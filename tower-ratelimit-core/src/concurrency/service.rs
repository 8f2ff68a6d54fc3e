use super::future::ResponseFuture;
use super::limiter::AcquireFuture;
use super::{ConcurrencyLimiter, ConcurrencyPermit};
use crate::error::{BoxError, NotReady};
use std::fmt;
use std::task::{ready, Context, Poll};
use sync_wrapper::SyncWrapper;
use tower_service::Service;

/// A service with a shared cap on requests in flight. See the [module docs](super).
pub struct ConcurrencyLimit<S> {
    inner: S,
    limiter: ConcurrencyLimiter,
    permit: Option<ConcurrencyPermit>,
    // Only touched through `&mut self`: keeps the service `Sync` for axum.
    acquiring: SyncWrapper<Option<AcquireFuture>>,
}

impl<S> ConcurrencyLimit<S> {
    /// Caps `inner` with `limiter`.
    pub fn new(inner: S, limiter: ConcurrencyLimiter) -> Self {
        ConcurrencyLimit {
            inner,
            limiter,
            permit: None,
            acquiring: SyncWrapper::new(None),
        }
    }

    /// The shared limiter.
    pub fn limiter(&self) -> &ConcurrencyLimiter {
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

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req> Service<Req> for ConcurrencyLimit<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        while self.permit.is_none() {
            let acquiring = self.acquiring.get_mut();
            if acquiring.is_none() {
                match self.limiter.try_acquire() {
                    Some(permit) => self.permit = Some(permit),
                    None => *acquiring = Some(self.limiter.acquire_future()),
                }
            }
            if let Some(pending) = acquiring.as_mut() {
                let acquired = ready!(pending.as_mut().poll(cx));
                *acquiring = None;
                match acquired {
                    Ok(permit) => self.permit = self.limiter.wrap(permit),
                    Err(closed) => return Poll::Ready(Err(Box::new(closed))),
                }
            }
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match self.permit.take() {
            Some(permit) => ResponseFuture::new(self.inner.call(request), permit),
            None => ResponseFuture::failed(Box::new(NotReady)),
        }
    }
}

impl<S: Clone> Clone for ConcurrencyLimit<S> {
    fn clone(&self) -> Self {
        ConcurrencyLimit::new(self.inner.clone(), self.limiter.clone())
    }
}

impl<S: fmt::Debug> fmt::Debug for ConcurrencyLimit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimit")
            .field("inner", &self.inner)
            .field("limiter", &self.limiter)
            .field("has_permit", &self.permit.is_some())
            .finish()
    }
}
