//! Token leasing for clients: take `lease` units from the shared bucket in one round
//! trip and hand them out locally, so a busy client pays one round trip per `lease`
//! requests instead of one per request.
//!
//! # What it costs
//!
//! Units are taken from the shared bucket when they are leased, not when they are
//! used, so an instance may spend units in a window that it took before it. An
//! instance never holds more than `lease − 1` unspent units, and unspent units are
//! dropped after `ttl`, so over any window of length `D` a fleet of `n` instances
//! admits at most
//!
//! `B + ⌊D / T⌋ + n × (lease − 1)`
//!
//! units, against `B + ⌊D / T⌋` without leasing. Dropped units are under-admission,
//! never over. Leasing suits clients of a remote API that share a quota; a server
//! protecting itself should decide per request.
//!
//! `check` leases; `peek` answers from the local units when they suffice; `reserve`
//! goes to the store unchanged. A lease the store cannot grant whole (a denial, a
//! cost above the burst, or, while Redis is down, above the local fallback's share
//! of it) is asked again for just what the call needs.
//!
//! # While Redis hangs
//!
//! One lease is asked at a time, and callers that need one wait for the call ahead
//! of them. While Redis accepts connections but does not answer, each of those calls
//! lasts the store's timeout, until the circuit breaker opens; so a caller may wait
//! up to `failures_to_open` timeouts (150 ms with the defaults) at the start of an
//! outage, where a `RedisStore` alone makes each caller wait one. While the breaker
//! is open, answers are immediate (and callers wait one timeout behind each probe it
//! lets through).
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_core::store::{MemoryStore, RateStore};
//! use tower_ratelimit_core::Quota;
//! use tower_ratelimit_redis::LeasedStore;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Any store works; a RedisStore is the one where round trips matter.
//! let shared = MemoryStore::new(Quota::per_second(100)?);
//! let leased = LeasedStore::new(shared, 10, Duration::from_secs(1));
//! assert!(leased.check(&(), 1).await?.is_allowed());
//! // One lease of 10 was taken from the shared bucket; 9 are held locally.
//! assert_eq!(leased.local_units().await, 9);
//! assert_eq!(leased.inner().peek_now(0)?.snapshot().remaining, 90);
//! # Ok(()) }
//! ```

use crate::error::Unavailable;
use futures_util::future::BoxFuture;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tower_ratelimit_core::algorithm::Snapshot;
use tower_ratelimit_core::error::StoreError;
use tower_ratelimit_core::store::{Decision, RateStore};
use tower_ratelimit_core::Quota;

/// A global store (`RateStore<()>`) that leases units in batches. See the
/// [module docs](self) for the over-admission bound.
pub struct LeasedStore<S> {
    inner: Arc<Shared<S>>,
}

struct Shared<S> {
    store: S,
    lease: u64,
    ttl: Duration,
    held: Mutex<Held>,
}

struct Held {
    units: u64,
    expires: Instant,
}

impl<S> Clone for LeasedStore<S> {
    fn clone(&self) -> Self {
        LeasedStore {
            inner: self.inner.clone(),
        }
    }
}

impl<S> fmt::Debug for LeasedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeasedStore")
            .field("lease", &self.inner.lease)
            .field("ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

impl<S: RateStore<()>> LeasedStore<S> {
    /// Leases `lease` units at a time (at least 1; capped by the quota's burst at
    /// each lease) from `store`, dropping unspent units after `ttl`.
    pub fn new(store: S, lease: u64, ttl: Duration) -> LeasedStore<S> {
        LeasedStore {
            inner: Arc::new(Shared {
                store,
                lease: lease.max(1),
                ttl,
                held: Mutex::new(Held {
                    units: 0,
                    expires: Instant::now(),
                }),
            }),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner.store
    }

    /// Units leased and not yet spent (0 once they expired).
    pub async fn local_units(&self) -> u64 {
        let held = self.inner.held.lock().await;
        if Instant::now() < held.expires {
            held.units
        } else {
            0
        }
    }
}

impl<S: RateStore<()>> Shared<S> {
    async fn check(&self, cost: u64) -> Result<Decision, StoreError> {
        let mut held = self.held.lock().await;
        let now = Instant::now();
        if now >= held.expires {
            held.units = 0;
        }
        if held.units >= cost {
            held.units -= cost;
            return Ok(self.local_decision(held.units));
        }
        let short = cost - held.units;
        let ask = self
            .lease
            .max(short)
            .min(self.store.max_cost(&()).max(short));
        let mut decision = self.store.check(&(), ask).await;
        let mut taken = ask;
        let retry_exact = ask > short
            && match &decision {
                Ok(Decision::Denied { .. }) | Err(StoreError::CostTooLarge(_)) => true,
                // Redis is down and the local fallback cannot lend a whole lease:
                // it may still admit what this call needs.
                Err(StoreError::Unavailable(cause)) => matches!(
                    cause.downcast_ref::<Unavailable>(),
                    Some(Unavailable::OverLocalBurst { local_burst, .. }) if short <= *local_burst
                ),
                _ => false,
            };
        if retry_exact {
            decision = self.store.check(&(), short).await;
            taken = short;
        }
        if let Ok(Decision::Allowed { .. }) = decision {
            // The units held before and the ones taken now pay for `cost`.
            held.units = held.units + taken - cost;
            held.expires = now + self.ttl;
        }
        decision
    }

    fn local_decision(&self, units: u64) -> Decision {
        let quota = self.store.quota(&());
        Decision::Allowed {
            snapshot: Snapshot {
                limit: quota.burst(),
                remaining: units,
                reset: Duration::ZERO,
            },
            wait: Duration::ZERO,
        }
    }
}

impl<S: RateStore<()>> RateStore<()> for LeasedStore<S> {
    type Future = BoxFuture<'static, Result<Decision, StoreError>>;

    fn check(&self, _key: &(), cost: u64) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { inner.check(cost).await })
    }

    fn peek(&self, _key: &(), cost: u64) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            {
                let held = inner.held.lock().await;
                if cost > 0 && Instant::now() < held.expires && held.units >= cost {
                    return Ok(inner.local_decision(held.units - cost));
                }
            }
            inner.store.peek(&(), cost).await
        })
    }

    fn reserve(&self, _key: &(), cost: u64, max_wait: Duration) -> Self::Future {
        let future = self.inner.store.reserve(&(), cost, max_wait);
        Box::pin(future)
    }

    /// With a lease of one, every unit comes from the inner store when it is taken, so
    /// the inner store can give the readiness unit back. With a larger lease that unit
    /// may have been leased earlier, in another window, so the whole cost is booked and
    /// the unit stays spent.
    fn reserve_whole(
        &self,
        _key: &(),
        taken: u64,
        taken_at: tokio::time::Instant,
        cost: u64,
        max_wait: Duration,
    ) -> Self::Future {
        let future = if self.inner.lease <= 1 {
            self.inner
                .store
                .reserve_whole(&(), taken, taken_at, cost, max_wait)
        } else {
            self.inner.store.reserve(&(), cost, max_wait)
        };
        Box::pin(future)
    }

    fn quota(&self, _key: &()) -> Quota {
        self.inner.store.quota(&())
    }

    fn max_cost(&self, _key: &()) -> u64 {
        self.inner.store.max_cost(&())
    }

    fn set_quota(&self, quota: Quota) {
        self.inner.store.set_quota(quota);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_ratelimit_core::store::MemoryStore;

    fn store(per_second: u64, burst: u64) -> MemoryStore {
        match Quota::per_second(per_second).and_then(|q| q.with_burst(burst)) {
            Ok(q) => MemoryStore::new(q),
            Err(e) => panic!("{e}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn spends_the_lease_before_asking_again() -> Result<(), StoreError> {
        let leased = LeasedStore::new(store(10, 10), 4, Duration::from_secs(10));
        for _ in 0..8 {
            assert!(leased.check(&(), 1).await?.is_allowed());
        }
        // Two leases of 4 were taken, and all 8 units spent.
        assert_eq!(leased.inner().peek_now(0)?.snapshot().remaining, 2);
        assert_eq!(leased.local_units().await, 0);
        // The last 2 units fit only exactly: the lease shrinks to what is left.
        assert!(leased.check(&(), 2).await?.is_allowed());
        assert!(!leased.check(&(), 1).await?.is_allowed());
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn unspent_units_expire() -> Result<(), StoreError> {
        let leased = LeasedStore::new(store(1, 5), 5, Duration::from_millis(100));
        assert!(leased.check(&(), 1).await?.is_allowed());
        assert_eq!(leased.local_units().await, 4);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(leased.local_units().await, 0);
        // The bucket refilled only 0.1 unit: the expired units are gone.
        assert!(!leased.check(&(), 1).await?.is_allowed());
        Ok(())
    }
}
