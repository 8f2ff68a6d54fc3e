//! GCRA, the generic cell rate algorithm: a token bucket kept as one timestamp.
//!
//! ```
//! use tower_ratelimit_core::algorithm::{Algorithm, Gcra, Verdict};
//! use tower_ratelimit_core::Quota;
//!
//! let quota = Quota::per_second(10)?.with_burst(2)?; // T = 100 ms, C = 200 ms
//! let bucket = Gcra.new_state(&quota);
//! let ms = 1_000_000;
//! assert!(matches!(Gcra.check(&bucket, &quota, 0, 2)?, Verdict::Allowed(_)));
//! // Empty: one unit refills after T.
//! let Verdict::Denied { retry_at, .. } = Gcra.check(&bucket, &quota, 0, 1)? else { panic!() };
//! assert_eq!(retry_at, 100 * ms);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The math
//!
//! A quota gives the **emission interval** `T = period / count` and the burst `B`.
//! The bucket's whole state is the **theoretical arrival time** `tat`: the instant at
//! which the bucket would be full again if nothing more arrived. A bucket that holds
//! `k` units "owes" `(B − k) × T` of time, so `tat = now + (B − k) × T` and a fresh
//! bucket has `tat ≤ now`.
//!
//! A request of cost `n` at `now` computes `new = max(tat, now) + n × T` and is
//! **allowed** when `new − now ≤ B × T` (the capacity `C`), in which case `tat := new`.
//! Otherwise it is **denied** and could pass at `retry_at = new − C`, when the
//! bucket has refilled just enough. A cost above `B` can never pass and is an error.
//!
//! From that one number follow everything a server reports:
//! `remaining = ⌊(C − (tat − now)) / T⌋` and `reset = tat − now` (time until full).
//! Over any window of length `D`, at most `B + ⌊D / T⌋` units are admitted.
//!
//! A **reservation** takes the slot even if it lies in the future: `tat := new`, and
//! the caller starts at `valid_at = max(new − C, now)`.
//!
//! The state is one `AtomicU64` updated by a compare-and-swap loop: no lock, and a
//! denial writes nothing.

use super::sync::{AtomicU64, Ordering};
use super::{
    cost_error, nanos_to_duration, Admission, Algorithm, Nanos, Reservation, Snapshot, Verdict,
};
use crate::error::CostTooLarge;
use crate::quota::{divide, Quota};

/// The generic cell rate algorithm (a token bucket of size `burst`, refilled one unit
/// every emission interval). The default algorithm. See the [module docs](self).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gcra;

/// The bucket of a [`Gcra`] (and [`super::LeakyBucket`]) limiter: its theoretical
/// arrival time.
#[derive(Debug, Default)]
pub struct GcraState {
    tat: AtomicU64,
}

/// The quota's numbers as GCRA uses them.
#[derive(Clone, Copy)]
pub(super) struct Params {
    pub(super) interval: u64,
    pub(super) interval_reciprocal: u64,
    pub(super) burst: u64,
    pub(super) capacity: u64,
}

impl Params {
    #[inline]
    pub(super) fn of(quota: &Quota) -> Params {
        Params {
            interval: quota.interval_nanos(),
            interval_reciprocal: quota.interval_reciprocal(),
            burst: quota.burst(),
            capacity: quota.capacity_nanos(),
        }
    }

    #[inline]
    fn increment(&self, cost: u64) -> Result<u64, CostTooLarge> {
        if cost > self.burst {
            return Err(cost_error(cost, self.burst));
        }
        // Quota validates burst × interval, but the leaky bucket sets `burst` from the
        // cost, so the product is checked rather than trusted.
        cost.checked_mul(self.interval)
            .filter(|&increment| increment <= self.capacity)
            .ok_or_else(|| cost_error(cost, self.burst))
    }

    #[inline]
    fn snapshot(&self, tat: u64, now: Nanos) -> Snapshot {
        let owed = tat.saturating_sub(now);
        Snapshot {
            limit: self.burst,
            remaining: divide(
                self.capacity.saturating_sub(owed),
                self.interval,
                self.interval_reciprocal,
            ),
            reset: nanos_to_duration(owed),
        }
    }
}

impl GcraState {
    #[inline]
    fn load(&self) -> u64 {
        self.tat.load(Ordering::Relaxed)
    }

    /// Takes `cost` units if they fit: `Ok(new TAT)`, or `Err(TAT)` as it was seen when
    /// they did not.
    #[inline]
    fn take(&self, p: Params, now: Nanos, cost: u64) -> Result<Result<u64, u64>, CostTooLarge> {
        let increment = p.increment(cost)?;
        let mut tat = self.load();
        loop {
            let new = tat.max(now).saturating_add(increment);
            if new - now > p.capacity {
                return Ok(Err(tat));
            }
            match self
                .tat
                .compare_exchange_weak(tat, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(Ok(new)),
                Err(actual) => tat = actual,
            }
        }
    }

    /// The earliest instant at which `increment` fits on a bucket at `tat`.
    #[inline]
    fn retry_at(p: Params, tat: u64, now: Nanos, increment: u64) -> Nanos {
        tat.max(now).saturating_add(increment) - p.capacity
    }

    #[inline]
    pub(super) fn check(&self, p: Params, now: Nanos, cost: u64) -> Result<Verdict, CostTooLarge> {
        Ok(match self.take(p, now, cost)? {
            Ok(new) => Verdict::Allowed(p.snapshot(new, now)),
            Err(tat) => Verdict::Denied {
                retry_at: GcraState::retry_at(p, tat, now, p.increment(cost)?),
                snapshot: p.snapshot(tat, now),
            },
        })
    }

    #[inline]
    pub(super) fn admit(
        &self,
        p: Params,
        now: Nanos,
        cost: u64,
    ) -> Result<Admission, CostTooLarge> {
        Ok(match self.take(p, now, cost)? {
            Ok(_) => Admission::Allowed,
            Err(tat) => {
                Admission::denied(GcraState::retry_at(p, tat, now, p.increment(cost)?), now)
            }
        })
    }

    #[inline]
    pub(super) fn peek(&self, p: Params, now: Nanos, cost: u64) -> Result<Verdict, CostTooLarge> {
        let increment = p.increment(cost)?;
        let tat = self.load();
        let new = tat.max(now).saturating_add(increment);
        Ok(if new - now > p.capacity {
            Verdict::Denied {
                retry_at: new - p.capacity,
                snapshot: p.snapshot(tat, now),
            }
        } else {
            Verdict::Allowed(p.snapshot(new, now))
        })
    }

    #[inline]
    pub(super) fn reserve(
        &self,
        p: Params,
        now: Nanos,
        cost: u64,
        max_wait: Nanos,
    ) -> Result<Reservation, CostTooLarge> {
        self.reserve_noting(p, now, cost, max_wait, &|| {})
    }

    /// [`GcraState::reserve`], calling `booking()` before the units are taken when
    /// they start later than `now`.
    #[inline]
    pub(super) fn reserve_noting(
        &self,
        p: Params,
        now: Nanos,
        cost: u64,
        max_wait: Nanos,
        booking: &dyn Fn(),
    ) -> Result<Reservation, CostTooLarge> {
        let increment = p.increment(cost)?;
        let mut tat = self.load();
        loop {
            let new = tat.max(now).saturating_add(increment);
            let valid_at = new.saturating_sub(p.capacity).max(now);
            if valid_at - now > max_wait {
                return Ok(Reservation::TooFar {
                    valid_at,
                    snapshot: p.snapshot(tat, now),
                });
            }
            if valid_at > now {
                booking();
            }
            // Release: a give-back that reads this TAT also sees the store's mark of
            // this reservation, written before it (`refund_taken_at_unless_booked`).
            match self
                .tat
                .compare_exchange_weak(tat, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Ok(Reservation::Reserved {
                        valid_at,
                        snapshot: p.snapshot(new, now),
                    })
                }
                Err(actual) => tat = actual,
            }
        }
    }

    /// Keeps the units owed, as far as the new bucket can owe them: `tat − now` up to
    /// the old capacity is the bucket's fill level, kept in units but never past the
    /// new capacity (a bucket a throttle drained owes its whole burst, and is empty,
    /// not minutes in debt, under a much smaller one); the part beyond it is slots
    /// booked ahead, kept whole in units.
    pub(super) fn rescale(&self, old: &Quota, new: &Quota, now: Nanos) {
        let (old_interval, new_interval) = (old.interval_nanos(), new.interval_nanos());
        let _ = self
            .tat
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |tat| {
                let owed = tat.checked_sub(now).filter(|&o| o > 0)?;
                let fill = owed.min(old.capacity_nanos());
                let booked = owed - fill;
                let fill =
                    super::scale_time(fill, old_interval, new_interval).min(new.capacity_nanos());
                let booked = super::scale_time(booked, old_interval, new_interval);
                Some(now.saturating_add(fill.saturating_add(booked)))
            });
    }

    /// Keeps every unit owed, in units: `tat − now` scales by `T_new / T_old`. For a
    /// bucket whose whole debt is slots booked ahead (the leaky bucket has no fill
    /// level), so none of it is capped by the new burst.
    pub(super) fn rescale_units(&self, old_interval: u64, new_interval: u64, now: Nanos) {
        let _ = self
            .tat
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |tat| {
                let owed = tat.checked_sub(now).filter(|&o| o > 0)?;
                let scaled = super::scale_time(owed, old_interval, new_interval);
                Some(now.saturating_add(scaled))
            });
    }

    /// Moves the TAT back by `cost` intervals, but not before `now`: time that has
    /// passed refilled the bucket already.
    pub(super) fn refund(&self, interval: u64, cost: u64, now: Nanos) {
        self.refund_taken_at(interval, cost, now, now);
    }

    /// Gives back the part of `cost` units taken at `taken_at` that time has not
    /// refilled by `now`. Units are time here: a unit taken at `taken_at` ended at
    /// `taken_at + interval` at the earliest, so past that it may be spent, and the
    /// interval the TAT would lose is another request's booking.
    pub(super) fn refund_taken_at(&self, interval: u64, cost: u64, taken_at: Nanos, now: Nanos) {
        // No guard: for units a check took just now, the end of the debt is theirs.
        self.refund_taken_at_unless_booked(interval, cost, taken_at, now, &|| false, u64::MAX);
    }

    /// [`GcraState::refund_taken_at`], unless the end of the debt is a later
    /// reservation's when the TAT is read: `booked_since()` is true, or the latest slot
    /// the TAT holds (`tat − unit_capacity`) is still ahead of `now`.
    pub(super) fn refund_taken_at_unless_booked(
        &self,
        interval: u64,
        cost: u64,
        taken_at: Nanos,
        now: Nanos,
        booked_since: &dyn Fn() -> bool,
        unit_capacity: u64,
    ) {
        let taken = interval.saturating_mul(cost);
        let unspent = taken_at
            .saturating_add(taken)
            .saturating_sub(now)
            .min(taken);
        if unspent == 0 {
            return;
        }
        // Acquire: a reservation's mark, written before its TAT, is seen with it.
        let _ = self
            .tat
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                // The latest slot the TAT holds (`tat − capacity`) still ahead: a
                // sleeping booking, whose start is fixed by this TAT; giving back would
                // move a newcomer into its slot. One that has come due is starting, and
                // the give-back nets out with the whole cost booked after it. Read on
                // the store's one clock, unlike the mark `booked_since` reads.
                let latest_slot = tat.saturating_sub(unit_capacity);
                (tat > now && latest_slot <= now && !booked_since())
                    .then(|| tat.saturating_sub(unspent).max(now))
            });
    }

    /// At least `owed` of debt at `at`: a bucket that is empty then.
    pub(super) fn owe_at_least(&self, at: Nanos, owed: u64) {
        self.tat
            .fetch_max(at.saturating_add(owed), Ordering::Relaxed);
    }

    #[inline]
    pub(super) fn snapshot(&self, p: Params, now: Nanos) -> Snapshot {
        p.snapshot(self.load(), now)
    }

    pub(super) fn is_idle(&self, now: Nanos) -> bool {
        self.load() <= now
    }

    pub(super) fn last_busy(&self) -> Nanos {
        self.load()
    }
}

impl Algorithm for Gcra {
    type State = GcraState;

    fn new_state(&self, _quota: &Quota) -> GcraState {
        GcraState::default()
    }

    #[inline]
    fn check(
        &self,
        state: &GcraState,
        quota: &Quota,
        now: Nanos,
        cost: u64,
    ) -> Result<Verdict, CostTooLarge> {
        state.check(Params::of(quota), now, cost)
    }

    #[inline]
    fn admit(
        &self,
        state: &GcraState,
        quota: &Quota,
        now: Nanos,
        cost: u64,
    ) -> Result<Admission, CostTooLarge> {
        state.admit(Params::of(quota), now, cost)
    }

    fn peek(
        &self,
        state: &GcraState,
        quota: &Quota,
        now: Nanos,
        cost: u64,
    ) -> Result<Verdict, CostTooLarge> {
        state.peek(Params::of(quota), now, cost)
    }

    #[inline]
    fn reserve(
        &self,
        state: &GcraState,
        quota: &Quota,
        now: Nanos,
        cost: u64,
        max_wait: Nanos,
    ) -> Result<Reservation, CostTooLarge> {
        state.reserve(Params::of(quota), now, cost, max_wait)
    }

    #[inline]
    fn snapshot(&self, state: &GcraState, quota: &Quota, now: Nanos) -> Snapshot {
        state.snapshot(Params::of(quota), now)
    }

    fn rescale(&self, state: &GcraState, old: &Quota, new: &Quota, now: Nanos) {
        state.rescale(old, new, now);
    }

    fn refund(&self, state: &GcraState, quota: &Quota, cost: u64, now: Nanos) {
        state.refund(quota.interval_nanos(), cost, now);
    }

    fn rescales_bookings(&self) -> bool {
        true
    }

    /// A booking starts `capacity` before the TAT it left, and `rescale` scales the
    /// TAT's distance from now: the start moves with it, and by the change of capacity
    /// (a larger burst lets it start sooner).
    fn moved_slot(&self, old: &Quota, new: &Quota, offset: Nanos) -> Nanos {
        // The map `GcraState::rescale` applies to the TAT: the bucket's part capped.
        let (oi, ni) = (old.interval_nanos(), new.interval_nanos());
        let fill = super::scale_time(old.capacity_nanos(), oi, ni).min(new.capacity_nanos());
        super::scale_time(offset, oi, ni)
            .saturating_add(fill)
            .saturating_sub(new.capacity_nanos())
    }

    fn refund_taken_at(
        &self,
        state: &GcraState,
        quota: &Quota,
        cost: u64,
        taken_at: Nanos,
        now: Nanos,
    ) {
        state.refund_taken_at(quota.interval_nanos(), cost, taken_at, now);
    }

    fn reserve_noting(
        &self,
        state: &GcraState,
        quota: &Quota,
        now: Nanos,
        cost: u64,
        max_wait: Nanos,
        booking: &dyn Fn(),
    ) -> Result<Reservation, CostTooLarge> {
        state.reserve_noting(Params::of(quota), now, cost, max_wait, booking)
    }

    fn refund_taken_at_unless_booked(
        &self,
        state: &GcraState,
        quota: &Quota,
        cost: u64,
        taken_at: Nanos,
        now: Nanos,
        booked_since: &dyn Fn() -> bool,
    ) {
        state.refund_taken_at_unless_booked(
            quota.interval_nanos(),
            cost,
            taken_at,
            now,
            booked_since,
            quota.capacity_nanos(),
        );
    }

    /// Owes all but one unit at `at`: one may start then, the next an interval later.
    fn drain_until(&self, state: &GcraState, quota: &Quota, at: Nanos) {
        let owed = quota
            .capacity_nanos()
            .saturating_sub(quota.interval_nanos());
        state.owe_at_least(at, owed);
    }

    fn is_idle(&self, state: &GcraState, _quota: &Quota, now: Nanos) -> bool {
        state.is_idle(now)
    }

    fn busy_until(&self, state: &GcraState, _quota: &Quota) -> Nanos {
        state.last_busy()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::algorithm::Verdict;
    use proptest::prelude::*;
    use std::time::Duration;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_refund_gives_back_only_what_time_has_not_refilled() {
        // 10/s, burst 1: a unit taken at t0 is spent by t0 + 100 ms.
        let q = Quota::per_second(10).unwrap().with_burst(1).unwrap();
        let t0 = 5_000 * MS;
        let taken = |later_bookings: u64| {
            let s = Gcra.new_state(&q);
            assert!(matches!(Gcra.check(&s, &q, t0, 1), Ok(Verdict::Allowed(_))));
            for _ in 0..later_bookings {
                Gcra.reserve(&s, &q, t0, 1, u64::MAX).unwrap();
            }
            s
        };
        // Right away: the whole unit.
        let s = taken(0);
        Gcra.refund_taken_at(&s, &q, 1, t0, t0);
        assert_eq!(s.load(), t0);
        // 30 ms on: 70 ms of it.
        let s = taken(2);
        Gcra.refund_taken_at(&s, &q, 1, t0, t0 + 30 * MS);
        assert_eq!(s.load(), t0 + 230 * MS);
        // A unit's interval on, the TAT's tail is the later bookings': nothing.
        let s = taken(2);
        Gcra.refund_taken_at(&s, &q, 1, t0, t0 + 100 * MS);
        assert_eq!(s.load(), t0 + 300 * MS);
        // Never fuller than full.
        let s = taken(0);
        Gcra.refund_taken_at(&s, &q, 3, t0, t0 + 50 * MS);
        assert_eq!(s.load(), t0 + 50 * MS);
    }

    #[test]
    fn burst_then_spacing() {
        let q = Quota::per_second(10).unwrap().with_burst(3).unwrap();
        let s = Gcra.new_state(&q);
        let t0 = 5_000 * MS;
        for _ in 0..3 {
            assert!(matches!(Gcra.check(&s, &q, t0, 1), Ok(Verdict::Allowed(_))));
        }
        match Gcra.check(&s, &q, t0, 1).unwrap() {
            Verdict::Denied { retry_at, snapshot } => {
                assert_eq!(retry_at, t0 + 100 * MS);
                assert_eq!(snapshot.remaining, 0);
                assert_eq!(snapshot.reset, Duration::from_millis(300));
            }
            v => panic!("{v:?}"),
        }
        assert!(matches!(
            Gcra.check(&s, &q, t0 + 100 * MS, 1),
            Ok(Verdict::Allowed(_))
        ));
    }

    #[test]
    fn cost_above_burst_is_an_error() {
        let q = Quota::per_second(10).unwrap().with_burst(3).unwrap();
        let s = Gcra.new_state(&q);
        assert_eq!(
            Gcra.check(&s, &q, 0, 4),
            Err(CostTooLarge { cost: 4, max: 3 })
        );
        assert_eq!(
            Gcra.reserve(&s, &q, 0, 4, u64::MAX),
            Err(CostTooLarge { cost: 4, max: 3 })
        );
    }

    #[test]
    fn reserve_returns_future_slots_in_order() {
        let q = Quota::per_second(10).unwrap().with_burst(1).unwrap();
        let s = Gcra.new_state(&q);
        let t0 = 1_000 * MS;
        let mut slots = vec![];
        for _ in 0..4 {
            match Gcra.reserve(&s, &q, t0, 1, u64::MAX).unwrap() {
                Reservation::Reserved { valid_at, .. } => slots.push(valid_at),
                r => panic!("{r:?}"),
            }
        }
        assert_eq!(slots, vec![t0, t0 + 100 * MS, t0 + 200 * MS, t0 + 300 * MS]);
        assert!(matches!(
            Gcra.reserve(&s, &q, t0, 1, 350 * MS).unwrap(),
            Reservation::TooFar { valid_at, .. } if valid_at == t0 + 400 * MS
        ));
    }

    proptest! {
        /// `admit` is `check` without the snapshot: the same decision and the same
        /// retry time on twin buckets fed the same sequence, and the same state after.
        #[test]
        fn admit_decides_as_check_does(
            rate in 1u64..1_000,
            burst in 1u64..20,
            steps in proptest::collection::vec((0u64..50_000_000, 1u64..25), 1..200),
        ) {
            let q = Quota::per_second(rate).unwrap().with_burst(burst).unwrap();
            let (checked, admitted) = (Gcra.new_state(&q), Gcra.new_state(&q));
            let mut now = 0u64;
            for (dt, cost) in steps {
                now += dt;
                let expected = Gcra.check(&checked, &q, now, cost).map(|v| match v {
                    Verdict::Allowed(_) => Admission::Allowed,
                    Verdict::Denied { retry_at, .. } => Admission::Denied {
                        retry_after: Duration::from_nanos(retry_at - now),
                    },
                });
                prop_assert_eq!(Gcra.admit(&admitted, &q, now, cost), expected);
                prop_assert_eq!(admitted.last_busy(), checked.last_busy());
            }
        }

        /// Reference model: a token bucket with fractional tokens, refilled
        /// continuously. GCRA must agree with it on every decision.
        #[test]
        fn agrees_with_a_token_bucket(
            rate in 1u64..1_000,
            burst in 1u64..20,
            steps in proptest::collection::vec((0u64..50_000_000, 1u64..5), 1..200),
        ) {
            let q = Quota::per_second(rate).unwrap().with_burst(burst).unwrap();
            let t = q.interval_nanos() as u128;
            let s = Gcra.new_state(&q);
            // Tokens scaled by T, so refill is exact integer arithmetic.
            let cap = burst as u128 * t;
            let mut level = cap;
            let mut last = 0u128;
            let mut now = 0u64;
            for (dt, cost) in steps {
                now += dt;
                level = (level + (now as u128 - last)).min(cap);
                last = now as u128;
                let want = cost as u128 * t;
                let got = Gcra.check(&s, &q, now, cost);
                if cost > burst {
                    prop_assert!(got.is_err());
                } else if want <= level {
                    level -= want;
                    prop_assert!(matches!(got, Ok(Verdict::Allowed(_))));
                } else {
                    let ok = matches!(got, Ok(Verdict::Denied { retry_at, .. })
                        if retry_at as u128 == now as u128 + (want - level));
                    prop_assert!(ok, "expected a denial until the bucket refills");
                }
            }
        }

        /// Any window of length D admits at most B + ⌊D/T⌋ unit requests, whatever
        /// the arrival pattern.
        #[test]
        fn window_upper_bound(
            rate in 1u64..500,
            burst in 1u64..16,
            step in 1u64..5_000_000,
            window_steps in 1usize..400,
        ) {
            let q = Quota::per_second(rate).unwrap().with_burst(burst).unwrap();
            let t = q.interval_nanos();
            let s = Gcra.new_state(&q);
            let mut admitted = vec![];
            let mut now = 0;
            for _ in 0..2_000 {
                if let Ok(Verdict::Allowed(_)) = Gcra.check(&s, &q, now, 1) {
                    admitted.push(now);
                }
                now += step;
            }
            let d = window_steps as u64 * step;
            let bound = burst + d / t;
            for (i, start) in admitted.iter().enumerate() {
                let n = admitted[i..].iter().take_while(|&&a| a < start + d).count() as u64;
                prop_assert!(n <= bound, "{n} admitted in a window of {d} ns, bound {bound}");
            }
        }

        /// Under saturating demand (a caller that retries exactly at `retry_at`, as the
        /// wait mode does), every window [0, D] from a fresh bucket admits at least
        /// B + ⌊D/T⌋ − 1, and any window of length D at most B + ⌊D/T⌋.
        #[test]
        fn saturating_demand_meets_the_bound(
            rate in 1u64..2_000,
            burst in 1u64..16,
            horizon_ms in 1u64..3_000,
        ) {
            let q = Quota::per_second(rate).unwrap().with_burst(burst).unwrap();
            let t = q.interval_nanos();
            let s = Gcra.new_state(&q);
            let horizon = horizon_ms * 1_000_000;
            let mut admitted = vec![];
            let mut now = 0;
            while now <= horizon {
                match Gcra.check(&s, &q, now, 1).unwrap() {
                    Verdict::Allowed(_) => admitted.push(now),
                    Verdict::Denied { retry_at, .. } => now = retry_at,
                }
            }
            let d = horizon;
            let bound = burst + d / t;
            let n = admitted.iter().filter(|&&a| a <= d).count() as u64;
            prop_assert!(n + 1 >= bound, "{n} admitted in [0, {d}] ns, bound {bound}");
            for (i, start) in admitted.iter().enumerate() {
                let n = admitted[i..].iter().take_while(|&&a| a < start + d).count() as u64;
                prop_assert!(n <= bound);
            }
        }
    }
}
