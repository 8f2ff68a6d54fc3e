//! Slots that waiting requests booked and then gave up (a caller's timeout, a
//! dropped future), kept for the next requests of the same key.
//!
//! In wait mode a keyed request books its slot in `call` and sleeps until it. A
//! request dropped during that sleep cannot give its units back to the bucket:
//! requests booked after it sleep until slots the bucket placed behind its own, and
//! a newcomer handed the units again would start in one of those slots (two starts
//! where the quota allows one). Kept booked and unused, though, every such slot is
//! lost, and behind a timeout shorter than the wait that loss feeds itself: under
//! overload each request books at the end of the line, times out before its slot,
//! and the line is soon all abandoned slots, so that no request gets through until
//! the overload has long passed (with a 1 s timeout before a 10/s limit at twice its
//! rate, none for 16 s after the overload ended).
//!
//! A vacated slot keeps its instant, so the next request of the key can start there
//! instead: the bucket counted those units at that instant, and the same units
//! start at the same instant, whoever sends them. The store hands the earliest
//! vacated slot that is still ahead, holds at least the request's cost and was booked
//! under the quota in force (a quota change moves sleeping slots, and these sleep no
//! more), before it books a new one, which could only be later. A slot whose
//! instant has passed is worthless: starting in it late would put its units next to
//! the ones booked after it.
//!
//! ```
//! use std::time::Duration;
//! use tokio::time::Instant;
//! use tower_ratelimit_core::keyed::KeyedRateLimiter;
//! use tower_ratelimit_core::Quota;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let limiter = KeyedRateLimiter::new(Quota::per_second(1)?);
//! let start = Instant::now();
//! limiter.acquire(&"host", 1, Duration::MAX).await?; // the burst, at once
//! // A second request waits for its slot at 1 s, and gives up at 0.5 s.
//! let gave_up = tokio::time::timeout(
//!     Duration::from_millis(500),
//!     limiter.acquire(&"host", 1, Duration::MAX),
//! )
//! .await;
//! assert!(gave_up.is_err());
//! // The next request starts in the slot it left, not a second after it.
//! limiter.acquire(&"host", 1, Duration::MAX).await?;
//! assert_eq!(start.elapsed(), Duration::from_secs(1));
//! # Ok(()) }
//! ```

use crate::algorithm::sync::{lock, AtomicU64, Mutex, Ordering};
use crate::quota::Quota;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use tokio::time::Instant;

/// The most keys with vacated slots held at once; a slot vacated beyond it stays
/// unused, as without this.
const MAX_KEYS: usize = 1024;

/// The most vacated slots held per key: more than a line of abandoned requests
/// needs before they come due, and a bound on the work of a lookup.
const MAX_SLOTS_PER_KEY: usize = 64;

/// A slot a request booked and gave up before it came (see
/// [`RateStore::vacate`](super::RateStore::vacate)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VacatedSlot {
    /// When the slot starts.
    pub at: Instant,
    /// The units it holds.
    pub cost: u64,
    /// The quota it was booked under.
    pub quota: Quota,
    /// The store's count of quota changes when it was booked
    /// ([`QuotaChanges::generation`](super::QuotaChanges::generation); 0 for a store
    /// that keeps none).
    pub generation: u64,
    /// When the store's decision that booked it arrived.
    pub booked_at: Instant,
}

/// The vacated slots of a store that books ahead, by key (`()` for a store of one
/// bucket): what a store implementing [`RateStore::vacate`](super::RateStore::vacate)
/// keeps, and hands out before it books. Bounded: at most 1,024 keys with slots (fewer
/// with [`VacatedSlots::with_max_keys`]) and 64 slots per key, about 80 bytes each;
/// slots beyond that go unused, as without it.
pub struct VacatedSlots<K> {
    by_key: Mutex<HashMap<K, Vec<VacatedSlot>>>,
    max_keys: usize,
    /// The latest instant of any slot kept (nanoseconds after `base`): once it has
    /// passed, every slot is worthless, and the stores skip the lock.
    latest: AtomicU64,
    /// Slots booked at or before this instant (nanoseconds after `base`, plus one; 0:
    /// none) are not kept nor handed out: their key's bucket was dropped since
    /// ([`VacatedSlots::forget_booked_until_now`]).
    forgotten_until: AtomicU64,
    base: Instant,
}

impl<K> fmt::Debug for VacatedSlots<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VacatedSlots")
            .field("holds_any", &self.holds_any())
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}

impl<K> Default for VacatedSlots<K> {
    fn default() -> Self {
        VacatedSlots {
            by_key: Mutex::new(HashMap::new()),
            max_keys: MAX_KEYS,
            latest: AtomicU64::new(0),
            forgotten_until: AtomicU64::new(0),
            base: Instant::now(),
        }
    }
}

impl<K> VacatedSlots<K> {
    /// Holds slots of at most `max_keys` keys (at most 1,024).
    pub fn with_max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.min(MAX_KEYS);
        self
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether some slot kept is still ahead (read without the lock: a slot vacated
    /// an instant ago may be missed, and go unused).
    pub fn holds_any(&self) -> bool {
        self.nanos(Instant::now()) < self.latest.load(Ordering::Relaxed)
    }

    /// Whether a slot booked at `booked_at` was booked before a bucket it was counted
    /// in was dropped.
    fn forgotten(&self, booked_at: Instant) -> bool {
        self.nanos(booked_at) < self.forgotten_until.load(Ordering::Acquire)
    }

    /// Forgets every slot booked until now, and any vacated later that was (a
    /// request still sleeping): for a store that dropped a bucket they were counted
    /// in ([`KeyedMemoryStore::remove`](crate::keyed::KeyedMemoryStore::remove), an
    /// eviction), where a fresh bucket's requests would start in them uncharged.
    pub fn forget_booked_until_now(&self) {
        let now = self.nanos(Instant::now()).saturating_add(1);
        self.forgotten_until.fetch_max(now, Ordering::AcqRel);
        if self.holds_any() {
            lock(&self.by_key).clear();
        }
    }
}

impl<K: Hash + Eq + Clone> VacatedSlots<K> {
    /// Keeps `slot`, which a request of `key` left. A slot already due, one of no
    /// units, one booked before a bucket it was counted in was dropped, or one over
    /// the bounds, is not kept.
    pub fn vacate(&self, key: &K, slot: VacatedSlot) {
        let now = Instant::now();
        if slot.at <= now || slot.cost == 0 || self.forgotten(slot.booked_at) {
            return;
        }
        let mut by_key = lock(&self.by_key);
        if !by_key.contains_key(key) && by_key.len() >= self.max_keys {
            by_key.retain(|_, slots| {
                slots.retain(|kept| kept.at > now);
                !slots.is_empty()
            });
        }
        let room = by_key.len() < self.max_keys;
        let kept = match by_key.get_mut(key) {
            Some(slots) => {
                slots.retain(|kept| kept.at > now);
                let room = slots.len() < MAX_SLOTS_PER_KEY;
                if room {
                    slots.push(slot);
                }
                room
            }
            None if room => {
                by_key.insert(key.clone(), vec![slot]);
                true
            }
            None => false,
        };
        if kept {
            self.latest
                .fetch_max(self.nanos(slot.at), Ordering::Relaxed);
        }
    }

    /// Takes the earliest slot of `key` that is still ahead, at most `max_wait` away,
    /// holds at least `cost` units and was booked under `booked()` (the quota and
    /// change count in force now, read only when some slot is kept), and returns its
    /// instant. The whole slot is taken, whatever it held over `cost`.
    pub fn take(
        &self,
        key: &K,
        cost: u64,
        max_wait: std::time::Duration,
        booked: impl FnOnce() -> (Quota, u64),
    ) -> Option<Instant> {
        if cost == 0 || !self.holds_any() {
            return None;
        }
        let booked = booked();
        let now = Instant::now();
        let mut by_key = lock(&self.by_key);
        let slots = by_key.get_mut(key)?;
        slots.retain(|slot| {
            slot.at > now
                && (slot.quota, slot.generation) == booked
                && !self.forgotten(slot.booked_at)
        });
        let earliest = slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.cost >= cost && slot.at - now <= max_wait)
            .min_by_key(|(_, slot)| slot.at)
            .map(|(index, _)| index);
        // Taken whole: a leaky bucket lets one request of cost `c` start on its own,
        // not `c` requests of one unit at the same instant.
        let taken = earliest.map(|index| slots.swap_remove(index).at);
        if slots.is_empty() {
            by_key.remove(key);
        }
        taken
    }
}
