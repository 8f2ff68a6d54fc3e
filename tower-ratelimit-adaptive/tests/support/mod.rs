//! What the error tests share: a server of 50 ms answers whose status a function of
//! the request's index and instant decides, behind the adaptive layer, driven by a
//! pool of workers on tokio's paused clock.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_adaptive::{AdaptiveRateLimitLayer, Outcome};

pub type Answer = Arc<dyn Fn(u64, Instant) -> u16 + Send + Sync>;

/// Answers per second over the last 20 of 60 s: (200s, other statuses).
pub async fn run(answer: Answer, workers: usize) -> (f64, f64) {
    let n = Arc::new(AtomicU64::new(0));
    let backend = service_fn(move |_: ()| {
        let (i, answer) = (n.fetch_add(1, Ordering::Relaxed), Arc::clone(&answer));
        async move {
            let status = answer(i, Instant::now());
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<u16, std::convert::Infallible>(status)
        }
    });
    let layer = AdaptiveRateLimitLayer::new(|r: &Result<u16, _>| match r {
        Ok(200) => Outcome::success(Duration::from_millis(50)),
        Ok(429) => Outcome::throttled(Duration::from_millis(50)),
        Ok(500..) | Err(_) => Outcome::Overload {
            latency: Duration::from_millis(50),
        },
        Ok(_) => Outcome::Ignored,
    });
    let service = ServiceBuilder::new().layer(layer).service(backend);
    let start = Instant::now();
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (mut service, counts) = (service.clone(), Arc::clone(&counts));
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < Duration::from_secs(60) {
                let status = service.ready().await.unwrap().call(()).await.unwrap();
                if start.elapsed() >= Duration::from_secs(40) {
                    counts[usize::from(status != 200)].fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let per_second = |i: usize| counts[i].load(Ordering::Relaxed) as f64 / 20.0;
    (per_second(0), per_second(1))
}

/// 500 for whatever exceeds `capacity` a second (a bucket of `capacity / 10`), and
/// for every `every`-th request whatever the rate.
pub fn over_capacity_with_background(capacity: f64, every: u64) -> Answer {
    capacity_falls(capacity, capacity, Duration::MAX, every)
}

/// 500 for whatever exceeds `before` a second until `at`, `after` from then, plus
/// every `every`-th request whatever the rate.
pub fn capacity_falls(before: f64, after: f64, at: Duration, every: u64) -> Answer {
    let start = Instant::now();
    let bucket = Mutex::new(((before / 10.0).max(1.0), Instant::now()));
    Arc::new(move |i, now| {
        let capacity = if now - start < at { before } else { after };
        let mut bucket = bucket.lock().unwrap();
        let (tokens, last) = &mut *bucket;
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * capacity)
            .min((capacity / 10.0).max(1.0));
        *last = now;
        let fits = *tokens >= 1.0;
        if fits {
            *tokens -= 1.0;
        }
        if !fits || i % every == every - 1 {
            500
        } else {
            200
        }
    })
}
