//! The limiter's FIFO queue of waiters, whose head cannot hold it forever.
//!
//! Waiters take tickets in arrival order. The first is the head: the only one that asks
//! the store and sleeps on a timer. The others wait in line with one waker each and a
//! watchdog on the head's lease. The head renews its lease whenever it goes to sleep,
//! to the instant it will wake plus [`GRACE`]. A head that is not polled by then has
//! been abandoned by its owner (a service whose `ready()` timed out but which was kept,
//! not dropped), so the first in line takes the head from it; the old head joins again
//! at the back if it is ever polled. A live head is polled within microseconds of its
//! timer, far inside the grace; a head waiting for a store's answer is not, so a store
//! must answer (or time out) well inside the grace, as the Redis store's per-call
//! timeout of tens of milliseconds does. The first in line may have been abandoned
//! too: the waiter at place `p` in line watches the lease plus `p` graces, and takes
//! the head from everyone ahead of it who let that pass; when the head's lease moves
//! earlier, the line is woken to watch the new one. So a watchdog fires about once
//! per place in seconds, and abandoned waiters hold up the line about a second each.
//!
//! Dropping a [`Ticket`] leaves the queue and hands the head on: nothing is lost when
//! a waiter is cancelled.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;
use tokio::time::Instant;

/// How long a head may go unpolled past the instant it said it would wake before the
/// next waiter takes the head from it.
pub(crate) const GRACE: Duration = Duration::from_secs(1);

pub(crate) struct Queue {
    line: Mutex<Line>,
    /// Tickets in the queue (the head and those in line), so that the uncontended
    /// path can see an empty queue without the lock.
    len: AtomicUsize,
}

struct Line {
    next_number: u64,
    /// `None` only when nobody waits: a leaving head hands over at once.
    head: Option<Lease>,
    /// In ticket order (a new number is the largest, a returning rank goes in at its
    /// place), so a ticket is found by binary search.
    waiting: VecDeque<InLine>,
}

struct Lease {
    number: u64,
    /// Past this instant an unpolled head may be replaced.
    deadline: Instant,
}

struct InLine {
    number: u64,
    waker: Waker,
}

/// Where a ticket stands.
pub(crate) enum Turn {
    /// It is the head: it may decide.
    Head,
    /// It waits in line, and looks again at `watch_until` (its watchdog's instant) if
    /// nothing wakes it before: those ahead of it have until then to take the head.
    Waiting { watch_until: Instant },
    /// Its place was taken while its owner did not poll it: join again.
    Lost,
}

/// A place in the queue. Dropping it leaves the queue.
pub(crate) struct Ticket {
    queue: Arc<Queue>,
    number: u64,
}

impl Queue {
    pub(crate) fn new() -> Queue {
        Queue {
            line: Mutex::new(Line {
                next_number: 0,
                head: None,
                waiting: VecDeque::new(),
            }),
            len: AtomicUsize::new(0),
        }
    }

    /// Whether nobody holds or waits for the head.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
    }

    fn lock(&self) -> MutexGuard<'_, Line> {
        // Every statement leaves the line consistent, so a panic elsewhere cannot
        // leave it half-updated.
        self.line
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a ticket: the head at once if nobody waits, else the last place in line;
    /// or, for a waiter that left at a pause's end (`rank`, its old number), its old
    /// place: before everyone in line who came after it.
    pub(crate) fn join(self: &Arc<Self>, waker: &Waker, rank: Option<u64>) -> (Ticket, bool) {
        let mut line = self.lock();
        let number = match rank {
            Some(rank) if rank < line.next_number => rank,
            _ => {
                let number = line.next_number;
                line.next_number += 1;
                number
            }
        };
        let is_head = line.head.is_none();
        if is_head {
            line.head = Some(Lease {
                number,
                deadline: Instant::now() + GRACE,
            });
        } else {
            // Numbers in line are in order (a returning rank goes back between them),
            // so the place is found by a search; a new number goes last. Going first
            // in line, the joiner sets the watchdog on the head when it looks at its
            // turn (at once), and the one it displaced drops its own.
            let place = line.waiting.partition_point(|w| w.number < number);
            line.waiting.insert(
                place,
                InLine {
                    number,
                    waker: waker.clone(),
                },
            );
        }
        self.len.store(line.len(), Ordering::Release);
        let ticket = Ticket {
            queue: Arc::clone(self),
            number,
        };
        (ticket, is_head)
    }
}

impl Queue {
    /// Wakes every waiter in line (a pause began: those that can wait it out holding
    /// nothing step aside now, not when their turn comes).
    pub(crate) fn wake_all(&self) {
        let wakers: Vec<Waker> = self
            .lock()
            .waiting
            .iter()
            .map(|w| w.waker.clone())
            .collect();
        for waker in wakers {
            waker.wake();
        }
    }
}

impl Line {
    fn len(&self) -> usize {
        usize::from(self.head.is_some()) + self.waiting.len()
    }

    /// Makes the first in line the head, and returns the wakers to call once the lock
    /// is released: the new head's, and that of the new first in line, whose watchdog
    /// must now watch the new head.
    fn hand_over(&mut self, now: Instant) -> [Option<Waker>; 2] {
        self.head = None;
        let Some(next) = self.waiting.pop_front() else {
            return [None, None];
        };
        self.head = Some(Lease {
            number: next.number,
            deadline: now + GRACE,
        });
        [
            Some(next.waker),
            self.waiting.front().map(|w| w.waker.clone()),
        ]
    }
}

impl Ticket {
    /// Its number: its place in arrival order.
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// Where this ticket stands, remembering `waker` for its turn. A waiter in line
    /// whose watch ran out (see below) takes the head here.
    pub(crate) fn turn(&self, waker: &Waker) -> Turn {
        let mut line = self.queue.lock();
        let Some(head) = &line.head else {
            return Turn::Lost;
        };
        if head.number == self.number {
            return Turn::Head;
        }
        let head_deadline = head.deadline;
        let Some(position) = line
            .waiting
            .binary_search_by_key(&self.number, |w| w.number)
            .ok()
        else {
            return Turn::Lost;
        };
        // The first in line watches the head's lease, and each one behind it a grace
        // later per place: a waiter whose owner gave it up (kept, never polled again)
        // then holds up those behind it for about a second, however many such are
        // ahead, and each waiter's timer fires about once per its place in seconds.
        let places = u32::try_from(position).unwrap_or(u32::MAX);
        let watch_until = head_deadline
            .checked_add(GRACE.saturating_mul(places))
            .unwrap_or_else(crate::clock::far_future);
        let now = Instant::now();
        if watch_until > now {
            let entry = &mut line.waiting[position];
            if !entry.waker.will_wake(waker) {
                entry.waker = waker.clone();
            }
            return Turn::Waiting { watch_until };
        }
        // Everyone ahead had the time to take over and did not: given up by their
        // owners. They find out (`Lost`) when, if ever, they are polled.
        line.waiting.drain(..position);
        // The head's owner stopped polling it: take over. The old head's ticket is
        // now in neither place and finds out when (if ever) it is polled.
        let [_own, next_first] = line.hand_over(now);
        self.queue.len.store(line.len(), Ordering::Release);
        drop(line);
        if let Some(waker) = next_first {
            waker.wake();
        }
        Turn::Head
    }

    /// The head will be polled again by `wake_at` (its timer), or it has given up the
    /// head: renews its lease to `wake_at + GRACE`.
    pub(crate) fn renew(&self, wake_at: Instant) {
        let mut line = self.queue.lock();
        let mut shrank = false;
        if let Some(head) = &mut line.head {
            if head.number == self.number {
                let deadline = wake_at + GRACE;
                shrank = deadline < head.deadline;
                head.deadline = deadline;
            }
        }
        // Watchdogs in line were armed against the old, later lease: re-arm them.
        let wakers: Vec<Waker> = if shrank {
            line.waiting.iter().map(|w| w.waker.clone()).collect()
        } else {
            Vec::new()
        };
        drop(line);
        for waker in wakers {
            waker.wake();
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut line = self.queue.lock();
        let wakers = match &line.head {
            Some(head) if head.number == self.number => line.hand_over(Instant::now()),
            _ => match line
                .waiting
                .binary_search_by_key(&self.number, |w| w.number)
                .ok()
            {
                Some(position) => {
                    line.waiting.remove(position);
                    // A new first in line must set its watchdog.
                    let new_first = (position == 0)
                        .then(|| line.waiting.front().map(|w| w.waker.clone()))
                        .flatten();
                    [new_first, None]
                }
                None => [None, None],
            },
        };
        self.queue.len.store(line.len(), Ordering::Release);
        drop(line);
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
    }
}
