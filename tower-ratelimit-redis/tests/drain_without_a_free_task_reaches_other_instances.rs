//! A drain that found no free task slot (more keys drained at once than the 8 task
//! slots) still reaches the other instances sharing its key: a task that finishes its
//! own key takes a record no task holds. Before, such a drain was sent only ahead of
//! this store's next decision on the key, and another instance kept the whole burst
//! meanwhile (review 9, finding 2: B was admitted 10, not 1).
//!
//! Guaranteed: while Redis answers, every recorded drain is sent by a task, whether or
//! not this store decides its key again.

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
        .prefix("slots:")
        .timeout(Duration::from_secs(2))
        .connect(server.url())
        .expect("store")
}

#[tokio::test]
async fn a_drain_that_found_no_task_slot_reaches_the_other_instances() {
    let server = RedisServer::start();
    let (a, b) = (store(&server), store(&server));
    assert!(a.check("warm", 1).await.expect("decision").is_allowed());
    // Nine throttles end at once (no await in between): eight keys get a task.
    let now = Instant::now();
    for i in 0..9 {
        a.drain_until(format!("k{i}").as_str(), now);
    }
    // Every task has long finished.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut admitted = 0;
    for _ in 0..20 {
        if b.check("k8", 1).await.expect("decision").is_allowed() {
            admitted += 1;
        }
    }
    assert_eq!(
        admitted,
        1,
        "B spent the burst A's throttle drained (A still holds {} pending, {:?})",
        a.pending_drains(),
        a.stats()
    );
}
