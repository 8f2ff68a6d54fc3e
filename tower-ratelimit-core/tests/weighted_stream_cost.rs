//! N weighted wait-mode requests of cost K
//! at R/s through `ServiceExt::oneshot`, in sequence and all at once. Prints the time
//! the last one starts against the ideal (what the bucket allows for N·K units),
//! and the extra units that cost (readiness units that stayed spent).
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};

const N: u64 = 40;
const K: u64 = 5;
const R: u64 = 10;
const BURST: u64 = 10;

fn svc(
    limiter: RateLimiter,
    starts: Arc<Mutex<Vec<Duration>>>,
    t0: Instant,
) -> impl tower::Service<u64, Response = (), Error = tower::BoxError, Future: Send> + Clone + Send {
    ServiceBuilder::new()
        .layer(RateLimitLayer::with_limiter(limiter).cost(|c: &u64| *c))
        .service(service_fn(move |_c: u64| {
            starts.lock().unwrap().push(t0.elapsed());
            async { Ok::<_, std::convert::Infallible>(()) }
        }))
}

/// The last start when the bucket (full at t0) lets N·K units through at R/s after
/// a burst of BURST: (N·K − BURST)/R seconds, rounded up to whole requests.
fn ideal() -> Duration {
    // The i-th request (0-based) may start when (i+1)·K units fit: (i+1)·K − BURST
    // intervals after t0 (or at t0).
    let units = N * K;
    Duration::from_millis(units.saturating_sub(BURST) * 1000 / R)
}

fn report(name: &str, starts: &[Duration]) -> Duration {
    let last = *starts.iter().max().unwrap();
    let t = Duration::from_millis(1000 / R);
    let extra = (last.as_millis() as i128 - ideal().as_millis() as i128) / t.as_millis() as i128;
    eprintln!(
        "{name}: {N} × cost {K} at {R}/s burst {BURST}: last start {last:?}, ideal {:?} \
         ({extra:+} units, {:+.1} %)",
        ideal(),
        100.0 * (last.as_secs_f64() / ideal().as_secs_f64() - 1.0)
    );
    last
}

#[tokio::test(start_paused = true)]
async fn in_sequence() {
    let limiter = RateLimiter::new(Quota::per_second(R).unwrap().with_burst(BURST).unwrap());
    let t0 = Instant::now();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let s = svc(limiter, Arc::clone(&starts), t0);
    for _ in 0..N {
        s.clone().oneshot(K).await.unwrap();
    }
    let last = report("in sequence", &starts.lock().unwrap());
    assert!(
        last <= ideal() + Duration::from_millis(1000 / R),
        "more than one unit over the ideal"
    );
}

#[tokio::test(start_paused = true)]
async fn all_at_once() {
    let limiter = RateLimiter::new(Quota::per_second(R).unwrap().with_burst(BURST).unwrap());
    let t0 = Instant::now();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let s = svc(limiter, Arc::clone(&starts), t0);
    let tasks: Vec<_> = (0..N).map(|_| tokio::spawn(s.clone().oneshot(K))).collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let last = report("all at once", &starts.lock().unwrap());
    assert!(
        last <= ideal() + Duration::from_millis(1000 / R),
        "more than one unit over the ideal"
    );
}

#[tokio::test(start_paused = true)]
async fn four_clients_in_sequence_each() {
    let limiter = RateLimiter::new(Quota::per_second(R).unwrap().with_burst(BURST).unwrap());
    let t0 = Instant::now();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let s = svc(limiter, Arc::clone(&starts), t0);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                for _ in 0..N / 4 {
                    s.clone().oneshot(K).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let last = report("4 clients, each in sequence", &starts.lock().unwrap());
    assert!(
        last <= ideal() + Duration::from_millis(1000 / R),
        "more than one unit over the ideal"
    );
}
