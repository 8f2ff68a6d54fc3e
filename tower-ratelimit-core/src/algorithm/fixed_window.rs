//! The fixed window: at most `count` units in each clock-aligned window of `period`.
//!
//! ```
//! use tower_ratelimit_core::algorithm::{Algorithm, FixedWindow, Verdict};
//! use tower_ratelimit_core::Quota;
//!
//! let quota = Quota::per_minute(2)?;
//! let window = FixedWindow.new_state(&quota);
//! let minute = 60_000_000_000u64;
//! let now = 10 * minute + 59_000_000_000; // 59 s into a minute
//! assert!(matches!(FixedWindow.check(&window, &quota, now, 2)?, Verdict::Allowed(_)));
//! // Full until the minute turns, one second later.
//! let Verdict::Denied { retry_at, .. } = FixedWindow.check(&window, &quota, now, 1)? else { panic!() };
//! assert_eq!(retry_at, 11 * minute);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The math
//!
//! Time is cut into windows `[k × P, (k + 1) × P)` on the limiter's clock, which is
//! anchored to the Unix epoch, so a one-minute window starts on the minute, as the
//! windows of servers that count per clock window do. The state is the window index
//! `k` and the units `used` in it. A request of cost `n` at `now` (window `w`) passes
//! when `used + n ≤ count`; otherwise it could pass at the next window's start,
//! `(w + 1) × P`.
//!
//! Windows are cheap and easy to match against a server, but up to `2 × count` units
//! can pass within one period across a boundary (the end of one window and the start
//! of the next). Use [`super::Gcra`] or [`super::SlidingLog`] where that matters.
//!
//! A **reservation** that does not fit the current window goes to the first window
//! with room, and the state moves there: until that window starts, every check is
//! denied, so reservations keep their order.

use super::sync::{lock, Mutex};
use super::{
    cost_error, counted_period, full_again, nanos_to_duration, reindex_window, window_start,
    Algorithm, Nanos, Reservation, Snapshot, Verdict,
};
use crate::error::CostTooLarge;
use crate::quota::Quota;

/// At most `count` units per clock-aligned window of `period`. See the
/// [module docs](self).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FixedWindow;

/// The bucket of a [`FixedWindow`] limiter: the window index, the period it counts
/// in, and the units used in it.
#[derive(Debug, Default)]
pub struct FixedWindowState {
    inner: Mutex<Window>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Window {
    index: u64,
    used: u64,
    /// The period `index` counts in (0 before the first decision).
    period: Nanos,
}

impl Window {
    /// The window counted in `period` from now on. One counted in another (its quota
    /// changed: [`Algorithm::rescale`], or a keyed store's quota function answering
    /// otherwise for the key) is re-indexed first, keeping its units: its index would
    /// otherwise read as a window centuries ahead (a longer period: the key refused
    /// for that long) or long past (a shorter one: its units forgotten).
    fn in_period(&mut self, period: Nanos, now: Nanos) {
        if self.period == period {
            return;
        }
        if let Some(current) = now.checked_div(self.period) {
            let kept = self.at(current);
            self.index = reindex_window(kept.index, self.period, period, now);
            self.used = kept.used;
        }
        self.period = period;
    }

    /// The window as seen at window `current`: a past window is empty.
    fn at(self, current: u64) -> Window {
        if self.index < current {
            Window {
                index: current,
                used: 0,
                ..self
            }
        } else {
            self
        }
    }
}

struct Limits {
    count: u64,
    period: u64,
}

impl Limits {
    fn of(quota: &Quota) -> Limits {
        Limits {
            count: quota.count(),
            period: quota.period_nanos(),
        }
    }

    fn start(&self, index: u64) -> Nanos {
        index.saturating_mul(self.period)
    }

    fn snapshot(&self, window: Window, now: Nanos) -> Snapshot {
        let current = now / self.period;
        let remaining = if window.index > current {
            0
        } else {
            self.count.saturating_sub(window.used)
        };
        Snapshot {
            limit: self.count,
            remaining,
            reset: nanos_to_duration(
                self.start(window.index.max(current).saturating_add(1))
                    .saturating_sub(now),
            ),
        }
    }

    /// The first window at or after `window` that has room for `cost`.
    fn first_fit(&self, window: Window, cost: u64) -> Window {
        if window.used + cost <= self.count {
            window
        } else {
            Window {
                index: window.index.saturating_add(1),
                used: 0,
                ..window
            }
        }
    }
}

impl FixedWindow {
    fn decide(
        &self,
        state: &FixedWindowState,
        quota: &Quota,
        now: Nanos,
        cost: u64,
        take: bool,
    ) -> Result<Verdict, CostTooLarge> {
        let limits = Limits::of(quota);
        if cost > limits.count {
            return Err(cost_error(cost, limits.count));
        }
        let current = now / limits.period;
        let mut guard = lock(&state.inner);
        guard.in_period(limits.period, now);
        let window = guard.at(current);
        if window.index == current && window.used + cost <= limits.count {
            let after = Window {
                used: window.used + cost,
                ..window
            };
            if take {
                *guard = after;
            }
            return Ok(Verdict::Allowed(limits.snapshot(after, now)));
        }
        let fit = limits.first_fit(window, cost);
        Ok(Verdict::Denied {
            retry_at: limits.start(fit.index).max(now),
            snapshot: limits.snapshot(window, now),
        })
    }
}

impl Algorithm for FixedWindow {
    type State = FixedWindowState;

    fn new_state(&self, _quota: &Quota) -> FixedWindowState {
        FixedWindowState::default()
    }

    fn check(
        &self,
        state: &FixedWindowState,
        quota: &Quota,
        now: Nanos,
        cost: u64,
    ) -> Result<Verdict, CostTooLarge> {
        self.decide(state, quota, now, cost, true)
    }

    fn peek(
        &self,
        state: &FixedWindowState,
        quota: &Quota,
        now: Nanos,
        cost: u64,
    ) -> Result<Verdict, CostTooLarge> {
        self.decide(state, quota, now, cost, false)
    }

    fn reserve(
        &self,
        state: &FixedWindowState,
        quota: &Quota,
        now: Nanos,
        cost: u64,
        max_wait: Nanos,
    ) -> Result<Reservation, CostTooLarge> {
        let limits = Limits::of(quota);
        if cost > limits.count {
            return Err(cost_error(cost, limits.count));
        }
        let current = now / limits.period;
        let mut guard = lock(&state.inner);
        guard.in_period(limits.period, now);
        let window = guard.at(current);
        let fit = limits.first_fit(window, cost);
        let valid_at = limits.start(fit.index).max(now);
        if valid_at - now > max_wait {
            return Ok(Reservation::TooFar {
                valid_at,
                snapshot: limits.snapshot(window, now),
            });
        }
        *guard = Window {
            used: fit.used + cost,
            ..fit
        };
        Ok(Reservation::Reserved {
            valid_at,
            snapshot: limits.snapshot(*guard, now),
        })
    }

    fn snapshot(&self, state: &FixedWindowState, quota: &Quota, now: Nanos) -> Snapshot {
        let limits = Limits::of(quota);
        let mut guard = lock(&state.inner);
        guard.in_period(limits.period, now);
        limits.snapshot(guard.at(now / limits.period), now)
    }

    /// After a change of period the state is re-indexed: the units used in the
    /// window in force (or booked ahead) stay used, in the new window that holds its
    /// start (or now).
    fn rescale(&self, state: &FixedWindowState, _old: &Quota, new: &Quota, now: Nanos) {
        lock(&state.inner).in_period(new.period_nanos(), now);
    }

    /// Gives units back to the current window only: a past window's units are spent,
    /// and a window booked ahead holds reservations, not the refunded units.
    fn refund(&self, state: &FixedWindowState, quota: &Quota, cost: u64, now: Nanos) {
        let mut guard = lock(&state.inner);
        guard.in_period(quota.period_nanos(), now);
        if guard.index == now / quota.period_nanos() {
            guard.used = guard.used.saturating_sub(cost);
        }
    }

    fn is_idle(&self, state: &FixedWindowState, quota: &Quota, now: Nanos) -> bool {
        let mut guard = lock(&state.inner);
        guard.in_period(quota.period_nanos(), now);
        guard.used == 0 || guard.index < now / quota.period_nanos()
    }

    fn max_cost(&self, quota: &Quota) -> u64 {
        quota.count()
    }

    /// When a bucket holding the window's units would be full again, from the window's
    /// start: comparable across periods, unlike the window's index (a 1-per-hour key that
    /// had just spent its hour ranked below every per-second key, and was evicted first).
    fn busy_until(&self, state: &FixedWindowState, quota: &Quota) -> Nanos {
        let window = *lock(&state.inner);
        if window.used == 0 {
            return 0;
        }
        let start = window_start(window.index, window.period, quota);
        full_again(start, window.used.min(quota.count()), quota)
    }

    /// The end of the window that counted units: none count after it.
    fn idle_at(&self, state: &FixedWindowState, quota: &Quota) -> Nanos {
        let window = *lock(&state.inner);
        if window.used == 0 {
            return 0;
        }
        let start = window_start(window.index, window.period, quota);
        start.saturating_add(counted_period(window.period, quota))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// Reference model: a count per window index.
        #[test]
        fn matches_per_window_counts(
            count in 1u64..20,
            period_ms in 1u64..2_000,
            steps in proptest::collection::vec((0u64..300_000_000, 1u64..4), 1..300),
        ) {
            let q = Quota::new(count, std::time::Duration::from_millis(period_ms)).unwrap();
            let p = q.period_nanos();
            let s = FixedWindow.new_state(&q);
            let mut used: HashMap<u64, u64> = HashMap::new();
            let mut now = 0;
            for (dt, cost) in steps {
                now += dt;
                let got = FixedWindow.check(&s, &q, now, cost);
                if cost > count {
                    prop_assert!(got.is_err());
                    continue;
                }
                let w = used.entry(now / p).or_default();
                if *w + cost <= count {
                    *w += cost;
                    prop_assert!(matches!(got, Ok(Verdict::Allowed(_))));
                } else {
                    let denied_until_next = matches!(got, Ok(Verdict::Denied { retry_at, .. }) if retry_at == (now / p + 1) * p);
                    prop_assert!(denied_until_next);
                }
            }
        }
    }

    #[test]
    fn reservations_move_to_the_next_window_in_order() {
        let q = Quota::new(2, std::time::Duration::from_secs(1)).unwrap();
        let s = FixedWindow.new_state(&q);
        let sec = 1_000_000_000;
        let now = 10 * sec + 1;
        let slots: Vec<_> = (0..5)
            .map(
                |_| match FixedWindow.reserve(&s, &q, now, 1, u64::MAX).unwrap() {
                    Reservation::Reserved { valid_at, .. } => valid_at,
                    r => panic!("{r:?}"),
                },
            )
            .collect();
        assert_eq!(slots, vec![now, now, 11 * sec, 11 * sec, 12 * sec]);
        // The windows are booked ahead: a check now must wait for the third window.
        assert!(matches!(
            FixedWindow.check(&s, &q, now, 1).unwrap(),
            Verdict::Denied { retry_at, .. } if retry_at == 12 * sec
        ));
    }
}
