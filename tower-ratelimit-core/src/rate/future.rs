use crate::error::{BoxError, RateLimited};
use crate::limiter::booked_slot::{booked_under, BookedSlot};
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
        // Boxed: the slow paths are rare, and holding a store future, a timer and the
        // service inline would make every response future several times larger, to
        // be moved on every request.
        Held { held: Box<Held<S, Req, St>> },
        Failed { error: Option<BoxError> },
    }
}

/// A request granted by readiness but not yet allowed to start.
enum Held<S, Req, St: RateStore> {
    /// A remote store is still deciding; the ready inner service waits here.
    Deciding {
        decision: St::Future,
        /// Set for a reservation whose wait the request must sit out.
        limiter: Option<RateLimiter<St>>,
        call: Option<(S, Req)>,
        /// The request's cost, booked again if a pause holds it once its units fall due.
        cost: u64,
    },
    /// Granted just before a pause began: held until it ends, without the inner
    /// service's readiness (a permit of a pool shared with other hosts, say), which it
    /// takes again when the pause ends. Its units are booked again then: the bucket
    /// refilled during the pause, and the requests held through it starting on top of
    /// that would exceed the quota just when the server asked for less.
    Paused {
        sleep: Pin<Box<Sleep>>,
        limiter: RateLimiter<St>,
        /// The service is a clone that has not been polled ready.
        call: Option<(S, Req)>,
        cost: u64,
        /// How many of its units the request took before the pause (one at readiness,
        /// or its whole cost if its reservation fell due), and when: what time has not
        /// refilled of them is given back where the whole cost is booked again.
        taken: u64,
        taken_at: tokio::time::Instant,
        /// Completes when the pause changes (a `resume`, say), not only at its end.
        changed: Pin<Box<tokio::sync::futures::OwnedNotified>>,
    },
    /// A cost above one unit: the rest is reserved, and the request starts when the
    /// reserved units fall due, so that a heavy request waits for its own cost rather
    /// than starting at once and making later ones pay.
    Reserved {
        slot: BookedSlot,
        limiter: RateLimiter<St>,
        call: Option<(S, Req)>,
        cost: u64,
        /// When the units were booked: a give-back after a pause must not come off
        /// a reservation made after them (see `RateStore::reserve_whole`).
        booked_at: tokio::time::Instant,
    },
}

impl<F, S, Req, St: RateStore> ResponseFuture<F, S, Req, St> {
    #[inline]
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

    pub(crate) fn deciding(decision: St::Future, service: S, request: Req) -> Self {
        ResponseFuture::held(Held::Deciding {
            decision,
            limiter: None,
            call: Some((service, request)),
            cost: 1,
        })
    }

    /// Reserving the rest of a wait-mode cost: the request starts when it falls due.
    pub(crate) fn reserving(
        reservation: St::Future,
        limiter: RateLimiter<St>,
        service: S,
        request: Req,
        cost: u64,
    ) -> Self {
        ResponseFuture::held(Held::Deciding {
            decision: reservation,
            limiter: Some(limiter),
            call: Some((service, request)),
            cost,
        })
    }

    /// Holding a request until its reserved units fall due.
    pub(crate) fn reserved(
        wait: Duration,
        limiter: RateLimiter<St>,
        service: S,
        request: Req,
        cost: u64,
    ) -> Self {
        ResponseFuture::held(Held::Reserved {
            slot: booked_slot(&limiter, wait),
            limiter,
            call: Some((service, request)),
            cost,
            booked_at: tokio::time::Instant::now(),
        })
    }

    /// `service` must not hold readiness: a clone not polled ready.
    pub(crate) fn paused(
        wait: Duration,
        limiter: RateLimiter<St>,
        service: S,
        request: Req,
        cost: u64,
        taken: u64,
        taken_at: tokio::time::Instant,
    ) -> Self {
        let changed = Box::pin(limiter.pause_changed());
        ResponseFuture::held(Held::Paused {
            sleep: Box::pin(sleep(wait)),
            limiter,
            call: Some((service, request)),
            cost,
            taken,
            taken_at,
            changed,
        })
    }

    fn held(held: Held<S, Req, St>) -> Self {
        ResponseFuture {
            state: State::Held {
                held: Box::new(held),
            },
        }
    }
}

impl<S, Req, St: RateStore> Held<S, Req, St>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
{
    /// Waits until the request may start, and hands back the service to call.
    fn poll_release(&mut self, cx: &mut Context<'_>) -> Poll<Result<(S, Req), BoxError>> {
        loop {
            match self {
                Held::Deciding {
                    decision,
                    limiter,
                    call,
                    cost,
                } => {
                    let decided = ready!(Pin::new(decision).poll(cx));
                    if let (Ok(Decision::Allowed { wait, .. }), Some(limiter)) =
                        (&decided, limiter.as_ref())
                    {
                        if !wait.is_zero() {
                            *self = Held::Reserved {
                                slot: booked_slot(limiter, *wait),
                                limiter: limiter.clone(),
                                call: call.take(),
                                cost: *cost,
                                booked_at: tokio::time::Instant::now(),
                            };
                            continue;
                        }
                    }
                    return Poll::Ready(match decided {
                        Ok(Decision::Denied {
                            retry_after,
                            snapshot,
                        }) => {
                            // In wait mode, the rest of a cost could not be booked (a
                            // store that does not book ahead): nothing starts.
                            Err(Box::new(RateLimited::new(retry_after, snapshot)))
                        }
                        Ok(_) => take_call(call),
                        Err(e) => Err(e.into_box()),
                    });
                }
                Held::Reserved {
                    slot,
                    limiter,
                    call,
                    cost,
                    booked_at,
                } => {
                    // A quota change moves the slot as it moves the bucket's debt, so
                    // that later requests do not start before this one.
                    ready!(slot.poll(cx, limiter));
                    // The units are ours, but a pause (a server's Retry-After) that
                    // began meanwhile still holds the start.
                    if let Some(wait) = limiter.pause_remaining() {
                        // The readiness goes back for the pause (a clone is not ready).
                        let call = call
                            .take()
                            .map(|(service, request)| (service.clone(), request));
                        *self = Held::Paused {
                            sleep: Box::pin(tokio::time::sleep(wait)),
                            changed: Box::pin(limiter.pause_changed()),
                            limiter: limiter.clone(),
                            call,
                            cost: *cost,
                            taken: *cost,
                            taken_at: *booked_at,
                        };
                        continue;
                    }
                    return Poll::Ready(take_call(call));
                }
                Held::Paused {
                    sleep,
                    limiter,
                    call,
                    cost,
                    taken,
                    taken_at,
                    changed,
                } => {
                    if sleep.as_mut().poll(cx).is_pending() {
                        ready!(changed.as_mut().poll(cx));
                    }
                    // Armed again before the pause is read, so no change is missed.
                    *changed = Box::pin(limiter.pause_changed());
                    if let Some(wait) = limiter.pause_remaining() {
                        // A clone polled ready since the last pause may hold a place
                        // in a pool's queue (or a permit it was handed): give it back.
                        if let Some((service, _)) = call.as_mut() {
                            *service = service.clone();
                        }
                        sleep.as_mut().reset(tokio::time::Instant::now() + wait);
                        continue;
                    }
                    // The readiness given back for the pause, taken again (a completed
                    // sleep stays ready while this waits).
                    if let Some((service, _)) = call.as_mut() {
                        if let Err(e) = ready!(service.poll_ready(cx)) {
                            return Poll::Ready(Err(e.into()));
                        }
                    }
                    // Booked whole, as in `call`: the rest booked apart would fall in the
                    // window where the request starts and the first unit in the one
                    // where readiness took it (count + 1 in the later window). What
                    // the pause refilled is not given back, so the request pays for
                    // its start after the pause like any other; after a throttle's
                    // drain nothing is: the drain's debt already holds that unit.
                    let taken = limiter.shared().still_taken(*taken, *taken_at);
                    let booking =
                        limiter
                            .store()
                            .reserve_whole(&(), taken, *taken_at, *cost, Duration::MAX);
                    *self = Held::Deciding {
                        decision: booking,
                        limiter: Some(limiter.clone()),
                        call: call.take(),
                        cost: *cost,
                    };
                }
            }
        }
    }
}

/// The sleep until units booked `wait` from now.
fn booked_slot<St: RateStore>(limiter: &RateLimiter<St>, wait: Duration) -> BookedSlot {
    BookedSlot::new(
        wait,
        booked_under(limiter.store(), &()),
        limiter.store().rescales_bookings(),
        &limiter.shared().pause_changed,
    )
}

fn take_call<S, Req>(call: &mut Option<(S, Req)>) -> Result<(S, Req), BoxError> {
    call.take()
        .ok_or_else(|| "response future polled after completion".into())
}

impl<F, S, Req, St, T, E> Future for ResponseFuture<F, S, Req, St>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    S: Service<Req, Future = F, Error = E> + Clone,
    St: RateStore,
{
    type Output = Result<T, BoxError>;

    #[inline]
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
                StateProj::Held { held } => match ready!(held.poll_release(cx)) {
                    Ok((mut service, request)) => State::Called {
                        future: service.call(request),
                    },
                    Err(error) => State::Failed { error: Some(error) },
                },
            };
            this.state.set(next);
        }
    }
}

impl<F, S, Req, St: RateStore> fmt::Debug for ResponseFuture<F, S, Req, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
