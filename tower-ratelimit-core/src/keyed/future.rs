//! The response future of the keyed service: waits for the store's decision, then (in
//! wait mode) for the reserved slot, then for the inner service.
//!
//! ```
//! use tower::{Service, ServiceExt};
//! use tower_ratelimit_core::error::{BoxError, NotReady};
//! use tower_ratelimit_core::keyed::KeyedRateLimitLayer;
//! use tower_ratelimit_core::Quota;
//! use tower_layer::Layer;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), BoxError> {
//! let mut service = KeyedRateLimitLayer::new(Quota::per_second(1)?, |n: &u8| *n)
//!     .layer(tower::service_fn(|n: u8| async move { Ok::<_, BoxError>(n) }));
//! // Calling without readiness is a typed error, never a panic.
//! let err = service.call(1).await.unwrap_err();
//! assert!(err.is::<NotReady>());
//! assert_eq!(service.ready().await?.call(1).await?, 1);
//! # Ok(()) }
//! ```

use super::layer::Mode;
use super::limiter::{KeySlot, KeyedRateLimiter};
use crate::error::{BoxError, RateLimited, WaitTooLong};
use crate::limiter::booked_slot::BookedSlot;
use crate::quota::Quota;
use crate::store::{Decision, RateStore, VacatedSlot};
use pin_project_lite::pin_project;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::time::Instant;
use tower_service::Service;

/// A wait-mode request's booking: what its slot follows while it sleeps, and what
/// the store is told if the request gives the slot up.
pub(super) struct Booking<K, St> {
    pub(super) key: K,
    pub(super) limiter: KeyedRateLimiter<K, St>,
    /// The quota and change count the slot was booked under
    /// ([`booked_under`](crate::limiter::booked_slot::booked_under)).
    pub(super) booked: (Quota, u64),
    pub(super) cost: u64,
    /// When the request asked for its slot (`call`): an in-memory store books then,
    /// a remote one soon after, so a slot is never dated later than its booking.
    pub(super) booked_at: Instant,
}

pin_project! {
    /// The response future of [`super::KeyedRateLimit`].
    pub struct ResponseFuture<S, Req, K, St>
    where
        S: Service<Req>,
        St: RateStore<K>,
    {
        #[pin]
        state: State<S, Req, St::Future, S::Future>,
        // Wait mode: the key, its limiter and the quota the slot was booked under
        // (read in `call`, where an in-memory store decides), to follow quota
        // changes while the request sleeps until its slot.
        booking: Option<Booking<K, St>>,
    }
    impl<S, Req, K, St> PinnedDrop for ResponseFuture<S, Req, K, St>
    where
        S: Service<Req>,
        St: RateStore<K>,
    {
        // A request dropped while it sleeps until its slot (a caller's timeout) leaves
        // the slot to the key's next request, which would otherwise book a later one
        // while this one goes unused.
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let (StateProj::Waiting { slot, .. }, Some(booking)) =
                (this.state.project(), this.booking.as_ref())
            {
                let (quota, generation) = booking.booked;
                booking.limiter.store().vacate(
                    &booking.key,
                    VacatedSlot {
                        at: slot.deadline(),
                        cost: booking.cost,
                        quota,
                        generation,
                        booked_at: booking.booked_at,
                    },
                );
            }
        }
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, Req, D, F> {
        Failed { error: Option<BoxError> },
        Deciding {
            #[pin]
            decision: D,
            inner: Option<S>,
            req: Option<Req>,
            mode: Mode,
        },
        Waiting {
            slot: BookedSlot,
            inner: Option<S>,
            req: Option<Req>,
        },
        Calling {
            #[pin]
            future: F,
        },
    }
}

impl<S: Service<Req>, Req, K, St: RateStore<K>> ResponseFuture<S, Req, K, St> {
    pub(super) fn failed(error: BoxError) -> Self {
        ResponseFuture {
            state: State::Failed { error: Some(error) },
            booking: None,
        }
    }

    pub(super) fn calling(future: S::Future) -> Self {
        ResponseFuture {
            state: State::Calling { future },
            booking: None,
        }
    }

    /// `booking`: in wait mode, the request's key and limiter.
    pub(super) fn deciding(
        decision: St::Future,
        inner: S,
        req: Req,
        mode: Mode,
        booking: Option<Booking<K, St>>,
    ) -> Self {
        ResponseFuture {
            state: State::Deciding {
                decision,
                inner: Some(inner),
                req: Some(req),
                mode,
            },
            booking,
        }
    }
}

impl<S, Req, K, St> Future for ResponseFuture<S, Req, K, St>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    St: RateStore<K>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut state = this.state;
        let booking = this.booking;
        loop {
            match state.as_mut().project() {
                StateProj::Failed { error } => {
                    let error = error
                        .take()
                        .unwrap_or_else(|| "polled after completion".into());
                    return Poll::Ready(Err(error));
                }
                StateProj::Deciding {
                    decision,
                    inner,
                    req,
                    mode,
                } => {
                    let next = match ready!(decision.poll(cx)) {
                        Err(e) => State::Failed {
                            error: Some(e.into_box()),
                        },
                        Ok(Decision::Denied {
                            retry_after,
                            snapshot,
                        }) => State::Failed {
                            error: Some(match *mode {
                                Mode::Wait { max_wait } if retry_after > max_wait => WaitTooLong {
                                    wait: retry_after,
                                    max_wait,
                                }
                                .into(),
                                // Refused within the caller's patience: the algorithm
                                // books only so far ahead (a sliding log, one period).
                                Mode::Reject | Mode::Wait { .. } => {
                                    RateLimited::new(retry_after, snapshot).into()
                                }
                            }),
                        },
                        Ok(Decision::Allowed { wait, .. }) if !wait.is_zero() => {
                            let slot = match booking.as_ref() {
                                Some(booking) => booking.limiter.booked_slot(wait, booking.booked),
                                None => BookedSlot::fixed(wait),
                            };
                            State::Waiting {
                                slot,
                                inner: inner.take(),
                                req: req.take(),
                            }
                        }
                        Ok(Decision::Allowed { .. }) => call(inner, req),
                    };
                    state.set(next);
                }
                StateProj::Waiting {
                    slot, inner, req, ..
                } => {
                    match booking.as_ref() {
                        Some(Booking { key, limiter, .. }) => {
                            ready!(slot.poll(cx, &KeySlot { key, limiter }));
                        }
                        None => ready!(slot.poll_unmoved(cx)),
                    }
                    let next = call(inner, req);
                    state.set(next);
                }
                StateProj::Calling { future } => {
                    return future.poll(cx).map_err(Into::into);
                }
            }
        }
    }
}

/// Calls the inner service that was ready when the request came in.
fn call<S: Service<Req>, Req, D>(
    inner: &mut Option<S>,
    req: &mut Option<Req>,
) -> State<S, Req, D, S::Future> {
    match (inner.take(), req.take()) {
        (Some(mut inner), Some(req)) => State::Calling {
            future: inner.call(req),
        },
        _ => State::Failed {
            error: Some("polled after completion".into()),
        },
    }
}

impl<S: Service<Req>, Req, K, St: RateStore<K>> fmt::Debug for ResponseFuture<S, Req, K, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
