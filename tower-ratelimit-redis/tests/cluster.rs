//! The store on a real Redis Cluster of three masters, through the `redis` crate's
//! async cluster client: each decision's one key routes its `EVALSHA` to the node
//! that owns the key's slot, so many keys spread over every node decide exactly as
//! on one server, and the script is loaded again on every node after a flush.
//!
//! Redis keeps its own clock, so this runs in real time; the quota refills one unit
//! every 12 minutes, so refill during the test cannot change a count.

mod support;

use futures_util::future::join_all;
use redis::cluster::ClusterClient;
use std::time::Duration;
use support::cluster::RedisCluster;
use tower_ratelimit_core::store::{Decision, RateStore};
use tower_ratelimit_core::Quota;
use tower_ratelimit_redis::RedisStore;

const KEYS: usize = 300;
const BURST: u64 = 5;

/// Spends one key's bucket with `calls` unit checks, returning the units admitted
/// and checking each answer's snapshot against the bucket's state.
async fn spend<C>(store: &RedisStore<C>, key: &str, calls: u64) -> u64
where
    RedisStore<C>: RateStore<str>,
{
    let mut admitted = 0;
    for _ in 0..calls {
        match store.check(key, 1).await.expect("decision") {
            Decision::Allowed { snapshot, wait } => {
                admitted += 1;
                assert!(wait.is_zero());
                assert_eq!(snapshot.limit, BURST);
                assert_eq!(snapshot.remaining, BURST - admitted, "key {key}");
            }
            Decision::Denied {
                retry_after,
                snapshot,
            } => {
                assert_eq!(snapshot.remaining, 0, "key {key}");
                // One unit every 720 s: the next one is (almost) a whole interval away.
                assert!(
                    retry_after > Duration::from_secs(700)
                        && retry_after <= Duration::from_secs(720),
                    "key {key}: retry after {retry_after:?}"
                );
            }
        }
    }
    admitted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_keys_decide_exactly_on_a_three_master_cluster() {
    let cluster = RedisCluster::start(3);
    let client = ClusterClient::new(cluster.urls()).expect("cluster client");
    let connection = client.get_async_connection().await.expect("connect");
    let quota = Quota::new(BURST, Duration::from_secs(3600))
        .and_then(|q| q.with_burst(BURST))
        .expect("quota");
    let store = RedisStore::builder(quota)
        .prefix("c:")
        .timeout(Duration::from_secs(2))
        // Every call goes to the server, so every call exercises the routing.
        .negative_cache(0)
        .build(connection);
    let keys: Vec<String> = (0..KEYS).map(|i| format!("client-{i}")).collect();

    // First round, all keys at once: exactly the burst per key, then denials.
    let admitted = join_all(keys.iter().map(|key| spend(&store, key, BURST + 2))).await;
    assert!(
        admitted.iter().all(|&n| n == BURST),
        "admitted per key: {admitted:?}"
    );

    // The keys are spread over every master, each on the node owning its slot (a
    // master refuses keys of slots it does not own, so a key stored on a node is
    // stored where it belongs).
    let per_node: Vec<i64> = cluster
        .nodes()
        .iter()
        .map(|node| node.cmd(&["DBSIZE"]))
        .collect();
    assert!(
        per_node.iter().all(|&n| n > 0),
        "keys per node: {per_node:?}"
    );
    assert_eq!(per_node.iter().sum::<i64>(), KEYS as i64);

    // A flush on every node: the next calls answer NOSCRIPT and run again as an EVAL
    // of the source (which caches it on that node), still within one decision each.
    for node in cluster.nodes() {
        let _: () = node.cmd(&["SCRIPT", "FLUSH"]);
    }
    let again = join_all(keys.iter().map(|key| spend(&store, key, 1))).await;
    assert!(again.iter().all(|&n| n == 0), "nothing refilled: {again:?}");

    // Fresh keys after the flush, and mixed costs: 3 + 2 fit the burst, 1 more does not.
    for i in 0..30 {
        let key = format!("fresh-{i}");
        assert!(store
            .check(&key[..], 3)
            .await
            .expect("decision")
            .is_allowed());
        assert!(store
            .check(&key[..], 2)
            .await
            .expect("decision")
            .is_allowed());
        assert!(!store
            .check(&key[..], 1)
            .await
            .expect("decision")
            .is_allowed());
    }

    // No MOVED, ASK, CROSSSLOT or NOSCRIPT surfaced as an error.
    let stats = store.stats();
    assert_eq!(stats.remote_errors, 0, "{stats:?}");
    assert_eq!(stats.policy_decisions, 0, "{stats:?}");
    assert_eq!(
        stats.remote_decisions,
        KEYS as u64 * (BURST + 2 + 1) + 30 * 3,
        "{stats:?}"
    );
}
