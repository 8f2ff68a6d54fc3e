//! One caller's place in a limiter's FIFO queue.
//!
//! Uncontended, a waiter decides at once without touching the queue. Otherwise it
//! takes a ticket in the queue (FIFO, one waker per waiter, cancel-safe; see
//! [`super::queue`]); the head of the queue asks the store, sleeps until the store's
//! retry-after (or the end of a pause), and asks again. When the head gets its units it
//! leaves the queue, which wakes the next waiter. The head's timer is its wake-up; the
//! others' are watchdogs on the head's lease that fire about once per their place in
//! line in seconds, so a queue costs no polling.

use super::queue::{Ticket, Turn};
use super::Shared;
use crate::algorithm::Snapshot;
use crate::error::BoxError;
use crate::store::{Decision, RateStore};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use sync_wrapper::SyncWrapper;
use tokio::time::{sleep_until, Instant, Sleep};

pub(crate) struct Waiter<F> {
    // Only ever touched through `&mut self`, so the service holding it may be `Sync`
    // (axum requires it) even though the boxed queue future is not.
    state: SyncWrapper<State<F>>,
}

enum State<F> {
    Idle,
    /// Left the queue at the end of a pause, keeping its place: its next turn in the
    /// queue goes back to that place rather than to the back.
    Passed {
        rank: u64,
    },
    /// Uncontended, but the store answers asynchronously.
    Deciding(F),
    Queued {
        ticket: Ticket,
        /// Fires when those ahead have let the head's lease run out (see
        /// [`super::queue`]).
        watchdog: Option<Pin<Box<Sleep>>>,
        since: Instant,
    },
    Head {
        // Dropping it hands the head to the next waiter.
        ticket: Ticket,
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

    /// Whether the waiter holds no place in the queue (it may remember one).
    #[inline]
    pub(crate) fn holds_no_place(&mut self) -> bool {
        matches!(self.state.get_mut(), State::Idle | State::Passed { .. })
    }

    /// Leaves the queue remembering its place, so that its next turn goes back to it:
    /// for a waiter whose owner will wait some other way for a while (a pause). Not
    /// while a decision is in flight, whose units only this waiter can use: `false`,
    /// and the place is kept.
    pub(crate) fn step_aside(&mut self) -> bool {
        let state = self.state.get_mut();
        let rank = match state {
            State::Queued { ticket, .. } => ticket.number(),
            State::Head { ticket, phase, .. } if !matches!(phase, Phase::Deciding { .. }) => {
                ticket.number()
            }
            _ => return false,
        };
        // Dropping the ticket hands the head on, or leaves the line.
        *state = State::Passed { rank };
        true
    }
}

/// What a waiter waits for.
#[derive(Clone, Copy)]
enum Want {
    /// Units of the store.
    Units(u64),
    /// Its turn and the end of any pause, taking nothing and asking no store; it then
    /// leaves the queue keeping its place (`State::Passed`).
    PauseEnd,
}

impl<F> Waiter<F>
where
    F: Future<Output = Result<Decision, crate::error::StoreError>> + Unpin,
{
    /// Polls, in FIFO order, for the end of any pause, taking nothing: for a caller
    /// that must not hold a resource while paused. Past it the waiter remembers its
    /// place, and its next [`Waiter::poll_acquire`] queues there.
    pub(crate) fn poll_pause_end<St>(
        &mut self,
        shared: &Shared<St>,
        cx: &mut Context<'_>,
    ) -> Poll<()>
    where
        St: RateStore<(), Future = F>,
    {
        // Only a store's answer can fail, and waiting for a pause's end asks none.
        self.poll_slow(shared, cx, Want::PauseEnd).map(drop)
    }

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
            && shared.queue.is_empty()
            && shared.pause_remaining().is_none()
        {
            match shared.store.try_check_now(&(), cost) {
                Some(Ok(Decision::Allowed { snapshot, .. })) => return Poll::Ready(Ok(snapshot)),
                Some(Ok(Decision::Denied { .. })) => {
                    *state = enqueue(shared, cx, Instant::now(), None)
                }
                Some(Err(e)) => return Poll::Ready(Err(e.into_box())),
                None => {}
            }
        }
        self.poll_slow(shared, cx, Want::Units(cost))
            .map(|granted| {
                granted.map(|snapshot| snapshot.expect("a grant of units carries a snapshot"))
            })
    }

    /// `Ok(None)` for a pause end, `Ok(Some)` for units.
    fn poll_slow<St>(
        &mut self,
        shared: &Shared<St>,
        cx: &mut Context<'_>,
        want: Want,
    ) -> Poll<Result<Option<Snapshot>, BoxError>>
    where
        St: RateStore<(), Future = F>,
    {
        let state = self.state.get_mut();
        loop {
            match state {
                State::Idle | State::Passed { .. } => {
                    let rank = match state {
                        State::Passed { rank } => Some(*rank),
                        _ => None,
                    };
                    // Fast path: nobody queued and no pause, so deciding now cannot
                    // overtake anyone.
                    if shared.queue.is_empty() && shared.pause_remaining().is_none() {
                        let Want::Units(cost) = want else {
                            return Poll::Ready(Ok(None));
                        };
                        let mut decision = shared.store.check(&(), cost);
                        match Pin::new(&mut decision).poll(cx) {
                            Poll::Ready(Ok(Decision::Allowed { snapshot, .. })) => {
                                *state = State::Idle;
                                return Poll::Ready(Ok(Some(snapshot)));
                            }
                            Poll::Ready(Ok(Decision::Denied { .. })) => {}
                            Poll::Ready(Err(e)) => {
                                *state = State::Idle;
                                return Poll::Ready(Err(e.into_box()));
                            }
                            Poll::Pending => {
                                *state = State::Deciding(decision);
                                return Poll::Pending;
                            }
                        }
                    }
                    *state = enqueue(shared, cx, Instant::now(), rank);
                }
                State::Deciding(decision) => match Pin::new(decision).poll(cx) {
                    Poll::Ready(Ok(Decision::Allowed { snapshot, .. })) => {
                        *state = State::Idle;
                        return Poll::Ready(Ok(Some(snapshot)));
                    }
                    Poll::Ready(Ok(Decision::Denied { .. })) => {
                        *state = enqueue(shared, cx, Instant::now(), None)
                    }
                    Poll::Ready(Err(e)) => {
                        *state = State::Idle;
                        return Poll::Ready(Err(e.into_box()));
                    }
                    Poll::Pending => return Poll::Pending,
                },
                State::Queued {
                    ticket,
                    watchdog,
                    since,
                } => match ticket.turn(cx.waker()) {
                    Turn::Head => {
                        let since = *since;
                        if let State::Queued { ticket, .. } = std::mem::replace(state, State::Idle)
                        {
                            *state = State::Head {
                                ticket,
                                phase: Phase::Start,
                                since,
                            };
                        }
                    }
                    Turn::Waiting {
                        watch_until: deadline,
                    } => {
                        let timer = watchdog.get_or_insert_with(|| Box::pin(sleep_until(deadline)));
                        if timer.deadline() != deadline {
                            timer.as_mut().reset(deadline);
                        }
                        match timer.as_mut().poll(cx) {
                            // The lease ran out meanwhile: look again, and take over.
                            Poll::Ready(()) => continue,
                            Poll::Pending => return Poll::Pending,
                        }
                    }
                    Turn::Lost => {
                        // Overtaken while not polled: the back of the queue again.
                        *state = enqueue(shared, cx, Instant::now(), None);
                    }
                },
                State::Head {
                    ticket,
                    phase,
                    since,
                } => {
                    // A decision in flight is read first, whoever holds the head now:
                    // an admission took units that only this waiter can use.
                    let deciding = matches!(phase, Phase::Deciding { .. });
                    if !deciding && matches!(ticket.turn(cx.waker()), Turn::Lost) {
                        // The head went to the next waiter while this one was not
                        // polled: the back of the queue again.
                        *state = enqueue(shared, cx, Instant::now(), None);
                        continue;
                    }
                    shared.head_waker.register(cx.waker());
                    match phase {
                        Phase::Start => {
                            let generation = shared.generation.load(Ordering::Acquire);
                            *phase = match shared.pause_remaining() {
                                Some(wait) => {
                                    // Slots inside a pause are not owed to anyone.
                                    *since = Instant::now() + wait;
                                    sleeping(ticket, wait, generation)
                                }
                                None => {
                                    let Want::Units(cost) = want else {
                                        // Dropping the ticket hands the head on.
                                        *state = State::Passed {
                                            rank: ticket.number(),
                                        };
                                        return Poll::Ready(Ok(None));
                                    };
                                    ticket.renew(Instant::now());
                                    *since = (*since).max(shared.unpaused_since());
                                    Phase::Deciding {
                                        decision: shared.store.check_since(&(), cost, *since),
                                        generation,
                                    }
                                }
                            };
                        }
                        Phase::Deciding {
                            decision,
                            generation,
                        } => match Pin::new(decision).poll(cx) {
                            Poll::Ready(Ok(Decision::Allowed { snapshot, .. })) => {
                                // Dropping the permit hands the head to the next waiter.
                                *state = State::Idle;
                                return Poll::Ready(Ok(Some(snapshot)));
                            }
                            Poll::Ready(Ok(Decision::Denied { retry_after, .. })) => {
                                *phase = sleeping(ticket, retry_after, *generation);
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

/// The head sleeps for `wait`, and renews its lease to the end of it.
fn sleeping<F>(ticket: &Ticket, wait: std::time::Duration, generation: u64) -> Phase<F> {
    let wake_at = Instant::now() + wait;
    ticket.renew(wake_at);
    Phase::Sleeping {
        sleep: Box::pin(sleep_until(wake_at)),
        generation,
    }
}

/// Takes the head at once if nobody waits, else the last place in the queue, or the
/// place it had (`rank`) before it left at a pause's end.
fn enqueue<F, St>(
    shared: &Shared<St>,
    cx: &Context<'_>,
    since: Instant,
    rank: Option<u64>,
) -> State<F> {
    let (ticket, is_head) = shared.queue.join(cx.waker(), rank);
    if is_head {
        State::Head {
            ticket,
            phase: Phase::Start,
            since,
        }
    } else {
        State::Queued {
            ticket,
            watchdog: None,
            since,
        }
    }
}
