//! At slow rates (under 80 answers a second) every overload still counts as a throttle:
//! a second holds too few answers to tell a client's own overload from chance, and
//! the background filter learned it as the usual share (a capacity falling from
//! 40/s to 10/s left a client with 18 % errors; a 20/s server failing 1 in 10 anyway
//! saw 27 %). The `print_*` tests print the table: `-- --ignored --nocapture`.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_adaptive::{AdaptiveRateLimitLayer, Outcome};

type Answer = Arc<dyn Fn(u64, Instant) -> u16 + Send + Sync>;

/// Answers per second over the last 20 of 60 s: (200s, other statuses).
async fn run(answer: Answer, workers: usize) -> (f64, f64) {
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
fn over_capacity_with_background(capacity: f64, every: u64) -> Answer {
    let bucket = Mutex::new(((capacity / 10.0).max(1.0), Instant::now()));
    Arc::new(move |i, now| {
        let mut bucket = bucket.lock().unwrap();
        let (tokens, at) = &mut *bucket;
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * capacity)
            .min((capacity / 10.0).max(1.0));
        *at = now;
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

/// A slow server (20/s, 5/s) whose every 10th answer fails whatever the rate, and
/// which fails whatever exceeds its capacity: the overloads the client causes come on
/// top of the background, and should bring it back under the capacity (before this
/// session's change: 10 % of answers failed, the background alone). Observed: 27 %
/// and 29 %, the client 26 % and 50 % over capacity, and no more served (5.3/s
/// against 5.5/s before at 5/s).
#[tokio::test(start_paused = true)]
async fn a_slow_servers_overload_is_not_hidden_by_its_background() {
    for capacity in [20.0, 5.0] {
        let (ok, failed) = run(over_capacity_with_background(capacity, 10), 64).await;
        let share = failed / (ok + failed);
        assert!(
            share < 0.15,
            "capacity {capacity}/s, 1 in 10 failing anyway: {ok:.1}/s served, {failed:.1}/s \
             errors ({:.0} % of sent, 10 % background)",
            100.0 * share
        );
    }
}

/// The numbers for the report (`--ignored --nocapture`).
#[tokio::test(start_paused = true)]
#[ignore]
async fn print_table() {
    for (capacity, every) in [
        (200.0, u64::MAX),
        (200.0, 10),
        (20.0, u64::MAX),
        (20.0, 10),
        (5.0, u64::MAX),
        (5.0, 10),
        (5.0, 4),
    ] {
        let (ok, failed) = run(over_capacity_with_background(capacity, every), 64).await;
        println!("capacity {capacity}/s, 1 in {every} fails anyway: {ok:.1}/s served, {failed:.1}/s errors ({:.0} % of sent)", 100.0 * failed / (ok + failed));
    }
}

/// The spread over the layer's process-wide random stream (`--ignored --nocapture`):
/// a short warm-up run of `w` workers first moves the stream.
#[tokio::test(start_paused = true)]
#[ignore]
async fn print_spread() {
    for (capacity, every) in [(200.0, 10), (20.0, 10), (5.0, 10), (20.0, u64::MAX)] {
        let mut rows = Vec::new();
        for w in 0..8 {
            if w > 0 {
                let answer: Answer = Arc::new(|_, _| 200);
                let _ = tokio::time::timeout(Duration::from_millis(300 * w as u64), run(answer, w))
                    .await;
            }
            let (ok, failed) = run(over_capacity_with_background(capacity, every), 64).await;
            rows.push(format!("{ok:.1}+{failed:.1}"));
        }
        println!(
            "capacity {capacity}/s, 1 in {every}: served+errors per second over 8 streams: {}",
            rows.join(", ")
        );
    }
}

/// 500 for whatever exceeds `before` a second until `at`, `after` from then, plus
/// every `every`-th request whatever the rate.
fn capacity_falls(before: f64, after: f64, at: Duration, every: u64) -> Answer {
    let start = Instant::now();
    let bucket = Mutex::new((before / 10.0, Instant::now()));
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

/// A server that never fails otherwise, whose capacity falls from 40/s to 10/s at
/// 30 s: over 40-60 s, before this session's change 12.6/s were served and 0.1/s
/// failed (1 %); now 10.8/s are served and 2.4/s fail (18 %): the overloads of the
/// fall, met while cruising under the old estimate, are learned as the background.
#[tokio::test(start_paused = true)]
async fn a_capacity_fall_at_a_slow_rate_is_not_learned_as_background() {
    let (ok, failed) = run(
        capacity_falls(40.0, 10.0, Duration::from_secs(30), u64::MAX),
        64,
    )
    .await;
    assert!(
        failed < 0.05 * (ok + failed),
        "{ok:.1}/s served, {failed:.1}/s errors ({:.0} % of sent)",
        100.0 * failed / (ok + failed)
    );
}

/// The numbers for a server whose capacity falls at 30 s (`--ignored --nocapture`).
#[tokio::test(start_paused = true)]
#[ignore]
async fn print_capacity_falls() {
    for (before, after, every) in [
        (400.0, 100.0, u64::MAX),
        (400.0, 100.0, 50),
        (400.0, 100.0, 10),
        (40.0, 10.0, u64::MAX),
        (40.0, 10.0, 10),
    ] {
        let (ok, failed) = run(
            capacity_falls(before, after, Duration::from_secs(30), every),
            64,
        )
        .await;
        println!("capacity {before}/s then {after}/s from 30 s, 1 in {every} fails anyway: {ok:.1}/s served, {failed:.1}/s errors ({:.0} % of sent) over 40-60 s", 100.0 * failed / (ok + failed));
    }
}
