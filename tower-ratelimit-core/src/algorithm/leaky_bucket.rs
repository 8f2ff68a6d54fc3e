//! The leaky bucket: strict spacing, no burst.
//!
//! ```
//! use tower_ratelimit_core::algorithm::{Algorithm, LeakyBucket, Verdict};
//! use tower_ratelimit_core::Quota;
//!
//! let quota = Quota::per_second(100)?; // strict 10 ms; the burst (100) caps one cost
//! let bucket = LeakyBucket.new_state(&quota);
//! assert!(matches!(LeakyBucket.check(&bucket, &quota, 0, 1)?, Verdict::Allowed(_)));
//! let Verdict::Denied { retry_at, .. } = LeakyBucket.check(&bucket, &quota, 0, 1)? else { panic!() };
//! assert_eq!(retry_at, 10_000_000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The math
//!
//! A leaky bucket as a **meter** lets a unit pass when the previous one left at least
//! one emission interval `T` ago: it is GCRA with the burst fixed at 1, so its state
//! is the same single timestamp `tat` (the instant the next unit may leave) and the
//! test is `max(tat, now) + n × T − now ≤ T`. Costs above 1 are spread: a request of
//! cost `n` may start when the bucket is empty and pushes the next one `n × T` later.
//! The quota's burst plays one role here: it bounds a single request's cost (a cost
//! above it is [`CostTooLarge`]), so that no one request
//! books more than `burst × T` of the future.
//!
//! As a **queue**, the same bucket is used through [`Algorithm::reserve`] (the wait
//! mode of the rate layer): each request takes the next free slot and leaves exactly
//! `T` after the one before it; the depth of the queue is bounded by the caller's
//! `max_wait` (or, in the layer, by its FIFO of waiters and the concurrency limit).

use super::gcra::{GcraState, Params};
use super::{cost_error, Admission, Algorithm, Nanos, Reservation, Snapshot, Verdict};
use crate::error::CostTooLarge;
use crate::quota::Quota;

/// The leaky bucket: GCRA with burst 1, so units leave exactly one emission interval
/// apart. See the [module docs](self).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeakyBucket;

/// The GCRA parameters that let `cost` pass only when the bucket is empty.
fn spacing(quota: &Quota, cost: u64) -> Result<Params, CostTooLarge> {
    // One request books at most the quota's burst of intervals, so a caller-derived
    // cost (bytes, rows) cannot push the next start months away.
    if cost > quota.burst() {
        return Err(cost_error(cost, quota.burst()));
    }
    Ok(bucket_of(quota, cost.max(1)))
}

/// A GCRA bucket of `size` units at the quota's rate; `size` ≤ the quota's burst, whose
/// span `Quota` validated.
fn bucket_of(quota: &Quota, size: u64) -> Params {
    let interval = quota.interval_nanos();
    Params {
        interval,
        interval_reciprocal: quota.interval_reciprocal(),
        burst: size,
        capacity: interval * size,
    }
}

impl Algorithm for LeakyBucket {
    type State = GcraState;

    fn new_state(&self, _quota: &Quota) -> GcraState {
        GcraState::default()
    }

    fn check(
        &self,
        state: &GcraState,
        quota: &Quota,
        now: Nanos,
        cost: u64,
    ) -> Result<Verdict, CostTooLarge> {
        state.check(spacing(quota, cost)?, now, cost).map(limit_one)
    }

    fn admit(
        &self,
        state: &GcraState,
        quota: &Quota,
        now: Nanos,
        cost: u64,
    ) -> Result<Admission, CostTooLarge> {
        state.admit(spacing(quota, cost)?, now, cost)
    }

    fn peek(
        &self,
        state: &GcraState,
        quota: &Quota,
        now: Nanos,
        cost: u64,
    ) -> Result<Verdict, CostTooLarge> {
        state.peek(spacing(quota, cost)?, now, cost).map(limit_one)
    }

    fn reserve(
        &self,
        state: &GcraState,
        quota: &Quota,
        now: Nanos,
        cost: u64,
        max_wait: Nanos,
    ) -> Result<Reservation, CostTooLarge> {
        state.reserve(spacing(quota, cost)?, now, cost, max_wait)
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
        state.reserve_noting(spacing(quota, cost)?, now, cost, max_wait, booking)
    }

    fn snapshot(&self, state: &GcraState, quota: &Quota, now: Nanos) -> Snapshot {
        one_at_a_time(state.snapshot(bucket_of(quota, 1), now))
    }

    /// Every unit a leaky bucket owes is a booked slot (a unit passes only when
    /// `tat <= now`), so all of it is kept in units, as `moved_slot` moves the slots.
    fn rescale(&self, state: &GcraState, old: &Quota, new: &Quota, now: Nanos) {
        state.rescale_units(old.interval_nanos(), new.interval_nanos(), now);
    }

    fn refund(&self, state: &GcraState, quota: &Quota, cost: u64, now: Nanos) {
        state.refund(quota.interval_nanos(), cost, now);
    }

    fn rescales_bookings(&self) -> bool {
        true
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
            quota.interval_nanos(),
        );
    }

    fn is_idle(&self, state: &GcraState, _quota: &Quota, now: Nanos) -> bool {
        state.is_idle(now)
    }

    fn max_cost(&self, quota: &Quota) -> u64 {
        quota.burst()
    }

    fn busy_until(&self, state: &GcraState, _quota: &Quota) -> Nanos {
        state.last_busy()
    }
}

/// The bucket as a meter shows it: it holds one unit at most.
fn one_at_a_time(mut snapshot: Snapshot) -> Snapshot {
    snapshot.limit = 1;
    snapshot.remaining = snapshot.remaining.min(1);
    snapshot
}

fn limit_one(verdict: Verdict) -> Verdict {
    match verdict {
        Verdict::Allowed(s) => Verdict::Allowed(one_at_a_time(s)),
        Verdict::Denied { retry_at, snapshot } => Verdict::Denied {
            retry_at,
            snapshot: one_at_a_time(snapshot),
        },
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Reference model: remember when the last admitted unit left; admit when at
        /// least its cost × T has passed since.
        #[test]
        fn admits_with_strict_spacing(
            rate in 1u64..1_000,
            steps in proptest::collection::vec((0u64..50_000_000, 1u64..4), 1..200),
        ) {
            let q = Quota::per_second(rate).unwrap().with_burst(4).unwrap(); // costs up to 4
            let t = q.interval_nanos();
            let s = LeakyBucket.new_state(&q);
            let mut next_free = 0u64;
            let mut now = 0u64;
            for (dt, cost) in steps {
                now += dt;
                let got = LeakyBucket.check(&s, &q, now, cost).unwrap();
                if now >= next_free {
                    prop_assert!(matches!(got, Verdict::Allowed(_)));
                    next_free = now + cost * t;
                } else {
                    let denied_until_free = matches!(got, Verdict::Denied { retry_at, .. } if retry_at == next_free);
                    prop_assert!(denied_until_free);
                }
            }
        }
    }

    #[test]
    fn queue_mode_spaces_reservations() {
        let q = Quota::per_second(4).unwrap();
        let s = LeakyBucket.new_state(&q);
        let slots: Vec<_> = (0..3)
            .map(
                |_| match LeakyBucket.reserve(&s, &q, 0, 1, u64::MAX).unwrap() {
                    Reservation::Reserved { valid_at, .. } => valid_at,
                    r => panic!("{r:?}"),
                },
            )
            .collect();
        assert_eq!(slots, vec![0, 250_000_000, 500_000_000]);
    }
}
