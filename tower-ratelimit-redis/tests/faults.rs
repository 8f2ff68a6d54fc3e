//! Faults against a real `redis-server`: the server killed or frozen mid-run. Each
//! failure policy answers as documented, no decision waits much beyond the per-call
//! timeout (the circuit breaker makes most of them instant), and the store recovers
//! by itself when the server is back on the same port.
//!
//! Real time is unavoidable (Redis's clock, real sockets). The bounds on latency are
//! the timeout plus a generous scheduling allowance; the point is that an outage does
//! not cost the connection's default of seconds per request.

mod support;

use std::time::{Duration, Instant};
use support::RedisServer;
use tower_ratelimit_core::error::StoreError;
use tower_ratelimit_core::store::{Decision, RateStore};
use tower_ratelimit_core::Quota;
use tower_ratelimit_redis::breaker::BreakerConfig;
use tower_ratelimit_redis::error::Unavailable;
use tower_ratelimit_redis::{FailurePolicy, RedisStore};

const TIMEOUT: Duration = Duration::from_millis(50);
/// Scheduling allowance on a loaded 2-core CI machine (a reviewer's calls, 64 tasks at
/// once, ended at most 4.4 ms past the timeout); a timeout twice as long as configured
/// would not fit it.
const SLACK: Duration = Duration::from_millis(45);

#[derive(Debug, Default)]
struct Tally {
    calls: u32,
    allowed: u32,
    denied: u32,
    unavailable: u32,
    slowest: Duration,
}

fn store(server: &RedisServer, policy: FailurePolicy) -> RedisStore {
    RedisStore::builder(
        Quota::per_second(100)
            .and_then(|q| q.with_burst(10))
            .expect("quota"),
    )
    .prefix("fault:")
    .timeout(TIMEOUT)
    .breaker(BreakerConfig {
        failures_to_open: 3,
        open_for: Duration::from_millis(200),
    })
    .failure_policy(policy)
    .connect(server.url())
    .expect("store")
}

/// Decides on `key` every 2 ms for `run`, timing each call.
async fn hammer(store: &RedisStore, key: &str, run: Duration) -> Tally {
    let mut tally = Tally::default();
    let start = Instant::now();
    while start.elapsed() < run {
        let before = Instant::now();
        let outcome = store.check(key, 1).await;
        tally.slowest = tally.slowest.max(before.elapsed());
        tally.calls += 1;
        match outcome {
            Ok(Decision::Allowed { .. }) => tally.allowed += 1,
            Ok(Decision::Denied { .. }) => tally.denied += 1,
            Err(StoreError::Unavailable(cause)) => {
                assert!(cause.downcast_ref::<Unavailable>().is_some(), "{cause}");
                tally.unavailable += 1;
            }
            Err(other) => panic!("unexpected error {other}"),
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tally
}

/// Waits until a decision is made by Redis again, with every call bounded.
async fn recovers(store: &RedisStore) {
    let remote = store.stats().remote_decisions;
    let start = Instant::now();
    while store.stats().remote_decisions == remote {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no recovery within 10 s: {:?}",
            store.stats()
        );
        let before = Instant::now();
        let _ = store.check("recovery", 1).await;
        assert!(
            before.elapsed() <= TIMEOUT + SLACK,
            "a call took {:?}",
            before.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!store.is_degraded());
}

fn assert_outage_was_cheap(store: &RedisStore, tally: &Tally) {
    let stats = store.stats();
    eprintln!("outage: {tally:?}, {stats:?}");
    assert!(
        tally.slowest <= TIMEOUT + SLACK,
        "slowest call {:?}",
        tally.slowest
    );
    assert!(stats.short_circuited > 0, "{stats:?}");
    // The breaker lets one probe through per 200 ms: most calls never touch the network.
    assert!(
        stats.remote_errors * 4 < u64::from(tally.calls),
        "{stats:?} over {} calls",
        tally.calls
    );
}

#[tokio::test]
async fn fail_open_admits_everything_while_redis_is_down_and_recovers() {
    let mut server = RedisServer::start();
    let store = store(&server, FailurePolicy::FailOpen);
    assert!(store.check("k", 1).await.expect("decision").is_allowed());
    server.kill();
    let tally = hammer(&store, "k", Duration::from_secs(1)).await;
    assert_eq!(tally.allowed, tally.calls, "{tally:?}");
    assert_outage_was_cheap(&store, &tally);
    server.restart();
    recovers(&store).await;
}

#[tokio::test]
async fn fail_closed_reports_unavailable_never_a_denial() {
    let mut server = RedisServer::start();
    let store = store(&server, FailurePolicy::FailClosed);
    assert!(store.check("k", 1).await.expect("decision").is_allowed());
    server.kill();
    let tally = hammer(&store, "k", Duration::from_secs(1)).await;
    assert_eq!(tally.unavailable, tally.calls, "{tally:?}");
    assert_eq!(tally.denied, 0);
    assert_outage_was_cheap(&store, &tally);
    server.restart();
    recovers(&store).await;
    assert!(store.check("k", 1).await.is_ok());
}

#[tokio::test]
async fn local_fallback_limits_at_its_share_of_the_rate() {
    let mut server = RedisServer::start();
    // Half of 100/s with burst 10: 50/s, burst 5.
    let store = store(&server, FailurePolicy::local(0.5));
    assert!(store.check("k", 1).await.expect("decision").is_allowed());
    server.kill();
    let start = Instant::now();
    let tally = hammer(&store, "k", Duration::from_secs(1)).await;
    let elapsed = start.elapsed();
    let bound = 5 + (elapsed.as_millis() / 20) as u32;
    assert!(tally.allowed <= bound, "{tally:?} over bound {bound}");
    assert!(tally.allowed >= 5, "{tally:?}");
    assert!(tally.denied > 0, "{tally:?}");
    assert_eq!(tally.unavailable, 0);
    assert_outage_was_cheap(&store, &tally);
    // Each key has its own local bucket: "k" is spent, another key is not.
    assert!(store
        .check("other", 5)
        .await
        .expect("decision")
        .is_allowed());
    // A cost within the shared burst (10) but over the local one (5) cannot pass
    // during the outage: that is Redis's unavailability, not the caller's error.
    assert_eq!(RateStore::<str>::max_cost(&store, "fresh"), 10);
    match store.check("fresh", 8).await {
        Err(StoreError::Unavailable(cause)) => assert!(
            matches!(
                cause.downcast_ref::<Unavailable>(),
                Some(Unavailable::OverLocalBurst { local_burst: 5, .. })
            ),
            "{cause}"
        ),
        other => panic!("expected unavailable, got {other:?}"),
    }
    server.restart();
    recovers(&store).await;
}

#[tokio::test]
async fn a_frozen_server_costs_the_timeout_a_few_times_then_nothing() {
    let server = RedisServer::start();
    let store = store(&server, FailurePolicy::FailOpen);
    assert!(store.check("k", 1).await.expect("decision").is_allowed());
    server.freeze();
    let tally = hammer(&store, "k", Duration::from_millis(800)).await;
    assert_eq!(tally.allowed, tally.calls, "{tally:?}");
    assert_outage_was_cheap(&store, &tally);
    let stats = store.stats();
    assert!(
        stats.remote_errors >= 3,
        "the first calls timed out: {stats:?}"
    );
    server.thaw();
    recovers(&store).await;
}

/// While Redis hangs, many callers at once: each call still ends within the timeout,
/// under every policy, and the store recovers when the server answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_costs_each_of_many_callers_at_most_the_timeout() {
    let server = RedisServer::start();
    for policy in [
        FailurePolicy::FailOpen,
        FailurePolicy::FailClosed,
        FailurePolicy::local(0.5),
    ] {
        let store = store(&server, policy);
        assert!(store.check("warm", 1).await.expect("decision").is_allowed());
        server.freeze();
        let callers: Vec<_> = (0..32)
            .map(|caller| {
                let store = store.clone();
                tokio::spawn(async move {
                    let key = format!("k{}", caller % 4);
                    hammer(&store, &key, Duration::from_millis(500)).await
                })
            })
            .collect();
        let mut slowest = Duration::ZERO;
        for caller in callers {
            slowest = slowest.max(caller.await.expect("caller").slowest);
        }
        server.thaw();
        eprintln!(
            "{policy:?}: slowest of 32 callers {slowest:?}, {:?}",
            store.stats()
        );
        assert!(
            slowest <= TIMEOUT + SLACK,
            "{policy:?}: a call took {slowest:?}"
        );
        recovers(&store).await;
    }
}

/// A lease larger than the local fallback's share of the burst: while Redis is down
/// the lease cannot be lent whole, and the call asks for what it needs instead of
/// failing.
#[tokio::test]
async fn a_lease_over_the_local_share_asks_for_what_it_needs_while_redis_is_down() {
    use tower_ratelimit_redis::LeasedStore;
    let server = RedisServer::start();
    // 100/s, burst 10; the local fallback at a quarter: 25/s, burst 2.
    let store = store(&server, FailurePolicy::local(0.25));
    let leased = LeasedStore::new(store, 5, Duration::from_secs(1));
    let mut server = server;
    server.kill();
    let mut allowed = 0;
    for _ in 0..4 {
        match leased.check(&(), 1).await {
            Ok(decision) if decision.is_allowed() => allowed += 1,
            Ok(_) => {}
            Err(e) => panic!("a leased call failed while the fallback could answer: {e}"),
        }
    }
    // At least the local burst of 2, one unit per call (more if the failed calls took
    // long enough for the local bucket to refill: 40 ms a unit).
    assert!(
        allowed >= 2,
        "{allowed} allowed; {:?}",
        leased.inner().stats()
    );
}
