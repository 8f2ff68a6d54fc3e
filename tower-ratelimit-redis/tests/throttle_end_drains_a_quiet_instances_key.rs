//! A throttle drains the shared bucket at its end even when the throttled instance
//! never checks again (`RateStore::schedule_drain`): the core drains when its limiter
//! next checks after the pause, so without the store's own sleeper an instance that
//! saw the `429` and went quiet left the whole saved burst to every other instance
//! sharing the key (review 9, finding 3: B was admitted 10, not 1).
//!
//! Guaranteed: from the throttle's end, every instance sharing the key finds one unit
//! and then the rate, whether or not the throttled instance sends anything more.

mod support;

use std::time::Duration;
use support::RedisServer;
use tower_ratelimit_core::store::RateStore;
use tower_ratelimit_core::{Quota, RateLimiter};
use tower_ratelimit_redis::{LeasedStore, RedisStore};

/// Waits (a bounded while; a loaded machine may be slow) for `store`'s sleeper to
/// have sent the drain.
async fn wait_for_drain(store: &RedisStore) {
    for _ in 0..500 {
        if store.stats().drains >= 1 && store.pending_drains() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no drain sent at the throttle's end: {:?}", store.stats());
}

fn store(server: &RedisServer) -> RedisStore {
    let quota = Quota::new(10, Duration::from_secs(10))
        .and_then(|q| q.with_burst(10))
        .expect("quota");
    RedisStore::builder(quota)
        .prefix("quiet:")
        .timeout(Duration::from_secs(2))
        .connect(server.url())
        .expect("store")
}

#[tokio::test]
async fn a_throttle_drains_the_shared_bucket_even_if_its_instance_goes_quiet() {
    let server = RedisServer::start();
    let (a, b) = (store(&server), store(&server));
    let throttled = RateLimiter::from_store(a.clone());
    throttled.throttle_for(Duration::from_millis(200));
    // A sends nothing more; its throttle ends.
    tokio::time::sleep(Duration::from_millis(200)).await;
    wait_for_drain(&a).await;
    let mut admitted = 0;
    for _ in 0..20 {
        if b.check(&(), 1).await.expect("decision").is_allowed() {
            admitted += 1;
        }
    }
    assert_eq!(
        admitted,
        1,
        "B started the saved burst at the end of A's throttle ({:?})",
        a.stats()
    );
}

#[tokio::test]
async fn a_leased_store_schedules_the_shared_buckets_drain_too() {
    let server = RedisServer::start();
    let (a, b) = (store(&server), store(&server));
    let throttled = RateLimiter::from_store(LeasedStore::new(a.clone(), 4, Duration::from_secs(1)));
    throttled.throttle_for(Duration::from_millis(200));
    tokio::time::sleep(Duration::from_millis(200)).await;
    wait_for_drain(&a).await;
    let mut admitted = 0;
    for _ in 0..20 {
        if b.check(&(), 1).await.expect("decision").is_allowed() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 1, "{:?}", a.stats());
}

#[tokio::test(start_paused = true)]
async fn nothing_is_sent_before_the_throttles_end() {
    let server = RedisServer::start();
    let a = store(&server);
    let throttled = RateLimiter::from_store(a.clone());
    throttled.throttle_for(Duration::from_secs(5));
    tokio::time::sleep(Duration::from_millis(4_990)).await;
    assert_eq!((a.stats().drains, a.pending_drains()), (0, 0));
}
