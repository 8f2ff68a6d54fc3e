//! A cancellation storm: requests dropped at random points while waiting for a permit,
//! waiting for a rate slot, or in flight. No permit is lost, and each dropped request
//! wastes at most the one rate slot it held.

use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::concurrency::ConcurrencyLimiter;
use tower_ratelimit_core::error::StoreError;
use tower_ratelimit_core::store::{Decision, MemoryStore, RateStore};
use tower_ratelimit_core::{Quota, RateLimiter, ServiceBuilderExt};

/// Counts the units the limiter hands out.
struct CountingStore {
    inner: MemoryStore,
    granted: Arc<AtomicUsize>,
}

impl CountingStore {
    fn count(
        &self,
        decision: Result<Decision, StoreError>,
    ) -> std::future::Ready<Result<Decision, StoreError>> {
        if let Ok(Decision::Allowed { .. }) = decision {
            self.granted.fetch_add(1, Ordering::SeqCst);
        }
        std::future::ready(decision)
    }
}

impl RateStore for CountingStore {
    type Future = std::future::Ready<Result<Decision, StoreError>>;

    fn check(&self, _: &(), cost: u64) -> Self::Future {
        self.count(self.inner.check_now(cost))
    }

    fn check_since(&self, key: &(), cost: u64, since: tokio::time::Instant) -> Self::Future {
        let decision = self.inner.check_since(key, cost, since).into_inner();
        self.count(decision)
    }

    fn peek(&self, _: &(), cost: u64) -> Self::Future {
        std::future::ready(self.inner.peek_now(cost))
    }

    fn reserve(&self, _: &(), cost: u64, max_wait: Duration) -> Self::Future {
        self.count(self.inner.reserve_now(cost, max_wait))
    }

    fn quota(&self, key: &()) -> Quota {
        self.inner.quota(key)
    }

    fn set_quota(&self, quota: Quota) {
        self.inner.set_quota(quota)
    }
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_random_drops_lose_no_permit() {
    const N: usize = 10_000;
    const POOL: usize = 16;
    let granted = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let limiter = RateLimiter::from_store(CountingStore {
        inner: MemoryStore::new(Quota::per_second(2_000).unwrap().with_burst(4).unwrap()),
        granted: granted.clone(),
    });
    let pool = ConcurrencyLimiter::new(POOL);
    let api = {
        let (started, finished) = (started.clone(), finished.clone());
        service_fn(move |latency: Duration| {
            started.fetch_add(1, Ordering::SeqCst);
            let finished = finished.clone();
            async move {
                tokio::time::sleep(latency).await;
                finished.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::convert::Infallible>(())
            }
        })
    };
    let svc = ServiceBuilder::new()
        .limit_rate_with(limiter.clone())
        .limit_concurrency_with(pool.clone())
        .service(api);

    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut tasks = Vec::with_capacity(N);
    let dropped = Arc::new(AtomicUsize::new(0));
    for _ in 0..N {
        let mut svc = svc.clone();
        let deadline = Duration::from_micros(rng.random_range(0..3_000_000));
        let latency = Duration::from_micros(rng.random_range(100..20_000));
        let dropped = dropped.clone();
        tasks.push(tokio::spawn(async move {
            let request = async {
                svc.ready().await.unwrap();
                svc.call(latency).await.unwrap();
            };
            if tokio::time::timeout(deadline, request).await.is_err() {
                dropped.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    drop(svc);

    let dropped = dropped.load(Ordering::SeqCst);
    let started = started.load(Ordering::SeqCst);
    let completed = finished.load(Ordering::SeqCst);
    assert!(
        dropped > 1_000 && completed > 1_000,
        "the storm must hit every phase ({dropped} dropped, {completed} completed)"
    );
    assert_eq!(pool.in_flight(), 0, "in flight back to zero");
    let all: Vec<_> = (0..POOL)
        .map(|_| pool.try_acquire().expect("a permit was lost"))
        .collect();
    assert!(pool.try_acquire().is_none());
    drop(all);
    let granted = granted.load(Ordering::SeqCst);
    assert!(granted >= started, "every start took a slot");
    assert!(
        granted - started <= dropped,
        "{granted} slots for {started} starts: more than one wasted per dropped request ({dropped})"
    );
    // The limiter still works and its queue is empty.
    assert!(limiter.try_acquire(1).await.is_ok());
}
