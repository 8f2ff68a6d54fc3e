//! A drain that waits in flight (a stalled server: SIGSTOP, a fork stall, a long
//! script ahead of it) keeps its point. The drain script used to date the drain by
//! an offset from the server's now when it ran, so a drain built at `t0` and run 3 s
//! later held the bucket 3 s longer than the core's `Gcra::drain_until` (review 9,
//! finding 1: 1 unit at `t0 + 3.3 s` where 4 fit). A drain task now first asks the
//! key's server for its clock and sends the point on that clock; the script takes the
//! earlier of that point and its offset-from-now.
//!
//! Guaranteed (the task path): a drain is never dated later than its point by more
//! than a probe's round trip, however long it waits in flight; never earlier. A
//! drain sent ahead of a decision is dated by its offset alone (documented in
//! `drain_ahead`).

mod support;

use std::time::Duration;
use support::RedisServer;
use tokio::time::Instant;
use tower_ratelimit_core::store::RateStore;
use tower_ratelimit_core::Quota;
use tower_ratelimit_redis::breaker::BreakerConfig;
use tower_ratelimit_redis::RedisStore;

#[tokio::test]
async fn a_drain_sent_to_a_stalled_server_keeps_its_point() {
    let server = RedisServer::start();
    let quota = Quota::new(10, Duration::from_secs(10))
        .and_then(|q| q.with_burst(10))
        .expect("quota");
    let store = RedisStore::builder(quota)
        .prefix("late:")
        .timeout(Duration::from_millis(50))
        // Keep the breaker shut so the checks below ask Redis, not the policy.
        .breaker(BreakerConfig {
            failures_to_open: 1_000,
            open_for: Duration::from_millis(1),
        })
        .connect(server.url())
        .expect("store");
    // Connected, and the drain script loaded (as after any earlier throttle): a
    // stalled EVALSHA then runs as sent, without the NOSCRIPT round trip.
    assert!(store.check("warm", 1).await.expect("decision").is_allowed());
    store.drain_until("warm", Instant::now());
    while store.pending_drains() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.freeze();
    let t0 = Instant::now();
    // The task's send times out after 50 ms, but what it wrote stays in the socket
    // and runs at the thaw.
    store.drain_until("k", t0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.thaw();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ttl: i64 = server.cmd(&["PTTL", "late:k"]);
    eprintln!("after thaw: PTTL {ttl} ms, {:?}", store.stats());
    // In memory (core's Gcra::drain_until as of t0): 4 units fit at t0 + 3.3 s.
    let mut admitted = 0;
    for _ in 0..20 {
        if store.check("k", 1).await.expect("decision").is_allowed() {
            admitted += 1;
        }
    }
    assert!(
        admitted >= 3,
        "drained as of t0 leaves 4 units at t0 + 3.3 s; admitted {admitted} ({:?})",
        store.stats()
    );
}

/// The drain script itself: the point on the server's clock wins over an offset that
/// a wait in flight made later, and an offset wins over a point that is later.
#[tokio::test]
async fn the_script_dates_a_drain_by_the_earlier_of_its_point_and_its_offset() {
    let server = RedisServer::start();
    let client = redis::Client::open(server.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let source = include_str!("../src/script/drain.lua");
    let (seconds, micros): (i64, i64) = redis::cmd("TIME")
        .query_async(&mut conn)
        .await
        .expect("TIME");
    let clock = (seconds * 1_000_000 + micros) as f64;
    // One unit a second, burst 10: a drain owes 9 s at its point.
    let drain = |key: &str, offset: f64, point: f64| {
        let mut packed = Vec::new();
        for v in [offset, 9e6, 1e6, point] {
            packed.extend_from_slice(&v.to_le_bytes());
        }
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(source).arg(1).arg(key).arg(packed);
        cmd
    };
    let pttl = |key: &'static str| {
        let mut cmd = redis::cmd("PTTL");
        cmd.arg(key);
        cmd
    };
    let run = |cmd: redis::Cmd| {
        let mut c = conn.clone();
        async move {
            cmd.query_async::<redis::Value>(&mut c)
                .await
                .expect("drain")
        }
    };
    // Offset 0 (now), point 3 s ago: dated 3 s ago, so 6 s owed (+1 s expiry).
    run(drain("late", 0.0, clock - 3e6)).await;
    // Offset 3 s ago, point now (later): the offset's, 6 s owed.
    run(drain("early", -3e6, clock)).await;
    // No point: the offset alone, 9 s owed.
    run(drain("plain", 0.0, 0.0)).await;
    // A probe writes nothing and answers the clock.
    let probe = run(drain("probe", 0.0, -1.0)).await;
    let mut ttls = Vec::new();
    for key in ["late", "early", "plain", "probe"] {
        let ttl: i64 = pttl(key).query_async(&mut conn).await.expect("PTTL");
        ttls.push(ttl);
    }
    let within = |ttl: i64, ms: i64| (ms - 300..=ms + 50).contains(&ttl);
    assert!(within(ttls[0], 7_000), "{ttls:?}");
    assert!(within(ttls[1], 7_000), "{ttls:?}");
    assert!(within(ttls[2], 10_000), "{ttls:?}");
    assert_eq!(ttls[3], -2, "a probe wrote the key");
    let redis::Value::Int(c) = probe else {
        panic!("probe reply {probe:?}")
    };
    assert!(c as f64 >= clock, "{c} {clock}");
}
