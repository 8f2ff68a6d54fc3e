//! The shared limiter handle: one bucket, many services, FIFO waiting, pause and
//! run-time changes.
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_core::{Quota, RateLimiter};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let limiter = RateLimiter::new(Quota::per_second(10)?.with_burst(1)?);
//! let start = tokio::time::Instant::now();
//! limiter.acquire(1).await?; // at once
//! limiter.acquire(1).await?; // 100 ms later
//! assert_eq!(start.elapsed(), Duration::from_millis(100));
//!
//! // A server said "Retry-After: 2": nothing starts through any sharer for 2 s.
//! limiter.pause_for(Duration::from_secs(2));
//! limiter.acquire(1).await?;
//! assert_eq!(start.elapsed(), Duration::from_millis(2100));
//!
//! // Quotas change at run time.
//! limiter.set_quota(Quota::per_second(100)?);
//! assert_eq!(limiter.quota().count(), 100);
//! # Ok(()) }
//! ```

pub(crate) mod booked_slot;
mod queue;
mod waiter;

use queue::Queue;

pub(crate) use waiter::Waiter;

use crate::algorithm::{Admission, Algorithm, Gcra, Snapshot};
use crate::clock::Clock;
use crate::error::{BoxError, StoreError};
use crate::quota::Quota;
use crate::store::{Decision, MemoryStore, RateStore};
use futures_util::task::AtomicWaker;
use std::fmt;
use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

/// A rate limiter shared by every service (and clone) that holds a handle to it.
///
/// Cloning the handle is cheap and every clone is the same limiter: build one per
/// API host (or per upstream) and give it to all the clients that talk to it.
///
/// * [`RateLimiter::acquire`] waits its turn (**wait mode**): waiters are served in
///   order (FIFO) across all sharers, with no polling, and no wake-up is lost however
///   many wait. A dropped waiter leaves the
///   queue at once; one that is kept but no longer polled (see the
///   [rate module](crate::rate#a-waiting-service-that-is-no-longer-polled)) loses its
///   turn to the next waiter about a second after it came (each of several such in a
///   row, about a second more).
/// * [`RateLimiter::try_acquire`] answers at once (**reject mode**) with a
///   [`Decision`] that carries the retry-after.
/// * [`RateLimiter::pause_until`] holds every request of every sharer until an
///   instant, including those already waiting; [`RateLimiter::set_quota`] changes the
///   rate. Both wake the waiter they affect.
pub struct RateLimiter<St = MemoryStore<Gcra>> {
    shared: Arc<Shared<St>>,
}

pub(crate) struct Shared<St> {
    pub(crate) store: St,
    clock: Clock,
    /// Clock nanoseconds until which nothing starts; 0 when not paused.
    paused_until: AtomicU64,
    /// Clock nanoseconds at which the last pause ended (slots before it are owed to nobody).
    pub(crate) unpaused_at: AtomicU64,
    /// The FIFO queue of waiters; its head is the one that may decide.
    pub(crate) queue: Arc<Queue>,
    /// The head's waker, so that a change reaches a head asleep on its timer.
    pub(crate) head_waker: AtomicWaker,
    /// Bumped on every change; a sleeping head compares it to decide afresh.
    pub(crate) generation: AtomicU64,
    /// Notified on every change (pause, resume, quota), for those that wait out a
    /// pause outside the queue.
    pub(crate) pause_changed: Arc<tokio::sync::Notify>,
    /// Clock nanoseconds at which a throttle ends and empties the bucket (the latest
    /// throttle's `until`); 0 when none is pending. Apart from `paused_until`, so that
    /// a plain pause around it neither moves nor cancels the throttle's drain.
    drain_at: AtomicU64,
    /// Empties the store's bucket as of an instant; set by the first throttle (the
    /// pause's end is noticed where the store's type is not known to be a store).
    drainer: OnceLock<fn(&St, Instant)>,
    /// Clock nanoseconds of the latest drain point the bucket was emptied at (0:
    /// never): a unit taken before it is part of the debt the drain set (the bucket
    /// empty as of that point), so a request held through the throttle gets none of
    /// it back.
    drained_through: AtomicU64,
}

/// [`RateStore::drain_until`] of the single bucket, as a function pointer.
fn drain_store<St: RateStore>(store: &St, at: Instant) {
    store.drain_until(&(), at);
}

impl<St> Clone for RateLimiter<St> {
    fn clone(&self) -> Self {
        RateLimiter {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl RateLimiter<MemoryStore<Gcra>> {
    /// A GCRA limiter in memory.
    pub fn new(quota: Quota) -> Self {
        RateLimiter::from_store(MemoryStore::new(quota))
    }
}

impl<A: Algorithm> RateLimiter<MemoryStore<A>> {
    /// An in-memory limiter of the given algorithm.
    pub fn with_algorithm(algorithm: A, quota: Quota) -> Self {
        RateLimiter::from_store(MemoryStore::with_algorithm(algorithm, quota))
    }

    /// An in-memory limiter holding several quotas at once, all or nothing (e.g. 10
    /// per second and 1000 per hour). `None` for an empty list.
    pub fn with_quotas(algorithm: A, quotas: impl IntoIterator<Item = Quota>) -> Option<Self> {
        MemoryStore::with_quotas(algorithm, quotas).map(RateLimiter::from_store)
    }

    /// Decides at once without a future (reject mode, in memory). A pause denies.
    ///
    /// # Errors
    /// [`StoreError::CostTooLarge`] when the cost can never pass.
    pub fn try_acquire_now(&self, cost: u64) -> Result<Decision, StoreError> {
        if let Some(wait) = self.pause_remaining() {
            return self.paused_decision(self.store().peek_now(0)?, wait);
        }
        self.store().check_now(cost)
    }
}

impl<St> RateLimiter<St> {
    /// A limiter over any store (in memory, Redis, ...).
    pub fn from_store(store: St) -> Self {
        RateLimiter {
            shared: Arc::new(Shared {
                store,
                clock: Clock::new(),
                paused_until: AtomicU64::new(0),
                unpaused_at: AtomicU64::new(0),
                queue: Arc::new(Queue::new()),
                head_waker: AtomicWaker::new(),
                generation: AtomicU64::new(0),
                pause_changed: Arc::new(tokio::sync::Notify::new()),
                drain_at: AtomicU64::new(0),
                drainer: OnceLock::new(),
                drained_through: AtomicU64::new(0),
            }),
        }
    }

    /// The store that keeps the bucket.
    pub fn store(&self) -> &St {
        &self.shared.store
    }

    pub(crate) fn shared(&self) -> &Shared<St> {
        &self.shared
    }

    /// Whether two handles are the same limiter.
    pub fn same_as(&self, other: &RateLimiter<St>) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Holds every request of every sharer until `until`, including requests already
    /// waiting for a slot. A pause only ever extends: an earlier instant than the
    /// current pause changes nothing (use [`RateLimiter::resume`] to lift it).
    ///
    /// The bucket keeps refilling during a pause, so when it ends up to a full burst
    /// starts at once. A request of a [`RateLimit`](crate::rate::RateLimit) layer that
    /// was granted before the pause and is held through it is booked again when it
    /// ends (of the units it took before, only what time has not yet refilled is given
    /// back, and nothing when the quota changed since, when a unit-cost layer did not
    /// note when it took them, or when another request's booking is the end of the
    /// debt by then), so it is counted where it starts: the requests held
    /// and the new ones together start at most a burst, then the rate. Give the quota a small burst
    /// where the server must not see a burst right after its `Retry-After`.
    pub fn pause_until(&self, until: Instant) {
        let at = self.shared.clock.to_nanos(until).max(1);
        let previous = self.shared.paused_until.fetch_max(at, Ordering::AcqRel);
        if at > previous {
            self.shared.changed();
            // A pause that begins (not one extended: its waiters were woken when it
            // began) wakes the whole line, so that waiting services give back what they
            // hold at once; once per pause, not once per throttled response.
            if previous <= self.shared.clock.now() {
                self.shared.queue.wake_all();
            }
        }
    }

    /// Holds every request for `duration` from now. See [`RateLimiter::pause_until`].
    pub fn pause_for(&self, duration: Duration) {
        self.pause_until(instant_after(duration));
    }

    /// Lifts a pause at once and wakes the waiters.
    pub fn resume(&self) {
        // A throttle lifted early leaves the bucket as it is; one that has ended (its
        // end not yet noticed) has emptied it.
        let due = self.shared.drain_at.swap(0, Ordering::AcqRel);
        if due != 0 && due <= self.shared.clock.now() {
            self.shared.drain(due);
        }
        if self.shared.paused_until.swap(0, Ordering::AcqRel) != 0 {
            self.shared
                .unpaused_at
                .fetch_max(self.shared.clock.now(), Ordering::AcqRel);
        }
        self.shared.changed();
    }

    /// A future that completes at the next change of the pause (a new pause, an
    /// extension, [`RateLimiter::resume`]) or of the quota, for waiting out a pause
    /// outside the limiter's queue. Create it, then read
    /// [`RateLimiter::paused_until`], then await it: a change in between still
    /// completes it.
    pub fn pause_changed(&self) -> tokio::sync::futures::OwnedNotified {
        Arc::clone(&self.shared.pause_changed).notified_owned()
    }

    /// The instant a current pause ends, if the limiter is paused.
    pub fn paused_until(&self) -> Option<Instant> {
        self.pause_remaining().map(|wait| Instant::now() + wait)
    }

    pub(crate) fn pause_remaining(&self) -> Option<Duration> {
        self.shared.pause_remaining()
    }

    fn paused_decision(&self, decision: Decision, wait: Duration) -> Result<Decision, StoreError> {
        let mut snapshot = decision.snapshot();
        snapshot.remaining = 0;
        snapshot.reset = snapshot.reset.max(wait);
        Ok(Decision::Denied {
            retry_after: wait,
            snapshot,
        })
    }
}

impl<St> Shared<St> {
    /// Time left in the current pause, if any. One relaxed load when not paused.
    #[inline]
    pub(crate) fn pause_remaining(&self) -> Option<Duration> {
        let until = self.paused_until.load(Ordering::Acquire);
        if until == 0 {
            return None;
        }
        self.paused_remaining(until)
    }

    /// [`Shared::pause_remaining`] once a pause is set: out of line, so that the check
    /// every request makes stays one load (inlined, the throttle's drain below cost the
    /// rate + concurrency stack 3 ns a request, 54.7 -> 57.8 ns).
    #[cold]
    #[inline(never)]
    fn paused_remaining(&self, until: u64) -> Option<Duration> {
        let now = self.clock.now();
        if now >= until {
            // A throttle that has ended empties the bucket (as of its own end) before
            // the pause reads as over: a caller that sees it over sees the bucket
            // drained. Emptying is idempotent, so whoever notices first may do it; the
            // mark is cleared only if no later throttle raised it meanwhile.
            let due = self.drain_at.load(Ordering::Acquire);
            if due != 0 && due <= now {
                self.drain(due);
                let _ = self
                    .drain_at
                    .compare_exchange(due, 0, Ordering::AcqRel, Ordering::Relaxed);
            }
            // Expired: clear it so later checks skip the clock read.
            if self
                .paused_until
                .compare_exchange(until, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                self.unpaused_at.fetch_max(until, Ordering::AcqRel);
            }
            return None;
        }
        Some(Duration::from_nanos(until - now))
    }

    /// Empties the bucket as of `at` (clock nanoseconds), once a throttle set the way.
    fn drain(&self, at: u64) {
        if let Some(drain) = self.drainer.get() {
            drain(&self.store, self.clock.to_instant(at));
            self.drained_through.fetch_max(at, Ordering::AcqRel);
        }
    }

    /// The units taken at `taken_at` that a request booked again may still give back:
    /// none once a throttle emptied the bucket at or after `taken_at` (the drain set
    /// the bucket's debt whatever those units had taken, so a give-back would come out
    /// of the drain itself).
    pub(crate) fn still_taken(&self, taken: u64, taken_at: Instant) -> u64 {
        let drained = self.drained_through.load(Ordering::Acquire);
        match drained != 0 && drained >= self.clock.to_nanos(taken_at) {
            true => 0,
            false => taken,
        }
    }

    /// When the last pause ended: slots before it are owed to nobody, whoever waited.
    #[inline]
    pub(crate) fn unpaused_since(&self) -> Instant {
        self.clock
            .to_instant(self.unpaused_at.load(Ordering::Acquire))
    }

    /// Whether a pause may hold the limiter: one load, no clock read (a pause that
    /// has run out reads as one until a clock read clears it).
    #[inline]
    pub(crate) fn may_be_paused(&self) -> bool {
        self.paused_until.load(Ordering::Relaxed) != 0
    }

    /// Takes `cost` units at once if nobody is queued, nothing is paused, and the
    /// store decides in memory that they fit. `false` sends the caller to the
    /// waiter, which decides again and queues (an error reappears there).
    #[inline]
    pub(crate) fn admits_now(&self, cost: u64) -> bool
    where
        St: RateStore,
    {
        self.queue.is_empty()
            && self.pause_remaining().is_none()
            && matches!(
                self.store.try_admit_now(&(), cost),
                Some(Ok(Admission::Allowed))
            )
    }

    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.head_waker.wake();
        self.pause_changed.notify_waiters();
    }
}

impl<St: RateStore> RateLimiter<St> {
    /// A server refused (a `429` whose `Retry-After` says `until`): holds every request
    /// until `until`, as [`RateLimiter::pause_until`] does, and empties the bucket
    /// there, so that requests then start at the quota's rate, not in a burst. What
    /// the bucket saved before and during the pause is not the server's to give: a
    /// client whose burst is larger than the server's would otherwise spend it on the
    /// next refusal as soon as each pause ends, and never slow down. Window
    /// algorithms, whose count is their burst, and stores that cannot drain are only
    /// paused (see [`RateStore::drain_until`]); the Redis store drains its GCRA
    /// buckets in Redis, where every instance sharing the key sees it.
    pub fn throttle_until(&self, until: Instant) {
        let shared = &self.shared;
        if shared.clock.to_nanos(until) <= shared.clock.now() {
            shared.store.drain_until(&(), until);
            shared
                .drained_through
                .fetch_max(shared.clock.to_nanos(until).max(1), Ordering::AcqRel);
            return;
        }
        // Emptied when the pause ends, not now: the bucket keeps its state through the
        // pause, so a quota change meanwhile rescales what it really owes, not the
        // pause (which it would have stretched by the ratio of the intervals).
        shared.drainer.get_or_init(|| drain_store::<St>);
        shared
            .drain_at
            .fetch_max(shared.clock.to_nanos(until).max(1), Ordering::AcqRel);
        self.pause_until(until);
        shared.store.schedule_drain(&(), until);
    }

    /// [`RateLimiter::throttle_until`] `duration` from now.
    pub fn throttle_for(&self, duration: Duration) {
        self.throttle_until(instant_after(duration));
    }

    /// The quota in force.
    pub fn quota(&self) -> Quota {
        self.shared.store.quota(&())
    }

    /// Changes the quota at run time and wakes the waiter at the head of the queue to
    /// decide again under it.
    pub fn set_quota(&self, quota: Quota) {
        self.shared.store.set_quota(quota);
        self.shared.changed();
    }

    /// Waits for `cost` units, in FIFO order with every other waiter of this limiter,
    /// and honouring pauses.
    ///
    /// # Errors
    /// [`crate::error::CostTooLarge`] when the cost can never pass; a store error.
    pub async fn acquire(&self, cost: u64) -> Result<Snapshot, BoxError> {
        let max = self.shared.store.max_cost(&());
        if cost > max {
            return Err(Box::new(crate::error::CostTooLarge { cost, max }));
        }
        let mut waiter = Waiter::new();
        poll_fn(|cx| waiter.poll_acquire(&self.shared, cx, cost)).await
    }

    /// Waits until no pause holds the limiter, taking nothing and asking no store: in
    /// FIFO order with the other waiters, woken at once by [`RateLimiter::resume`], and
    /// held to the new end if the pause is extended. Ready at once when not paused and
    /// nobody waits.
    pub async fn until_unpaused(&self) {
        let mut waiter = Waiter::new();
        poll_fn(|cx| waiter.poll_pause_end(&self.shared, cx)).await
    }

    /// Takes `cost` units now if they fit, without waiting. While paused, the answer
    /// is a denial until the pause ends.
    ///
    /// # Errors
    /// As for the store: [`StoreError::CostTooLarge`], [`StoreError::Unavailable`].
    pub async fn try_acquire(&self, cost: u64) -> Result<Decision, StoreError> {
        if let Some(wait) = self.pause_remaining() {
            let now = self.shared.store.peek(&(), 0).await?;
            return self.paused_decision(now, wait);
        }
        self.shared.store.check(&(), cost).await
    }

    /// The bucket now (limit, remaining, reset), taking nothing.
    ///
    /// # Errors
    /// A store error.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let snapshot = self.shared.store.peek(&(), 0).await?.snapshot();
        Ok(match self.pause_remaining() {
            Some(wait) => Snapshot {
                remaining: 0,
                reset: snapshot.reset.max(wait),
                ..snapshot
            },
            None => snapshot,
        })
    }
}

impl<St: fmt::Debug> fmt::Debug for RateLimiter<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("store", &self.shared.store)
            .field("paused_for", &self.shared.pause_remaining())
            .finish()
    }
}

impl<St: RateStore> booked_slot::SlotQuota for RateLimiter<St> {
    type Store = St;
    type Key = ();

    fn parts(&self) -> (&St, &()) {
        (self.store(), &())
    }
}

/// `duration` from now, or the far future when that is past what an `Instant` holds.
fn instant_after(duration: Duration) -> Instant {
    Instant::now()
        .checked_add(duration)
        .unwrap_or_else(crate::clock::far_future)
}
