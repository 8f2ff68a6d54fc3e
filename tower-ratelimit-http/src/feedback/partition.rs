//! Partitioned feedback: a limiter per partition (a host by default; with [`ByRoute`]
//! or [`ByRouteOf`], a Discord bucket or a policy's `pk` the server names), so a
//! throttle on one partition does not stop the others; a pause applies to all of a
//! server's partitions when it says its limit is global, and a pause of the global
//! limiter (yours) to every partition. Bound the requests waiting for their
//! partitions ([`PartitionedFeedbackLayer::max_waiting`]) to hold `call_all` back.
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
//! // Paused by you, never spent here: for a rate over every host, put it in a
//! // `RateLimitLayer` outside too.
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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
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
///
/// The key is the exact path, so it suits an API whose paths carry no ids. Where they
/// do (`/channels/1/messages/123`), each id is a partition of its own, with a full
/// bucket, and the bucket the server names is learned only for a path that is never
/// asked again: use [`ByRouteOf`] to name the route instead.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByRoute;

impl PartitionBy for ByRoute {
    fn partition<B>(&self, request: &http::Request<B>) -> Vec<u8> {
        route_key(request, request.uri().path())
    }

    /// A route's requests share one bucket: the one the server names.
    fn learns_named_partitions(&self) -> bool {
        true
    }
}

/// A route's partition key: the method, the server ([`ByHost`]'s) and the route.
fn route_key<B>(request: &http::Request<B>, route: &str) -> Vec<u8> {
    let server = server_of(request.uri());
    format!("{} {server}{route}", request.method()).into_bytes()
}

/// [`ByRoute`] with the route named by a function of the method and the path: give
/// the paths of one route one name (`/channels/1/messages/{id}` for every message of
/// channel 1), so that its requests share a partition, and the bucket the server
/// names for it holds all of them. Keep in the name what the server keys its buckets
/// by: Discord's are per route and *major parameter* (a channel, a guild), so keep
/// those and replace the other ids.
///
/// ```
/// use tower_ratelimit_core::{Quota, RateLimiter};
/// use tower_ratelimit_http::feedback::{ByRouteOf, PartitionBy, PartitionedFeedbackLayer};
///
/// // `/channels/{channel}/messages/{message}`: the channel stays, the message goes.
/// let by = ByRouteOf(|_method: &http::Method, path: &str| {
///     match path.split('/').collect::<Vec<_>>().as_slice() {
///         ["", "api", "channels", channel, "messages", _] => {
///             format!("/api/channels/{channel}/messages/{{id}}")
///         }
///         _ => path.to_owned(),
///     }
/// });
/// let request = |id: u32| {
///     let uri = format!("https://discord.test/api/channels/1/messages/{id}");
///     http::Request::delete(uri).body(()).unwrap()
/// };
/// assert_eq!(by.partition(&request(7)), by.partition(&request(8)));
/// # let quota = Quota::per_second(50).unwrap();
/// let layer = PartitionedFeedbackLayer::new(quota, RateLimiter::new(quota)).partition_by(by);
/// ```
#[derive(Clone, Copy, Default)]
pub struct ByRouteOf<F>(pub F);

impl<F> fmt::Debug for ByRouteOf<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByRouteOf").finish_non_exhaustive()
    }
}

impl<F> PartitionBy for ByRouteOf<F>
where
    F: Fn(&http::Method, &str) -> String + Send + Sync + 'static,
{
    fn partition<B>(&self, request: &http::Request<B>) -> Vec<u8> {
        route_key(request, &(self.0)(request.method(), request.uri().path()))
    }

    /// A route's requests share one bucket: the one the server names.
    fn learns_named_partitions(&self) -> bool {
        true
    }
}

struct Entry {
    limiter: RateLimiter,
    last_used: u64,
    /// The server whose requests use the partition (empty for one made through
    /// [`Partitions::limiter`]): a server-wide refusal throttles only its own.
    origin: Vec<u8>,
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
    /// Changeable on a shared table ([`PartitionedFeedbackLayer::max_partitions`]).
    max_partitions: AtomicUsize,
    global: RateLimiter,
    table: Mutex<Table>,
}

impl fmt::Debug for Partitions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Partitions")
            .field("quota", &self.quota)
            .field("max_partitions", &self.max_partitions())
            .field("len", &self.len())
            .finish()
    }
}

impl Partitions {
    /// A limiter of `quota` per partition, at most `max_partitions` of them, and
    /// `global`, whose pauses every partition honours.
    pub(crate) fn new(quota: Quota, global: RateLimiter, max_partitions: usize) -> Self {
        Partitions {
            quota,
            max_partitions: AtomicUsize::new(max_partitions.max(1)),
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

    /// The most partitions held.
    pub fn max_partitions(&self) -> usize {
        self.max_partitions.load(Ordering::Relaxed)
    }

    /// Waits for a unit of the partition a request key maps to, for any pause of the
    /// global limiter, and for any server-wide pause of the request's server
    /// (`origin`); returns that partition's limiter, which the response then steers.
    pub(crate) async fn admit(
        &self,
        request_key: &[u8],
        origin: &[u8],
    ) -> Result<RateLimiter, BoxError> {
        let request_key = &request_key[..request_key.len().min(MAX_KEY)];
        let partition = self.resolve(request_key);
        let limiter = self.limiter_of(&partition, origin);
        loop {
            limiter.acquire(1).await?;
            // A pause over the partition may have begun while this request waited its
            // turn: the unit goes back, and the request queues again when it ends.
            let server_wide = self.held(&server_wide(origin));
            let holders = std::iter::once(&self.global).chain(server_wide.as_ref());
            let holding: Vec<&RateLimiter> = holders
                .filter(|holder| holder.paused_until().is_some())
                .collect();
            if holding.is_empty() {
                return Ok(limiter);
            }
            limiter.store().refund_now(1);
            for holder in holding {
                wait_out_pause(holder).await;
            }
        }
    }

    /// The limiter a response's feedback applies to: the `origin` server's server-wide
    /// one when the server says its limit is global (a server's global limit is its
    /// own: it pauses the partitions of that server, not the global limiter, nor
    /// another server's), a partition the server names when the key `learns` them
    /// (scoped by the origin that named it, so one server cannot pause or crowd out
    /// another's partitions, and remembered for `request_key`), or else the one the
    /// request was `admitted` by.
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
            self.limiter_of(&server_wide(origin), origin)
        } else if let Some(named) = feedback.partition.key.as_deref().filter(|_| learns) {
            let named = scoped(origin, named);
            self.learn(request_key, &named);
            self.limiter_of(&named, origin)
        } else {
            admitted
        }
    }

    /// A server-wide refusal from `origin`: each of that server's partitions is
    /// throttled as its server-wide limiter is, so that none spends at its end the
    /// burst it saved during the pause.
    pub(crate) fn throttle_each(&self, verdict: &steer::Verdict, origin: &[u8]) {
        if verdict.class != super::Class::Throttled {
            return;
        }
        if let steer::Hold::For(wait) = verdict.hold {
            let limiters: Vec<RateLimiter> = self
                .lock()
                .limiters
                .values()
                .filter(|e| e.origin == origin)
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

    /// The global limiter: every request of every partition honours its pauses. It
    /// is yours to pause; its rate is not spent here (put it in a `RateLimitLayer`
    /// outside for a rate over all servers). A server that says its limit is global
    /// (Discord's `X-RateLimit-Global`) pauses its own partitions, not this one: its
    /// limit is not another server's.
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
        self.limiter_of(partition, &[])
    }

    /// [`Partitions::limiter`], for requests to the `origin` server.
    fn limiter_of(&self, partition: &[u8], origin: &[u8]) -> RateLimiter {
        let partition = &partition[..partition.len().min(MAX_KEY)];
        let mut table = self.lock();
        table.tick += 1;
        let tick = table.tick;
        if let Some(entry) = table.limiters.get_mut(partition) {
            entry.last_used = tick;
            // Made through `limiter` before any request (no origin), or shared by
            // several servers' keys: the server using it last is the one whose global
            // refusal empties it.
            if !origin.is_empty() && entry.origin != origin {
                entry.origin = origin.to_vec();
            }
            return entry.limiter.clone();
        }
        let limiter = RateLimiter::new(self.quota);
        self.insert(&mut table, partition, &limiter, tick, origin);
        limiter
    }

    /// The limiter the table holds for a partition, if any (creating none).
    pub(crate) fn held(&self, partition: &[u8]) -> Option<RateLimiter> {
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
        // The middleware's partitions are its hosts.
        self.insert(&mut table, partition, limiter, tick, partition);
    }

    /// Adds a partition's limiter, making room first when the table is full.
    fn insert(
        &self,
        table: &mut Table,
        partition: &[u8],
        limiter: &RateLimiter,
        tick: u64,
        origin: &[u8],
    ) {
        let max = self.max_partitions();
        while table.limiters.len() >= max {
            // Paused entries stay over the bound, up to twice it: past that, a flood
            // of servers each pausing would grow the table without end.
            if !evict(table, table.limiters.len() >= max.saturating_mul(2)) {
                break;
            }
        }
        table.limiters.insert(
            partition.to_vec(),
            Entry {
                limiter: limiter.clone(),
                last_used: tick,
                origin: origin.to_vec(),
            },
        );
    }

    /// Remembers that requests keyed `request_key` belong to `partition`.
    fn learn(&self, request_key: &[u8], partition: &[u8]) {
        let mut table = self.lock();
        if table.routes.get(request_key).map(Vec::as_slice) == Some(partition) {
            return;
        }
        if table.routes.len() >= self.max_partitions() {
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

/// The key of a server's server-wide limiter, which only its global refusals pause:
/// the origin and two separators (a named partition's key, [`scoped`], has one).
fn server_wide(origin: &[u8]) -> Vec<u8> {
    let mut key = origin[..origin.len().min(MAX_KEY - 2)].to_vec();
    key.extend_from_slice(b"\n\n");
    key
}

/// Until `limiter` is not paused: its pause's end, or a change of it (a resume). Not
/// in its queue, whose unit waiters would go first.
async fn wait_out_pause(limiter: &RateLimiter) {
    loop {
        let changed = limiter.pause_changed();
        let Some(until) = limiter.paused_until() else {
            break;
        };
        let sleep = std::pin::pin!(tokio::time::sleep_until(until));
        let changed = std::pin::pin!(changed);
        futures_util::future::select(sleep, changed).await;
    }
}

/// Drops the least recently used partition that is not paused (a paused one carries
/// a server's instruction: the table holds it over its bound until the pause ends),
/// or, when `even_paused`, the paused one whose pause ends first; whether one was
/// dropped.
fn evict(table: &mut Table, even_paused: bool) -> bool {
    let unpaused = table
        .limiters
        .iter()
        .filter(|(_, e)| e.limiter.paused_until().is_none())
        .min_by_key(|(_, e)| e.last_used)
        .map(|(k, _)| k.clone());
    let victim = unpaused.or_else(|| {
        even_paused
            .then(|| {
                table
                    .limiters
                    .iter()
                    .min_by_key(|(_, e)| e.limiter.paused_until())
                    .map(|(k, _)| k.clone())
            })
            .flatten()
    });
    victim.is_some_and(|k| table.limiters.remove(&k).is_some())
}

/// Like [`FeedbackLayer`](super::FeedbackLayer), with a limiter per partition: each
/// request waits its partition's turn (rate and pause) and any global pause, and a
/// throttle pauses only the partition it concerns, or every partition of its server
/// when the server says its limit is global (Discord's `X-RateLimit-Global`).
pub struct PartitionedFeedbackLayer<P = ByHost, C = DefaultClassifier> {
    partitions: Arc<Partitions>,
    by: Arc<P>,
    steer: Arc<Steer<C>>,
    /// Places for the requests waiting for their partitions, shared by the services,
    /// when bounded ([`PartitionedFeedbackLayer::max_waiting`]).
    waiting: Option<Arc<Semaphore>>,
}

impl<P, C> Clone for PartitionedFeedbackLayer<P, C> {
    fn clone(&self) -> Self {
        PartitionedFeedbackLayer {
            partitions: Arc::clone(&self.partitions),
            by: Arc::clone(&self.by),
            steer: Arc::clone(&self.steer),
            waiting: self.waiting.clone(),
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

    /// A limiter of `quota` per host. Every request also honours the pauses of
    /// `global`, which is yours to pause (its rate is not spent here: for a rate over
    /// all hosts, put it in a `RateLimitLayer` outside, see [`Partitions::global`]).
    pub fn new(quota: Quota, global: RateLimiter) -> Self {
        PartitionedFeedbackLayer {
            waiting: None,
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
    /// Bounds the number of partitions (at least 1); the least recently used one that
    /// is not paused is dropped first. Paused ones carry a server's instruction: the
    /// table holds them over the bound until their pauses end, up to twice the bound,
    /// past which the one whose pause ends first goes. The bound is the shared table's: it holds for
    /// every clone of the layer and every service it made.
    pub fn max_partitions(self, max: usize) -> Self {
        self.partitions
            .max_partitions
            .store(max.max(1), Ordering::Relaxed);
        self
    }

    /// Bounds the requests waiting for their partitions (their turn, a pause) at
    /// once, across every clone of the layer made after this call and the services
    /// they make (at least 1; unbounded by default): past it, `poll_ready` waits for
    /// one of them to start. Set it when a caller drives the layer with `call_all`
    /// over a client that is always ready (hyper's, reqwest's): the partition is known
    /// only in `call`, so without a bound the whole input is pulled in and waits in
    /// memory (100,000 requests in a second, at 10/s). Two prices: when the bound is
    /// reached, requests of a paused partition hold places that another partition's
    /// requests could use; and a place is held from `poll_ready` until the request's
    /// future starts it, so a caller that makes calls and only awaits their futures
    /// later (`join_all` over a loop of `ready` and `call`) waits for ever on the call
    /// past the bound, as behind tower's `ConcurrencyLimit`. Services made before
    /// keep the bound they had.
    pub fn max_waiting(mut self, max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        self.waiting = Some(Arc::new(Semaphore::new(max)));
        self
    }

    /// How requests are keyed before the server names a partition.
    pub fn partition_by<P2: PartitionBy>(self, by: P2) -> PartitionedFeedbackLayer<P2, C> {
        PartitionedFeedbackLayer {
            partitions: self.partitions,
            by: Arc::new(by),
            steer: self.steer,
            waiting: self.waiting,
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
            waiting: self.waiting,
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
            waiting: self.waiting.clone(),
            place: Place::None,
        }
    }
}

/// The service of [`PartitionedFeedbackLayer`]. Clones share the partitions.
///
/// The partition is known only in `call`, so a request waits for its partition (its
/// turn, a pause) in its response future. `poll_ready` is the inner service's
/// readiness, which the request keeps while it waits, and, when the layer bounds them
/// ([`PartitionedFeedbackLayer::max_waiting`]), one of its places for waiting
/// requests, which the request gives back when it starts. Over a client that is always
/// ready (hyper's, reqwest's) only that bound holds `call_all` back: without it the
/// input is pulled in as fast as it comes. Keeping the inner readiness keeps each start
/// within its partition's quota and outside its pauses; the price is that, with a
/// concurrency limit inside this layer, a paused partition's requests hold permits
/// that other partitions could use. Put the concurrency limit per host (one client
/// stack per upstream), or keep the pool larger than the requests a pause can hold.
pub struct PartitionedFeedback<S, P, C> {
    inner: S,
    partitions: Arc<Partitions>,
    by: Arc<P>,
    steer: Arc<Steer<C>>,
    waiting: Option<Arc<Semaphore>>,
    place: Place,
}

/// A service's place among the requests waiting for their partitions.
enum Place {
    None,
    Taking(Pin<Box<dyn Future<Output = Option<OwnedSemaphorePermit>> + Send>>),
    Held(OwnedSemaphorePermit),
}

impl<S: Clone, P, C> Clone for PartitionedFeedback<S, P, C> {
    /// A clone shares the partitions and the places; it holds none (it has not been
    /// polled ready).
    fn clone(&self) -> Self {
        PartitionedFeedback {
            inner: self.inner.clone(),
            partitions: Arc::clone(&self.partitions),
            by: Arc::clone(&self.by),
            steer: Arc::clone(&self.steer),
            waiting: self.waiting.clone(),
            place: Place::None,
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
        loop {
            match &mut self.place {
                Place::Held(_) => break,
                Place::None => {
                    let Some(waiting) = self.waiting.clone() else {
                        break;
                    };
                    self.place =
                        Place::Taking(Box::pin(async move { waiting.acquire_owned().await.ok() }));
                }
                Place::Taking(taking) => {
                    self.place = match std::task::ready!(taking.as_mut().poll(cx)) {
                        Some(permit) => Place::Held(permit),
                        // Never closed; were it, waiting would be unbounded, not stuck.
                        None => break,
                    };
                }
            }
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let place = match std::mem::replace(&mut self.place, Place::None) {
            Place::Held(permit) => Some(permit),
            _ => None,
        };
        // The ready service goes with the request; a fresh clone stays for the next.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let partitions = Arc::clone(&self.partitions);
        let steer = Arc::clone(&self.steer);
        let request_key = self.by.partition(&request);
        let learns = self.by.learns_named_partitions();
        let origin = server_of(request.uri()).into_bytes();
        Box::pin(async move {
            let limiter = partitions.admit(&request_key, &origin).await?;
            // Started: the place goes to the next waiting request.
            drop(place);
            let mut response = inner.call(request).await.map_err(Into::into)?;
            let verdict = steer.judge(response.status(), response.headers());
            let target =
                partitions.target(limiter, &request_key, &origin, &verdict.feedback, learns);
            steer::apply(&target, &verdict, steer.adopt_policy);
            if verdict.feedback.partition.global {
                // The server-wide limiter holds the server's partitions, but each
                // partition's bucket saved its burst meanwhile: a server-wide refusal
                // empties them all.
                partitions.throttle_each(&verdict, &origin);
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
