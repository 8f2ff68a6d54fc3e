//! The keyed in-memory store: one bucket per key, memory bounded without a thread.
//!
//! ```
//! use tower_ratelimit_core::keyed::KeyedMemoryStore;
//! use tower_ratelimit_core::store::Decision;
//! use tower_ratelimit_core::Quota;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 2 per second for everyone, 100 per second for the paid key.
//! let store = KeyedMemoryStore::new(Quota::per_second(2)?)
//!     .with_quota_fn(|key: &&str| (*key == "paid").then(|| Quota::per_second(100).unwrap()));
//! for _ in 0..2 {
//!     assert!(store.check_now(&"free", 1)?.is_allowed());
//! }
//! assert!(matches!(store.check_now(&"free", 1)?, Decision::Denied { .. }));
//! assert!(store.check_now(&"paid", 50)?.is_allowed());
//! assert_eq!(store.snapshot_now(&"paid").remaining, 50);
//!
//! assert_eq!(store.len(), 2);
//! assert!(store.remove(&"free"));
//! assert!(store.check_now(&"free", 1)?.is_allowed()); // a removed key starts full
//! # Ok(()) }
//! ```

use super::hasher::FoldBuildHasher;
use super::policy::CapPolicy;
use super::shard::{Full, Shards};
use crate::algorithm::sync::{AtomicU64, Ordering};
use crate::algorithm::{Algorithm, Gcra, Nanos, Snapshot};
use crate::clock::Clock;
use crate::error::StoreError;
use crate::quota::Quota;
use crate::store::{
    duration_nanos, Decision, QuotaCell, QuotaChanges, RateStore, VacatedSlot, VacatedSlots,
};
use std::fmt;
use std::future::{ready, Ready};
use std::hash::{BuildHasher, Hash};
use std::mem::size_of;
use std::time::Duration;

/// The number of keys a store holds at most unless told otherwise.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// The most shards a store uses. 64 keeps two threads apart almost always and a
/// shard's sweep short, at 8 KiB of empty shards.
const MAX_SHARDS: usize = 64;

/// Shards are only made for at least this many keys each, so that the per-shard cap
/// stays close to `max_keys / shards` for every shard.
const MIN_KEYS_PER_SHARD: usize = 1024;

type QuotaFn<K> = dyn Fn(&K) -> Option<Quota> + Send + Sync;

/// Per-key buckets of an [`Algorithm`] in this process's memory, implementing
/// [`RateStore<K>`]. See the [module docs](super) for the design and its measurements.
///
/// * **Quota per key**: [`KeyedMemoryStore::with_quota_fn`] maps a key to its own
///   quota (paid and free API keys); every other key follows the default quota, which
///   [`RateStore::set_quota`] changes at run time.
/// * **Idle keys cost nothing**: a key whose bucket equals a fresh one
///   ([`Algorithm::is_idle`]) is dropped by a sweep of its shard that runs inside the
///   inserts of new keys, after as many inserts as the shard holds keys (O(1) per
///   insert, amortised). No thread, no user call.
/// * **Hard cap**: at most [`KeyedMemoryStore::max_keys`] keys (default
///   [`DEFAULT_MAX_KEYS`]), enforced per shard (`max_keys / shards` each, so a store
///   may refuse or evict slightly before the total reaches the cap, never after).
///   A full shard sweeps before it refuses, when a sweep is due by count or 100 ms
///   have passed since its last one. What happens to an unseen key when its shard is
///   full of busy keys is the [`CapPolicy`]: refused with
///   [`StoreError::TooManyKeys`] (the default) or admitted by evicting the least
///   recently busy keys, which then start with a full bucket.
/// * A check of a key that would leave its bucket as fresh as before (a peek, a
///   denial, a cost error) never inserts it.
pub struct KeyedMemoryStore<K, A: Algorithm = Gcra, S = FoldBuildHasher> {
    algorithm: A,
    clock: Clock,
    default_quota: QuotaCell,
    /// When the default quota last changed (the clock's nanoseconds; 0: never): units
    /// taken before then were priced by another quota, so none of them is given back.
    default_changed_at: AtomicU64,
    /// The recent changes of the default quota, for slots booked before them.
    default_changes: QuotaChanges,
    quota_fn: Option<Box<QuotaFn<K>>>,
    shards: Shards<K, A::State, S>,
    max_keys: usize,
    per_shard_cap: usize,
    policy: CapPolicy,
    /// Slots that waiting requests booked and gave up, for the next requests of
    /// their keys.
    vacated: VacatedSlots<K>,
}

#[derive(Clone, Copy)]
enum Op {
    Check,
    Peek,
    Reserve(Nanos),
}

impl<K: Hash + Eq + Clone> KeyedMemoryStore<K, Gcra, FoldBuildHasher> {
    /// A GCRA bucket per key, all with `quota`.
    pub fn new(quota: Quota) -> Self {
        KeyedMemoryStore::with_algorithm(Gcra, quota)
    }
}

impl<K: Hash + Eq + Clone, A: Algorithm> KeyedMemoryStore<K, A, FoldBuildHasher> {
    /// A bucket of `algorithm` per key, all with `quota`.
    pub fn with_algorithm(algorithm: A, quota: Quota) -> Self {
        let (shard_count, per_shard_cap) = layout(DEFAULT_MAX_KEYS);
        KeyedMemoryStore {
            algorithm,
            clock: Clock::new(),
            default_quota: QuotaCell::new(quota),
            default_changed_at: AtomicU64::new(0),
            default_changes: QuotaChanges::default(),
            quota_fn: None,
            shards: Shards::new(shard_count, FoldBuildHasher::new()),
            max_keys: DEFAULT_MAX_KEYS,
            per_shard_cap,
            policy: CapPolicy::default(),
            vacated: VacatedSlots::default(),
        }
    }
}

impl<K: Hash + Eq + Clone, A: Algorithm, S: BuildHasher + Clone> KeyedMemoryStore<K, A, S> {
    /// Hashes keys with `hasher` instead of the default [`FoldBuildHasher`] (say,
    /// `std::hash::RandomState` for SipHash). Call it while building: the store
    /// returned is empty.
    pub fn with_hasher<S2: BuildHasher + Clone>(self, hasher: S2) -> KeyedMemoryStore<K, A, S2> {
        KeyedMemoryStore {
            algorithm: self.algorithm,
            clock: self.clock,
            default_quota: self.default_quota,
            default_changed_at: self.default_changed_at,
            default_changes: self.default_changes,
            quota_fn: self.quota_fn,
            shards: Shards::new(self.shards.count(), hasher),
            max_keys: self.max_keys,
            per_shard_cap: self.per_shard_cap,
            policy: self.policy,
            vacated: self.vacated,
        }
    }

    /// Holds at most `max_keys` keys (at least 1). Call it while building: the store
    /// returned is empty.
    pub fn with_max_keys(mut self, max_keys: usize) -> Self {
        let max_keys = max_keys.max(1);
        let (shard_count, per_shard_cap) = layout(max_keys);
        self.shards = Shards::new(shard_count, self.shards_hasher());
        self.vacated = VacatedSlots::default().with_max_keys(max_keys);
        self.max_keys = max_keys;
        self.per_shard_cap = per_shard_cap;
        self
    }

    fn shards_hasher(&self) -> S {
        self.shards.hasher().clone()
    }

    /// What to do with an unseen key when the store is full of busy keys.
    pub fn with_cap_policy(mut self, policy: CapPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Gives some keys a quota of their own: `quota_fn` returns `Some` for them and
    /// `None` for keys that follow the default quota. It is called on every decision,
    /// so it should be quick (a lookup, a prefix test). Its answer for a key may change
    /// (a customer moves to another plan): the window algorithms keep the period their
    /// window counts in and re-index it, keeping its units, as [`Self::set_default_quota`]
    /// does; GCRA and the leaky bucket keep the debt as time (a second owed stays a
    /// second, not rescaled to the new interval); the sliding log keeps its entries. For
    /// a fresh start under the new quota, [`remove`](Self::remove) the key. The store
    /// cannot see such a change, so a full store's refusals (with
    /// [`CapPolicy::RejectNew`]) may name the instant of room the old quota gave a
    /// window algorithm until the key's shard next sweeps, at most 100 ms of refusals
    /// later; a change of the default quota is seen at once.
    pub fn with_quota_fn(
        mut self,
        quota_fn: impl Fn(&K) -> Option<Quota> + Send + Sync + 'static,
    ) -> Self {
        self.quota_fn = Some(Box::new(quota_fn));
        self
    }

    /// Reads time from `clock` instead of a fresh one (to share a clock with another
    /// store, or align fixed windows).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The store's clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The algorithm.
    pub fn algorithm(&self) -> &A {
        &self.algorithm
    }

    /// The most keys the store holds.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// What the store does when full.
    pub fn cap_policy(&self) -> CapPolicy {
        self.policy
    }

    /// The default quota (for keys without a quota of their own).
    pub fn default_quota(&self) -> Quota {
        self.default_quota.get()
    }

    /// The quota that applies to `key`.
    #[inline]
    pub fn quota_for(&self, key: &K) -> Quota {
        match &self.quota_fn {
            Some(f) => f(key).unwrap_or_else(|| self.default_quota.get()),
            None => self.default_quota.get(),
        }
    }

    /// Replaces the default quota; see [`RateStore::set_quota`]. Every bucket that
    /// follows the default keeps its fill level in units (as
    /// [`Algorithm::rescale`] defines it), so a cut in the rate does not hand each key a
    /// fresh burst and a rise does not leave keys owing the old, longer time. Requests
    /// sleeping until slots they booked move them the same way only when the change
    /// is made through [`KeyedRateLimiter::set_quota`](super::KeyedRateLimiter::set_quota),
    /// which tells them.
    ///
    /// This walks every key under its shard's write lock: O(keys), for a rare call.
    pub fn set_default_quota(&self, quota: Quota) {
        self.default_quota.replace(quota, |old| {
            if *old == quota {
                return;
            }
            let now = self.clock.now();
            self.default_changed_at.fetch_max(now, Ordering::AcqRel);
            self.default_changes
                .record(self.clock.to_instant(now), *old, quota);
            self.shards.for_each_shard(|shard| {
                for (key, state) in shard.map.iter() {
                    let own_quota = self.quota_fn.as_ref().and_then(|f| f(key));
                    if own_quota.is_none() {
                        self.algorithm.rescale(state, old, &quota, now);
                    }
                }
                shard.forget_room_at();
            });
        });
    }

    /// Takes `cost` units for `key` now if they fit: the synchronous form of
    /// [`RateStore::check`].
    ///
    /// # Errors
    /// [`StoreError::CostTooLarge`] when the key's quota can never admit `cost`;
    /// [`StoreError::TooManyKeys`] when `key` is unseen, the store full of busy keys
    /// and the policy [`CapPolicy::RejectNew`].
    #[inline]
    pub fn check_now(&self, key: &K, cost: u64) -> Result<Decision, StoreError> {
        self.decide(key, cost, Op::Check)
    }

    /// Whether `cost` units would fit now, taking nothing: the synchronous form of
    /// [`RateStore::peek`]. Never inserts the key.
    ///
    /// # Errors
    /// [`StoreError::CostTooLarge`].
    pub fn peek_now(&self, key: &K, cost: u64) -> Result<Decision, StoreError> {
        self.decide(key, cost, Op::Peek)
    }

    /// Takes the next `cost` units of `key` even if they are valid only later, unless
    /// that is more than `max_wait` away: the synchronous form of
    /// [`RateStore::reserve`].
    ///
    /// # Errors
    /// As for [`KeyedMemoryStore::check_now`].
    pub fn reserve_now(
        &self,
        key: &K,
        cost: u64,
        max_wait: Duration,
    ) -> Result<Decision, StoreError> {
        if let Some(decision) = self.take_vacated(key, cost, max_wait) {
            return Ok(decision);
        }
        self.decide(key, cost, Op::Reserve(duration_nanos(max_wait)))
    }

    /// Starts a reservation in a slot that a request of `key` booked and left
    /// ([`RateStore::vacate`]), if one fits and comes before the slot the bucket would
    /// book. It normally does, since the bucket books after every slot it booked
    /// before; not once the key was dropped (evicted from a full store) and came back
    /// with a fresh bucket.
    fn take_vacated(&self, key: &K, cost: u64, max_wait: Duration) -> Option<Decision> {
        if !self.vacated.holds_any() {
            return None;
        }
        let (bucket_wait, snapshot) = match self.peek_now(key, cost) {
            Ok(Decision::Denied {
                retry_after,
                snapshot,
            }) => (retry_after, snapshot),
            _ => return None,
        };
        let at = self
            .vacated
            .take(key, cost, max_wait.min(bucket_wait), || {
                self.booked_under(key)
            })?;
        Some(Decision::Allowed {
            snapshot,
            wait: at.saturating_duration_since(tokio::time::Instant::now()),
        })
    }

    /// The quota of `key` and the count of default-quota changes: what a slot booked
    /// now is booked under.
    fn booked_under(&self, key: &K) -> (Quota, u64) {
        let generation = self.default_changes.generation();
        (self.quota_for(key), generation)
    }

    /// The bucket of `key` now (limit, remaining, reset), for response headers. An
    /// unknown key reads as a fresh, full bucket.
    pub fn snapshot_now(&self, key: &K) -> Snapshot {
        let quota = self.quota_for(key);
        let shard = self.shards.read(key);
        let now = self.clock.now();
        match shard.map.get(key) {
            Some(state) => self.algorithm.snapshot(state, &quota, now),
            None => self
                .algorithm
                .snapshot(&self.algorithm.new_state(&quota), &quota, now),
        }
    }

    /// Gives back `cost` unused units of `key`; see [`RateStore::refund`]. An unknown
    /// key has nothing to give back.
    pub fn refund_now(&self, key: &K, cost: u64) {
        let now = self.clock.now();
        self.refund_taken_at(key, cost, now, now);
    }

    /// Gives back `cost` units of `key` taken at `now` (a clock reading).
    fn refund_taken_at(&self, key: &K, cost: u64, taken_at: u64, now: u64) {
        let quota = self.quota_for(key);
        let shard = self.shards.read(key);
        if let Some(state) = shard.map.get(key) {
            self.algorithm
                .refund_taken_at(state, &quota, cost, taken_at, now);
        }
    }

    /// Forgets `key`: its next request starts with a full bucket. Returns whether the
    /// key was held.
    pub fn remove(&self, key: &K) -> bool {
        let removed = self.shards.write(key).map.remove(key).is_some();
        // Slots its waiting requests left, or will leave, were counted in the bucket
        // just dropped: a fresh one's requests would start in them uncharged.
        self.vacated.forget_booked_until_now();
        removed
    }

    /// Whether the store holds a bucket for `key` (idle buckets may still be held
    /// until their shard's next sweep).
    pub fn contains_key(&self, key: &K) -> bool {
        self.shards.read(key).map.contains_key(key)
    }

    /// The number of keys held, idle ones not yet swept included.
    pub fn len(&self) -> usize {
        self.shards.sum(|shard| shard.map.len())
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every idle key now, in every shard (normal operation does this by itself;
    /// this is for tests and for giving memory back at a known time).
    pub fn sweep(&self) {
        let now = self.clock.now();
        self.shards.for_each_shard(|shard| {
            shard
                .map
                .retain(|k, v| !self.algorithm.is_idle(v, &self.quota_for(k), now));
            shard.after_sweep(now);
        });
    }

    /// Forgets every key.
    pub fn clear(&self) {
        self.vacated.forget_booked_until_now();
        let now = self.clock.now();
        self.shards.for_each_shard(|shard| {
            shard.map.clear();
            shard.after_sweep(now);
        });
    }

    /// Bytes held by the tables now: each slot holds a key and its bucket state, plus
    /// one control byte. Heap memory that keys or states own (a `String` key, a
    /// sliding log) comes on top.
    pub fn table_bytes(&self) -> usize {
        let per_shard = self.shards.collect_capacities();
        per_shard
            .into_iter()
            .map(|cap| table_bytes(buckets_for(cap), entry_size::<K, A>()))
            .sum()
    }

    /// The most bytes the tables can ever hold: every shard's table sized for its cap,
    /// plus one more such table for the moment a shard moves its entries to a new
    /// table (each thread inserting at the same time may add one). Heap memory owned
    /// by keys or states comes on top (none for integer or address keys with
    /// [`Gcra`]), and so do the slots waiting requests gave up ([`VacatedSlots`]: at
    /// most 64 of about 80 bytes for each of at most `min(max_keys, 1024)` keys).
    pub fn max_table_bytes(&self) -> usize {
        let shard = table_bytes(buckets_for(self.per_shard_cap), entry_size::<K, A>());
        shard.saturating_mul(self.shards.count() + 1)
    }

    #[inline]
    fn decide(&self, key: &K, cost: u64, op: Op) -> Result<Decision, StoreError> {
        let quota = self.quota_for(key);
        {
            let shard = self.shards.read(key);
            if let Some(state) = shard.map.get(key) {
                // The clock is read under the lock, so a sweep that held the lock
                // before us judged idleness at an instant no later than ours.
                let now = self.clock.now();
                return self.apply(state, &quota, now, cost, op);
            }
        }
        self.decide_unseen(key, &quota, cost, op)
    }

    /// The path of a key the shard does not hold, kept out of line so that the path
    /// of known keys stays small.
    #[inline(never)]
    fn decide_unseen(
        &self,
        key: &K,
        quota: &Quota,
        cost: u64,
        op: Op,
    ) -> Result<Decision, StoreError> {
        if let Op::Peek = op {
            let now = self.clock.now();
            return self.apply(&self.algorithm.new_state(quota), quota, now, cost, op);
        }
        let mut shard = self.shards.write(key);
        let now = self.clock.now();
        if let Some(state) = shard.map.get(key) {
            return self.apply(state, quota, now, cost, op);
        }
        let state = self.algorithm.new_state(quota);
        let decision = self.apply(&state, quota, now, cost, op)?;
        if !decision.is_allowed() || self.algorithm.is_idle(&state, quota, now) {
            // Nothing was taken that a fresh bucket would not give again.
            return Ok(decision);
        }
        if self.policy == CapPolicy::EvictLeastBusy && shard.map.len() >= self.per_shard_cap {
            // A bucket may be dropped to make room: slots vacated of it must not go to
            // the fresh bucket its key may get later.
            self.vacated.forget_booked_until_now();
        }
        shard
            .make_room(
                self.per_shard_cap,
                self.policy,
                now,
                |k, v| self.algorithm.is_idle(v, &self.quota_for(k), now),
                |k, v| self.algorithm.busy_until(v, &self.quota_for(k)),
                |k, v| self.algorithm.idle_at(v, &self.quota_for(k)),
            )
            .map_err(|Full { room_at }| StoreError::TooManyKeys {
                max_keys: self.max_keys,
                retry_after: room_at.map(|at| Duration::from_nanos(at.saturating_sub(now))),
            })?;
        shard.map.insert(key.clone(), state);
        Ok(decision)
    }

    #[inline]
    fn apply(
        &self,
        state: &A::State,
        quota: &Quota,
        now: Nanos,
        cost: u64,
        op: Op,
    ) -> Result<Decision, StoreError> {
        Ok(match op {
            Op::Check => {
                Decision::from_verdict(self.algorithm.check(state, quota, now, cost)?, now)
            }
            Op::Peek => Decision::from_verdict(self.algorithm.peek(state, quota, now, cost)?, now),
            Op::Reserve(max_wait) => Decision::from_reservation(
                self.algorithm.reserve(
                    state,
                    quota,
                    now,
                    cost,
                    max_wait.min(self.algorithm.booking_horizon(quota)),
                )?,
                now,
            ),
        })
    }
}

/// The shard count and per-shard cap for `max_keys`.
fn layout(max_keys: usize) -> (usize, usize) {
    let wanted = (max_keys / MIN_KEYS_PER_SHARD).clamp(1, MAX_SHARDS);
    // Round down to a power of two, as the shards index by hash bits.
    let shards = 1usize << (usize::BITS - 1 - wanted.leading_zeros());
    (shards, (max_keys / shards).max(1))
}

fn entry_size<K, A: Algorithm>() -> usize {
    size_of::<(K, A::State)>()
}

/// The bucket count of a `std` (hashbrown) table that has grown to hold `items`: a
/// power of two with at most 7/8 of it used, and at least 16 once allocated.
fn buckets_for(items: usize) -> usize {
    if items == 0 {
        return 0;
    }
    (items.saturating_mul(8) / 7)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX)
        .max(16)
}

/// The allocation of such a table: the slots, aligned, then a control byte per bucket
/// and one trailing group of 16.
fn table_bytes(buckets: usize, entry: usize) -> usize {
    if buckets == 0 {
        return 0;
    }
    buckets
        .saturating_mul(entry)
        .checked_next_multiple_of(16)
        .unwrap_or(usize::MAX)
        .saturating_add(buckets)
        .saturating_add(16)
}

impl<K, A, S> RateStore<K> for KeyedMemoryStore<K, A, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    A: Algorithm,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    type Future = Ready<Result<Decision, StoreError>>;

    #[inline]
    fn check(&self, key: &K, cost: u64) -> Self::Future {
        ready(self.check_now(key, cost))
    }

    #[inline]
    fn try_check_now(&self, key: &K, cost: u64) -> Option<Result<Decision, StoreError>> {
        Some(self.check_now(key, cost))
    }

    fn peek(&self, key: &K, cost: u64) -> Self::Future {
        ready(self.peek_now(key, cost))
    }

    fn reserve(&self, key: &K, cost: u64, max_wait: Duration) -> Self::Future {
        ready(self.reserve_now(key, cost, max_wait))
    }

    fn quota(&self, key: &K) -> Quota {
        self.quota_for(key)
    }

    fn set_quota(&self, quota: Quota) {
        self.set_default_quota(quota);
    }

    fn refund(&self, key: &K, cost: u64) {
        self.refund_now(key, cost);
    }

    /// Drains `key` if the store holds it (a key not held would start full: it is
    /// not inserted for this).
    fn drain_until(&self, key: &K, until: tokio::time::Instant) {
        let quota = self.quota_for(key);
        let at = self.clock.to_nanos(until);
        if let Some(state) = self.shards.read(key).map.get(key) {
            self.algorithm.drain_until(state, &quota, at);
        }
    }

    fn rescales_bookings(&self) -> bool {
        self.algorithm.rescales_bookings()
    }

    fn vacate(&self, key: &K, vacated: VacatedSlot) {
        self.vacated.vacate(key, vacated);
    }

    fn quota_changes(&self) -> Option<&QuotaChanges> {
        Some(&self.default_changes)
    }

    fn moved_slot(&self, old: &Quota, new: &Quota, offset: Duration) -> Duration {
        Duration::from_nanos(self.algorithm.moved_slot(old, new, duration_nanos(offset)))
    }

    fn reserve_whole(
        &self,
        key: &K,
        taken: u64,
        taken_at: tokio::time::Instant,
        cost: u64,
        max_wait: Duration,
    ) -> Self::Future {
        let now = self.clock.now();
        let at = self.clock.to_nanos(taken_at).min(now);
        // A state that is time gives back from the end of its debt, which may be
        // another request's reservation by now (a key's reservations are not tracked
        // here, unlike `MemoryStore`'s): nothing is given back, the units stay spent.
        if !self.algorithm.rescales_bookings()
            && self.default_changed_at.load(Ordering::Acquire) < at
        {
            self.refund_taken_at(key, taken, at, now);
        }
        ready(self.reserve_now(key, cost, max_wait))
    }
}

impl<K, A, S> fmt::Debug for KeyedMemoryStore<K, A, S>
where
    K: Hash + Eq + Clone,
    A: Algorithm + fmt::Debug,
    S: BuildHasher + Clone,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedMemoryStore")
            .field("algorithm", &self.algorithm)
            .field("default_quota", &self.default_quota.get())
            .field("keys", &self.len())
            .field("max_keys", &self.max_keys)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn layout_keeps_shards_large_and_under_the_cap() {
        assert_eq!(layout(1), (1, 1));
        assert_eq!(layout(1000), (1, 1000));
        assert_eq!(layout(5000), (4, 1250));
        assert_eq!(layout(1_000_000), (64, 15_625));
        for max in [1, 7, 1023, 1024, 3000, 65_537, 10_000_000] {
            let (shards, cap) = layout(max);
            assert!(shards.is_power_of_two() && shards * cap <= max);
        }
    }

    #[test]
    fn absurd_caps_saturate_instead_of_overflowing() {
        let store =
            KeyedMemoryStore::<u64>::new(Quota::per_second(1).unwrap()).with_max_keys(usize::MAX);
        assert_eq!(store.max_table_bytes(), usize::MAX);
        assert!(store.check_now(&1, 1).unwrap().is_allowed());
    }

    #[test]
    fn table_bound_matches_std_growth() {
        // A std map grown one insert at a time never has more buckets than the bound.
        let mut map = std::collections::HashMap::new();
        for i in 0..100_000u64 {
            map.insert(i, 0u64);
            let buckets = buckets_for(map.capacity());
            assert!(buckets <= buckets_for(map.len()).max(16), "{i}");
        }
    }
}
