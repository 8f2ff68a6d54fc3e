//! A local, bounded memory of "denied until" per key, so that a client hammering an
//! exhausted key is answered without a round trip.
//!
//! Under GCRA a denial is exact: the bucket's theoretical arrival time only moves
//! forward, so a key denied for cost `n` until `t` cannot admit cost `n` (or more)
//! before `t`, whatever the other instances do. Each extra unit of cost adds one
//! emission interval. Window algorithms get the same answer without the extra
//! interval (a lower bound, never a wrong denial).
//!
//! ```
//! use std::time::Duration;
//! use tokio::time::Instant;
//! use tower_ratelimit_redis::negative_cache::NegativeCache;
//!
//! let cache = NegativeCache::new(1000);
//! let now = Instant::now();
//! cache.deny(b"k", 2, now + Duration::from_millis(30));
//! assert_eq!(cache.denied(b"k", 2, Duration::ZERO, now), Some(Duration::from_millis(30)));
//! assert_eq!(cache.denied(b"k", 1, Duration::ZERO, now), None); // a smaller cost may pass
//! assert_eq!(cache.denied(b"k", 2, Duration::ZERO, now + Duration::from_millis(30)), None);
//! ```

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// How often a full cache may sweep its expired entries.
const SWEEP_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy)]
struct Entry {
    until: Instant,
    cost: u64,
}

#[derive(Debug)]
struct Inner {
    entries: HashMap<Vec<u8>, Entry>,
    last_sweep: Option<Instant>,
}

/// Keys denied until an instant, at most `max_keys` of them. When full, expired
/// entries are swept; if none has expired, new denials are simply not cached (the
/// next request asks Redis), so memory stays bounded without evicting live entries.
#[derive(Debug)]
pub struct NegativeCache {
    max_keys: usize,
    inner: Mutex<Inner>,
}

impl NegativeCache {
    /// An empty cache holding at most `max_keys` keys.
    pub fn new(max_keys: usize) -> NegativeCache {
        NegativeCache {
            max_keys,
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                last_sweep: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every statement leaves the map consistent, so a poisoned lock is sound.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that `cost` units for `key` cannot pass before `until`.
    pub fn deny(&self, key: &[u8], cost: u64, until: Instant) {
        if self.max_keys == 0 {
            return;
        }
        let mut inner = self.lock();
        if let Some(entry) = inner.entries.get_mut(key) {
            // Both statements are true; the newer one is the one the next
            // requests will most likely match.
            *entry = Entry { until, cost };
            return;
        }
        if inner.entries.len() >= self.max_keys {
            let now = Instant::now();
            let due = inner
                .last_sweep
                .is_none_or(|at| now.saturating_duration_since(at) >= SWEEP_EVERY);
            if !due {
                return;
            }
            inner.last_sweep = Some(now);
            inner.entries.retain(|_, e| e.until > now);
            if inner.entries.len() >= self.max_keys {
                return;
            }
        }
        inner.entries.insert(key.to_vec(), Entry { until, cost });
    }

    /// How long `cost` units for `key` are still denied at `now`, if the cache knows;
    /// each unit of cost above the cached one adds `per_unit`.
    pub fn denied(
        &self,
        key: &[u8],
        cost: u64,
        per_unit: Duration,
        now: Instant,
    ) -> Option<Duration> {
        let mut inner = self.lock();
        let entry = *inner.entries.get(key)?;
        if now >= entry.until {
            inner.entries.remove(key);
            return None;
        }
        if cost < entry.cost {
            return None;
        }
        let extra = u32::try_from(cost - entry.cost)
            .ok()
            .and_then(|n| per_unit.checked_mul(n))
            .unwrap_or(Duration::MAX);
        Some((entry.until - now).saturating_add(extra))
    }

    /// Forgets every entry (after a quota change, when old denials may be wrong).
    pub fn clear(&self) {
        self.lock().entries.clear();
    }

    /// The number of keys held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
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
    async fn stays_within_its_bound_and_sweeps_expired_keys() {
        let cache = NegativeCache::new(2);
        let now = Instant::now();
        cache.deny(b"a", 1, now + Duration::from_millis(10));
        cache.deny(b"b", 1, now + Duration::from_secs(10));
        cache.deny(b"c", 1, now + Duration::from_secs(10));
        assert_eq!(cache.len(), 2);
        assert!(cache.denied(b"c", 1, Duration::ZERO, now).is_none());
        tokio::time::sleep(Duration::from_millis(200)).await;
        cache.deny(b"c", 1, Instant::now() + Duration::from_secs(10));
        assert_eq!(cache.len(), 2);
        assert!(cache
            .denied(b"c", 1, Duration::ZERO, Instant::now())
            .is_some());
        assert!(cache
            .denied(b"a", 1, Duration::ZERO, Instant::now())
            .is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn extra_cost_adds_one_interval_per_unit() {
        let cache = NegativeCache::new(10);
        let now = Instant::now();
        cache.deny(b"k", 1, now + Duration::from_millis(5));
        assert_eq!(
            cache.denied(b"k", 4, Duration::from_millis(10), now),
            Some(Duration::from_millis(35))
        );
        assert_eq!(
            cache.denied(b"k", u64::MAX, Duration::from_millis(10), now),
            Some(Duration::MAX)
        );
    }

    #[test]
    fn a_zero_bound_caches_nothing() {
        let cache = NegativeCache::new(0);
        cache.deny(b"k", 1, Instant::now() + Duration::from_secs(1));
        assert!(cache.is_empty());
    }
}
