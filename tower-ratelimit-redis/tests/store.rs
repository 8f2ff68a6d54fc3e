//! The store's decisions against a real `redis-server`: GCRA, windows, costs,
//! reservations, key expiry, the negative cache, and the core's layers on top.
//!
//! Redis keeps its own clock, so these tests run in real time; they assert counts
//! and bounds, never speed, and use slow quotas so that refill during a test cannot
//! change a count.

mod support;

use std::time::Duration;
use support::RedisServer;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::error::{BoxError, RateLimited, StoreError};
use tower_ratelimit_core::keyed::{KeyedRateLimitLayer, KeyedRateLimiter};
use tower_ratelimit_core::store::{Decision, RateStore};
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};
use tower_ratelimit_redis::{RedisStore, RemoteAlgorithm};

fn quota(count: u64, period: Duration, burst: u64) -> Quota {
    Quota::new(count, period)
        .and_then(|q| q.with_burst(burst))
        .expect("valid quota")
}

fn store(server: &RedisServer, quota: Quota) -> RedisStore {
    RedisStore::builder(quota)
        .prefix("t:")
        .timeout(Duration::from_secs(2))
        .connect(server.url())
        .expect("store")
}

async fn allowed<K: ?Sized>(store: &impl RateStore<K>, key: &K, cost: u64) -> bool {
    store.check(key, cost).await.expect("decision").is_allowed()
}

#[tokio::test]
async fn gcra_admits_the_burst_then_denies_with_the_retry_after() {
    let server = RedisServer::start();
    // One unit per second, burst 5: nothing refills noticeably during the test.
    let store = store(&server, quota(60, Duration::from_secs(60), 5));
    for expected_remaining in (0..5).rev() {
        match store.check("k", 1).await.expect("decision") {
            Decision::Allowed { snapshot, wait } => {
                assert_eq!(snapshot.limit, 5);
                assert_eq!(snapshot.remaining, expected_remaining);
                assert!(wait.is_zero());
            }
            other => panic!("expected an admission, got {other:?}"),
        }
    }
    match store.check("k", 1).await.expect("decision") {
        Decision::Denied {
            retry_after,
            snapshot,
        } => {
            assert!(
                retry_after > Duration::from_millis(500) && retry_after <= Duration::from_secs(1)
            );
            assert_eq!(snapshot.remaining, 0);
            assert!(
                snapshot.reset > Duration::from_secs(4) && snapshot.reset <= Duration::from_secs(5)
            );
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    // Another key has its own bucket.
    assert!(allowed(&store, "other", 5).await);
}

#[tokio::test]
async fn costs_are_weighted_and_a_cost_above_the_burst_fails_without_a_round_trip() {
    let server = RedisServer::start();
    let store = store(&server, quota(60, Duration::from_secs(60), 10));
    assert!(allowed(&store, "k", 4).await);
    assert!(allowed(&store, "k", 4).await);
    assert!(!allowed(&store, "k", 4).await);
    assert!(allowed(&store, "k", 2).await);
    let before = store.stats().remote_decisions;
    assert!(matches!(
        store.check("k", 11).await,
        Err(StoreError::CostTooLarge(e)) if e.max == 10
    ));
    assert_eq!(store.stats().remote_decisions, before);
}

#[tokio::test]
async fn peek_takes_nothing() {
    let server = RedisServer::start();
    let store = store(&server, quota(60, Duration::from_secs(60), 3));
    for _ in 0..5 {
        let decision = store.peek("k", 3).await.expect("peek");
        assert!(decision.is_allowed());
    }
    assert_eq!(
        store.peek("k", 0).await.expect("peek").snapshot().remaining,
        3
    );
    assert!(allowed(&store, "k", 3).await);
    assert!(!store.peek("k", 1).await.expect("peek").is_allowed());
}

#[tokio::test]
async fn reserve_takes_future_slots_up_to_max_wait() {
    let server = RedisServer::start();
    let store = store(&server, quota(1, Duration::from_secs(1), 2));
    for _ in 0..2 {
        let decision = store
            .reserve("k", 1, Duration::ZERO)
            .await
            .expect("reserve");
        assert!(matches!(decision, Decision::Allowed { wait, .. } if wait.is_zero()));
    }
    match store
        .reserve("k", 1, Duration::from_secs(5))
        .await
        .expect("reserve")
    {
        Decision::Allowed { wait, .. } => {
            assert!(wait > Duration::from_millis(500) && wait <= Duration::from_secs(1))
        }
        other => panic!("expected a reservation, got {other:?}"),
    }
    // The next slot is about 2 s away: over a 1.5 s bound, nothing is taken.
    match store
        .reserve("k", 1, Duration::from_millis(1500))
        .await
        .expect("reserve")
    {
        Decision::Denied { retry_after, .. } => {
            assert!(
                retry_after > Duration::from_millis(1500) && retry_after <= Duration::from_secs(2)
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    match store
        .reserve("k", 1, Duration::from_secs(5))
        .await
        .expect("reserve")
    {
        Decision::Allowed { wait, .. } => {
            assert!(wait > Duration::from_millis(1500) && wait <= Duration::from_secs(2))
        }
        other => panic!("expected a reservation, got {other:?}"),
    }
}

#[tokio::test]
async fn gcra_keys_expire_when_the_bucket_is_full_again() {
    let server = RedisServer::start();
    // T = 10 ms: a cost of 5 owes 50 ms.
    let store = store(&server, quota(100, Duration::from_secs(1), 10));
    assert!(allowed(&store, "k", 5).await);
    // 50 ms until full, plus one interval (10 ms) for a late waiter, plus the
    // millisecond Redis's expiry clock may be behind.
    let ttl: i64 = server.cmd(&["PTTL", "t:k"]);
    assert!((1..=61).contains(&ttl), "PTTL {ttl}");
    // The TAT, a little-endian double of whole microseconds since the epoch about
    // 50 ms ahead of now, then the interval it is measured in (10 ms).
    let state: Vec<u8> = server.cmd(&["GET", "t:k"]);
    let state: [u8; 16] = state
        .try_into()
        .expect("16 bytes: the TAT and the interval");
    let double = |bytes: &[u8]| f64::from_le_bytes(bytes.try_into().unwrap_or_default());
    let (tat, interval) = (double(&state[..8]), double(&state[8..]));
    assert_eq!(interval, 10_000.0);
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch")
        .as_micros() as f64;
    assert_eq!(tat.fract(), 0.0, "whole microseconds: {tat}");
    assert!(
        (tat - now_us).abs() < 5_000_000.0,
        "TAT {tat} near now {now_us}"
    );
    tokio::time::sleep(Duration::from_millis(120)).await;
    let exists: i64 = server.cmd(&["EXISTS", "t:k"]);
    assert_eq!(exists, 0);
    // Peeks and denials write nothing.
    let _ = store.peek("p", 1).await.expect("peek");
    let exists: i64 = server.cmd(&["EXISTS", "t:p"]);
    assert_eq!(exists, 0);
}

#[tokio::test]
async fn fixed_window_counts_per_window_and_expires_at_its_end() {
    let server = RedisServer::start();
    let store = RedisStore::builder(quota(3, Duration::from_secs(60), 3))
        .prefix("fw:")
        .algorithm(RemoteAlgorithm::FixedWindow)
        .connect(server.url())
        .expect("store");
    for _ in 0..3 {
        assert!(allowed(&store, "k", 1).await);
    }
    match store.check("k", 1).await.expect("decision") {
        Decision::Denied {
            retry_after,
            snapshot,
        } => {
            assert_eq!(snapshot.limit, 3);
            assert_eq!(snapshot.remaining, 0);
            assert!(retry_after <= Duration::from_secs(60));
            assert_eq!(retry_after, snapshot.reset);
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    let ttl: i64 = server.cmd(&["PTTL", "fw:k"]);
    assert!((1..=60_000).contains(&ttl), "PTTL {ttl}");
    // The count per window is the most that passes at once.
    assert!(matches!(
        store.check("k", 4).await,
        Err(StoreError::CostTooLarge(_))
    ));
}

#[tokio::test]
async fn sliding_window_counts_and_keeps_state_for_two_windows() {
    let server = RedisServer::start();
    let store = RedisStore::builder(quota(3, Duration::from_secs(60), 3))
        .prefix("sw:")
        .algorithm(RemoteAlgorithm::SlidingWindow)
        .connect(server.url())
        .expect("store");
    assert!(allowed(&store, "k", 2).await);
    assert!(allowed(&store, "k", 1).await);
    let reset = match store.check("k", 1).await.expect("decision") {
        Decision::Denied {
            retry_after,
            snapshot,
        } => {
            assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(120));
            snapshot.reset
        }
        other => panic!("expected a denial, got {other:?}"),
    };
    let ttl: i64 = server.cmd(&["PTTL", "sw:k"]);
    assert!((60_000..=120_000).contains(&ttl), "PTTL {ttl}");
    // Full again when the window's units stop weighing, at the end of the next window
    // (when the key expires), not at the end of this one.
    let reset_ms = i64::try_from(reset.as_millis()).expect("fits");
    assert!(
        (ttl - reset_ms).abs() <= 50,
        "reset {reset:?}, PTTL {ttl} ms"
    );
}

#[tokio::test]
async fn a_flushed_script_is_loaded_again() {
    let server = RedisServer::start();
    let store = store(&server, quota(60, Duration::from_secs(60), 10));
    assert!(allowed(&store, "k", 1).await);
    let _: () = server.cmd(&["SCRIPT", "FLUSH"]);
    assert!(allowed(&store, "k", 1).await);
    assert_eq!(store.stats().remote_errors, 0);
}

/// A server that has never seen the script and refuses `SCRIPT` (some managed
/// services restrict it): the call that meets `NOSCRIPT` runs the source with `EVAL`,
/// which needs no `SCRIPT LOAD`, and caches it for the next `EVALSHA`.
#[tokio::test]
async fn an_unknown_script_runs_from_its_source_without_script_load() {
    let server = (0..5)
        .find_map(|_| {
            let extra = ["--rename-command", "SCRIPT", ""].map(String::from);
            RedisServer::start_in(support::free_port(), &extra, &std::env::temp_dir()).ok()
        })
        .expect("start redis-server");
    let store = store(&server, quota(60, Duration::from_secs(60), 10));
    for _ in 0..3 {
        assert!(allowed(&store, "k", 1).await);
    }
    let stats = store.stats();
    assert_eq!(
        (stats.remote_errors, stats.remote_decisions),
        (0, 3),
        "{stats:?}"
    );
}

/// Scripts flushed every few milliseconds while 16 tasks decide on one key: no call
/// fails (a second `NOSCRIPT` cannot happen), and the bound holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_script_flushes_fails_no_call() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let server = RedisServer::start();
    // 100/s, burst 10.
    let store = store(&server, quota(1, Duration::from_millis(10), 10));
    let stop = Arc::new(AtomicBool::new(false));
    let flusher = {
        let (stop, url) = (Arc::clone(&stop), server.url());
        std::thread::spawn(move || {
            let mut connection = redis::Client::open(url)
                .and_then(|c| c.get_connection())
                .expect("connect");
            let mut flushes = 0;
            while !stop.load(Ordering::Relaxed) {
                let _: () = redis::cmd("SCRIPT")
                    .arg("FLUSH")
                    .query(&mut connection)
                    .expect("SCRIPT FLUSH");
                flushes += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            flushes
        })
    };
    let admitted = Arc::new(AtomicU64::new(0));
    let start = std::time::Instant::now();
    let run = Duration::from_millis(1000);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (store, admitted) = (store.clone(), Arc::clone(&admitted));
            tokio::spawn(async move {
                while start.elapsed() < run {
                    match store.check("hot", 1).await.expect("decision") {
                        Decision::Allowed { .. } => {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                        Decision::Denied { retry_after, .. } => {
                            tokio::time::sleep(retry_after).await
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let flushes = flusher.join().expect("flusher");
    let admitted = admitted.load(Ordering::Relaxed);
    // Every decision came from Redis: none failed into the failure policy (which
    // admits by default), so the burst plus one unit per 10 ms is the most.
    let bound = 10 + elapsed.as_millis() as u64 / 10;
    eprintln!(
        "{flushes} flushes; {admitted} admitted, bound {bound}; {:?}",
        store.stats()
    );
    assert!(flushes > 20, "{flushes} flushes");
    assert_eq!(store.stats().remote_errors, 0, "{:?}", store.stats());
    assert!(admitted <= bound, "{admitted} admitted, bound {bound}");
}

#[tokio::test]
async fn denials_are_answered_locally_until_they_expire() {
    let server = RedisServer::start();
    let store = store(&server, quota(60, Duration::from_secs(60), 1));
    assert!(allowed(&store, "k", 1).await);
    assert!(!allowed(&store, "k", 1).await);
    let remote = store.stats().remote_decisions;
    for _ in 0..10 {
        assert!(!allowed(&store, "k", 1).await);
    }
    assert_eq!(store.stats().remote_decisions, remote);
    assert_eq!(store.stats().cached_denials, 10);
    // Another key still goes to Redis.
    assert!(allowed(&store, "j", 1).await);
    assert_eq!(store.stats().remote_decisions, remote + 1);
}

#[tokio::test]
async fn the_core_limiter_and_rate_layer_run_on_the_store() -> Result<(), BoxError> {
    let server = RedisServer::start();
    let shared = store(&server, quota(60, Duration::from_secs(60), 2));
    // Two "instances": two limiters on two stores with the same prefix.
    let a = RateLimiter::from_store(shared.clone());
    let b = RateLimiter::from_store(store(&server, quota(60, Duration::from_secs(60), 2)));
    assert!(a.try_acquire(1).await?.is_allowed());
    assert!(b.try_acquire(1).await?.is_allowed());
    assert!(!a.try_acquire(1).await?.is_allowed());
    assert!(!b.try_acquire(1).await?.is_allowed());

    // Reject-mode layer on a fresh global bucket.
    let limiter = RateLimiter::from_store(
        RedisStore::builder(quota(60, Duration::from_secs(60), 1))
            .prefix("layer")
            .connect(server.url())?,
    );
    let mut service = ServiceBuilder::new()
        .layer(RateLimitLayer::with_limiter(limiter).reject())
        .service_fn(|n: u32| async move { Ok::<_, BoxError>(n) });
    assert_eq!(service.ready().await?.call(1).await?, 1);
    let denied = service.ready().await?.call(2).await.expect_err("denied");
    assert!(denied.downcast_ref::<RateLimited>().is_some(), "{denied}");

    // Wait mode: the second unit comes after a real wait of about 50 ms.
    let waiting = RateLimiter::from_store(
        RedisStore::builder(quota(20, Duration::from_secs(1), 1))
            .prefix("wait")
            .connect(server.url())?,
    );
    for _ in 0..3 {
        waiting.acquire(1).await?;
    }
    let ttl: i64 = server.cmd(&["PTTL", "wait"]);
    assert!(ttl > 0, "the wait-mode bucket lives in Redis");
    Ok(())
}

#[tokio::test]
async fn the_keyed_layer_runs_on_the_store() -> Result<(), BoxError> {
    let server = RedisServer::start();
    let limiter = KeyedRateLimiter::from_store(
        RedisStore::builder(quota(60, Duration::from_secs(60), 2))
            .prefix("client:")
            .connect(server.url())?,
    );
    let mut service = ServiceBuilder::new()
        .layer(KeyedRateLimitLayer::with_limiter(limiter, |req: &(u32, u32)| req.0).reject())
        .service_fn(|req: (u32, u32)| async move { Ok::<_, BoxError>(req.1) });
    for i in 0..2 {
        assert_eq!(service.ready().await?.call((7, i)).await?, i);
    }
    let denied = service
        .ready()
        .await?
        .call((7, 9))
        .await
        .expect_err("denied");
    let denied = denied
        .downcast_ref::<RateLimited>()
        .expect("a rate-limit denial");
    assert!(denied.retry_after() <= Duration::from_secs(1));
    assert_eq!(service.ready().await?.call((8, 1)).await?, 1);
    let exists: i64 = server.cmd(&["EXISTS", "client:7", "client:8"]);
    assert_eq!(exists, 2);
    Ok(())
}

#[tokio::test]
async fn any_async_connection_can_carry_the_store() {
    let server = RedisServer::start();
    let client = redis::Client::open(server.url()).expect("client");
    let connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let store = RedisStore::builder(quota(60, Duration::from_secs(60), 2))
        .prefix("mux:")
        .build(connection);
    assert!(allowed(&store, &42u64, 2).await);
    assert!(!allowed(&store, &42u64, 1).await);
    let exists: i64 = server.cmd(&["EXISTS", "mux:42"]);
    assert_eq!(exists, 1);
}

#[tokio::test]
async fn leasing_takes_units_in_batches_from_redis() {
    let server = RedisServer::start();
    let redis = RedisStore::builder(quota(60, Duration::from_secs(60), 20))
        .prefix("leased")
        .connect(server.url())
        .expect("store");
    let leased = tower_ratelimit_redis::LeasedStore::new(redis.clone(), 5, Duration::from_secs(30));
    for _ in 0..20 {
        assert!(allowed(&leased, &(), 1).await);
    }
    assert_eq!(redis.stats().remote_decisions, 4);
    // The shared bucket is empty: the next lease, and the exact retry, are denied.
    assert!(!allowed(&leased, &(), 1).await);
    assert_eq!(
        redis.peek(&(), 0).await.expect("peek").snapshot().remaining,
        0
    );
}

#[tokio::test]
async fn window_denials_end_when_their_retry_after_says() {
    let server = RedisServer::start();
    for (prefix, algorithm) in [
        ("fwr:", RemoteAlgorithm::FixedWindow),
        ("swr:", RemoteAlgorithm::SlidingWindow),
    ] {
        let store = RedisStore::builder(quota(3, Duration::from_millis(300), 3))
            .prefix(prefix)
            .algorithm(algorithm)
            .negative_cache(0)
            .connect(server.url())
            .expect("store");
        // Keep asking until denied (a window may turn over during the first takes).
        let mut retry = None;
        for _ in 0..20 {
            match store.check("k", 1).await.expect("decision") {
                Decision::Allowed { .. } => {}
                Decision::Denied { retry_after, .. } => {
                    retry = Some(retry_after);
                    break;
                }
            }
        }
        let retry = retry.expect("the window fills up");
        assert!(
            retry <= Duration::from_millis(600),
            "{algorithm:?}: {retry:?}"
        );
        tokio::time::sleep(retry).await;
        assert!(
            allowed(&store, "k", 1).await,
            "{algorithm:?}: still denied after {retry:?}"
        );
    }
}

/// A waiter's head that wakes late decides as of when it started waiting (at most one
/// interval back), so the slot that fell due while it slept is its own, and the next
/// slot is one interval after that one, not one interval after the late wake-up.
#[tokio::test]
async fn a_late_head_claims_the_slot_that_fell_due_while_it_slept() {
    let server = RedisServer::start();
    // One unit per second, burst 1.
    let store = store(&server, quota(1, Duration::from_secs(1), 1));
    let since = tokio::time::Instant::now();
    assert!(allowed(&store, "k", 1).await);
    // The next slot falls due at 1 s; the head wakes half a second late.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let late = RateStore::<str>::check_since(&store, "k", 1, since)
        .await
        .expect("decision");
    assert!(late.is_allowed());
    // Decided as of 0.5 s ago, at the slot's due time: the next slot is at 2 s, about
    // 0.5 s from now. Decided now, it would be a whole second away.
    match store.check("k", 1).await.expect("decision") {
        Decision::Denied { retry_after, .. } => assert!(
            retry_after < Duration::from_millis(900),
            "the next slot is {retry_after:?} away"
        ),
        // The wake-up was later still: the next slot has fallen due too.
        Decision::Allowed { .. } => {}
    }
}

/// A cached denial says what Redis said (retry-after and time until full), answers
/// for a second at most, and `forget` drops it: a key reset in Redis (an operator's
/// `DEL`, a restart) is not denied on this instance for the old retry-after.
#[tokio::test]
async fn cached_denials_repeat_redis_and_do_not_outlive_a_reset_key() {
    let server = RedisServer::start();
    // One unit a minute, burst 5: a spent bucket is full in 5 minutes.
    let store = store(&server, quota(1, Duration::from_secs(60), 5));
    for _ in 0..5 {
        assert!(allowed(&store, "k", 1).await);
    }
    let (from_redis, cached) = (store.check("k", 1).await, store.check("k", 1).await);
    let reset = |d: Result<Decision, StoreError>| d.expect("decision").snapshot().reset;
    assert_eq!(store.stats().cached_denials, 1);
    let (from_redis, cached) = (reset(from_redis), reset(cached));
    assert!(from_redis > Duration::from_secs(290), "{from_redis:?}");
    assert!(
        from_redis - cached < Duration::from_secs(1),
        "{from_redis:?} from Redis, {cached:?} from the cache"
    );

    // An operator unblocks the client.
    let _: () = server.cmd(&["DEL", "t:k"]);
    assert!(store.forget("k"));
    assert!(allowed(&store, "k", 1).await, "forgotten at once");

    // Without `forget`, at most a second.
    for _ in 0..4 {
        assert!(allowed(&store, "k", 1).await);
    }
    assert!(!allowed(&store, "k", 1).await);
    let _: () = server.cmd(&["DEL", "t:k"]);
    // MAX_AGE, as documented: a literal, so that a longer MAX_AGE fails here.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        allowed(&store, "k", 1).await,
        "asked Redis again after a second"
    );
}

fn unix_window(period: Duration) -> u128 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    since_epoch.as_micros() / period.as_micros()
}

/// The window scripts book a reservation that does not fit now into the first window
/// with room (as the core's window algorithms do), and deny checks until it starts.
#[tokio::test]
async fn window_reservations_are_booked_ahead() {
    let server = RedisServer::start();
    for (prefix, algorithm) in [
        ("fwb:", RemoteAlgorithm::FixedWindow),
        ("swb:", RemoteAlgorithm::SlidingWindow),
    ] {
        let store = RedisStore::builder(quota(4, Duration::from_secs(1), 4))
            .prefix(prefix)
            .algorithm(algorithm)
            .negative_cache(0)
            .connect(server.url())
            .expect("store");
        assert!(allowed(&store, "k", 4).await, "{algorithm:?}");
        let booked = store
            .reserve("k", 2, Duration::from_secs(5))
            .await
            .expect("decision");
        let Decision::Allowed { wait, .. } = booked else {
            panic!("{algorithm:?}: expected a booking, got {booked:?}")
        };
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(2),
            "{algorithm:?}: booked {wait:?} ahead"
        );
        // Until the booked instant, nothing passes, and a reservation that may not
        // wait that long takes nothing.
        assert!(!allowed(&store, "k", 1).await, "{algorithm:?}");
        let too_far = store
            .reserve("k", 4, Duration::from_millis(1))
            .await
            .expect("decision");
        assert!(!too_far.is_allowed(), "{algorithm:?}: {too_far:?}");
    }
}

/// The core's wait-mode layers on window stores: a keyed wait waits for the next
/// window instead of failing, and a cost-weighted request starts no units beyond the
/// window's count.
#[tokio::test]
async fn wait_mode_runs_on_window_stores() -> Result<(), BoxError> {
    let server = RedisServer::start();
    let period = Duration::from_secs(1);
    let window_store = |prefix: &str| {
        RedisStore::builder(quota(4, period, 4))
            .prefix(prefix)
            .algorithm(RemoteAlgorithm::FixedWindow)
            .negative_cache(0)
            .connect(server.url())
    };
    let keyed = KeyedRateLimiter::<String, _>::from_store(window_store("fwk:")?);
    let key = "client".to_string();
    for _ in 0..5 {
        keyed.acquire(&key, 1, Duration::from_secs(10)).await?;
    }

    // Each request costs 3 of the window's 4: each starts in a window of its own.
    let starts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorded = starts.clone();
    let mut svc = ServiceBuilder::new()
        .layer(
            RateLimitLayer::with_limiter(RateLimiter::from_store(window_store("fwc:")?))
                .cost(|_: &u8| 3),
        )
        .service(tower::service_fn(move |_: u8| {
            recorded.lock().expect("lock").push(unix_window(period));
            async { Ok::<_, BoxError>(()) }
        }));
    for _ in 0..3 {
        svc.ready().await?.call(0).await?;
    }
    let starts = starts.lock().expect("lock").clone();
    assert!(
        starts.windows(2).all(|pair| pair[1] > pair[0]),
        "windows of the starts: {starts:?}"
    );
    Ok(())
}

async fn admitted_now(store: &impl RateStore<str>, key: &str, tries: usize) -> usize {
    let mut admitted = 0;
    for _ in 0..tries {
        if allowed(store, key, 1).await {
            admitted += 1;
        }
    }
    admitted
}

/// `set_quota` keeps every bucket's fill level in units, as the core's stores do: a
/// slower rate does not hand a spent bucket a fresh burst, a faster one does not leave
/// it owing the old, longer time, and a window keeps the units used in it.
#[tokio::test]
async fn a_new_quota_keeps_each_bucket_in_units() {
    let server = RedisServer::start();
    let build = |prefix: &str, algorithm, quota| {
        RedisStore::builder(quota)
            .prefix(prefix)
            .algorithm(algorithm)
            .negative_cache(0)
            .connect(server.url())
            .expect("store")
    };
    let gcra = RemoteAlgorithm::Gcra;

    // 10/s → 1/s, burst 10, spent: nothing more at once.
    let slower = build("q1:", gcra, quota(10, Duration::from_secs(1), 10));
    assert_eq!(admitted_now(&slower, "k", 10).await, 10);
    RateStore::<str>::set_quota(&slower, quota(1, Duration::from_secs(1), 10));
    assert_eq!(admitted_now(&slower, "k", 20).await, 0);

    // 1/s → 10/s, burst 10, spent: the next unit is 0.1 s away, not 9.
    let faster = build("q2:", gcra, quota(1, Duration::from_secs(1), 10));
    assert_eq!(admitted_now(&faster, "k", 10).await, 10);
    RateStore::<str>::set_quota(&faster, quota(10, Duration::from_secs(1), 10));
    match faster.check("k", 1).await.expect("decision") {
        Decision::Denied { retry_after, .. } => {
            assert!(retry_after <= Duration::from_millis(150), "{retry_after:?}")
        }
        // The 0.1 s passed already on a slow machine.
        Decision::Allowed { .. } => {}
    }

    // Windows: 5 per 10 s → 5 per 20 s, spent: the units stay used.
    for algorithm in [RemoteAlgorithm::FixedWindow, RemoteAlgorithm::SlidingWindow] {
        let window = build("q3:", algorithm, quota(5, Duration::from_secs(10), 5));
        let key = format!("{algorithm:?}");
        // Keep taking until denied: a window may turn over during the first takes.
        let mut spent = false;
        for _ in 0..20 {
            if !allowed(&window, &key, 1).await {
                spent = true;
                break;
            }
        }
        assert!(spent, "{algorithm:?}");
        RateStore::<str>::set_quota(&window, quota(5, Duration::from_secs(20), 5));
        assert_eq!(
            admitted_now(&window, &key, 5).await,
            0,
            "{algorithm:?}: a longer period kept the count"
        );
    }
}

/// A quota change drops the cached denials: a key denied under the old quota is asked
/// about again at once, not answered from the cache for up to a second.
#[tokio::test]
async fn a_quota_change_drops_the_cached_denials() {
    let server = RedisServer::start();
    let store = store(&server, quota(1, Duration::from_secs(60), 1));
    assert!(allowed(&store, "k", 1).await);
    assert!(!allowed(&store, "k", 1).await);
    assert!(!allowed(&store, "k", 1).await);
    assert_eq!(store.stats().cached_denials, 1);
    // A burst of 3 at the same rate: the key owes one unit of three.
    RateStore::<str>::set_quota(&store, quota(1, Duration::from_secs(60), 3));
    assert!(
        allowed(&store, "k", 1).await,
        "answered from a stale denial"
    );
    assert_eq!(store.stats().cached_denials, 1);
}

/// Debts past 2^62 ns that the script wrote itself are kept: a quota of one unit a
/// century whose next unit was booked (200 years of debt), and a burst as long as
/// the longest quota, spent.
#[tokio::test]
async fn debts_longer_than_the_longest_quota_are_kept() {
    let server = RedisServer::start();
    let century = quota(1, Duration::from_secs(100 * 365 * 86_400), 1);
    let store = store(&server, century);
    assert!(allowed(&store, "century", 1).await);
    let booked = store.reserve("century", 1, Duration::MAX).await;
    assert!(booked.expect("decision").is_allowed());
    assert!(
        !allowed(&store, "century", 1).await,
        "a third unit within a century"
    );

    let burst = 4_611_686_018; // 2^62 ns at one unit per second
    let longest = quota(1, Duration::from_secs(1), burst);
    let store = RedisStore::builder(longest)
        .prefix("longest:")
        .negative_cache(0)
        .timeout(Duration::from_secs(2))
        .connect(server.url())
        .expect("store");
    assert!(allowed(&store, "k", burst).await);
    assert!(!allowed(&store, "k", burst).await, "the whole burst twice");
}
