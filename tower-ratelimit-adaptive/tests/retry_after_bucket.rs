//! The default layer (`AdaptiveRateLimitLayer::new(classify::http_feedback)`, which
//! honours Retry-After) against the most common server: a token bucket that answers
//! `429` with a whole-second `Retry-After` and sends no `RateLimit` fields. On tokio's
//! paused clock, so exact and instant.
#![cfg(feature = "http")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tower::{service_fn, Service, ServiceExt};
use tower_ratelimit_adaptive::layer::classify;
use tower_ratelimit_adaptive::AdaptiveRateLimitLayer;

/// What one run saw: the accepted and refused responses per second.
struct Run {
    ok: Vec<u64>,
    refused: Vec<u64>,
    /// The controller's rate at the end of each second.
    rate: Vec<f64>,
}

impl Run {
    /// Accepted responses per second over the last `secs` seconds.
    fn goodput_tail(&self, secs: usize) -> f64 {
        let n = self.ok.len();
        self.ok[n - secs..].iter().sum::<u64>() as f64 / secs as f64
    }
}

/// `workers` closed loops through the default layer for `secs` of virtual time against
/// a token bucket of `limit`/s holding `burst`, answering after `latency` with a 200 or
/// a 429 carrying `Retry-After` rounded up to whole seconds (at least 1), as
/// tower-ratelimit-http's own server and most APIs do.
async fn run(limit: f64, burst: f64, latency: Duration, workers: usize, secs: u64) -> Run {
    let start = Instant::now();
    let bucket = Arc::new(Mutex::new((burst, start)));
    let server = service_fn(move |_: ()| {
        let bucket = bucket.clone();
        async move {
            tokio::time::sleep(latency).await;
            let wait = {
                let mut g = bucket.lock().unwrap();
                let now = Instant::now();
                g.0 = (g.0 + now.duration_since(g.1).as_secs_f64() * limit).min(burst);
                g.1 = now;
                if g.0 >= 1.0 {
                    g.0 -= 1.0;
                    None
                } else {
                    Some(((1.0 - g.0) / limit).ceil().max(1.0) as u64)
                }
            };
            let resp = match wait {
                None => http::Response::builder().status(200),
                Some(s) => http::Response::builder()
                    .status(429)
                    .header("retry-after", s.to_string()),
            };
            Ok::<_, std::io::Error>(resp.body(()).unwrap())
        }
    });
    let layer = AdaptiveRateLimitLayer::new(classify::http_feedback);
    let svc = tower::ServiceBuilder::new()
        .layer(layer.clone())
        .service(server);
    let log = Arc::new(Mutex::new(Run {
        ok: vec![0; secs as usize],
        refused: vec![0; secs as usize],
        rate: Vec::new(),
    }));
    let sampler = {
        let log = log.clone();
        tokio::spawn(async move {
            for s in 1..=secs {
                tokio::time::sleep_until(start + Duration::from_secs(s)).await;
                let r = layer.rate(&()).unwrap_or(f64::NAN);
                log.lock().unwrap().rate.push(r);
            }
        })
    };
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let mut svc = svc.clone();
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < Duration::from_secs(secs) {
                let status = svc.ready().await.unwrap().call(()).await.unwrap().status();
                let s = start.elapsed().as_secs() as usize;
                let mut g = log.lock().unwrap();
                if s < g.ok.len() {
                    if status.is_success() {
                        g.ok[s] += 1;
                    } else {
                        g.refused[s] += 1;
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    sampler.await.unwrap();
    Arc::try_unwrap(log).ok().unwrap().into_inner().unwrap()
}

/// Runs the default layer for a minute against each `(limit, burst, latency in ms)`
/// and returns, per case, the share of the limit accepted over the last 30 s and the
/// refusals in them (printed with the per-second trace for `--nocapture`).
async fn sweep(cases: &[(f64, f64, u64)]) -> Vec<(f64, u64)> {
    let mut out = Vec::new();
    for &(limit, burst, latency_ms) in cases {
        let r = run(limit, burst, Duration::from_millis(latency_ms), 16, 60).await;
        let goodput = r.goodput_tail(30) / limit;
        let refused: u64 = r.refused[30..].iter().sum();
        println!(
            "{limit}/s burst {burst} latency {latency_ms} ms: last 30 s {goodput:.3} of the \
             limit, {refused} refused\n  ok per second {:?}\n  refused {:?}\n  rate {:?}",
            r.ok,
            r.refused,
            r.rate
                .iter()
                .map(|r| (r * 10.0).round() / 10.0)
                .collect::<Vec<_>>()
        );
        out.push((goodput, refused));
    }
    out
}

/// Token buckets of `limits`, each with a burst of 0.1 s (at least 1.5) at round trips
/// of 1, 20, 50, 80 and 100 ms, and with a burst of 1 s at 1 ms.
fn grid(limits: &[f64]) -> Vec<(f64, f64, u64)> {
    let mut cases = Vec::new();
    for &l in limits {
        let small = f64::max(0.1 * l, 1.5);
        for ms in [1, 20, 50, 80, 100] {
            cases.push((l, small, ms));
        }
        cases.push((l, l, 1));
    }
    cases
}

/// At 10–20/s the first measurement spans the 1 s hold and read the limit low (10 of
/// 15/s), and the cruise after a hold (30 holds) kept that reading. Over this grid of
/// 30 servers the default got 0.54–0.96 of the limit over the last 30 s of a minute,
/// 0.84 on average, under 0.9 on 25. Now 0.88–1.00, 0.94 on average (see the crate's
/// report for the grid before and after).
#[tokio::test(start_paused = true)]
async fn default_layer_settles_near_a_slow_retry_after_buckets_limit() {
    let cases = grid(&[10.0, 12.0, 15.0, 18.0, 20.0]);
    let seen = sweep(&cases).await;
    let mean = seen.iter().map(|(g, _)| g).sum::<f64>() / seen.len() as f64;
    // Every 429 costs a whole second; a handful in 30 s is a probe's price.
    let bad: Vec<_> = cases
        .iter()
        .zip(&seen)
        .filter(|(_, (g, refused))| *g < 0.87 || *refused > 8)
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
    assert!(mean >= 0.93, "mean {mean}");
}

/// The same at 30–60/s, where 1–5 requests are in flight at these round trips; not a
/// target of the change (0.80 of the limit on average before it, 0.92 after, with
/// cases at 0.78–0.84 left). `cargo test --test retry_after_bucket -- --ignored
/// --nocapture` prints it.
#[tokio::test(start_paused = true)]
#[ignore]
async fn faster_buckets_sweep() {
    let seen = sweep(&grid(&[30.0, 40.0, 50.0, 60.0])).await;
    let mean = seen.iter().map(|(g, _)| g).sum::<f64>() / seen.len() as f64;
    println!("mean {mean:.3}");
    assert!(mean > 0.8, "mean {mean}");
}
