//! The server layer under load: an axum handler with and without
//! `HttpRateLimitLayer`, and with `tower_governor`, loaded by `wrk` in a second process
//! over loopback.
//!
//! ```text
//! apt-get install -y wrk
//! cargo bench -p tower-ratelimit-http --bench server
//! SERVER_BENCH_SECS=3 SERVER_BENCH_ROUNDS=3 cargo bench -p tower-ratelimit-http --bench server
//! # in-process only, with a cheaper form of the layer (global | nofields | global-nofields):
//! SERVER_BENCH_ROUNDS=0 SERVER_BENCH_LAYER=global cargo bench -p tower-ratelimit-http --bench server
//! # in-process batches: SERVER_BENCH_BATCH (default 100000), SERVER_BENCH_BATCHES (12)
//! ```
//!
//! Each configuration is served on its own ephemeral port by one tokio worker thread
//! (the machine has 2 cores: one for the server, one for wrk). Two loads per run:
//!
//! - latency: `wrk -t1 -c1 --latency` (one connection, closed loop), so the
//!   percentiles are the service time without queueing, and the added latency is the
//!   difference to the bare handler;
//! - throughput: `wrk -t1 -c64`, the most requests per second the server sustains.
//!
//! First, without network, the CPU cost per request of each app (on-CPU time of the
//! fastest of 40 interleaved batches of 10 000 requests through the router).
//!
//! Configurations run interleaved, `SERVER_BENCH_ROUNDS` times (default 3), and the
//! median of the rounds is reported. Quotas are far above the load, so every request
//! is allowed and the fast path is measured, except the `denied` rows, whose quota is
//! 1 per hour so nearly every request is answered 429 by the limiter itself.
//! Without `wrk` on the PATH the bench prints how to get it and exits.

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::Quota;
use tower_ratelimit_http::server::headers::HeaderStyle;
use tower_ratelimit_http::server::key::ClientIp;
use tower_ratelimit_http::server::HttpRateLimitLayer;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    Bare,
    Layer,
    Governor,
    LayerDenied,
    GovernorDenied,
}

impl Variant {
    const ALL: [Variant; 5] = [
        Variant::Bare,
        Variant::Layer,
        Variant::Governor,
        Variant::LayerDenied,
        Variant::GovernorDenied,
    ];

    fn name(self) -> &'static str {
        match self {
            Variant::Bare => "bare handler",
            Variant::Layer => "HttpRateLimitLayer (per IP, allowed)",
            Variant::Governor => "tower_governor 0.8 (per IP, allowed, use_headers)",
            Variant::LayerDenied => "HttpRateLimitLayer (per IP, denied)",
            Variant::GovernorDenied => "tower_governor 0.8 (per IP, denied, use_headers)",
        }
    }
}

/// The app of one configuration. Every variant copies the peer address into a bare
/// `SocketAddr` extension, which both limiters read, so the work around them is equal.
fn app(variant: Variant) -> Router {
    let router = Router::new().route("/", get(|| async { "hello" }));
    let router = match variant {
        Variant::Bare => router,
        Variant::Layer | Variant::LayerDenied => {
            let quota = if variant == Variant::Layer {
                Quota::per_second(1_000_000_000).unwrap()
            } else {
                Quota::per_hour(1).unwrap()
            };
            // SERVER_BENCH_LAYER picks a cheaper form of the layer, to see where its
            // cost goes: `global` (one unkeyed bucket), `nofields` (no RateLimit
            // fields), `global-nofields`. The default is the per-IP layer with fields.
            let no_fields = HeaderStyle {
                ietf: false,
                x_ratelimit: false,
                draft06: false,
            };
            match std::env::var("SERVER_BENCH_LAYER").as_deref() {
                Ok("global") => router.layer(HttpRateLimitLayer::global(MemoryStore::new(quota))),
                Ok("nofields") => router.layer(
                    HttpRateLimitLayer::keyed(quota, ClientIp::peer()).header_style(no_fields),
                ),
                Ok("global-nofields") => router.layer(
                    HttpRateLimitLayer::global(MemoryStore::new(quota)).header_style(no_fields),
                ),
                _ => router.layer(HttpRateLimitLayer::keyed(quota, ClientIp::peer())),
            }
        }
        Variant::Governor | Variant::GovernorDenied => {
            let mut builder = tower_governor::governor::GovernorConfigBuilder::default();
            if variant == Variant::Governor {
                builder.per_nanosecond(1).burst_size(1_000_000_000);
            } else {
                builder.period(Duration::from_secs(3600)).burst_size(1);
            }
            let config = builder.use_headers().finish().unwrap();
            router.layer(tower_governor::GovernorLayer::new(config))
        }
    };
    router.layer(axum::middleware::map_request(
        |ConnectInfo(peer): ConnectInfo<SocketAddr>, mut request: axum::extract::Request| async move {
            request.extensions_mut().insert(peer);
            request
        },
    ))
}

/// Serves every variant on its own port from one single-worker runtime.
fn serve_all() -> Vec<(Variant, SocketAddr)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let addrs = runtime.block_on(async {
        let mut addrs = Vec::new();
        for variant in Variant::ALL {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addrs.push((variant, listener.local_addr().unwrap()));
            let app = app(variant);
            tokio::spawn(async move {
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .await
                .unwrap();
            });
        }
        addrs
    });
    // The runtime keeps serving on its worker thread for the rest of the process.
    std::mem::forget(runtime);
    addrs
}

#[derive(Debug, Default, Clone, Copy)]
struct Run {
    p50_us: f64,
    p99_us: f64,
    rps: f64,
    non_2xx: u64,
}

fn wrk(addr: SocketAddr, connections: u32, secs: u64) -> Run {
    let output = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{secs}s"),
            "--latency",
            &format!("http://{addr}/"),
        ])
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut run = Run::default();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", value] => run.p50_us = micros(value),
            ["99%", value] => run.p99_us = micros(value),
            ["Requests/sec:", value] => run.rps = value.parse().unwrap_or(0.0),
            ["Non-2xx", "or", "3xx", "responses:", n] => run.non_2xx = n.parse().unwrap_or(0),
            _ => {}
        }
    }
    run
}

/// `41.00us`, `1.20ms`, `2.00s` in microseconds.
fn micros(value: &str) -> f64 {
    let split = value
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => number,
        "ms" => number * 1e3,
        "s" => number * 1e6,
        _ => f64::NAN,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Time this thread has spent on a CPU, in nanoseconds (Linux `schedstat`): unlike the
/// wall clock, it does not count the time other processes held the CPU.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Nanoseconds per request through each app without any network: the CPU cost of
/// the middleware itself. The variants take turns batch by batch, so that other
/// processes disturb them alike; per variant the fastest and the median batch are
/// kept.
fn in_process(batch: u32, batches: u32) -> Vec<(f64, f64)> {
    use tower::{Service, ServiceExt};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // `with_state` turns every handler into its route once, as `axum::serve` does
        // (through `into_make_service`); a `Router` called directly would rebuild each
        // route, layers included, on every request.
        let mut apps: Vec<Router> = Variant::ALL
            .iter()
            .map(|v| app(*v).with_state(()))
            .collect();
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let mut per_request = vec![Vec::new(); apps.len()];
        for _ in 0..batches {
            for (i, app) in apps.iter_mut().enumerate() {
                let start = std::time::Instant::now();
                let cpu_start = thread_cpu_ns();
                for _ in 0..batch {
                    let mut request = axum::extract::Request::new(axum::body::Body::empty());
                    request.extensions_mut().insert(ConnectInfo(peer));
                    let ready = ServiceExt::<axum::extract::Request>::ready(&mut *app)
                        .await
                        .unwrap();
                    let response = ready.call(request).await.unwrap();
                    std::hint::black_box(response);
                }
                let nanos = match (cpu_start, thread_cpu_ns()) {
                    (Some(a), Some(b)) => b.saturating_sub(a) as f64,
                    _ => start.elapsed().as_nanos() as f64,
                };
                per_request[i].push(nanos / f64::from(batch));
            }
        }
        per_request
            .into_iter()
            .map(|runs| {
                let min = runs.iter().copied().fold(f64::INFINITY, f64::min);
                (min, median(runs))
            })
            .collect()
    })
}

fn main() {
    // The kernel may account thread CPU time in whole scheduler ticks (4 ms here):
    // batches of 100,000 requests keep that under 40 ns per request.
    let batch = env("SERVER_BENCH_BATCH", 100_000) as u32;
    let batches = env("SERVER_BENCH_BATCHES", 12) as u32;
    println!("In process (no network): on-CPU ns per request through the axum app (thread CPU time from /proc/thread-self/schedstat), {batches} interleaved batches of {batch}");
    println!();
    println!("| configuration | fastest batch | median batch | added (fastest) |");
    println!("|---|---|---|---|");
    let costs = in_process(batch, batches);
    let bare = costs[0].0;
    for (variant, (min, med)) in Variant::ALL.iter().zip(costs) {
        println!(
            "| {} | {:.0} ns | {:.0} ns | {:+.0} ns |",
            variant.name(),
            min,
            med,
            min - bare
        );
    }
    println!();

    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("server bench: `wrk` not found; install it (apt-get install -y wrk) for the loopback loads");
        return;
    }
    let secs = env("SERVER_BENCH_SECS", 3);
    let rounds = env("SERVER_BENCH_ROUNDS", 3) as usize;
    if rounds == 0 {
        return;
    }
    let addrs = serve_all();

    let mut latency: Vec<Vec<Run>> = vec![Vec::new(); addrs.len()];
    let mut throughput: Vec<Vec<Run>> = vec![Vec::new(); addrs.len()];
    for round in 1..=rounds {
        for (i, (variant, addr)) in addrs.iter().enumerate() {
            let lat = wrk(*addr, 1, secs);
            let thr = wrk(*addr, 64, secs);
            eprintln!(
                "round {round} {:<52} c1: p50 {:>7.1} us p99 {:>7.1} us | c64: {:>9.0} req/s (non-2xx {})",
                variant.name(),
                lat.p50_us,
                lat.p99_us,
                thr.rps,
                thr.non_2xx
            );
            latency[i].push(lat);
            throughput[i].push(thr);
        }
    }

    let p50 = |i: usize| median(latency[i].iter().map(|r| r.p50_us).collect());
    let p99 = |i: usize| median(latency[i].iter().map(|r| r.p99_us).collect());
    let rps = |i: usize| median(throughput[i].iter().map(|r| r.rps).collect());
    println!();
    println!(
        "wrk -t1, {secs} s per load, median of {rounds} rounds; server: axum on 1 tokio worker"
    );
    println!();
    println!("| configuration | p50 (c=1) | p99 (c=1) | added p50 | added p99 | max req/s (c=64), median [min–max] | vs bare | non-2xx at c=64 |");
    println!("|---|---|---|---|---|---|---|---|");
    for (i, (variant, _)) in addrs.iter().enumerate() {
        let non_2xx = throughput[i].iter().map(|r| r.non_2xx).max().unwrap_or(0);
        let lo = throughput[i]
            .iter()
            .map(|r| r.rps)
            .fold(f64::INFINITY, f64::min);
        let hi = throughput[i].iter().map(|r| r.rps).fold(0.0, f64::max);
        println!(
            "| {} | {:.1} µs | {:.1} µs | {:+.1} µs | {:+.1} µs | {:.0} [{:.0}–{:.0}] | {:.3} | {} |",
            variant.name(),
            p50(i),
            p99(i),
            p50(i) - p50(0),
            p99(i) - p99(0),
            rps(i),
            lo,
            hi,
            rps(i) / rps(0),
            non_2xx
        );
    }
}
