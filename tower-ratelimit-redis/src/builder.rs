//! Configuring a [`RedisStore`]: algorithm, key prefix, timeout, breaker, failure
//! policy, negative cache, and the connection.
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_core::Quota;
//! use tower_ratelimit_redis::{FailurePolicy, RedisStore, RemoteAlgorithm};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::builder(Quota::per_second(100)?)
//!     .algorithm(RemoteAlgorithm::Gcra)
//!     .prefix("api:per-client:")
//!     .timeout(Duration::from_millis(20))
//!     .failure_policy(FailurePolicy::local(0.25))
//!     // Connecting is lazy: nothing is sent until the first decision.
//!     .connect("redis://127.0.0.1:6379/")?;
//! assert_eq!(store.timeout(), Duration::from_millis(20));
//! # Ok(()) }
//! ```

use crate::breaker::{Breaker, BreakerConfig};
use crate::drain::Drains;
use crate::fallback::LocalFallback;
use crate::negative_cache::NegativeCache;
use crate::policy::FailurePolicy;
use crate::renewal::{MakeConnection, Renewal};
use crate::script::RemoteAlgorithm;
use crate::store::{Inner, RedisStore};
use futures_util::future::BoxFuture;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::IntoConnectionInfo;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tower_ratelimit_core::Quota;

/// The default per-call timeout: long enough for a loaded server on the same
/// network, short enough to sit on a request path.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);

/// The least time a connection attempt gets (the store's timeout if longer): a
/// call never waits for it, so it only needs to outlast a slow but live setup.
const CONNECTION_TIMEOUT_FLOOR: Duration = Duration::from_secs(1);

/// The default bound on the negative cache.
pub const DEFAULT_NEGATIVE_CACHE_KEYS: usize = 10_000;

/// Builds a [`RedisStore`]; start from [`RedisStore::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    quota: Quota,
    algorithm: RemoteAlgorithm,
    prefix: Vec<u8>,
    timeout: Duration,
    breaker: BreakerConfig,
    policy: FailurePolicy,
    negative_cache_keys: usize,
}

impl RedisStoreBuilder {
    pub(crate) fn new(quota: Quota) -> Self {
        RedisStoreBuilder {
            quota,
            algorithm: RemoteAlgorithm::Gcra,
            prefix: b"tower-ratelimit:".to_vec(),
            timeout: DEFAULT_TIMEOUT,
            breaker: BreakerConfig::default(),
            policy: FailurePolicy::FailOpen,
            negative_cache_keys: DEFAULT_NEGATIVE_CACHE_KEYS,
        }
    }

    /// The algorithm the server runs (default GCRA).
    pub fn algorithm(mut self, algorithm: RemoteAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// The bytes before every key (default `tower-ratelimit:`). The unit key `()`
    /// names the prefix itself, so give each global limit its own prefix. Keys are
    /// appended as they are, so no limit's prefix may start with another's: under
    /// `api:` and `api:v2:`, the first's key `v2:7` and the second's key `7` are one
    /// bucket, `api:v2:7`.
    pub fn prefix(mut self, prefix: impl AsRef<[u8]>) -> Self {
        self.prefix = prefix.as_ref().to_vec();
        self
    }

    /// The most one decision may wait for Redis (default 50 ms) before the failure
    /// policy answers instead. A zero timeout is read as 1 ms.
    ///
    /// It also bounds how far a weighted wait-mode request's readiness unit may be
    /// misdated, which is paid for in overcharge (see [`crate::script`]): on the
    /// window algorithms a unit taken within twice the timeout of a window's start is
    /// left spent rather than given back, so keep the timeout well below the period;
    /// on GCRA twice the slowest recent round trip less of the unit's time is given
    /// back (at most twice the timeout; before the first answer, exactly that), so a
    /// weighted request called at once pays that much time beyond its cost.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// When the circuit breaker opens, and for how long (default: 3 failures in a
    /// row, 500 ms).
    pub fn breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = config;
        self
    }

    /// The answer while Redis cannot decide (default [`FailurePolicy::FailOpen`]).
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The most keys the local "denied until" cache holds (default 10 000; 0 turns
    /// it off).
    pub fn negative_cache(mut self, max_keys: usize) -> Self {
        self.negative_cache_keys = max_keys;
        self
    }

    /// A store on a [`ConnectionManager`] for `url` (`redis://host:port/db`), which
    /// reconnects in the background. Lazy: the connection is made by the first
    /// decision, so a store can be built while Redis is down.
    ///
    /// The manager reconnects when its connection fails, not when it goes silent (a
    /// failover to another host, a proxy whose backend died), so when calls time out
    /// until the circuit breaker opens, the store replaces the manager with a fresh
    /// one, at most once per the breaker's `open_for` and never while the last
    /// replacement is still connecting (for up to four times the larger of a second
    /// and the timeout), and the breaker's next probe connects anew (see
    /// [`Stats::reconnects`](crate::Stats::reconnects)).
    ///
    /// # Errors
    /// An invalid URL, or no Tokio runtime to run the manager on.
    pub fn connect<U: IntoConnectionInfo>(
        self,
        url: U,
    ) -> Result<RedisStore<ConnectionManager>, redis::RedisError> {
        // The manager spawns its reconnection task, which would panic outside Tokio.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "RedisStoreBuilder::connect must be called within a Tokio runtime",
            )));
        }
        // Nagle's algorithm would hold back a command written while an earlier one
        // on the same (multiplexed) socket is still unacknowledged.
        let info = url.into_connection_info()?;
        let tcp = info.tcp_settings().clone().set_nodelay(true);
        let client = redis::Client::open(info.set_tcp_settings(tcp))?;
        // The store bounds each call itself: a response timeout of the manager's own
        // (500 ms by default) would cut a longer store timeout short, as an I/O
        // error. The manager only needs to give up on a dead connection attempt, and
        // to retry soon so that recovery is quick; but not sooner than a live one can
        // finish (a TLS handshake across regions takes some round trips of 80 ms):
        // an attempt cut off every time is a store that never connects.
        let connection_timeout = self.timeout.max(CONNECTION_TIMEOUT_FLOOR);
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(connection_timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(200));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?;
        // Three attempts and their backoff; no replacement is made while the last one
        // warms up, and the renewal also stops waiting for it after this long, since
        // its task may not get to run out its own timeout.
        let warm_for = connection_timeout.saturating_mul(4);
        // The manager reconnects on an error, never on silence (see `crate::renewal`).
        let make: MakeConnection<ConnectionManager> = Box::new(move || {
            let fresh =
                ConnectionManager::new_lazy_with_config(client.clone(), config.clone()).ok()?;
            // A lazy manager connects only while a call polls it, each for at most the
            // timeout, and the next replacement would start over: connecting in the
            // background, the next probe finds the connection made however many
            // timeouts it took. Bounded by three attempts and their backoff, since
            // the manager has no response timeout.
            let mut warming = fresh.clone();
            let warm_up: BoxFuture<'static, ()> = Box::pin(async move {
                let ping = redis::cmd("PING");
                let _ = tokio::time::timeout(warm_for, ping.query_async::<()>(&mut warming)).await;
            });
            Some((fresh, warm_up))
        });
        let gap = self.breaker.open_for.max(self.timeout);
        let renewal = Renewal::new(make, gap, warm_for);
        Ok(self.build_renewing(manager, Some(renewal)))
    }

    /// A store on any async connection: a `ConnectionManager` you configured, a
    /// cluster connection, or a `MultiplexedConnection`. The connection is cloned for
    /// every call, so it should be a cheap handle.
    ///
    /// The store recovers from an outage only if the connection does: a
    /// `ConnectionManager` (what [`connect`](Self::connect) builds) and the cluster
    /// client reconnect by themselves, but a bare `MultiplexedConnection` stays broken
    /// once the server restarts, and every call then goes to the failure policy for as
    /// long as the process lives. Use one only where something else replaces it.
    /// Nor does a connection given here get replaced when it stops answering without
    /// an error (a host that vanished, a proxy whose backend died): the store from
    /// [`connect`](Self::connect) replaces its manager then, since the manager
    /// reconnects only on an error (see [`Stats::reconnects`](crate::Stats::reconnects)).
    pub fn build<C>(self, connection: C) -> RedisStore<C>
    where
        C: ConnectionLike + Clone + Send + Sync + 'static,
    {
        self.build_renewing(connection, None)
    }

    /// `build`, with what replaces the connection when it stops answering.
    fn build_renewing<C>(self, connection: C, renewal: Option<Renewal<C>>) -> RedisStore<C>
    where
        C: ConnectionLike + Clone + Send + Sync + 'static,
    {
        let fallback = match self.policy {
            FailurePolicy::LocalFallback { share, max_keys } => {
                Some(LocalFallback::new(share, max_keys))
            }
            _ => None,
        };
        RedisStore {
            inner: Arc::new(Inner {
                connection: RwLock::new(connection),
                renewal,
                algorithm: self.algorithm,
                script: redis::Script::new(self.algorithm.source()),
                prefix: self.prefix,
                quota: RwLock::new(self.quota),
                timeout: self.timeout,
                breaker: Breaker::new(self.breaker),
                policy: self.policy,
                fallback,
                negative: (self.negative_cache_keys > 0)
                    .then(|| NegativeCache::new(self.negative_cache_keys)),
                counters: Default::default(),
                drains: Drains::new(),
                policy_answered: AtomicU64::new(0),
                quota_changed: AtomicU64::new(0),
                // Until a call is answered, the timeout is all that bounds a trip.
                slow_round_trip: AtomicU64::new(
                    u64::try_from(self.timeout.as_nanos()).unwrap_or(u64::MAX),
                ),
                born: tokio::time::Instant::now(),
                vacated: Default::default(),
            }),
        }
    }
}
