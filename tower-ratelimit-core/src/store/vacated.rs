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
/// unused, as before this existed.
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
/// keeps, and hands out before it books. Bounded: at most 1,024 keys with slots and 64
/// slots per key; slots beyond that go unused, as without it.
pub struct VacatedSlots<K> {
    by_key: Mutex<HashMap<K, Vec<VacatedSlot>>>,
    /// How many keys hold slots: read without the lock on every booking, so that a
    /// store with none pays one load.
    keys: AtomicU64,
}

impl<K> fmt::Debug for VacatedSlots<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VacatedSlots")
            .field("keys", &self.keys.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<K> Default for VacatedSlots<K> {
    fn default() -> Self {
        VacatedSlots {
            by_key: Mutex::new(HashMap::new()),
            keys: AtomicU64::new(0),
        }
    }
}

impl<K: Hash + Eq + Clone> VacatedSlots<K> {
    /// Keeps `slot`, which a request of `key` left. A slot already due, one of no
    /// units, or one over the bounds, is not kept.
    pub fn vacate(&self, key: &K, slot: VacatedSlot) {
        let now = Instant::now();
        if slot.at <= now || slot.cost == 0 {
            return;
        }
        let mut by_key = lock(&self.by_key);
        if let Some(slots) = by_key.get_mut(key) {
            slots.retain(|kept| kept.at > now);
            if slots.len() < MAX_SLOTS_PER_KEY {
                slots.push(slot);
            }
            return;
        }
        if by_key.len() >= MAX_KEYS {
            by_key.retain(|_, slots| {
                slots.retain(|kept| kept.at > now);
                !slots.is_empty()
            });
            if by_key.len() >= MAX_KEYS {
                self.keys.store(by_key.len() as u64, Ordering::Relaxed);
                return;
            }
        }
        by_key.insert(key.clone(), vec![slot]);
        self.keys.store(by_key.len() as u64, Ordering::Relaxed);
    }

    /// Whether some key holds vacated slots (read without the lock: a slot vacated
    /// an instant ago may be missed, and go unused).
    pub fn holds_any(&self) -> bool {
        self.keys.load(Ordering::Relaxed) != 0
    }

    /// Takes the earliest slot of `key` that is still ahead, at most `max_wait` away,
    /// holds at least `cost` units and was booked under `booked()` (the quota and
    /// change count in force now, read only when some key holds slots), and returns its
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
        slots.retain(|slot| slot.at > now && (slot.quota, slot.generation) == booked);
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
            self.keys.store(by_key.len() as u64, Ordering::Relaxed);
        }
        taken
    }

    /// Forgets the slots of `key` (its bucket was dropped: they were counted there).
    pub fn forget(&self, key: &K) {
        if !self.holds_any() {
            return;
        }
        let mut by_key = lock(&self.by_key);
        if by_key.remove(key).is_some() {
            self.keys.store(by_key.len() as u64, Ordering::Relaxed);
        }
    }

    /// Forgets every slot.
    pub fn clear(&self) {
        let mut by_key = lock(&self.by_key);
        by_key.clear();
        self.keys.store(0, Ordering::Relaxed);
    }
}
