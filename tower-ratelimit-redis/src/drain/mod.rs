//! A throttle's drain on a Redis GCRA bucket (`RateStore::drain_until`), without
//! blocking the check path that asks for it.
//!
//! `drain_until` is synchronous and runs inside a limiter's check, so nothing here
//! waits for Redis. The drain is recorded per key (coalesced: one record and at most
//! one task per key, the latest drain point winning) and reaches Redis two ways:
//!
//! * **ahead of the key's next decision from this store**: the decision sends the
//!   drain script first, on the same connection and within the same timeout, so the
//!   request that follows a throttle is decided on the drained bucket. A task alone
//!   would lose that race: the check is sent before a spawned task first runs, takes
//!   a unit of the full bucket, and the drain then leaves one more, so two requests
//!   would start at the throttle's end against a server that allows one.
//! * **by a task on the current Tokio runtime**, so that the other instances sharing
//!   the key see the drain even if this one sends nothing more. At most
//!   [`MAX_TASKS`] run at once over all keys, and a task sends one key's drain at
//!   most [`MAX_SENDS_PER_TASK`] times in a row. A drain that finds no free task is
//!   sent by the next task that finishes its key with Redis answering (it then takes
//!   a record no task holds), or ahead of the key's next decision, whichever comes
//!   first; with no runtime, only the latter. A task dropped before its end (its
//!   runtime shut down) gives its key up to the others.
//!
//! A record is forgotten once Redis applied it (or a later point), once its debt has
//! run out (draining would change nothing), or when [`MAX_PENDING`] keys already wait
//! (the drain is then dropped and counted). A record keeps the quota in force when
//! its drain was asked for, and is sent under it however long it waits (as in memory,
//! where a later quota change rescales what a drain left owing). Failures are counted
//! in [`Stats::drain_failures`](crate::Stats::drain_failures); the circuit breaker and
//! the timeout apply to every send. After an outage or a timeout the record stays,
//! for the key's next decision or the next task that finishes a drain; after an
//! answer about the call itself (an error such as `NOPERM`, or a reply that is not
//! the script's) it is given up, since every resend would meet the same answer.

mod schedule;

use crate::error::is_outage;
use crate::script::drain::{self, Point};
use crate::script::{self, Invoke, Params, RemoteAlgorithm};
use crate::stats::Counters;
use crate::store::Inner;
use redis::aio::ConnectionLike;
use schedule::{Schedule, Scheduled, Wake};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// How many counts of pending records by the hash of their key a decision reads.
const SHARDS: usize = 64;

/// The most keys whose drain may wait for Redis at once.
pub(crate) const MAX_PENDING: usize = 1024;
/// The most drain tasks in flight at once, over all keys.
pub(crate) const MAX_TASKS: usize = 8;
/// How often one task sends (a later drain of its key raised while it was in flight)
/// before it leaves the rest to the key's next decision.
pub(crate) const MAX_SENDS_PER_TASK: u32 = 4;

/// Drains recorded and not yet known to be applied, per Redis key.
pub(crate) struct Drains {
    pending: Mutex<HashMap<Vec<u8>, Pending>>,
    /// Entries in `pending`, so that a decision with nothing pending reads one atomic.
    len: AtomicUsize,
    /// Entries in `pending` per [`SHARDS`] hash of their key (changed under its lock),
    /// so that while some keys' drains wait (an outage; a slow quota's long debt), a
    /// decision on another key still reads one atomic (and hashes its key) instead of
    /// taking the one lock.
    shards: [AtomicUsize; SHARDS],
    hasher: RandomState,
    tasks: AtomicUsize,
    /// No record can be stale before this instant (the earliest end of a record's
    /// debt, as of the last sweep), so a full map is swept at most once per such end,
    /// not on every drain of a new key. Each record's end is fixed when it is noted
    /// (its own quota prices it), so a quota change does not move it.
    sweep_after: Mutex<Option<Instant>>,
    script: redis::Script,
    /// Throttles waiting for their end, to drain then (`RateStore::schedule_drain`).
    schedule: Schedule,
}

struct Pending {
    /// The latest drain point asked for.
    at: Instant,
    /// The quota in force when that drain was asked for (the throttle's end), which
    /// prices it however long it waits: as in memory, where a later quota change
    /// rescales what the drain left owing instead of repricing the drain.
    params: Params,
    /// Whether a task is sending it.
    task: bool,
}

impl Pending {
    fn stale(&self, now: Instant) -> bool {
        stale(self.at, span(self.params), now)
    }
}

/// What [`Drains::note`] did with a drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Noted {
    /// Recorded, and a task slot claimed for the key: spawn the task.
    Spawn,
    /// Recorded; the key's task or next decision sends it.
    Pending,
    /// Its debt has already run out: the bucket is full either way.
    Stale,
    /// [`MAX_PENDING`] keys already wait.
    Dropped,
}

/// Whether a drain as of `at` can no longer change a bucket at `now`: its debt of
/// `span` (capacity less one interval) has run out.
fn stale(at: Instant, span: Duration, now: Instant) -> bool {
    at.checked_add(span).is_some_and(|end| end <= now)
}

/// The span of debt a drain leaves: all the burst but one unit.
pub(crate) fn span(params: Params) -> Duration {
    Duration::from_micros(
        params
            .limit
            .saturating_sub(1)
            .saturating_mul(params.unit_us),
    )
}

impl Drains {
    pub(crate) fn new() -> Drains {
        Drains {
            pending: Mutex::new(HashMap::new()),
            len: AtomicUsize::new(0),
            shards: std::array::from_fn(|_| AtomicUsize::new(0)),
            hasher: RandomState::new(),
            tasks: AtomicUsize::new(0),
            sweep_after: Mutex::new(None),
            script: redis::Script::new(drain::SOURCE),
            schedule: Schedule::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Vec<u8>, Pending>> {
        // The map holds plain values; a panic elsewhere leaves it consistent.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn shard(&self, key: &[u8]) -> &AtomicUsize {
        // Lossless on every target: the remainder is under SHARDS.
        &self.shards[(self.hasher.hash_one(key) % SHARDS as u64) as usize]
    }

    /// Removes `key`'s record from `pending` (its lock held), keeping the counts.
    fn remove(&self, pending: &mut HashMap<Vec<u8>, Pending>, key: &[u8]) {
        if pending.remove(key).is_some() {
            self.shard(key).fetch_sub(1, Ordering::AcqRel);
            self.len.store(pending.len(), Ordering::Release);
        }
    }

    /// Keeps the records of `pending` (its lock held) for which `keep` holds, keeping
    /// the counts.
    fn retain(&self, pending: &mut HashMap<Vec<u8>, Pending>, keep: impl Fn(&Pending) -> bool) {
        pending.retain(|key, p| {
            let kept = keep(p);
            if !kept {
                self.shard(key).fetch_sub(1, Ordering::AcqRel);
            }
            kept
        });
        self.len.store(pending.len(), Ordering::Release);
    }

    fn claim_task(&self) -> bool {
        self.tasks
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_TASKS).then_some(n + 1)
            })
            .is_ok()
    }

    /// Records a drain of `key` as of `at`, under `params` (the quota now).
    pub(crate) fn note(&self, key: &[u8], at: Instant, params: Params, now: Instant) -> Noted {
        if stale(at, span(params), now) {
            return Noted::Stale;
        }
        let mut pending = self.lock();
        if let Some(entry) = pending.get_mut(key) {
            if at >= entry.at {
                (entry.at, entry.params) = (at, params);
            }
            if !entry.task && self.claim_task() {
                entry.task = true;
                return Noted::Spawn;
            }
            return Noted::Pending;
        }
        if pending.len() >= MAX_PENDING {
            let mut sweep_after = self.sweep_after.lock().unwrap_or_else(|p| p.into_inner());
            if sweep_after.is_some_and(|after| now < after) {
                return Noted::Dropped;
            }
            self.retain(&mut pending, |p| !p.stale(now));
            *sweep_after = pending
                .values()
                .filter_map(|p| p.at.checked_add(span(p.params)))
                .min();
            if pending.len() >= MAX_PENDING {
                return Noted::Dropped;
            }
        }
        let task = self.claim_task();
        pending.insert(key.to_vec(), Pending { at, params, task });
        self.shard(key).fetch_add(1, Ordering::AcqRel);
        self.len.store(pending.len(), Ordering::Release);
        if task {
            Noted::Spawn
        } else {
            Noted::Pending
        }
    }

    /// The drain pending for `key` (its point and quota), for its decision to send
    /// first: one atomic load when no drain is pending, and a hash of the key and one
    /// more load when no key of its shard has one; the lock only beyond that.
    pub(crate) fn pending(&self, key: &[u8], now: Instant) -> Option<(Instant, Params)> {
        if self.len.load(Ordering::Acquire) == 0 || self.shard(key).load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut pending = self.lock();
        let entry = pending.get(key)?;
        if entry.stale(now) {
            self.remove(&mut pending, key);
            return None;
        }
        Some((entry.at, entry.params))
    }

    /// Redis applied `key`'s drain as of `at` (or refused it for good): forgets it,
    /// unless a later one was asked meanwhile.
    pub(crate) fn applied(&self, key: &[u8], at: Instant) {
        let mut pending = self.lock();
        if pending.get(key).is_some_and(|p| p.at <= at) {
            self.remove(&mut pending, key);
        }
    }

    /// A task's next drain point for `key` after `sends` sends, the last of which
    /// succeeded if `ok`; `None` ends the task and frees its slot.
    fn next_for_task(&self, key: &[u8], sends: u32, ok: bool) -> Option<(Instant, Params)> {
        let mut pending = self.lock();
        match pending.get_mut(key) {
            Some(entry) if ok && sends < MAX_SENDS_PER_TASK => {
                return Some((entry.at, entry.params));
            }
            Some(entry) => entry.task = false,
            None => {}
        }
        None
    }

    /// A record no task is sending (it found no free slot, or its task gave up or
    /// was dropped), claimed for a task that finished its own key: so that every
    /// record reaches the other instances while a slot is free, not only ahead of
    /// this store's next decision on its key.
    /// Records whose debt ran out on the way are forgotten, not sent.
    fn orphan(&self, now: Instant) -> Option<Vec<u8>> {
        let mut pending = self.lock();
        self.retain(&mut pending, |p| p.task || !p.stale(now));
        let (key, entry) = pending.iter_mut().find(|(_, p)| !p.task)?;
        entry.task = true;
        Some(key.clone())
    }

    /// A task's future was dropped while it held `key`: the record is no one's.
    fn release(&self, key: &[u8]) {
        if let Some(entry) = self.lock().get_mut(key) {
            entry.task = false;
        }
    }

    /// A task has ended (its future is being dropped): its slot is free.
    fn task_ended(&self) {
        self.tasks.fetch_sub(1, Ordering::AcqRel);
    }

    /// Drain tasks in flight.
    #[cfg(test)]
    pub(crate) fn tasks(&self) -> usize {
        self.tasks.load(Ordering::Acquire)
    }

    /// Keys with a drain not yet known to be applied.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }
}

/// The farthest offset sent, 2^52 µs (142 years): doubles hold it exactly, and the
/// key's expiry in milliseconds stays far inside Redis's range.
const MAX_OFFSET_US: i64 = 1 << 52;

/// `until` as µs from `from` on this process's clock (negative: before it), clamped
/// to ±[`MAX_OFFSET_US`].
fn micros_from(until: Instant, from: Instant) -> i64 {
    let micros = |d: Duration| {
        i64::try_from(d.as_micros()).map_or(MAX_OFFSET_US, |us| us.min(MAX_OFFSET_US))
    };
    if until >= from {
        micros(until - from)
    } else {
        -micros(from - until)
    }
}

/// `until` as µs from now on this process's clock (negative: past), which the script
/// adds to the server's now.
fn offset_us(until: Instant) -> i64 {
    micros_from(until, Instant::now())
}

/// The drain of `key` as of `at` (and at `point` on the server's clock, if known)
/// under `params`, as one `EVALSHA` (or its `EVAL`).
fn command(
    script: &redis::Script,
    invoke: bool,
    key: &[u8],
    at: Instant,
    point: Point,
    params: Params,
) -> redis::Cmd {
    let invoke = if invoke {
        Invoke::Hash(script.get_hash())
    } else {
        Invoke::Source
    };
    drain::command(invoke, key, offset_us(at), point, params)
}

/// Runs the drain script on `key` (`point` says how it is dated) and checks its
/// reply: the server's clock for a probe, 0 or 1 otherwise. A reply that is not the
/// script's is an error the server answered (not an outage).
async fn run_drain<C: ConnectionLike>(
    script: &redis::Script,
    key: &[u8],
    at: Instant,
    point: Point,
    params: Params,
    connection: &mut C,
) -> redis::RedisResult<i64> {
    let cmd = command(script, true, key, at, point, params);
    let with_source = || command(script, false, key, at, point, params);
    let reply = script::run(&cmd, with_source, connection).await?;
    let answer = match point {
        Point::Probe => drain::probe_clock(&reply),
        Point::Unknown | Point::Server(_) => drain::is_reply(&reply).then_some(0),
    };
    answer.ok_or_else(|| {
        redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "not the drain script's reply",
        ))
    })
}

/// A key's sleeper until its throttle's end. It holds the store weakly: a store
/// dropped meanwhile has no one left to drain for. Dropped before its end (its
/// runtime shut down), it gives the key's record up, so that a later throttle of the
/// key gets a sleeper.
struct Sleeper<C> {
    inner: Weak<Inner<C>>,
    /// `None` once the record was taken at the end.
    key: Option<Vec<u8>>,
}

impl<C> Sleeper<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn run(mut self, mut until: Instant) {
        loop {
            tokio::time::sleep_until(until).await;
            let (Some(inner), Some(key)) = (self.inner.upgrade(), self.key.as_ref()) else {
                return;
            };
            match inner.drains.schedule.wake(key, Instant::now()) {
                Wake::Sleep(end) => until = end,
                Wake::Drain(end) => {
                    if let Some(key) = self.key.take() {
                        inner.drain_until(key, end);
                    }
                    return;
                }
                Wake::Gone => {
                    // Not ours to forget: a later throttle may have a new sleeper.
                    self.key = None;
                    return;
                }
            }
        }
    }
}

impl<C> Drop for Sleeper<C> {
    fn drop(&mut self) {
        if let (Some(inner), Some(key)) = (self.inner.upgrade(), &self.key) {
            inner.drains.schedule.forget(key);
        }
    }
}

/// A drain task's claim on one of the [`MAX_TASKS`] slots, freed on drop.
struct TaskSlot<C>(Arc<Inner<C>>, Option<Vec<u8>>);

impl<C> Drop for TaskSlot<C> {
    fn drop(&mut self) {
        if let Some(key) = &self.1 {
            self.0.drains.release(key);
        }
        self.0.drains.task_ended();
    }
}

impl<C> Inner<C> {
    /// What `RateStore::drain_until` does: drains the local fallback at once and, on
    /// GCRA, records the drain for Redis and starts its task if it may.
    pub(crate) fn drain_until(self: &Arc<Self>, key: Vec<u8>, until: Instant)
    where
        C: ConnectionLike + Clone + Send + Sync + 'static,
    {
        let quota = self.current_quota();
        if let Some(local) = &self.fallback {
            local.drain_until(&key, &quota, until);
        }
        // The windows keep their counts, as the core's window algorithms do: their
        // count per period is their burst.
        if self.algorithm != RemoteAlgorithm::Gcra {
            return;
        }
        let params = self.algorithm.params(&quota);
        match self.drains.note(&key, until, params, Instant::now()) {
            Noted::Spawn => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    // The slot is freed when the task's future is dropped: when it
                    // ends, or unpolled with its runtime.
                    let slot = TaskSlot(Arc::clone(self), Some(key));
                    let inner = Arc::clone(self);
                    drop(runtime.spawn(inner.drain_task(slot)));
                }
                // No runtime to send it from: the key's next decision sends it.
                Err(_) => {
                    let _ = self.drains.next_for_task(&key, MAX_SENDS_PER_TASK, false);
                    self.drains.task_ended();
                }
            },
            Noted::Dropped => Counters::bump(&self.counters.drains_dropped),
            Noted::Pending | Noted::Stale => {}
        }
    }

    /// What `RateStore::schedule_drain` does: on GCRA, a sleeper (one per key) that
    /// calls [`Inner::drain_until`] at `until`; at once if `until` has passed. See
    /// `schedule` for why not a drain sent now, dated ahead.
    pub(crate) fn schedule_drain(self: &Arc<Self>, key: Vec<u8>, until: Instant)
    where
        C: ConnectionLike + Clone + Send + Sync + 'static,
    {
        if self.algorithm != RemoteAlgorithm::Gcra {
            return;
        }
        if until <= Instant::now() {
            self.drain_until(key, until);
            return;
        }
        // Without a runtime there is no one to wake: the core's drain at the limiter's
        // next check is all there is.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        match self.drains.schedule.note(&key, until) {
            Scheduled::Spawn => {
                let sleeper = Sleeper {
                    inner: Arc::downgrade(self),
                    key: Some(key),
                };
                drop(runtime.spawn(sleeper.run(until)));
            }
            Scheduled::Joined => {}
            Scheduled::Dropped => Counters::bump(&self.counters.drains_dropped),
        }
    }

    /// Sends `key`'s drain until Redis has the latest point, a send fails, or the
    /// task has sent its share.
    async fn drain_task(self: Arc<Self>, mut slot: TaskSlot<C>)
    where
        C: ConnectionLike + Clone + Send + Sync + 'static,
    {
        while let Some(key) = slot.1.take() {
            let (mut sends, mut ok) = (0, true);
            while let Some((at, params)) = self.drains.next_for_task(&key, sends, ok) {
                slot.1 = Some(key.clone());
                ok = self.send_drain(&key, at, params).await;
                slot.1 = None;
                sends += 1;
            }
            // Redis failing: the rest waits for the keys' next decisions.
            if ok {
                slot.1 = self.drains.orphan(Instant::now());
            }
        }
    }

    /// One drain on its own: bounded by the timeout, skipped while the breaker is
    /// open, its outcome counted and reported to the breaker.
    ///
    /// It first asks the key's server for its clock (the drain script writing
    /// nothing), then sends the drain with its point on that clock, read as of when
    /// the probe was sent: never earlier than the true point, and later by at most the
    /// probe's round trip. A server that stalls fails the probe, and the drain, not
    /// yet sent, stays pending; a drain that stalls in flight after the probe keeps
    /// its point, where an offset from the server's now would have moved it by the
    /// stall (holding the bucket that much longer). The key's own server answers, so
    /// the clocks of a Cluster's nodes never mix.
    async fn send_drain(&self, key: &[u8], at: Instant, params: Params) -> bool
    where
        C: ConnectionLike + Clone + Send + Sync + 'static,
    {
        let Some(call) = self.breaker.try_call() else {
            Counters::bump(&self.counters.drain_failures);
            return false;
        };
        let script = &self.drains.script;
        let mut connection = self.connection();
        let reply = tokio::time::timeout(self.timeout, async {
            let sent = Instant::now();
            let clock = run_drain(script, key, at, Point::Probe, params, &mut connection).await?;
            let point = Point::Server(clock.saturating_add(micros_from(at, sent)));
            run_drain(script, key, at, point, params, &mut connection).await
        })
        .await;
        match reply {
            Ok(Ok(_)) => {
                call.succeeded();
                Counters::bump(&self.counters.drains);
                self.drains.applied(key, at);
                return true;
            }
            // The server answered, with an error about this call or a reply that is
            // not the script's: it is up, and sending the drain again would meet the
            // same answer on every decision, so the drain is given up.
            Ok(Err(e)) if !is_outage(&e) => {
                call.succeeded();
                self.drains.applied(key, at);
            }
            Ok(Err(_)) => call.failed(),
            Err(_) => {
                call.failed();
                self.timed_out();
            }
        }
        Counters::bump(&self.counters.drain_failures);
        false
    }

    /// Sends `key`'s pending drain (as of `at`) ahead of a decision, on the
    /// decision's connection and within its timeout. An error that says Redis is out
    /// of reach is the decision's too (the drain stays pending); any other failure
    /// (an error about this call, a reply that is not the script's) is counted and
    /// gives the drain up, and the decision goes on.
    ///
    /// It is dated by its offset from the server's now alone: a probe first would
    /// cost every such decision a round trip more. So a drain that stalls in flight
    /// here (the decision then times out, and the policy answers) applies as of when
    /// it runs: the bucket is held that much longer, never less.
    pub(crate) async fn drain_ahead(
        &self,
        key: &[u8],
        at: Instant,
        params: Params,
        connection: &mut C,
    ) -> redis::RedisResult<()>
    where
        C: ConnectionLike,
    {
        let script = &self.drains.script;
        match run_drain(script, key, at, Point::Unknown, params, connection).await {
            Ok(_) => {
                Counters::bump(&self.counters.drains);
                self.drains.applied(key, at);
                Ok(())
            }
            Err(e) => {
                Counters::bump(&self.counters.drain_failures);
                if is_outage(&e) {
                    return Err(e);
                }
                // An answer about this call (not an outage) would meet every decision
                // that sent the drain again: it is given up.
                self.drains.applied(key, at);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPAN: Duration = Duration::from_secs(1);
    /// A quota whose drain leaves [`SPAN`] of debt: one unit a second, burst 2.
    const P: Params = Params {
        unit_us: 1_000_000,
        limit: 2,
    };

    #[tokio::test(start_paused = true)]
    async fn drains_of_one_key_coalesce_into_one_record_and_one_task() {
        let drains = Drains::new();
        let now = Instant::now();
        assert_eq!(drains.note(b"k", now, P, now), Noted::Spawn);
        for i in 1..1000 {
            let at = now + Duration::from_micros(i);
            assert_eq!(drains.note(b"k", at, P, now), Noted::Pending);
        }
        assert_eq!((drains.len(), drains.tasks()), (1, 1));
        // The latest point wins; applying an earlier one keeps it.
        let latest = now + Duration::from_micros(999);
        assert_eq!(drains.pending(b"k", now).map(|(at, _)| at), Some(latest));
        drains.applied(b"k", now);
        assert_eq!(drains.pending(b"k", now).map(|(at, _)| at), Some(latest));
        drains.applied(b"k", latest);
        assert_eq!(drains.pending(b"k", now).map(|(at, _)| at), None);
        // The task ends when nothing is left, and frees its slot.
        assert_eq!(drains.next_for_task(b"k", 1, true), None);
        drains.task_ended();
        assert_eq!(drains.tasks(), 0);
    }

    /// The counts per shard follow the map through every way a record goes.
    #[tokio::test(start_paused = true)]
    async fn shard_counts_follow_the_records() {
        let drains = Drains::new();
        let now = Instant::now();
        let total =
            |d: &Drains| -> usize { d.shards.iter().map(|s| s.load(Ordering::Acquire)).sum() };
        for i in 0..MAX_PENDING as u32 {
            drains.note(&i.to_be_bytes(), now, P, now);
        }
        assert_eq!(total(&drains), MAX_PENDING);
        drains.applied(&0u32.to_be_bytes(), now);
        assert_eq!(drains.pending(&0u32.to_be_bytes(), now), None);
        assert_eq!(drains.pending(&1u32.to_be_bytes(), now), Some((now, P)));
        assert_eq!(total(&drains), MAX_PENDING - 1);
        assert!(drains.orphan(now).is_some());
        // Stale: forgotten by a look-up, an orphan scan and a full map's sweep.
        tokio::time::sleep(SPAN).await;
        let later = Instant::now();
        assert_eq!(drains.pending(&1u32.to_be_bytes(), later), None);
        assert_eq!(total(&drains), MAX_PENDING - 2);
        let _ = drains.orphan(later);
        assert_eq!(total(&drains), drains.len());
        drains.note(b"new", later, P, later);
        assert_eq!((total(&drains), drains.len()), (drains.len(), drains.len()));
        assert_eq!(drains.pending(b"new", later), Some((later, P)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_keeps_the_quota_of_its_latest_point() {
        let drains = Drains::new();
        let now = Instant::now();
        let later = now + Duration::from_millis(1);
        let other = Params {
            unit_us: 1_000_000,
            limit: 10,
        };
        drains.note(b"k", now, P, now);
        assert_eq!(drains.pending(b"k", now), Some((now, P)));
        drains.note(b"k", later, other, now);
        assert_eq!(drains.pending(b"k", now), Some((later, other)));
        // An earlier point noted later changes neither.
        drains.note(b"k", now, P, now);
        assert_eq!(drains.pending(b"k", now), Some((later, other)));
        // Its own span (9 s) keeps it past the span of P (1 s).
        tokio::time::sleep(SPAN * 2).await;
        assert_eq!(drains.pending(b"k", Instant::now()), Some((later, other)));
    }

    #[tokio::test(start_paused = true)]
    async fn tasks_and_records_are_bounded() {
        let drains = Drains::new();
        let now = Instant::now();
        let mut spawned = 0;
        for i in 0..(MAX_PENDING as u32 + 100) {
            match drains.note(&i.to_be_bytes(), now, P, now) {
                Noted::Spawn => spawned += 1,
                Noted::Pending => {}
                Noted::Dropped => assert!(i as usize >= MAX_PENDING),
                Noted::Stale => panic!("fresh"),
            }
        }
        assert_eq!(spawned, MAX_TASKS);
        assert_eq!(drains.tasks(), MAX_TASKS);
        assert_eq!(drains.len(), MAX_PENDING);
        // A task sends its share, then leaves the rest to the key's next decision.
        let key = 0u32.to_be_bytes();
        for sends in 0..MAX_SENDS_PER_TASK {
            assert!(drains.next_for_task(&key, sends, true).is_some());
        }
        assert_eq!(drains.next_for_task(&key, MAX_SENDS_PER_TASK, true), None);
        drains.task_ended();
        assert_eq!(drains.tasks(), MAX_TASKS - 1);
        // Records whose debt ran out make room.
        tokio::time::sleep(SPAN).await;
        let later = Instant::now();
        assert_eq!(drains.note(b"new", later, P, later), Noted::Spawn);
        assert_eq!(drains.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_drain_whose_debt_has_run_out_is_not_recorded() {
        let drains = Drains::new();
        let now = Instant::now();
        tokio::time::sleep(SPAN).await;
        assert_eq!(drains.note(b"k", now, P, Instant::now()), Noted::Stale);
        assert_eq!(drains.len(), 0);
        // Nor kept once it ran out while pending.
        let at = Instant::now();
        assert_eq!(drains.note(b"k", at, P, at), Noted::Spawn);
        tokio::time::sleep(SPAN).await;
        assert_eq!(drains.pending(b"k", Instant::now()), None);
        assert_eq!(drains.len(), 0);
    }

    #[test]
    fn offsets_are_signed() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build();
        let Ok(rt) = rt else { panic!("runtime") };
        rt.block_on(async {
            let now = Instant::now();
            assert_eq!(offset_us(now + Duration::from_millis(3)), 3_000);
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(offset_us(now), -5_000);
            let centuries = Duration::from_secs(200 * 365 * 86_400);
            assert_eq!(offset_us(Instant::now() + centuries), MAX_OFFSET_US);
        });
    }
}
