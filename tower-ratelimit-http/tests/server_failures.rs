//! What the layer answers when the store cannot decide, and that no header or key
//! input makes it panic.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Empty;
use proptest::prelude::*;
use std::convert::Infallible;
use std::future::{ready, Ready};
use std::time::Duration;
use tower::{Layer, ServiceExt};
use tower_ratelimit_core::error::StoreError;
use tower_ratelimit_core::keyed::{CapPolicy, KeyedMemoryStore};
use tower_ratelimit_core::store::{Decision, RateStore};
use tower_ratelimit_core::Quota;
use tower_ratelimit_http::server::key::{
    ClientIp, ForwardedHeader, HeaderKey, IpNet, KeyExtractor, PeerAddr,
};
use tower_ratelimit_http::server::{HttpRateLimitLayer, OnStoreError};

/// A store whose backend is always out of reach.
struct Down;

impl RateStore<()> for Down {
    type Future = Ready<Result<Decision, StoreError>>;
    fn check(&self, _: &(), _: u64) -> Self::Future {
        ready(Err(StoreError::Unavailable("connection refused".into())))
    }
    fn peek(&self, key: &(), cost: u64) -> Self::Future {
        self.check(key, cost)
    }
    fn reserve(&self, key: &(), cost: u64, _: Duration) -> Self::Future {
        self.check(key, cost)
    }
    fn quota(&self, _: &()) -> Quota {
        Quota::per_second(1).unwrap()
    }
    fn set_quota(&self, _: Quota) {}
}

fn ok() -> impl tower::Service<
    Request<()>,
    Response = Response<Empty<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    tower::service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(Empty::new())) })
}

#[tokio::test(start_paused = true)]
async fn an_unavailable_store_fails_open_or_closed_as_configured() {
    let open = HttpRateLimitLayer::global(Down).layer(ok());
    let response = open.oneshot(Request::new(())).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("ratelimit").is_none());

    let closed = HttpRateLimitLayer::global(Down)
        .on_store_error(OnStoreError::Reject)
        .problem_details(true)
        .layer(ok());
    let response = closed.oneshot(Request::new(())).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_keyed_store_sheds_new_clients_with_503() {
    let store = KeyedMemoryStore::new(Quota::per_minute(10).unwrap())
        .with_max_keys(1)
        .with_cap_policy(CapPolicy::RejectNew);
    let service = HttpRateLimitLayer::new(
        store,
        HeaderKey::new(http::HeaderName::from_static("x-key")),
    )
    .layer(ok());
    let call = |key: &'static str| {
        service
            .clone()
            .oneshot(Request::get("/").header("x-key", key).body(()).unwrap())
    };
    assert_eq!(call("a").await.unwrap().status(), 200);
    let shed = call("b").await.unwrap();
    assert_eq!(shed.status(), 503);
    // "a" holds the only place until its unit is back, 6 s at 10 a minute: a client
    // told "1" asked six times, and sixty at one a minute.
    assert_eq!(shed.headers()["retry-after"], "6");
    assert_eq!(call("a").await.unwrap().status(), 200);
    // "a" spent another unit: its place is held 12 s from the start now, which a
    // refusal says once the full table has looked again (it does every 100 ms).
    tokio::time::advance(Duration::from_millis(100)).await;
    let shed = call("b").await.unwrap();
    assert_eq!(shed.headers()["retry-after"], "12");
    tokio::time::advance(Duration::from_millis(11_800)).await;
    let shed = call("b").await.unwrap();
    assert_eq!(shed.status(), 503);
    assert_eq!(shed.headers()["retry-after"], "1");
    tokio::time::advance(Duration::from_millis(100)).await;
    assert_eq!(call("b").await.unwrap().status(), 200);
}

#[tokio::test(start_paused = true)]
async fn a_cost_above_the_burst_is_a_server_error_not_a_throttle() {
    let quota = Quota::per_second(10).unwrap().with_burst(2).unwrap();
    let service = HttpRateLimitLayer::keyed(
        quota,
        HeaderKey::new(http::HeaderName::from_static("x-key")),
    )
    .cost(3)
    .layer(ok());
    let response = service
        .oneshot(Request::get("/").header("x-key", "k").body(()).unwrap())
        .await
        .unwrap();
    // A 429 made every client retry it as a throttle, and pause all its requests.
    assert_eq!(response.status(), 500);
    assert!(response.headers().get("retry-after").is_none());
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(
        body,
        "the request costs 3 units; the quota admits at most 2 at once"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn forwarding_headers_never_panic(value in proptest::collection::vec(any::<u8>(), 0..200), trusted in any::<bool>()) {
        let nets: Vec<IpNet> = if trusted { vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()] } else { vec![] };
        for header in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded, ForwardedHeader::XRealIp] {
            let name = match header {
                ForwardedHeader::Forwarded => "forwarded",
                ForwardedHeader::XRealIp => "x-real-ip",
                _ => "x-forwarded-for",
            };
            let extractor = ClientIp::behind_proxies(nets.clone(), header);
            let mut request = Request::new(());
            request.extensions_mut().insert(PeerAddr("10.1.2.3:80".parse().unwrap()));
            if let Ok(v) = http::HeaderValue::from_bytes(&value) {
                request.headers_mut().insert(name, v);
            }
            let _ = extractor.extract(&request);
        }
    }

    #[test]
    fn cidr_parsing_never_panics(text in "[0-9a-fA-F:./ \\[\\]]{0,48}") {
        if let Ok(net) = text.parse::<IpNet>() {
            // A parsed network contains its own first address.
            prop_assert!(net.contains(net.addr()));
        }
    }
}
