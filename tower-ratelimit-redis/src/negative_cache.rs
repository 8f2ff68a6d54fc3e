//! A local, bounded memory of "denied until" per key, so that a client hammering an
//! exhausted key is answered without a round trip.
//!
//! Under GCRA a denial holds until its retry-after as long as the key's state does:
//! other instances' calls only move the bucket's theoretical arrival time forward, so
//! a key denied for cost `n` until `t` cannot admit cost `n` (or more) before `t`,
//! whatever they do. Two things move it back: a weighted wait-mode request giving
//! back what its readiness took (`RateStore::reserve_whole`), and a quota change; the
//! first makes a cached denial at most `MAX_AGE` too long (it denies more, never
//! admits more), and the second clears the cache. Each extra unit of cost adds one emission interval. Window algorithms
//! get the same answer without the extra interval (a lower bound, never a wrong denial).
//!
//! The state can go, though: an operator deletes the key to unblock a client, Redis
//! restarts empty, or the quota changes. So an entry answers for at most [`MAX_AGE`]
//! after it was cached, then the next request asks Redis again; [`NegativeCache::clear`]
//! (on a quota change) and [`NegativeCache::forget`] drop entries at once, and a denial
//! that was in flight when the cache was cleared is not cached.
//!
//! ```
//! use std::time::Duration;
//! use tokio::time::Instant;
//! use tower_ratelimit_redis::negative_cache::{Denial, NegativeCache};
//!
//! let cache = NegativeCache::new(1000);
//! let now = Instant::now();
//! let generation = cache.generation(); // read before the call to Redis
//! let denial = Denial { cost: 2, until: now + Duration::from_millis(30), full_at: now + Duration::from_millis(90) };
//! cache.deny(b"k", denial, generation);
//! let (retry_after, reset) = cache.denied(b"k", 2, Duration::ZERO, now).unwrap();
//! assert_eq!((retry_after, reset), (Duration::from_millis(30), Duration::from_millis(90)));
//! assert_eq!(cache.denied(b"k", 1, Duration::ZERO, now), None); // a smaller cost may pass
//! assert_eq!(cache.denied(b"k", 2, Duration::ZERO, now + Duration::from_millis(30)), None);
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// How often a full cache may sweep its expired entries.
const SWEEP_EVERY: Duration = Duration::from_millis(100);

/// The longest a cached denial answers before Redis is asked again: how long a key
/// that was deleted (or lost in a restart) may stay denied on this instance.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// A denial as Redis reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denial {
    /// The cost that was denied.
    pub cost: u64,
    /// When that cost fits again (the retry-after, from the call's send).
    pub until: Instant,
    /// When the bucket is full again (the snapshot's reset, from the call's send).
    pub full_at: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    denial: Denial,
    /// When the entry stops answering, at most [`MAX_AGE`] after it was cached.
    trusted_until: Instant,
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
    /// Bumped by every [`NegativeCache::clear`].
    generation: AtomicU64,
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
            generation: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every statement leaves the map consistent, so a poisoned lock is sound.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cache's generation, to read before asking Redis and hand to
    /// [`NegativeCache::deny`] with the answer.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Records `denial` for `key`, unless the cache was cleared since `generation`
    /// was read (the denial was measured under a quota that no longer holds).
    pub fn deny(&self, key: &[u8], denial: Denial, generation: u64) {
        if self.max_keys == 0 {
            return;
        }
        let now = Instant::now();
        let entry = Entry {
            denial,
            trusted_until: denial.until.min(now + MAX_AGE),
        };
        let mut inner = self.lock();
        // Checked under the lock, which `clear` takes after bumping the generation:
        // either this sees the new generation, or `clear` removes what it inserts.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if let Some(cached) = inner.entries.get_mut(key) {
            // Both statements are true; the newer one is the one the next
            // requests will most likely match.
            *cached = entry;
            return;
        }
        if inner.entries.len() >= self.max_keys {
            let due = inner
                .last_sweep
                .is_none_or(|at| now.saturating_duration_since(at) >= SWEEP_EVERY);
            if !due {
                return;
            }
            inner.last_sweep = Some(now);
            inner.entries.retain(|_, e| e.trusted_until > now);
            if inner.entries.len() >= self.max_keys {
                return;
            }
        }
        inner.entries.insert(key.to_vec(), entry);
    }

    /// How long `cost` units for `key` are still denied at `now`, and how long until
    /// its bucket is full, if the cache knows; each unit of cost above the cached one
    /// adds `per_unit` to the first.
    pub fn denied(
        &self,
        key: &[u8],
        cost: u64,
        per_unit: Duration,
        now: Instant,
    ) -> Option<(Duration, Duration)> {
        let mut inner = self.lock();
        let entry = *inner.entries.get(key)?;
        if now >= entry.trusted_until {
            inner.entries.remove(key);
            return None;
        }
        let denial = entry.denial;
        if cost < denial.cost {
            return None;
        }
        let extra = u32::try_from(cost - denial.cost)
            .ok()
            .and_then(|n| per_unit.checked_mul(n))
            .unwrap_or(Duration::MAX);
        let retry_after = (denial.until - now).saturating_add(extra);
        Some((retry_after, denial.full_at.saturating_duration_since(now)))
    }

    /// Forgets `key`'s denial (after its state in Redis was reset). Returns whether
    /// one was held.
    pub fn forget(&self, key: &[u8]) -> bool {
        self.lock().entries.remove(key).is_some()
    }

    /// Forgets every entry (after a quota change, when old denials may be wrong),
    /// including denials still on their way back from Redis.
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
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

    fn until(cache: &NegativeCache, key: &[u8], cost: u64, until: Instant) {
        let denial = Denial {
            cost,
            until,
            full_at: until,
        };
        cache.deny(key, denial, cache.generation());
    }

    #[tokio::test(start_paused = true)]
    async fn stays_within_its_bound_and_sweeps_expired_keys() {
        let cache = NegativeCache::new(2);
        let now = Instant::now();
        until(&cache, b"a", 1, now + Duration::from_millis(10));
        until(&cache, b"b", 1, now + Duration::from_secs(10));
        until(&cache, b"c", 1, now + Duration::from_secs(10));
        assert_eq!(cache.len(), 2);
        assert!(cache.denied(b"c", 1, Duration::ZERO, now).is_none());
        tokio::time::sleep(Duration::from_millis(200)).await;
        until(&cache, b"c", 1, Instant::now() + Duration::from_secs(10));
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
        until(&cache, b"k", 1, now + Duration::from_millis(5));
        assert_eq!(
            cache
                .denied(b"k", 4, Duration::from_millis(10), now)
                .map(|d| d.0),
            Some(Duration::from_millis(35))
        );
        assert_eq!(
            cache
                .denied(b"k", u64::MAX, Duration::from_millis(10), now)
                .map(|d| d.0),
            Some(Duration::MAX)
        );
    }

    #[test]
    fn a_zero_bound_caches_nothing() {
        let cache = NegativeCache::new(0);
        until(&cache, b"k", 1, Instant::now() + Duration::from_secs(1));
        assert!(cache.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_denial_answers_for_a_second_at_most() {
        let cache = NegativeCache::new(10);
        let now = Instant::now();
        until(&cache, b"k", 1, now + Duration::from_secs(60));
        let (retry_after, _) = cache.denied(b"k", 1, Duration::ZERO, now).unwrap();
        assert_eq!(retry_after, Duration::from_secs(60), "the true retry-after");
        tokio::time::sleep(MAX_AGE).await;
        assert!(cache
            .denied(b"k", 1, Duration::ZERO, Instant::now())
            .is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_denial_read_before_a_clear_is_not_cached_after_it() {
        let cache = NegativeCache::new(10);
        let generation = cache.generation();
        cache.clear();
        let now = Instant::now();
        let denial = Denial {
            cost: 1,
            until: now + Duration::from_secs(60),
            full_at: now + Duration::from_secs(60),
        };
        cache.deny(b"k", denial, generation);
        assert!(cache.is_empty());
        cache.deny(b"k", denial, cache.generation());
        assert!(cache.forget(b"k"));
        assert!(cache.is_empty());
    }
}
