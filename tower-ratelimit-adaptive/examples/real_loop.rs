//! The default controller against a real hyper server on 127.0.0.1 whose token-bucket
//! limit changes mid-run, in real time (about 21 s), reporting the simulation's metrics.
//!
//! `cargo run --release -p tower-ratelimit-adaptive --example real_loop [-- --limit 200 --phase-secs 7 --headers]`
//!
//! The server answers 200 or 429 after 20 ms (an emulated round trip) from a token
//! bucket of `L`/s holding 0.1 s of burst; the limit goes `L → L/2 → L`. The client is
//! a bulk job: 64 workers share one `AdaptiveRateLimitLayer` over hyper's client, and
//! retry an item until it is accepted. Counts are taken at the server, per second.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Empty, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn as hyper_service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower::{Service, ServiceExt};
use tower_ratelimit_adaptive::sim::{phase_metrics, Schedule, Trace};
use tower_ratelimit_adaptive::{AdaptiveRateLimitLayer, Hints, Outcome, Policy};

struct Bucket {
    tokens: f64,
    last: Instant,
    rate: f64,
}

struct ServerState {
    bucket: Mutex<Bucket>,
    start: Instant,
    accepted: Vec<AtomicU64>,
    refused: Vec<AtomicU64>,
    headers: bool,
}

impl ServerState {
    fn decide(&self) -> (bool, f64) {
        let mut b = self.bucket.lock().unwrap();
        let now = Instant::now();
        let cap = (b.rate * 0.1).max(1.0);
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * b.rate).min(cap);
        b.last = now;
        let ok = b.tokens >= 1.0;
        if ok {
            b.tokens -= 1.0;
        }
        let sec = self.start.elapsed().as_secs() as usize;
        let bins = if ok { &self.accepted } else { &self.refused };
        if let Some(c) = bins.get(sec) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        (ok, b.rate)
    }
}

async fn serve(listener: TcpListener, state: Arc<ServerState>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = hyper_service_fn(move |_req: Request<hyper::body::Incoming>| {
                let state = state.clone();
                async move {
                    let (ok, rate) = state.decide();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let mut resp = Response::new(Full::new(Bytes::new()));
                    if !ok {
                        *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                    }
                    if state.headers {
                        let v = format!("\"default\";q={};w=1", rate.round() as u64);
                        resp.headers_mut()
                            .insert("ratelimit-policy", v.parse().unwrap());
                    }
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn classify(
    r: &Result<Response<hyper::body::Incoming>, hyper_util::client::legacy::Error>,
) -> Outcome {
    match r {
        Err(_) => Outcome::Overload {
            latency: Duration::ZERO,
        },
        Ok(resp) => {
            // A tiny reader of `RateLimit-Policy: "name";q=N;w=S`, enough for this server.
            let policy = resp
                .headers()
                .get("ratelimit-policy")
                .and_then(|v| v.to_str().ok())
                .and_then(|s| {
                    let q = s.split(";q=").nth(1)?.split(';').next()?.parse().ok()?;
                    let w = s.split(";w=").nth(1)?.split(';').next()?.parse().ok()?;
                    Some(Policy::new(q, Duration::from_secs(w)))
                });
            let hints = Hints {
                policy,
                ..Hints::default()
            };
            if resp.status() == StatusCode::TOO_MANY_REQUESTS {
                Outcome::Throttled {
                    latency: Duration::ZERO,
                    retry_after: None,
                    hints,
                }
            } else {
                Outcome::Success {
                    latency: Duration::ZERO,
                    hints,
                }
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let arg = common::flag;
    let limit: f64 = arg("--limit").and_then(|v| v.parse().ok()).unwrap_or(200.0);
    let phase_secs: u64 = arg("--phase-secs")
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
        .clamp(3, 20);
    let headers = std::env::args().any(|a| a == "--headers");
    let schedule = Schedule::halve_double(limit, phase_secs);
    let total = 3 * phase_secs;

    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    let start = Instant::now();
    let state = Arc::new(ServerState {
        bucket: Mutex::new(Bucket {
            tokens: limit * 0.1,
            last: start,
            rate: limit,
        }),
        start,
        accepted: (0..total).map(|_| AtomicU64::new(0)).collect(),
        refused: (0..total).map(|_| AtomicU64::new(0)).collect(),
        headers,
    });
    tokio::spawn(serve(listener, state.clone()));
    {
        let state = state.clone();
        let schedule = schedule.clone();
        tokio::spawn(async move {
            for p in 1..3u64 {
                tokio::time::sleep_until(start + Duration::from_secs(p * phase_secs)).await;
                let mut b = state.bucket.lock().unwrap();
                let now = Instant::now();
                b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * b.rate)
                    .min((b.rate * 0.1).max(1.0));
                b.last = now;
                b.rate = schedule.limit_at((p * phase_secs) as f64);
            }
        });
    }

    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let layer = AdaptiveRateLimitLayer::new(classify);
    let svc = tower::ServiceBuilder::new()
        .layer(layer.clone())
        .service(client);
    let uri: hyper::Uri = format!("http://{addr}/item").parse().expect("uri");
    let waits = Arc::new(Mutex::new(Vec::<(u32, f32)>::new()));
    let deadline = start + Duration::from_secs(total);
    let mut workers = Vec::new();
    for _ in 0..64 {
        let mut svc = svc.clone();
        let uri = uri.clone();
        let waits = waits.clone();
        workers.push(tokio::spawn(async move {
            'items: while Instant::now() < deadline {
                let first = Instant::now();
                loop {
                    let req = Request::get(uri.clone())
                        .body(Empty::<Bytes>::new())
                        .expect("request");
                    let sent = Instant::now();
                    let Ok(ready) = svc.ready().await else {
                        break 'items;
                    };
                    match ready.call(req).await {
                        Ok(resp) if resp.status().is_success() => {
                            let bin = sent.duration_since(start).as_secs() as u32;
                            waits
                                .lock()
                                .unwrap()
                                .push((bin, sent.duration_since(first).as_secs_f32()));
                            continue 'items;
                        }
                        _ if Instant::now() >= deadline => break 'items,
                        _ => {}
                    }
                }
            }
        }));
    }
    let mut last_print = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let s = start.elapsed().as_secs();
        if s > last_print && (s as usize) <= state.accepted.len() {
            last_print = s;
            let i = s as usize - 1;
            eprintln!(
                "t={s:>2}s limit {:>6.1} accepted {:>5} refused {:>4} rate {:>7.1}",
                schedule.limit_at(i as f64),
                state.accepted[i].load(Ordering::Relaxed),
                state.refused[i].load(Ordering::Relaxed),
                layer.rate(&()).unwrap_or(0.0)
            );
        }
    }
    for w in workers {
        w.abort();
    }

    let trace = Trace {
        accepted: vec![state
            .accepted
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()],
        refused: state
            .refused
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect(),
        limit: (0..total).map(|s| schedule.limit_at(s as f64)).collect(),
        arrivals: vec![0; total as usize],
        waits: waits.lock().unwrap().clone(),
        local_rejects: 0,
        rate: vec![0.0; total as usize],
    };
    println!("| phase | limit | goodput / L | 429 % | conv. s | p99 wait ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (i, p) in phase_metrics(&trace, &schedule).iter().enumerate() {
        println!(
            "| {} ({:?}) | {} | {:.3} | {:.2} | {} | {:.0} |",
            i + 1,
            p.change,
            schedule.phases[i].limit_from,
            p.goodput,
            100.0 * p.refused_share,
            p.convergence.map_or("—".into(), |c| format!("{c:.0}")),
            1000.0 * p.p99_wait
        );
    }
}
