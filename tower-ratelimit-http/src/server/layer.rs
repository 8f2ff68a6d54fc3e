//! [`HttpRateLimitLayer`]: the configuration, shared by every service it makes.

use super::headers::{FieldRenderer, HeaderStyle, PolicyName};
use super::key::{GlobalKey, KeyExtractor};
use super::respond::{OnMissingKey, OnStoreError, Responder};
use super::service::HttpRateLimit;
use http::StatusCode;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use tower_layer::Layer;
use tower_ratelimit_core::keyed::KeyedMemoryStore;
use tower_ratelimit_core::store::RateStore;
use tower_ratelimit_core::Quota;

/// Rate-limits an HTTP service per key and answers over-limit requests itself, with a
/// 429 (or 503) carrying `Retry-After` and the IETF `RateLimit` fields.
///
/// The decision is made by a [`RateStore`] keyed by what the [`KeyExtractor`] reads
/// from each request: an in-memory keyed store, a Redis store shared by every instance,
/// or a `RateStore<()>` for one global limit ([`HttpRateLimitLayer::global`]). Every
/// service the layer makes, and every clone of them, shares the store.
///
/// The wrapped service keeps its error type: a denial is a response, not an error.
/// Allowed responses carry the `RateLimit` fields too, so clients can slow down before
/// they are denied.
///
/// The fields describe a **rate**, since `RateLimit-Policy` counts whole seconds. `q`
/// per `w` is the quota's rate over the shortest whole-second window that refills
/// whole units (to within 1%) and holds the burst
/// ([`quota_and_window`](super::headers::quota_and_window) has the rule). A client that
/// paces `q` over `w` is never refused.
///
/// `q` is the burst itself only when the burst refills in a whole number of seconds
/// (`Quota::per_minute(10)`, `per_second(5).with_burst(20)`; for the window algorithms
/// the count, when the period is whole seconds). Otherwise `q` is scaled above the
/// burst, and `r` with it: `r` is the bucket's own remaining units plus `q − burst`.
/// Then `r` is **not a count that may be sent at once**: all `r` requests pass when the
/// bucket's own go at once and the rest at the quota's rate, but sent at once only the
/// bucket's own pass, and the rest are refused. This happens
/// * with a burst below the count: 100/s with a burst of 1 says `q=100;w=1`, and after
///   a request `r=99`, of which none may go at once (saying `r=0` instead would make
///   clients that wait out `r=0` slow to 1/s);
/// * with a burst at or above the count, the default one included, that refills in
///   a non-whole number of seconds: 10 per 1.5 s says `q=20;w=3`, and after a request
///   `r=19`, of which 9 may go at once and the other 10 over the next 1.5 s; 2/s with
///   a burst of 3 says `q=4;w=2` and `r=1` on the last request the burst admits;
/// * with the leaky bucket (its burst is 1), unless a unit takes whole seconds.
///
/// For `r` to be what clients may send at once, give the quota a burst as large as
/// they may send at once *and* one that refills in whole seconds: 10 per 1.5 s with a
/// burst of 20 (`q=20;w=3`), 2/s with a burst of 4 (`q=4;w=2`).
///
/// | situation | answer |
/// |---|---|
/// | allowed | the service's response, plus `RateLimit` / `RateLimit-Policy` |
/// | over the quota | 429 (or [`status`](Self::status)), `Retry-After` rounded up (≥ 1), the fields, optional problem details |
/// | over the quota, on a layer of [`cost`](Self::cost) 0 | the service's response with the fields (`r=0`) |
/// | key cannot be read | [`on_missing_key`](Self::on_missing_key): 400 by default, 401, or a shared fallback key |
/// | no source for the key on this server (no peer address recorded) | 500, the reason as the body |
/// | the keyed store is full of active keys | 503 with `Retry-After` until the soonest held key is idle and its place free (≥ 1) |
/// | [`cost`](Self::cost) above what the key's quota admits at once (a setup error: a burst below the cost) | 500, the reason as the body (gRPC `INTERNAL`); no client would wait or retry it away |
/// | store unreachable (remote stores) | [`on_store_error`](Self::on_store_error): pass through (default) or 503 |
///
/// ```
/// use std::net::IpAddr;
/// use tower::{Layer, ServiceExt};
/// use tower_ratelimit_core::Quota;
/// use tower_ratelimit_http::server::key::{ClientIp, PeerAddr};
/// use tower_ratelimit_http::server::HttpRateLimitLayer;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = HttpRateLimitLayer::keyed(Quota::per_minute(1)?, ClientIp::peer());
/// let service = layer.layer(tower::service_fn(|_: http::Request<()>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
/// }));
/// let request = |peer: &str| {
///     let mut request = http::Request::new(());
///     request.extensions_mut().insert(PeerAddr(peer.parse().unwrap()));
///     request
/// };
/// assert_eq!(service.clone().oneshot(request("192.0.2.1:1000")).await?.status(), 200);
/// let denied = service.clone().oneshot(request("192.0.2.1:1001")).await?;
/// assert_eq!(denied.status(), 429);
/// assert_eq!(denied.headers()["retry-after"], "60");
/// // Another client has its own quota.
/// assert_eq!(service.oneshot(request("192.0.2.2:1000")).await?.status(), 200);
/// # Ok(()) }
/// ```
pub struct HttpRateLimitLayer<St, X: KeyExtractor> {
    store: Arc<St>,
    extractor: X,
    on_missing_key: OnMissingKey<X::Key>,
    // Shared by every service the layer makes (axum makes one per route, and may make
    // them per request): its rendered policy field is cached across all of them.
    responder: Arc<Responder>,
    cost: u64,
}

impl<St, X> HttpRateLimitLayer<St, X>
where
    St: RateStore<X::Key>,
    X: KeyExtractor,
{
    /// Limits requests by the key `extractor` reads, with the quotas of `store`.
    pub fn new(store: St, extractor: X) -> Self {
        Self::with_shared_store(Arc::new(store), extractor)
    }

    /// Like [`HttpRateLimitLayer::new`], with a store also used elsewhere (another
    /// layer, an admin endpoint that reads or changes quotas).
    pub fn with_shared_store(store: Arc<St>, extractor: X) -> Self {
        HttpRateLimitLayer {
            store,
            extractor,
            on_missing_key: OnMissingKey::default(),
            responder: Arc::new(Responder::default()),
            cost: 1,
        }
    }
}

impl<X> HttpRateLimitLayer<KeyedMemoryStore<X::Key>, X>
where
    X: KeyExtractor,
    X::Key: Hash + Eq,
{
    /// Limits each key to `quota`, in this process's memory (a
    /// [`KeyedMemoryStore`]: bounded number of keys, idle keys dropped by itself).
    ///
    /// The bound is [`DEFAULT_MAX_KEYS`](tower_ratelimit_core::keyed::DEFAULT_MAX_KEYS)
    /// (1,000,000) keys: measured under a flood, 69 MB of IP address keys (the tables
    /// of a full store, half empty at that cap), and about 330 MB of 256-byte keys
    /// clients invent (an API key header they choose: the same tables and the key
    /// strings).
    /// Where clients choose their keys, build the store with a lower
    /// [`with_max_keys`](KeyedMemoryStore::with_max_keys) and pass it to
    /// [`new`](Self::new).
    ///
    /// These figures are for this store's GCRA buckets (8 bytes each). A keyed
    /// [`SlidingLog`](tower_ratelimit_core::algorithm::SlidingLog) also holds up to
    /// `count` log entries of 16 bytes per active key, on the heap, for a period:
    /// 160 KB a client at 10,000 an hour.
    pub fn keyed(quota: Quota, extractor: X) -> Self {
        Self::new(KeyedMemoryStore::new(quota), extractor)
    }
}

impl<St: RateStore<()>> HttpRateLimitLayer<St, GlobalKey> {
    /// One limit for all requests together, protecting the service as a whole.
    ///
    /// A store of several quotas (`MemoryStore::with_quotas`: 10 a second and 30 a
    /// minute, say) is decided all or nothing, but its fields state one policy under
    /// the layer's one name: whichever quota is tighter at the moment, so the policy a
    /// client reads changes from `q=10;w=1` to `q=30;w=60` as the minute's quota runs
    /// low, and a client that adopts it changes pace. To advertise each quota as its
    /// own policy, stack one layer per quota, each with its
    /// [`policy_name`](Self::policy_name), the shorter window outside.
    pub fn global(store: St) -> Self {
        Self::new(store, GlobalKey)
    }
}

impl<St, X: KeyExtractor> HttpRateLimitLayer<St, X> {
    /// The status of denials: 429 Too Many Requests (the default) or 503 Service
    /// Unavailable (for load shedding that is not the client's fault; its problem
    /// body, when enabled, is the draft's `temporary-reduced-capacity`, not
    /// `quota-exceeded`). It is sent as given: any other status should be a 4xx
    /// (403 for servers whose clients expect it), since clients read a 2xx or 3xx
    /// with an empty body as an answer, not as a refusal to wait out.
    pub fn status(mut self, status: StatusCode) -> Self {
        Arc::make_mut(&mut self.responder).status = status;
        self
    }

    /// Which rate-limit fields to send (default: the current IETF fields only).
    pub fn header_style(mut self, style: HeaderStyle) -> Self {
        let name = self.responder.fields.name().clone();
        Arc::make_mut(&mut self.responder).fields = FieldRenderer::new(name, style);
        self
    }

    /// The policy name in the fields and problem details (default `"default"`). Give
    /// stacked layers distinct names.
    pub fn policy_name(mut self, name: PolicyName) -> Self {
        let style = self.responder.fields.style();
        Arc::make_mut(&mut self.responder).fields = FieldRenderer::new(name, style);
        self
    }

    /// Sends an `application/problem+json` body with denials (the draft's
    /// `quota-exceeded` problem type). Off by default: denials have an empty body.
    pub fn problem_details(mut self, enabled: bool) -> Self {
        Arc::make_mut(&mut self.responder).problem = enabled;
        self
    }

    /// Answers in gRPC form: a denial is a trailers-only response with `grpc-status`
    /// 8 (`RESOURCE_EXHAUSTED`) and `grpc-retry-pushback-ms`, as gRPC clients expect
    /// (HTTP status 200).
    pub fn grpc(mut self) -> Self {
        Arc::make_mut(&mut self.responder).grpc = true;
        self
    }

    /// What to answer when the key cannot be read (default: 400).
    pub fn on_missing_key(mut self, policy: OnMissingKey<X::Key>) -> Self {
        self.on_missing_key = policy;
        self
    }

    /// What to do when the store cannot decide (default: let the request through).
    pub fn on_store_error(mut self, policy: OnStoreError) -> Self {
        Arc::make_mut(&mut self.responder).on_store_error = policy;
        self
    }

    /// The units each request takes (default 1).
    ///
    /// A cost of 0 means **not counted**: every request passes, spends nothing, and
    /// its response still carries the key's fields as the counted requests left them
    /// (`r=0` once they have drained it). Use it for a route that must never be
    /// refused for its rate but should report the quota (a health check, a
    /// `/rate_limit` status endpoint) with a store shared with the counting layer
    /// ([`with_shared_store`](Self::with_shared_store)); on a layer of its own it turns
    /// the limit off.
    ///
    /// It passes even when a quota cut left the key over its new quota (a store
    /// refuses that key any cost, 0 included, until it is back under): the response
    /// then says `r=0` and the time until the key is full. Only what does not depend
    /// on the rate still answers: a key that cannot be read, a store that cannot
    /// decide ([`on_store_error`](Self::on_store_error)) or has too many keys.
    pub fn cost(mut self, cost: u64) -> Self {
        self.cost = cost;
        Arc::make_mut(&mut self.responder).uncounted = cost == 0;
        self
    }

    /// The store deciding for this layer.
    pub fn store(&self) -> &Arc<St> {
        &self.store
    }
}

impl<St, X: KeyExtractor> Clone for HttpRateLimitLayer<St, X> {
    fn clone(&self) -> Self {
        HttpRateLimitLayer {
            store: Arc::clone(&self.store),
            extractor: self.extractor.clone(),
            on_missing_key: self.on_missing_key.clone(),
            responder: Arc::clone(&self.responder),
            cost: self.cost,
        }
    }
}

impl<St, X: KeyExtractor + fmt::Debug> fmt::Debug for HttpRateLimitLayer<St, X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRateLimitLayer")
            .field("extractor", &self.extractor)
            .field("status", &self.responder.status)
            .field("fields", &self.responder.fields)
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

impl<S, St, X: KeyExtractor> Layer<S> for HttpRateLimitLayer<St, X> {
    type Service = HttpRateLimit<S, St, X>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpRateLimit::new(
            inner,
            Arc::clone(&self.store),
            self.extractor.clone(),
            self.on_missing_key.clone(),
            Arc::clone(&self.responder),
            self.cost,
        )
    }
}
