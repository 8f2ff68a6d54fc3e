//! The bulk job against the local API, end to end over loopback TCP.
//!
//! These run on the real clock: with real sockets, tokio's paused clock jumps ahead
//! whenever the runtime waits for I/O, which would hide the very throttling under
//! test. Nothing here asserts on speed; a run takes a few seconds because the
//! server's `Retry-After` is whole seconds.

use std::collections::HashSet;
use std::time::Duration;

use examples::api_server::{ApiConfig, ApiServer, RetryAfterStyle};
use examples::bulk::{self, BulkConfig, Pace};

/// A server much slower than the client asks for, so the client is throttled.
fn tight_server(retry_after: RetryAfterStyle, unavailable_every: Option<u64>) -> ApiConfig {
    ApiConfig {
        rate: 50.0,
        burst: 10,
        latency: Duration::from_millis(2),
        jitter: Duration::from_millis(1),
        retry_after,
        unavailable_every,
        advertise: false,
    }
}

fn pages_in(out: &[u8]) -> Vec<u64> {
    String::from_utf8(out.to_vec())
        .expect("utf-8 output")
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("one JSON body per line");
            v["page"].as_u64().expect("page number")
        })
        .collect()
}

async fn fetch_all(server: &ApiServer, pages: u64) -> (bulk::BulkSummary, Vec<u64>) {
    let config = BulkConfig::new(server.url(), pages, Pace::Rate(200.0), 4);
    let mut out = Vec::new();
    let summary = bulk::run(&config, &mut out).await.expect("job runs");
    (summary, pages_in(&out))
}

fn assert_exactly_once(summary: &bulk::BulkSummary, written: &[u64], pages: u64) {
    assert!(summary.exactly_once(), "{summary}");
    let distinct: HashSet<u64> = written.iter().copied().collect();
    assert_eq!(written.len() as u64, pages, "one line per page");
    assert_eq!(distinct, (1..=pages).collect::<HashSet<u64>>());
}

#[tokio::test]
async fn every_page_once_and_every_429_honoured() {
    let server = ApiServer::start(tight_server(RetryAfterStyle::Seconds, None))
        .await
        .unwrap();
    let (summary, written) = fetch_all(&server, 40).await;
    let seen = server.stats().report();
    server.shutdown().await;

    assert_exactly_once(&summary, &written, 40);
    assert!(
        seen.throttled > 0,
        "the client must have been throttled: {seen:?}"
    );
    assert_eq!(summary.throttled, seen.throttled);
    assert_eq!(summary.sent, seen.requests);
    assert_eq!(summary.retries(), seen.throttled);
    assert_eq!(
        seen.early_retries, 0,
        "a page came back before its Retry-After"
    );
}

#[tokio::test]
async fn http_dates_and_503s_are_honoured_too() {
    let server = ApiServer::start(tight_server(RetryAfterStyle::Mixed, Some(25)))
        .await
        .unwrap();
    let (summary, written) = fetch_all(&server, 40).await;
    let seen = server.stats().report();
    server.shutdown().await;

    assert_exactly_once(&summary, &written, 40);
    assert!(seen.unavailable > 0 && seen.throttled > 0, "{seen:?}");
    assert_eq!(summary.unavailable, seen.unavailable);
    assert_eq!(summary.retries(), seen.throttled + seen.unavailable);
    assert_eq!(
        seen.early_retries, 0,
        "a page came back before its Retry-After"
    );
}

#[tokio::test]
async fn a_server_that_keeps_up_sees_no_retries() {
    let server = ApiServer::start(ApiConfig {
        rate: 1000.0,
        burst: 10,
        ..ApiConfig::default()
    })
    .await
    .unwrap();
    let (summary, written) = fetch_all(&server, 30).await;
    let seen = server.stats().report();
    server.shutdown().await;

    assert_exactly_once(&summary, &written, 30);
    assert_eq!((seen.throttled, summary.retries()), (0, 0));
    assert!(seen.peak_in_flight <= 4, "concurrency 4 exceeded: {seen:?}");
}

#[tokio::test]
async fn adaptive_pace_delivers_every_page_once() {
    let server = ApiServer::start(tight_server(RetryAfterStyle::Seconds, None))
        .await
        .unwrap();
    let config = BulkConfig::new(server.url(), 40, Pace::Adaptive, 4);
    let mut out = Vec::new();
    let summary = bulk::run(&config, &mut out).await.expect("job runs");
    let seen = server.stats().report();
    server.shutdown().await;

    assert_exactly_once(&summary, &pages_in(&out), 40);
    assert_eq!(summary.sent, seen.requests);
    assert_eq!(
        seen.early_retries, 0,
        "a page came back before its Retry-After"
    );
}
