//! The strategies of the showdown, from one request at a time to a rate limiter,
//! a worker pool and streamed results.
//!
//! Every strategy fetches pages `1..=N` of the same API and hands each answer to a
//! [`Tally`] as it arrives; none of them is told the server's limit except the
//! rate-limited ones, which are configured with it.
//!
//! ```
//! use examples::api_server::{ApiConfig, ApiServer};
//! use examples::strategies::{RunConfig, Strategy, Tally};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower::BoxError> {
//! let server = ApiServer::start(ApiConfig { rate: 1000.0, burst: 100, ..ApiConfig::default() }).await?;
//! let config = RunConfig::new(server.url(), 20, 4, 1000.0, 100);
//! let mut tally = Tally::new(20);
//! Strategy::WorkerPool.run(&config, &mut tally).await?;
//! assert!(tally.ledger().exactly_once());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

mod limited;
mod naive;

use std::fmt;

use http::StatusCode;
use tower::BoxError;

use crate::client::Fetched;
use crate::metrics::PageLedger;

/// What every strategy gets to know.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The items endpoint; pages are `url?page=N`.
    pub url: String,
    /// Pages `1..=pages` are fetched.
    pub pages: u64,
    /// Workers, permits or batch size, for the strategies that have one.
    pub concurrency: usize,
    /// The server's limit in requests per second, for the strategies told it.
    pub rate: f64,
    /// The server's burst, for the strategies told it.
    pub burst: u32,
}

impl RunConfig {
    /// Collects the settings; a zero concurrency is raised to one.
    pub fn new(
        url: impl Into<String>,
        pages: u64,
        concurrency: usize,
        rate: f64,
        burst: u32,
    ) -> Self {
        Self {
            url: url.into(),
            pages,
            concurrency: concurrency.max(1),
            rate,
            burst: burst.max(1),
        }
    }
}

/// The contestants, in the order of the story.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// One request at a time.
    Sequential,
    /// Every request at once, results gathered in memory.
    GatherAll,
    /// Every request spawned at once, a semaphore bounding those in flight.
    SemaphoreOnly,
    /// Batches of `concurrency`, each waiting for its slowest request.
    BoundedGather,
    /// `concurrency` workers pulling pages, results streamed.
    WorkerPool,
    /// GCRA (token bucket) rate + concurrency limit + feedback and retry.
    TokenBucket,
    /// Leaky bucket (strict spacing) + concurrency limit + feedback and retry.
    LeakyBucket,
    /// Sliding-window log + concurrency limit + feedback and retry.
    SlidingWindow,
    /// The adaptive layer discovering the rate, with retry but no feedback.
    Adaptive,
    /// The adaptive layer with feedback (pause on Retry-After) and retry.
    AdaptiveFeedback,
}

impl Strategy {
    /// All of them, in the order of the story.
    pub const ALL: [Strategy; 10] = [
        Strategy::Sequential,
        Strategy::GatherAll,
        Strategy::SemaphoreOnly,
        Strategy::BoundedGather,
        Strategy::WorkerPool,
        Strategy::TokenBucket,
        Strategy::LeakyBucket,
        Strategy::SlidingWindow,
        Strategy::Adaptive,
        Strategy::AdaptiveFeedback,
    ];

    /// A short name for tables and charts.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Sequential => "sequential",
            Strategy::GatherAll => "gather everything",
            Strategy::SemaphoreOnly => "semaphore only",
            Strategy::BoundedGather => "bounded gather",
            Strategy::WorkerPool => "worker pool",
            Strategy::TokenBucket => "token bucket + pool",
            Strategy::LeakyBucket => "leaky bucket + pool",
            Strategy::SlidingWindow => "sliding window + pool",
            Strategy::Adaptive => "adaptive (no rate)",
            Strategy::AdaptiveFeedback => "adaptive + feedback",
        }
    }

    /// Fetches every page of `config` and hands each answer to `tally`.
    ///
    /// Failed pages are counted in the tally, not returned as errors; the error is
    /// for a stack that could not be built or broke as a whole.
    pub async fn run(self, config: &RunConfig, tally: &mut Tally) -> Result<(), BoxError> {
        match self {
            Strategy::Sequential => naive::sequential(config, tally).await,
            Strategy::GatherAll => naive::gather_all(config, tally).await,
            Strategy::SemaphoreOnly => naive::semaphore_only(config, tally).await,
            Strategy::BoundedGather => naive::bounded_gather(config, tally).await,
            Strategy::WorkerPool => naive::worker_pool(config, tally).await,
            Strategy::TokenBucket => limited::token_bucket(config, tally).await,
            Strategy::LeakyBucket => limited::leaky_bucket(config, tally).await,
            Strategy::SlidingWindow => limited::sliding_window(config, tally).await,
            Strategy::Adaptive => limited::adaptive(config, tally, false).await,
            Strategy::AdaptiveFeedback => limited::adaptive(config, tally, true).await,
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A callback for every recorded answer.
type OnAnswer = Box<dyn FnMut(&Fetched) + Send>;

/// The client's view of a run: which pages came back 200, what failed.
pub struct Tally {
    ledger: PageLedger,
    throttled: u64,
    failed: u64,
    found_rate: Option<f64>,
    on_answer: Option<OnAnswer>,
}

impl fmt::Debug for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tally")
            .field("ledger", &self.ledger)
            .field("throttled", &self.throttled)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Tally {
    /// A tally for pages `1..=pages`.
    pub fn new(pages: u64) -> Self {
        Self {
            ledger: PageLedger::new(pages),
            throttled: 0,
            failed: 0,
            found_rate: None,
            on_answer: None,
        }
    }

    /// Calls `f` with every answer as it is recorded (a progress bar, a file).
    pub fn on_answer(mut self, f: impl FnMut(&Fetched) + Send + 'static) -> Self {
        self.on_answer = Some(Box::new(f));
        self
    }

    /// Records one page's final answer.
    pub fn record(&mut self, fetched: Fetched) {
        match &fetched.response {
            Ok(r) if r.status() == StatusCode::OK => {
                self.ledger.record(fetched.page);
            }
            Ok(r) if r.status() == StatusCode::TOO_MANY_REQUESTS => self.throttled += 1,
            _ => self.failed += 1,
        }
        if let Some(f) = self.on_answer.as_mut() {
            f(&fetched);
        }
    }

    /// Which pages arrived.
    pub fn ledger(&self) -> &PageLedger {
        &self.ledger
    }

    /// Pages whose final answer was a 429 (given up on).
    pub fn throttled(&self) -> u64 {
        self.throttled
    }

    /// The rate an adaptive strategy had settled on when it finished.
    pub fn found_rate(&self) -> Option<f64> {
        self.found_rate
    }

    /// Records the rate an adaptive strategy settled on.
    pub fn set_found_rate(&mut self, rate: Option<f64>) {
        self.found_rate = rate;
    }

    /// Pages whose final answer was another error or status.
    pub fn failed(&self) -> u64 {
        self.failed
    }
}
