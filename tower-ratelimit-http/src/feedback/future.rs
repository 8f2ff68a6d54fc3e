//! [`ResponseFuture`]: the response, observed on its way out.

use super::classify::Classify;
use super::steer::{self, Steer};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tower_ratelimit_core::error::BoxError;
use tower_ratelimit_core::store::RateStore;
use tower_ratelimit_core::RateLimiter;

pin_project! {
    /// The response future of [`FeedbackService`](super::FeedbackService): when the
    /// response arrives, it is parsed, classified, the limiter is steered, and the
    /// [`Feedback`](super::Feedback) and [`Class`](super::Class) are put in the
    /// response's extensions for the layers above (the retry policy reads them).
    pub struct ResponseFuture<F, C, St> {
        #[pin]
        inner: F,
        limiter: RateLimiter<St>,
        steer: Arc<Steer<C>>,
    }
}

impl<F, C, St> ResponseFuture<F, C, St> {
    pub(crate) fn new(inner: F, limiter: RateLimiter<St>, steer: Arc<Steer<C>>) -> Self {
        ResponseFuture {
            inner,
            limiter,
            steer,
        }
    }
}

impl<F, C, St, B, E> Future for ResponseFuture<F, C, St>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    E: Into<BoxError>,
    C: Classify,
    St: RateStore,
{
    type Output = Result<http::Response<B>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx)).map_err(Into::into)?;
        let verdict = this.steer.judge(response.status(), response.headers());
        steer::apply(this.limiter, &verdict, this.steer.adopt_policy);
        if let Some(over) = verdict.over_cap {
            return Poll::Ready(Err(Box::new(over)));
        }
        response.extensions_mut().insert(verdict.class);
        response.extensions_mut().insert(verdict.feedback);
        Poll::Ready(Ok(response))
    }
}
