//! The bulk job: fetch `URL?page=1` … `URL?page=N`, write each body as one line to
//! FILE as it arrives, at a fixed or discovered rate, with at most C in flight.
//! Exits 0 only when every page was written exactly once.
//!
//! ```text
//! cargo run --release -p examples --bin api_server -- --rate 200 &
//! cargo run --release -p examples --bin bulk_fetch -- \
//!     --url http://127.0.0.1:PORT/items --pages 1000 --rate 150 --concurrency 16 --out pages.jsonl
//! ```

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use examples::bulk::{self, BulkConfig, Pace};

/// Fetches every page of a rate-limited API into a file, exactly once each.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The endpoint; pages are URL?page=N.
    #[arg(long)]
    url: String,
    /// Fetch pages 1..=N.
    #[arg(long, value_parser = examples::cli::page_count)]
    pages: u64,
    /// Requests per second (fixed pace).
    #[arg(
        long,
        required_unless_present = "adaptive",
        conflicts_with = "adaptive",
        value_parser = examples::cli::positive_rate
    )]
    rate: Option<f64>,
    /// Discover the rate from the server's answers instead of fixing it.
    #[arg(long)]
    adaptive: bool,
    /// Burst of the fixed rate.
    #[arg(long, default_value_t = 1)]
    burst: u64,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 16, value_parser = examples::cli::concurrency)]
    concurrency: usize,
    /// The file to write, one body per line.
    #[arg(long)]
    out: PathBuf,
    /// Print the peak resident set size at the end (Linux).
    #[arg(long)]
    rss: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bulk_fetch: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: &Args) -> Result<bool, tower::BoxError> {
    let pace = match args.rate {
        Some(rate) if !args.adaptive => Pace::Rate(rate),
        _ => Pace::Adaptive,
    };
    let mut config = BulkConfig::new(args.url.clone(), args.pages, pace, args.concurrency);
    config.burst = args.burst.max(1);
    let out = BufWriter::new(File::create(&args.out)?);
    let summary = bulk::run(&config, out).await?;
    println!("{summary}");
    if args.rss {
        if let Some((_, peak)) = examples::metrics::rss_kib() {
            println!("peak RSS {peak} KiB");
        }
    }
    if !summary.exactly_once() {
        eprintln!("bulk_fetch: not every page was written exactly once");
    }
    Ok(summary.exactly_once())
}
