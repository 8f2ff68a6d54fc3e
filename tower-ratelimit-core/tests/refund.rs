//! A unit that wait mode took in `poll_ready` and that no request used goes back to
//! the bucket: a request of cost 0, one refused for a cost above the burst, and a
//! ready service dropped without a call.

use std::convert::Infallible;
use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, Layer, Service, ServiceExt};
use tower_ratelimit_core::algorithm::{
    Algorithm, FixedWindow, Gcra, LeakyBucket, SlidingCounter, SlidingLog,
};
use tower_ratelimit_core::keyed::KeyedMemoryStore;
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};

fn one_per_second(burst: u64) -> RateLimiter {
    RateLimiter::new(Quota::per_second(1).unwrap().with_burst(burst).unwrap())
}

/// A wait-mode service whose requests cost their own value.
fn costing(
    limiter: &RateLimiter,
) -> impl Service<u64, Response = u64, Error = tower_ratelimit_core::error::BoxError> + Clone {
    RateLimitLayer::with_limiter(limiter.clone())
        .cost(|n: &u64| *n)
        .layer(service_fn(|n: u64| async move { Ok::<_, Infallible>(n) }))
}

#[tokio::test(start_paused = true)]
async fn a_free_request_leaves_the_bucket_as_it_was() {
    let limiter = one_per_second(1);
    let mut svc = costing(&limiter);
    let start = Instant::now();
    svc.ready().await.unwrap().call(0).await.unwrap();
    svc.ready().await.unwrap().call(1).await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "the free request took nothing"
    );
    assert_eq!(limiter.snapshot().await.unwrap().remaining, 0);
}

#[tokio::test(start_paused = true)]
async fn a_cost_above_the_burst_gives_its_unit_back() {
    let limiter = one_per_second(2);
    let mut svc = costing(&limiter);
    let refused = svc.ready().await.unwrap().call(3).await;
    assert!(refused.is_err());
    assert_eq!(limiter.snapshot().await.unwrap().remaining, 2);
}

#[tokio::test(start_paused = true)]
async fn a_ready_service_dropped_without_a_call_gives_its_unit_back() {
    let limiter = one_per_second(1);
    let mut svc = costing(&limiter);
    svc.ready().await.unwrap();
    drop(svc);
    assert!(limiter.try_acquire(1).await.unwrap().is_allowed());

    // The same when the inner service is taken out of a ready service.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut svc = RateLimitLayer::with_limiter(limiter.clone())
        .layer(service_fn(|n: u64| async move { Ok::<_, Infallible>(n) }));
    ServiceExt::<u64>::ready(&mut svc).await.unwrap();
    let _inner = svc.into_inner();
    assert!(limiter.try_acquire(1).await.unwrap().is_allowed());
}

/// Takes three units, gives two back: two more fit at once, and no more than the
/// bucket holds; a refund after the units' time has passed gives nothing twice.
fn takes_back<A: Algorithm>(algorithm: A) {
    let quota = Quota::per_second(4).unwrap();
    let store = MemoryStore::with_algorithm(algorithm, quota);
    for _ in 0..4 {
        assert!(store.check_now(1).unwrap().is_allowed());
    }
    assert!(!store.check_now(1).unwrap().is_allowed());
    store.refund_now(2);
    assert!(store.check_now(1).unwrap().is_allowed());
    assert!(store.check_now(1).unwrap().is_allowed());
    assert!(
        !store.check_now(1).unwrap().is_allowed(),
        "only two came back"
    );
    store.refund_now(100);
    assert!(
        store.peek_now(0).unwrap().snapshot().remaining <= 4,
        "never fuller than full"
    );
}

#[tokio::test(start_paused = true)]
async fn every_algorithm_takes_units_back() {
    takes_back(Gcra);
    takes_back(FixedWindow);
    takes_back(SlidingCounter);
    takes_back(SlidingLog);
    // The leaky bucket holds one unit at a time.
    let store = MemoryStore::with_algorithm(LeakyBucket, Quota::per_second(4).unwrap());
    assert!(store.check_now(1).unwrap().is_allowed());
    assert!(!store.check_now(1).unwrap().is_allowed());
    store.refund_now(1);
    assert!(store.check_now(1).unwrap().is_allowed());
}

#[tokio::test(start_paused = true)]
async fn a_gcra_refund_after_the_refill_gives_nothing() {
    let store = MemoryStore::new(Quota::per_second(1).unwrap().with_burst(1).unwrap());
    assert!(store.check_now(1).unwrap().is_allowed());
    tokio::time::sleep(Duration::from_secs(2)).await;
    store.refund_now(1);
    assert!(store.check_now(1).unwrap().is_allowed());
    assert!(
        !store.check_now(1).unwrap().is_allowed(),
        "the refill already gave the unit back"
    );
}

#[test]
fn keyed_refunds_touch_only_their_key() {
    let store = KeyedMemoryStore::new(Quota::per_second(1).unwrap());
    assert!(store.check_now(&"a", 1).unwrap().is_allowed());
    assert!(store.check_now(&"b", 1).unwrap().is_allowed());
    store.refund_now(&"a", 1);
    store.refund_now(&"unknown", 1);
    assert!(store.check_now(&"a", 1).unwrap().is_allowed());
    assert!(!store.check_now(&"b", 1).unwrap().is_allowed());
    assert!(
        !store.contains_key(&"unknown"),
        "a refund does not create a key"
    );
}

/// A keyed wait dropped while it sleeps gives its booked slot back: the next waiter
/// for the key gets that slot, not the one after it.
#[tokio::test(start_paused = true)]
async fn a_dropped_keyed_wait_gives_its_slot_back() {
    let limiter =
        tower_ratelimit_core::keyed::KeyedRateLimiter::<&str>::new(Quota::per_second(1).unwrap());
    let start = Instant::now();
    let wait = Duration::from_secs(10);
    limiter.acquire(&"k", 1, wait).await.unwrap();
    let gave_up = tokio::time::timeout(Duration::from_millis(100), limiter.acquire(&"k", 1, wait));
    assert!(gave_up.await.is_err(), "the slot is a second away");
    limiter.acquire(&"k", 1, wait).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(1));

    // The same through the keyed layer's wait mode.
    let mut svc = tower_ratelimit_core::keyed::KeyedRateLimitLayer::new(
        Quota::per_second(1).unwrap(),
        |_: &u64| "k",
    )
    .max_wait(wait)
    .layer(service_fn(|n: u64| async move { Ok::<_, Infallible>(n) }));
    let start = Instant::now();
    svc.ready().await.unwrap().call(0).await.unwrap();
    let pending = svc.ready().await.unwrap().call(1);
    let dropped = tokio::time::timeout(Duration::from_millis(100), pending).await;
    assert!(dropped.is_err());
    svc.ready().await.unwrap().call(2).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}
