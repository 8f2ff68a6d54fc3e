//! The limiting algorithms, behind one trait.
//!
//! An [`Algorithm`] is a small strategy value (usually a unit struct) plus the state
//! type of one bucket. The quota is passed to every call instead of being stored in
//! the state, so that a quota can change at run time and a keyed limiter stores no
//! more than the state itself per key (8 bytes for [`Gcra`]).
//!
//! ```
//! use tower_ratelimit_core::algorithm::{Algorithm, Gcra, Verdict};
//! use tower_ratelimit_core::Quota;
//!
//! let quota = Quota::per_second(2)?; // T = 500 ms, burst 2
//! let state = Gcra.new_state(&quota);
//! let now = 1_000_000_000; // nanoseconds on the limiter's clock
//! assert!(matches!(Gcra.check(&state, &quota, now, 1), Ok(Verdict::Allowed(_))));
//! assert!(matches!(Gcra.check(&state, &quota, now, 1), Ok(Verdict::Allowed(_))));
//! // The bucket is empty: the next unit is valid 500 ms later.
//! match Gcra.check(&state, &quota, now, 1) {
//!     Ok(Verdict::Denied { retry_at, .. }) => assert_eq!(retry_at, now + 500_000_000),
//!     other => panic!("expected a denial, got {other:?}"),
//! }
//! # Ok::<(), tower_ratelimit_core::QuotaError>(())
//! ```
//!
//! | algorithm | state | burst | use it for |
//! |---|---|---|---|
//! | [`Gcra`] | one `AtomicU64`, lock-free | `quota.burst()` | the default: token bucket semantics |
//! | [`LeakyBucket`] | one `AtomicU64`, lock-free | 1 (strict spacing) | smoothing to an exact spacing |
//! | [`FixedWindow`] | window index and count | none, `count` per window | matching servers that count per clock window |
//! | [`SlidingLog`] | a log of admitted units | none, `count` per any window | exactness at memory ∝ count |
//! | [`SlidingCounter`] | two counts | none, `count` per window, estimated | O(1) memory, small error |

pub mod fixed_window;
pub mod gcra;
pub mod leaky_bucket;
pub mod sliding_counter;
pub mod sliding_log;
pub(crate) mod sync;

pub use fixed_window::FixedWindow;
pub use gcra::Gcra;
pub use leaky_bucket::LeakyBucket;
pub use sliding_counter::SlidingCounter;
pub use sliding_log::SlidingLog;

use crate::error::CostTooLarge;
use crate::quota::Quota;
use std::time::Duration;

/// Nanoseconds on a limiter's clock (see [`crate::clock::Clock`]).
pub type Nanos = u64;

/// What a bucket looks like at an instant: what a server puts in its `RateLimit`
/// headers and a client uses to pace itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// The number of units the bucket holds when full (the burst, or the count per
    /// window for window algorithms).
    pub limit: u64,
    /// Units that could start right now.
    pub remaining: u64,
    /// Time until the bucket is full again: until the whole limit could start at once
    /// (GCRA, leaky bucket, sliding log, sliding counter: the end of the window after
    /// the one its current units were counted in), or until a fixed window resets.
    pub reset: Duration,
}

/// The answer of [`Algorithm::admit`] and [`MemoryStore::admit_now`](crate::store::MemoryStore::admit_now):
/// a decision without the bucket's snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The units were taken.
    Allowed,
    /// Nothing was taken.
    Denied {
        /// How long until the same cost fits, if nothing else takes units first.
        retry_after: Duration,
    },
}

impl Admission {
    #[cold]
    fn denied(retry_at: Nanos, now: Nanos) -> Admission {
        Admission::Denied {
            retry_after: Duration::from_nanos(retry_at.saturating_sub(now)),
        }
    }

    /// Whether the units were taken.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Admission::Allowed)
    }
}

/// The answer of [`Algorithm::check`] and [`Algorithm::peek`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The units were taken (or, for `peek`, could be).
    Allowed(Snapshot),
    /// Not now; `retry_at` is the earliest instant at which the same cost could pass
    /// if nothing else takes units in between.
    Denied {
        /// The earliest instant the cost fits.
        retry_at: Nanos,
        /// The bucket now.
        snapshot: Snapshot,
    },
}

/// The answer of [`Algorithm::reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The units are taken for the instant `valid_at` (which may be now).
    Reserved {
        /// When the reserved units become valid: start no earlier than this.
        valid_at: Nanos,
        /// The bucket after the reservation.
        snapshot: Snapshot,
    },
    /// The next slot is further away than the caller's `max_wait`; nothing was taken.
    TooFar {
        /// When the slot would have been valid.
        valid_at: Nanos,
        /// The bucket now.
        snapshot: Snapshot,
    },
}

impl Reservation {
    /// The reservation read as a check's answer: reserved means allowed; too far
    /// means denied until the slot's instant.
    pub fn into_verdict(self) -> Verdict {
        match self {
            Reservation::Reserved { snapshot, .. } => Verdict::Allowed(snapshot),
            Reservation::TooFar { valid_at, snapshot } => Verdict::Denied {
                retry_at: valid_at,
                snapshot,
            },
        }
    }
}

/// A rate-limiting algorithm: the math of one bucket, given its state and a quota.
///
/// Implementations must be safe to call from many threads on one state at once, and
/// must never panic: arithmetic saturates, and a cost above what the quota can ever
/// admit is the typed error [`CostTooLarge`].
pub trait Algorithm: Send + Sync + 'static {
    /// The state of one bucket.
    type State: Send + Sync + 'static;

    /// A fresh bucket, as after a long idle time (full).
    fn new_state(&self, quota: &Quota) -> Self::State;

    /// Take `cost` units at `now` if they fit.
    ///
    /// # Errors
    /// [`CostTooLarge`] when `cost` exceeds what the quota can ever admit at once.
    fn check(
        &self,
        state: &Self::State,
        quota: &Quota,
        now: Nanos,
        cost: u64,
    ) -> Result<Verdict, CostTooLarge>;

    /// [`Algorithm::check`] without the snapshot, for a caller that only needs to
    /// know whether to go: an algorithm may skip the arithmetic of `remaining` and
    /// `reset`. The default asks `check`.
    ///
    /// # Errors
    /// As for [`Algorithm::check`].
    #[inline]
    fn admit(
        &self,
        state: &Self::State,
        quota: &Quota,
        now: Nanos,
        cost: u64,
    ) -> Result<Admission, CostTooLarge> {
        Ok(match self.check(state, quota, now, cost)? {
            Verdict::Allowed(_) => Admission::Allowed,
            Verdict::Denied { retry_at, .. } => Admission::denied(retry_at, now),
        })
    }

    /// Like [`Algorithm::check`], but takes nothing.
    ///
    /// # Errors
    /// As for [`Algorithm::check`].
    fn peek(
        &self,
        state: &Self::State,
        quota: &Quota,
        now: Nanos,
        cost: u64,
    ) -> Result<Verdict, CostTooLarge>;

    /// Take the next `cost` units even if they are valid only later, unless that is
    /// more than `max_wait` nanoseconds after `now`.
    ///
    /// # Errors
    /// As for [`Algorithm::check`].
    fn reserve(
        &self,
        state: &Self::State,
        quota: &Quota,
        now: Nanos,
        cost: u64,
        max_wait: Nanos,
    ) -> Result<Reservation, CostTooLarge>;

    /// [`reserve`](Algorithm::reserve), calling `booking()` when the units it takes
    /// start later than `now`: before it takes them, where a give-back depends on it
    /// ([`refund_taken_at_unless_booked`](Algorithm::refund_taken_at_unless_booked)
    /// must not miss a reservation that took the end of the debt). The default calls
    /// it after, which is right for algorithms whose give-back ignores it.
    fn reserve_noting(
        &self,
        state: &Self::State,
        quota: &Quota,
        now: Nanos,
        cost: u64,
        max_wait: Nanos,
        booking: &dyn Fn(),
    ) -> Result<Reservation, CostTooLarge> {
        let reservation = self.reserve(state, quota, now, cost, max_wait)?;
        if matches!(reservation, Reservation::Reserved { valid_at, .. } if valid_at > now) {
            booking();
        }
        Ok(reservation)
    }

    /// The bucket at `now`, taking nothing.
    fn snapshot(&self, state: &Self::State, quota: &Quota, now: Nanos) -> Snapshot;

    /// Whether the state at `now` equals a fresh one, so that a keyed limiter may drop
    /// it without changing any future decision.
    fn is_idle(&self, state: &Self::State, quota: &Quota, now: Nanos) -> bool;

    /// Re-expresses a bucket's state after its quota changed from `old` to `new`, so
    /// that it keeps its fill level in units (a bucket owing 3 units under the old
    /// quota owes 3 under the new one, at the new spacing), up to the new burst: an
    /// empty bucket is empty under any quota, so it owes at most the new burst, plus
    /// the units booked ahead beyond the old one. The default does nothing,
    /// which is right for algorithms that count units rather than time.
    fn rescale(&self, _state: &Self::State, _old: &Quota, _new: &Quota, _now: Nanos) {}

    /// Whether [`rescale`](Algorithm::rescale) moves units booked ahead in proportion
    /// to the emission interval (a state that is time, like GCRA's): a request
    /// sleeping until such a booking then moves its start the same way. The default,
    /// `false`, is right for algorithms whose bookings are counts in given windows.
    fn rescales_bookings(&self) -> bool {
        false
    }

    /// Where a unit booked `offset` after a quota change from `old` to `new` starts
    /// now, as [`rescale`](Algorithm::rescale) moved the state, for algorithms that
    /// [`rescales_bookings`](Algorithm::rescales_bookings). The default scales the
    /// offset by the emission intervals, which is right when a booking's start does not
    /// depend on the burst.
    fn moved_slot(&self, old: &Quota, new: &Quota, offset: Nanos) -> Nanos {
        scale_time(offset, old.interval_nanos(), new.interval_nanos())
    }

    /// Gives back `cost` units that a check took just now and that went unused (the
    /// request will not start after all). Only for units taken moments ago by a check:
    /// units whose slot has passed, or that sit before later reservations, are counted
    /// in others' schedule, and giving them back would admit more than the quota. The
    /// bucket never ends up fuller than full. The default gives nothing back.
    fn refund(&self, _state: &Self::State, _quota: &Quota, _cost: u64, _now: Nanos) {}

    /// Gives back, at `now`, `cost` units that a check took at `taken_at` (a request
    /// whose first unit readiness took before it knew its cost, or that a pause held
    /// since). Only what time has not already refilled may come back: given back in
    /// full after the bucket refilled, the units would come out of later requests'
    /// bookings. The default gives them back as of `taken_at`, which is right for
    /// algorithms that count units where they were taken (a window's count, a log's
    /// entry); algorithms that count time override it.
    fn refund_taken_at(
        &self,
        state: &Self::State,
        quota: &Quota,
        cost: u64,
        taken_at: Nanos,
        _now: Nanos,
    ) {
        self.refund(state, quota, cost, taken_at);
    }

    /// [`refund_taken_at`](Algorithm::refund_taken_at), unless `booked_since()` says
    /// that a reservation that may start later than now was made after `taken_at`: a
    /// state that is time gives back from the end of its debt, and that end is then
    /// the later reservation's, whose start is already fixed (moving it back would
    /// start a newcomer in its slot). `booked_since` is asked at each attempt to
    /// update the state, after the state is read. The default, for algorithms that
    /// give back where the units were taken (a window's count, a log's entry), ignores
    /// it.
    #[allow(clippy::too_many_arguments)]
    fn refund_taken_at_unless_booked(
        &self,
        state: &Self::State,
        quota: &Quota,
        cost: u64,
        taken_at: Nanos,
        now: Nanos,
        booked_since: &dyn Fn() -> bool,
    ) {
        let _ = booked_since;
        self.refund_taken_at(state, quota, cost, taken_at, now);
    }

    /// Empties the bucket as of `at` (never fills it): from then on units come at the
    /// quota's rate, one at `at` and the next an interval later, with nothing saved
    /// for a burst. For a limiter that a server has refused: what the bucket saved
    /// while it waited is not the server's to give. The default does nothing, which
    /// is right for the leaky bucket (it saves nothing) and what the window algorithms
    /// keep: a window's count is their burst.
    fn drain_until(&self, _state: &Self::State, _quota: &Quota, _at: Nanos) {}

    /// The largest cost this algorithm can ever admit under `quota` at once.
    fn max_cost(&self, quota: &Quota) -> u64 {
        quota.burst()
    }

    /// How far ahead a keyed store lets a key's requests book, whatever their
    /// `max_wait`: where each booking adds to the state (a sliding log's entries), a
    /// hot key whose waiters give up would otherwise grow without bound. The default
    /// is unbounded. The single-key stores do not apply it: there, bookings are
    /// bounded by the callers holding readiness.
    fn booking_horizon(&self, _quota: &Quota) -> Nanos {
        Nanos::MAX
    }

    /// An ordering key for eviction: the instant the bucket is full again (as fresh as
    /// a new one), comparable across keys of different quotas. Keyed limiters that
    /// are full evict the smallest: the keys whose eviction would admit least. The
    /// window algorithms answer when a bucket holding the units their windows count,
    /// refilling at the quota's rate, would be full, so that the units used rank keys
    /// of one window apart.
    fn busy_until(&self, state: &Self::State, quota: &Quota) -> Nanos;

    /// When the state is idle ([`is_idle`](Algorithm::is_idle)) if nothing more is
    /// taken: when a full keyed store that refuses new keys can drop it and make room.
    /// The default is [`busy_until`](Algorithm::busy_until), which is that instant
    /// where the state is time; the window algorithms override it, since a window's
    /// units count until the window ends, however few they are.
    fn idle_at(&self, state: &Self::State, quota: &Quota) -> Nanos {
        self.busy_until(state, quota)
    }
}

/// The index, in windows of `new_period`, of a window state kept as an index of
/// `old_period`: the new window holding the old one's start, or the one holding `now`
/// if that start has passed. Window indices count periods since the epoch, so kept as
/// they are after a change of period they would read as a window centuries ahead (a
/// longer period) or long past (a shorter one).
fn reindex_window(index: u64, old_period: Nanos, new_period: Nanos, now: Nanos) -> u64 {
    index.saturating_mul(old_period).max(now) / new_period
}

/// The start of window `index` counted in `counted_in` (0: not yet decided on, so in
/// the quota's period).
fn window_start(index: u64, counted_in: Nanos, quota: &Quota) -> Nanos {
    index.saturating_mul(counted_period(counted_in, quota))
}

/// The period a window state was counted in (`0`: the quota's).
fn counted_period(counted_in: Nanos, quota: &Quota) -> Nanos {
    match counted_in {
        0 => quota.period_nanos(),
        period => period,
    }
}

/// A window algorithm's eviction rank ([`Algorithm::busy_until`]): when a bucket holding
/// `units` of `quota` from `since`, refilling at its rate, would be full again. Ranked
/// by the units, not only by the window, which every key used in it shares: evicting
/// a key that drained its count would admit the whole count again.
fn full_again(since: Nanos, units: u64, quota: &Quota) -> Nanos {
    since.saturating_add(scale_time(quota.period_nanos(), quota.count(), units).max(1))
}

#[cold]
fn cost_error(cost: u64, max: u64) -> CostTooLarge {
    CostTooLarge { cost, max }
}

#[inline]
/// `time × to / from`, saturating (a span measured in one interval, in another).
pub(crate) fn scale_time(time: Nanos, from: u64, to: u64) -> Nanos {
    let scaled = u128::from(time) * u128::from(to) / u128::from(from.max(1));
    u64::try_from(scaled).unwrap_or(u64::MAX)
}

fn nanos_to_duration(nanos: u64) -> Duration {
    Duration::from_nanos(nanos)
}
