//! The local limiter that answers while Redis is out of reach, at a share of the
//! shared rate (rate-limiter-flexible's "insurance" limiter).
//!
//! With `n` instances behind one shared limit, a share of `1 / n` keeps the fleet's
//! total near the shared rate during an outage. Each key gets its own GCRA bucket of
//! `rate × share` with a burst of `⌊burst × share⌋` (at least 1), whatever the
//! remote algorithm. At most `max_keys` buckets are held: idle ones are dropped
//! first, then those soonest full again. A cost that fits the shared burst but not the
//! local one cannot pass while Redis is down: the store reports it as
//! `StoreError::Unavailable`, not as a cost too large.
//!
//! ```
//! use tower_ratelimit_core::Quota;
//! use tower_ratelimit_redis::fallback::LocalFallback;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let fallback = LocalFallback::new(0.25, 1000);
//! let shared = Quota::per_second(100)?; // burst 100
//! let admitted = (0..100)
//!     .filter(|_| matches!(fallback.check(b"k", &shared, 1), Ok(d) if d.is_allowed()))
//!     .count();
//! assert_eq!(admitted, 25); // a quarter of the burst
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tower_ratelimit_core::algorithm::{Algorithm, Gcra};
use tower_ratelimit_core::clock::Clock;
use tower_ratelimit_core::error::StoreError;
use tower_ratelimit_core::store::Decision;
use tower_ratelimit_core::Quota;

type Bucket = <Gcra as Algorithm>::State;

/// Per-key GCRA buckets at a share of the shared quota, bounded in number.
#[derive(Debug)]
pub struct LocalFallback {
    share: f64,
    max_keys: usize,
    clock: Clock,
    buckets: Mutex<HashMap<Vec<u8>, Bucket>>,
}

impl LocalFallback {
    /// A fallback at `share` of the shared rate (clamped to `(0, 1]`; a share that is
    /// not a positive number is read as 1), holding at most `max_keys` keys (at
    /// least 1).
    pub fn new(share: f64, max_keys: usize) -> LocalFallback {
        let share = if share.is_finite() && share > 0.0 {
            share.min(1.0)
        } else {
            1.0
        };
        LocalFallback {
            share,
            max_keys: max_keys.max(1),
            clock: Clock::new(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The share of the shared rate.
    pub fn share(&self) -> f64 {
        self.share
    }

    /// The local quota for a shared one: `rate × share`, burst `⌊burst × share⌋ ≥ 1`.
    pub fn local_quota(&self, shared: &Quota) -> Quota {
        let burst = ((shared.burst() as f64 * self.share).floor() as u64).max(1);
        Quota::from_rate(shared.per_second_f64() * self.share, burst).unwrap_or(*shared)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Vec<u8>, Bucket>> {
        // Buckets are atomics; the map is consistent between statements.
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with_bucket<T>(&self, key: &[u8], quota: &Quota, f: impl FnOnce(&Bucket, u64) -> T) -> T {
        let now = self.clock.now();
        let mut buckets = self.lock();
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            buckets.retain(|_, b| !Gcra.is_idle(b, quota, now));
            if buckets.len() >= self.max_keys {
                let oldest = buckets
                    .iter()
                    .min_by_key(|(_, b)| Gcra.busy_until(b, quota))
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    buckets.remove(&oldest);
                }
            }
        }
        let bucket = buckets
            .entry(key.to_vec())
            .or_insert_with(|| Gcra.new_state(quota));
        f(bucket, now)
    }

    /// Takes `cost` units for `key` now, if they fit the local quota.
    ///
    /// # Errors
    /// [`StoreError::CostTooLarge`] when `cost` is above the local burst.
    pub fn check(&self, key: &[u8], shared: &Quota, cost: u64) -> Result<Decision, StoreError> {
        let quota = self.local_quota(shared);
        self.with_bucket(key, &quota, |b, now| {
            Ok(Decision::from_verdict(
                Gcra.check(b, &quota, now, cost)?,
                now,
            ))
        })
    }

    /// Whether `cost` units would fit now, taking nothing.
    ///
    /// # Errors
    /// As for [`LocalFallback::check`].
    pub fn peek(&self, key: &[u8], shared: &Quota, cost: u64) -> Result<Decision, StoreError> {
        let quota = self.local_quota(shared);
        self.with_bucket(key, &quota, |b, now| {
            Ok(Decision::from_verdict(
                Gcra.peek(b, &quota, now, cost)?,
                now,
            ))
        })
    }

    /// Takes the next `cost` units unless they are more than `max_wait` away.
    ///
    /// # Errors
    /// As for [`LocalFallback::check`].
    pub fn reserve(
        &self,
        key: &[u8],
        shared: &Quota,
        cost: u64,
        max_wait: Duration,
    ) -> Result<Decision, StoreError> {
        let quota = self.local_quota(shared);
        let max_wait = u64::try_from(max_wait.as_nanos()).unwrap_or(u64::MAX);
        self.with_bucket(key, &quota, |b, now| {
            Ok(Decision::from_reservation(
                Gcra.reserve(b, &quota, now, cost, max_wait)?,
                now,
            ))
        })
    }

    /// The number of keys held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn refills_at_the_share_of_the_rate() {
        let fallback = LocalFallback::new(0.5, 10);
        let shared = Quota::per_second(10).and_then(|q| q.with_burst(4));
        let Ok(shared) = shared else {
            panic!("valid quota")
        };
        // Local: 5/s, burst 2.
        assert!(fallback
            .check(b"k", &shared, 2)
            .map(|d| d.is_allowed())
            .unwrap_or(false));
        match fallback.check(b"k", &shared, 1) {
            Ok(Decision::Denied { retry_after, .. }) => {
                assert_eq!(retry_after, Duration::from_millis(200))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            fallback.check(b"k", &shared, 3),
            Err(StoreError::CostTooLarge(_))
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(fallback
            .check(b"k", &shared, 1)
            .map(|d| d.is_allowed())
            .unwrap_or(false));
    }

    #[tokio::test(start_paused = true)]
    async fn holds_at_most_max_keys() {
        let fallback = LocalFallback::new(1.0, 3);
        let Ok(shared) = Quota::per_second(1) else {
            panic!("valid quota")
        };
        for i in 0..100u32 {
            let _ = fallback.check(&i.to_be_bytes(), &shared, 1);
            assert!(fallback.len() <= 3);
        }
        // The most recent keys are kept (and still in debt).
        assert!(!fallback
            .check(&99u32.to_be_bytes(), &shared, 1)
            .map(|d| d.is_allowed())
            .unwrap_or(true));
    }
}
