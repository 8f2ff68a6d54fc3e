//! [`RedisStore`]: the core's [`RateStore`] with its buckets in Redis, so that the
//! core's limiter and layers run unchanged across every instance of a service.
//!
//! One decision is one `EVALSHA` on one key, bounded by the per-call timeout; a
//! circuit breaker skips the call while Redis is known to be down, and the
//! [`FailurePolicy`] answers instead. Denials are remembered locally per key until
//! they expire (the negative cache), so an exhausted key costs no round trip.
//!
//! # A throttle's drain
//!
//! [`RateStore::drain_until`] (what `RateLimiter::throttle_until` calls at the end of a
//! server's refusal) empties a GCRA bucket in Redis as of an instant: `TAT :=
//! max(TAT, until + capacity − interval)`, the core's `Gcra::drain_until`, applied by
//! one small script (`drain.lua`) on the bucket's own key, on the server's clock (the
//! instant travels as an offset from now, so the instances' clocks never matter), with
//! the key's expiry extended to cover the debt. A drain sent by a task first asks the
//! key's server for its clock and also sends the point on that clock, so a drain that
//! waits in flight (a stalled server) keeps its point; one sent ahead of a decision
//! (which cannot afford the extra round trip) applies as of when it runs if it
//! stalls: the bucket is held that much longer, never less. It never fills a bucket. The call is
//! synchronous and sits on a limiter's check path, so it never waits for Redis: it
//! records the drain for the key (one record per key, the latest point winning; at
//! most 1,024 keys, beyond which a drain is dropped and counted) and
//!
//! * sends it **ahead of the key's next decision** from this store, on the same
//!   connection and within that decision's timeout, so the request that notices the
//!   throttle's end is decided on the drained bucket (a task alone would lose the race
//!   to that request's check, and two requests would start where one may);
//! * sends it from a **task on the current Tokio runtime** (at most 8 such tasks at
//!   once over all keys), so that the other instances sharing the key get the
//!   drained bucket too, even if this one sends nothing more. A drain that finds no
//!   free task is taken by the next task that finishes its key (or sent by the key's
//!   next decision, if that comes first); with no runtime, the next decision sends it.
//!
//! The timeout and the circuit breaker apply to both; a failure is counted in
//! [`Stats::drain_failures`]. After an outage or a timeout the drain stays pending
//! (for the key's next decision, or the next task that finishes a drain), and no permit
//! is lost: a decision whose drain failed for an outage is answered by the failure
//! policy, like any other call Redis did not answer. After an answer about the call
//! itself (an error such as `NOPERM`, or a reply that is not the script's) the drain
//! is given up: every resend would meet the same answer. A drain whose point is
//! more than `capacity − interval` past is forgotten (the bucket would be full
//! anyway).
//!
//! A drain written by one instance is every instance's: from the drain point they
//! share one unit, then the rate, and none of them starts a saved burst. That is
//! intended, since the server refused the identity they share. Only the instance that
//! saw the refusal is paused until then (the core drains at the pause's end, so that a
//! quota change during the pause rescales the bucket's real debt, not the pause); the
//! others keep spending the shared bucket meanwhile, at its rate. The core drains when
//! its limiter next checks after the pause; so that the drain reaches the others even
//! if that instance never checks again, [`RateStore::schedule_drain`] (called when the
//! throttle begins) starts a sleeper that calls `drain_until` at the throttle's end.
//!
//! The window algorithms keep their counts, as the core's window algorithms do (a
//! window's count per period is its burst: there is no saved burst to empty short of
//! refusing the rest of the window). The local fallback drains its own bucket of the
//! key, if it holds one, and a [`LeasedStore`](crate::LeasedStore) forfeits the units it
//! holds.
//!
//! This example shows fail-open on a server that is not there (port 1 on loopback):
//! the store admits, and counts the failure.
//!
//! ```
//! use tower_ratelimit_core::store::RateStore;
//! use tower_ratelimit_core::Quota;
//! use tower_ratelimit_redis::RedisStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::builder(Quota::per_second(10)?).connect("redis://127.0.0.1:1/")?;
//! let decision = store.check("client-7", 1).await?;
//! assert!(decision.is_allowed()); // fail open
//! assert_eq!(store.stats().remote_errors, 1);
//! # Ok(()) }
//! ```

use crate::breaker::Breaker;
use crate::builder::RedisStoreBuilder;
use crate::drain::Drains;
use crate::error::Unavailable;
use crate::fallback::LocalFallback;
use crate::key::RedisKey;
use crate::negative_cache::{Denial, NegativeCache};
use crate::policy::FailurePolicy;
use crate::renewal::Renewal;
use crate::script::{self, GiveBack, Invoke, Mode, RemoteAlgorithm};
use crate::stats::{Counters, Stats};
use futures_util::future::BoxFuture;
use redis::aio::{ConnectionLike, ConnectionManager};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::time::Instant;
use tower_ratelimit_core::algorithm::Snapshot;
use tower_ratelimit_core::error::{CostTooLarge, StoreError};
use tower_ratelimit_core::store::{Decision, RateStore, VacatedSlot, VacatedSlots};
use tower_ratelimit_core::Quota;

/// A [`RateStore`] whose buckets live in Redis (or Valkey). Cheap to clone: clones
/// share the connection, breaker, caches and counters.
///
/// It implements `RateStore<K>` for every `K: RedisKey` (strings, byte strings,
/// integers, IP addresses, and `()` for one global limit), so it serves the core's
/// `RateLimiter::from_store` and the keyed layer alike.
///
/// The quota travels with every call (the script holds no configuration), so every
/// instance sharing a key must use the same quota and algorithm; `set_quota` changes
/// this instance only. Each bucket records the interval (GCRA) or period (windows) it
/// was written under, so after a change every bucket keeps its fill level in units, as
/// the core's stores do on `set_quota`: a GCRA debt of 3 units is 3 units at the new
/// spacing, and a window keeps the units used in it. Buckets are re-expressed lazily,
/// when a call next reads them, and that call (even a peek or a denied check) writes
/// the bucket back with the expiry its debt needs under the new quota. One difference
/// from the core: its GCRA also caps a fill level at the new burst, while a bucket in
/// Redis records no burst and keeps its whole debt, so after a burst cut (10 to 2 at
/// one a second) a spent key waits up to the old burst's worth longer (9 s where the
/// core's stores wait 1 s): fewer admissions, never more.
///
/// What happens on a failure is the [`FailurePolicy`]'s to say; every failure is
/// counted in [`RedisStore::stats`].
pub struct RedisStore<C = ConnectionManager> {
    pub(crate) inner: Arc<Inner<C>>,
}

pub(crate) struct Inner<C> {
    /// Replaced (`connect` only) when calls on it time out until the breaker opens.
    pub(crate) connection: RwLock<C>,
    /// What makes the replacement (`connect` only).
    pub(crate) renewal: Option<Renewal<C>>,
    pub(crate) algorithm: RemoteAlgorithm,
    pub(crate) script: redis::Script,
    pub(crate) prefix: Vec<u8>,
    pub(crate) quota: RwLock<Quota>,
    pub(crate) timeout: Duration,
    pub(crate) breaker: Breaker,
    pub(crate) policy: FailurePolicy,
    pub(crate) fallback: Option<LocalFallback>,
    pub(crate) negative: Option<NegativeCache>,
    pub(crate) counters: Counters,
    /// Throttle drains on their way to Redis (see `crate::drain`).
    pub(crate) drains: Drains,
    /// When the failure policy last answered, in nanoseconds after `born`, plus one
    /// (0: never): a readiness unit it granted was not taken in Redis, so it must not
    /// be given back there.
    pub(crate) policy_answered: AtomicU64,
    /// When `set_quota` last ran, in the same terms: units taken before it were priced
    /// at another quota, so nothing of them is given back (a unit of 500 ms taken
    /// before a change to 5 s was refilled long ago, yet 5 s of the new TAT would come
    /// back for it).
    pub(crate) quota_changed: AtomicU64,
    /// The slowest recent round trip, in nanoseconds, decaying by an eighth per
    /// answered call: what a client-measured age may be short of the server's by
    /// (see `give_back`).
    pub(crate) slow_round_trip: AtomicU64,
    pub(crate) born: Instant,
    /// Slots that this process's waiting requests booked in Redis and gave up, for
    /// the next requests of their keys here (see `RateStore::vacate`).
    pub(crate) vacated: VacatedSlots<Vec<u8>>,
}

impl RedisStore<ConnectionManager> {
    /// Starts configuring a store for `quota`.
    pub fn builder(quota: Quota) -> RedisStoreBuilder {
        RedisStoreBuilder::new(quota)
    }
}

impl<C> Clone for RedisStore<C> {
    fn clone(&self) -> Self {
        RedisStore {
            inner: self.inner.clone(),
        }
    }
}

impl<C> fmt::Debug for RedisStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("algorithm", &self.inner.algorithm)
            .field("prefix", &String::from_utf8_lossy(&self.inner.prefix))
            .field("quota", &self.inner.current_quota())
            .field("timeout", &self.inner.timeout)
            .field("policy", &self.inner.policy)
            .field("breaker_open", &self.inner.breaker.is_open())
            .finish_non_exhaustive()
    }
}

impl<C> RedisStore<C> {
    /// The algorithm the server runs.
    pub fn algorithm(&self) -> RemoteAlgorithm {
        self.inner.algorithm
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The failure policy.
    pub fn failure_policy(&self) -> FailurePolicy {
        self.inner.policy
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }

    /// Whether the circuit breaker is open (Redis recently failed).
    pub fn is_degraded(&self) -> bool {
        self.inner.breaker.is_open()
    }

    /// Drops this instance's cached denial of `key`, and the slots its waiting
    /// requests gave up (of every key: they were booked in a state a reset may have
    /// dropped), for use after its state in Redis was reset (a `DEL` to unblock a
    /// client): the next request asks Redis. Without it, a cached denial answers for
    /// at most [`MAX_AGE`](crate::negative_cache::MAX_AGE). Returns whether a denial
    /// was held.
    pub fn forget<K: RedisKey + ?Sized>(&self, key: &K) -> bool {
        self.inner.vacated.forget_booked_until_now();
        let key = self.inner.redis_key(key);
        self.inner
            .negative
            .as_ref()
            .is_some_and(|cache| cache.forget(&key))
    }

    /// The Redis key that holds `key`'s bucket.
    pub fn redis_key<K: RedisKey + ?Sized>(&self, key: &K) -> Vec<u8> {
        self.inner.redis_key(key)
    }

    /// Keys whose throttle drain this store has not yet seen Redis apply (see
    /// [`RateStore::drain_until`]).
    pub fn pending_drains(&self) -> usize {
        self.inner.drains.len()
    }
}

impl<C: Clone> RedisStore<C> {
    /// The connection handle the store clones for each call: the one it was built
    /// with, or the one that replaced it after calls on it timed out (a store from
    /// [`RedisStoreBuilder::connect`] only; see [`Stats::reconnects`]).
    ///
    /// The manager [`RedisStoreBuilder::connect`] builds has no response timeout of
    /// its own (the store bounds each of its calls), so a command of yours on it
    /// waits as long as the server stays silent: bound it, e.g. with
    /// `tokio::time::timeout`.
    pub fn connection(&self) -> C {
        self.inner.connection()
    }
}

impl<C: Clone> Inner<C> {
    /// The connection for a call.
    pub(crate) fn connection(&self) -> C {
        // A handle is whole whatever a panicking writer left behind.
        self.connection
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A call timed out (reported to the breaker already): if the breaker is open
    /// now, the connection may be one that stopped answering without an error, which
    /// its manager never replaces; a fresh one serves the next calls, and the old one
    /// closes with the last call still holding it.
    pub(crate) fn timed_out(&self) {
        if !self.breaker.is_open() {
            return;
        }
        if let Some(fresh) = self.renewal.as_ref().and_then(Renewal::renew) {
            // The old handle is dropped after the lock is released: calls reading the
            // connection wait for the swap, not for the drop.
            let old = std::mem::replace(
                &mut *self.connection.write().unwrap_or_else(|p| p.into_inner()),
                fresh,
            );
            drop(old);
            Counters::bump(&self.counters.reconnects);
        }
    }
}

impl<C> Inner<C> {
    pub(crate) fn current_quota(&self) -> Quota {
        // A Quota is Copy and always valid, so a poisoned lock still holds a good one.
        *self.quota.read().unwrap_or_else(|p| p.into_inner())
    }

    /// What `reserve_whole` may give back of `taken` units taken at `taken_at`: the
    /// units, their age and the slack, or nothing when the failure policy (not Redis)
    /// may have granted them, or when the quota changed since they were taken. Called
    /// after the quota of the call was read, so a change that call sees is seen here.
    fn give_back(&self, taken: u64, taken_at: Instant) -> GiveBack {
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let slack = self.timeout.saturating_mul(2);
        let policy_answered_since = self.marked_since(&self.policy_answered, slack, taken_at);
        let quota_changed_since = self.marked_since(&self.quota_changed, Duration::ZERO, taken_at);
        if taken == 0 || policy_answered_since || quota_changed_since {
            return GiveBack::default();
        }
        // GCRA gives back time: the age measured here is short of the server's by the
        // check's reply and this call's delivery, under two of the slowest recent
        // round trips (the timeout bounds each). The windows only need to know which
        // window the units were taken in, and keep the timeout's wider margin.
        let slack = match self.algorithm {
            RemoteAlgorithm::Gcra => {
                let round_trip = Duration::from_nanos(self.slow_round_trip.load(Ordering::Relaxed));
                round_trip.saturating_mul(2).min(slack)
            }
            RemoteAlgorithm::FixedWindow | RemoteAlgorithm::SlidingWindow => slack,
        };
        GiveBack {
            taken,
            age_us: micros(Instant::now().saturating_duration_since(taken_at)),
            slack_us: micros(slack),
        }
    }

    /// See [`RateStore::vacate`] on [`RedisStore`].
    fn vacate(&self, key: Vec<u8>, vacated: VacatedSlot) {
        let slack = self.timeout.saturating_mul(2);
        if !self.marked_since(&self.policy_answered, slack, vacated.booked_at) {
            self.vacated.vacate(&key, vacated);
        }
    }

    /// A reservation of `cost` units of `key` in a slot this process booked and gave
    /// up, if one fits. Redis counted its units at its instant, and keeps every key
    /// until its bucket is full again, past its bookings, so a later booking there
    /// could only be later than it.
    fn take_vacated(&self, key: &Vec<u8>, cost: u64, max_wait: Duration) -> Option<Decision> {
        let quota = self.current_quota();
        let at = self.vacated.take(key, cost, max_wait, || (quota, 0))?;
        let wait = at.saturating_duration_since(Instant::now());
        Some(Decision::Allowed {
            // Nothing was asked of Redis: the bucket as the slot leaves it, empty
            // until the slot, and full again at the earliest a whole burst after it.
            snapshot: Snapshot {
                limit: self.algorithm.max_cost(&quota),
                remaining: 0,
                reset: wait.saturating_add(
                    quota
                        .emission_interval()
                        .saturating_mul(u32::try_from(quota.burst()).unwrap_or(u32::MAX)),
                ),
            },
            wait,
        })
    }

    /// Keeps the slowest recent round trip: the new one if slower, else the old one
    /// less an eighth, so that one slow call stops counting after some dozens.
    fn note_round_trip(&self, round_trip: Duration) {
        let nanos = u64::try_from(round_trip.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .slow_round_trip
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                let decayed = old - old / 8;
                (decayed != old || nanos > old).then_some(nanos.max(decayed))
            });
    }

    /// The instant a mark holds (nanoseconds after `born`, plus one) plus `extra`:
    /// `None` when it was never set, `Some(None)` when the instant overflows.
    fn since_born(&self, mark: &AtomicU64, extra: Duration) -> Option<Option<Instant>> {
        let nanos = mark.load(Ordering::Relaxed).checked_sub(1)?;
        Some(
            self.born
                .checked_add(Duration::from_nanos(nanos))
                .and_then(|at| at.checked_add(extra)),
        )
    }

    /// Whether `mark` was set at or after `at`, less `extra` (or overflows).
    fn marked_since(&self, mark: &AtomicU64, extra: Duration, at: Instant) -> bool {
        self.since_born(mark, extra)
            .is_some_and(|until| until.is_none_or(|until| until >= at))
    }

    /// Sets `mark` to now, unless it already holds a later instant.
    fn mark_now(&self, mark: &AtomicU64) {
        let since_born = Instant::now().saturating_duration_since(self.born);
        mark.fetch_max(
            u64::try_from(since_born.as_nanos())
                .unwrap_or(u64::MAX)
                .saturating_add(1),
            Ordering::Relaxed,
        );
    }

    fn redis_key<K: RedisKey + ?Sized>(&self, key: &K) -> Vec<u8> {
        let mut name = Vec::with_capacity(self.prefix.len() + 16);
        name.extend_from_slice(&self.prefix);
        key.write_key(&mut name);
        name
    }
}

impl<C> Inner<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn decide(&self, key: Vec<u8>, ask: Ask) -> Result<Decision, StoreError> {
        let Ask {
            mode,
            cost,
            max_wait,
            backdate,
            readiness,
        } = ask;
        let quota = self.current_quota();
        let params = self.algorithm.params(&quota);
        let give_back = readiness.map_or_else(GiveBack::default, |(taken, taken_at)| {
            self.give_back(taken, taken_at)
        });
        if cost > params.limit {
            return Err(CostTooLarge {
                cost,
                max: params.limit,
            }
            .into());
        }
        if let Some(denied) = self.cached_denial(&key, mode, cost, max_wait, params.limit) {
            return Ok(denied);
        }
        let Some(call) = self.breaker.try_call() else {
            Counters::bump(&self.counters.short_circuited);
            return self.on_failure(&key, mode, cost, max_wait, Unavailable::CircuitOpen);
        };
        let sent = Instant::now();
        // A throttle's drain this store has not yet seen applied goes first, on the
        // same connection: the decision must see the drained bucket.
        let drain_at = match self.algorithm {
            RemoteAlgorithm::Gcra => self.drains.pending(&key, sent),
            RemoteAlgorithm::FixedWindow | RemoteAlgorithm::SlidingWindow => None,
        };
        let mut drain_answered = drain_at.is_none();
        let generation = self.negative.as_ref().map(NegativeCache::generation);
        let request = script::Request {
            mode,
            params,
            cost,
            max_wait_us: u64::try_from(max_wait.as_micros()).unwrap_or(u64::MAX),
            backdate_us: u64::try_from(backdate.as_micros()).unwrap_or(u64::MAX),
            give_back,
        };
        let cmd = script::command(
            self.algorithm,
            Invoke::Hash(self.script.get_hash()),
            &key,
            request,
        );
        let with_source = || script::command(self.algorithm, Invoke::Source, &key, request);
        let mut connection = self.connection();
        let reply = tokio::time::timeout(self.timeout, async {
            if let Some((at, drain_params)) = drain_at {
                let drained = self
                    .drain_ahead(&key, at, drain_params, &mut connection)
                    .await;
                drain_answered = true;
                drained?;
            }
            script::run(&cmd, with_source, &mut connection).await
        })
        .await;
        if !drain_answered {
            // Timed out before the drain was answered: it stays pending.
            Counters::bump(&self.counters.drain_failures);
        }
        let cause = match reply {
            Ok(Ok(reply)) => match script::decode(self.algorithm, &reply, request) {
                Some(decision) => {
                    call.succeeded();
                    self.note_round_trip(sent.elapsed());
                    Counters::bump(&self.counters.remote_decisions);
                    if let (
                        Decision::Denied {
                            retry_after,
                            snapshot,
                        },
                        Some(cache),
                        Some(generation),
                    ) = (decision, &self.negative, generation)
                    {
                        // Measured from the send, not the answer, so the cached
                        // denial never outlasts the server's.
                        let denial = Denial {
                            cost,
                            until: sent + retry_after,
                            full_at: sent + snapshot.reset,
                        };
                        cache.deny(&key, denial, generation);
                    }
                    return Ok(decision);
                }
                None => Unavailable::BadReply,
            },
            Ok(Err(e)) => Unavailable::Redis(e),
            Err(_) => Unavailable::Timeout(self.timeout),
        };
        if cause.is_outage() {
            call.failed();
            if matches!(cause, Unavailable::Timeout(_)) {
                self.timed_out();
            }
        } else {
            // The server answered: it is up, whatever this one call met.
            call.succeeded();
        }
        Counters::bump(&self.counters.remote_errors);
        self.on_failure(&key, mode, cost, max_wait, cause)
    }

    fn cached_denial(
        &self,
        key: &[u8],
        mode: Mode,
        cost: u64,
        max_wait: Duration,
        limit: u64,
    ) -> Option<Decision> {
        let cache = self.negative.as_ref()?;
        if mode == Mode::Peek || cost == 0 {
            return None;
        }
        let per_unit = self
            .algorithm
            .per_unit(self.algorithm.params(&self.current_quota()));
        let (retry_after, reset) = cache.denied(key, cost, per_unit, Instant::now())?;
        if mode == Mode::Reserve && retry_after <= max_wait {
            return None;
        }
        Counters::bump(&self.counters.cached_denials);
        Some(Decision::Denied {
            retry_after,
            snapshot: Snapshot {
                limit,
                remaining: 0,
                reset,
            },
        })
    }

    fn on_failure(
        &self,
        key: &[u8],
        mode: Mode,
        cost: u64,
        max_wait: Duration,
        cause: Unavailable,
    ) -> Result<Decision, StoreError> {
        // The quota now, not the one read when the call began: a call that failed
        // after a quota change would otherwise hand the fallback the old one, which
        // rescales every local key back and forth.
        let quota = &self.current_quota();
        Counters::bump(&self.counters.policy_decisions);
        self.mark_now(&self.policy_answered);
        match (&self.policy, &self.fallback) {
            (FailurePolicy::LocalFallback { .. }, Some(local)) => {
                let decided = match mode {
                    Mode::Peek => local.peek(key, quota, cost),
                    Mode::Check => local.check(key, quota, cost),
                    Mode::Reserve => local.reserve(key, quota, cost, max_wait),
                };
                match decided {
                    // The cost fits the shared quota (checked before the call) but not
                    // this instance's share of its burst: Redis being down is why it
                    // cannot pass, which is not the caller's error.
                    Err(StoreError::CostTooLarge(_)) => Err(StoreError::Unavailable(Box::new(
                        Unavailable::OverLocalBurst {
                            local_burst: local.local_quota(quota).burst(),
                            cause: Box::new(cause),
                        },
                    ))),
                    decided => decided,
                }
            }
            (FailurePolicy::FailClosed, _) => Err(StoreError::Unavailable(Box::new(cause))),
            _ => {
                let limit = self.algorithm.max_cost(quota);
                Ok(Decision::Allowed {
                    snapshot: Snapshot {
                        limit,
                        remaining: limit.saturating_sub(cost),
                        reset: Duration::ZERO,
                    },
                    wait: Duration::ZERO,
                })
            }
        }
    }
}

/// What one call asks the script.
struct Ask {
    mode: Mode,
    cost: u64,
    max_wait: Duration,
    /// GCRA only: decide as of this long ago (see `RateStore::check_since`).
    backdate: Duration,
    /// Reserve only: the units a readiness check took, and when, to give back what
    /// they still hold first (see `RateStore::reserve_whole`).
    readiness: Option<(u64, Instant)>,
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// The decision on `key`, as a future that owns what it needs.
    fn deciding<K: RedisKey + ?Sized>(
        &self,
        key: &K,
        ask: Ask,
    ) -> BoxFuture<'static, Result<Decision, StoreError>> {
        let inner = self.inner.clone();
        let key = inner.redis_key(key);
        Box::pin(async move { inner.decide(key, ask).await })
    }
}

impl<C, K> RateStore<K> for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
    K: RedisKey + ?Sized,
{
    type Future = BoxFuture<'static, Result<Decision, StoreError>>;

    fn check(&self, key: &K, cost: u64) -> Self::Future {
        self.deciding(
            key,
            Ask {
                mode: Mode::Check,
                cost,
                max_wait: Duration::ZERO,
                backdate: Duration::ZERO,
                readiness: None,
            },
        )
    }

    fn peek(&self, key: &K, cost: u64) -> Self::Future {
        self.deciding(
            key,
            Ask {
                mode: Mode::Peek,
                cost,
                max_wait: Duration::ZERO,
                backdate: Duration::ZERO,
                readiness: None,
            },
        )
    }

    /// Books in Redis, unless a slot a request of this process booked for `key` and
    /// gave up fits ([`RateStore::vacate`]): that one starts without a call.
    fn reserve(&self, key: &K, cost: u64, max_wait: Duration) -> Self::Future {
        if self.inner.vacated.holds_any() {
            if let Some(decision) =
                self.inner
                    .take_vacated(&self.inner.redis_key(key), cost, max_wait)
            {
                return Box::pin(std::future::ready(Ok(decision)));
            }
        }
        self.deciding(
            key,
            Ask {
                mode: Mode::Reserve,
                cost,
                max_wait,
                backdate: Duration::ZERO,
                readiness: None,
            },
        )
    }

    /// GCRA decides as of `since` (at most one emission interval ago): a waiter's head
    /// that woke late on tokio's millisecond timer, plus a round trip, claims the slot
    /// that fell due meanwhile instead of losing it, which at 1,000/s with burst 1
    /// would lose more than half the rate. One interval is the most that is safe across
    /// processes: a waiter elsewhere may have taken any slot before that. The window
    /// scripts decide now.
    fn check_since(&self, key: &K, cost: u64, since: tokio::time::Instant) -> Self::Future {
        let backdate = match self.inner.algorithm {
            RemoteAlgorithm::Gcra => tokio::time::Instant::now()
                .saturating_duration_since(since)
                .min(self.inner.current_quota().emission_interval()),
            RemoteAlgorithm::FixedWindow | RemoteAlgorithm::SlidingWindow => Duration::ZERO,
        };
        self.deciding(
            key,
            Ask {
                mode: Mode::Check,
                cost,
                max_wait: Duration::ZERO,
                backdate,
                readiness: None,
            },
        )
    }

    /// Gives back what the `taken` units still hold and books the whole `cost`, in one
    /// script call, as the core's in-memory stores do. GCRA's units are time: a unit
    /// taken at `taken_at` ended `taken_at + interval` at the earliest, so only
    /// `taken × interval - age` of them can still be in the TAT, and that much (less
    /// the slack below) comes off it, never below now; a request held through a pause
    /// pays again for what the pause refilled, and one called at once pays its cost
    /// and the slack (below). Nothing comes off while the TAT's latest slot is still
    /// ahead of the server's clock: a booking sleeping there (this instance's or
    /// another's) may owe its wait to these units (see [`crate::script`]). The window scripts give the units back from the window they were
    /// taken in: every unit of the request counts in the window where it starts
    /// (booked apart, the rest could fall in a later window, which then admitted
    /// `count + 1`), and a request whose readiness filled a window does not push the
    /// next request out of it.
    ///
    /// The age is measured here and is short of the truth by up to two calls (the
    /// check's reply, this call's delivery), each bounded by the timeout. GCRA gives
    /// back twice the slowest recent round trip less (at most twice the timeout;
    /// `taken` is also capped at the burst, the most a check can take), so a request
    /// pays that much time beyond its cost: tens of microseconds on a loopback. A call
    /// delayed past that (a sudden spike) gives back up to the delay's worth too much,
    /// never more than the timeout's: the price of not charging a whole unit more to
    /// every weighted request at rates whose interval is under twice the timeout. The
    /// windows' slack is twice the timeout: they give the units back only when the
    /// span of the slack before the instant they date them at lies
    /// in one window, the one that still holds them (a fixed window's stored window;
    /// a sliding counter's current count, or its previous count once the next window
    /// began). Nothing is given back when the failure policy answered a call within
    /// the slack before `taken_at` or since (a unit it granted was never taken in
    /// Redis), nor when this store's quota changed at or after `taken_at` (the units
    /// were priced at another interval or count): the units then stay spent where they
    /// were taken, and the request costs up to `taken` units more, never admits more.
    /// The one case the slack does not cover is a server that stalls for longer than
    /// the timeout: the call, answered here by the failure policy, may still run later
    /// (and date the units in the next window, or find less of them in the TAT than
    /// was given back).
    fn reserve_whole(
        &self,
        key: &K,
        taken: u64,
        taken_at: tokio::time::Instant,
        cost: u64,
        max_wait: Duration,
    ) -> Self::Future {
        self.deciding(
            key,
            Ask {
                mode: Mode::Reserve,
                cost,
                max_wait,
                backdate: Duration::ZERO,
                readiness: Some((taken, taken_at)),
            },
        )
    }

    fn quota(&self, _key: &K) -> Quota {
        self.inner.current_quota()
    }

    /// Keeps a slot a request of this process booked in Redis and gave up, for the
    /// key's next reservation here; not when the failure policy answered within the
    /// slack before its booking or since (its units may never have been taken in
    /// Redis).
    fn vacate(&self, key: &K, vacated: VacatedSlot) {
        self.inner.vacate(self.inner.redis_key(key), vacated);
    }

    fn max_cost(&self, _key: &K) -> u64 {
        self.inner.algorithm.max_cost(&self.inner.current_quota())
    }

    /// Empties `key`'s bucket in Redis as of `until` (GCRA: one unit at `until`, the
    /// next an interval later, as the core's `Gcra::drain_until`), for every instance
    /// sharing the key, without waiting for Redis. See the [module docs](self) for
    /// how it gets there; the window algorithms keep their counts, as the core's do,
    /// and the local fallback drains its own bucket of `key` if it holds one.
    fn drain_until(&self, key: &K, until: tokio::time::Instant) {
        self.inner.drain_until(self.inner.redis_key(key), until);
    }

    /// A throttle of `key` began (GCRA): at `until` a sleeper on the current Tokio
    /// runtime calls [`drain_until`](RateStore::drain_until), so that the other
    /// instances sharing the key get the drained bucket at the throttle's end even if
    /// this one never checks again. Nothing is sent now: the drain is priced at the
    /// end, by the quota then in force. One sleeper per key, at most 1,024 keys (a
    /// throttle beyond that is counted in [`Stats::drains_dropped`] and drains at the
    /// limiter's next check); with no runtime, nothing is scheduled. An `until` already
    /// past drains at once.
    fn schedule_drain(&self, key: &K, until: tokio::time::Instant) {
        self.inner.schedule_drain(self.inner.redis_key(key), until);
    }

    fn set_quota(&self, quota: Quota) {
        // Marked before the quota is written: a call that reads the new quota sees the
        // mark too, and one that reads the old quota and the new mark gives nothing back.
        self.inner.mark_now(&self.inner.quota_changed);
        *self.inner.quota.write().unwrap_or_else(|p| p.into_inner()) = quota;
        // Denials measured under the old quota may be too long under the new one.
        if let Some(cache) = &self.inner.negative {
            cache.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connecting_outside_a_runtime_is_an_error_not_a_panic() {
        let Ok(quota) = Quota::per_second(1) else {
            panic!("valid quota")
        };
        let err = RedisStore::builder(quota)
            .connect("redis://127.0.0.1:1/")
            .expect_err("no runtime");
        assert!(err.to_string().contains("Tokio runtime"), "{err}");
    }

    #[test]
    fn a_bad_url_is_an_error() {
        let Ok(quota) = Quota::per_second(1) else {
            panic!("valid quota")
        };
        let rt = tokio::runtime::Builder::new_current_thread().build();
        let Ok(rt) = rt else { panic!("runtime") };
        let _guard = rt.enter();
        assert!(RedisStore::builder(quota).connect("not a url").is_err());
    }
}
