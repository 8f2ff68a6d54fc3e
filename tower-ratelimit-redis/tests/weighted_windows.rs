//! Weighted wait-mode requests over window stores keep the window's count (the rest
//! of a cost booked apart from the unit readiness took fell in a later window, which
//! then started count + 1: a fixed window of 2 started 3), and admit as much as the
//! core's in-memory stores (the readiness unit is given back, not left spent). Real
//! redis-server, real clock; the core's and the leased-store runs use the paused
//! clock.

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

/// Sends requests of `costs`, in that order, through a wait-mode layer over `store`;
/// the starts as (`clock()`, cost).
async fn send_in_order<St>(
    store: St,
    costs: &[u64],
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
    for &cost in costs {
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

/// Sends a request of cost 1, one of cost 2 and one of cost 1, in that order.
async fn one_two_one<St>(
    store: St,
    clock: impl Fn() -> u128 + Clone + Send + 'static,
) -> Vec<(u128, u64)>
where
    St: tower_ratelimit_core::store::RateStore,
{
    send_in_order(store, &[1, 2, 1], clock).await
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

/// How far into a window of one second the exactness tests begin: past the span of
/// twice the timeout in which the scripts give nothing back (see `EXACT_TIMEOUT`).
const INTO_WINDOW: Duration = Duration::from_millis(450);
/// The timeout of the exactness tests' stores: units taken less than twice this far
/// into a window are not given back, as they may have been taken in the one before.
const EXACT_TIMEOUT: Duration = Duration::from_millis(150);

/// The window (counted from `first`) and cost of each start.
fn windows_from(first: u128, starts: &[(u128, u64)]) -> Vec<(u128, u64)> {
    starts
        .iter()
        .map(|&(t, c)| ((t / 1_000_000).saturating_sub(first), c))
        .collect()
}

/// Starts of `costs` in wait mode on a Redis window store of `count` per second,
/// sent `INTO_WINDOW` into a window: each as (windows after the one it was sent in,
/// cost), and as (µs since the epoch, cost).
async fn redis_starts(
    server: &RedisServer,
    algorithm: RemoteAlgorithm,
    count: u64,
    costs: &[u64],
) -> (Vec<(u128, u64)>, Vec<(u128, u64)>) {
    for attempt in 0..5 {
        let store = RedisStore::builder(Quota::new(count, Duration::from_secs(1)).expect("quota"))
            .prefix(format!("exact:{algorithm:?}:{count}:{costs:?}:{attempt}:"))
            .algorithm(algorithm)
            .negative_cache(0)
            .timeout(EXACT_TIMEOUT)
            .connect(server.url())
            .expect("store");
        let into = unix_micros() % 1_000_000;
        let target = INTO_WINDOW.as_micros();
        let sleep = (1_000_000 + target - into) % 1_000_000;
        tokio::time::sleep(Duration::from_micros(sleep as u64)).await;
        let sent = unix_micros();
        if sent % 1_000_000 > 700_000 {
            // Woke far too late on a loaded machine: the requests would meet a
            // boundary the core's run does not.
            continue;
        }
        let starts = send_in_order(store, costs, unix_micros).await;
        return (windows_from(sent / 1_000_000, &starts), starts);
    }
    panic!("never woke within 250 ms of {INTO_WINDOW:?} into a window in 5 attempts");
}

/// The same on the core's in-memory store of the same algorithm, on a paused clock
/// (its own runtime, on a thread of its own).
fn core_starts(algorithm: RemoteAlgorithm, count: u64, costs: &[u64]) -> Vec<(u128, u64)> {
    use tower_ratelimit_core::algorithm::{FixedWindow, SlidingCounter};
    use tower_ratelimit_core::clock::Clock;
    use tower_ratelimit_core::store::MemoryStore;
    let costs = costs.to_vec();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let quota = Quota::new(count, Duration::from_secs(1)).expect("quota");
            let clock = Clock::with_unix_time(INTO_WINDOW);
            let t0 = tokio::time::Instant::now();
            let at = move || (INTO_WINDOW + t0.elapsed()).as_micros();
            match algorithm {
                RemoteAlgorithm::FixedWindow => {
                    let store = MemoryStore::with_algorithm(FixedWindow, quota).with_clock(clock);
                    send_in_order(store, &costs, at).await
                }
                _ => {
                    let store =
                        MemoryStore::with_algorithm(SlidingCounter, quota).with_clock(clock);
                    send_in_order(store, &costs, at).await
                }
            }
        })
    })
    .join()
    .expect("core run")
}

/// Weighted wait-mode requests whose readiness is taken inside a window start in the
/// same windows on Redis as on the core's in-memory stores: the script gives the
/// readiness unit back before booking the whole cost. Booked whole with the unit left
/// spent, each weighted request cost one unit more: a lone request of 2 on a window of
/// 2 waited for the next window (two, sliding), and of 2 + 2 on a window of 4 or
/// 2 + 2 + 2 on a window of 6 the last one did.
#[tokio::test]
async fn weighted_requests_start_where_the_core_starts_them() {
    let server = RedisServer::start();
    let cases: [(u64, &[u64]); 5] = [
        (2, &[2]),
        (3, &[1, 2]),
        (4, &[2, 2]),
        (6, &[2, 2, 2]),
        (2, &[1, 2, 1]),
    ];
    for algorithm in [RemoteAlgorithm::FixedWindow, RemoteAlgorithm::SlidingWindow] {
        for (count, costs) in cases {
            let (remote, starts) = redis_starts(&server, algorithm, count, costs).await;
            let local = windows_from(0, &core_starts(algorithm, count, costs));
            assert_eq!(
                remote, local,
                "{algorithm:?}, {count} per second, costs {costs:?} (windows after the \
                 one they were sent in, cost): Redis started {starts:?}"
            );
            let most = match algorithm {
                RemoteAlgorithm::FixedWindow => {
                    per_second_window(&starts).into_values().max().unwrap_or(0)
                }
                _ => most_in_any_period(&starts, 1_000_000),
            };
            assert!(most <= count, "{algorithm:?}, {count}: {starts:?}");
        }
    }
}

/// The simplest case on its own: a lone request of cost 2 on an empty window of 2
/// starts in the window it was sent in (the unit readiness took is given back; left
/// spent, the request waited for the next window, or two for the sliding counter).
#[tokio::test]
async fn a_lone_weighted_request_starts_in_its_own_window() {
    let server = RedisServer::start();
    for algorithm in [RemoteAlgorithm::FixedWindow, RemoteAlgorithm::SlidingWindow] {
        let (windows, starts) = redis_starts(&server, algorithm, 2, &[2]).await;
        assert_eq!(windows, [(0, 2)], "{algorithm:?}: started {starts:?}");
    }
}
