//! The server side: per-client limits that answer over-limit requests with a proper
//! 429, standard headers and keys a client cannot forge.
//!
//! [`HttpRateLimitLayer`] wraps any `http` service (axum, tonic, hyper, tower-http
//! stacks) that is `Clone` (axum's routers and handlers are; wrap one that is not in
//! `BoxCloneService` or a `tower::buffer::Buffer`). For each request it reads a key ([`key`]), asks a
//! [`RateStore`](tower_ratelimit_core::store::RateStore) whether the request fits, and
//! then either calls the service and adds the `RateLimit` fields to its response, or
//! answers itself:
//!
//! ```text
//! HTTP/1.1 429 Too Many Requests
//! retry-after: 1
//! ratelimit-policy: "per-ip";q=10;w=1
//! ratelimit: "per-ip";r=0;t=1
//! ```
//!
//! The service's error type is kept, so the layer drops into an axum `Router` without
//! `HandleErrorLayer`, and services stay `Clone` and share one store: the limit holds
//! across every clone axum makes.
//!
//! ```
//! use axum::{routing::get, Router};
//! use tower_ratelimit_core::{store::MemoryStore, Quota};
//! use tower_ratelimit_http::server::HttpRateLimitLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use tower::ServiceExt;
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(HttpRateLimitLayer::global(MemoryStore::new(Quota::per_second(1)?)));
//!
//! let first = app.clone().oneshot(http::Request::new(axum::body::Body::empty())).await?;
//! assert_eq!(first.status(), 200);
//! assert_eq!(first.headers()["ratelimit"], r#""default";r=0;t=1"#);
//! let second = app.oneshot(http::Request::new(axum::body::Body::empty())).await?;
//! assert_eq!(second.status(), 429);
//! assert_eq!(second.headers()["retry-after"], "1");
//! # Ok(()) }
//! ```
//!
//! # Per-route limits and a global limit in one app
//!
//! Layers stack: put per-route layers on the routes (or method routers) they guard,
//! and a global layer on the whole router. Requests pass the outer (global) layer
//! first, so a request that a route then denies has still counted against the global
//! limit — size the global limit for attempts, not successes. Give each layer its own
//! policy name: both list their policy in `RateLimit` and `RateLimit-Policy`, so a
//! client sees every limit it is under.
//!
//! ```
//! use axum::{routing::get, Router};
//! use std::net::SocketAddr;
//! use tower_ratelimit_core::{store::MemoryStore, Quota};
//! use tower_ratelimit_http::server::headers::PolicyName;
//! use tower_ratelimit_http::server::HttpRateLimitLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # use tower::ServiceExt;
//! let expensive = HttpRateLimitLayer::global(MemoryStore::new(Quota::per_second(2)?))
//!     .policy_name(PolicyName::new("search")?);
//! let global = HttpRateLimitLayer::global(MemoryStore::new(Quota::per_second(100)?))
//!     .policy_name(PolicyName::new("global")?);
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "home" }))
//!     .route("/search", get(|| async { "results" }).layer(expensive))
//!     .layer(global);
//!
//! let response = app.oneshot(http::Request::get("/search").body(axum::body::Body::empty())?).await?;
//! let policies: Vec<_> = response.headers().get_all("ratelimit-policy").iter().collect();
//! assert_eq!(policies, [r#""search";q=2;w=1"#, r#""global";q=100;w=1"#]);
//! # Ok(()) }
//! ```
//!
//! Per-client limits use a keyed store and a key extractor: `ClientIp` (the TCP peer,
//! or the address forwarded by trusted proxies only; IPv6 clients by their /64, IPv4
//! clients behind a NAT64 or SIIT translator by their own address), an API key header, an identity
//! from authentication, the route, or a tuple of these; see [`key`]. The
//! `axum_server` example serves a per-client-IP limit end to end.
//!
//! # Browsers: CORS outside the limit
//!
//! A CORS layer (`tower_http::cors::CorsLayer`) belongs outside this one (in axum, a
//! later `.layer`): a 429 the limit writes then carries `Access-Control-Allow-Origin`
//! too, where without it the browser hides the whole response from the page, and
//! preflight `OPTIONS` requests, which the CORS layer answers itself, spend none of
//! the client's quota. `Retry-After` and the `RateLimit` fields are not among the
//! headers a page may read by default: list them in `Access-Control-Expose-Headers`
//! (`retry-after`, `ratelimit`, `ratelimit-policy`).
//!
//! gRPC services use [`HttpRateLimitLayer::grpc`]: denials become
//! `RESOURCE_EXHAUSTED` with `grpc-retry-pushback-ms` (see [`grpc`]).

mod body;
mod future;
pub mod grpc;
pub mod headers;
pub mod key;
mod layer;
pub mod problem;
mod respond;
mod service;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use layer::HttpRateLimitLayer;
pub use respond::{OnMissingKey, OnStoreError};
pub use service::HttpRateLimit;
