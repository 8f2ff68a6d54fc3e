//! [`FeedbackService`]: the service made by [`FeedbackLayer`](super::FeedbackLayer).

use super::classify::Classify;
use super::future::ResponseFuture;
use super::steer::Steer;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_ratelimit_core::error::BoxError;
use tower_ratelimit_core::RateLimiter;
use tower_service::Service;

/// Observes responses and steers the shared limiter. Clones share the limiter.
#[derive(Debug)]
pub struct FeedbackService<S, C, St> {
    inner: S,
    limiter: RateLimiter<St>,
    steer: Arc<Steer<C>>,
}

impl<S: Clone, C, St> Clone for FeedbackService<S, C, St> {
    fn clone(&self) -> Self {
        FeedbackService {
            inner: self.inner.clone(),
            limiter: self.limiter.clone(),
            steer: Arc::clone(&self.steer),
        }
    }
}

impl<S, C, St> FeedbackService<S, C, St> {
    pub(crate) fn new(inner: S, limiter: RateLimiter<St>, steer: Arc<Steer<C>>) -> Self {
        FeedbackService {
            inner,
            limiter,
            steer,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The limiter this service steers.
    pub fn limiter(&self) -> &RateLimiter<St> {
        &self.limiter
    }
}

impl<S, C, St, ReqBody, ResBody> Service<http::Request<ReqBody>> for FeedbackService<S, C, St>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
    C: Classify,
    St: tower_ratelimit_core::store::RateStore,
{
    type Response = http::Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C, St>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        ResponseFuture::new(
            self.inner.call(request),
            self.limiter.clone(),
            Arc::clone(&self.steer),
        )
    }
}
