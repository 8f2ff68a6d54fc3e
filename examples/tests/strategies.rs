//! Every strategy of the showdown against the local API over loopback TCP: the
//! paced ones deliver every page exactly once; the naive ones lose pages as soon
//! as they outrun the server. Real clock (see `bulk_end_to_end.rs`), no speed
//! assertions.

use std::time::Duration;

use examples::api_server::{ApiConfig, ApiServer};
use examples::strategies::{RunConfig, Strategy, Tally};

async fn run(
    strategy: Strategy,
    api: ApiConfig,
    pages: u64,
    concurrency: usize,
) -> (Tally, examples::api_server::stats::ApiReport) {
    let server = ApiServer::start(api.clone()).await.unwrap();
    let config = RunConfig::new(server.url(), pages, concurrency, api.rate, api.burst);
    let mut tally = Tally::new(pages);
    strategy
        .run(&config, &mut tally)
        .await
        .unwrap_or_else(|e| panic!("{strategy}: {e}"));
    let seen = server.stats().report();
    server.shutdown().await;
    (tally, seen)
}

fn fast_api(rate: f64, burst: u32) -> ApiConfig {
    ApiConfig {
        rate,
        burst,
        latency: Duration::from_millis(3),
        jitter: Duration::from_millis(2),
        ..ApiConfig::default()
    }
}

#[tokio::test]
async fn paced_strategies_deliver_every_page_once_within_the_limits() {
    for strategy in [
        Strategy::TokenBucket,
        Strategy::LeakyBucket,
        Strategy::SlidingWindow,
    ] {
        let (tally, seen) = run(strategy, fast_api(200.0, 10), 40, 4).await;
        assert!(tally.ledger().exactly_once(), "{strategy}: {tally:?}");
        assert!(seen.peak_in_flight <= 4, "{strategy}: {seen:?}");
        assert_eq!(seen.early_retries, 0, "{strategy}: {seen:?}");
    }
}

#[tokio::test]
async fn naive_strategies_finish_when_the_server_keeps_up() {
    let naive = [
        Strategy::Sequential,
        Strategy::GatherAll,
        Strategy::SemaphoreOnly,
        Strategy::BoundedGather,
        Strategy::WorkerPool,
    ];
    for strategy in naive {
        let (tally, seen) = run(strategy, fast_api(100_000.0, 1_000), 30, 4).await;
        assert!(tally.ledger().exactly_once(), "{strategy}: {tally:?}");
        assert_eq!(seen.requests, 30, "{strategy} sends each page once");
    }
}

#[tokio::test]
async fn naive_strategies_lose_pages_when_they_outrun_the_server() {
    for strategy in [
        Strategy::GatherAll,
        Strategy::SemaphoreOnly,
        Strategy::WorkerPool,
    ] {
        let (tally, seen) = run(strategy, fast_api(10.0, 5), 30, 8).await;
        let lost = tally.ledger().missing();
        assert!(lost > 0, "{strategy}: {tally:?}");
        assert_eq!(
            lost,
            tally.throttled(),
            "{strategy}: every lost page was a 429"
        );
        assert_eq!(seen.throttled, tally.throttled());
    }
}

#[tokio::test]
async fn the_semaphore_bounds_flight_but_not_starts() {
    let (_, seen) = run(Strategy::SemaphoreOnly, fast_api(10.0, 5), 30, 3).await;
    assert!(seen.peak_in_flight <= 3, "{seen:?}");
    assert!(seen.throttled > 0, "{seen:?}");
}

#[tokio::test]
async fn adaptive_strategies_deliver_every_page_once_without_being_told_the_rate() {
    for strategy in [Strategy::Adaptive, Strategy::AdaptiveFeedback] {
        let (tally, seen) = run(strategy, fast_api(100.0, 10), 40, 4).await;
        assert!(tally.ledger().exactly_once(), "{strategy}: {tally:?}");
        assert!(
            tally.found_rate().is_some_and(|r| r > 0.0),
            "{strategy}: {tally:?}"
        );
        assert!(seen.peak_in_flight <= 4, "{strategy}: {seen:?}");
        assert_eq!(seen.early_retries, 0, "{strategy}: {seen:?}");
    }
}
