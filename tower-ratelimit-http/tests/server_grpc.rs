//! gRPC mode: denials are trailers-only responses with RESOURCE_EXHAUSTED and
//! `grpc-retry-pushback-ms`.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Empty;
use std::convert::Infallible;
use tower::{Layer, ServiceExt};
use tower_ratelimit_core::keyed::KeyedMemoryStore;
use tower_ratelimit_core::Quota;
use tower_ratelimit_http::server::key::HeaderKey;
use tower_ratelimit_http::server::{HttpRateLimitLayer, OnMissingKey};

#[tokio::test(start_paused = true)]
async fn denial_is_resource_exhausted_with_pushback() {
    let quota = Quota::per_second(4).unwrap().with_burst(1).unwrap();
    let client = HeaderKey::new(http::HeaderName::from_static("x-client"));
    let layer = HttpRateLimitLayer::new(KeyedMemoryStore::new(quota), client)
        .grpc()
        .on_missing_key(OnMissingKey::Reject(http::StatusCode::UNAUTHORIZED));
    let service = layer.layer(tower::service_fn(|_: Request<()>| async {
        let mut response = Response::new(Empty::<Bytes>::new());
        response
            .headers_mut()
            .insert("grpc-status", "0".parse().unwrap());
        Ok::<_, Infallible>(response)
    }));
    let call = |client: Option<&'static str>| {
        let mut request = Request::post("/pkg.Service/Method").body(()).unwrap();
        if let Some(c) = client {
            request.headers_mut().insert("x-client", c.parse().unwrap());
        }
        service.clone().oneshot(request)
    };

    let ok = call(Some("a")).await.unwrap();
    assert_eq!(ok.headers()["grpc-status"], "0");
    // 4/s with burst 1 is advertised as its rate; the spent burst leaves 3 of those 4.
    assert_eq!(ok.headers()["ratelimit-policy"], r#""default";q=4;w=1"#);
    assert_eq!(ok.headers()["ratelimit"], r#""default";r=3;t=1"#);

    let denied = call(Some("a")).await.unwrap();
    assert_eq!(denied.status(), 200);
    assert_eq!(denied.headers()["content-type"], "application/grpc");
    assert_eq!(denied.headers()["grpc-status"], "8");
    assert_eq!(denied.headers()["grpc-retry-pushback-ms"], "250");
    assert_eq!(denied.headers()["retry-after"], "1");
    assert_eq!(
        denied.headers()["grpc-message"],
        "rate limited; retry after 1 second"
    );

    let anonymous = call(None).await.unwrap();
    assert_eq!(anonymous.headers()["grpc-status"], "16");
    assert_eq!(call(Some("b")).await.unwrap().headers()["grpc-status"], "0");
}

#[tokio::test(start_paused = true)]
async fn a_cost_no_quota_admits_is_internal_not_resource_exhausted() {
    // RESOURCE_EXHAUSTED would be retried by every gRPC client; waiting cannot help.
    let quota = Quota::per_second(4).unwrap().with_burst(1).unwrap();
    let client = HeaderKey::new(http::HeaderName::from_static("x-client"));
    let service = HttpRateLimitLayer::new(KeyedMemoryStore::new(quota), client)
        .grpc()
        .cost(2)
        .layer(tower::service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
        }));
    let request = Request::post("/pkg.Service/Method")
        .header("x-client", "a")
        .body(())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.headers()["grpc-status"], "13");
    assert!(response.headers().get("grpc-retry-pushback-ms").is_none());
    assert_eq!(
        response.headers()["grpc-message"],
        "the request costs 2 units; the quota admits at most 1 at once"
    );
}
