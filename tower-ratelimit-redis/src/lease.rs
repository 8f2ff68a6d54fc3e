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
//! # After a throttle
//!
//! `drain_until` (a throttle's end, `RateLimiter::throttle_until`) forfeits every unit
//! held, and the units a lease call in flight brings beyond its own request, then
//! drains the wrapped store: leased units are a local burst the drained bucket no
//! longer holds. The next lease then asks for what the drained bucket has (one unit,
//! then one an interval later), through the exact-size retry below.
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
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Throttle drains so far: units held from before the latest one are forfeit.
    /// Counted apart from `held`, whose lock a lease call keeps across its round trip
    /// and which `drain_until` (synchronous) cannot wait for.
    drains: AtomicU64,
}

struct Held {
    units: u64,
    expires: Instant,
    /// The drains counted when `units` were taken.
    drains: u64,
}

impl Held {
    /// The units still good at `now` after `drains` drains.
    fn usable(&self, now: Instant, drains: u64) -> u64 {
        if now < self.expires && self.drains == drains {
            self.units
        } else {
            0
        }
    }
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
                    drains: 0,
                }),
                drains: AtomicU64::new(0),
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
        held.usable(Instant::now(), self.inner.drains.load(Ordering::Acquire))
    }
}

impl<S: RateStore<()>> Shared<S> {
    async fn check(&self, cost: u64) -> Result<Decision, StoreError> {
        let mut held = self.held.lock().await;
        let now = Instant::now();
        let drains = self.drains.load(Ordering::Acquire);
        held.units = held.usable(now, drains);
        held.drains = drains;
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
            // The units held before and the ones taken now pay for `cost`; what is
            // left is forfeit if a throttle drained the bucket during the call.
            held.units = held.units + taken - cost;
            held.expires = now + self.ttl;
            let drains = self.drains.load(Ordering::Acquire);
            held.units = held.usable(now, drains);
            held.drains = drains;
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
                let units = held.usable(Instant::now(), inner.drains.load(Ordering::Acquire));
                if cost > 0 && units >= cost {
                    return Ok(inner.local_decision(units - cost));
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

    /// Forfeits the units held (a lease call in flight forfeits what it brings beyond
    /// its own request) and drains the wrapped store: after a throttle, the units
    /// leased before it would otherwise start at once, a local burst the drained
    /// bucket no longer holds. Whatever the store's algorithm, held units are
    /// forfeit, which only ever admits less.
    fn drain_until(&self, _key: &(), until: tokio::time::Instant) {
        // The drain first, then the count: a lease call that sees the new count then
        // finds the drain recorded and sends it ahead of the lease (or sent already),
        // never leasing from the undrained bucket and keeping the lease.
        self.inner.store.drain_until(&(), until);
        self.inner.drains.fetch_add(1, Ordering::AcqRel);
    }

    /// The wrapped store's: the units held here are forfeit when the limiter drains
    /// (its next check after `until`); the shared bucket, at `until`.
    fn schedule_drain(&self, _key: &(), until: tokio::time::Instant) {
        self.inner.store.schedule_drain(&(), until);
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
    async fn a_drain_forfeits_the_units_held_and_drains_the_store() -> Result<(), StoreError> {
        // 10/s, burst 10, leases of 5.
        let leased = LeasedStore::new(store(10, 10), 5, Duration::from_secs(10));
        assert!(leased.check(&(), 1).await?.is_allowed());
        assert_eq!(leased.local_units().await, 4);
        tokio::time::sleep(Duration::from_secs(1)).await;
        // The bucket refilled; a throttle ends now. Without the drain the 4 held units
        // and then the bucket's 10 would start at once.
        leased.drain_until(&(), Instant::now());
        assert_eq!(leased.local_units().await, 0);
        let mut admitted = 0;
        for _ in 0..20 {
            admitted += u32::from(leased.check(&(), 1).await?.is_allowed());
        }
        assert_eq!(admitted, 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(leased.check(&(), 1).await?.is_allowed());
        assert!(!leased.check(&(), 1).await?.is_allowed());
        Ok(())
    }

    /// A drain while a lease call is in flight forfeits what the lease brings beyond
    /// the request that asked for it.
    #[tokio::test(start_paused = true)]
    async fn a_lease_in_flight_across_a_drain_keeps_only_its_own_unit() -> Result<(), StoreError> {
        let shared = Arc::new(std::sync::Mutex::new(None::<LeasedStore<Slow>>));
        let leased = LeasedStore::new(
            Slow {
                store: store(10, 10),
                during: Arc::clone(&shared),
            },
            5,
            Duration::from_secs(10),
        );
        *shared
            .lock()
            .map_err(|_| StoreError::Unavailable("lock".into()))? = Some(leased.clone());
        assert!(leased.check(&(), 1).await?.is_allowed());
        assert_eq!(leased.local_units().await, 0);
        Ok(())
    }

    /// A store whose check drains the leased store around it mid-call.
    struct Slow {
        store: MemoryStore,
        during: Arc<std::sync::Mutex<Option<LeasedStore<Slow>>>>,
    }

    impl RateStore<()> for Slow {
        type Future = BoxFuture<'static, Result<Decision, StoreError>>;

        fn check(&self, key: &(), cost: u64) -> Self::Future {
            let decided = self.store.check_now(cost);
            if let Ok(guard) = self.during.lock() {
                if let Some(leased) = guard.as_ref() {
                    leased.inner.drains.fetch_add(1, Ordering::AcqRel);
                }
            }
            let _ = key;
            Box::pin(std::future::ready(decided))
        }

        fn peek(&self, _key: &(), cost: u64) -> Self::Future {
            Box::pin(std::future::ready(self.store.peek_now(cost)))
        }

        fn reserve(&self, _key: &(), cost: u64, max_wait: Duration) -> Self::Future {
            Box::pin(std::future::ready(self.store.reserve_now(cost, max_wait)))
        }

        fn quota(&self, _key: &()) -> Quota {
            self.store.quota(&())
        }

        fn set_quota(&self, quota: Quota) {
            self.store.set_quota(quota);
        }
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
