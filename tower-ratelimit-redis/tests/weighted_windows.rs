//! Weighted wait-mode requests over window stores keep the window's count: the rest
//! of a cost booked apart from the unit readiness took fell in a later window, which
//! then started count + 1 (a fixed window of 2 started 3). Real redis-server, real
//! clock; the leased-store checks run on the paused clock.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::RedisServer;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::error::BoxError;
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};
use tower_ratelimit_redis::{RedisStore, RemoteAlgorithm};

fn unix_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_micros()
}

/// Sends a request of cost 1, one of cost 2 and one of cost 1, in that order, through a
/// wait-mode layer over `store`; the starts as (`clock()`, cost).
async fn one_two_one<St>(
    store: St,
    clock: impl Fn() -> u128 + Clone + Send + 'static,
) -> Vec<(u128, u64)>
where
    St: tower_ratelimit_core::store::RateStore,
{
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let r = recorded.clone();
    let mut svc = ServiceBuilder::new()
        .layer(
            RateLimitLayer::with_limiter(RateLimiter::from_store(store))
                .wait()
                .cost(|c: &u64| *c),
        )
        .service(tower::service_fn(move |c: u64| {
            r.lock().expect("lock").push((clock(), c));
            async { Ok::<_, BoxError>(()) }
        }));
    for cost in [1u64, 2, 1] {
        svc.ready()
            .await
            .expect("ready")
            .call(cost)
            .await
            .expect("call");
    }
    let v = recorded.lock().expect("lock").clone();
    v
}

/// Units started in each window of one second.
fn per_second_window(starts: &[(u128, u64)]) -> std::collections::BTreeMap<u128, u64> {
    let mut per_window = std::collections::BTreeMap::new();
    for &(t, c) in starts {
        *per_window.entry(t / 1_000_000).or_default() += c;
    }
    per_window
}

/// Starts (µs since the epoch, cost) of: a request of cost 1, one of cost 2, one of
/// cost 1, in that order, in wait mode, beginning just after a window boundary.
async fn starts(
    algorithm: RemoteAlgorithm,
    prefix: &str,
    server: &RedisServer,
) -> Vec<(u128, u64)> {
    let period = Duration::from_secs(1);
    let store = RedisStore::builder(Quota::new(2, period).expect("quota"))
        .prefix(prefix)
        .algorithm(algorithm)
        .negative_cache(0)
        .timeout(Duration::from_secs(2))
        .connect(server.url())
        .expect("store");
    // Begin 50 ms into a window, so the first two requests share it.
    let p = period.as_micros();
    let into = unix_micros() % p;
    tokio::time::sleep(Duration::from_micros(((p - into) + 50_000) as u64)).await;
    one_two_one(store, unix_micros).await
}

/// Units started in the period-long span with the most.
fn most_in_any_period(starts: &[(u128, u64)], period_us: u128) -> u64 {
    starts
        .iter()
        .map(|&(t0, _)| {
            starts
                .iter()
                .filter(|&&(t, _)| t >= t0 && t < t0 + period_us)
                .map(|&(_, c)| c)
                .sum()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn fixed_window_of_2_starts_at_most_2_units_per_window_in_wait_mode() {
    let server = RedisServer::start();
    let starts = starts(RemoteAlgorithm::FixedWindow, "weighted-fixed:", &server).await;
    let per_window = per_second_window(&starts);
    assert!(
        per_window.values().all(|&units| units <= 2),
        "a fixed window of 2 started {per_window:?} units (window index -> units)"
    );
}

#[tokio::test]
async fn sliding_window_of_2_starts_at_most_2_units_per_period_in_wait_mode() {
    let server = RedisServer::start();
    let starts = starts(RemoteAlgorithm::SlidingWindow, "weighted-sliding:", &server).await;
    let most = most_in_any_period(&starts, 1_000_000);
    assert!(
        most <= 2,
        "a sliding window of 2 started {most} units within one period: {starts:?}"
    );
}

/// A lease of one (slack n × (lease − 1) = 0) over the core's fixed window keeps its
/// bound: the wrapper forwards `reserve_whole` (the default booked the rest apart).
#[tokio::test(start_paused = true)]
async fn a_lease_of_one_keeps_the_inner_window_bound() {
    use tower_ratelimit_core::clock::Clock;
    use tower_ratelimit_core::store::MemoryStore;
    use tower_ratelimit_redis::LeasedStore;
    let t0 = tokio::time::Instant::now();
    let inner = MemoryStore::with_algorithm(
        tower_ratelimit_core::algorithm::FixedWindow,
        Quota::new(2, Duration::from_secs(1)).expect("quota"),
    )
    .with_clock(Clock::with_unix_time(Duration::ZERO));
    let store = LeasedStore::new(inner, 1, Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let starts = one_two_one(store, move || t0.elapsed().as_micros()).await;
    let per_window = per_second_window(&starts);
    assert!(
        per_window.values().all(|&u| u <= 2),
        "lease of 1: {per_window:?} ({starts:?})"
    );
}

/// The leased store reports the inner store's max cost (the default, the burst, failed
/// costs a window store with a burst below its count admits).
#[tokio::test(start_paused = true)]
async fn a_leased_window_store_reports_the_inner_max_cost() {
    use tower_ratelimit_core::store::{MemoryStore, RateStore};
    use tower_ratelimit_redis::LeasedStore;
    let quota = Quota::new(10, Duration::from_secs(1))
        .and_then(|q| q.with_burst(2))
        .expect("quota");
    let inner = MemoryStore::with_algorithm(tower_ratelimit_core::algorithm::FixedWindow, quota);
    let inner_max = inner.max_cost(&());
    let store = LeasedStore::new(inner, 4, Duration::from_secs(60));
    assert_eq!(store.max_cost(&()), inner_max, "inner max_cost {inner_max}");
}
