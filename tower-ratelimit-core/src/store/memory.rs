//! The in-memory store of a single (unkeyed) limiter, with one quota or several held
//! together.

use super::{duration_nanos, Decision, QuotaCell, QuotaChanges, RateStore};
use crate::algorithm::sync::{lock, AtomicU64, Mutex, Ordering};
use crate::algorithm::{Admission, Algorithm, Gcra, Reservation, Snapshot, Verdict};
use crate::clock::Clock;
use crate::error::StoreError;
use crate::quota::Quota;
use std::fmt;
use std::future::{ready, Ready};
use std::time::Duration;

/// One bucket (or one per quota) in this process's memory. The default store of
/// [`crate::RateLimiter`].
///
/// With one quota the decision is the algorithm's own (lock-free for [`Gcra`]). With
/// several quotas (say 10/s and 1000/h) the decision is all or nothing: a request
/// denied by one quota takes nothing from the others. The quotas are then checked
/// under one short lock.
pub struct MemoryStore<A: Algorithm = Gcra> {
    algorithm: A,
    clock: Clock,
    buckets: Buckets<A>,
    /// When the quota last changed (the clock's nanoseconds; 0: never). Units taken
    /// before then were priced by another quota, so none of them is given back.
    quota_changed_at: AtomicU64,
    /// When a reservation that starts later than it was made was last made (the
    /// clock's nanoseconds; 0: never), written before the reservation takes its units.
    /// A give-back of units taken before then would come off that reservation's slot.
    booked_at: AtomicU64,
    /// The recent changes, for slots booked before them.
    quota_changes: QuotaChanges,
}

enum Buckets<A: Algorithm> {
    Single {
        quota: QuotaCell,
        state: CacheLine<A::State>,
    },
    All(Mutex<Vec<(Quota, A::State)>>),
}

/// Keeps a bucket on a cache line of its own: every decision writes it, and the quota
/// and the limiter's pause word beside it are read by every decision on every core.
/// Sharing their line made two threads three times slower.
#[repr(align(128))]
struct CacheLine<T>(T);

impl MemoryStore<Gcra> {
    /// A GCRA bucket with the given quota.
    pub fn new(quota: Quota) -> Self {
        MemoryStore::with_algorithm(Gcra, quota)
    }
}

impl<A: Algorithm> MemoryStore<A> {
    /// A bucket of the given algorithm.
    pub fn with_algorithm(algorithm: A, quota: Quota) -> Self {
        let state = algorithm.new_state(&quota);
        MemoryStore {
            algorithm,
            clock: Clock::new(),
            buckets: Buckets::Single {
                quota: QuotaCell::new(quota),
                state: CacheLine(state),
            },
            quota_changed_at: AtomicU64::new(0),
            booked_at: AtomicU64::new(0),
            quota_changes: QuotaChanges::default(),
        }
    }

    /// Several quotas held together, all or nothing (e.g. 10 per second *and* 1000 per
    /// hour). The first quota is the primary one: [`RateStore::quota`] reports it and
    /// [`RateStore::set_quota`] replaces it. Returns `None` for an empty list.
    pub fn with_quotas(algorithm: A, quotas: impl IntoIterator<Item = Quota>) -> Option<Self> {
        let buckets: Vec<_> = quotas
            .into_iter()
            .map(|q| (q, algorithm.new_state(&q)))
            .collect();
        match buckets.len() {
            0 => None,
            1 => {
                let (quota, _) = buckets[0];
                Some(MemoryStore::with_algorithm(algorithm, quota))
            }
            _ => Some(MemoryStore {
                algorithm,
                clock: Clock::new(),
                buckets: Buckets::All(Mutex::new(buckets)),
                quota_changed_at: AtomicU64::new(0),
                booked_at: AtomicU64::new(0),
                quota_changes: QuotaChanges::default(),
            }),
        }
    }

    /// Reads time from `clock` instead of a fresh one (to align fixed windows to a
    /// known instant, say).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The store's clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The algorithm.
    pub fn algorithm(&self) -> &A {
        &self.algorithm
    }

    /// Every quota, primary first.
    pub fn quotas(&self) -> Vec<Quota> {
        match &self.buckets {
            Buckets::Single { quota, .. } => vec![quota.get()],
            Buckets::All(all) => lock(all).iter().map(|(q, _)| *q).collect(),
        }
    }

    /// Decides at once: the synchronous form of [`RateStore::check`].
    ///
    /// # Errors
    /// [`StoreError::CostTooLarge`] when some quota can never admit `cost`.
    #[inline]
    pub fn check_now(&self, cost: u64) -> Result<Decision, StoreError> {
        self.check_at(self.clock.now(), cost)
    }

    #[inline]
    fn check_at(&self, now: u64, cost: u64) -> Result<Decision, StoreError> {
        match &self.buckets {
            Buckets::Single { quota, state } => {
                let verdict = self.algorithm.check(&state.0, &quota.get(), now, cost)?;
                Ok(Decision::from_verdict(verdict, now))
            }
            Buckets::All(all) => self.check_all(all, now, cost),
        }
    }

    /// Kept out of line so that the single-quota path stays small enough to inline.
    #[inline(never)]
    fn check_all(
        &self,
        all: &Mutex<Vec<(Quota, A::State)>>,
        now: u64,
        cost: u64,
    ) -> Result<Decision, StoreError> {
        self.all_or_nothing(&lock(all), now, cost, true)
    }

    /// [`check_now`](MemoryStore::check_now) without the snapshot: takes `cost`
    /// units if they fit, and says only whether it did (or when to retry). The
    /// cheapest decision this crate offers, for callers that need nothing more; the
    /// rate layer uses it on its fast path.
    ///
    /// # Errors
    /// [`StoreError::CostTooLarge`] when `cost` can never pass.
    #[inline]
    pub fn admit_now(&self, cost: u64) -> Result<Admission, StoreError> {
        let now = self.clock.now();
        match &self.buckets {
            Buckets::Single { quota, state } => {
                Ok(self.algorithm.admit(&state.0, &quota.get(), now, cost)?)
            }
            Buckets::All(all) => self.check_all(all, now, cost).map(Admission::from),
        }
    }

    /// The synchronous form of [`RateStore::peek`].
    ///
    /// # Errors
    /// As for [`MemoryStore::check_now`].
    pub fn peek_now(&self, cost: u64) -> Result<Decision, StoreError> {
        let now = self.clock.now();
        match &self.buckets {
            Buckets::Single { quota, state } => {
                let verdict = self.algorithm.peek(&state.0, &quota.get(), now, cost)?;
                Ok(Decision::from_verdict(verdict, now))
            }
            Buckets::All(all) => self.all_or_nothing(&lock(all), now, cost, false),
        }
    }

    /// Gives back `cost` unused units; see [`RateStore::refund`].
    pub fn refund_now(&self, cost: u64) {
        let now = self.clock.now();
        self.refund_taken_at(cost, now, now);
    }

    /// Gives back `cost` units taken at `now` (a clock reading, not after the present).
    fn refund_taken_at(&self, cost: u64, taken_at: u64, now: u64) {
        match &self.buckets {
            Buckets::Single { quota, state } => {
                self.algorithm
                    .refund_taken_at(&state.0, &quota.get(), cost, taken_at, now)
            }
            Buckets::All(all) => {
                for (quota, state) in lock(all).iter() {
                    self.algorithm
                        .refund_taken_at(state, quota, cost, taken_at, now);
                }
            }
        }
    }

    /// The synchronous form of [`RateStore::reserve`].
    ///
    /// # Errors
    /// As for [`MemoryStore::check_now`].
    pub fn reserve_now(&self, cost: u64, max_wait: Duration) -> Result<Decision, StoreError> {
        self.reserve_at(self.clock.now(), cost, duration_nanos(max_wait))
    }

    /// Gives back what time has not refilled of `cost` units taken at `taken_at`,
    /// unless a reservation that may start later was made since (its slot is the end
    /// of the debt now; see [`Algorithm::refund_taken_at_unless_booked`]).
    fn refund_unless_booked(&self, cost: u64, taken_at: u64, now: u64) {
        let booked_since = || self.booked_at.load(Ordering::Relaxed) >= taken_at;
        match &self.buckets {
            Buckets::Single { quota, state } => self.algorithm.refund_taken_at_unless_booked(
                &state.0,
                &quota.get(),
                cost,
                taken_at,
                now,
                &booked_since,
            ),
            Buckets::All(all) => {
                for (quota, state) in lock(all).iter() {
                    self.algorithm.refund_taken_at_unless_booked(
                        state,
                        quota,
                        cost,
                        taken_at,
                        now,
                        &booked_since,
                    );
                }
            }
        }
    }

    fn reserve_at(&self, now: u64, cost: u64, max_wait: u64) -> Result<Decision, StoreError> {
        match &self.buckets {
            Buckets::Single { quota, state } => {
                let booking = || {
                    self.booked_at.fetch_max(now, Ordering::AcqRel);
                };
                let r = self.algorithm.reserve_noting(
                    &state.0,
                    &quota.get(),
                    now,
                    cost,
                    max_wait,
                    &booking,
                )?;
                Ok(Decision::from_reservation(r, now))
            }
            Buckets::All(all) => {
                let all = lock(all);
                // The slot is valid when every quota allows it: the latest of their
                // earliest instants. Peek first so a refusal takes nothing.
                let mut valid_at = now;
                for (quota, state) in all.iter() {
                    if let Verdict::Denied { retry_at, .. } =
                        self.algorithm.peek(state, quota, now, cost)?
                    {
                        valid_at = valid_at.max(retry_at);
                    }
                }
                if valid_at - now > max_wait {
                    return Ok(Decision::Denied {
                        retry_after: Duration::from_nanos(valid_at - now),
                        snapshot: self.tightest(&all, now),
                    });
                }
                // Every quota is charged at the instant the request starts, the latest
                // of their earliest ones. Charged at its own earlier instant, a quota
                // that was not the binding one would count the unit in a window (or a
                // stretch of refill) that is over by the time the request starts, and
                // its limit would not hold then (2/s and 6/10 s fixed windows started
                // 6 at once when the 10 s window turned).
                if valid_at > now {
                    // Under the lock every give-back of these buckets takes too.
                    self.booked_at.fetch_max(now, Ordering::AcqRel);
                }
                let mut starts = valid_at;
                for (quota, state) in all.iter() {
                    if let Reservation::Reserved { valid_at: at, .. } =
                        self.algorithm
                            .reserve(state, quota, valid_at, cost, u64::MAX)?
                    {
                        starts = starts.max(at);
                    }
                }
                let r = Reservation::Reserved {
                    valid_at: starts,
                    snapshot: self.tightest(&all, now),
                };
                Ok(Decision::from_reservation(r, now))
            }
        }
    }

    fn all_or_nothing(
        &self,
        all: &[(Quota, A::State)],
        now: u64,
        cost: u64,
        take: bool,
    ) -> Result<Decision, StoreError> {
        let mut denied: Option<(u64, Snapshot)> = None;
        for (quota, state) in all {
            if let Verdict::Denied { retry_at, snapshot } =
                self.algorithm.peek(state, quota, now, cost)?
            {
                // Several quotas exhausted: the longest wait decides.
                if denied.is_none_or(|(at, _)| retry_at > at) {
                    denied = Some((retry_at, snapshot));
                }
            }
        }
        if let Some((retry_at, snapshot)) = denied {
            return Ok(Decision::from_verdict(
                Verdict::Denied { retry_at, snapshot },
                now,
            ));
        }
        if take {
            for (quota, state) in all {
                // Under the lock no one else touches these buckets, so every check
                // that peeked as allowed is allowed.
                self.algorithm.check(state, quota, now, cost)?;
            }
        }
        Ok(Decision::Allowed {
            snapshot: self.tightest(all, now),
            wait: Duration::ZERO,
        })
    }

    /// The snapshot of the quota with the fewest remaining units.
    fn tightest(&self, all: &[(Quota, A::State)], now: u64) -> Snapshot {
        self.tightest_with_quota(all, now).1
    }

    /// The quota with the fewest remaining units (the latest reset among equals), and
    /// its snapshot.
    fn tightest_with_quota(&self, all: &[(Quota, A::State)], now: u64) -> (Quota, Snapshot) {
        all.iter()
            .map(|(q, s)| (*q, self.algorithm.snapshot(s, q, now)))
            .min_by_key(|(_, s)| (s.remaining, std::cmp::Reverse(s.reset)))
            .expect("a multi-quota store holds at least two quotas")
    }
}

impl<A: Algorithm> RateStore<()> for MemoryStore<A> {
    type Future = Ready<Result<Decision, StoreError>>;

    #[inline]
    fn check(&self, _key: &(), cost: u64) -> Self::Future {
        ready(self.check_now(cost))
    }

    #[inline]
    fn try_check_now(&self, _key: &(), cost: u64) -> Option<Result<Decision, StoreError>> {
        Some(self.check_now(cost))
    }

    #[inline]
    fn try_admit_now(&self, _key: &(), cost: u64) -> Option<Result<Admission, StoreError>> {
        Some(self.admit_now(cost))
    }

    fn check_since(&self, _key: &(), cost: u64, since: tokio::time::Instant) -> Self::Future {
        let now = self.clock.now();
        let mut since = self.clock.to_nanos(since).min(now);
        let mut decided = self.reserve_at(since, cost, now - since);
        if let Ok(Decision::Denied { retry_after, .. }) = &decided {
            if duration_nanos(*retry_after) <= now - since {
                // Due by now, yet refused as of `since`: an algorithm books only so far
                // ahead of the instant it decides from (a sliding log, one period), so
                // a waiter older than that is decided as of now, or it would be told
                // to retry at once, forever.
                since = now;
                decided = self.reserve_at(now, cost, 0);
            }
        }
        let decision = match decided {
            // Valid at or before now: taken, start at once.
            Ok(Decision::Allowed { snapshot, .. }) => Ok(Decision::Allowed {
                snapshot,
                wait: Duration::ZERO,
            }),
            // `retry_after` was measured from `since`; the caller counts from now.
            Ok(Decision::Denied {
                retry_after,
                snapshot,
            }) => Ok(Decision::Denied {
                retry_after: retry_after.saturating_sub(Duration::from_nanos(now - since)),
                snapshot,
            }),
            Err(e) => Err(e),
        };
        ready(decision)
    }

    fn peek(&self, _key: &(), cost: u64) -> Self::Future {
        ready(self.peek_now(cost))
    }

    fn reserve(&self, _key: &(), cost: u64, max_wait: Duration) -> Self::Future {
        ready(self.reserve_now(cost, max_wait))
    }

    fn quota(&self, _key: &()) -> Quota {
        match &self.buckets {
            Buckets::Single { quota, .. } => quota.get(),
            Buckets::All(all) => lock(all)[0].0,
        }
    }

    fn advertised_quota(&self, _key: &()) -> Quota {
        match &self.buckets {
            Buckets::Single { quota, .. } => quota.get(),
            Buckets::All(all) => self.tightest_with_quota(&lock(all), self.clock.now()).0,
        }
    }

    fn max_cost(&self, _key: &()) -> u64 {
        match &self.buckets {
            Buckets::Single { quota, .. } => self.algorithm.max_cost(&quota.get()),
            Buckets::All(all) => lock(all)
                .iter()
                .map(|(q, _)| self.algorithm.max_cost(q))
                .min()
                .unwrap_or(0),
        }
    }

    fn refund(&self, _key: &(), cost: u64) {
        self.refund_now(cost);
    }

    fn drain_until(&self, _key: &(), until: tokio::time::Instant) {
        let at = self.clock.to_nanos(until);
        match &self.buckets {
            Buckets::Single { quota, state } => {
                self.algorithm.drain_until(&state.0, &quota.get(), at)
            }
            // The primary quota only: the others are the client's own budgets (1000
            // an hour), which a server's refusal says nothing about; drained, one
            // 429 held a client to one request per 3.6 s for an hour.
            Buckets::All(all) => {
                if let Some((quota, state)) = lock(all).first() {
                    self.algorithm.drain_until(state, quota, at);
                }
            }
        }
    }

    /// With several quotas a booking's instant is set by whichever holds the line,
    /// and only the first one changes: slots then keep their instants.
    fn rescales_bookings(&self) -> bool {
        matches!(self.buckets, Buckets::Single { .. }) && self.algorithm.rescales_bookings()
    }

    fn quota_changes(&self) -> Option<&QuotaChanges> {
        Some(&self.quota_changes)
    }

    fn moved_slot(&self, old: &Quota, new: &Quota, offset: Duration) -> Duration {
        Duration::from_nanos(self.algorithm.moved_slot(old, new, duration_nanos(offset)))
    }

    fn reserve_whole(
        &self,
        _key: &(),
        taken: u64,
        taken_at: tokio::time::Instant,
        cost: u64,
        max_wait: Duration,
    ) -> Self::Future {
        let now = self.clock.now();
        let at = self.clock.to_nanos(taken_at).min(now);
        if self.quota_changed_at.load(Ordering::Acquire) < at {
            self.refund_unless_booked(taken, at, now);
        }
        ready(self.reserve_at(now, cost, duration_nanos(max_wait)))
    }

    fn set_quota(&self, new: Quota) {
        // The instant is read under the lock, so that changes rescale in their order.
        let changed_at = |now| {
            self.quota_changed_at.fetch_max(now, Ordering::AcqRel);
        };
        match &self.buckets {
            Buckets::Single { quota, state } => {
                quota.replace(new, |old| {
                    let now = self.clock.now();
                    changed_at(now);
                    self.algorithm.rescale(&state.0, old, &new, now);
                    self.quota_changes
                        .record(self.clock.to_instant(now), *old, new);
                });
            }
            Buckets::All(all) => {
                let mut all = lock(all);
                let now = self.clock.now();
                changed_at(now);
                let (quota, state) = &mut all[0];
                self.algorithm.rescale(state, quota, &new, now);
                *quota = new;
            }
        }
    }
}

impl<A: Algorithm + fmt::Debug> fmt::Debug for MemoryStore<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("algorithm", &self.algorithm)
            .field("quotas", &self.quotas())
            .finish()
    }
}
