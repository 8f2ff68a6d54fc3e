//! `RedisStore::forget`, for use after a key's state in Redis was reset (a `DEL` to
//! unblock a client), also drops the slots this process vacated before: the next
//! request asks Redis and starts now, not in a slot booked in the state the reset
//! dropped (about 10 s away). Real time against a real `redis-server`; the
//! decisions' waits are read, never slept.

mod support;

use std::time::Duration;
use support::RedisServer;
use tower_ratelimit_core::keyed::KeyedRateLimiter;
use tower_ratelimit_core::store::{Decision, RateStore};
use tower_ratelimit_core::Quota;
use tower_ratelimit_redis::RedisStore;

#[tokio::test]
async fn a_key_reset_in_redis_and_forgotten_asks_redis_again() {
    let server = RedisServer::start();
    let store = RedisStore::builder(Quota::new(1, Duration::from_secs(10)).expect("quota"))
        .prefix("forget-vacated:")
        .timeout(Duration::from_secs(2))
        .connect(server.url())
        .expect("store");
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
    // An operator unblocks the client: DEL of the key in Redis, then forget.
    let client = redis::Client::open(server.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let deleted: i64 = redis::cmd("DEL")
        .arg(store.redis_key("host"))
        .query_async(&mut conn)
        .await
        .expect("DEL");
    assert_eq!(deleted, 1);
    store.forget("host");
    let wait = match store.reserve("host", 1, Duration::from_secs(60)).await {
        Ok(Decision::Allowed { wait, .. }) => wait,
        other => panic!("expected a reservation, got {other:?}"),
    };
    assert_eq!(
        wait,
        Duration::ZERO,
        "after DEL and forget, the next request waited for the slot vacated before the reset"
    );
}
