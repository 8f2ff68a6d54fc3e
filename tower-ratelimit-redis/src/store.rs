//! [`RedisStore`]: the core's [`RateStore`] with its buckets in Redis, so that the
//! core's limiter and layers run unchanged across every instance of a service.
//!
//! One decision is one `EVALSHA` on one key, bounded by the per-call timeout; a
//! circuit breaker skips the call while Redis is known to be down, and the
//! [`FailurePolicy`] answers instead. Denials are remembered locally per key until
//! they expire (the negative cache), so an exhausted key costs no round trip.
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
use crate::error::Unavailable;
use crate::fallback::LocalFallback;
use crate::key::RedisKey;
use crate::negative_cache::{Denial, NegativeCache};
use crate::policy::FailurePolicy;
use crate::script::{self, GiveBack, Mode, RemoteAlgorithm};
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
use tower_ratelimit_core::store::{Decision, RateStore};
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
/// when a call next reads them.
///
/// What happens on a failure is the [`FailurePolicy`]'s to say; every failure is
/// counted in [`RedisStore::stats`].
pub struct RedisStore<C = ConnectionManager> {
    pub(crate) inner: Arc<Inner<C>>,
}

pub(crate) struct Inner<C> {
    pub(crate) connection: C,
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
    /// When the failure policy last answered, in nanoseconds after `born`, plus one
    /// (0: never): a readiness unit it granted was not taken in Redis, so it must not
    /// be given back there.
    pub(crate) policy_answered: AtomicU64,
    pub(crate) born: Instant,
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

    /// Drops this instance's cached denial of `key`, for use after its state in
    /// Redis was reset (a `DEL` to unblock a client): the next request asks Redis.
    /// Without it, a cached denial answers for at most
    /// [`MAX_AGE`](crate::negative_cache::MAX_AGE). Returns whether one was held.
    pub fn forget<K: RedisKey + ?Sized>(&self, key: &K) -> bool {
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

    /// The connection handle the store clones for each call.
    pub fn connection(&self) -> &C {
        &self.inner.connection
    }
}

impl<C> Inner<C> {
    fn current_quota(&self) -> Quota {
        // A Quota is Copy and always valid, so a poisoned lock still holds a good one.
        *self.quota.read().unwrap_or_else(|p| p.into_inner())
    }

    /// What the window scripts may give back of `taken` units taken at `taken_at`
    /// (see `RateStore::reserve_whole`).
    fn give_back(&self, taken: u64, taken_at: Instant) -> GiveBack {
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let slack = self.timeout.saturating_mul(2);
        let answered = self.policy_answered.load(Ordering::Relaxed);
        let policy_answered_since = answered > 0
            && self
                .born
                .checked_add(Duration::from_nanos(answered - 1))
                .and_then(|at| at.checked_add(slack))
                .is_none_or(|until| until >= taken_at);
        if taken == 0 || policy_answered_since {
            return GiveBack::default();
        }
        GiveBack {
            taken,
            age_us: micros(Instant::now().saturating_duration_since(taken_at)),
            slack_us: micros(slack),
        }
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
            give_back,
        } = ask;
        let quota = self.current_quota();
        let params = self.algorithm.params(&quota);
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
            return self.on_failure(&key, &quota, mode, cost, max_wait, Unavailable::CircuitOpen);
        };
        let sent = Instant::now();
        let generation = self.negative.as_ref().map(NegativeCache::generation);
        let request = script::Request {
            mode,
            params,
            cost,
            max_wait_us: u64::try_from(max_wait.as_micros()).unwrap_or(u64::MAX),
            backdate_us: u64::try_from(backdate.as_micros()).unwrap_or(u64::MAX),
            give_back,
        };
        let cmd = script::command(self.algorithm, self.script.get_hash(), &key, request);
        let mut connection = self.connection.clone();
        let reply = tokio::time::timeout(
            self.timeout,
            script::run(&self.script, &cmd, &mut connection),
        )
        .await;
        let cause = match reply {
            Ok(Ok(reply)) => match script::decode(self.algorithm, &reply, request) {
                Some(decision) => {
                    call.succeeded();
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
        } else {
            // The server answered: it is up, whatever this one call met.
            call.succeeded();
        }
        Counters::bump(&self.counters.remote_errors);
        self.on_failure(&key, &quota, mode, cost, max_wait, cause)
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
        quota: &Quota,
        mode: Mode,
        cost: u64,
        max_wait: Duration,
        cause: Unavailable,
    ) -> Result<Decision, StoreError> {
        Counters::bump(&self.counters.policy_decisions);
        let since_born = Instant::now().saturating_duration_since(self.born);
        self.policy_answered.store(
            u64::try_from(since_born.as_nanos())
                .unwrap_or(u64::MAX)
                .saturating_add(1),
            Ordering::Relaxed,
        );
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
                    Err(StoreError::CostTooLarge(_)) => {
                        Err(StoreError::Unavailable(Box::new(cause)))
                    }
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
    /// Windows, reserve only: units to give back first (see `RateStore::reserve_whole`).
    give_back: GiveBack,
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
                give_back: GiveBack::default(),
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
                give_back: GiveBack::default(),
            },
        )
    }

    fn reserve(&self, key: &K, cost: u64, max_wait: Duration) -> Self::Future {
        self.deciding(
            key,
            Ask {
                mode: Mode::Reserve,
                cost,
                max_wait,
                backdate: Duration::ZERO,
                give_back: GiveBack::default(),
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
                give_back: GiveBack::default(),
            },
        )
    }

    /// GCRA books the `cost - taken` units left, plus those of the `taken` units that
    /// time has refilled since `taken_at` (whole emission intervals passed): a request
    /// held through a pause pays again for what the pause refilled, as with the core's
    /// in-memory GCRA, and a request called at once books exactly the rest (units are
    /// time). The script books whole units, so a request held for part of an interval
    /// is short by less than one unit's time. The
    /// window scripts give the `taken` units back as of `taken_at` and book the whole
    /// `cost`, in the same call, as the core's in-memory stores do: every unit of the
    /// request counts in the window where it starts (booked apart, the rest could fall
    /// in a later window, which then admitted `count + 1`), and a request whose
    /// readiness filled a window does not push the next request out of it.
    ///
    /// The script dates the units on the server's clock at `now - age`, the age
    /// measured here; that is short of the truth by up to two calls (the check's
    /// reply, this call's delivery), so the units are given back only when the span of
    /// twice the timeout before that instant lies in one window, the one that still
    /// holds them (a fixed window's stored window; a sliding counter's current count,
    /// or its previous count once the next window began). Otherwise, or when the
    /// failure policy answered a call within that span or since (a unit it granted
    /// was never taken in Redis), they stay spent where they were taken: the request
    /// costs one unit more, never admits more. The one case the slack does not cover
    /// is a server that stalls for longer than the timeout across a window boundary:
    /// the call, answered here by the failure policy, may still run later and date the
    /// units in the next window.
    fn reserve_whole(
        &self,
        key: &K,
        taken: u64,
        taken_at: tokio::time::Instant,
        cost: u64,
        max_wait: Duration,
    ) -> Self::Future {
        let (cost, give_back) = match self.inner.algorithm {
            RemoteAlgorithm::Gcra => {
                let interval = self.inner.current_quota().emission_interval();
                let refilled = tokio::time::Instant::now()
                    .saturating_duration_since(taken_at)
                    .as_nanos()
                    / interval.as_nanos().max(1);
                let refilled = u64::try_from(refilled).unwrap_or(u64::MAX).min(taken);
                (cost.saturating_sub(taken - refilled), GiveBack::default())
            }
            RemoteAlgorithm::FixedWindow | RemoteAlgorithm::SlidingWindow => {
                (cost, self.inner.give_back(taken, taken_at))
            }
        };
        self.deciding(
            key,
            Ask {
                mode: Mode::Reserve,
                cost,
                max_wait,
                backdate: Duration::ZERO,
                give_back,
            },
        )
    }

    fn quota(&self, _key: &K) -> Quota {
        self.inner.current_quota()
    }

    fn max_cost(&self, _key: &K) -> u64 {
        self.inner.algorithm.max_cost(&self.inner.current_quota())
    }

    fn set_quota(&self, quota: Quota) {
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
