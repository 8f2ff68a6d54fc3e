//! The showdown: every strategy against the same rate-limited local API.
//!
//! `cargo run --release -p examples --bin showdown` prints a table and writes
//! `examples/out/showdown.svg` (requests started per second, the server's limit in
//! red) and `examples/out/showdown.md` (the table).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use examples::api_server::stats::BUCKET;
use examples::api_server::{ApiConfig, ApiServer};
use examples::chart::{self, Series};
use examples::metrics::{self, CountingAllocator};
use examples::report::{self, Row};
use examples::strategies::{RunConfig, Strategy, Tally};
use indicatif::{ProgressBar, ProgressStyle};
use tower::BoxError;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs every fetching strategy against one local, rate-limited API.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Pages each strategy fetches.
    #[arg(long, short = 'n', default_value_t = 300, value_parser = examples::cli::page_count)]
    requests: u64,
    /// The server's limit in requests per second.
    #[arg(long, default_value_t = 100.0, value_parser = examples::cli::positive_rate)]
    limit: f64,
    /// The server's burst (token bucket size).
    #[arg(long, default_value_t = 10)]
    burst: u32,
    /// The server's mean latency in milliseconds.
    #[arg(long, default_value_t = 50)]
    latency: u64,
    /// Latency jitter in milliseconds (uniform ±); default half the latency.
    #[arg(long)]
    jitter: Option<u64>,
    /// Workers, permits or batch size of the strategies that have one.
    #[arg(long, short = 'c', default_value_t = 10, value_parser = examples::cli::concurrency)]
    concurrency: usize,
    /// Run only these strategies (by position in the story, 1-10), e.g. `-s 1,6`.
    #[arg(long, short = 's', value_delimiter = ',')]
    only: Vec<usize>,
    /// Where the chart and table go.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/out"))]
    out_dir: PathBuf,
}

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    // The API gets its own runtime and threads, left out of the heap count, so the
    // peak heap column is the client's alone.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("api-server")
        .on_thread_start(metrics::ignore_this_thread)
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = client_rt.block_on(run(&args, server_rt.handle()));
    server_rt.shutdown_background();
    result
}

async fn run(args: &Args, server_rt: &tokio::runtime::Handle) -> Result<(), BoxError> {
    let api = ApiConfig {
        rate: args.limit,
        burst: args.burst,
        latency: Duration::from_millis(args.latency),
        jitter: Duration::from_millis(args.jitter.unwrap_or(args.latency / 2)),
        ..ApiConfig::default()
    };
    println!(
        "API: {} req/s, burst {}, latency {} ms ± {} ms; {} pages per strategy, concurrency {}",
        api.rate,
        api.burst,
        api.latency.as_millis(),
        api.jitter.as_millis(),
        args.requests,
        args.concurrency
    );
    let chosen: Vec<Strategy> = Strategy::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| args.only.is_empty() || args.only.contains(&(i + 1)))
        .map(|(_, s)| *s)
        .collect();

    let mut rows = Vec::new();
    let mut series = Vec::new();
    let mut found = Vec::new();
    for strategy in chosen {
        let server = server_rt.spawn(ApiServer::start(api.clone())).await??;
        let config = RunConfig::new(
            server.url(),
            args.requests,
            args.concurrency,
            args.limit,
            args.burst,
        );
        let bar = progress_bar(args.requests, strategy);
        let tick = bar.clone();
        let mut tally = Tally::new(args.requests).on_answer(move |_| tick.inc(1));

        metrics::reset_heap_peak();
        let heap_before = metrics::heap_in_use();
        let started = tokio::time::Instant::now();
        let outcome = strategy.run(&config, &mut tally).await;
        let elapsed = started.elapsed();
        let peak_heap = metrics::heap_peak().saturating_sub(heap_before);

        let seen = server.stats().report();
        server.shutdown().await;
        let note = outcome.err().map(|e| format!("not available: {e}"));
        bar.finish_with_message(format!("{strategy}: {}", note.as_deref().unwrap_or("done")));
        let lost = tally.ledger().missing();
        if let Some(rate) = tally.found_rate() {
            found.push(format!("{strategy} settled at {rate:.1} req/s"));
        }
        rows.push(Row {
            strategy: strategy.name().to_owned(),
            elapsed,
            pages_ok: tally.ledger().written(),
            throttled: seen.throttled,
            retries: seen.requests.saturating_sub(args.requests),
            peak_in_flight: seen.peak_in_flight,
            peak_heap,
            lost,
            note: note.clone(),
        });
        if note.is_none() {
            let mut arrivals = seen.arrivals;
            // Pad to the end of the run so the curve comes back down to zero.
            let buckets = (elapsed.as_millis() / BUCKET.as_millis()) as usize + 1;
            if arrivals.len() < buckets {
                arrivals.resize(buckets, 0);
            }
            series.push(Series {
                name: format!(
                    "{} ({} of {} pages lost)",
                    strategy.name(),
                    lost,
                    args.requests
                ),
                arrivals,
            });
        }
    }

    let mut table = report::table(&rows);
    for line in &found {
        table.push_str(&format!("\n{line}."));
    }
    if !found.is_empty() {
        table.push('\n');
    }
    println!("\n{table}");
    std::fs::create_dir_all(&args.out_dir)?;
    let md = args.out_dir.join("showdown.md");
    let header = format!(
        "Server: token bucket {} req/s, burst {}, latency {} ms ± {} ms. {} pages per strategy, concurrency {}.\n\n",
        api.rate,
        api.burst,
        api.latency.as_millis(),
        api.jitter.as_millis(),
        args.requests,
        args.concurrency
    );
    std::fs::write(&md, format!("{header}{table}"))?;
    let svg = args.out_dir.join("showdown.svg");
    let title = format!(
        "Requests started per second (server limit {} req/s in red)",
        api.rate
    );
    chart::draw_svg(&svg, &series, api.rate, &title)?;
    println!("wrote {} and {}", md.display(), svg.display());
    Ok(())
}

fn progress_bar(len: u64, strategy: Strategy) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let style =
        ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(strategy.name());
    bar
}
