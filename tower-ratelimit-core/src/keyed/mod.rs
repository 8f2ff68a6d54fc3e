//! Keyed limits: a bucket per client, API key, tenant or route, in bounded memory.
//!
//! ```
//! use std::time::Duration;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_ratelimit_core::error::{BoxError, RateLimited};
//! use tower_ratelimit_core::keyed::{CapPolicy, KeyedMemoryStore, KeyedRateLimitLayer, KeyedRateLimiter};
//! use tower_ratelimit_core::Quota;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), BoxError> {
//! // Free clients: 1 request per second. "premium": 10 per second. At most 100,000
//! // clients tracked; when all are busy, new ones are refused.
//! let store = KeyedMemoryStore::new(Quota::per_second(1)?)
//!     .with_quota_fn(|client: &String| (client == "premium").then(|| Quota::per_second(10).unwrap()))
//!     .with_max_keys(100_000)
//!     .with_cap_policy(CapPolicy::RejectNew);
//! let limiter = KeyedRateLimiter::from_store(store);
//!
//! let mut service = ServiceBuilder::new()
//!     .layer(KeyedRateLimitLayer::with_limiter(limiter.clone(), |req: &String| req.clone()).reject())
//!     .service_fn(|req: String| async move { Ok::<_, BoxError>(req) });
//!
//! service.ready().await?.call("free".to_string()).await?;
//! let err = service.ready().await?.call("free".to_string()).await.unwrap_err();
//! assert_eq!(err.downcast_ref::<RateLimited>().unwrap().retry_after(), Duration::from_secs(1));
//! for _ in 0..10 {
//!     service.ready().await?.call("premium".to_string()).await?;
//! }
//! // The handle reads and manages the same buckets.
//! assert_eq!(limiter.snapshot(&"premium".to_string()).await?.remaining, 0);
//! assert_eq!(limiter.len(), 2);
//! # Ok(()) }
//! ```
//!
//! # Parts
//!
//! * [`KeyedMemoryStore`] holds a bucket of any [`Algorithm`](crate::algorithm::Algorithm)
//!   per key and implements [`RateStore<K>`](crate::store::RateStore), so the layer
//!   runs unchanged over a remote store.
//! * [`KeyedRateLimiter`] is the shared handle (`Clone`, one `Arc` inside).
//! * [`KeyedRateLimitLayer`] derives a key ([`KeyExtractor`]) and a cost
//!   ([`RequestCost`]) from each request, and waits or rejects.
//!
//! # Bounded memory, without a cleanup thread
//!
//! A bucket that equals a fresh one (a GCRA bucket whose theoretical arrival time is
//! past) is dropped: dropping it changes no future decision. The map sweeps a shard
//! for such buckets inside the insert of a new key, once per as many inserts as the
//! shard holds keys, so the cost is O(1) per insert, amortised, and nothing runs when
//! nothing new arrives. Checks of known keys never take a write lock.
//!
//! On top of that, a hard cap ([`KeyedMemoryStore::with_max_keys`], 1,000,000 by
//! default) bounds the table; [`KeyedMemoryStore::max_table_bytes`] gives its figure
//! in bytes. When a shard is full of busy keys, [`CapPolicy`] says what happens to an
//! unseen key: refused with [`StoreError::TooManyKeys`](crate::error::StoreError),
//! which says when the soonest of the held keys is idle and makes room
//! (the default: a flood of new keys can never reset a known key's limit) or admitted
//! by evicting the keys soonest full again, **which then start with a full bucket**.
//! A flood from ten million addresses therefore costs at most the cap's memory, and
//! active keys keep their exact state (tested in `tests/keyed_flood.rs`).
//!
//! # The concurrent map, chosen by measurement
//!
//! A key's bucket is an atomic (8 bytes for GCRA) updated without a lock, so the map
//! only has to find it. `benches/keyed.rs` measures, in one run and in alternating
//! rounds, every candidate with the same GCRA buckets, clock and hasher: `std`
//! `HashMap`s in 64 shards behind `RwLock`s (this module), `dashmap` (sharded
//! `RwLock` tables, what governor uses), `papaya` (lock-free, epoch-reclaimed) and
//! `scc`. On the project's 2-core machine (thread CPU time; full tables and commands
//! in `BENCHMARKS.md` at the repository root):
//!
//! | map alone, ns per check | 1 key | 1,000 keys | 1,000,000 keys |
//! |---|---|---|---|
//! | `std` shards | 52–71 | 55–77 | 353–457 |
//! | `dashmap` | 50–71 | 53–76 | 352–464 |
//! | `scc` | 54–72 | 54–74 | 352–499 |
//! | `papaya` | 50–73 | 228–325 | 1,079–1,602 |
//!
//! (ranges over four runs, one thread; two threads rank the same). Bytes per key at
//! 1,000,000 keys: 35.65 for the `std` shards, `dashmap` and governor (the same
//! table: key, state, one control byte, power-of-two buckets), 37.76 for `scc`, and
//! 25.4 or 34.9 for `papaya` depending on whether its old table had been reclaimed
//! yet when counted.
//!
//! The `std` shards are as fast as `dashmap` and `scc` within this machine's noise and
//! need no dependency; what decides is that the store owns each shard's table. The
//! sweep and the cap run under the shard's write lock, where an entry is judged idle
//! and removed atomically with respect to every check of it, and the store sizes the
//! table itself: removals leave tombstones that would make `std`'s table double on
//! the next insert (measured: twice the memory under a flood), so a clogged table is
//! rebuilt at the same size instead, and no table is ever sized past the cap. That is
//! what makes [`KeyedMemoryStore::max_table_bytes`] a bound that the flood test
//! checks with a counting allocator. `papaya` frees removed entries later, by epochs,
//! so no such bound holds at a given instant, and its lookups were 4× slower from
//! 1,000 keys on.
//!
//! Against governor's keyed limiter the store matches its bytes per key and is faster
//! when both read the same clock; governor is faster by about the difference of the
//! clocks (tokio's `Instant`, which paused-clock tests need, against quanta's TSC
//! reading), see `BENCHMARKS.md` at the repository root.
//!
//! Keys are hashed with [`FoldBuildHasher`], a seeded folded-multiply hash: fast on
//! short keys, with per-store random seeds so that collisions cannot be computed
//! offline (the module [`hasher`] explains the choice against SipHash).
//!
//! # Wait mode
//!
//! The key is known only in `call`, so the request reserves its key's next slot there
//! and its response future sleeps until the slot, holding the readiness that the
//! inner service gave in `poll_ready`. `poll_ready` cannot hold requests back per
//! key: pair the layer with a concurrency limit in front of it to bound how many
//! requests wait at once, and set [`KeyedRateLimitLayer::max_wait`].
//!
//! A request that gives up while it sleeps (a timeout around the layer shorter than
//! its wait) cannot give its units back: requests booked after it sleep until slots
//! placed behind its own. The in-memory store keeps its slot instead and hands it to
//! the key's next request, which starts there (`tower-ratelimit-redis`'s store does the
//! same for the requests of its process). Before, such slots went unused: with
//! a 1 s timeout around a 10/s key sent 20/s for 10 s, no request got through from
//! the third second until 16 s after the overload ended; now 10 a second do, then
//! every request (`tests/keyed_vacated_slots.rs`).

pub mod hasher;
mod key;
mod layer;
mod limiter;
mod policy;
mod service;
mod shard;
mod store;

pub mod future;

pub use hasher::{FoldBuildHasher, FoldHasher};
pub use key::{KeyExtractor, RequestCost, UnitCost};
pub use layer::KeyedRateLimitLayer;
pub use limiter::KeyedRateLimiter;
pub use policy::CapPolicy;
pub use service::KeyedRateLimit;
pub use store::{KeyedMemoryStore, DEFAULT_MAX_KEYS};
