//! A connection that stops answering without an error is replaced. The store's
//! `ConnectionManager` reconnects when its connection fails, not when it goes silent,
//! and the store's per-call timeout drops each call before anything fails: after a
//! failover that left the old connection open and silent (a vanished host, a proxy
//! whose backend died), every call timed out and went to the failure policy, for as
//! long as the operating system retransmits (about 15 minutes on Linux's defaults)
//! or for good behind a proxy. Measured before the fix: no call decided by Redis in
//! 10 s after such a failover.
//!
//! Guaranteed: once calls have timed out until the breaker opened, the store makes a
//! fresh connection, and the breaker's next probe reaches wherever the URL now leads;
//! a server that merely stalls costs at most one new connection per `open_for`.
//!
//! Real redis-servers behind a proxy on loopback; real time (Redis keeps its own).

mod support;

use std::time::{Duration, Instant};
use support::silent_proxy::SilentProxy;
use support::RedisServer;
use tower_ratelimit_core::store::RateStore;
use tower_ratelimit_core::Quota;
use tower_ratelimit_redis::RedisStore;

fn quota() -> Quota {
    Quota::per_second(1_000).expect("quota")
}

fn address(server: &RedisServer) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], server.port()))
}

/// Checks every 10 ms until Redis decides a call again; the time that took.
async fn until_redis_decides(store: &RedisStore, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let remote = store.stats().remote_decisions;
    while start.elapsed() < within {
        let _ = store.check("k", 1).await;
        if store.stats().remote_decisions > remote {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test]
async fn a_silent_connection_is_replaced_after_a_failover() {
    let first = RedisServer::start();
    let second = RedisServer::start();
    let proxy = SilentProxy::start(address(&first)).await;
    let store = RedisStore::builder(quota())
        .prefix("silent:")
        .connect(proxy.url())
        .expect("store");
    assert!(store.check("k", 1).await.expect("decision").is_allowed());
    proxy.fail_over(address(&second));
    let recovered = until_redis_decides(&store, Duration::from_secs(10)).await;
    let stats = store.stats();
    eprintln!("failover: recovered after {recovered:?}: {stats:?}");
    assert!(
        recovered.is_some(),
        "no call decided by Redis within 10 s of the failover: {stats:?}"
    );
    assert!(stats.reconnects >= 1, "{stats:?}");
    // The new connection reached the new server.
    let keys: i64 = second.cmd(&["DBSIZE"]);
    assert_eq!(keys, 1);
}

/// The new connection takes longer to make than a call's timeout (150 ms against
/// 50 ms; the manager gives an attempt 250 ms): a replacement connects in the
/// background, so the next probe finds it made, rather than each probe polling a
/// fresh attempt for one timeout and the next replacement starting it over.
#[tokio::test]
async fn a_replacement_slower_to_connect_than_the_timeout_still_connects() {
    let first = RedisServer::start();
    let second = RedisServer::start();
    let proxy = SilentProxy::start(address(&first)).await;
    let store = RedisStore::builder(quota())
        .prefix("slow:")
        .connect(proxy.url())
        .expect("store");
    assert!(store.check("k", 1).await.expect("decision").is_allowed());
    proxy.fail_over_slowly(address(&second), Duration::from_millis(150));
    let recovered = until_redis_decides(&store, Duration::from_secs(10)).await;
    let stats = store.stats();
    eprintln!("slow failover: recovered after {recovered:?}: {stats:?}");
    assert!(
        recovered.is_some(),
        "no call decided by Redis within 10 s of the failover: {stats:?}"
    );
}

/// A server that stalls (SIGSTOP) and comes back: the store replaces its
/// connection at most once per `open_for` (500 ms by default) meanwhile, recovers,
/// and leaves no pile of connections on the server.
#[tokio::test]
async fn a_stalled_server_costs_at_most_one_connection_per_open_period() {
    let server = RedisServer::start();
    let store = RedisStore::builder(quota())
        .prefix("stalled:")
        .connect(server.url())
        .expect("store");
    assert!(store.check("k", 1).await.expect("decision").is_allowed());
    server.freeze();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        let _ = store.check("k", 1).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let stalled = start.elapsed();
    server.thaw();
    let recovered = until_redis_decides(&store, Duration::from_secs(10)).await;
    let stats = store.stats();
    eprintln!("stall of {stalled:?}: recovered after {recovered:?}: {stats:?}");
    assert!(recovered.is_some(), "{stats:?}");
    let most = stalled.as_millis() / 500 + 2;
    assert!(
        stats.reconnects >= 1 && u128::from(stats.reconnects) <= most,
        "{} reconnects over {stalled:?}: {stats:?}",
        stats.reconnects
    );
    // Replaced connections close once their last call is gone.
    let clients = loop {
        let info: String = server.cmd(&["INFO", "clients"]);
        let clients = info
            .lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        if clients <= 2 || start.elapsed() > Duration::from_secs(15) {
            break clients;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("{clients} clients connected after the stall");
    // This store's connection and the one asking.
    assert!(clients <= 2, "{clients} clients connected after the stall");
}
