//! A quota change keeps every bucket's units (each script re-expresses a bucket
//! written under another interval or period when it next reads it), so the key must
//! also live as long as the re-expressed bucket owes. It used to keep the expiry set
//! under the old quota until a call wrote the key again, and a denied or peeking call
//! writes nothing: after a change from 10 a second to 10 a minute, an exhausted key
//! expired in about a second, and the next requests found a full bucket (10 units at
//! once, where the core's in-memory stores, which rescale at `set_quota`, admit none).
//!
//! Guaranteed: after a change to a longer interval or period, the first call that
//! reads the bucket (a denied check or a peek) leaves the key with a time to live
//! that covers what the bucket owes under the new quota.
//!
//! Real redis-server; the assertions compare the key's time to live, in seconds,
//! against what a second's quota could have given it, so no timing matters.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::RedisServer;
use tower_ratelimit_core::store::{Decision, RateStore};
use tower_ratelimit_core::Quota;
use tower_ratelimit_redis::{RedisStore, RemoteAlgorithm};

const ALGORITHMS: [RemoteAlgorithm; 3] = [
    RemoteAlgorithm::Gcra,
    RemoteAlgorithm::FixedWindow,
    RemoteAlgorithm::SlidingWindow,
];

fn ten_per(period: Duration) -> Quota {
    Quota::new(10, period).expect("quota")
}

fn store(server: &RedisServer, algorithm: RemoteAlgorithm) -> RedisStore {
    RedisStore::builder(ten_per(Duration::from_secs(1)))
        .algorithm(algorithm)
        .prefix("q:")
        .negative_cache(0)
        .timeout(Duration::from_secs(2))
        .connect(server.url())
        .expect("store")
}

/// Waits until the server's clock (this machine's) is early in a second and not in
/// the last seconds of a minute: the 10 units must be spent in one window of a
/// second, and that window must still lie in the current minute's window after the
/// change (the windows are aligned to the Unix epoch).
async fn away_from_window_boundaries() {
    loop {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        if ms % 1_000 < 300 && ms % 60_000 < 55_000 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1_000 - (ms % 1_000) as u64 + 5)).await;
    }
}

/// Spends `key`'s 10 units under 10 a second, moves the store to 10 a minute, makes
/// one call of `mode` and returns the key's time to live in milliseconds.
async fn ttl_after_the_change(
    server: &RedisServer,
    algorithm: RemoteAlgorithm,
    key: &str,
    peek: bool,
) -> i64 {
    let store = store(server, algorithm);
    away_from_window_boundaries().await;
    for _ in 0..10 {
        let decision = store.check(key, 1).await.expect("decision");
        assert!(decision.is_allowed(), "{algorithm:?}: {decision:?}");
    }
    RateStore::<str>::set_quota(&store, ten_per(Duration::from_secs(60)));
    let decision = if peek {
        store.peek(key, 1).await
    } else {
        store.check(key, 1).await
    };
    assert!(
        matches!(decision, Ok(Decision::Denied { retry_after, .. }) if retry_after > Duration::from_secs(2)),
        "{algorithm:?}: the units spent under the old quota still count: {decision:?}"
    );
    server.cmd(&["PTTL", &format!("q:{key}")])
}

#[tokio::test]
async fn a_denied_check_after_a_longer_quota_keeps_the_key_alive() {
    let server = RedisServer::start();
    for algorithm in ALGORITHMS {
        let ttl =
            ttl_after_the_change(&server, algorithm, &format!("check:{algorithm:?}"), false).await;
        // Under 10 a second no key lives past 2 s (the sliding counter's two
        // windows); what it owes under 10 a minute is several seconds at least.
        assert!(
            ttl > 3_000,
            "{algorithm:?}: the key expires in {ttl} ms, before its debt"
        );
    }
}

#[tokio::test]
async fn a_peek_after_a_longer_quota_keeps_the_key_alive() {
    let server = RedisServer::start();
    for algorithm in ALGORITHMS {
        let ttl =
            ttl_after_the_change(&server, algorithm, &format!("peek:{algorithm:?}"), true).await;
        assert!(
            ttl > 3_000,
            "{algorithm:?}: the key expires in {ttl} ms, before its debt"
        );
    }
}

/// What the expiry protects, on GCRA (no window boundary can refill it meanwhile):
/// once the old quota's expiry (about a second) has passed, the 10 units spent before
/// the change still owe about a minute, so nothing passes, as in memory.
#[tokio::test]
async fn the_units_spent_before_the_change_still_count_after_the_old_expiry() {
    let server = RedisServer::start();
    let ttl = ttl_after_the_change(&server, RemoteAlgorithm::Gcra, "kept", false).await;
    // Past the expiry the key had under 10 a second (1.1 s); another instance,
    // already on the new quota, then asks.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let other = store(&server, RemoteAlgorithm::Gcra);
    RateStore::<str>::set_quota(&other, ten_per(Duration::from_secs(60)));
    let mut admitted = 0;
    for _ in 0..10 {
        if other.check("kept", 1).await.expect("decision").is_allowed() {
            admitted += 1;
        }
    }
    assert_eq!(
        admitted, 0,
        "a full bucket after the old expiry (the key's time to live was {ttl} ms)"
    );
}

/// A throttle's drain that is the first call to read a bucket after a change to a
/// longer interval, and finds it owing more than the drain asks, writes the bucket
/// back with the expiry the new interval needs (`drain.lua` re-expresses it as
/// `gcra.lua` does): otherwise the key kept the old quota's expiry, and the debt
/// the drain was to keep was gone a second later.
#[tokio::test]
async fn a_drain_that_finds_the_bucket_deeper_keeps_the_key_alive() {
    let server = RedisServer::start();
    let store = store(&server, RemoteAlgorithm::Gcra);
    for _ in 0..10 {
        assert!(store
            .check("drained", 1)
            .await
            .expect("decision")
            .is_allowed());
    }
    RateStore::<str>::set_quota(&store, ten_per(Duration::from_secs(60)));
    store.drain_until("drained", tokio::time::Instant::now());
    let start = std::time::Instant::now();
    while store.pending_drains() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            store.stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(store.stats().drain_failures, 0, "{:?}", store.stats());
    let ttl: i64 = server.cmd(&["PTTL", "q:drained"]);
    assert!(ttl > 3_000, "the key expires in {ttl} ms, before its debt");
}
