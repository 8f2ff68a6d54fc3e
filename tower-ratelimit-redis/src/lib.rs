//! Redis (and Valkey) stores for tower-ratelimit: one limit shared by every instance
//! of a service.
//!
//! Ten replicas of an API server must share one per-client limit; a fleet of workers
//! must share one upstream API's quota. [`RedisStore`] implements the core's
//! [`RateStore`](tower_ratelimit_core::store::RateStore), so the core's
//! `RateLimiter::from_store` and its layers (wait and reject mode, keyed or
//! global) run unchanged with their state in Redis.
//!
//! * **One round trip per decision**: a Lua script ([`script`]) runs GCRA (or a fixed
//!   or sliding window) on the server's own clock, in integer microseconds, on one
//!   key, so Redis Cluster works (tested on a three-master cluster through the
//!   `redis` crate's async cluster client). Keys expire when their bucket is full again
//!   (GCRA: one emission interval later, for a waiter that woke late).
//! * **Short timeout and a circuit breaker** ([`breaker`]): an outage costs one
//!   timeout, not one per request. A connection that goes silent without failing (a
//!   failover to another host) is replaced once the breaker opens on its timeouts
//!   ([`Stats::reconnects`]).
//! * **Failure policy** ([`FailurePolicy`]): fail open (default), fail closed with
//!   `StoreError::Unavailable` (never confused with "over the limit"), or a local
//!   limiter at a share of the rate ([`fallback`]).
//! * **Negative cache** ([`negative_cache`]): an exhausted key is denied locally
//!   until its retry-after without a round trip (for at most a second per entry, so a
//!   key reset in Redis is not denied here for long; `RedisStore::forget` drops one).
//! * **Leasing** ([`lease`]): clients may take units in batches, with a documented
//!   over-admission bound.
//! * **Throttles drain the shared bucket**: when a server refuses a client
//!   (`RateLimiter::throttle_until`, which the HTTP crate's `FeedbackLayer` calls on a
//!   `429`), the GCRA bucket in Redis is emptied as of the throttle's end, as the
//!   core's in-memory stores do: from then on one request starts, the next an interval
//!   later, with no burst, on every instance sharing the key (the server refused the
//!   identity they share). It never waits for Redis (see [`store`]).
//!
//! ```
//! use tower_ratelimit_core::store::RateStore;
//! use tower_ratelimit_core::Quota;
//! use tower_ratelimit_redis::{FailurePolicy, RedisStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 100 requests per second per client, shared by every instance.
//! let store = RedisStore::builder(Quota::per_second(100)?.with_burst(10)?)
//!     .prefix("api:client:")
//!     .failure_policy(FailurePolicy::FailClosed)
//!     .connect("redis://127.0.0.1:1/")?; // nothing listens here
//! // Redis is out of reach: under fail-closed that is an error, not a denial.
//! let err = store.check("203.0.113.9", 1).await.unwrap_err();
//! assert!(err.to_string().contains("unavailable"));
//! # Ok(()) }
//! ```

//! # Which algorithms run remotely
//!
//! GCRA (the default; the core's leaky bucket is GCRA with burst 1), fixed window and
//! sliding window counter: each keeps O(1) state per key and decides in one script.
//! The sliding log is not offered: its state grows with the count per period, for
//! every key. See [`script`] for the state each keeps and when its key expires.
//!
//! Weighted requests in wait mode are exact on all three, as on the core's in-memory
//! stores: the unit a request's readiness took is given back, in the same script call
//! that books its whole cost, so every unit counts where the request starts (see
//! [`script`] for the cases where a script keeps it spent instead: a window's
//! boundary, and a GCRA booking sleeping after it).
//!
//! # Wiring it into a service
//!
//! ```no_run
//! use tower::ServiceBuilder;
//! use tower_ratelimit_core::keyed::{KeyedRateLimitLayer, KeyedRateLimiter};
//! use tower_ratelimit_core::Quota;
//! use tower_ratelimit_redis::RedisStore;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! // Every replica builds the same store: 10 requests per second per client.
//! let store = RedisStore::builder(Quota::per_second(10)?)
//!     .prefix("api:client:")
//!     .connect("redis://127.0.0.1:6379/")?;
//! let limiter = KeyedRateLimiter::from_store(store);
//! let service = ServiceBuilder::new()
//!     .layer(KeyedRateLimitLayer::with_limiter(limiter, |req: &(String, u32)| req.0.clone()).reject())
//!     .service_fn(|req: (String, u32)| async move { Ok::<_, tower::BoxError>(req.1) });
//! # drop(service);
//! # Ok(()) }
//! ```
//!
//! # The server's memory policy
//!
//! Every key the scripts write expires (when its bucket is full again), so idle
//! clients cost nothing; but an evicted key is a full bucket, and every eviction
//! policy can pick these keys (the `volatile-*` ones only pick keys with an expiry,
//! which all of these have). Give the limits a server or a `maxmemory` headroom of
//! their own: with `noeviction` and the memory full, every decision that takes
//! units fails with `OOM` (Redis 7.0: the script's `SET`), which the store counts as
//! an outage, so the breaker opens and the failure policy answers.
//!
//! # Testing
//!
//! The tests run against a real `redis-server` that they start themselves (a free
//! loopback port, no persistence) and kill afterwards; `run-tests.sh` next to this
//! crate's `Cargo.toml` installs the Debian package `redis-server` first when it is
//! missing. `REDIS_SERVER` (and, for the cluster test, `REDIS_CLI`) name other
//! binaries: the tests pass on Redis 7.0.15 and on Valkey 8.0.1 (built from source).
//! The scripts need Redis 5 or later (a write after `TIME` needs script effects
//! replication, the default since 5.0); the cluster test needs Redis 7
//! (`cluster-port`).
//!
//! Redis keeps real time, so test a service that uses a `RedisStore` on the real
//! clock, as these tests do, not under a paused Tokio clock (`start_paused`): while a
//! call waits on the socket, a paused runtime with nothing else to run jumps its clock
//! to the call's timeout, so calls time out, the breaker opens and the failure policy
//! answers every request without a word (300 checks under a paused clock: 0 decided
//! by Redis in two runs of three, 191 in the third). Where a test needs the paused
//! clock, give the service the core's `MemoryStore` or `KeyedMemoryStore` instead.

pub mod breaker;
pub mod builder;
mod drain;
pub mod error;
pub mod fallback;
pub mod key;
pub mod lease;
pub mod negative_cache;
pub mod policy;
mod renewal;
pub mod script;
pub mod stats;
pub mod store;

pub use builder::RedisStoreBuilder;
pub use lease::LeasedStore;
pub use policy::FailurePolicy;
pub use script::RemoteAlgorithm;
pub use stats::Stats;
pub use store::RedisStore;

/// The README's example, compiled as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
