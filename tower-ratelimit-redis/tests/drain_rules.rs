//! The drain's rules, each guarded against the mutant that got through the other
//! drain tests (review 9, finding 7; each test names it):
//!
//! * the latest drain *point* wins over the latest call (M01);
//! * a drain task's slot is freed for later drains, so the 9th drain still reaches
//!   the other instances (M14);
//! * the drain script replaces an untrusted foreign TAT (a far-future value with no
//!   expiry, which gcra.lua reads as a full bucket) (M07);
//! * it reads the 8-byte layout an earlier version wrote, and never lowers its debt
//!   (M09);
//! * it rescales a bucket written under another interval before comparing (M06).

mod support;

use std::time::Duration;
use support::RedisServer;
use tokio::time::Instant;
use tower_ratelimit_core::store::{Decision, RateStore};
use tower_ratelimit_core::Quota;
use tower_ratelimit_redis::RedisStore;

/// One unit a second, burst 10.
fn slow() -> Quota {
    Quota::new(10, Duration::from_secs(10))
        .and_then(|q| q.with_burst(10))
        .expect("quota")
}

fn store(server: &RedisServer, quota: Quota) -> RedisStore {
    RedisStore::builder(quota)
        .prefix("kill:")
        .timeout(Duration::from_secs(2))
        .negative_cache(0)
        .connect(server.url())
        .expect("store")
}

async fn admitted<K: ?Sized>(store: &impl RateStore<K>, key: &K, n: usize) -> usize {
    let mut admitted = 0;
    for _ in 0..n {
        if store.check(key, 1).await.expect("decision").is_allowed() {
            admitted += 1;
        }
    }
    admitted
}

async fn settled(store: &RedisStore) {
    let start = std::time::Instant::now();
    while store.pending_drains() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            store.stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Guards against M01 (`entry.at = at`: the latest *call* wins instead of the latest *point*):
/// an earlier drain noted after a later one must not move the record back.
#[tokio::test]
async fn an_earlier_drain_noted_later_keeps_the_later_point() {
    let server = RedisServer::start();
    let store = store(&server, slow());
    let now = Instant::now();
    store.drain_until("k", now + Duration::from_millis(400));
    store.drain_until("k", now);
    // As of now + 400 ms: nothing before it.
    assert!(!store.check("k", 1).await.expect("decision").is_allowed());
}

/// Guards against M14 (a task's slot never freed): after 8 drains, one at a time, each
/// finished, the 9th must still get a task and reach the other instances.
#[tokio::test]
async fn task_slots_are_freed_for_later_drains() {
    let server = RedisServer::start();
    let (a, b) = (store(&server, slow()), store(&server, slow()));
    for i in 0..9 {
        a.drain_until(format!("k{i}").as_str(), Instant::now());
        settled(&a).await;
    }
    assert_eq!(admitted(&b, "k8", 20).await, 1);
}

/// Guards against M07 (drain.lua trusts any TAT): a foreign far-future TAT on a key without
/// an expiry is a full bucket to gcra.lua; the drain must replace it, not keep it.
#[tokio::test]
async fn a_drain_replaces_an_untrusted_foreign_tat() {
    let server = RedisServer::start();
    let store = store(&server, slow());
    // TAT 10^17 us (3,000 years after the epoch) and interval 1 s, no expiry.
    let mut value = Vec::new();
    value.extend_from_slice(&1e17f64.to_le_bytes());
    value.extend_from_slice(&1e6f64.to_le_bytes());
    let mut connection = redis::Client::open(server.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: () = redis::cmd("SET")
        .arg("kill:foreign")
        .arg(value)
        .query_async(&mut connection)
        .await
        .expect("set");
    store.drain_until("foreign", Instant::now());
    settled(&store).await;
    // Drained: one unit, not the full bucket gcra.lua would read.
    assert_eq!(admitted(&store, "foreign", 20).await, 1);
    let ttl: i64 = server.cmd(&["PTTL", "kill:foreign"]);
    // The drained TAT (9 s) plus the admitted unit and one interval: not 3,000 years.
    assert!(ttl > 0 && ttl <= 11_100, "{ttl}");
}

/// Guards against M09 (drain.lua ignores the 8-byte layout): a bucket an earlier version
/// wrote (TAT alone) that owes more than the drain must keep its debt.
#[tokio::test]
async fn a_drain_reads_the_eight_byte_layout() {
    let server = RedisServer::start();
    let store = store(&server, slow());
    let mut connection = redis::Client::open(server.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let (secs, micros): (u64, u64) = redis::cmd("TIME")
        .query_async::<(String, String)>(&mut connection)
        .await
        .map(|(s, u)| (s.parse().unwrap_or(0), u.parse().unwrap_or(0)))
        .expect("time");
    // Owes 9.5 s (half a unit left after a drain's 9 s would be more).
    let tat = (secs * 1_000_000 + micros + 9_500_000) as f64;
    let _: () = redis::cmd("SET")
        .arg("kill:legacy")
        .arg(&tat.to_le_bytes()[..])
        .arg("PX")
        .arg(20_000)
        .query_async(&mut connection)
        .await
        .expect("set");
    store.drain_until("legacy", Instant::now());
    settled(&store).await;
    match store.check("legacy", 1).await.expect("decision") {
        Decision::Denied { retry_after, .. } => {
            assert!(retry_after >= Duration::from_millis(300), "{retry_after:?}")
        }
        other => panic!("the drain lowered a legacy bucket's debt: {other:?}"),
    }
}

/// Guards against M06 (drain.lua compares the TAT without rescaling it to the current
/// interval): a bucket written at 1 s a unit owing 5 units owes 0.5 s at 100 ms a
/// unit; drained as of now (burst 10: 0.9 s) it gives one unit. Unscaled, the 5 s
/// TAT looks deeper than the drain, nothing is written, and gcra.lua then rescales
/// it to 0.5 s: 5 units.
#[tokio::test]
async fn a_drain_rescales_a_bucket_written_under_another_quota() {
    let server = RedisServer::start();
    let old = store(&server, slow());
    assert_eq!(admitted(&old, "q", 5).await, 5);
    let fast = Quota::new(10, Duration::from_secs(1))
        .and_then(|q| q.with_burst(10))
        .expect("quota");
    let new = store(&server, fast);
    new.drain_until("q", Instant::now());
    settled(&new).await;
    assert_eq!(admitted(&new, "q", 20).await, 1);
}
