//! Keys that hold something this crate did not write (another algorithm's state under
//! a shared prefix, another tool's data), and calls a healthy server refuses: each
//! touches its own key only. A foreign value reads as a full bucket and is replaced
//! when units are taken, and no per-call error opens the circuit breaker that every
//! key shares.

mod support;

use std::time::Duration;
use support::RedisServer;
use tower_ratelimit_core::error::StoreError;
use tower_ratelimit_core::store::RateStore;
use tower_ratelimit_core::Quota;
use tower_ratelimit_redis::{FailurePolicy, RedisStore, RemoteAlgorithm};

fn store(url: String, algorithm: RemoteAlgorithm) -> RedisStore {
    RedisStore::builder(Quota::per_minute(5).unwrap())
        .prefix("t:")
        .algorithm(algorithm)
        .failure_policy(FailurePolicy::FailClosed)
        .timeout(Duration::from_secs(2))
        .connect(url)
        .expect("store")
}

const ALGORITHMS: [RemoteAlgorithm; 3] = [
    RemoteAlgorithm::Gcra,
    RemoteAlgorithm::FixedWindow,
    RemoteAlgorithm::SlidingWindow,
];

#[tokio::test]
async fn a_value_of_another_type_reads_as_a_full_bucket_and_is_replaced() {
    let server = RedisServer::start();
    for algorithm in ALGORITHMS {
        let store = store(server.url(), algorithm);
        // The other algorithms' state: a hash for GCRA, a string for the windows, and
        // a list for all.
        let _: () = server.cmd(&["HSET", "t:hash", "w", "1"]);
        let _: () = server.cmd(&["SET", "t:string", "12345678"]);
        let _: () = server.cmd(&["RPUSH", "t:list", "x"]);
        for key in ["hash", "string", "list"] {
            for _ in 0..5 {
                let decision = store.check(key, 1).await;
                assert!(
                    matches!(&decision, Ok(d) if d.is_allowed()),
                    "{algorithm:?} on a foreign {key}: {decision:?}"
                );
            }
            assert!(
                !store.check(key, 1).await.unwrap().is_allowed(),
                "{algorithm:?}: the replaced key limits as any other"
            );
            let ttl: i64 = server.cmd(&["PTTL", &format!("t:{key}")]);
            assert!(ttl > 0, "{algorithm:?}: the replaced {key} expires");
        }
        assert!(
            !store.is_degraded(),
            "{algorithm:?}: the breaker stayed closed"
        );
        assert_eq!(store.stats().remote_errors, 0);
        let _: () = server.cmd(&["FLUSHALL"]);
    }
}

#[tokio::test]
async fn eight_foreign_bytes_under_a_gcra_key_are_not_a_lockout() {
    let server = RedisServer::start();
    let store = store(server.url(), RemoteAlgorithm::Gcra);
    let _: () = server.cmd(&["SET", "t:client-1", "zzzzzzzz"]);
    assert!(store.check("client-1", 1).await.unwrap().is_allowed());
    let ttl: i64 = server.cmd(&["PTTL", "t:client-1"]);
    assert!(ttl > 0, "the key now expires when its bucket is full");
}

#[tokio::test]
async fn a_call_the_server_refuses_does_not_open_the_breaker_for_other_keys() {
    let server = RedisServer::start();
    // A user that may touch `t:allowed:*` only: a call on any other key is refused
    // (NOPERM) by a healthy server.
    let _: () = server.cmd(&[
        "ACL",
        "SETUSER",
        "limited",
        "on",
        ">secret",
        "~t:allowed:*",
        "+@all",
    ]);
    let url = format!("redis://limited:secret@127.0.0.1:{}/", server.port());
    for algorithm in ALGORITHMS {
        let store = store(url.clone(), algorithm);
        for _ in 0..10 {
            let refused = store.check("forbidden", 1).await;
            assert!(
                matches!(refused, Err(StoreError::Unavailable(_))),
                "{algorithm:?}: {refused:?}"
            );
        }
        assert!(!store.is_degraded(), "{algorithm:?}: one key's refusals");
        assert!(
            store.check("allowed:k", 1).await.unwrap().is_allowed(),
            "{algorithm:?}: other keys are still decided by Redis"
        );
        assert_eq!(store.stats().short_circuited, 0);
    }
}

/// A window hash booked further ahead than any quota allows, without an expiry (not
/// this crate's: its keys always expire): read as empty windows, not as a lockout for
/// three thousand years, and replaced with an expiring key when units are taken.
#[tokio::test]
async fn a_window_booked_millennia_ahead_without_an_expiry_is_foreign() {
    let server = RedisServer::start();
    for algorithm in [RemoteAlgorithm::FixedWindow, RemoteAlgorithm::SlidingWindow] {
        let store = store(server.url(), algorithm);
        let _: () = server.cmd(&[
            "HSET",
            "t:far",
            "w",
            "100000000000",
            "c",
            "0",
            "u",
            "60000000",
        ]);
        let decision = store.check("far", 1).await.expect("decision");
        assert!(decision.is_allowed(), "{algorithm:?}: {decision:?}");
        let ttl: i64 = server.cmd(&["PTTL", "t:far"]);
        assert!(ttl > 0, "{algorithm:?}: PTTL {ttl}");
        let _: () = server.cmd(&["DEL", "t:far"]);
    }
}
