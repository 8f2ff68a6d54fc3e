//! The examples' local API as a standalone server, for `bulk_fetch` and
//! `reqwest_client` (the showdown starts its own).
//!
//! ```text
//! cargo run --release -p examples --bin api_server -- --rate 100 --burst 10
//! ```
//!
//! Prints the items URL, then serves until interrupted.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use examples::api_server::{ApiConfig, ApiServer, RetryAfterStyle};

/// Serves GET /items?page=N on 127.0.0.1 behind a token bucket.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Requests per second accepted over time.
    #[arg(long, default_value_t = 100.0, value_parser = examples::cli::positive_rate)]
    rate: f64,
    /// Requests accepted at once after idleness.
    #[arg(long, default_value_t = 10)]
    burst: u32,
    /// Mean latency in milliseconds.
    #[arg(long, default_value_t = 50)]
    latency: u64,
    /// Latency jitter in milliseconds (uniform ±).
    #[arg(long, default_value_t = 25)]
    jitter: u64,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Send Retry-After as an HTTP date instead of seconds.
    #[arg(long)]
    http_date: bool,
    /// Answer every n-th request with 503 and Retry-After.
    #[arg(long)]
    unavailable_every: Option<u64>,
    /// Send the RateLimit fields on successful responses too.
    #[arg(long)]
    advertise: bool,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let config = ApiConfig {
        rate: args.rate,
        burst: args.burst,
        latency: Duration::from_millis(args.latency),
        jitter: Duration::from_millis(args.jitter),
        retry_after: if args.http_date {
            RetryAfterStyle::HttpDate
        } else {
            RetryAfterStyle::Seconds
        },
        unavailable_every: args.unavailable_every,
        advertise: args.advertise,
    };
    let server = ApiServer::bind(config, SocketAddr::from(([127, 0, 0, 1], args.port))).await?;
    println!("{}", server.url());
    tokio::signal::ctrl_c().await?;
    let report = server.stats().report();
    eprintln!(
        "served {} requests: {} ok, {} x 429, {} x 503, {} early retries, peak in flight {}",
        report.requests,
        report.ok,
        report.throttled,
        report.unavailable,
        report.early_retries,
        report.peak_in_flight
    );
    server.shutdown().await;
    Ok(())
}
