//! Keyed wait mode: a request dropped while it sleeps until its booked slot (a
//! caller's timeout) leaves the slot to the key's next request, which starts there,
//! so abandoned slots neither go unused nor admit more than the quota. Paused clock.

mod support;
use support::starts::{assert_within_quota, most_within, recorder};

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::algorithm::{Algorithm, FixedWindow, SlidingLog};
use tower_ratelimit_core::clock::Clock;
use tower_ratelimit_core::keyed::{KeyedMemoryStore, KeyedRateLimitLayer};
use tower_ratelimit_core::{KeyedRateLimiter, Quota};

/// Requests that time out before their slots no longer take the key's rate down
/// with them: before, a 1 s timeout around a 10/s key sent twice its rate for 10 s
/// got no request through from second 3 to second 26, 16 s after the overload
/// ended (the line was all abandoned slots).
#[tokio::test(start_paused = true)]
async fn a_timeout_shorter_than_the_wait_keeps_the_keys_rate() {
    let quota = Quota::per_second(10).unwrap();
    let t0 = Instant::now();
    let (starts, inner) = recorder(t0);
    let service = ServiceBuilder::new()
        .timeout(Duration::from_secs(1))
        .layer(KeyedRateLimitLayer::new(quota, |_: &u64| 7u8))
        .service(inner);
    let served = Arc::new(Mutex::new(BTreeMap::<u64, u32>::new()));
    let mut requests = Vec::new();
    // 20/s for 10 s, then 5/s for 20 s.
    let sends = (0..200)
        .map(|i| Duration::from_millis(50 * i))
        .chain((0..100).map(|i| Duration::from_secs(10) + Duration::from_millis(200 * i)));
    for at in sends {
        tokio::time::sleep_until(t0 + at).await;
        let (mut service, served) = (service.clone(), Arc::clone(&served));
        requests.push(tokio::spawn(async move {
            if service.ready().await.unwrap().call(1).await.is_ok() {
                *served
                    .lock()
                    .unwrap()
                    .entry(t0.elapsed().as_secs())
                    .or_default() += 1;
            }
        }));
    }
    for request in requests {
        request.await.unwrap();
    }
    let served = served.lock().unwrap().clone();
    for second in 1..10 {
        assert_eq!(
            served.get(&second),
            Some(&10),
            "second {second}: {served:?}"
        );
    }
    // Under the limit again: every request is served, in its own second.
    for second in 12..30 {
        assert_eq!(served.get(&second), Some(&5), "second {second}: {served:?}");
    }
    assert_within_quota(quota, &starts.lock().unwrap());
}

/// What the limiter hands out for `key` at `cost`: how long after the call it started,
/// or `None` when the caller gave up after `patience`.
async fn acquire_within<St>(
    limiter: &KeyedRateLimiter<&'static str, St>,
    cost: u64,
    patience: Duration,
) -> Option<Duration>
where
    St: tower_ratelimit_core::store::RateStore<&'static str>,
{
    let start = Instant::now();
    tokio::time::timeout(patience, limiter.acquire(&"key", cost, Duration::MAX))
        .await
        .ok()
        .map(|granted| {
            granted.unwrap();
            start.elapsed()
        })
}

#[tokio::test(start_paused = true)]
async fn a_quota_change_retires_the_slots_left_under_the_old_one() {
    let limiter = KeyedRateLimiter::new(Quota::per_second(1).unwrap());
    let long = Duration::from_secs(60);
    assert_eq!(
        acquire_within(&limiter, 1, long).await,
        Some(Duration::ZERO)
    );
    // Booked at 1 s, left at 0.5 s.
    assert_eq!(
        acquire_within(&limiter, 1, Duration::from_millis(500)).await,
        None
    );
    limiter.set_quota(Quota::per_second(2).unwrap());
    // The bucket, rescaled, books the next slot; the old slot's instant was priced
    // by the old quota and is not handed out.
    let waited = acquire_within(&limiter, 1, long).await.unwrap();
    assert_eq!(waited, Duration::from_millis(250));
}

#[tokio::test(start_paused = true)]
async fn a_slot_goes_to_a_request_it_can_hold() {
    let limiter = KeyedRateLimiter::new(Quota::per_second(1).unwrap().with_burst(2).unwrap());
    let long = Duration::from_secs(60);
    assert_eq!(
        acquire_within(&limiter, 2, long).await,
        Some(Duration::ZERO)
    );
    // One unit booked at 1 s, left at once.
    assert_eq!(
        acquire_within(&limiter, 1, Duration::from_millis(1)).await,
        None
    );
    // Two units do not fit in it: booked after it, at 3 s (2.999 s from now).
    assert_eq!(
        acquire_within(&limiter, 2, long).await,
        Some(Duration::from_millis(2999))
    );
    // The one-unit slot at 1 s has passed unused meanwhile; the next unit comes at 4 s.
    assert_eq!(
        acquire_within(&limiter, 1, long).await,
        Some(Duration::from_secs(1))
    );
}

#[tokio::test(start_paused = true)]
async fn a_removed_key_starts_with_a_full_bucket_not_in_its_old_slots() {
    let store = KeyedMemoryStore::new(Quota::per_second(1).unwrap());
    let limiter = KeyedRateLimiter::from_store(store);
    let long = Duration::from_secs(60);
    assert_eq!(
        acquire_within(&limiter, 1, long).await,
        Some(Duration::ZERO)
    );
    assert_eq!(
        acquire_within(&limiter, 1, Duration::from_millis(100)).await,
        None
    );
    assert!(limiter.store().remove(&"key"));
    assert_eq!(
        acquire_within(&limiter, 1, long).await,
        Some(Duration::ZERO)
    );
    // And the slot left at 1 s is not handed to the one after: the fresh bucket books.
    assert_eq!(
        acquire_within(&limiter, 1, long).await,
        Some(Duration::from_secs(1))
    );
    assert_eq!(
        acquire_within(&limiter, 1, long).await,
        Some(Duration::from_secs(1))
    );
}

/// The Unix time the window clocks read at the start: their windows begin there.
const ORIGIN: Duration = Duration::from_secs(1_000_000);

#[derive(Debug, Clone)]
enum Op {
    Send(u64),
    Drop(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (1u64..3).prop_map(Op::Send),
        2 => (0usize..64).prop_map(Op::Drop),
        3 => (0u64..900).prop_map(Op::Advance),
    ]
}

/// Sends, drops (some while they sleep until their slots) and time, through wait
/// mode over `algorithm` at 3 units per second; returns when each request started.
async fn starts_with_drops<A: Algorithm>(algorithm: A, ops: Vec<Op>) -> Vec<(Duration, u64)>
where
    A::State: Send + Sync,
{
    let t0 = Instant::now();
    let store = KeyedMemoryStore::with_algorithm(algorithm, Quota::per_second(3).unwrap())
        .with_clock(Clock::with_unix_time(ORIGIN));
    let (starts, inner) = recorder(t0);
    let service =
        KeyedRateLimitLayer::with_limiter(KeyedRateLimiter::from_store(store), |_: &u64| 0u8)
            .cost(|cost: &u64| *cost)
            .layer(inner);
    let mut requests = Vec::new();
    for op in ops {
        match op {
            Op::Send(cost) => requests.push(tokio::spawn(service.clone().oneshot(cost))),
            Op::Drop(i) if !requests.is_empty() => {
                let i = i % requests.len();
                requests[i].abort();
            }
            Op::Drop(_) => {}
            Op::Advance(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        }
        tokio::task::yield_now().await;
    }
    for request in requests {
        let _ = request.await;
    }
    let starts = starts.lock().unwrap().clone();
    starts
}

fn most_per_window(starts: &[(Duration, u64)]) -> u64 {
    let mut per_window = BTreeMap::new();
    for &(at, cost) in starts {
        *per_window.entry((at + ORIGIN).as_secs()).or_insert(0) += cost;
    }
    per_window.into_values().max().unwrap_or(0)
}

fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// A slot left in a window is taken in that window: each window of the clock
    /// still starts at most its count.
    #[test]
    fn a_fixed_window_counts_its_own(ops in proptest::collection::vec(op(), 1..50)) {
        let starts = paused().block_on(starts_with_drops(FixedWindow, ops));
        prop_assert!(most_per_window(&starts) <= 3, "{starts:?}");
    }

    /// A log's entry is where its slot was: any second still starts at most 3 units.
    #[test]
    fn a_sliding_log_counts_its_own(ops in proptest::collection::vec(op(), 1..50)) {
        let starts = paused().block_on(starts_with_drops(SlidingLog, ops));
        prop_assert!(most_within(&starts, Duration::from_secs(1)) <= 3, "{starts:?}");
    }
}
