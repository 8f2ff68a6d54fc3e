//! A drain task dropped before its end (its runtime shut down, as a sync wrapper's
//! short-lived `block_on` does) gives its key up: a later drain of the key gets a task
//! again. Before, the key's record stayed marked as sent by a task, and no task ever
//! sent a drain of that key again (review 9, finding 4).
//!
//! Guaranteed: a later drain of the key reaches the other instances sharing it.

mod support;

use std::time::Duration;
use support::RedisServer;
use tokio::time::Instant;
use tower_ratelimit_core::store::RateStore;
use tower_ratelimit_core::Quota;
use tower_ratelimit_redis::RedisStore;

fn store(server: &RedisServer) -> RedisStore {
    let quota = Quota::new(10, Duration::from_secs(10))
        .and_then(|q| q.with_burst(10))
        .expect("quota");
    RedisStore::builder(quota)
        .prefix("stuck:")
        .timeout(Duration::from_secs(2))
        .connect(server.url())
        .expect("store")
}

#[test]
fn a_drain_after_a_dropped_task_still_reaches_the_other_instances() {
    let server = RedisServer::start();
    let main = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (a, b) = main.block_on(async { (store(&server), store(&server)) });
    // A short-lived runtime (a sync wrapper's block_on): the task it is handed is
    // dropped unpolled when it shuts down.
    {
        let brief = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        brief.block_on(async { a.drain_until("k", Instant::now()) });
    }
    main.block_on(async {
        // A later throttle of the same key, on a live runtime.
        a.drain_until("k", Instant::now());
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut admitted = 0;
        for _ in 0..20 {
            if b.check("k", 1).await.expect("decision").is_allowed() {
                admitted += 1;
            }
        }
        assert_eq!(
            admitted,
            1,
            "no task sent the second drain ({} pending, {:?})",
            a.pending_drains(),
            a.stats()
        );
    });
}
