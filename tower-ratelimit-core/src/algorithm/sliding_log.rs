//! The sliding window log: exactly `count` units in any window of `period`.
//!
//! ```
//! use tower_ratelimit_core::algorithm::{Algorithm, SlidingLog, Verdict};
//! use tower_ratelimit_core::Quota;
//!
//! let quota = Quota::per_second(2)?;
//! let log = SlidingLog.new_state(&quota);
//! let ms = 1_000_000;
//! SlidingLog.check(&log, &quota, 0, 1)?;
//! SlidingLog.check(&log, &quota, 400 * ms, 1)?;
//! // The window (t − 1 s, t] holds two until the first entry expires at 1 s.
//! let Verdict::Denied { retry_at, .. } = SlidingLog.check(&log, &quota, 500 * ms, 1)? else { panic!() };
//! assert_eq!(retry_at, 1_000 * ms);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The math
//!
//! The state is the log of admitted requests `(t_i, cost_i)`, oldest first. A request
//! of cost `n` at `now` passes when the units logged in `(now − P, now]` plus `n` are at
//! most `count`; entries at or before `now − P` are dropped as they expire, so the log
//! holds at most `count` entries: memory is proportional to the limit.
//!
//! When it does not fit, enough of the oldest entries must expire first: with
//! `excess = used + n − count`, walk the log from the oldest entry, adding costs until
//! they reach `excess`; the request fits at that entry's time plus `P`.
//!
//! A **reservation** appends an entry at that future instant; entries stay in time
//! order, and a later check counts reserved entries too, so reservations keep their
//! order and no window of length `P` ever holds more than `count` units. In a keyed
//! store a reservation reaches at most one period ahead (a longer wait is refused,
//! whatever the caller's `max_wait`), so that a key's log holds at most `2 × count`
//! entries however many of its waiters give up.

use super::sync::{lock, Mutex};
use super::{cost_error, nanos_to_duration, Algorithm, Nanos, Reservation, Snapshot, Verdict};
use crate::error::CostTooLarge;
use crate::quota::Quota;
use std::collections::VecDeque;

/// An exact sliding window of `count` units per `period`, memory ∝ `count`; in a keyed
/// store it books at most one period ahead. See the [module docs](self).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlidingLog;

/// The bucket of a [`SlidingLog`] limiter: the log of admitted units.
#[derive(Debug, Default)]
pub struct SlidingLogState {
    log: Mutex<Log>,
}

#[derive(Debug, Default)]
struct Log {
    entries: VecDeque<(Nanos, u64)>,
    used: u64,
}

impl Log {
    fn expire(&mut self, now: Nanos, period: Nanos) {
        while let Some(&(t, cost)) = self.entries.front() {
            if t.saturating_add(period) > now {
                break;
            }
            self.entries.pop_front();
            self.used -= cost;
        }
    }

    /// The earliest instant (not before `now` nor the last entry) at which `cost` fits.
    fn earliest(&self, now: Nanos, period: Nanos, count: u64, cost: u64) -> Nanos {
        let floor = self.entries.back().map_or(now, |&(t, _)| t.max(now));
        let Some(excess) = (self.used + cost).checked_sub(count).filter(|&e| e > 0) else {
            return floor;
        };
        let mut freed = 0;
        for &(t, c) in &self.entries {
            freed += c;
            if freed >= excess {
                return floor.max(t.saturating_add(period));
            }
        }
        floor
    }

    fn snapshot(&self, now: Nanos, period: Nanos, count: u64) -> Snapshot {
        // Full again when the newest entry (a booking ahead included) expires.
        let reset = self
            .entries
            .back()
            .map_or(0, |&(t, _)| t.saturating_add(period).saturating_sub(now));
        // Booked ahead, nothing fits before the last entry (the floor of `earliest`).
        // The log may also have been expired as of that later instant (several quotas
        // reserve each at the instant the request starts), so `used` undercounts now.
        let booked_ahead = self.entries.back().is_some_and(|&(t, _)| t > now);
        Snapshot {
            limit: count,
            remaining: if booked_ahead {
                0
            } else {
                count.saturating_sub(self.used)
            },
            reset: nanos_to_duration(reset),
        }
    }

    /// Removes up to `cost` units from the latest entries logged at or before `now`.
    fn take_back(&mut self, mut cost: u64, now: Nanos) {
        let mut index = self.entries.len();
        while cost > 0 && index > 0 {
            index -= 1;
            let (at, units) = &mut self.entries[index];
            if *at > now {
                continue;
            }
            let taken = cost.min(*units);
            *units -= taken;
            self.used -= taken;
            cost -= taken;
        }
        self.entries.retain(|&(_, units)| units > 0);
    }

    fn push(&mut self, at: Nanos, cost: u64) {
        if cost > 0 {
            self.entries.push_back((at, cost));
            self.used += cost;
        }
    }
}

impl SlidingLog {
    fn decide(
        &self,
        state: &SlidingLogState,
        quota: &Quota,
        now: Nanos,
        cost: u64,
        max_wait: Option<Nanos>,
        take: bool,
    ) -> Result<Reservation, CostTooLarge> {
        let (count, period) = (quota.count(), quota.period_nanos());
        if cost > count {
            return Err(cost_error(cost, count));
        }
        let mut log = lock(&state.log);
        log.expire(now, period);
        let valid_at = log.earliest(now, period, count, cost);
        if valid_at - now > max_wait.unwrap_or(0) {
            return Ok(Reservation::TooFar {
                valid_at,
                snapshot: log.snapshot(now, period, count),
            });
        }
        if take {
            log.push(valid_at, cost);
        }
        let mut snapshot = log.snapshot(now, period, count);
        if !take {
            snapshot.remaining = snapshot.remaining.saturating_sub(cost);
        }
        Ok(Reservation::Reserved { valid_at, snapshot })
    }
}

impl Algorithm for SlidingLog {
    type State = SlidingLogState;

    fn new_state(&self, _quota: &Quota) -> SlidingLogState {
        SlidingLogState::default()
    }

    fn check(
        &self,
        state: &SlidingLogState,
        quota: &Quota,
        now: Nanos,
        cost: u64,
    ) -> Result<Verdict, CostTooLarge> {
        self.decide(state, quota, now, cost, None, true)
            .map(Reservation::into_verdict)
    }

    fn peek(
        &self,
        state: &SlidingLogState,
        quota: &Quota,
        now: Nanos,
        cost: u64,
    ) -> Result<Verdict, CostTooLarge> {
        self.decide(state, quota, now, cost, None, false)
            .map(Reservation::into_verdict)
    }

    fn reserve(
        &self,
        state: &SlidingLogState,
        quota: &Quota,
        now: Nanos,
        cost: u64,
        max_wait: Nanos,
    ) -> Result<Reservation, CostTooLarge> {
        self.decide(state, quota, now, cost, Some(max_wait), true)
    }

    fn snapshot(&self, state: &SlidingLogState, quota: &Quota, now: Nanos) -> Snapshot {
        let mut log = lock(&state.log);
        log.expire(now, quota.period_nanos());
        log.snapshot(now, quota.period_nanos(), quota.count())
    }

    /// Removes the most recent `cost` units from the log (at most those logged by
    /// `now`: later entries are reservations).
    fn refund(&self, state: &SlidingLogState, quota: &Quota, cost: u64, now: Nanos) {
        let mut log = lock(&state.log);
        log.expire(now, quota.period_nanos());
        log.take_back(cost, now);
    }

    fn is_idle(&self, state: &SlidingLogState, quota: &Quota, now: Nanos) -> bool {
        let mut log = lock(&state.log);
        log.expire(now, quota.period_nanos());
        log.entries.is_empty()
    }

    fn max_cost(&self, quota: &Quota) -> u64 {
        quota.count()
    }

    /// One period: a keyed log then holds at most `2 × count` entries, however many
    /// waiters of a hot key give up (each left an entry behind, and each booking
    /// walked all of them).
    fn booking_horizon(&self, quota: &Quota) -> Nanos {
        quota.period_nanos()
    }

    fn busy_until(&self, state: &SlidingLogState, quota: &Quota) -> Nanos {
        // From the newest entry: a key that drained its count a moment before a key
        // that sent once ranks later, though its newest entry is older.
        let log = lock(&state.log);
        log.entries.back().map_or(0, |&(t, _)| {
            super::full_again(t, log.used.min(quota.count()), quota)
        })
    }

    /// When the newest entry leaves the log.
    fn idle_at(&self, state: &SlidingLogState, quota: &Quota) -> Nanos {
        let log = lock(&state.log);
        log.entries
            .back()
            .map_or(0, |&(t, _)| t.saturating_add(quota.period_nanos()))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Reference model: keep every admitted request and count the window by brute force.
        #[test]
        fn matches_brute_force_window(
            count in 1u64..12,
            period_ms in 1u64..1_000,
            steps in proptest::collection::vec((0u64..200_000_000, 1u64..4), 1..250),
        ) {
            let q = Quota::new(count, std::time::Duration::from_millis(period_ms)).unwrap();
            let p = q.period_nanos();
            let s = SlidingLog.new_state(&q);
            let mut admitted: Vec<(u64, u64)> = vec![];
            let mut now = 0;
            for (dt, cost) in steps {
                now += dt;
                let got = SlidingLog.check(&s, &q, now, cost);
                if cost > count {
                    prop_assert!(got.is_err());
                    continue;
                }
                let used: u64 = admitted.iter().filter(|(t, _)| t + p > now).map(|(_, c)| c).sum();
                if used + cost <= count {
                    admitted.push((now, cost));
                    prop_assert!(matches!(got, Ok(Verdict::Allowed(_))));
                } else {
                    let retry_at = match got { Ok(Verdict::Denied { retry_at, .. }) => retry_at, other => {
                        prop_assert!(false, "expected a denial, got {:?}", other); unreachable!() } };
                    // At retry_at the brute-force window has room, and not a nanosecond before.
                    let used_at = |t: u64| -> u64 { admitted.iter().filter(|(a, _)| a + p > t && *a <= t).map(|(_, c)| c).sum() };
                    prop_assert!(used_at(retry_at) + cost <= count);
                    prop_assert!(used_at(retry_at - 1) + cost > count);
                }
                prop_assert!(admitted.iter().filter(|(t, _)| t + p > now).count() as u64 <= count);
            }
        }
    }

    #[test]
    fn memory_is_bounded_by_count() {
        let q = Quota::new(3, std::time::Duration::from_secs(1)).unwrap();
        let s = SlidingLog.new_state(&q);
        for i in 0..10_000u64 {
            let _ = SlidingLog.check(&s, &q, i * 1_000_000, 1);
            assert!(lock(&s.log).entries.len() <= 3);
        }
    }
}
