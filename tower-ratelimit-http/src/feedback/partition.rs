//! Partitioned feedback: a limiter per partition (a host by default; with [`ByRoute`],
//! a Discord bucket or a policy's `pk` the server names), so a throttle on one
//! partition does not stop the others; a pause applies to all when the server says the
//! limit is global.
//!
//! ```
//! use std::time::Duration;
//! use tower::{service_fn, ServiceExt};
//! use tower_ratelimit_core::{Quota, RateLimiter};
//! use tower_ratelimit_http::feedback::PartitionedFeedbackLayer;
//! use tower_layer::Layer;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), tower_ratelimit_core::BoxError> {
//! let global = RateLimiter::new(Quota::per_second(1000)?);
//! let layer = PartitionedFeedbackLayer::new(Quota::per_second(50)?, global);
//! let api = service_fn(|req: http::Request<()>| async move {
//!     let status = if req.uri().host() == Some("slow.example") { 429 } else { 200 };
//!     let res = http::Response::builder().status(status).header("retry-after", "5");
//!     Ok::<_, std::convert::Infallible>(res.body(()).unwrap())
//! });
//! let client = layer.layer(api);
//! let get = |uri: &str| http::Request::get(uri).body(()).unwrap();
//!
//! let start = tokio::time::Instant::now();
//! client.clone().oneshot(get("http://slow.example/")).await?; // 429: slow.example paused
//! client.clone().oneshot(get("http://fast.example/")).await?; // not held
//! assert!(start.elapsed() < Duration::from_secs(1));
//! client.clone().oneshot(get("http://slow.example/")).await?; // held 5 s
//! assert!(start.elapsed() >= Duration::from_secs(5));
//! # Ok(()) }
//! ```

use super::classify::{Classify, DefaultClassifier};
use super::parse::bytes::MAX_KEY;
use super::parse::FeedbackParser;
use super::steer::{self, Steer};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tower_layer::Layer;
use tower_ratelimit_core::error::BoxError;
use tower_ratelimit_core::{Quota, RateLimiter};
use tower_service::Service;

/// Which partition a request belongs to before the server has said anything.
pub trait PartitionBy: Send + Sync + 'static {
    /// The request's partition key (truncated to 256 bytes).
    fn partition<B>(&self, request: &http::Request<B>) -> Vec<u8>;

    /// Whether a partition the server names (Discord's bucket header) is learned for
    /// this key, so that later requests of the key wait for that partition. Only right
    /// where a key's requests all share one server partition, as a route's do; for a
    /// coarser key (a host, with many buckets) the named partition would move with
    /// whichever answer came last, so its throttle holds the key's own limiter instead.
    /// `false` unless a key says otherwise ([`ByRoute`] does).
    fn learns_named_partitions(&self) -> bool {
        false
    }
}

/// One partition per server: the host, with the port when it is not the scheme's
/// default (`api.example.com`, `127.0.0.1:8080`). The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByHost;

impl PartitionBy for ByHost {
    fn partition<B>(&self, request: &http::Request<B>) -> Vec<u8> {
        server_of(request.uri()).into_bytes()
    }
}

/// The server a URI names, as a partition key: its host, and its port unless that is
/// the scheme's default. Services on other ports of one host are other servers, with
/// limits of their own (an admin port, every service of a development machine).
pub(crate) fn server_of(uri: &http::Uri) -> String {
    // Host names are case-insensitive (reqwest's URLs arrive lowercased already).
    let host = uri.host().unwrap_or("").to_ascii_lowercase();
    let host = host.as_str();
    let default_port = match uri.scheme_str() {
        Some("http" | "ws") => Some(80),
        Some("https" | "wss") => Some(443),
        _ => None,
    };
    match uri.port_u16() {
        Some(port) if Some(port) != default_port => with_port(host, port),
        _ => host.to_owned(),
    }
}

/// `host:port`, with the host cut short enough that the port survives the key's
/// truncation to `MAX_KEY` bytes (or two ports of a 255-byte host would share a key).
pub(crate) fn with_port(host: &str, port: u16) -> String {
    let room = MAX_KEY.saturating_sub(":65535".len());
    let host = host.get(..host.len().min(room)).unwrap_or(host);
    format!("{host}:{port}")
}

/// One partition per server ([`ByHost`]'s), method and path: a route, which a
/// server's bucket header (Discord's `X-RateLimit-Bucket`) then maps to the bucket it
/// shares.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByRoute;

impl PartitionBy for ByRoute {
    fn partition<B>(&self, request: &http::Request<B>) -> Vec<u8> {
        let server = server_of(request.uri());
        format!("{} {server}{}", request.method(), request.uri().path()).into_bytes()
    }

    /// A route's requests share one bucket: the one the server names.
    fn learns_named_partitions(&self) -> bool {
        true
    }
}

struct Entry {
    limiter: RateLimiter,
    last_used: u64,
}

/// The bounded state: limiters by partition, and what the server taught about which
/// request keys share a partition.
struct Table {
    limiters: HashMap<Vec<u8>, Entry>,
    routes: HashMap<Vec<u8>, Vec<u8>>,
    tick: u64,
}

/// The limiters of a partitioned feedback layer, shared by its services.
pub struct Partitions {
    quota: Quota,
    max_partitions: usize,
    global: RateLimiter,
    table: Mutex<Table>,
}

impl fmt::Debug for Partitions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Partitions")
            .field("quota", &self.quota)
            .field("max_partitions", &self.max_partitions)
            .field("len", &self.len())
            .finish()
    }
}

impl Partitions {
    /// A limiter of `quota` per partition, at most `max_partitions` of them, and
    /// `global` for all.
    pub(crate) fn new(quota: Quota, global: RateLimiter, max_partitions: usize) -> Self {
        Partitions {
            quota,
            max_partitions: max_partitions.max(1),
            global,
            table: Mutex::new(Table {
                limiters: HashMap::new(),
                routes: HashMap::new(),
                tick: 0,
            }),
        }
    }

    /// The quota a new partition starts with.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Waits for a unit of the partition a request key maps to, and for any global
    /// pause; returns that partition's limiter, which the response then steers.
    pub(crate) async fn admit(&self, request_key: &[u8]) -> Result<RateLimiter, BoxError> {
        let request_key = &request_key[..request_key.len().min(MAX_KEY)];
        let partition = self.resolve(request_key);
        let limiter = self.limiter(&partition);
        loop {
            limiter.acquire(1).await?;
            // A global pause may have begun while this request waited its turn: the
            // unit goes back, and the request queues again when it ends.
            if self.global.paused_until().is_none() {
                return Ok(limiter);
            }
            limiter.store().refund_now(1);
            // Not in the global limiter's queue (its unit waiters would go first):
            // until the pause ends or changes (a resume), then look again.
            loop {
                let changed = self.global.pause_changed();
                let Some(until) = self.global.paused_until() else {
                    break;
                };
                let sleep = std::pin::pin!(tokio::time::sleep_until(until));
                let changed = std::pin::pin!(changed);
                futures_util::future::select(sleep, changed).await;
            }
        }
    }

    /// The limiter a response's feedback applies to: the global one when the server
    /// says so, a partition the server names when the key `learns` them (scoped by the
    /// `origin` server that named it, so one server cannot pause or crowd out another's
    /// partitions, and remembered for `request_key`), or else the one the request was
    /// `admitted` by.
    pub(crate) fn target(
        &self,
        admitted: RateLimiter,
        request_key: &[u8],
        origin: &[u8],
        feedback: &super::Feedback,
        learns: bool,
    ) -> RateLimiter {
        let request_key = &request_key[..request_key.len().min(MAX_KEY)];
        if feedback.partition.global {
            self.global.clone()
        } else if let Some(named) = feedback.partition.key.as_deref().filter(|_| learns) {
            let named = scoped(origin, named);
            self.learn(request_key, &named);
            self.limiter(&named)
        } else {
            admitted
        }
    }

    /// A server-wide refusal: every partition is throttled as the global limiter is,
    /// so that none spends at its end the burst it saved during the pause.
    pub(crate) fn throttle_each(&self, verdict: &steer::Verdict) {
        if verdict.class != super::Class::Throttled {
            return;
        }
        if let steer::Hold::For(wait) = verdict.hold {
            let limiters: Vec<RateLimiter> = self
                .lock()
                .limiters
                .values()
                .map(|e| e.limiter.clone())
                .collect();
            for limiter in limiters {
                limiter.throttle_for(wait);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding the lock cannot leave the table inconsistent (each
        // operation is one insert or remove), so a poisoned lock is still usable.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The number of partitions held.
    pub fn len(&self) -> usize {
        self.lock().limiters.len()
    }

    /// No partition held yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The limiter paused when the server says global: every request of every
    /// partition honours its pause (its rate is not spent here; put it in a
    /// `RateLimitLayer` for that).
    pub fn global(&self) -> &RateLimiter {
        &self.global
    }

    /// The partition a request key maps to (the bucket the server named, or itself).
    fn resolve(&self, request_key: &[u8]) -> Vec<u8> {
        let table = self.lock();
        table
            .routes
            .get(request_key)
            .cloned()
            .unwrap_or_else(|| request_key.to_vec())
    }

    /// The limiter of a partition, created with the template quota when new.
    pub fn limiter(&self, partition: &[u8]) -> RateLimiter {
        let partition = &partition[..partition.len().min(MAX_KEY)];
        let mut table = self.lock();
        table.tick += 1;
        let tick = table.tick;
        if let Some(entry) = table.limiters.get_mut(partition) {
            entry.last_used = tick;
            return entry.limiter.clone();
        }
        let limiter = RateLimiter::new(self.quota);
        self.insert(&mut table, partition, &limiter, tick);
        limiter
    }

    /// The limiter the table holds for a partition, if any (creating none).
    #[cfg(feature = "reqwest-middleware")]
    pub(crate) fn current(&self, partition: &[u8]) -> Option<RateLimiter> {
        let partition = &partition[..partition.len().min(MAX_KEY)];
        let table = self.lock();
        table.limiters.get(partition).map(|e| e.limiter.clone())
    }

    /// Puts `limiter` back as the partition's when the table dropped it meanwhile (to
    /// make room): it carries a server's pause that later requests must honour.
    #[cfg(feature = "reqwest-middleware")]
    pub(crate) fn reinstate(&self, partition: &[u8], limiter: &RateLimiter) {
        let partition = &partition[..partition.len().min(MAX_KEY)];
        let mut table = self.lock();
        if table.limiters.contains_key(partition) {
            return;
        }
        table.tick += 1;
        let tick = table.tick;
        self.insert(&mut table, partition, limiter, tick);
    }

    /// Adds a partition's limiter, making room first when the table is full.
    fn insert(&self, table: &mut Table, partition: &[u8], limiter: &RateLimiter, tick: u64) {
        if table.limiters.len() >= self.max_partitions {
            evict(table);
        }
        table.limiters.insert(
            partition.to_vec(),
            Entry {
                limiter: limiter.clone(),
                last_used: tick,
            },
        );
    }

    /// Remembers that requests keyed `request_key` belong to `partition`.
    fn learn(&self, request_key: &[u8], partition: &[u8]) {
        let mut table = self.lock();
        if table.routes.get(request_key).map(Vec::as_slice) == Some(partition) {
            return;
        }
        if table.routes.len() >= self.max_partitions {
            // Forgetting a route only costs a wrong partition until the server names
            // it again; any entry will do.
            if let Some(k) = table.routes.keys().next().cloned() {
                table.routes.remove(&k);
            }
        }
        table
            .routes
            .insert(request_key.to_vec(), partition.to_vec());
    }
}

/// A server-named partition's key: the origin host, a separator no host contains, then
/// the name, within the key length bound.
fn scoped(origin: &[u8], named: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(origin.len() + 1 + named.len());
    key.extend_from_slice(origin);
    key.push(b'\n');
    key.extend_from_slice(named);
    key.truncate(MAX_KEY);
    key
}

/// Drops the least recently used partition, preferring one that is not paused (a
/// paused one carries a server's instruction).
fn evict(table: &mut Table) {
    let victim = table
        .limiters
        .iter()
        .min_by_key(|(_, e)| (e.limiter.paused_until().is_some(), e.last_used))
        .map(|(k, _)| k.clone());
    if let Some(k) = victim {
        table.limiters.remove(&k);
    }
}

/// Like [`FeedbackLayer`](super::FeedbackLayer), with a limiter per partition: each
/// request waits its partition's turn (rate and pause) and any global pause, and a
/// throttle pauses only the partition it concerns, or every partition when the
/// server says global (Discord's `X-RateLimit-Global`).
pub struct PartitionedFeedbackLayer<P = ByHost, C = DefaultClassifier> {
    partitions: Arc<Partitions>,
    by: Arc<P>,
    steer: Arc<Steer<C>>,
}

impl<P, C> Clone for PartitionedFeedbackLayer<P, C> {
    fn clone(&self) -> Self {
        PartitionedFeedbackLayer {
            partitions: Arc::clone(&self.partitions),
            by: Arc::clone(&self.by),
            steer: Arc::clone(&self.steer),
        }
    }
}

impl<P, C> fmt::Debug for PartitionedFeedbackLayer<P, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartitionedFeedbackLayer")
            .field("partitions", &self.partitions)
            .finish()
    }
}

impl PartitionedFeedbackLayer {
    /// Most partitions held by default.
    pub const DEFAULT_MAX_PARTITIONS: usize = 1024;

    /// A limiter of `quota` per host, and `global` for all.
    pub fn new(quota: Quota, global: RateLimiter) -> Self {
        PartitionedFeedbackLayer {
            partitions: Arc::new(Partitions::new(quota, global, Self::DEFAULT_MAX_PARTITIONS)),
            by: Arc::new(ByHost),
            steer: Arc::new(Steer {
                parser: FeedbackParser::new(),
                classifier: DefaultClassifier,
                adopt_policy: None,
                fallback_pause: Duration::from_secs(1),
            }),
        }
    }
}

impl<P, C: Clone> PartitionedFeedbackLayer<P, C> {
    /// Bounds the number of partitions (at least 1); the least recently used one is
    /// dropped first, a paused one last.
    pub fn max_partitions(mut self, max: usize) -> Self {
        if let Some(p) = Arc::get_mut(&mut self.partitions) {
            p.max_partitions = max.max(1);
        }
        self
    }

    /// How requests are keyed before the server names a partition.
    pub fn partition_by<P2: PartitionBy>(self, by: P2) -> PartitionedFeedbackLayer<P2, C> {
        PartitionedFeedbackLayer {
            partitions: self.partitions,
            by: Arc::new(by),
            steer: self.steer,
        }
    }

    /// Replaces the parser.
    pub fn parser(mut self, parser: FeedbackParser) -> Self {
        Arc::make_mut(&mut self.steer).parser = parser;
        self
    }

    /// Adopts the tightest request policy a partition's server advertises as that
    /// partition's rate, never faster than the partitions' own quota and keeping their
    /// burst shape, as [`FeedbackLayer::adopt_policy`](crate::FeedbackLayer::adopt_policy)
    /// does. Off by default.
    pub fn adopt_policy(mut self, adopt: bool) -> Self {
        let ceiling = adopt.then_some(self.partitions.quota);
        Arc::make_mut(&mut self.steer).adopt_policy = ceiling;
        self
    }

    /// How long a throttled response that names no wait holds its partition (1 s by
    /// default; see [`FeedbackLayer::fallback_pause`](crate::FeedbackLayer::fallback_pause)).
    pub fn fallback_pause(mut self, pause: Duration) -> Self {
        Arc::make_mut(&mut self.steer).fallback_pause = pause;
        self
    }

    /// Replaces the classifier.
    pub fn classifier<C2: Classify + Clone>(
        self,
        classifier: C2,
    ) -> PartitionedFeedbackLayer<P, C2> {
        PartitionedFeedbackLayer {
            partitions: self.partitions,
            by: self.by,
            steer: Arc::new(Steer {
                parser: self.steer.parser,
                classifier,
                adopt_policy: self.steer.adopt_policy,
                fallback_pause: self.steer.fallback_pause,
            }),
        }
    }

    /// The partitions, to inspect or share.
    pub fn partitions(&self) -> &Arc<Partitions> {
        &self.partitions
    }
}

impl<S, P, C> Layer<S> for PartitionedFeedbackLayer<P, C> {
    type Service = PartitionedFeedback<S, P, C>;

    fn layer(&self, inner: S) -> Self::Service {
        PartitionedFeedback {
            inner,
            partitions: Arc::clone(&self.partitions),
            by: Arc::clone(&self.by),
            steer: Arc::clone(&self.steer),
        }
    }
}

/// The service of [`PartitionedFeedbackLayer`]. Clones share the partitions.
///
/// `poll_ready` is the inner service's, and a request keeps that readiness while it
/// waits for its partition (its turn, a pause). That keeps backpressure and keeps each
/// start within its partition's quota and outside its pauses; the price is that, with
/// a concurrency limit inside this layer, a paused partition's requests hold permits
/// that other partitions could use. Put the concurrency limit per host (one client
/// stack per upstream), or keep the pool larger than the requests a pause can hold.
pub struct PartitionedFeedback<S, P, C> {
    inner: S,
    partitions: Arc<Partitions>,
    by: Arc<P>,
    steer: Arc<Steer<C>>,
}

impl<S: Clone, P, C> Clone for PartitionedFeedback<S, P, C> {
    fn clone(&self) -> Self {
        PartitionedFeedback {
            inner: self.inner.clone(),
            partitions: Arc::clone(&self.partitions),
            by: Arc::clone(&self.by),
            steer: Arc::clone(&self.steer),
        }
    }
}

impl<S, P, C> fmt::Debug for PartitionedFeedback<S, P, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartitionedFeedback")
            .field("partitions", &self.partitions)
            .finish()
    }
}

impl<S, P, C, ReqBody, ResBody> Service<http::Request<ReqBody>> for PartitionedFeedback<S, P, C>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
    P: PartitionBy,
    C: Classify,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        // The ready service goes with the request; a fresh clone stays for the next.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let partitions = Arc::clone(&self.partitions);
        let steer = Arc::clone(&self.steer);
        let request_key = self.by.partition(&request);
        let learns = self.by.learns_named_partitions();
        let origin = server_of(request.uri()).into_bytes();
        Box::pin(async move {
            let limiter = partitions.admit(&request_key).await?;
            let mut response = inner.call(request).await.map_err(Into::into)?;
            let verdict = steer.judge(response.status(), response.headers());
            let target =
                partitions.target(limiter, &request_key, &origin, &verdict.feedback, learns);
            steer::apply(&target, &verdict, steer.adopt_policy);
            if verdict.feedback.partition.global {
                // The global limiter holds every partition, but each partition's bucket
                // saved its burst meanwhile: a server-wide refusal empties them all.
                partitions.throttle_each(&verdict);
            }
            if let Some(over) = verdict.over_cap {
                return Err(Box::new(over) as BoxError);
            }
            response.extensions_mut().insert(verdict.class);
            response.extensions_mut().insert(verdict.feedback);
            Ok(response)
        })
    }
}
