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
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        // The permit is released as soon as the inner future completes, not when the
        // response future is dropped later.
        Running { #[pin] inner: F, permit: Option<ConcurrencyPermit> },
        Failed { error: Option<BoxError> },
    }
}

impl<F> ResponseFuture<F> {
    #[inline]
    pub(crate) fn new(inner: F, permit: ConcurrencyPermit) -> Self {
        ResponseFuture {
            state: State::Running {
                inner,
                permit: Some(permit),
            },
        }
    }

    pub(crate) fn failed(error: BoxError) -> Self {
        ResponseFuture {
            state: State::Failed { error: Some(error) },
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Running { inner, permit } => {
                let output = std::task::ready!(inner.poll(cx));
                permit.take();
                Poll::Ready(output.map_err(Into::into))
            }
            StateProj::Failed { error } => Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| "response future polled after completion".into()))),
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field(
                "holds_permit",
                &matches!(
                    &self.state,
                    State::Running {
                        permit: Some(_),
                        ..
                    }
                ),
            )
            .finish()
    }
}
