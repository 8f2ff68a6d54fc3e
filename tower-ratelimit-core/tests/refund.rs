//! Units taken and not used go back to an in-memory bucket (`RateStore::refund`), never
//! making it fuller than it would be had they not been taken.

use std::time::Duration;
use tower_ratelimit_core::algorithm::{
    Algorithm, FixedWindow, Gcra, LeakyBucket, SlidingCounter, SlidingLog,
};
use tower_ratelimit_core::keyed::KeyedMemoryStore;
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::Quota;

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
