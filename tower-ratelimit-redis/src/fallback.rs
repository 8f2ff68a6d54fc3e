//! The local limiter that answers while Redis is out of reach, at a share of the
//! shared rate (rate-limiter-flexible's "insurance" limiter).
//!
//! With `n` instances behind one shared limit, a share of `1 / n` keeps the fleet's
//! total near the shared rate during an outage. Each key gets its own GCRA bucket of
//! `rate × share` with a burst of `⌊burst × share⌋` (at least 1), whatever the
//! remote algorithm. At most `max_keys` buckets are held: idle ones are dropped
//! first, then those soonest full again. A cost that fits the shared burst but not the
//! local one cannot pass while Redis is down: the store reports it as
//! `StoreError::Unavailable` with [`Unavailable::OverLocalBurst`] inside (which names
//! the local burst), not as a cost too large.
//!
//! [`Unavailable::OverLocalBurst`]: crate::error::Unavailable::OverLocalBurst
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

use std::sync::OnceLock;
use std::time::Duration;
use tower_ratelimit_core::error::StoreError;
use tower_ratelimit_core::keyed::{CapPolicy, KeyedMemoryStore};
use tower_ratelimit_core::store::{Decision, RateStore};
use tower_ratelimit_core::Quota;

/// Per-key GCRA buckets at a share of the shared quota, bounded in number.
#[derive(Debug)]
pub struct LocalFallback {
    share: f64,
    max_keys: usize,
    /// Made at the first decision, with the local quota of the shared one then. The
    /// core's keyed store bounds the keys with an amortised, sampled eviction, so a
    /// full fallback costs a new key O(1), not a scan of every key under one lock.
    buckets: OnceLock<KeyedMemoryStore<Vec<u8>>>,
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
            buckets: OnceLock::new(),
        }
    }

    /// The share of the shared rate.
    pub fn share(&self) -> f64 {
        self.share
    }

    /// The local quota for a shared one: `rate × share`, burst `⌊burst × share⌋ ≥ 1`.
    /// A share so small that the interval would pass [`Quota::MAX_SPAN`] gets the
    /// slowest quota there is (one unit per `MAX_SPAN`), never more than its share.
    pub fn local_quota(&self, shared: &Quota) -> Quota {
        let burst = ((shared.burst() as f64 * self.share).floor() as u64).max(1);
        Quota::from_rate(shared.per_second_f64() * self.share, burst)
            .or_else(|_| Quota::new(1, Quota::MAX_SPAN))
            .unwrap_or(*shared)
    }

    /// The buckets, following the local quota of `shared` (a change of the shared
    /// quota rescales them, as the core's stores do).
    fn buckets(&self, shared: &Quota) -> &KeyedMemoryStore<Vec<u8>> {
        let local = self.local_quota(shared);
        let buckets = self.buckets.get_or_init(|| {
            KeyedMemoryStore::new(local)
                .with_max_keys(self.max_keys)
                .with_cap_policy(CapPolicy::EvictLeastBusy)
        });
        if buckets.default_quota() != local {
            buckets.set_default_quota(local);
        }
        buckets
    }

    /// Takes `cost` units for `key` now, if they fit the local quota.
    ///
    /// # Errors
    /// [`StoreError::CostTooLarge`] when `cost` is above the local burst.
    pub fn check(&self, key: &[u8], shared: &Quota, cost: u64) -> Result<Decision, StoreError> {
        self.buckets(shared).check_now(&key.to_vec(), cost)
    }

    /// Whether `cost` units would fit now, taking nothing.
    ///
    /// # Errors
    /// As for [`LocalFallback::check`].
    pub fn peek(&self, key: &[u8], shared: &Quota, cost: u64) -> Result<Decision, StoreError> {
        self.buckets(shared).peek_now(&key.to_vec(), cost)
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
        self.buckets(shared)
            .reserve_now(&key.to_vec(), cost, max_wait)
    }

    /// Empties `key`'s local bucket as of `until` (a throttle's end: see the core's
    /// `RateStore::drain_until`), if this fallback holds it: a key it does not hold
    /// starts with its share of the burst when it is first asked, as a key new to
    /// the core's keyed store does.
    pub fn drain_until(&self, key: &[u8], shared: &Quota, until: tokio::time::Instant) {
        if self.buckets.get().is_some() {
            self.buckets(shared).drain_until(&key.to_vec(), until);
        }
    }

    /// The number of keys held.
    pub fn len(&self) -> usize {
        self.buckets.get().map_or(0, KeyedMemoryStore::len)
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
    async fn peeks_take_nothing_and_reservations_keep_their_max_wait() {
        let fallback = LocalFallback::new(0.5, 10);
        let Ok(shared) = Quota::per_second(10).and_then(|q| q.with_burst(4)) else {
            panic!("valid quota")
        };
        // Local: 5/s, burst 2. Peeks, however many, leave the burst whole.
        for _ in 0..10 {
            assert!(matches!(fallback.peek(b"k", &shared, 2), Ok(d) if d.is_allowed()));
        }
        assert!(matches!(fallback.check(b"k", &shared, 2), Ok(d) if d.is_allowed()));
        // The next unit is 200 ms away: refused within 100 ms, booked within 300 ms.
        match fallback.reserve(b"k", &shared, 1, Duration::from_millis(100)) {
            Ok(Decision::Denied { retry_after, .. }) => {
                assert_eq!(retry_after, Duration::from_millis(200))
            }
            other => panic!("{other:?}"),
        }
        match fallback.reserve(b"k", &shared, 1, Duration::from_millis(300)) {
            Ok(Decision::Allowed { wait, .. }) => assert_eq!(wait, Duration::from_millis(200)),
            other => panic!("{other:?}"),
        }
        // Another key has a bucket of its own.
        assert!(matches!(fallback.check(b"other", &shared, 2), Ok(d) if d.is_allowed()));
    }

    #[test]
    fn a_share_too_small_for_any_quota_gets_the_slowest_one() {
        // One per year among 200 instances: one per 200 years each, past the longest
        // quota there is; each instance gets one per MAX_SPAN, not the shared rate.
        let Ok(shared) = Quota::new(1, Duration::from_secs(365 * 86_400)) else {
            panic!("valid quota")
        };
        let local = LocalFallback::new(1.0 / 200.0, 10).local_quota(&shared);
        assert_eq!(local.emission_interval(), Quota::MAX_SPAN);
        assert_eq!(local.burst(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_changed_shared_quota_changes_the_local_one() {
        let fallback = LocalFallback::new(0.5, 10);
        let (Ok(slow), Ok(fast)) = (Quota::per_second(2), Quota::per_second(20)) else {
            panic!("valid quotas")
        };
        // Local 1/s, burst 1: spent.
        assert!(matches!(fallback.check(b"k", &slow, 1), Ok(d) if d.is_allowed()));
        assert!(matches!(
            fallback.check(b"k", &slow, 1),
            Ok(Decision::Denied { .. })
        ));
        // Local 10/s, burst 10: the unit owed is owed at the new spacing (100 ms).
        match fallback.check(b"k", &fast, 10) {
            Ok(Decision::Denied { retry_after, .. }) => {
                assert_eq!(retry_after, Duration::from_millis(100))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(fallback.check(b"k", &fast, 9), Ok(d) if d.is_allowed()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_drain_empties_the_local_bucket_as_of_its_instant() {
        let fallback = LocalFallback::new(0.5, 10);
        let Ok(shared) = Quota::per_second(20).and_then(|q| q.with_burst(20)) else {
            panic!("valid quota")
        };
        let admitted = |fallback: &LocalFallback| {
            (0..20)
                .filter(|_| matches!(fallback.check(b"k", &shared, 1), Ok(d) if d.is_allowed()))
                .count()
        };
        // Local: 10/s, burst 10. Nothing held yet: nothing to drain.
        fallback.drain_until(b"k", &shared, tokio::time::Instant::now());
        assert!(fallback.is_empty());
        assert_eq!(admitted(&fallback), 10);
        // Refilled after a second, then drained as of 100 ms from now: nothing before
        // it, one unit at it, the next 100 ms later.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let until = tokio::time::Instant::now() + Duration::from_millis(100);
        fallback.drain_until(b"k", &shared, until);
        assert_eq!(admitted(&fallback), 0);
        tokio::time::sleep_until(until).await;
        assert_eq!(admitted(&fallback), 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(admitted(&fallback), 1);
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
