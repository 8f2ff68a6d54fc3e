use crate::error::{BoxError, RateLimited};
use crate::limiter::RateLimiter;
use crate::store::{Decision, RateStore};
use pin_project_lite::pin_project;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::time::{sleep, Sleep};
use tower_service::Service;

pin_project! {
    /// The response future of [`RateLimit`](super::RateLimit).
    pub struct ResponseFuture<F, S, Req, St: RateStore> {
        #[pin]
        state: State<F, S, Req, St>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, S, Req, St: RateStore> {
        Called { #[pin] future: F },
        // A remote store is still deciding; the ready inner service waits here.
        Deciding {
            decision: St::Future,
            reject: bool,
            call: Option<(S, Req)>,
        },
        // Granted just before a pause began: held until it ends.
        Paused {
            // Boxed: a pause is rare, and an unboxed timer would make every
            // response future several times larger.
            sleep: Pin<Box<Sleep>>,
            limiter: RateLimiter<St>,
            call: Option<(S, Req)>,
            cost: u64,
        },
        Failed { error: Option<BoxError> },
    }
}

impl<F, S, Req, St: RateStore> ResponseFuture<F, S, Req, St> {
    pub(crate) fn called(future: F) -> Self {
        ResponseFuture {
            state: State::Called { future },
        }
    }

    pub(crate) fn failed(error: BoxError) -> Self {
        ResponseFuture {
            state: State::Failed { error: Some(error) },
        }
    }

    pub(crate) fn deciding(decision: St::Future, reject: bool, service: S, request: Req) -> Self {
        ResponseFuture {
            state: State::Deciding {
                decision,
                reject,
                call: Some((service, request)),
            },
        }
    }

    pub(crate) fn paused(
        wait: Duration,
        limiter: RateLimiter<St>,
        service: S,
        request: Req,
        cost: u64,
    ) -> Self {
        ResponseFuture {
            state: State::Paused {
                sleep: Box::pin(sleep(wait)),
                limiter,
                call: Some((service, request)),
                cost,
            },
        }
    }
}

impl<F, S, Req, St, T, E> Future for ResponseFuture<F, S, Req, St>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    S: Service<Req, Future = F>,
    St: RateStore,
{
    type Output = Result<T, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            let next = match this.state.as_mut().project() {
                StateProj::Called { future } => return future.poll(cx).map_err(Into::into),
                StateProj::Failed { error } => {
                    let error = error
                        .take()
                        .unwrap_or_else(|| "response future polled after completion".into());
                    return Poll::Ready(Err(error));
                }
                StateProj::Deciding {
                    decision,
                    reject,
                    call,
                } => {
                    let decided = ready!(Pin::new(decision).poll(cx));
                    match decided {
                        Ok(Decision::Denied {
                            retry_after,
                            snapshot,
                        }) if *reject => State::Failed {
                            error: Some(Box::new(RateLimited::new(retry_after, snapshot))),
                        },
                        Ok(_) => start(call),
                        Err(e) => State::Failed {
                            error: Some(e.into_box()),
                        },
                    }
                }
                StateProj::Paused {
                    sleep,
                    limiter,
                    call,
                    cost,
                } => {
                    ready!(sleep.as_mut().poll(cx));
                    // The pause may have been extended while we slept.
                    if let Some(wait) = limiter.pause_remaining() {
                        sleep.as_mut().reset(tokio::time::Instant::now() + wait);
                        continue;
                    }
                    if *cost > 1 {
                        let debt = limiter.store().reserve(&(), *cost - 1, Duration::MAX);
                        State::Deciding {
                            decision: debt,
                            reject: false,
                            call: call.take(),
                        }
                    } else {
                        start(call)
                    }
                }
            };
            this.state.set(next);
        }
    }
}

fn start<F, S, Req, St>(call: &mut Option<(S, Req)>) -> State<F, S, Req, St>
where
    S: Service<Req, Future = F>,
    St: RateStore,
{
    match call.take() {
        Some((mut service, request)) => State::Called {
            future: service.call(request),
        },
        None => State::Failed {
            error: Some("response future polled after completion".into()),
        },
    }
}

impl<F, S, Req, St: RateStore> fmt::Debug for ResponseFuture<F, S, Req, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
