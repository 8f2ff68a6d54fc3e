//! A throttle drains the shared bucket in Redis, as it does in memory
//! (`RateStore::drain_until`): from the drain point one request may start, the next
//! an interval later, with no burst; every instance sharing the key sees it; a storm
//! of throttles spawns a bounded number of tasks; a frozen server holds no caller.
//!
//! Redis keeps its own clock, so these tests run in real time, with intervals of a
//! second (or windows of a day) so that nothing refills while a test counts.

mod support;

use std::time::Duration;
use support::RedisServer;
use tokio::time::Instant;
use tower_ratelimit_core::algorithm::{FixedWindow, SlidingCounter};
use tower_ratelimit_core::store::{MemoryStore, RateStore};
use tower_ratelimit_core::{Quota, RateLimiter};
use tower_ratelimit_redis::breaker::BreakerConfig;
use tower_ratelimit_redis::{FailurePolicy, LeasedStore, RedisStore, RemoteAlgorithm};

/// One unit a second, burst 10: a drained bucket gives one unit, then one a second.
fn slow() -> Quota {
    Quota::new(10, Duration::from_secs(10))
        .and_then(|q| q.with_burst(10))
        .expect("quota")
}

fn store(server: &RedisServer, algorithm: RemoteAlgorithm, quota: Quota) -> RedisStore {
    RedisStore::builder(quota)
        .algorithm(algorithm)
        .prefix("drain:")
        .timeout(Duration::from_secs(2))
        .connect(server.url())
        .expect("store")
}

/// How many of `n` checks of cost 1 on `key` pass, one after another.
async fn admitted<K: ?Sized>(store: &impl RateStore<K>, key: &K, n: usize) -> usize {
    let mut admitted = 0;
    for _ in 0..n {
        if store.check(key, 1).await.expect("decision").is_allowed() {
            admitted += 1;
        }
    }
    admitted
}

/// Waits (up to 5 s) until `done` holds.
async fn eventually(mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(5), "not within 5 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_drain_empties_the_gcra_bucket_as_of_its_instant() {
    let server = RedisServer::start();
    let store = store(&server, RemoteAlgorithm::Gcra, slow());
    // A full bucket, drained as of 300 ms from now.
    let until = Instant::now() + Duration::from_millis(300);
    store.drain_until("k", until);
    // Nothing before the drain point: the first unit is due at it.
    match store.check("k", 1).await.expect("decision") {
        tower_ratelimit_core::store::Decision::Denied { retry_after, .. } => assert!(
            retry_after > Duration::from_millis(100) && retry_after <= Duration::from_millis(300),
            "{retry_after:?}"
        ),
        other => panic!("admitted before the drain point: {other:?}"),
    }
    tokio::time::sleep_until(until).await;
    // One unit at the drain point, then the rate: without the drain, all 10.
    assert_eq!(admitted(&store, "k", 20).await, 1);
    match store.check("k", 1).await.expect("decision") {
        tower_ratelimit_core::store::Decision::Denied { retry_after, .. } => assert!(
            retry_after > Duration::from_millis(500) && retry_after <= Duration::from_secs(1),
            "{retry_after:?}"
        ),
        other => panic!("{other:?}"),
    }
    // A drain never fills: another key, half spent, drained as of now keeps its debt
    // where it owes more than the drain would leave.
    assert_eq!(admitted(&store, "spent", 10).await, 10);
    store.drain_until("spent", Instant::now());
    assert_eq!(admitted(&store, "spent", 5).await, 0);
    let stats = store.stats();
    assert!(stats.drains >= 2, "{stats:?}");
    assert_eq!(store.pending_drains(), 0);
}

/// Called outside any Tokio runtime, a drain spawns nothing (there is nowhere to run
/// a task) and waits for the key's next decision, which sends it first.
#[tokio::test]
async fn without_a_runtime_the_next_decision_sends_the_drain() {
    let server = RedisServer::start();
    let store = store(&server, RemoteAlgorithm::Gcra, slow());
    let outside = store.clone();
    std::thread::spawn(move || {
        assert!(tokio::runtime::Handle::try_current().is_err());
        outside.drain_until("k", Instant::now());
    })
    .join()
    .expect("thread");
    assert_eq!(store.pending_drains(), 1);
    assert_eq!(store.stats().drains, 0);
    // Without the drain, all 10.
    assert_eq!(admitted(&store, "k", 20).await, 1);
    assert_eq!(store.stats().drains, 1);
    assert_eq!(store.pending_drains(), 0);
}

/// A drain that waits (here: asked for with no runtime, so no task sends it) is sent
/// under the quota in force when it was asked for, as in memory, where the drain
/// happens at the throttle's end and a later quota change rescales what it left owing:
/// a burst cut from 10 to 2 meanwhile does not cut the 9 s it owes to 1 s.
#[tokio::test]
async fn a_drain_that_waits_keeps_the_quota_of_its_point() {
    let server = RedisServer::start();
    let store = store(&server, RemoteAlgorithm::Gcra, slow());
    let outside = store.clone();
    std::thread::spawn(move || outside.drain_until("q", Instant::now()))
        .join()
        .expect("thread");
    assert_eq!(store.pending_drains(), 1);
    let smaller = Quota::new(2, Duration::from_secs(2))
        .and_then(|q| q.with_burst(2))
        .expect("quota");
    RateStore::<str>::set_quota(&store, smaller);
    // The decision sends the drain first (under burst 10: 9 s owed, the key kept 10 s).
    let _ = store.peek("q", 1).await.expect("decision");
    assert_eq!((store.pending_drains(), store.stats().drains), (0, 1));
    let ttl: i64 = server.cmd(&["PTTL", "drain:q"]);
    assert!(ttl > 8_000, "drained under the new burst: PTTL {ttl} ms");
}

/// A drain point as far ahead as an `Instant` goes is sent clamped (142 years), and
/// holds the key without an error; a bucket drained past its debt is left alone.
#[tokio::test]
async fn a_drain_far_ahead_holds_the_key_without_error() {
    let server = RedisServer::start();
    let store = store(&server, RemoteAlgorithm::Gcra, slow());
    let far = Instant::now() + Duration::from_secs(200 * 365 * 86_400);
    store.drain_until("far", far);
    match store.check("far", 1).await.expect("decision") {
        tower_ratelimit_core::store::Decision::Denied { retry_after, .. } => assert!(
            retry_after > Duration::from_secs(100 * 365 * 86_400),
            "{retry_after:?}"
        ),
        other => panic!("{other:?}"),
    }
    let ttl: i64 = server.cmd(&["PTTL", "drain:far"]);
    assert!(ttl > 0, "{ttl}");
    let stats = store.stats();
    // Sent ahead of the check, and by the task: applied once or twice, never failed.
    assert!(stats.drains >= 1 && stats.drain_failures == 0, "{stats:?}");
}

/// Through the core's limiter: a throttle's end drains the bucket before the request
/// that notices it is decided (the drain goes ahead of that decision on the same
/// connection; a spawned task alone would lose the race and let a second request
/// start at once).
#[tokio::test]
async fn a_throttled_limiter_resumes_at_the_rate_not_in_a_burst() {
    let server = RedisServer::start();
    let store = store(&server, RemoteAlgorithm::Gcra, slow());
    let limiter = RateLimiter::from_store(store.clone());
    limiter.throttle_for(Duration::from_millis(200));
    assert!(!limiter.try_acquire(1).await.expect("decision").is_allowed());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut admitted = 0;
    for _ in 0..20 {
        if limiter.try_acquire(1).await.expect("decision").is_allowed() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 1, "{:?}", store.stats());
    // In wait mode the next unit comes an interval (1 s) after the first.
    let start = Instant::now();
    limiter.acquire(1).await.expect("acquire");
    assert!(
        start.elapsed() >= Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
}

/// Takes 2 units of `key`, drains it as of now, and counts what 10 more checks admit.
async fn after_a_drain<K: ?Sized>(store: &impl RateStore<K>, key: &K) -> (usize, usize) {
    let before = admitted(store, key, 2).await;
    store.drain_until(key, Instant::now());
    (before, admitted(store, key, 10).await)
}

/// The window algorithms keep their counts, as the core's in-memory windows do:
/// their count per period is their burst.
#[tokio::test]
async fn windows_keep_their_counts_as_the_cores_do() {
    let server = RedisServer::start();
    // 5 per day: no window ends while the test runs (but at midnight UTC).
    let quota = Quota::new(5, Duration::from_secs(86_400)).expect("quota");
    let in_memory = [
        after_a_drain(&MemoryStore::with_algorithm(FixedWindow, quota), &()).await,
        after_a_drain(&MemoryStore::with_algorithm(SlidingCounter, quota), &()).await,
    ];
    assert_eq!(in_memory, [(2, 3), (2, 3)]);
    for algorithm in [RemoteAlgorithm::FixedWindow, RemoteAlgorithm::SlidingWindow] {
        let redis = store(&server, algorithm, quota);
        let key = format!("{algorithm:?}");
        assert_eq!(
            after_a_drain(&redis, key.as_str()).await,
            (2, 3),
            "{algorithm:?}"
        );
        assert_eq!(redis.stats().drains, 0);
        assert_eq!(redis.pending_drains(), 0);
    }
}

/// Two stores are two instances (their own connections, caches and records): a
/// drain one of them sends is the other's too, without the first sending anything
/// more. The server refused the identity they share: from the drain point every
/// instance gets one unit, then the rate, and none a saved burst.
#[tokio::test]
async fn every_instance_sharing_the_key_sees_the_drain() {
    let server = RedisServer::start();
    let (a, b) = (
        store(&server, RemoteAlgorithm::Gcra, slow()),
        store(&server, RemoteAlgorithm::Gcra, slow()),
    );
    a.drain_until("shared", Instant::now());
    eventually(|| a.stats().drains == 1).await;
    assert_eq!(a.pending_drains(), 0);
    // B never drained anything: one unit, then the rate. Without the drain, 10.
    assert_eq!(admitted(&b, "shared", 20).await, 1);
    assert_eq!(b.stats().drains, 0);
    // And the other way round: what B drains, A sees.
    b.drain_until("other", Instant::now());
    eventually(|| b.stats().drains == 1).await;
    assert_eq!(admitted(&a, "other", 20).await, 1);
}

/// A leased store forfeits what it holds and drains the shared bucket.
#[tokio::test]
async fn a_leased_store_forfeits_its_units_and_drains_the_shared_bucket() {
    let server = RedisServer::start();
    let shared = store(&server, RemoteAlgorithm::Gcra, slow());
    let leased = LeasedStore::new(shared.clone(), 5, Duration::from_secs(60));
    assert!(leased.check(&(), 1).await.expect("decision").is_allowed());
    assert_eq!(leased.local_units().await, 4);
    leased.drain_until(&(), Instant::now());
    assert_eq!(leased.local_units().await, 0);
    // The lease took 5 of 10: the drain leaves one unit at its point. Without it, the
    // 4 held and the 5 left in Redis: 9.
    assert_eq!(admitted(&leased, &(), 20).await, 1);
    assert!(shared.stats().drains >= 1, "{:?}", shared.stats());
}

/// While Redis is down, the local fallback answers: its bucket is drained too.
#[tokio::test]
async fn the_local_fallback_is_drained_too() {
    let mut server = RedisServer::start();
    let store = RedisStore::builder(slow())
        .prefix("drain:")
        .timeout(Duration::from_millis(50))
        .failure_policy(FailurePolicy::local(1.0))
        .connect(server.url())
        .expect("store");
    server.kill();
    // The fallback (share 1: burst 10) holds the key once it has answered for it.
    assert!(store.check("k", 1).await.expect("decision").is_allowed());
    store.drain_until("k", Instant::now());
    // Without the drain, the 9 units left.
    assert_eq!(admitted(&store, "k", 20).await, 1);
    assert!(store.stats().policy_decisions >= 21);
}

/// A storm of throttles over many keys, against a live and then a frozen server:
/// every `drain_until` returns at once, the tasks in flight stay within a handful
/// over the runtime's own, and the records within their bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_throttles_spawns_a_bounded_number_of_tasks() {
    let server = RedisServer::start();
    let store = RedisStore::builder(slow())
        .prefix("storm:")
        .timeout(Duration::from_millis(50))
        .breaker(BreakerConfig {
            failures_to_open: 3,
            open_for: Duration::from_millis(200),
        })
        .connect(server.url())
        .expect("store");
    // Connected, so the connection's own tasks are counted in the baseline.
    assert!(store.check("warm", 1).await.expect("decision").is_allowed());
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let mut most = 0;
    let mut frozen_for = Duration::ZERO;
    for frozen in [false, true] {
        if frozen {
            server.freeze();
        }
        let start = std::time::Instant::now();
        for round in 0..20u32 {
            for i in 0..5_000u32 {
                // Keys drained over and over, and more of them than records kept.
                let key = format!("{}", (i * 7 + round) % 3_000);
                store.drain_until(key.as_str(), Instant::now());
                if i % 100 == 0 {
                    most = most.max(metrics.num_alive_tasks());
                }
            }
            tokio::task::yield_now().await;
        }
        if frozen {
            frozen_for = start.elapsed();
        }
        assert!(store.pending_drains() <= 1024, "{}", store.pending_drains());
    }
    server.thaw();
    let stats = store.stats();
    eprintln!(
        "storm: baseline {baseline} tasks, most {most}, 100,000 drains against a frozen \
         server in {frozen_for:?}, {stats:?}"
    );
    // MAX_TASKS (8) drain tasks at most: a task's slot is freed as its future is
    // dropped, a moment before the runtime stops counting it, so at most twice that
    // are ever counted (9 seen), against 200,000 throttles.
    assert!(
        most <= baseline + 16,
        "{most} tasks alive, {baseline} before"
    );
    assert!(stats.drains > 0 && stats.drains_dropped > 0, "{stats:?}");
    // Had any of them waited for the frozen server, they would have taken a 50 ms
    // timeout each: 100,000 of them, well over an hour.
    assert!(frozen_for < Duration::from_secs(10), "{frozen_for:?}");
    // Once the storm is over, the tasks end.
    eventually(|| metrics.num_alive_tasks() <= baseline).await;
}

/// A frozen server holds the throttle's end no longer than a decision's timeout: the
/// drain sent ahead of the decision shares its timeout, the failure policy answers,
/// and the drain stays pending until the server answers again.
#[tokio::test]
async fn a_frozen_server_does_not_hold_the_throttle_path() {
    let server = RedisServer::start();
    let timeout = Duration::from_millis(50);
    let store = RedisStore::builder(slow())
        .prefix("frozen:")
        .timeout(timeout)
        .connect(server.url())
        .expect("store");
    let limiter = RateLimiter::from_store(store.clone());
    // Connected and spent: 10 units taken.
    for _ in 0..10 {
        limiter.acquire(1).await.expect("acquire");
    }
    limiter.throttle_for(Duration::from_millis(100));
    server.freeze();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The pause has ended: the request that notices it sends the drain, then its
    // decision, and gets the fail-open answer after one timeout.
    let start = Instant::now();
    let decision = limiter.try_acquire(1).await.expect("fail open");
    let took = start.elapsed();
    assert!(decision.is_allowed());
    // A bound, not a speed: waiting for the frozen server would take 10 s and more.
    assert!(took <= timeout + Duration::from_millis(500), "{took:?}");
    let stats = store.stats();
    assert!(stats.drain_failures >= 1, "{stats:?}");
    assert_eq!(store.pending_drains(), 1);
    server.thaw();
    // A later decision that Redis answers applies it (the key owed 9 s: the drain
    // changes nothing there, and is forgotten).
    let start = Instant::now();
    while store.pending_drains() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            store.stats()
        );
        let _ = limiter.try_acquire(1).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(store.stats().drains >= 1);
}
