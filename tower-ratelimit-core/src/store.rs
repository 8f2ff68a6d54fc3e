//! Where a limiter keeps its buckets: the one trait every layer talks to.
//!
//! A [`RateStore`] decides for a key and a cost. The in-memory stores answer at once
//! (their future is [`std::future::Ready`]); a remote store (Redis, in
//! `tower-ratelimit-redis`) answers after a round trip. The layers never know which.
//!
//! ```
//! use tower_ratelimit_core::store::{Decision, MemoryStore, RateStore};
//! use tower_ratelimit_core::Quota;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MemoryStore::new(Quota::per_second(1)?.with_burst(2)?);
//! assert!(matches!(store.check(&(), 1).await?, Decision::Allowed { .. }));
//! assert!(matches!(store.check(&(), 1).await?, Decision::Allowed { .. }));
//! match store.check(&(), 1).await? {
//!     Decision::Denied { retry_after, .. } => assert_eq!(retry_after.as_millis(), 1000),
//!     other => panic!("{other:?}"),
//! }
//! # Ok(()) }
//! ```

mod memory;
mod quota_cell;
mod quota_changes;
mod vacated;

pub use memory::MemoryStore;
pub(crate) use quota_cell::QuotaCell;
pub use quota_changes::{QuotaChange, QuotaChanges};
pub use vacated::{VacatedSlot, VacatedSlots};

use crate::algorithm::{Admission, Nanos, Reservation, Snapshot, Verdict};
use crate::error::StoreError;
use crate::quota::Quota;
use std::future::Future;
use std::time::Duration;

/// A store's answer for one key and cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The units were taken. `wait` is zero for [`RateStore::check`]; for
    /// [`RateStore::reserve`] it is how long the caller must wait before starting.
    Allowed {
        /// The bucket after taking the units.
        snapshot: Snapshot,
        /// How long until the reserved units become valid.
        wait: Duration,
    },
    /// Nothing was taken; the same cost could pass after `retry_after`.
    Denied {
        /// How long until the cost fits (for `reserve`: the wait it would have had).
        retry_after: Duration,
        /// The bucket now.
        snapshot: Snapshot,
    },
}

impl Decision {
    /// Whether the units were taken.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }

    /// The bucket the decision saw.
    pub fn snapshot(&self) -> Snapshot {
        match self {
            Decision::Allowed { snapshot, .. } | Decision::Denied { snapshot, .. } => *snapshot,
        }
    }

    /// A store's decision from an algorithm's verdict at `now` (for stores built on
    /// the algorithms of this crate).
    #[inline]
    pub fn from_verdict(verdict: Verdict, now: Nanos) -> Decision {
        match verdict {
            Verdict::Allowed(snapshot) => Decision::Allowed {
                snapshot,
                wait: Duration::ZERO,
            },
            Verdict::Denied { retry_at, snapshot } => Decision::Denied {
                retry_after: Duration::from_nanos(retry_at.saturating_sub(now)),
                snapshot,
            },
        }
    }

    /// A store's decision from an algorithm's reservation at `now`.
    #[inline]
    pub fn from_reservation(reservation: Reservation, now: Nanos) -> Decision {
        match reservation {
            Reservation::Reserved { valid_at, snapshot } => Decision::Allowed {
                snapshot,
                wait: Duration::from_nanos(valid_at.saturating_sub(now)),
            },
            Reservation::TooFar { valid_at, snapshot } => Decision::Denied {
                retry_after: Duration::from_nanos(valid_at.saturating_sub(now)),
                snapshot,
            },
        }
    }
}

impl From<Decision> for Admission {
    fn from(decision: Decision) -> Admission {
        match decision {
            Decision::Allowed { .. } => Admission::Allowed,
            Decision::Denied { retry_after, .. } => Admission::Denied { retry_after },
        }
    }
}

/// State for rate limits, keyed by `K` (`()` for a single, global limit).
///
/// Implementations decide atomically per key: two concurrent callers never both take
/// the last unit. They must not panic on any key or cost.
pub trait RateStore<K: ?Sized = ()>: Send + Sync + 'static {
    /// The future of one decision.
    type Future: Future<Output = Result<Decision, StoreError>> + Send + Unpin + 'static;

    /// Take `cost` units for `key` now, if they fit.
    fn check(&self, key: &K, cost: u64) -> Self::Future;

    /// Takes `cost` units at the earliest instant in `[since, now]` at which they fit,
    /// for a caller that has been waiting since `since`.
    ///
    /// A wait queue's head sleeps until its units become valid, but tokio's timer fires
    /// on whole milliseconds, late by up to one; and while it sleeps, the slots that
    /// fall due belong to the queue, since demand was waiting all along. Deciding from
    /// `since` keeps that lateness from being lost on every wake-up, which would pull
    /// a 100,000/s quota with burst 1 down to about 1,000/s. It is sound because no
    /// one else takes units while the head decides. Stores with a clock of their own (a
    /// remote server's) keep the default, which decides now.
    fn check_since(&self, key: &K, cost: u64, since: tokio::time::Instant) -> Self::Future {
        let _ = since;
        self.check(key, cost)
    }

    /// Decides [`check`](RateStore::check) at once, without a future, for a store
    /// that decides in memory; `None` (the default, for remote stores) sends the caller
    /// to `check`.
    ///
    /// The layers try this first: moving a decision through a ready future costs a
    /// few nanoseconds per request that an in-memory store need not pay.
    #[inline]
    fn try_check_now(&self, key: &K, cost: u64) -> Option<Result<Decision, StoreError>> {
        let _ = (key, cost);
        None
    }

    /// [`try_check_now`](RateStore::try_check_now) without the snapshot: whether
    /// `cost` units were taken, decided at once in memory, or `None`. The default
    /// asks `try_check_now`; an in-memory store skips the snapshot's arithmetic.
    #[inline]
    fn try_admit_now(&self, key: &K, cost: u64) -> Option<Result<Admission, StoreError>> {
        self.try_check_now(key, cost)
            .map(|decided| decided.map(Admission::from))
    }

    /// Whether `cost` units would fit now, taking nothing. A cost of 0 reads the
    /// bucket's snapshot.
    fn peek(&self, key: &K, cost: u64) -> Self::Future;

    /// Take the next `cost` units even if they become valid only later, unless that is
    /// more than `max_wait` away; [`Decision::Allowed::wait`] says how long to wait.
    fn reserve(&self, key: &K, cost: u64, max_wait: Duration) -> Self::Future;

    /// The quota that applies to `key`.
    fn quota(&self, key: &K) -> Quota;

    /// The quota that this store's snapshots for `key` describe, for a server to
    /// advertise next to them (`RateLimit-Policy`). For a store of one quota that is
    /// [`RateStore::quota`]; a store of several reports the snapshot of the one with
    /// the fewest units left, and returns that one here.
    fn advertised_quota(&self, key: &K) -> Quota {
        self.quota(key)
    }

    /// The largest cost that can ever pass for `key` (the burst for GCRA, the count
    /// per window for window algorithms). Wait-mode layers fail a larger cost at once
    /// with [`crate::error::CostTooLarge`] instead of waiting forever.
    fn max_cost(&self, key: &K) -> u64 {
        self.quota(key).burst()
    }

    /// Whether [`set_quota`](RateStore::set_quota) moves units booked ahead in
    /// proportion to the emission interval (see
    /// [`crate::algorithm::Algorithm::rescales_bookings`]), so that a keyed request
    /// sleeping until its booked slot moves it the same way. The default is `false`:
    /// slots keep their instants.
    fn rescales_bookings(&self) -> bool {
        false
    }

    /// The store's recent quota changes, if it keeps them: a slot moved by a change
    /// is measured from the change's instant, where the store rescaled its state, and
    /// a sleeper that missed several replays each of them.
    fn quota_changes(&self) -> Option<&QuotaChanges> {
        None
    }

    /// Where a slot booked `offset` after a change from `old` to `new` starts now
    /// (see [`crate::algorithm::Algorithm::moved_slot`]); asked only of stores that
    /// [`rescales_bookings`](RateStore::rescales_bookings). The default scales the
    /// offset by the emission intervals.
    fn moved_slot(&self, old: &Quota, new: &Quota, offset: Duration) -> Duration {
        Duration::from_nanos(crate::algorithm::scale_time(
            duration_nanos(offset),
            old.interval_nanos(),
            new.interval_nanos(),
        ))
    }

    /// Replace the default quota (for every key without a quota of its own). Buckets
    /// keep their fill level in units (see [`crate::algorithm::Algorithm::rescale`]):
    /// a bucket owing 3 units owes 3 at the new spacing, up to the new burst.
    fn set_quota(&self, quota: Quota);

    /// Gives back `cost` units of `key` that a check took just now and that went
    /// unused (a request that, once admitted, found it must not start after all); see
    /// [`crate::algorithm::Algorithm::refund`] for why only those. In-memory stores give
    /// them back; the default, and remote stores, keep them, which only ever admits
    /// less.
    fn refund(&self, _key: &K, _cost: u64) {}

    /// A request of `key` that [reserved](RateStore::reserve) a slot gave it up before
    /// it came (a caller's timeout); `vacated` says which slot, its cost, and what it
    /// was booked under.
    ///
    /// The units cannot go back to the bucket: reservations made after them sleep
    /// until slots placed behind theirs, and a newcomer would start in one of those.
    /// A store that can keeps the slot instead, and hands it to the key's next
    /// reservation that fits it (as long as the quota is still the one it was booked
    /// under): the same units start at the same instant. Without this a line of
    /// requests that time out before their slots wastes every one of them (see the
    /// [`keyed`](crate::keyed) module's docs). [`KeyedMemoryStore`](crate::keyed::KeyedMemoryStore)
    /// keeps them (in a [`VacatedSlots`]), and so does `tower-ratelimit-redis`'s store
    /// for the requests of its own process; the default leaves the slot unused, which
    /// only ever admits less.
    fn vacate(&self, _key: &K, _vacated: VacatedSlot) {}

    /// Empties `key`'s bucket as of `until`, so that from then on its requests start
    /// at the quota's rate, with no burst (see
    /// [`crate::algorithm::Algorithm::drain_until`]): what
    /// [`RateLimiter::throttle_until`](crate::RateLimiter::throttle_until) does when a
    /// server refused. It is called on a limiter's check path, so it must not block: a
    /// remote store records the drain and sends it without waiting
    /// (`tower-ratelimit-redis` sends it ahead of its next decision on `key`, so that
    /// decision sees the drained bucket, and from a task, so that every instance
    /// sharing the key sees it). In-memory stores drain the buckets they hold (of
    /// several quotas, the primary one: the others are the client's own budgets), the
    /// Redis store its GCRA buckets; window algorithms keep their counts (a window's
    /// count is its burst). The default, for a store that cannot drain, keeps the
    /// state, so that after a throttle up to a burst may start.
    fn drain_until(&self, _key: &K, _until: tokio::time::Instant) {}

    /// A throttle of `key` has begun that empties its bucket at `until`
    /// ([`RateLimiter::throttle_until`](crate::RateLimiter::throttle_until)): the limiter
    /// calls [`drain_until`](RateStore::drain_until) when it next checks after `until`.
    /// A store shared with other processes must make the drain reach them at `until`
    /// even when this limiter never checks again (the instance that saw the `429` went
    /// quiet), or they would spend the burst the server just refused. Called on a
    /// limiter's path, so it must not block. The default, for stores nobody else
    /// shares, does nothing.
    fn schedule_drain(&self, _key: &K, _until: tokio::time::Instant) {}

    /// Reserves the whole `cost` of a request of which a check took `taken` units at
    /// `taken_at` (a wait-mode layer's readiness takes one unit before it knows the
    /// request's cost), unless that is more than `max_wait` away.
    ///
    /// Stores that can [`refund`](RateStore::refund) give the `taken` units back as of
    /// `taken_at` and book all of `cost` in one piece, so that a window algorithm
    /// counts every unit in the window where the request starts: booked apart, the
    /// rest could fall in a later window than the first unit, which would then admit
    /// one unit more than its count. Given back as of now instead, units taken in an
    /// earlier window (a service made ready and kept ready) would come out of the
    /// current window, or a sliding log's later entry, which are other requests'.
    /// Where units are time (GCRA, the leaky bucket), only the part of them that has
    /// not refilled since `taken_at` comes back (see
    /// [`crate::algorithm::Algorithm::refund_taken_at`]), so a request held through a
    /// pause pays again for the units the pause refilled; and only while the end of
    /// the debt is still theirs: nothing comes back once a reservation made after
    /// them is sleeping there ([`MemoryStore`]; the keyed
    /// store gives nothing back where units are time). The default books the
    /// `cost - taken` units left.
    ///
    /// A refused reservation keeps what it gave back (the request does not start), so
    /// a caller that tries again passes `taken = 0`: the same `taken` twice would give
    /// the units back twice and admit more than the quota (with the default, which
    /// gives nothing back, `taken = 0` books those units again, which only admits
    /// less). The crate's layers reserve with no bound on the wait, and are never
    /// refused here.
    fn reserve_whole(
        &self,
        key: &K,
        taken: u64,
        taken_at: tokio::time::Instant,
        cost: u64,
        max_wait: Duration,
    ) -> Self::Future {
        let _ = taken_at;
        self.reserve(key, cost.saturating_sub(taken), max_wait)
    }
}

/// Converts a wait bound into the algorithms' nanoseconds, saturating.
pub(crate) fn duration_nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
