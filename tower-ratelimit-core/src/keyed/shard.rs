//! The concurrent map under the keyed store: `std` hash maps in shards, each behind a
//! `RwLock`, with the bounded-memory bookkeeping that runs inside inserts.
//!
//! A check of a known key takes its shard's read lock and updates the bucket's own
//! atomic state, so checks of one key, or of keys in one shard, run in parallel. Only
//! an unseen key takes the write lock: that is where the map sweeps idle entries
//! and enforces the cap, so the cost of bounded memory is paid by the operations that
//! grow the map, never by a background thread.

use super::policy::CapPolicy;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Inserts between two sweeps of a shard when it holds few entries. Larger shards
/// wait as many inserts as they hold entries, which keeps a sweep's cost amortised
/// to O(1) per insert.
const MIN_SWEEP_INTERVAL: usize = 16;

/// A full shard also sweeps when this long has passed since its last sweep (in
/// clock nanoseconds), so that a store filled by a burst admits new keys soon after
/// the burst's keys go idle, even when new keys come too slowly to make a sweep due
/// by count. At most ten such sweeps a second per shard.
const FULL_SHARD_SWEEP_GAP: u64 = 100_000_000;

/// How many entries eviction looks at to pick its threshold.
const EVICTION_SAMPLE: usize = 64;

/// Shards padded to their own cache lines, so that two threads on two shards never
/// contend on one line.
#[repr(align(128))]
struct Padded<T>(T);

type PaddedShard<K, V, S> = Padded<RwLock<Shard<K, V, S>>>;

pub(super) struct Shards<K, V, S> {
    shards: Box<[PaddedShard<K, V, S>]>,
    hasher: S,
    /// `64 - log2(shard count)`, so the shard index is the hash's bits just under the
    /// top 7 (which the table uses as each entry's tag).
    shift: u32,
}

pub(super) struct Shard<K, V, S> {
    pub(super) map: HashMap<K, V, S>,
    inserts_until_sweep: usize,
    /// When the last sweep ran, on the store's clock.
    swept_at: u64,
    /// The table's capacity right after this module last sized it. Fewer free slots
    /// than `nominal - len` means the rest are tombstones left by removals.
    nominal: usize,
    /// While the shard is full and refuses unseen keys: the soonest one of its entries
    /// is full again (idle, so that a sweep drops it), as of the last look. Looked up
    /// once per sweep rather than per refusal, which a flood of new keys would make
    /// O(n) each.
    room_at: Option<u64>,
}

/// The shard is full and its policy refuses unseen keys.
pub(super) struct Full {
    /// The soonest a held entry is idle (on the store's clock), as far as the shard
    /// knows: an entry may have been used again since. `None` when it holds none.
    pub(super) room_at: Option<u64>,
}

impl<K: Hash + Eq, V, S: BuildHasher + Clone> Shards<K, V, S> {
    /// `count` is rounded down to a power of two, at least 1.
    pub(super) fn new(count: usize, hasher: S) -> Self {
        let bits = usize::BITS - 1 - count.max(1).leading_zeros();
        let shards = (0..1usize << bits)
            .map(|_| {
                Padded(RwLock::new(Shard {
                    map: HashMap::with_hasher(hasher.clone()),
                    inserts_until_sweep: MIN_SWEEP_INTERVAL,
                    swept_at: 0,
                    nominal: 0,
                    room_at: None,
                }))
            })
            .collect();
        Shards {
            shards,
            hasher,
            shift: 64 - bits,
        }
    }

    pub(super) fn count(&self) -> usize {
        self.shards.len()
    }

    pub(super) fn hasher(&self) -> &S {
        &self.hasher
    }

    pub(super) fn collect_capacities(&self) -> Vec<usize> {
        self.shards
            .iter()
            .map(|shard| {
                shard
                    .0
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .map
                    .capacity()
            })
            .collect()
    }

    #[inline]
    fn shard(&self, key: &K) -> &RwLock<Shard<K, V, S>> {
        let index = if self.shift == 64 {
            0
        } else {
            ((self.hasher.hash_one(key) << 7) >> self.shift) as usize
        };
        &self.shards[index].0
    }

    /// The shard of `key`, for reading. A poisoned lock is recovered: every entry is
    /// a consistent bucket between statements, whatever a panicking caller did.
    #[inline]
    pub(super) fn read(&self, key: &K) -> RwLockReadGuard<'_, Shard<K, V, S>> {
        self.shard(key)
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[inline]
    pub(super) fn write(&self, key: &K) -> RwLockWriteGuard<'_, Shard<K, V, S>> {
        self.shard(key)
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn for_each_shard(&self, mut f: impl FnMut(&mut Shard<K, V, S>)) {
        for shard in self.shards.iter() {
            f(&mut shard.0.write().unwrap_or_else(|p| p.into_inner()));
        }
    }

    pub(super) fn sum(&self, f: impl Fn(&Shard<K, V, S>) -> usize) -> usize {
        self.shards
            .iter()
            .map(|shard| f(&shard.0.read().unwrap_or_else(|p| p.into_inner())))
            .sum()
    }
}

impl<K: Hash + Eq, V, S: BuildHasher + Clone> Shard<K, V, S> {
    /// Makes room for one unseen key (the caller holds the write lock and inserts
    /// right after): sweeps idle entries when a sweep is due, applies the cap, and
    /// sizes the table so that the insert cannot make it grow past the cap.
    ///
    /// `is_idle` says whether an entry equals a fresh one (dropping it changes no
    /// decision); `busy_until` orders entries for eviction; `idle_at` says when an
    /// entry will be idle, for the refusal of a full shard.
    pub(super) fn make_room(
        &mut self,
        cap: usize,
        policy: CapPolicy,
        now: u64,
        mut is_idle: impl FnMut(&K, &V) -> bool,
        busy_until: impl Fn(&K, &V) -> u64,
        idle_at: impl Fn(&K, &V) -> u64,
    ) -> Result<(), Full> {
        self.inserts_until_sweep = self.inserts_until_sweep.saturating_sub(1);
        let full = self.map.len() >= cap;
        if self.inserts_until_sweep == 0
            || (full && now.saturating_sub(self.swept_at) >= FULL_SHARD_SWEEP_GAP)
        {
            self.map.retain(|k, v| !is_idle(k, v));
            self.after_sweep(now);
        }
        if self.map.len() >= cap {
            match policy {
                CapPolicy::RejectNew => {
                    if self.room_at.is_none() {
                        // A full shard drops idle entries only when it sweeps.
                        let next_sweep = self.swept_at.saturating_add(FULL_SHARD_SWEEP_GAP);
                        self.room_at = self
                            .map
                            .iter()
                            .map(|(k, v)| idle_at(k, v).max(next_sweep))
                            .min();
                    }
                    return Err(Full {
                        room_at: self.room_at,
                    });
                }
                CapPolicy::EvictLeastBusy => self.evict(now, &mut is_idle, &busy_until),
            }
        }
        // An entry goes in: the next refusal looks again.
        self.room_at = None;
        self.reserve_one(cap);
        Ok(())
    }

    /// Sizes the table for one more entry, instead of letting `std` do it.
    ///
    /// `std`'s table grows when no free slot is left, and removals leave tombstones
    /// that are not free slots: a table that holds few entries but many tombstones
    /// would double on the next insert (measured: twice the memory under a flood).
    /// Here such a table is rebuilt at the same size, a full one grows, and no table
    /// is ever sized for more than the cap. Each rebuild is paid for by the inserts
    /// or removals that filled the table since the last one.
    fn reserve_one(&mut self, cap: usize) {
        let len = self.map.len();
        if len < self.map.capacity() {
            return;
        }
        let target = if len >= self.nominal {
            self.nominal.saturating_mul(2).max(8)
        } else {
            self.nominal
        };
        self.rebuild(target.min(cap).max(len + 1));
    }

    /// Moves the entries into a fresh table sized for `capacity`.
    fn rebuild(&mut self, capacity: usize) {
        let hasher = self.map.hasher().clone();
        let old = std::mem::replace(
            &mut self.map,
            HashMap::with_capacity_and_hasher(capacity, hasher),
        );
        self.map.extend(old);
        self.nominal = self.map.capacity();
    }

    /// Drops idle entries and about an eighth of the rest, those soonest full again,
    /// so that the next inserts find room without another O(n) pass.
    fn evict(
        &mut self,
        now: u64,
        is_idle: &mut impl FnMut(&K, &V) -> bool,
        busy_until: &impl Fn(&K, &V) -> u64,
    ) {
        let mut sample: Vec<u64> = self
            .map
            .iter()
            .take(EVICTION_SAMPLE)
            .map(|(k, v)| busy_until(k, v))
            .collect();
        sample.sort_unstable();
        // Iteration order follows the hash, so the first entries are a random sample
        // with respect to how busy they are; its lowest eighth gives the threshold.
        let threshold = sample.get(sample.len() / 8).copied().unwrap_or(u64::MAX);
        let mut budget = (self.map.len() / 8).max(1);
        self.map.retain(|k, v| {
            if is_idle(k, v) {
                return false;
            }
            if budget > 0 && busy_until(k, v) <= threshold {
                budget -= 1;
                return false;
            }
            true
        });
        self.after_sweep(now);
    }

    /// Drops the cached instant of room: the entries' states changed otherwise than by
    /// use (a quota change re-expressed them), which may bring their idle instants
    /// nearer, and a refusal would otherwise name the old one until the next sweep.
    pub(super) fn forget_room_at(&mut self) {
        self.room_at = None;
    }

    pub(super) fn after_sweep(&mut self, now: u64) {
        self.swept_at = now;
        self.room_at = None;
        let len = self.map.len();
        self.inserts_until_sweep = len.max(MIN_SWEEP_INTERVAL);
        // Give memory back after a flood: the table never shrinks by itself.
        if len < self.nominal / 4 {
            self.rebuild(len * 2);
        }
    }
}
