//! The README's client stack (`RetryPolicy` > pool > rate > `FeedbackLayer`) against the
//! crate's own server, when the client's burst is larger than the server's: a `429`
//! pauses the client for the server's whole-second `Retry-After`, and the pause must
//! not end in a burst into the next `429` (the bucket refilled while it waited). A
//! throttle empties the client's bucket at its end, so requests resume at the rate.
//!
//! Before: the README's pair (server 100/s with a burst of 1, client `per_second(100)`)
//! took 176 s for 300 requests and 123 of them failed after 5 retries; the showdown's
//! server (burst 10) with a client at `per_second(90)` took 20 s.

use futures_util::StreamExt;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower::retry::RetryLayer;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::{BoxError, Quota, RateLimiter, ServiceBuilderExt};
use tower_ratelimit_http::server::HttpRateLimitLayer;
use tower_ratelimit_http::{FeedbackLayer, RetryPolicy};

type Body = http_body_util::Empty<bytes::Bytes>;

#[derive(Debug)]
struct Run {
    seconds: f64,
    ok: usize,
    refused: usize,
    refusals_seen_by_server: usize,
}

/// `n` requests through the README stack (pool of 8) against a server of `server_quota`
/// answering in 51 ms.
async fn run(server_quota: Quota, client_quota: Quota, n: usize) -> Run {
    let refusals = Arc::new(AtomicUsize::new(0));
    let app = tower::service_fn(|_: http::Request<()>| async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok::<_, Infallible>(http::Response::new(Body::new()))
    });
    let server = HttpRateLimitLayer::global(MemoryStore::new(server_quota)).layer(app);
    let counted = Arc::clone(&refusals);
    let server = tower::service_fn(move |request: http::Request<()>| {
        let (server, counted) = (server.clone(), Arc::clone(&counted));
        async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let response = server.oneshot(request).await?;
            if response.status() == 429 {
                counted.fetch_add(1, Ordering::SeqCst);
            }
            Ok::<_, Infallible>(response)
        }
    });
    let limiter = RateLimiter::new(client_quota);
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::new()))
        .limit_concurrency(8)
        .limit_rate_with(limiter.clone())
        .layer(FeedbackLayer::new(limiter))
        .map_err(BoxError::from)
        .service(server);
    let start = tokio::time::Instant::now();
    let answers: Vec<_> = client
        .call_all(futures_util::stream::iter(
            (0..n).map(|_| http::Request::new(())),
        ))
        .unordered()
        .collect()
        .await;
    let status = |code: u16| {
        answers
            .iter()
            .filter(|a| matches!(a, Ok(r) if r.status() == code))
            .count()
    };
    Run {
        seconds: start.elapsed().as_secs_f64(),
        ok: status(200),
        refused: status(429),
        refusals_seen_by_server: refusals.load(Ordering::SeqCst),
    }
}

#[tokio::test(start_paused = true)]
async fn the_readme_pair_runs_at_the_servers_rate() {
    // The README's server example (100/s, burst 1) and client snippet (100/s, burst 100).
    let server = Quota::per_second(100).and_then(|q| q.with_burst(1));
    let run = run(
        server.expect("quota"),
        Quota::per_second(100).expect("quota"),
        300,
    )
    .await;
    eprintln!("{run:?} (3.0 s at the server's rate)");
    assert_eq!((run.ok, run.refused), (300, 0), "{run:?}");
    // A refusal or a few (the client's spacing meets the server's exactly), each
    // costing the server's 1 s `Retry-After`, never a burst into the next one.
    assert!(run.refusals_seen_by_server <= 10, "{run:?}");
    assert!(run.seconds < 6.0, "{run:?}");
}

#[tokio::test(start_paused = true)]
async fn a_client_under_the_servers_rate_with_a_larger_burst_is_refused_once_at_most() {
    // The showdown's server (100/s, burst 10); a client at 90/s with its default burst.
    let server = Quota::per_second(100).and_then(|q| q.with_burst(10));
    let run = run(
        server.expect("quota"),
        Quota::per_second(90).expect("quota"),
        300,
    )
    .await;
    eprintln!("{run:?} (3.3 s at the client's rate)");
    assert_eq!((run.ok, run.refused), (300, 0), "{run:?}");
    assert!(run.refusals_seen_by_server <= 1, "{run:?}");
    assert!(run.seconds < 5.0, "{run:?}");
}
