//! A keyed wait-mode request that gives up while it sleeps until the slot it booked
//! in Redis leaves the slot to its key's next request in this process, which starts
//! there instead of booking one after it. Real time against a real `redis-server`:
//! slow quotas, and the decisions' waits are read, never slept.

mod support;

use std::time::Duration;
use support::RedisServer;
use tower_ratelimit_core::keyed::KeyedRateLimiter;
use tower_ratelimit_core::store::{Decision, RateStore};
use tower_ratelimit_core::Quota;
use tower_ratelimit_redis::RedisStore;

fn one_per_ten_seconds(server: &RedisServer) -> RedisStore {
    RedisStore::builder(Quota::new(1, Duration::from_secs(10)).expect("quota"))
        .prefix("vacated:")
        .timeout(Duration::from_secs(2))
        .connect(server.url())
        .expect("store")
}

async fn wait_of(store: &RedisStore, key: &str) -> Duration {
    match store.reserve(key, 1, Duration::from_secs(60)).await {
        Ok(Decision::Allowed { wait, .. }) => wait,
        other => panic!("expected a reservation, got {other:?}"),
    }
}

#[tokio::test]
async fn a_slot_given_up_goes_to_the_next_request_of_its_key() {
    let server = RedisServer::start();
    let store = one_per_ten_seconds(&server);
    let limiter = KeyedRateLimiter::from_store(store.clone());
    let key = "host".to_owned();
    limiter
        .acquire(&key, 1, Duration::MAX)
        .await
        .expect("the burst");
    // The next slot is 10 s away; this caller gives up after 100 ms.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(100),
        limiter.acquire(&key, 1, Duration::MAX),
    )
    .await;
    assert!(gave_up.is_err());
    // The next request starts in that slot, 10 s after the first...
    let wait = wait_of(&store, "host").await;
    assert!(
        wait > Duration::from_secs(9) && wait <= Duration::from_secs(10),
        "{wait:?}"
    );
    // ...and the one after it books in Redis, after that slot.
    let wait = wait_of(&store, "host").await;
    assert!(
        wait > Duration::from_secs(19) && wait <= Duration::from_secs(20),
        "{wait:?}"
    );
}

#[tokio::test]
async fn a_slot_is_not_handed_to_another_key() {
    let server = RedisServer::start();
    let store = one_per_ten_seconds(&server);
    let limiter = KeyedRateLimiter::from_store(store.clone());
    let key = "a".to_owned();
    limiter
        .acquire(&key, 1, Duration::MAX)
        .await
        .expect("the burst");
    let _ = tokio::time::timeout(
        Duration::from_millis(100),
        limiter.acquire(&key, 1, Duration::MAX),
    )
    .await;
    // Key "b" has a full bucket of its own.
    assert_eq!(wait_of(&store, "b").await, Duration::ZERO);
    assert!(wait_of(&store, "b").await > Duration::from_secs(9));
}
