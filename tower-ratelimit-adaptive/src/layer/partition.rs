//! Partitions: which requests share one controller and one limiter.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;
use tower_ratelimit_core::concurrency::ConcurrencyLimiter;
use tower_ratelimit_core::{Quota, QuotaError, RateLimiter};

use crate::controller::Controller;
use crate::{Outcome, ServerPartition};

/// Chooses the partition of a request: requests with the same key share one
/// controller and one limiter (one per host, per API key, per the server's `pk`).
pub trait Partition<Req>: Clone + Send + Sync + 'static {
    /// The key type.
    type Key: Hash + Eq + Clone + Send + Sync + 'static;
    /// The key of `req`.
    fn key(&self, req: &Req) -> Self::Key;
}

/// Every request in one partition (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct SinglePartition;

impl<Req> Partition<Req> for SinglePartition {
    type Key = ();
    fn key(&self, _req: &Req) {}
}

/// A partition chosen by a function of the request.
#[derive(Debug, Clone, Copy)]
pub struct PartitionFn<F>(pub F);

impl<Req, K, F> Partition<Req> for PartitionFn<F>
where
    F: Fn(&Req) -> K + Clone + Send + Sync + 'static,
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    type Key = K;
    fn key(&self, req: &Req) -> K {
        (self.0)(req)
    }
}

/// The rate used when a controller sets none: high enough never to hold a request.
const UNLIMITED_RATE: f64 = 1e9;
const UNLIMITED_BURST: u64 = 1_000_000;

/// The state of one partition: its controller and the limiters it drives.
pub(crate) struct Slot {
    controller: Mutex<Box<dyn Controller>>,
    /// The last quota set, to touch the limiter (and wake waiters) only on a change.
    applied: Mutex<(Option<u64>, u64)>,
    pub(crate) limiter: RateLimiter,
    pub(crate) concurrency: Option<ConcurrencyLimiter>,
    origin: Instant,
    /// When a request last asked for the slot (nanoseconds after `origin`).
    last_used: AtomicU64,
    /// The server partition (`pk`) this slot stands for, once a response named one.
    server: Mutex<Option<ServerPartition>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain numbers behind: keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn quota_for(rate: Option<f64>, burst: u64) -> Quota {
    let (r, b) = match rate {
        Some(r) if r.is_finite() && r > 0.0 => (r, burst.max(1)),
        _ => (UNLIMITED_RATE, UNLIMITED_BURST),
    };
    Quota::from_rate(r, b)
        .or_else(|_| Quota::from_rate(r, 1))
        .or_else(|e| match e {
            // A controller that almost stops, slower than any quota can pace: the
            // slowest quota, not none.
            QuotaError::PeriodTooLong => Quota::with_period(Quota::MAX_SPAN),
            _ => Quota::from_rate(UNLIMITED_RATE, 1),
        })
        .or_else(|_| Quota::from_rate(UNLIMITED_RATE, 1))
        .expect("a rate of 1e9/s with burst 1 is a valid quota")
}

impl Slot {
    pub(crate) fn new(controller: Box<dyn Controller>, manage_concurrency: bool) -> Slot {
        let quota = quota_for(controller.rate(), controller.burst());
        // A controller that reports a cap (Gradient2) sets no rate: without its cap
        // applied, the layer would limit nothing.
        let manage_concurrency = manage_concurrency || controller.concurrency().is_some();
        let concurrency = manage_concurrency.then(|| {
            // A first cap of 0 would admit nothing, and with no completion the
            // controller could never raise it.
            let cap = controller
                .concurrency()
                .map_or(usize::MAX >> 3, |c| c.max(1));
            ConcurrencyLimiter::new(cap)
        });
        Slot {
            applied: Mutex::new((
                Some(quota.emission_interval().as_nanos() as u64),
                quota.burst(),
            )),
            limiter: RateLimiter::new(quota),
            concurrency,
            controller: Mutex::new(controller),
            origin: Instant::now(),
            last_used: AtomicU64::new(0),
            server: Mutex::new(None),
        }
    }

    pub(crate) fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.origin)
    }

    fn touch(&self) {
        let now = u64::try_from(self.now().as_nanos()).unwrap_or(u64::MAX);
        self.last_used.fetch_max(now, Ordering::Relaxed);
    }

    /// How long since a request last asked for the slot.
    fn idle_for(&self) -> Duration {
        self.now()
            .saturating_sub(Duration::from_nanos(self.last_used.load(Ordering::Relaxed)))
    }

    /// Whether the slot can be forgotten without losing anything a request needs: no
    /// request for a while, none in flight or waiting (each holds the slot: a request
    /// in flight for minutes still uses its key's cap), no pause a server asked for.
    /// `holders` is how many references the map and the learned partitions keep.
    fn forgettable(self: &Arc<Self>, holders: usize) -> bool {
        Arc::strong_count(self) <= holders
            && self.idle_for() >= IDLE_PARTITION
            && self.limiter.paused_until().is_none()
    }

    /// The references a partition map keeps to this slot: its key's, and the learned
    /// server partition's when it stands for one.
    fn kept_by_map(&self) -> usize {
        1 + usize::from(lock(&self.server).is_some())
    }

    pub(crate) fn admit(&self, sample: f64) -> bool {
        let now = self.now();
        lock(&self.controller).admit(now, sample)
    }

    pub(crate) fn rate(&self) -> Option<f64> {
        lock(&self.controller).rate()
    }

    /// Feeds one outcome and applies the controller's answers to the limiters.
    pub(crate) fn observe(&self, outcome: &Outcome, max_hold: Option<Duration>) {
        // The controller is told the hold the layer applies (none when holds are
        // ignored, at most `max_hold`), not the server's uncapped wait: a cruise
        // scaled on a Retry-After of hours would stop probing for days.
        let held = outcome
            .retry_after()
            .and_then(|wait| Some(wait.min(max_hold?)));
        let outcome = outcome.with_retry_after(held);
        // One lock around the controller and the quota it sets, so that two
        // completions cannot apply their quotas in the opposite order.
        let mut c = lock(&self.controller);
        let now = self.now();
        c.observe(now, &outcome);
        let (rate, burst, cap) = (c.rate(), c.burst(), c.concurrency());
        let quota = quota_for(rate, burst);
        let key = (
            Some(quota.emission_interval().as_nanos() as u64),
            quota.burst(),
        );
        let changed = {
            let mut applied = lock(&self.applied);
            let changed = *applied != key;
            *applied = key;
            changed
        };
        if changed {
            self.limiter.set_quota(quota);
        }
        drop(c);
        if let (Some(limiter), Some(cap)) = (&self.concurrency, cap) {
            if limiter.limit() != cap {
                limiter.set_limit(cap.max(1));
            }
        }
        if let Some(wait) = held {
            self.limiter.pause_for(wait);
        }
    }
}

/// A partition no request asked for in this long, and not paused, makes room for a
/// new key when the map is full: its controller's picture of the server is stale by
/// then, and a crawler meets more hosts over its life than it calls at once.
const IDLE_PARTITION: Duration = Duration::from_secs(60);

/// How often a full map looks for a partition to forget while none qualifies.
const FORGET_SCAN_EVERY: Duration = Duration::from_secs(1);

/// Bounded map from partition key to its state; keys past the bound share one
/// overflow partition rather than growing memory without end, until a partition has
/// been idle long enough to make room.
pub(crate) struct Partitions<K> {
    map: Mutex<HashMap<K, Arc<Slot>>>,
    overflow: Mutex<Option<Arc<Slot>>>,
    /// The slot of each server partition a response named (at most `max`).
    by_server: Mutex<HashMap<ServerPartition, Arc<Slot>>>,
    max: usize,
    /// When a full map last looked for a partition to forget and found none.
    last_scan: Mutex<Option<Instant>>,
}

impl<K: Hash + Eq + Clone> Partitions<K> {
    pub(crate) fn new(max: usize) -> Partitions<K> {
        Partitions {
            map: Mutex::new(HashMap::new()),
            overflow: Mutex::new(None),
            by_server: Mutex::new(HashMap::new()),
            max: max.max(1),
            last_scan: Mutex::new(None),
        }
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// The slot that [`get_or_insert`](Self::get_or_insert) would give `key` now,
    /// without creating one: the key's own slot, else the overflow slot when the map
    /// is full. `None` when the key would get a slot of its own, or the overflow slot
    /// it would use does not exist yet.
    pub(crate) fn get(&self, key: &K) -> Option<Arc<Slot>> {
        let map = lock(&self.map);
        if let Some(s) = map.get(key) {
            return Some(s.clone());
        }
        if map.len() < self.max
            || map
                .values()
                .any(|slot| slot.forgettable(slot.kept_by_map()))
        {
            return None;
        }
        // No path takes the map while holding the overflow, so holding both is safe.
        let overflow = lock(&self.overflow).clone();
        drop(map);
        overflow
    }

    pub(crate) fn get_or_insert(&self, key: &K, make: impl Fn() -> Slot) -> Arc<Slot> {
        let mut map = lock(&self.map);
        if let Some(s) = map.get(key) {
            s.touch();
            return s.clone();
        }
        if map.len() >= self.max {
            self.forget_one(&mut map);
        }
        if map.len() < self.max {
            let s = Arc::new(make());
            s.touch();
            map.insert(key.clone(), s.clone());
            return s;
        }
        drop(map);
        let overflow = lock(&self.overflow)
            .get_or_insert_with(|| Arc::new(make()))
            .clone();
        overflow.touch();
        overflow
    }

    /// Makes room in a full map: forgets the keys whose partitions have been idle the
    /// longest, up to an eighth of the map, if some qualify ([`Slot::forgettable`]).
    /// Looks at most once a second while none does, so that a run of new keys in the
    /// overflow does not scan the map for each.
    fn forget_one(&self, map: &mut HashMap<K, Arc<Slot>>) {
        let mut last_scan = lock(&self.last_scan);
        let now = Instant::now();
        if last_scan.is_some_and(|at| now.saturating_duration_since(at) < FORGET_SCAN_EVERY) {
            return;
        }
        // An eighth of the map at once, the stalest first: one scan makes room for
        // the next new keys too, instead of a scan of the whole map for each of them.
        let mut stalest: Vec<(Duration, K)> = map
            .iter()
            .filter(|(_, slot)| slot.forgettable(slot.kept_by_map()))
            .map(|(key, slot)| (slot.idle_for(), key.clone()))
            .collect();
        if stalest.is_empty() {
            *last_scan = Some(now);
            return;
        }
        *last_scan = None;
        let room = (self.max / 8).max(1);
        if stalest.len() > room {
            stalest.select_nth_unstable_by(room - 1, |a, b| b.0.cmp(&a.0));
            stalest.truncate(room);
        }
        for (_, key) in stalest {
            if let Some(slot) = map.remove(&key) {
                self.forget_server_of(&slot);
            }
        }
    }

    /// The server partition a forgotten slot stood for is forgotten with it, unless
    /// another key shares it: kept, it would hold a place among the learned ones for
    /// ever, and past their bound none would be learned again.
    fn forget_server_of(&self, slot: &Arc<Slot>) {
        let server = *lock(&slot.server);
        if let Some(server) = server {
            let mut by_server = lock(&self.by_server);
            let only_there = by_server
                .get(&server)
                .is_some_and(|kept| Arc::ptr_eq(kept, slot))
                && Arc::strong_count(slot) <= 2;
            if only_there {
                by_server.remove(&server);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.map).len()
    }

    /// Number of server partitions learnt from responses.
    pub(crate) fn server_len(&self) -> usize {
        lock(&self.by_server).len()
    }

    /// A response to a request keyed `key` (whose slot is `slot`) named the server
    /// partition `server`: from now on `key` shares the slot of every key whose
    /// responses named it. The last partition named wins, so a key the server moved
    /// to another partition follows it. Keys in the overflow partition are left there.
    pub(crate) fn learn(
        &self,
        key: &K,
        slot: &Arc<Slot>,
        server: ServerPartition,
        make: impl Fn() -> Slot,
    ) {
        if !lock(&self.map)
            .get(key)
            .is_some_and(|s| Arc::ptr_eq(s, slot))
        {
            // An overflow key, or one already moved by a concurrent response.
            return;
        }
        let mut by = lock(&self.by_server);
        if let Some(existing) = by.get(&server) {
            if !Arc::ptr_eq(existing, slot) {
                let existing = existing.clone();
                drop(by);
                self.point(key, existing);
            }
            return;
        }
        if by.len() >= self.max {
            // Bounded: the key keeps its own slot.
            return;
        }
        let mut owner = lock(&slot.server);
        if owner.is_none() {
            *owner = Some(server);
            by.insert(server, slot.clone());
            return;
        }
        // The slot stands for another server partition, which other keys may share:
        // this key leaves it for a fresh slot of its own partition.
        drop(owner);
        let fresh = Arc::new(make());
        *lock(&fresh.server) = Some(server);
        by.insert(server, fresh.clone());
        drop(by);
        self.point(key, fresh);
    }

    fn point(&self, key: &K, slot: Arc<Slot>) {
        if let Some(s) = lock(&self.map).get_mut(key) {
            *s = slot;
        }
    }
}
