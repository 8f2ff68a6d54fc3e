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
//!   key, so Redis Cluster works. Keys expire when their bucket is full again.
//! * **Short timeout and a circuit breaker** ([`breaker`]): an outage costs one
//!   timeout, not one per request.
//! * **Failure policy** ([`FailurePolicy`]): fail open (default), fail closed with
//!   `StoreError::Unavailable` (never confused with "over the limit"), or a local
//!   limiter at a share of the rate ([`fallback`]).
//! * **Negative cache** ([`negative_cache`]): an exhausted key is denied locally
//!   until its retry-after, exactly, without a round trip.
//! * **Leasing** ([`lease`]): clients may take units in batches, with a documented
//!   over-admission bound.
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

pub mod breaker;
pub mod builder;
pub mod error;
pub mod fallback;
pub mod key;
pub mod lease;
pub mod negative_cache;
pub mod policy;
pub mod script;
pub mod stats;
pub mod store;

pub use builder::RedisStoreBuilder;
pub use lease::LeasedStore;
pub use policy::FailurePolicy;
pub use script::RemoteAlgorithm;
pub use stats::Stats;
pub use store::RedisStore;
