use super::future::ResponseFuture;
use super::{Cost, Mode, UnitCost};
use crate::algorithm::{Gcra, Snapshot};
use crate::error::{BoxError, CostTooLarge, NotReady, RateLimited};
use crate::limiter::{RateLimiter, Waiter};
use crate::poll_now;
use crate::store::{Decision, MemoryStore, RateStore};
use std::fmt;
use std::task::{Context, Poll};
use std::time::Duration;
use tower_service::Service;

/// A service limited by a shared [`RateLimiter`]. Made by
/// [`RateLimitLayer`](super::RateLimitLayer); see the [module docs](super).
///
/// Clones share the limiter. In wait mode each clone holds its own place in the
/// limiter's FIFO queue while it waits.
pub struct RateLimit<S, St: RateStore = MemoryStore<Gcra>, C = UnitCost> {
    inner: S,
    limiter: RateLimiter<St>,
    mode: Mode,
    cost: C,
    waiter: Waiter<St::Future>,
    /// Set when `poll_ready` has granted a call (in wait mode: a unit is taken).
    ready: bool,
    /// When readiness took its unit (wait mode, weighted costs only): `call` gives it
    /// back as of then.
    ready_at: Option<tokio::time::Instant>,
    /// Set while a wait-mode service waits out a pause, holding nothing (see
    /// `poll_ready_slow`).
    pause_gate: bool,
}

impl<S, St: RateStore, C> RateLimit<S, St, C> {
    /// Limits `inner` with `limiter`.
    pub fn new(inner: S, limiter: RateLimiter<St>, mode: Mode, cost: C) -> Self {
        RateLimit {
            inner,
            limiter,
            mode,
            cost,
            waiter: Waiter::new(),
            ready: false,
            ready_at: None,
            pause_gate: false,
        }
    }

    /// The shared limiter.
    pub fn limiter(&self) -> &RateLimiter<St> {
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

    /// Takes the ready inner service for a response future that must call it later,
    /// leaving a clone (to be polled ready afresh) in its place.
    fn take_inner(&mut self) -> S
    where
        S: Clone,
    {
        let clone = self.inner.clone();
        std::mem::replace(&mut self.inner, clone)
    }

    /// Wait mode, when the unit does not fit at once or the limiter is paused.
    ///
    /// A request that meets a pause waits it out at the pause gate (`pause_gate`), in
    /// the queue's order, holding nothing: not the inner service's readiness (a permit
    /// of a pool shared with other limiters, say), and no unit. One that was already
    /// waiting for its slot gives the readiness back (replacing the inner service with
    /// a clone, which is not ready), and goes back to its place in line after the
    /// pause (see the `concurrency` module docs for the exception). Past the gate, as on
    /// the fast path: the inner service's readiness first, so the rate is measured
    /// where requests start, then its unit, waiting in line for it while holding that
    /// readiness.
    ///
    /// Giving readiness back loses whatever the inner service took to be ready (a unit
    /// of a rate layer inside, for a request that was waiting in line when the pause
    /// began).
    #[cold]
    fn poll_ready_slow<Req>(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>>
    where
        S: Service<Req> + Clone,
        S::Error: Into<BoxError>,
    {
        let shared = self.limiter.shared();
        loop {
            if self.pause_gate {
                std::task::ready!(self.waiter.poll_pause_end(shared, cx));
                self.pause_gate = false;
            } else if shared.pause_remaining().is_some()
                && (self.waiter.holds_no_place() || self.waiter.step_aside())
            {
                // Whatever the inner service holds or is being given (a pool's permit
                // handed to it while this request was on its way here, or kept while
                // it waited for its slot) goes back: a clone is not ready. The place in
                // line is kept.
                self.inner = self.inner.clone();
                self.pause_gate = true;
                continue;
            }
            if let Err(e) = std::task::ready!(self.inner.poll_ready(cx)) {
                return Poll::Ready(Err(e.into()));
            }
            match self.waiter.poll_acquire(shared, cx, 1) {
                Poll::Ready(granted) => {
                    granted?;
                    self.ready = true;
                    return Poll::Ready(Ok(()));
                }
                // A pause seen only now (a decision was in flight when it began).
                Poll::Pending if shared.pause_remaining().is_some() && self.waiter.step_aside() => {
                    self.inner = self.inner.clone();
                    self.pause_gate = true;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn paused_denial(&self, wait: Duration) -> RateLimited {
        let quota = self.limiter.store().quota(&());
        RateLimited::new(
            wait,
            Snapshot {
                limit: quota.burst(),
                remaining: 0,
                reset: wait,
            },
        )
    }
}

/// The unit readiness took, and when, for the store to give back what time has not
/// refilled of it. A unit-cost layer does not note when (it would cost every
/// `poll_ready` a clock read): the unit may be long refilled, so none of it is given
/// back, and a request held through a pause pays for its start again.
fn taken_by_readiness(ready_at: &mut Option<tokio::time::Instant>) -> (u64, tokio::time::Instant) {
    match ready_at.take() {
        Some(at) => (1, at),
        None => (0, tokio::time::Instant::now()),
    }
}

impl<S, St, C, Req> Service<Req> for RateLimit<S, St, C>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    St: RateStore,
    C: Cost<Req>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, S, Req, St>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        let takes_a_unit = self.mode == Mode::Wait && !self.ready;
        let shared = self.limiter.shared();
        // A known pause is waited out before the inner service's readiness is taken.
        let granted = !(takes_a_unit && (self.pause_gate || shared.may_be_paused())) && {
            // The inner service first: if it is a concurrency limit, the rate is then
            // measured where requests really start, whatever the order of the layers.
            if let Err(e) = std::task::ready!(self.inner.poll_ready(cx)) {
                return Poll::Ready(Err(e.into()));
            }
            !takes_a_unit || (self.waiter.is_idle() && shared.admits_now(1))
        };
        // The slow path's answer is unwrapped rather than returned as it is: returned,
        // the compiler merged it with the fast path's `Ready(Ok(()))` in the slow
        // path's stack slot, so every fast call stored the constant there and read it
        // back (a vector store read by integer loads, slow to forward: about 3 ns of
        // the rate + concurrency stack's 58).
        if !granted {
            std::task::ready!(self.poll_ready_slow::<Req>(cx))?;
        }
        if C::WEIGHTED && takes_a_unit {
            self.ready_at = Some(tokio::time::Instant::now());
        }
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Req) -> Self::Future {
        if !std::mem::take(&mut self.ready) {
            return ResponseFuture::failed(Box::new(NotReady));
        }
        let cost = self.cost.cost(&request);
        let store = self.limiter.store();
        match self.mode {
            Mode::Reject => {
                if let Some(wait) = self.limiter.pause_remaining() {
                    return ResponseFuture::failed(Box::new(self.paused_denial(wait)));
                }
                let decided = match store.try_check_now(&(), cost) {
                    Some(decided) => decided,
                    None => {
                        let mut decision = store.check(&(), cost);
                        match poll_now(&mut decision) {
                            Some(decided) => decided,
                            None => {
                                let inner = self.take_inner();
                                return ResponseFuture::deciding(decision, inner, request);
                            }
                        }
                    }
                };
                match decided {
                    Ok(Decision::Allowed { .. }) => {
                        ResponseFuture::called(self.inner.call(request))
                    }
                    Ok(Decision::Denied {
                        retry_after,
                        snapshot,
                    }) => ResponseFuture::failed(Box::new(RateLimited::new(retry_after, snapshot))),
                    Err(e) => ResponseFuture::failed(e.into_box()),
                }
            }
            Mode::Wait => {
                // Every quota admits one unit, so only a larger cost reads the bound.
                if cost > 1 {
                    let max = store.max_cost(&());
                    if cost > max {
                        return ResponseFuture::failed(Box::new(CostTooLarge { cost, max }));
                    }
                }
                if let Some(wait) = self.limiter.pause_remaining() {
                    // Ready before the pause began: the request is held until it ends,
                    // without the inner service's readiness (dropped here), which it
                    // takes again then.
                    drop(self.take_inner());
                    let limiter = self.limiter.clone();
                    let service = self.inner.clone();
                    let (taken, taken_at) = taken_by_readiness(&mut self.ready_at);
                    return ResponseFuture::paused(
                        wait, limiter, service, request, cost, taken, taken_at,
                    );
                }
                if cost > 1 {
                    // The first unit was taken in poll_ready (at `ready_at`); the whole
                    // cost is booked in one piece where the store can give that unit
                    // back as of then (see `reserve_whole`), and the request starts
                    // when it falls due.
                    let (taken, taken_at) = taken_by_readiness(&mut self.ready_at);
                    // After a throttle's drain nothing is given back: the drain's debt
                    // already holds that unit (as for a held request).
                    let taken = self.limiter.shared().still_taken(taken, taken_at);
                    let mut rest = store.reserve_whole(&(), taken, taken_at, cost, Duration::MAX);
                    match poll_now(&mut rest) {
                        Some(Ok(Decision::Allowed { wait, .. })) if !wait.is_zero() => {
                            let limiter = self.limiter.clone();
                            return ResponseFuture::reserved(
                                wait,
                                limiter,
                                self.take_inner(),
                                request,
                                cost,
                            );
                        }
                        Some(Ok(Decision::Allowed { .. })) => {}
                        // A store that cannot book ahead: nothing of the rest was taken,
                        // so the request must not start on the one unit it holds.
                        Some(Ok(Decision::Denied {
                            retry_after,
                            snapshot,
                        })) => {
                            return ResponseFuture::failed(Box::new(RateLimited::new(
                                retry_after,
                                snapshot,
                            )));
                        }
                        Some(Err(e)) => return ResponseFuture::failed(e.into_box()),
                        None => {
                            let limiter = self.limiter.clone();
                            return ResponseFuture::reserving(
                                rest,
                                limiter,
                                self.take_inner(),
                                request,
                                cost,
                            );
                        }
                    }
                }
                ResponseFuture::called(self.inner.call(request))
            }
        }
    }
}

impl<S: Clone, St: RateStore, C: Clone> Clone for RateLimit<S, St, C> {
    fn clone(&self) -> Self {
        RateLimit::new(
            self.inner.clone(),
            self.limiter.clone(),
            self.mode,
            self.cost.clone(),
        )
    }
}

impl<S: fmt::Debug, St: RateStore + fmt::Debug, C> fmt::Debug for RateLimit<S, St, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("limiter", &self.limiter)
            .field("mode", &self.mode)
            .field("ready", &self.ready)
            .finish()
    }
}
