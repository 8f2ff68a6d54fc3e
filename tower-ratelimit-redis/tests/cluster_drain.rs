//! Drains on a Redis Cluster (three masters, through the async cluster client): each
//! drain is one `EVALSHA` on the bucket's own key, so it routes to the key's node,
//! and a drain task's probe for the server's clock asks that same node (a Cluster's
//! nodes' clocks never mix). After a `SCRIPT FLUSH` on every node it answers
//! `NOSCRIPT` and runs again as an `EVAL`.
//!
//! Guaranteed: every key's drain reaches its node and empties its bucket, before and
//! after the flush.

mod support;

use futures_util::future::join_all;
use redis::cluster::ClusterClient;
use std::time::Duration;
use support::cluster::RedisCluster;
use tokio::time::Instant;
use tower_ratelimit_core::store::RateStore;
use tower_ratelimit_core::Quota;
use tower_ratelimit_redis::RedisStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drains_route_to_each_keys_node_and_survive_a_script_flush() {
    let cluster = RedisCluster::start(3);
    let client = ClusterClient::new(cluster.urls()).expect("cluster client");
    let connection = client.get_async_connection().await.expect("connect");
    // One unit an hour, burst 5.
    let quota = Quota::new(5, Duration::from_secs(5 * 3600))
        .and_then(|q| q.with_burst(5))
        .expect("quota");
    let store = RedisStore::builder(quota)
        .prefix("cd:")
        .timeout(Duration::from_secs(2))
        .negative_cache(0)
        .build(connection);
    // Rounds 0 and 1: the decisions send the drains ahead (racing the tasks); rounds
    // 2 and 3: the tasks alone (probe, then drain; 60 keys for 8 tasks, so finished
    // tasks take the rest). Rounds 1 and 3 follow a flush on every node.
    for round in 0..4 {
        if round % 2 == 1 {
            for node in cluster.nodes() {
                let _: () = node.cmd(&["SCRIPT", "FLUSH"]);
            }
        }
        let drains_before = store.stats().drains;
        let keys: Vec<String> = (0..60).map(|i| format!("r{round}-k{i}")).collect();
        for key in &keys {
            store.drain_until(key.as_str(), Instant::now());
        }
        if round >= 2 {
            let start = std::time::Instant::now();
            while store.pending_drains() > 0 {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "{:?}",
                    store.stats()
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        // Each key: one unit at the drain point, then an hour.
        let admitted = join_all(keys.iter().map(|key| async {
            let mut n = 0;
            for _ in 0..5 {
                n += u32::from(
                    store
                        .check(key.as_str(), 1)
                        .await
                        .expect("decision")
                        .is_allowed(),
                );
            }
            n
        }))
        .await;
        assert!(
            admitted.iter().all(|&n| n == 1),
            "round {round}: {admitted:?}"
        );
        assert_eq!(store.pending_drains(), 0);
        assert!(
            store.stats().drains >= drains_before + 60,
            "{:?}",
            store.stats()
        );
    }
    let stats = store.stats();
    assert_eq!(
        (stats.remote_errors, stats.drain_failures),
        (0, 0),
        "{stats:?}"
    );
}
