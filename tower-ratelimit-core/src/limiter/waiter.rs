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
use tokio::sync::{AcquireError, OwnedSemaphorePermit};
use tokio::time::{sleep, Sleep};

type Queued = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

pub(crate) struct Waiter<F> {
    state: State<F>,
}

enum State<F> {
    Idle,
    /// Uncontended, but the store answers asynchronously.
    Deciding(F),
    Queued(Queued),
    Head {
        // Held only for its drop, which hands the head to the next waiter.
        _permit: OwnedSemaphorePermit,
        phase: Phase<F>,
    },
}

enum Phase<F> {
    Start,
    Deciding { decision: F, generation: u64 },
    Sleeping { sleep: Pin<Box<Sleep>>, generation: u64 },
}

impl<F> Waiter<F> {
    pub(crate) fn new() -> Self {
        Waiter { state: State::Idle }
    }
}

impl<F> Waiter<F>
where
    F: Future<Output = Result<Decision, crate::error::StoreError>> + Unpin,
{
    /// Polls for `cost` units. Ready(Ok) means the units are taken.
    pub(crate) fn poll_acquire<St>(
        &mut self,
        shared: &Shared<St>,
        cx: &mut Context<'_>,
        cost: u64,
    ) -> Poll<Result<Snapshot, BoxError>>
    where
        St: RateStore<(), Future = F>,
    {
        loop {
            match &mut self.state {
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
                                self.state = State::Deciding(decision);
                                return Poll::Pending;
                            }
                        }
                    }
                    self.state = match shared.head.clone().try_acquire_owned() {
                        Ok(permit) => State::Head {
                            _permit: permit,
                            phase: Phase::Start,
                        },
                        Err(_) => State::Queued(Box::pin(shared.head.clone().acquire_owned())),
                    };
                }
                State::Deciding(decision) => match Pin::new(decision).poll(cx) {
                    Poll::Ready(Ok(Decision::Allowed { snapshot, .. })) => {
                        self.state = State::Idle;
                        return Poll::Ready(Ok(snapshot));
                    }
                    Poll::Ready(Ok(Decision::Denied { .. })) => {
                        self.state = State::Queued(Box::pin(shared.head.clone().acquire_owned()));
                    }
                    Poll::Ready(Err(e)) => {
                        self.state = State::Idle;
                        return Poll::Ready(Err(e.into_box()));
                    }
                    Poll::Pending => return Poll::Pending,
                },
                State::Queued(queued) => match queued.as_mut().poll(cx) {
                    Poll::Ready(Ok(permit)) => {
                        self.state = State::Head {
                            _permit: permit,
                            phase: Phase::Start,
                        }
                    }
                    Poll::Ready(Err(closed)) => {
                        // The semaphore is never closed; report rather than panic.
                        self.state = State::Idle;
                        return Poll::Ready(Err(Box::new(closed)));
                    }
                    Poll::Pending => return Poll::Pending,
                },
                State::Head { phase, .. } => {
                    shared.head_waker.register(cx.waker());
                    match phase {
                        Phase::Start => {
                            let generation = shared.generation.load(Ordering::Acquire);
                            *phase = match shared.pause_remaining() {
                                Some(wait) => Phase::Sleeping {
                                    sleep: Box::pin(sleep(wait)),
                                    generation,
                                },
                                None => Phase::Deciding {
                                    decision: shared.store.check(&(), cost),
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
                                self.state = State::Idle;
                                return Poll::Ready(Ok(snapshot));
                            }
                            Poll::Ready(Ok(Decision::Denied { retry_after, .. })) => {
                                *phase = Phase::Sleeping {
                                    sleep: Box::pin(sleep(retry_after)),
                                    generation: *generation,
                                };
                            }
                            Poll::Ready(Err(e)) => {
                                self.state = State::Idle;
                                return Poll::Ready(Err(e.into_box()));
                            }
                            Poll::Pending => return Poll::Pending,
                        },
                        Phase::Sleeping { sleep, generation } => {
                            if shared.generation.load(Ordering::Acquire) != *generation {
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
