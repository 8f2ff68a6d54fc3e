use super::ConcurrencyPermit;
use crate::error::BoxError;
use pin_project_lite::pin_project;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pin_project! {
    /// The response future of [`ConcurrencyLimit`](super::ConcurrencyLimit): holds the
    /// permit until the inner future completes or is dropped.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Option<F>,
        permit: Option<ConcurrencyPermit>,
        error: Option<BoxError>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, permit: ConcurrencyPermit) -> Self {
        ResponseFuture {
            inner: Some(inner),
            permit: Some(permit),
            error: None,
        }
    }

    pub(crate) fn failed(error: BoxError) -> Self {
        ResponseFuture {
            inner: None,
            permit: None,
            error: Some(error),
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.inner.as_pin_mut() {
            Some(inner) => {
                let output = std::task::ready!(inner.poll(cx));
                // Release as soon as the response is ready, not when the future is dropped.
                this.permit.take();
                Poll::Ready(output.map_err(Into::into))
            }
            None => Poll::Ready(Err(this
                .error
                .take()
                .unwrap_or_else(|| "response future polled after completion".into()))),
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("holds_permit", &self.permit.is_some())
            .finish()
    }
}
