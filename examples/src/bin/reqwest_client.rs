//! A reqwest client through tower-ratelimit-http's `reqwest-middleware`
//! integration: every request waits for the shared limiter, a 429 pauses it for
//! all of them, and throttled requests are retried after the server's Retry-After.
//!
//! ```text
//! cargo run --release -p examples --bin reqwest_client            # starts a local API
//! cargo run --release -p examples --bin reqwest_client -- --url http://127.0.0.1:PORT/items
//! ```

use std::time::Duration;

use clap::Parser;
use examples::api_server::{ApiConfig, ApiServer};
use examples::client::page_uri;
use examples::metrics::PageLedger;
use futures_util::StreamExt;
use reqwest::StatusCode;
use tower::BoxError;
use tower_ratelimit_core::{Quota, RateLimiter};
use tower_ratelimit_http::reqwest::RateLimitMiddleware;

/// Fetches pages with reqwest, paced by a shared rate limiter.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// An items endpoint; without it, a local API limited to 50 req/s is started.
    #[arg(long)]
    url: Option<String>,
    /// Pages 1..=N are fetched.
    #[arg(long, default_value_t = 100, value_parser = examples::cli::page_count)]
    pages: u64,
    /// Requests per second the client allows itself (deliberately above the local
    /// API's 50, to show the feedback and retries at work).
    #[arg(long, default_value_t = 80.0, value_parser = examples::cli::positive_rate)]
    rate: f64,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 8, value_parser = examples::cli::concurrency)]
    concurrency: usize,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let (url, local) = match &args.url {
        Some(url) => (url.clone(), None),
        None => {
            let server = ApiServer::start(ApiConfig {
                rate: 50.0,
                burst: 5,
                latency: Duration::from_millis(20),
                jitter: Duration::from_millis(10),
                ..ApiConfig::default()
            })
            .await?;
            (server.url(), Some(server))
        }
    };

    // One limiter for the whole client: every request through it shares the pace
    // and every pause. The rate given is a ceiling: the server's advertised policy,
    // when slower, sets the pace after its first answer.
    let limiter = RateLimiter::new(Quota::from_rate(args.rate, 1)?);
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(RateLimitMiddleware::new(limiter).adopt_policy(true))
        .build();

    let started = tokio::time::Instant::now();
    let mut ledger = PageLedger::new(args.pages);
    let mut failed = 0u64;
    let mut answers = futures_util::stream::iter(1..=args.pages)
        .map(|page| {
            let request = page_uri(&url, page).map(|uri| client.get(uri.to_string()).send());
            async move {
                match request {
                    Ok(send) => (page, send.await.map_err(BoxError::from)),
                    Err(e) => (page, Err(BoxError::from(e))),
                }
            }
        })
        .buffer_unordered(args.concurrency.max(1));
    while let Some((page, answer)) = answers.next().await {
        match answer {
            Ok(response) if response.status() == StatusCode::OK => {
                // The body is read and dropped: a real client would write it out.
                response.bytes().await?;
                ledger.record(page);
            }
            Ok(response) => {
                eprintln!("page {page}: {}", response.status());
                failed += 1;
            }
            Err(e) => {
                eprintln!("page {page}: {e}");
                failed += 1;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{} of {} pages in {elapsed:.2} s ({:.1} pages/s), {failed} failed",
        ledger.written(),
        args.pages,
        ledger.written() as f64 / elapsed.max(f64::EPSILON),
    );
    if let Some(server) = local {
        let seen = server.stats().report();
        println!(
            "the server saw {} requests: {} x 429 (each retried after its Retry-After; {} too early)",
            seen.requests, seen.throttled, seen.early_retries
        );
        server.shutdown().await;
    }
    if ledger.exactly_once() {
        Ok(())
    } else {
        Err("not every page was fetched".into())
    }
}
