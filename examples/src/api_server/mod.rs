//! A local, rate-limited JSON API to run the examples against.
//!
//! `GET /items?page=N` answers `{"page":N,"items":[...]}` after a jittered latency,
//! as long as the server's token bucket has a token; otherwise it answers `429 Too
//! Many Requests` at once with `Retry-After` (whole seconds, rounded up, or an
//! HTTP date) and the IETF `RateLimit` / `RateLimit-Policy` fields. With
//! [`ApiConfig::advertise`] successful responses carry the fields too. `GET /stats`
//! answers the server's counters as JSON.
//!
//! ```
//! use examples::api_server::{ApiConfig, ApiServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower::BoxError> {
//! let server = ApiServer::start(ApiConfig { rate: 1.0, burst: 1, ..ApiConfig::default() }).await?;
//! let client = examples::client::HttpClient::new();
//! let first = client.get_page(&server.url(), 1).await?;
//! assert_eq!(first.status(), 200);
//! assert!(first.body().starts_with(b"{\"page\":1"));
//! // The bucket held one token: the next request is throttled.
//! let second = client.get_page(&server.url(), 2).await?;
//! assert_eq!(second.status(), 429);
//! assert_eq!(second.headers()["retry-after"], "1");
//! assert_eq!(server.stats().report().throttled, 1);
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod bucket;
mod handler;
pub mod stats;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use bucket::TokenBucket;
use stats::ApiStats;

/// How a throttled response says when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetryAfterStyle {
    /// `Retry-After: 2` (delay-seconds).
    #[default]
    Seconds,
    /// `Retry-After: Fri, 27 Nov 2026 12:00:02 GMT`, next to a matching `Date`.
    HttpDate,
    /// Seconds and dates by turns, to exercise both parsers in one run.
    Mixed,
}

/// The server's limit and manners.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Token refill rate: requests per second the server accepts over time.
    pub rate: f64,
    /// Bucket size: requests the server accepts at once after idleness.
    pub burst: u32,
    /// Mean time to answer an accepted request.
    pub latency: Duration,
    /// The latency is drawn uniformly from `latency ± jitter`.
    pub jitter: Duration,
    /// The form of `Retry-After` on 429 and 503.
    pub retry_after: RetryAfterStyle,
    /// Answer every n-th request with `503 Service Unavailable` and `Retry-After: 1`
    /// (a transient failure), before the rate limit is checked.
    pub unavailable_every: Option<u64>,
    /// Also send `RateLimit` / `RateLimit-Policy` on successful responses.
    ///
    /// Off by default: the fields speak in whole seconds, so a bucket that refills
    /// every 10 ms but is empty right now says `r=0;t=1`, and a careful client
    /// (tower-ratelimit-http's feedback layer among them) then holds for a second.
    pub advertise: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            rate: 100.0,
            burst: 10,
            latency: Duration::from_millis(50),
            jitter: Duration::from_millis(25),
            retry_after: RetryAfterStyle::Seconds,
            unavailable_every: None,
            advertise: false,
        }
    }
}

/// A running API on `127.0.0.1` at an ephemeral port.
#[derive(Debug)]
pub struct ApiServer {
    addr: SocketAddr,
    state: Arc<handler::AppState>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl ApiServer {
    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    pub async fn start(config: ApiConfig) -> io::Result<Self> {
        Self::bind(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Binds `addr` (use a loopback address) and serves on the current runtime.
    pub async fn bind(config: ApiConfig, addr: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let now = Instant::now();
        let state = Arc::new(handler::AppState {
            bucket: Mutex::new(TokenBucket::new(config.rate, config.burst, now)),
            stats: ApiStats::new(now),
            config,
        });
        let router = Router::new()
            .route("/items", get(handler::items))
            .route("/stats", get(handler::stats))
            .with_state(state.clone());
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = signal.await;
                })
                .await
        });
        Ok(Self {
            addr,
            state,
            shutdown,
            task,
        })
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The items endpoint, `http://127.0.0.1:PORT/items`; add `?page=N`.
    pub fn url(&self) -> String {
        format!("http://{}/items", self.addr)
    }

    /// The server's counters.
    pub fn stats(&self) -> &ApiStats {
        &self.state.stats
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &ApiConfig {
        &self.state.config
    }

    /// Stops accepting, lets open requests finish for up to a second, then stops.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(1), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}
