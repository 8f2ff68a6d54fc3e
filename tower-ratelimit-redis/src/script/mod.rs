//! The Lua scripts that decide on the server, one per algorithm, and the numbers
//! they take and give.
//!
//! Each decision is one `EVALSHA` of one script on one key (so Redis Cluster routes
//! it without hash tags); `redis::Script` loads the script and retries once when the
//! server answers `NOSCRIPT`. Every script reads the server's own `TIME`, so the
//! instances' clocks never matter, and works in integer microseconds, which Lua's
//! doubles hold exactly until the year 2255.
//!
//! | algorithm | state per key | expires | offered because |
//! |---|---|---|---|
//! | [`RemoteAlgorithm::Gcra`] | one integer (the TAT) | when the bucket is full again | the default: exact, cheap, token-bucket semantics |
//! | [`RemoteAlgorithm::FixedWindow`] | hash: window, count | at the window's end | to match servers that count per clock window |
//! | [`RemoteAlgorithm::SlidingWindow`] | hash: window, count, previous count | at the end of the next window | a smooth window at O(1) state (Cloudflare's estimate) |
//!
//! The core's leaky bucket is GCRA with a burst of 1 (use `Gcra` with
//! `quota.with_burst(1)`). The sliding log is not offered: its state grows with the
//! count per period, for every key, which is what a shared store can least afford.
//!
//! ```
//! use tower_ratelimit_core::Quota;
//! use tower_ratelimit_redis::script::RemoteAlgorithm;
//!
//! let quota = Quota::per_second(100)?.with_burst(10)?;
//! // GCRA admits at most the burst at once; windows admit the count per period.
//! assert_eq!(RemoteAlgorithm::Gcra.max_cost(&quota), 10);
//! assert_eq!(RemoteAlgorithm::FixedWindow.max_cost(&quota), 100);
//! # Ok::<(), tower_ratelimit_core::QuotaError>(())
//! ```

use std::time::Duration;
use tower_ratelimit_core::algorithm::Snapshot;
use tower_ratelimit_core::store::Decision;
use tower_ratelimit_core::Quota;

const GCRA: &str = include_str!("gcra.lua");
const FIXED_WINDOW: &str = include_str!("fixed_window.lua");
const SLIDING_WINDOW: &str = include_str!("sliding_window.lua");

/// The algorithms that run on the server. See the [module docs](self).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemoteAlgorithm {
    /// GCRA: a token bucket of `quota.burst()` refilled every emission interval.
    /// The emission interval is rounded up to a whole microsecond, so the rate is
    /// never above the quota's.
    #[default]
    Gcra,
    /// At most `quota.count()` units per window of `quota.period()`, windows
    /// aligned to the Unix epoch. Reservations are not queued into later windows:
    /// `reserve` takes units only if they fit now.
    FixedWindow,
    /// At most about `quota.count()` units in any window of `quota.period()`,
    /// estimated from two fixed windows. Reservations as for `FixedWindow`.
    SlidingWindow,
}

/// What a script call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Peek = 0,
    Check = 1,
    Reserve = 2,
}

/// A quota in the script's integer terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Params {
    /// GCRA: the emission interval; windows: the period (microseconds, at least 1).
    pub(crate) unit_us: u64,
    /// GCRA: the burst; windows: the count per period.
    pub(crate) limit: u64,
}

impl RemoteAlgorithm {
    /// The Lua source of the algorithm's script.
    pub fn source(self) -> &'static str {
        match self {
            RemoteAlgorithm::Gcra => GCRA,
            RemoteAlgorithm::FixedWindow => FIXED_WINDOW,
            RemoteAlgorithm::SlidingWindow => SLIDING_WINDOW,
        }
    }

    /// The largest cost that can ever pass under `quota` (a larger one is
    /// [`StoreError::CostTooLarge`](tower_ratelimit_core::error::StoreError) at once,
    /// without a round trip).
    pub fn max_cost(self, quota: &Quota) -> u64 {
        self.params(quota).limit
    }

    pub(crate) fn params(self, quota: &Quota) -> Params {
        match self {
            RemoteAlgorithm::Gcra => Params {
                unit_us: micros_up(quota.emission_interval()),
                limit: quota.burst(),
            },
            RemoteAlgorithm::FixedWindow | RemoteAlgorithm::SlidingWindow => Params {
                unit_us: micros_up(quota.period()),
                limit: quota.count(),
            },
        }
    }

    /// How much later each extra unit of cost can pass, for the negative cache.
    pub(crate) fn per_unit(self, params: Params) -> Duration {
        match self {
            RemoteAlgorithm::Gcra => Duration::from_micros(params.unit_us),
            RemoteAlgorithm::FixedWindow | RemoteAlgorithm::SlidingWindow => Duration::ZERO,
        }
    }
}

/// Whole microseconds, rounded up, at least 1.
fn micros_up(d: Duration) -> u64 {
    let micros = d.as_nanos().div_ceil(1000);
    u64::try_from(micros).unwrap_or(u64::MAX).max(1)
}

/// The script's answer: `{allowed, remaining, retry_after_us, reset_us, limit, wait_us}`.
pub(crate) fn decision(reply: &[i64]) -> Option<Decision> {
    let [allowed, remaining, retry_after, reset, limit, wait] = *reply else {
        return None;
    };
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let snapshot = Snapshot {
        limit: n(limit),
        remaining: n(remaining),
        reset: Duration::from_micros(n(reset)),
    };
    Some(match allowed {
        1 => Decision::Allowed {
            snapshot,
            wait: Duration::from_micros(n(wait)),
        },
        0 => Decision::Denied {
            retry_after: Duration::from_micros(n(retry_after)),
            snapshot,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_round_up_to_a_microsecond() {
        let Ok(q) = Quota::per_second(3) else {
            panic!()
        };
        assert_eq!(RemoteAlgorithm::Gcra.params(&q).unit_us, 333_334);
        let Ok(q) = Quota::from_rate(1e8, 1) else {
            panic!()
        };
        assert_eq!(RemoteAlgorithm::Gcra.params(&q).unit_us, 1);
    }

    #[test]
    fn replies_parse_or_are_rejected() {
        assert!(matches!(
            decision(&[1, 4, 0, 6000, 10, 0]),
            Some(Decision::Allowed { snapshot, wait }) if snapshot.remaining == 4 && wait.is_zero()
        ));
        assert!(matches!(
            decision(&[0, 0, 2500, 100_000, 10, 0]),
            Some(Decision::Denied { retry_after, .. }) if retry_after == Duration::from_micros(2500)
        ));
        assert!(decision(&[1, 2, 3]).is_none());
        assert!(decision(&[7, 0, 0, 0, 0, 0]).is_none());
    }
}
