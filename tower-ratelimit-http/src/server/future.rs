//! [`ResponseFuture`]: waits for the store's decision, then either calls the inner
//! service (once it is ready, if it was not) and adds the rate-limit fields to its
//! response, or answers at once.

use super::body::ResponseBody;
use super::respond::{Allowed, Outcome, Responder};
use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tower_ratelimit_core::error::StoreError;
use tower_ratelimit_core::store::Decision;
use tower_ratelimit_core::Quota;
use tower_service::Service;

pin_project! {
    /// The response future of [`super::HttpRateLimit`].
    pub struct ResponseFuture<S, D, ReqB>
    where
        S: Service<Request<ReqB>>,
    {
        #[pin]
        state: State<S, D, ReqB>,
        responder: Arc<Responder>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, D, ReqB>
    where
        S: Service<Request<ReqB>>,
    {
        Deciding {
            #[pin]
            decision: D,
            pending: Option<Pending<S, ReqB>>,
            quota: Quota,
        },
        // Allowed; the inner service was not ready when the request came.
        Readying {
            pending: Option<(S, Request<ReqB>)>,
            fields: Option<Allowed>,
        },
        Calling {
            #[pin]
            future: S::Future,
            fields: Option<Allowed>,
        },
        Answered {
            response: Option<Response<Bytes>>,
        },
    }
}

/// A request waiting for its decision, with the service to call: `ready` when it
/// was polled ready for this request.
pub(crate) struct Pending<S, ReqB> {
    pub(crate) service: S,
    pub(crate) ready: bool,
    pub(crate) request: Request<ReqB>,
}

impl<S, D, ReqB> ResponseFuture<S, D, ReqB>
where
    S: Service<Request<ReqB>>,
{
    pub(crate) fn deciding(
        decision: D,
        pending: Pending<S, ReqB>,
        quota: Quota,
        responder: Arc<Responder>,
    ) -> Self {
        ResponseFuture {
            state: State::Deciding {
                decision,
                pending: Some(pending),
                quota,
            },
            responder,
        }
    }

    /// Allowed, with a service (a clone) that has not been polled ready.
    pub(crate) fn readying(
        service: S,
        request: Request<ReqB>,
        fields: Option<Allowed>,
        responder: Arc<Responder>,
    ) -> Self {
        ResponseFuture {
            state: State::Readying {
                pending: Some((service, request)),
                fields,
            },
            responder,
        }
    }

    pub(crate) fn calling(
        future: S::Future,
        fields: Option<Allowed>,
        responder: Arc<Responder>,
    ) -> Self {
        ResponseFuture {
            state: State::Calling { future, fields },
            responder,
        }
    }

    pub(crate) fn answered(response: Response<Bytes>, responder: Arc<Responder>) -> Self {
        ResponseFuture {
            state: State::Answered {
                response: Some(response),
            },
            responder,
        }
    }
}

impl<S, D, ReqB, ResB> Future for ResponseFuture<S, D, ReqB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    D: Future<Output = Result<Decision, StoreError>>,
{
    type Output = Result<Response<ResponseBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Deciding {
                    decision,
                    pending,
                    quota,
                } => {
                    let result = ready!(decision.poll(cx));
                    let outcome = this.responder.decided(result, quota);
                    let Some(Pending {
                        mut service,
                        ready,
                        request,
                    }) = pending.take()
                    else {
                        panic!("ResponseFuture polled after completion");
                    };
                    match outcome {
                        Outcome::Proceed(fields) if ready => {
                            let future = service.call(request);
                            this.state.set(State::Calling { future, fields });
                        }
                        Outcome::Proceed(fields) => this.state.set(State::Readying {
                            pending: Some((service, request)),
                            fields,
                        }),
                        Outcome::Respond(response) => {
                            return Poll::Ready(Ok(response.map(ResponseBody::own)));
                        }
                    }
                }
                StateProj::Readying { pending, fields } => {
                    let Some((service, _)) = pending.as_mut() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    ready!(service.poll_ready(cx))?;
                    let Some((mut service, request)) = pending.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let future = service.call(request);
                    let fields = fields.take();
                    this.state.set(State::Calling { future, fields });
                }
                StateProj::Calling { future, fields } => {
                    let mut response = ready!(future.poll(cx))?;
                    if let Some(allowed) = fields.take() {
                        this.responder.add_fields(response.headers_mut(), &allowed);
                    }
                    return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                }
                StateProj::Answered { response } => {
                    let Some(response) = response.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    return Poll::Ready(Ok(response.map(ResponseBody::own)));
                }
            }
        }
    }
}
