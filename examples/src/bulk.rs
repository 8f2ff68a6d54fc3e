//! The bulk job: every page of an API, through the paced stack, each body written
//! as one line as soon as it arrives, checked for exactly-once delivery.
//!
//! Memory stays flat however many pages there are: `call_all` pulls the next page
//! number only when the stack is ready, answers are written and dropped as they
//! come, and the exactly-once check costs one bit per page.
//!
//! ```
//! use examples::api_server::{ApiConfig, ApiServer};
//! use examples::bulk::{BulkConfig, Pace};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let server = ApiServer::start(ApiConfig { rate: 200.0, ..ApiConfig::default() }).await?;
//! let config = BulkConfig::new(server.url(), 30, Pace::Rate(200.0), 8);
//! let mut out = Vec::new();
//! let summary = examples::bulk::run(&config, &mut out).await?;
//! assert!(summary.exactly_once());
//! assert_eq!(String::from_utf8(out)?.lines().count(), 30);
//! server.shutdown().await;
//! # Ok(()) }
//! ```

use std::fmt;
use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::Response;
use http::StatusCode;
use tokio::time::Instant;
use tower::{BoxError, Service, ServiceExt};
use tower_ratelimit_core::{Quota, RateLimiter};

use crate::client::{ApiRequest, PageService};
use crate::metrics::PageLedger;
use crate::observe::Attempts;

/// How the job decides its rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// A fixed rate in requests per second.
    Rate(f64),
    /// Discovered from the server's answers by the adaptive layer.
    Adaptive,
}

/// What to fetch and how.
#[derive(Debug, Clone)]
pub struct BulkConfig {
    /// The endpoint; pages are `url?page=N`.
    pub url: String,
    /// Pages `1..=pages` are fetched.
    pub pages: u64,
    /// Fixed or adaptive rate.
    pub pace: Pace,
    /// Burst of the fixed rate.
    pub burst: u64,
    /// Requests in flight at most.
    pub concurrency: usize,
}

impl BulkConfig {
    /// A job with burst 1 (evenly spaced starts).
    pub fn new(url: impl Into<String>, pages: u64, pace: Pace, concurrency: usize) -> Self {
        Self {
            url: url.into(),
            pages,
            pace,
            burst: 1,
            concurrency: concurrency.max(1),
        }
    }
}

/// What the job did.
#[derive(Debug, Clone)]
pub struct BulkSummary {
    /// Pages asked for.
    pub pages: u64,
    /// Distinct pages written.
    pub written: u64,
    /// Pages written more than once (never, unless something is broken).
    pub duplicates: u64,
    /// Pages whose final answer was not a 200.
    pub failed: u64,
    /// Requests sent, retries included.
    pub sent: u64,
    /// 429 answers seen.
    pub throttled: u64,
    /// 503 answers seen.
    pub unavailable: u64,
    /// Wall time of the whole job.
    pub elapsed: Duration,
}

impl BulkSummary {
    /// Requests beyond one per page.
    pub fn retries(&self) -> u64 {
        self.sent.saturating_sub(self.pages)
    }

    /// Every page written exactly once.
    pub fn exactly_once(&self) -> bool {
        self.written == self.pages && self.duplicates == 0 && self.failed == 0
    }
}

impl fmt::Display for BulkSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.written as f64 / secs
        } else {
            0.0
        };
        write!(
            f,
            "pages {}/{} written ({} duplicates, {} failed) in {:.2} s ({:.1} pages/s); \
             {} requests, {} retries, {} x 429, {} x 503",
            self.written,
            self.pages,
            self.duplicates,
            self.failed,
            secs,
            rate,
            self.sent,
            self.retries(),
            self.throttled,
            self.unavailable
        )
    }
}

/// Fetches every page of `config`, writing each 200 body as one line to `out`.
pub async fn run<W: Write>(config: &BulkConfig, out: W) -> Result<BulkSummary, BoxError> {
    let attempts = Attempts::default();
    match config.pace {
        Pace::Rate(rate) => {
            let limiter = RateLimiter::new(Quota::from_rate(rate, config.burst)?);
            let stack = crate::stack::paced(limiter, config.concurrency, attempts.clone());
            fetch(config, stack, &attempts, out).await
        }
        Pace::Adaptive => {
            let (stack, _) = crate::stack::adaptive(config.concurrency, true, attempts.clone());
            fetch(config, stack, &attempts, out).await
        }
    }
}

async fn fetch<S, W>(
    config: &BulkConfig,
    stack: S,
    attempts: &Attempts,
    mut out: W,
) -> Result<BulkSummary, BoxError>
where
    S: Service<ApiRequest, Response = Response<Bytes>, Error = BoxError> + Send + 'static,
    S::Future: Send + 'static,
    W: Write,
{
    let pages = PageService::new(&config.url, stack)?;
    let mut ledger = PageLedger::new(config.pages);
    let mut failed = 0;
    let started = Instant::now();
    let mut answers = pages
        .call_all(futures_util::stream::iter(1..=config.pages))
        .unordered();
    while let Some(fetched) = answers.next().await {
        let fetched = fetched?;
        match fetched.response {
            Ok(response) if response.status() == StatusCode::OK => {
                if ledger.record(fetched.page) {
                    write_line(&mut out, response.body())?;
                }
            }
            _ => failed += 1,
        }
    }
    out.flush()?;
    Ok(BulkSummary {
        pages: config.pages,
        written: ledger.written(),
        duplicates: ledger.duplicates(),
        failed,
        sent: attempts.sent(),
        throttled: attempts.throttled(),
        unavailable: attempts.unavailable(),
        elapsed: started.elapsed(),
    })
}

/// The body on one line: line breaks inside it become spaces.
fn write_line<W: Write>(out: &mut W, body: &[u8]) -> std::io::Result<()> {
    let body = body.trim_ascii_end();
    if body.contains(&b'\n') || body.contains(&b'\r') {
        let flat: Vec<u8> = body
            .iter()
            .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b })
            .collect();
        out.write_all(&flat)?;
    } else {
        out.write_all(body)?;
    }
    out.write_all(b"\n")
}
