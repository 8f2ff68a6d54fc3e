//! End to end over real sockets on 127.0.0.1: a hyper server that throttles with
//! `Retry-After`, and 32 clones of a client stack (retry → rate limit → feedback →
//! hyper client).
//!
//! Real time is needed here (real sockets), so the assertions are one-sided: instants
//! are measured on the server when a request arrives (never earlier than it was
//! sent), and the throttle window starts when the server *built* its 429 (never later
//! than the client received it). The only exemption: a request the client had already
//! sent before it received the 429 (recorded on the client, below the feedback
//! layer) cannot have been held by it.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpListener;
use tower::retry::RetryLayer;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::{BoxError, Quota, RateLimitLayer, RateLimiter};
use tower_ratelimit_http::feedback::FeedbackLayer;
use tower_ratelimit_http::retry::RetryPolicy;

const CLONES: u64 = 32;
const WAIT: Duration = Duration::from_secs(2);

#[derive(Clone, Copy)]
enum Style {
    /// `Retry-After: 2`.
    Seconds,
    /// `Retry-After: <HTTP-date>` 2 s after a `Date` one hour ahead of real time.
    SkewedDate,
}

#[derive(Default)]
struct Server {
    /// (send sequence number, arrival instant) of every request.
    arrivals: Mutex<Vec<(u64, Instant)>>,
    /// When the first 429 was built, and the end of the throttle window.
    throttle: Mutex<Option<(Instant, Instant)>>,
    /// Successful answers per logical request id.
    successes: Mutex<HashMap<u64, u32>>,
}

fn header_u64(req: &http::Request<hyper::body::Incoming>, name: &str) -> u64 {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("test client sets the header")
}

fn answer(
    server: &Server,
    style: Style,
    req: &http::Request<hyper::body::Incoming>,
) -> http::Response<Full<Bytes>> {
    let arrived = Instant::now();
    server
        .arrivals
        .lock()
        .unwrap()
        .push((header_u64(req, "x-seq"), arrived));
    let mut throttle = server.throttle.lock().unwrap();
    let throttled = match *throttle {
        None => true,
        Some((_, end)) => arrived < end,
    };
    if !throttled {
        *server
            .successes
            .lock()
            .unwrap()
            .entry(header_u64(req, "x-id"))
            .or_default() += 1;
        return http::Response::new(Full::new(Bytes::from_static(b"ok")));
    }
    let mut res = http::Response::builder().status(429);
    res = match style {
        Style::Seconds => res.header("retry-after", "2"),
        Style::SkewedDate => {
            let server_now = SystemTime::now() + Duration::from_secs(3600);
            res.header("date", httpdate::fmt_http_date(server_now))
                .header("retry-after", httpdate::fmt_http_date(server_now + WAIT))
        }
    };
    let built = Instant::now();
    if throttle.is_none() {
        *throttle = Some((built, built + WAIT));
    }
    res.body(Full::new(Bytes::from_static(b"slow down")))
        .unwrap()
}

async fn serve(style: Style) -> (SocketAddr, Arc<Server>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Arc::new(Server::default());
    let state = Arc::clone(&server);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let res = answer(&state, style, &req);
                    async move { Ok::<_, std::convert::Infallible>(res) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, server)
}

/// What the client saw: send instants by sequence number, and when it first
/// received a 429.
#[derive(Default)]
struct ClientLog {
    sent: Mutex<HashMap<u64, Instant>>,
    first_429: Mutex<Option<Instant>>,
}

async fn run(style: Style) {
    let (addr, server) = serve(style).await;
    let log = Arc::new(ClientLog::default());
    let seq = Arc::new(AtomicU64::new(0));
    let hyper_client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();

    let recorder = {
        let log = Arc::clone(&log);
        service_fn(move |mut req: http::Request<Full<Bytes>>| {
            let n = seq.fetch_add(1, Ordering::SeqCst);
            req.headers_mut().insert("x-seq", n.into());
            log.sent.lock().unwrap().insert(n, Instant::now());
            let response = hyper_client.request(req);
            let log = Arc::clone(&log);
            async move {
                let res = response.await?;
                if res.status() == 429 {
                    log.first_429
                        .lock()
                        .unwrap()
                        .get_or_insert_with(Instant::now);
                }
                let (parts, body) = res.into_parts();
                let body = body.collect().await?.to_bytes();
                Ok::<_, BoxError>(http::Response::from_parts(parts, body))
            }
        })
    };
    // 50 per second, burst 1: without the pause, requests would keep arriving every
    // 20 ms inside the throttle window.
    let limiter = RateLimiter::new(Quota::per_second(50).unwrap().with_burst(1).unwrap());
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::new()))
        .layer(RateLimitLayer::with_limiter(limiter.clone()))
        .layer(FeedbackLayer::new(limiter.clone()))
        .service(recorder);

    let tasks: Vec<_> = (0..CLONES)
        .map(|id| {
            let req = http::Request::get(format!("http://{addr}/item/{id}"))
                .header("x-id", id)
                .body(Full::new(Bytes::new()))
                .unwrap();
            tokio::spawn(client.clone().oneshot(req))
        })
        .collect();
    let all = async {
        for task in tasks {
            let res = task.await.unwrap().expect("request failed");
            assert_eq!(res.status(), 200);
            assert_eq!(res.body().as_ref(), b"ok");
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("requests did not finish in 60 s");

    let (throttled_at, window_end) = server.throttle.lock().unwrap().expect("server throttled");
    let first_429 = log.first_429.lock().unwrap().expect("client saw the 429");
    let sent = log.sent.lock().unwrap();
    let arrivals = server.arrivals.lock().unwrap();
    let mut in_window = Vec::new();
    let mut exempt = 0;
    for (n, arrived) in arrivals.iter() {
        if *arrived > throttled_at && *arrived < window_end {
            if sent[n] < first_429 {
                exempt += 1; // already on the wire when the 429 came back
            } else {
                in_window.push((n, *arrived - throttled_at));
            }
        }
    }
    assert!(
        in_window.is_empty(),
        "requests started inside the {WAIT:?} window: {in_window:?}"
    );
    let after = arrivals.iter().filter(|(_, a)| *a >= window_end).count();
    assert!(
        after as u64 >= CLONES - 1 - exempt,
        "{after} arrivals after the window"
    );
    let successes = server.successes.lock().unwrap();
    assert_eq!(successes.len() as u64, CLONES);
    for id in 0..CLONES {
        assert_eq!(successes.get(&id), Some(&1), "request {id}");
    }
    eprintln!(
        "e2e: {} requests on the wire for {CLONES} ids, {exempt} already in flight at the 429",
        arrivals.len()
    );
}

#[tokio::test]
async fn retry_after_seconds_holds_every_clone() {
    run(Style::Seconds).await;
}

#[tokio::test]
async fn retry_after_date_is_read_against_a_skewed_date_header() {
    run(Style::SkewedDate).await;
}
