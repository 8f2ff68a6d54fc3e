//! Counting what the client sent and what came back, attempt by attempt (retries
//! included), underneath every other layer.
//!
//! ```
//! use examples::api_server::{ApiConfig, ApiServer};
//! use examples::client::{page_request, page_uri, HttpClient};
//! use examples::observe::{Attempts, CountLayer};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let server = ApiServer::start(ApiConfig { rate: 1.0, burst: 1, ..ApiConfig::default() }).await?;
//! let attempts = Attempts::default();
//! let client = ServiceBuilder::new()
//!     .layer(CountLayer::new(attempts.clone()))
//!     .service(HttpClient::new());
//! for page in 1..=2 {
//!     client.clone().oneshot(page_request(&page_uri(&server.url(), page)?)?).await?;
//! }
//! assert_eq!((attempts.sent(), attempts.throttled()), (2, 1));
//! server.shutdown().await;
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Response, StatusCode};
use tower::{BoxError, Layer, Service};

use crate::client::{ApiRequest, BoxFuture};

#[derive(Debug, Default)]
struct Counts {
    sent: AtomicU64,
    throttled: AtomicU64,
    unavailable: AtomicU64,
    errors: AtomicU64,
}

/// Shared counters of attempts; clones count into the same numbers.
#[derive(Debug, Clone, Default)]
pub struct Attempts(Arc<Counts>);

impl Attempts {
    /// Requests sent, retries included.
    pub fn sent(&self) -> u64 {
        self.0.sent.load(Ordering::Relaxed)
    }

    /// 429 answers.
    pub fn throttled(&self) -> u64 {
        self.0.throttled.load(Ordering::Relaxed)
    }

    /// 503 answers.
    pub fn unavailable(&self) -> u64 {
        self.0.unavailable.load(Ordering::Relaxed)
    }

    /// Attempts that got no answer (connection errors).
    pub fn errors(&self) -> u64 {
        self.0.errors.load(Ordering::Relaxed)
    }
}

/// Wraps a client in [`Count`].
#[derive(Debug, Clone)]
pub struct CountLayer {
    attempts: Attempts,
}

impl CountLayer {
    /// Counts into `attempts`.
    pub fn new(attempts: Attempts) -> Self {
        Self { attempts }
    }
}

impl<S> Layer<S> for CountLayer {
    type Service = Count<S>;

    fn layer(&self, inner: S) -> Count<S> {
        Count {
            inner,
            attempts: self.attempts.clone(),
        }
    }
}

/// Counts every request and the status of every answer.
#[derive(Debug, Clone)]
pub struct Count<S> {
    inner: S,
    attempts: Attempts,
}

impl<S> Service<ApiRequest> for Count<S>
where
    S: Service<ApiRequest, Response = Response<Bytes>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<Bytes>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Response<Bytes>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: ApiRequest) -> Self::Future {
        let counts = Arc::clone(&self.attempts.0);
        counts.sent.fetch_add(1, Ordering::Relaxed);
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await.map_err(Into::into);
            let counter = match &result {
                Ok(r) if r.status() == StatusCode::TOO_MANY_REQUESTS => Some(&counts.throttled),
                Ok(r) if r.status() == StatusCode::SERVICE_UNAVAILABLE => Some(&counts.unavailable),
                Ok(_) => None,
                Err(_) => Some(&counts.errors),
            };
            if let Some(c) = counter {
                c.fetch_add(1, Ordering::Relaxed);
            }
            result
        })
    }
}
