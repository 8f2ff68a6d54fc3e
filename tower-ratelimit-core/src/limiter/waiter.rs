//! One caller's place in a limiter's FIFO queue.
//!
//! Uncontended, a waiter decides at once without touching the queue. Otherwise it
//! queues on a one-permit semaphore (FIFO, one waker per waiter, cancel-safe); the
//! holder of the permit is the head: it asks the store, sleeps until the store's
//! retry-after (or the end of a pause), and asks again. When the head gets its units
//! it releases the permit, which wakes the next waiter. Only the head holds a timer, so
//! a queue of any length costs one timer and no polling.

use super::Shared;
use crate::algorithm::Snapshot;
use crate::error::BoxError;
use crate::store::{Decision, RateStore};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use sync_wrapper::SyncWrapper;
use tokio::sync::{AcquireError, OwnedSemaphorePermit};
use tokio::time::{sleep_until, Instant, Sleep};

type Queued = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

pub(crate) struct Waiter<F> {
    // Only ever touched through `&mut self`, so the service holding it may be `Sync`
    // (axum requires it) even though the boxed queue future is not.
    state: SyncWrapper<State<F>>,
}

enum State<F> {
    Idle,
    /// Uncontended, but the store answers asynchronously.
    Deciding(F),
    Queued {
        queued: Queued,
        since: Instant,
    },
    Head {
        // Held only for its drop, which hands the head to the next waiter.
        _permit: OwnedSemaphorePermit,
        phase: Phase<F>,
        /// Since when demand has been waiting (not counting pauses): slots that fall
        /// due after it belong to this waiter even if its timer fires late.
        since: Instant,
    },
}

enum Phase<F> {
    /// Decide, taking the earliest slot since the waiter has been waiting.
    Start,
    Deciding {
        decision: F,
        generation: u64,
    },
    Sleeping {
        sleep: Pin<Box<Sleep>>,
        generation: u64,
    },
}

impl<F> Waiter<F> {
    pub(crate) fn new() -> Self {
        Waiter {
            state: SyncWrapper::new(State::Idle),
        }
    }

    /// Whether the waiter holds no place in the queue and no pending decision.
    #[inline]
    pub(crate) fn is_idle(&mut self) -> bool {
        matches!(self.state.get_mut(), State::Idle)
    }
}

impl<F> Waiter<F>
where
    F: Future<Output = Result<Decision, crate::error::StoreError>> + Unpin,
{
    /// Polls for `cost` units, waiting in FIFO order when they do not fit. Ready(Ok)
    /// means the units are taken.
    #[inline]
    pub(crate) fn poll_acquire<St>(
        &mut self,
        shared: &Shared<St>,
        cx: &mut Context<'_>,
        cost: u64,
    ) -> Poll<Result<Snapshot, BoxError>>
    where
        St: RateStore<(), Future = F>,
    {
        // The common case, kept small enough to inline: nobody queued, not paused, and
        // a store that answers at once.
        let state = self.state.get_mut();
        if matches!(state, State::Idle)
            && shared.head.available_permits() > 0
            && shared.pause_remaining().is_none()
        {
            match shared.store.try_check_now(&(), cost) {
                Some(Ok(Decision::Allowed { snapshot, .. })) => return Poll::Ready(Ok(snapshot)),
                Some(Ok(Decision::Denied { .. })) => *state = enqueue(shared),
                Some(Err(e)) => return Poll::Ready(Err(e.into_box())),
                None => {}
            }
        }
        self.poll_acquire_slow(shared, cx, cost)
    }

    fn poll_acquire_slow<St>(
        &mut self,
        shared: &Shared<St>,
        cx: &mut Context<'_>,
        cost: u64,
    ) -> Poll<Result<Snapshot, BoxError>>
    where
        St: RateStore<(), Future = F>,
    {
        let state = self.state.get_mut();
        loop {
            match state {
                State::Idle => {
                    // Fast path: nobody queued and no pause, so deciding now cannot
                    // overtake anyone.
                    if shared.head.available_permits() > 0 && shared.pause_remaining().is_none() {
                        let mut decision = shared.store.check(&(), cost);
                        match Pin::new(&mut decision).poll(cx) {
                            Poll::Ready(Ok(Decision::Allowed { snapshot, .. })) => {
                                return Poll::Ready(Ok(snapshot))
                            }
                            Poll::Ready(Ok(Decision::Denied { .. })) => {}
                            Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into_box())),
                            Poll::Pending => {
                                *state = State::Deciding(decision);
                                return Poll::Pending;
                            }
                        }
                    }
                    *state = enqueue(shared);
                }
                State::Deciding(decision) => match Pin::new(decision).poll(cx) {
                    Poll::Ready(Ok(Decision::Allowed { snapshot, .. })) => {
                        *state = State::Idle;
                        return Poll::Ready(Ok(snapshot));
                    }
                    Poll::Ready(Ok(Decision::Denied { .. })) => *state = enqueue(shared),
                    Poll::Ready(Err(e)) => {
                        *state = State::Idle;
                        return Poll::Ready(Err(e.into_box()));
                    }
                    Poll::Pending => return Poll::Pending,
                },
                State::Queued { queued, since } => match queued.as_mut().poll(cx) {
                    Poll::Ready(Ok(permit)) => {
                        *state = State::Head {
                            _permit: permit,
                            phase: Phase::Start,
                            since: *since,
                        }
                    }
                    Poll::Ready(Err(closed)) => {
                        // The semaphore is never closed; report rather than panic.
                        *state = State::Idle;
                        return Poll::Ready(Err(Box::new(closed)));
                    }
                    Poll::Pending => return Poll::Pending,
                },
                State::Head { phase, since, .. } => {
                    shared.head_waker.register(cx.waker());
                    match phase {
                        Phase::Start => {
                            let generation = shared.generation.load(Ordering::Acquire);
                            *phase = match shared.pause_remaining() {
                                Some(wait) => {
                                    // Slots inside a pause are not owed to anyone.
                                    *since = Instant::now() + wait;
                                    sleeping(wait, generation)
                                }
                                None => Phase::Deciding {
                                    decision: shared.store.check_since(&(), cost, *since),
                                    generation,
                                },
                            };
                        }
                        Phase::Deciding {
                            decision,
                            generation,
                        } => match Pin::new(decision).poll(cx) {
                            Poll::Ready(Ok(Decision::Allowed { snapshot, .. })) => {
                                // Dropping the permit hands the head to the next waiter.
                                *state = State::Idle;
                                return Poll::Ready(Ok(snapshot));
                            }
                            Poll::Ready(Ok(Decision::Denied { retry_after, .. })) => {
                                *phase = sleeping(retry_after, *generation);
                            }
                            Poll::Ready(Err(e)) => {
                                *state = State::Idle;
                                return Poll::Ready(Err(e.into_box()));
                            }
                            Poll::Pending => return Poll::Pending,
                        },
                        Phase::Sleeping { sleep, generation } => {
                            if shared.generation.load(Ordering::Acquire) != *generation {
                                // A change (quota, pause, resume): decide afresh.
                                *phase = Phase::Start;
                                continue;
                            }
                            match sleep.as_mut().poll(cx) {
                                Poll::Ready(()) => *phase = Phase::Start,
                                Poll::Pending => return Poll::Pending,
                            }
                        }
                    }
                }
            }
        }
    }
}

fn sleeping<F>(wait: std::time::Duration, generation: u64) -> Phase<F> {
    Phase::Sleeping {
        sleep: Box::pin(sleep_until(Instant::now() + wait)),
        generation,
    }
}

/// Takes the head at once if it is free, else a place in the FIFO queue.
fn enqueue<F, St>(shared: &Shared<St>) -> State<F> {
    let since = Instant::now();
    match shared.head.clone().try_acquire_owned() {
        Ok(permit) => State::Head {
            _permit: permit,
            phase: Phase::Start,
            since,
        },
        Err(_) => State::Queued {
            queued: Box::pin(shared.head.clone().acquire_owned()),
            since,
        },
    }
}
