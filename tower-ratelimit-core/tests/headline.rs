//! The story's headline, on the paused clock: with a rate limit and a worker pool,
//! the total time of a bulk job is set by the number of requests and the rate, not by
//! the API's latency (as long as the pool is large enough to carry the rate).

use futures_util::StreamExt;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::{Quota, ServiceBuilderExt};

const N: usize = 10_000;
const RATE: u64 = 1_000;
const POOL: usize = 64;

#[derive(Default)]
struct Record {
    starts: Mutex<Vec<Duration>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

#[derive(Clone, Copy, Debug)]
enum Order {
    RateOutside,
    PoolOutside,
}

/// Runs the bulk job and returns (total time, record).
async fn run(latencies: Vec<Duration>, order: Order) -> (Duration, Arc<Record>) {
    let record = Arc::new(Record::default());
    let t0 = Instant::now();
    let latencies = Arc::new(latencies);
    let api = {
        let record = record.clone();
        service_fn(move |i: usize| {
            let record = record.clone();
            let latency = latencies[i];
            async move {
                record.starts.lock().unwrap().push(t0.elapsed());
                let now = record.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                record.peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(latency).await;
                record.in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, std::convert::Infallible>(i)
            }
        })
    };
    let quota = Quota::per_second(RATE).unwrap().with_burst(1).unwrap();
    let requests = futures_util::stream::iter(0..N);
    let done = match order {
        Order::RateOutside => {
            let svc = ServiceBuilder::new()
                .limit_rate(quota)
                .limit_concurrency(POOL)
                .service(api);
            svc.call_all(requests)
                .filter(|r| std::future::ready(r.is_ok()))
                .count()
                .await
        }
        Order::PoolOutside => {
            let svc = ServiceBuilder::new()
                .limit_concurrency(POOL)
                .limit_rate(quota)
                .service(api);
            svc.call_all(requests)
                .filter(|r| std::future::ready(r.is_ok()))
                .count()
                .await
        }
    };
    assert_eq!(done, N);
    (t0.elapsed(), record)
}

fn check(latencies: Vec<Duration>, order: Order, runtime: &tokio::runtime::Runtime) {
    let max_latency = *latencies.iter().max().unwrap();
    // Little's law: the pool carries at most POOL / mean-latency requests per second,
    // so the job takes max(N / R, Σ latency / POOL) plus the last response.
    let rate_bound = Duration::from_secs_f64(N as f64 / RATE as f64);
    let pool_bound = latencies.iter().sum::<Duration>() / POOL as u32;
    let expected = rate_bound.max(pool_bound) + max_latency;
    let (total, record) = runtime.block_on(run(latencies, order));

    let error = (total.as_secs_f64() - expected.as_secs_f64()).abs() / expected.as_secs_f64();
    eprintln!(
        "{order:?}: total {total:?}, expected {expected:?}, error {:.3}%, peak in flight {}",
        error * 100.0,
        record.peak.load(Ordering::SeqCst)
    );
    assert!(
        error <= 0.02,
        "{order:?}: total {total:?}, expected {expected:?} (rate bound {rate_bound:?}, pool bound {pool_bound:?})"
    );
    assert!(
        record.peak.load(Ordering::SeqCst) <= POOL,
        "in flight above the pool"
    );
    // The starts never exceed the quota in any window: burst 1 + ⌊D / T⌋.
    let starts = record.starts.lock().unwrap();
    let interval = Duration::from_secs(1) / RATE as u32;
    for window in [interval, Duration::from_millis(10), Duration::from_secs(1)] {
        let bound = 1 + (window.as_nanos() / interval.as_nanos()) as usize;
        let mut lo = 0;
        for hi in 0..starts.len() {
            while starts[hi] - starts[lo] >= window {
                lo += 1;
            }
            assert!(
                hi - lo < bound,
                "{order:?}: {} starts within {window:?}",
                hi - lo + 1
            );
        }
    }
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

#[test]
fn latency_1ms_total_is_set_by_the_rate() {
    for order in [Order::RateOutside, Order::PoolOutside] {
        check(vec![Duration::from_millis(1); N], order, &paused_runtime());
    }
}

#[test]
fn latency_50ms_total_is_set_by_the_rate() {
    for order in [Order::RateOutside, Order::PoolOutside] {
        check(vec![Duration::from_millis(50); N], order, &paused_runtime());
    }
}

#[test]
fn random_latency_up_to_500ms_total_follows_the_binding_limit() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let latencies: Vec<_> = (0..N)
        .map(|_| Duration::from_millis(rng.random_range(1..=500)))
        .collect();
    for order in [Order::RateOutside, Order::PoolOutside] {
        check(latencies.clone(), order, &paused_runtime());
    }
}
