//! HTTP for [`tower_ratelimit_core`]: clients that listen to what a rate-limited server
//! says, and servers that say it properly.
//!
//! **On a client**, the core's [`RateLimiter`](tower_ratelimit_core::RateLimiter) paces
//! the requests; this crate makes it listen:
//!
//! - [`FeedbackLayer`] reads every response (`Retry-After`, the IETF `RateLimit` and
//!   `RateLimit-Policy` fields in every revision, and vendor headers: GitHub, OpenAI,
//!   Anthropic, Discord, Shopify...) and on a throttle **pauses the shared limiter**, so
//!   every clone and every other task waits until the server's reset, not only the
//!   request that was refused. With [`FeedbackLayer::adopt_policy`] it also takes the
//!   server's advertised rate. [`PartitionedFeedbackLayer`] keeps one limiter per host
//!   or route, and [`FeedbackParser`] is the parser on its own.
//! - [`RetryPolicy`] is a `tower::retry::Policy` that retries throttled responses (429,
//!   503 with a wait) after the wait the server named, and transient failures of
//!   idempotent requests after that wait or a jittered [`Backoff`]; it stops on an
//!   explicit do-not-retry, a wait over the parser's cap, or an empty retry budget.
//! - With feature `reqwest-middleware`, `reqwest::RateLimitMiddleware` is the limiter,
//!   the feedback and the retry as one `reqwest_middleware::Middleware`.
//!
//! **On a server**, [`HttpRateLimitLayer`] limits requests per key (or globally) with any
//! [`RateStore`](tower_ratelimit_core::store::RateStore), answers over-limit requests
//! with 429, `Retry-After` rounded up and `application/problem+json` (or gRPC
//! `RESOURCE_EXHAUSTED`), and adds the `RateLimit` fields to allowed responses too. Its
//! keys come from [`server::key`]: the client IP, believing forwarding headers only from
//! proxies you trust ([`ClientIp::behind_proxies`](server::key::ClientIp::behind_proxies)),
//! an API key header, the route, an authenticated identity, or a tuple of these.
//!
//! # A client
//!
//! Retry outermost (so each retry queues at the limiter again), then the rate layer,
//! then the feedback layer, both with the same limiter:
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tower::{retry::RetryLayer, service_fn, ServiceBuilder, ServiceExt};
//! use tower_ratelimit_core::{BoxError, Quota, RateLimitLayer, RateLimiter};
//! use tower_ratelimit_http::{FeedbackLayer, RetryPolicy};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), BoxError> {
//! // An API that throttles the first request and asks for 2 s.
//! let calls = Arc::new(AtomicUsize::new(0));
//! let counter = Arc::clone(&calls);
//! let api = service_fn(move |_: http::Request<()>| {
//!     let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
//!     async move {
//!         let response = match first {
//!             true => http::Response::builder().status(429).header("retry-after", "2"),
//!             false => http::Response::builder().header("ratelimit", r#""default";r=9;t=1"#),
//!         };
//!         Ok::<_, BoxError>(response.body(())?)
//!     }
//! });
//!
//! let limiter = RateLimiter::new(Quota::per_second(10)?);
//! let client = ServiceBuilder::new()
//!     .layer(RetryLayer::new(RetryPolicy::new()))
//!     .layer(RateLimitLayer::with_limiter(limiter.clone()))
//!     .layer(FeedbackLayer::new(limiter.clone()))
//!     .service(api);
//!
//! let start = tokio::time::Instant::now();
//! let response = client.clone().oneshot(http::Request::new(())).await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(calls.load(Ordering::SeqCst), 2); // the 429, then its retry
//! assert!(start.elapsed() >= Duration::from_secs(2)); // after the server's Retry-After
//! # Ok(()) }
//! ```
//!
//! Every clone of `client`, and every other user of `limiter`, was held by that pause
//! as well. The `reqwest` module does the same for a `reqwest` client.
//!
//! # A server
//!
//! Per client IP behind a load balancer, inside a global limit, each with its own
//! policy name so clients see both:
//!
//! ```
//! use axum::{body::Body, routing::get, Router};
//! use tower::ServiceExt;
//! use tower_ratelimit_core::{store::MemoryStore, Quota};
//! use tower_ratelimit_http::server::headers::PolicyName;
//! use tower_ratelimit_http::server::key::{ClientIp, ForwardedHeader, PeerAddr};
//! use tower_ratelimit_http::HttpRateLimitLayer;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // `X-Forwarded-For` is believed only when the peer is one of our proxies.
//! let client_ip =
//!     ClientIp::behind_proxies(["10.0.0.0/8".parse()?], ForwardedHeader::XForwardedFor);
//! let per_ip = HttpRateLimitLayer::keyed(Quota::per_second(5)?.with_burst(2)?, client_ip)
//!     .policy_name(PolicyName::new("per-ip")?);
//! let global = HttpRateLimitLayer::global(MemoryStore::new(Quota::per_second(1_000)?))
//!     .policy_name(PolicyName::new("global")?);
//! // The last layer is the outermost: the per-IP limit decides first, so the requests
//! // a client's own quota refuses never spend the global one (one client flooding
//! // cannot lock everyone out).
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(global)
//!     .layer(per_ip);
//!
//! // `axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())`
//! // records each connection's peer (feature `axum`); here it is set by hand.
//! let request = |peer: &str, forwarded_for: &str| {
//!     let mut request = http::Request::get("/").header("x-forwarded-for", forwarded_for);
//!     request.extensions_mut().map(|e| e.insert(PeerAddr(peer.parse().unwrap())));
//!     request.body(Body::empty()).unwrap()
//! };
//!
//! // Through our proxy, client 203.0.113.7 spends its burst of 2 and is refused.
//! for _ in 0..2 {
//!     let response = app.clone().oneshot(request("10.0.0.1:4000", "203.0.113.7")).await?;
//!     assert_eq!(response.status(), 200);
//! }
//! let denied = app.clone().oneshot(request("10.0.0.1:4000", "203.0.113.7")).await?;
//! assert_eq!(denied.status(), 429);
//! assert_eq!(denied.headers()["retry-after"], "1");
//! let policies: Vec<_> = denied.headers().get_all("ratelimit-policy").iter().collect();
//! assert_eq!(policies, [r#""per-ip";q=5;w=1"#]); // the global limit was not asked
//!
//! // The client goes on, a thousand times: refused each time by its own quota.
//! for _ in 0..1_000 {
//!     app.clone().oneshot(request("10.0.0.1:4000", "203.0.113.7")).await?;
//! }
//! // Another client behind the same proxy has its own quota, and the global one is
//! // not spent...
//! let other = app.clone().oneshot(request("10.0.0.1:4000", "198.51.100.2")).await?;
//! assert_eq!(other.status(), 200);
//! // ...and a client that connects directly cannot choose its key with the header.
//! let spoofed = app.clone().oneshot(request("203.0.113.7:5000", "198.51.100.9")).await?;
//! assert_eq!(spoofed.status(), 429);
//! # Ok(()) }
//! ```
//!
//! # Modules
//!
//! | module | what it holds |
//! |---|---|
//! | [`feedback`] | [`FeedbackLayer`], [`PartitionedFeedbackLayer`], the parser ([`FeedbackParser`], vendor [`Profile`]s), the typed [`Feedback`] and the [`Classify`] rules |
//! | [`retry`] | [`RetryPolicy`], its [`Backoff`] and [`Idempotency`] rules, retry budgets |
//! | `reqwest` | `RateLimitMiddleware` for `reqwest_middleware` (feature `reqwest-middleware`) |
//! | [`server`] | [`HttpRateLimitLayer`] and its service; what to do on a missing key ([`OnMissingKey`]) or a failing store ([`OnStoreError`]) |
//! | [`server::key`] | key extractors: `ClientIp` (trusted proxies only), `HeaderKey`, `RouteKey`, `ExtensionKey`, `GlobalKey`, tuples |
//! | [`server::headers`] | the `RateLimit`, `RateLimit-Policy`, `Retry-After` and legacy fields, and how `q`/`w` state the rate |
//! | [`server::problem`] | `application/problem+json` bodies with the draft's problem types |
//! | [`server::grpc`] | gRPC denials: `RESOURCE_EXHAUSTED` with `grpc-retry-pushback-ms` (tonic `Status` with feature `tonic`) |
//!
//! # Cargo features
//!
//! - `reqwest-middleware`: the `reqwest` module.
//! - `axum`: client keys from axum's `ConnectInfo`.
//! - `tonic`: gRPC denials as `tonic::Status`, keys from tonic's connection info (plain TCP; over TLS see [`server::key::peer_addr`]).
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod feedback;
#[cfg(feature = "reqwest-middleware")]
pub mod reqwest;
pub mod retry;
pub mod server;

pub use feedback::{
    Class, Classify, DefaultClassifier, Feedback, FeedbackLayer, FeedbackParser,
    PartitionedFeedbackLayer, Profile, WaitOverCap,
};
#[cfg(feature = "reqwest-middleware")]
pub use reqwest::RateLimitMiddleware;
pub use retry::{Backoff, Idempotency, RetryPolicy};
pub use server::{HttpRateLimit, HttpRateLimitLayer, OnMissingKey, OnStoreError};

/// The README's examples, compiled and run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
