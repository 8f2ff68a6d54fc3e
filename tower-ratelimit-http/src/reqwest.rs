//! A [`reqwest_middleware::Middleware`] that gives a `ClientWithMiddleware` the
//! limiter, the feedback and the retry (cargo feature `reqwest-middleware`).
//!
//! ```no_run
//! use tower_ratelimit_core::{Quota, RateLimiter};
//! use tower_ratelimit_http::reqwest::RateLimitMiddleware;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let limiter = RateLimiter::new(Quota::per_second(10)?);
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(RateLimitMiddleware::new(limiter))
//!     .build();
//! // Waits its turn, pauses on 429 for every request of the client, retries after
//! // the server's Retry-After.
//! let response = client.get("http://127.0.0.1:8080/items").send().await?;
//! # Ok(()) }
//! ```
//!
//! Every attempt (the first and each retry) waits for the limiter; a throttle pauses
//! it for every request that shares it. A request whose body cannot be cloned (a
//! stream) is sent once, never retried.
//!
//! [`RateLimitMiddleware::new`] is one limiter for the whole client: a 429 from any
//! host pauses every request. A client that talks to several APIs wants
//! [`RateLimitMiddleware::per_host`]: a limiter per host, made from one quota when the
//! host is first seen, so a throttle pauses only the host that sent it.
//!
//! A throttle whose wait is over the parser's cap (300 s by default) pauses the limiter
//! for the cap and fails the call with [`WaitOverCap`](crate::feedback::WaitOverCap)
//! instead of returning the 429, as [`FeedbackLayer`](crate::FeedbackLayer) does, also
//! without retries.
//!
//! ```no_run
//! use tower_ratelimit_core::Quota;
//! use tower_ratelimit_http::reqwest::RateLimitMiddleware;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(RateLimitMiddleware::per_host(Quota::per_second(10)?).max_hosts(64))
//!     .build();
//! // A 429 from api.a.example holds api.a.example only.
//! let a = client.get("https://api.a.example/items").send().await?;
//! let b = client.get("https://api.b.example/items").send().await?;
//! # Ok(()) }
//! ```

use crate::feedback::steer::{self, Steer};
use crate::feedback::{
    Classify, DefaultClassifier, FeedbackParser, PartitionedFeedbackLayer, Partitions,
};
use crate::retry::RetryPolicy;
use reqwest_middleware::reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tower::retry::budget::{Budget, TpsBudget};
use tower_ratelimit_core::error::BoxError;
use tower_ratelimit_core::store::{MemoryStore, RateStore};
use tower_ratelimit_core::{Quota, RateLimiter};

/// An error of the limiter (a cost it can never admit, a store failure), as a
/// middleware error.
#[derive(Debug)]
pub struct LimiterError(pub BoxError);

impl fmt::Display for LimiterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rate limiter: {}", self.0)
    }
}

impl std::error::Error for LimiterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// The limiter, the feedback and the retry, as one middleware.
pub struct RateLimitMiddleware<
    St = tower_ratelimit_core::store::MemoryStore,
    C = DefaultClassifier,
    RC = DefaultClassifier,
    Bu = TpsBudget,
> {
    limiting: Limiting<St>,
    steer: Arc<Steer<C>>,
    retry: Option<RetryPolicy<RC, Bu>>,
}

/// One limiter for the client, or one per host.
enum Limiting<St> {
    Shared(RateLimiter<St>),
    PerHost(Arc<Partitions>),
}

/// Which limiter an attempt's response steers.
enum Admitted<'a, St> {
    Shared(&'a RateLimiter<St>),
    /// The host's limiter the request waited for, which the table may have dropped
    /// meanwhile to make room for others (requests may still wait in it).
    Host(&'a Partitions, RateLimiter),
}

impl<St, C, RC, Bu> fmt::Debug for RateLimitMiddleware<St, C, RC, Bu> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitMiddleware")
            .field("parser", &self.steer.parser)
            .field("retry", &self.retry)
            .finish()
    }
}

impl<St> RateLimitMiddleware<St> {
    /// Limits, listens and retries with the defaults ([`RetryPolicy::new`]).
    pub fn new(limiter: RateLimiter<St>) -> Self {
        RateLimitMiddleware {
            limiting: Limiting::Shared(limiter),
            steer: Arc::new(Steer {
                parser: FeedbackParser::new(),
                classifier: DefaultClassifier,
                adopt_policy: None,
                fallback_pause: Duration::from_secs(1),
            }),
            retry: Some(RetryPolicy::new()),
        }
    }
}

impl RateLimitMiddleware<MemoryStore> {
    /// A limiter of `quota` per host (the URL's host, with its port unless that is the
    /// scheme's default: `api.example.com`, `127.0.0.1:8080`), each made
    /// when its host is first seen, at most
    /// [`PartitionedFeedbackLayer::DEFAULT_MAX_PARTITIONS`] of them (see
    /// [`max_hosts`](RateLimitMiddleware::max_hosts)).
    ///
    /// A throttle pauses the host that sent it, and nothing else: a server's word
    /// that its limit is global, or a bucket it names (Discord's headers), is read as
    /// being about that host, which can then not pause or crowd out another. For
    /// buckets within one API, put
    /// [`PartitionedFeedbackLayer`] with [`ByRoute`](crate::feedback::ByRoute) in a
    /// tower stack.
    pub fn per_host(quota: Quota) -> Self {
        RateLimitMiddleware {
            limiting: Limiting::PerHost(Arc::new(hosts(
                quota,
                PartitionedFeedbackLayer::DEFAULT_MAX_PARTITIONS,
            ))),
            ..RateLimitMiddleware::new(RateLimiter::new(quota))
        }
    }
}

/// Per-host limiters; their global limiter stays unused (`per_host` never pauses it).
fn hosts(quota: Quota, max: usize) -> Partitions {
    Partitions::new(quota, RateLimiter::new(quota), max)
}

impl<C, RC, Bu> RateLimitMiddleware<MemoryStore, C, RC, Bu> {
    /// With [`per_host`](RateLimitMiddleware::per_host): bounds the hosts held (at
    /// least 1). The least recently used host's limiter is dropped first, a paused one
    /// last; a host seen again starts afresh with a full bucket. No effect on a
    /// middleware made by [`new`](RateLimitMiddleware::new).
    pub fn max_hosts(mut self, max: usize) -> Self {
        if let Limiting::PerHost(hosts) = &self.limiting {
            self.limiting = Limiting::PerHost(Arc::new(self::hosts(hosts.quota(), max)));
        }
        self
    }
}

impl<St, C: Clone, RC, Bu> RateLimitMiddleware<St, C, RC, Bu> {
    /// Replaces the parser (cap, floor, vendor profile) used to read responses.
    pub fn parser(mut self, parser: FeedbackParser) -> Self {
        Arc::make_mut(&mut self.steer).parser = parser;
        self
    }

    /// Replaces the classifier that decides what throttles.
    pub fn classifier<C2: Classify + Clone>(
        self,
        classifier: C2,
    ) -> RateLimitMiddleware<St, C2, RC, Bu> {
        RateLimitMiddleware {
            limiting: self.limiting,
            steer: Arc::new(Steer {
                parser: self.steer.parser,
                classifier,
                adopt_policy: self.steer.adopt_policy,
                fallback_pause: self.steer.fallback_pause,
            }),
            retry: self.retry,
        }
    }

    /// Adopts the tightest advertised request policy as the limiter's rate (with
    /// [`per_host`](RateLimitMiddleware::per_host), the host's), never faster than the
    /// quota in force when this is turned on; the limiter keeps its burst shape, as
    /// with [`FeedbackLayer::adopt_policy`](crate::FeedbackLayer::adopt_policy).
    pub fn adopt_policy(mut self, adopt: bool) -> Self
    where
        St: RateStore,
    {
        let ceiling = adopt.then(|| match &self.limiting {
            Limiting::Shared(limiter) => limiter.quota(),
            Limiting::PerHost(hosts) => hosts.quota(),
        });
        Arc::make_mut(&mut self.steer).adopt_policy = ceiling;
        self
    }

    /// How long a throttled response that names no wait holds the limiter (1 s by
    /// default; see [`FeedbackLayer::fallback_pause`](crate::FeedbackLayer::fallback_pause):
    /// GitHub wants at least a minute).
    pub fn fallback_pause(mut self, pause: Duration) -> Self {
        Arc::make_mut(&mut self.steer).fallback_pause = pause;
        self
    }

    /// Replaces the retry policy.
    pub fn retry<RC2, Bu2>(
        self,
        policy: RetryPolicy<RC2, Bu2>,
    ) -> RateLimitMiddleware<St, C, RC2, Bu2> {
        RateLimitMiddleware {
            limiting: self.limiting,
            steer: self.steer,
            retry: Some(policy),
        }
    }

    /// Sends each request once: limit and listen only.
    pub fn without_retry(mut self) -> Self {
        self.retry = None;
        self
    }

    /// The limiter every request waits for; `None` with
    /// [`per_host`](RateLimitMiddleware::per_host) (see [`hosts`](Self::hosts)).
    pub fn limiter(&self) -> Option<&RateLimiter<St>> {
        match &self.limiting {
            Limiting::Shared(limiter) => Some(limiter),
            Limiting::PerHost(_) => None,
        }
    }

    /// The per-host limiters, with [`per_host`](RateLimitMiddleware::per_host)
    /// ([`Partitions::limiter`] gives a host's, by its name and non-default port).
    pub fn hosts(&self) -> Option<&Arc<Partitions>> {
        match &self.limiting {
            Limiting::Shared(_) => None,
            Limiting::PerHost(hosts) => Some(hosts),
        }
    }
}

#[async_trait::async_trait]
impl<St, C, RC, Bu> Middleware for RateLimitMiddleware<St, C, RC, Bu>
where
    St: RateStore,
    C: Classify,
    RC: Classify,
    Bu: Budget + Send + Sync + 'static,
{
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let mut policy = self.retry.clone();
        let method = request.method().clone();
        let request_headers = request.headers().clone();
        // The server: the host, and the port unless it is the scheme's default (which
        // `Url::port` leaves out), as `ByHost` keys it.
        let url = request.url();
        let host = match url.port() {
            Some(port) => {
                crate::feedback::partition::with_port(url.host_str().unwrap_or_default(), port)
            }
            None => url.host_str().unwrap_or_default().to_owned(),
        }
        .into_bytes();
        loop {
            let admitted = self
                .admit(&host)
                .await
                .map_err(|e| reqwest_middleware::Error::middleware(LimiterError(e)))?;
            let spare = policy.as_ref().and_then(|_| request.try_clone());
            let result = self.observe(admitted, &host, next.clone().run(request, extensions).await);
            let (Some(policy), Some(spare)) = (policy.as_mut(), spare) else {
                return result;
            };
            let wait = match &result {
                Ok(response) => policy.after_response(
                    &method,
                    &request_headers,
                    response.status(),
                    response.headers(),
                    response.extensions(),
                ),
                Err(reqwest_middleware::Error::Reqwest(error)) => {
                    policy.after_error(&method, &request_headers, error)
                }
                // Ours (a wait over the cap, a limiter error) or another middleware's.
                Err(reqwest_middleware::Error::Middleware(_)) => None,
            };
            match wait {
                Some(wait) => {
                    tokio::time::sleep(wait).await;
                    request = spare;
                }
                None => return result,
            }
        }
    }
}

impl<St: RateStore, C: Classify, RC, Bu> RateLimitMiddleware<St, C, RC, Bu> {
    /// Waits for the attempt's unit: of the one limiter, or of its host's.
    async fn admit(&self, host: &[u8]) -> Result<Admitted<'_, St>, BoxError> {
        match &self.limiting {
            Limiting::Shared(limiter) => {
                limiter.acquire(1).await?;
                Ok(Admitted::Shared(limiter))
            }
            Limiting::PerHost(hosts) => {
                let waited = hosts.admit(host, host).await?;
                Ok(Admitted::Host(hosts, waited))
            }
        }
    }

    /// Steers the limiter from a response and puts the feedback and class in its
    /// extensions (where the retry policy reads them).
    fn observe(
        &self,
        admitted: Admitted<'_, St>,
        host: &[u8],
        result: reqwest_middleware::Result<Response>,
    ) -> reqwest_middleware::Result<Response> {
        let mut response = result?;
        let verdict = self.steer.judge(response.status(), response.headers());
        match admitted {
            Admitted::Shared(limiter) => steer::apply(limiter, &verdict, self.steer.adopt_policy),
            Admitted::Host(hosts, waited) => {
                steer::apply(&waited, &verdict, self.steer.adopt_policy);
                match hosts.held(host) {
                    // A newer limiter for the host: its requests must hear it too.
                    Some(current) if !current.same_as(&waited) => {
                        steer::apply(&current, &verdict, self.steer.adopt_policy)
                    }
                    Some(_) => {}
                    // Dropped, and nothing newer: a pause must outlive the drop.
                    None if waited.paused_until().is_some() => hosts.reinstate(host, &waited),
                    None => {}
                }
            }
        }
        if let Some(over) = verdict.over_cap {
            return Err(reqwest_middleware::Error::middleware(over));
        }
        response.extensions_mut().insert(verdict.class);
        response.extensions_mut().insert(verdict.feedback);
        Ok(response)
    }
}
