//! Exact response fields on allowed and denied responses, over real loopback HTTP.
//! The clock is paused and nothing in the path sleeps, so time stands still between
//! requests unless a test advances it.

mod server_support;

use server_support::{get, ok_service, serve};
use std::time::Duration;
use tower::Layer;
use tower_ratelimit_core::keyed::KeyedMemoryStore;
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::Quota;
use tower_ratelimit_http::server::headers::{HeaderStyle, PolicyName};
use tower_ratelimit_http::server::key::{ClientIp, HeaderKey};
use tower_ratelimit_http::server::{HttpRateLimitLayer, OnMissingKey};

/// A service that answers every request with an empty 200, without a peer address.
fn empty_ok() -> impl tower::Service<
    http::Request<()>,
    Response = http::Response<http_body_util::Empty<bytes::Bytes>>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    tower::service_fn(|_: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(
            http_body_util::Empty::<bytes::Bytes>::new(),
        ))
    })
}

#[tokio::test(start_paused = true)]
async fn allowed_and_denied_responses_carry_exact_fields() {
    let layer = HttpRateLimitLayer::keyed(Quota::per_second(3).unwrap(), ClientIp::peer())
        .policy_name(PolicyName::new("per-ip").unwrap());
    let addr = serve(layer.layer(ok_service())).await;

    // Burst 3 at 3/s: each request leaves one fewer unit, and the bucket is full again
    // 1/3 s later per unit spent (t rounds up to 1).
    for remaining in [2, 1, 0] {
        let reply = get(addr, "/", &[]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, "ok");
        assert_eq!(reply.header("ratelimit-policy"), r#""per-ip";q=3;w=1"#);
        assert_eq!(
            reply.header("ratelimit"),
            format!(r#""per-ip";r={remaining};t=1"#)
        );
        assert_eq!(reply.header("retry-after"), "");
    }
    let denied = get(addr, "/", &[]).await;
    assert_eq!(denied.status, 429);
    assert_eq!(denied.body, "");
    assert_eq!(denied.header("retry-after"), "1");
    assert_eq!(denied.header("ratelimit-policy"), r#""per-ip";q=3;w=1"#);
    assert_eq!(denied.header("ratelimit"), r#""per-ip";r=0;t=1"#);
    assert_eq!(denied.all("ratelimit").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn retry_after_for_a_fifth_of_a_second_is_one() {
    // 5/s with burst 1: after one request the next unit is 200 ms away.
    let quota = Quota::per_second(5).unwrap().with_burst(1).unwrap();
    let addr = serve(HttpRateLimitLayer::global(MemoryStore::new(quota)).layer(ok_service())).await;
    assert_eq!(get(addr, "/", &[]).await.status, 200);
    let denied = get(addr, "/", &[]).await;
    assert_eq!(denied.status, 429);
    assert_eq!(denied.header("retry-after"), "1");
    assert_eq!(denied.header("ratelimit-policy"), r#""default";q=5;w=1"#);
    assert_eq!(denied.header("ratelimit"), r#""default";r=0;t=1"#);
    // Retrying after the advertised wait (here exactly the 200 ms) succeeds.
    tokio::time::advance(Duration::from_millis(199)).await;
    assert_eq!(get(addr, "/", &[]).await.status, 429);
    tokio::time::advance(Duration::from_millis(1)).await;
    let allowed = get(addr, "/", &[]).await;
    assert_eq!(allowed.status, 200);
    // The policy is the rate (5 per second), and `r` counts in its terms: the
    // spent burst of 1 leaves 4 of the 5.
    assert_eq!(allowed.header("ratelimit-policy"), r#""default";q=5;w=1"#);
    assert_eq!(allowed.header("ratelimit"), r#""default";r=4;t=1"#);
}

#[tokio::test(start_paused = true)]
async fn legacy_trios_and_503_with_problem_details() {
    let quota = Quota::per_minute(2).unwrap();
    let layer = HttpRateLimitLayer::global(MemoryStore::new(quota))
        .header_style(HeaderStyle {
            ietf: true,
            x_ratelimit: true,
            draft06: true,
        })
        .status(http::StatusCode::SERVICE_UNAVAILABLE)
        .problem_details(true);
    let addr = serve(layer.layer(ok_service())).await;

    let first = get(addr, "/", &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("ratelimit-policy"), r#""default";q=2;w=60"#);
    assert_eq!(first.header("ratelimit"), r#""default";r=1;t=30"#);
    assert_eq!(first.header("x-ratelimit-limit"), "2");
    assert_eq!(first.header("x-ratelimit-remaining"), "1");
    assert_eq!(first.header("x-ratelimit-reset"), "30");
    assert_eq!(first.header("ratelimit-limit"), "2");
    assert_eq!(first.header("ratelimit-remaining"), "1");
    assert_eq!(first.header("ratelimit-reset"), "30");
    assert_eq!(get(addr, "/", &[]).await.status, 200);

    tokio::time::advance(Duration::from_millis(100)).await;
    let denied = get(addr, "/", &[]).await;
    assert_eq!(denied.status, 503);
    // 29.9 s until the next unit, rounded up.
    assert_eq!(denied.header("retry-after"), "30");
    assert_eq!(denied.header("x-ratelimit-remaining"), "0");
    assert_eq!(denied.header("x-ratelimit-reset"), "60");
    assert_eq!(denied.header("content-type"), "application/problem+json");
    assert_eq!(
        denied.body,
        r#"{"type":"https://iana.org/assignments/http-problem-types#temporary-reduced-capacity","title":"Request cannot be satisfied due to temporary reduced capacity","status":503,"detail":"retry after 30 seconds"}"#
    );
}

#[tokio::test(start_paused = true)]
async fn missing_key_gets_the_configured_answer_never_a_500() {
    let api_key = HeaderKey::new(http::HeaderName::from_static("x-api-key"));
    let quota = Quota::per_second(1).unwrap();

    let reject = HttpRateLimitLayer::keyed(quota, api_key.clone())
        .on_missing_key(OnMissingKey::Reject(http::StatusCode::UNAUTHORIZED));
    let addr = serve(reject.layer(ok_service())).await;
    assert_eq!(get(addr, "/", &[]).await.status, 401);
    assert_eq!(get(addr, "/", &[("x-api-key", "a")]).await.status, 200);
    assert_eq!(get(addr, "/", &[("x-api-key", "b")]).await.status, 200);
    assert_eq!(get(addr, "/", &[("x-api-key", "a")]).await.status, 429);

    // Anonymous requests share one fallback quota, apart from every real key.
    let fallback = HttpRateLimitLayer::new(KeyedMemoryStore::new(quota), api_key)
        .on_missing_key(OnMissingKey::Fallback("anonymous".to_string()));
    let addr = serve(fallback.layer(ok_service())).await;
    assert_eq!(get(addr, "/", &[]).await.status, 200);
    assert_eq!(get(addr, "/", &[]).await.status, 429);
    assert_eq!(get(addr, "/", &[("x-api-key", "k")]).await.status, 200);

    // A peer address that was never recorded (the app is not served with connect
    // info) is the server's setup, not the client's request: 500, with the reason as
    // the body, whatever `on_missing_key` says, so the mistake shows at once.
    let inner = empty_ok();
    let no_peer = HttpRateLimitLayer::keyed(quota, ClientIp::peer()).layer(inner);
    let response = tower::ServiceExt::oneshot(no_peer, http::Request::new(()))
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(
        body,
        "rate-limit key has no source on this server: peer address (serve with connect info, or insert PeerAddr)"
    );

    // A client's own missing key is a problem body when problem details are on.
    let problem = HttpRateLimitLayer::keyed(
        quota,
        HeaderKey::new(http::HeaderName::from_static("x-api-key")),
    )
    .problem_details(true)
    .layer(ok_service());
    let addr = serve(problem).await;
    let missing = get(addr, "/", &[]).await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.header("content-type"), "application/problem+json");
    assert_eq!(
        missing.body,
        r#"{"type":"about:blank","title":"Bad Request","status":400,"detail":"rate-limit key missing: key header"}"#
    );

    // A fallback key is for clients without a key, not for a server that records no
    // peer address: that stays a 500, and over gRPC an INTERNAL, never a throttle.
    for grpc in [false, true] {
        let mut layer = HttpRateLimitLayer::keyed(quota, ClientIp::peer())
            .on_missing_key(OnMissingKey::Fallback("0.0.0.0".parse().unwrap()));
        if grpc {
            layer = layer.grpc();
        }
        let inner = empty_ok();
        let no_peer = layer.layer(inner);
        for _ in 0..2 {
            let response = tower::ServiceExt::oneshot(no_peer.clone(), http::Request::new(()))
                .await
                .unwrap();
            if grpc {
                assert_eq!(response.status(), 200);
                assert_eq!(response.headers()["grpc-status"], "13");
            } else {
                assert_eq!(response.status(), 500);
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn stacked_global_and_route_limits_both_report() {
    let per_key = HttpRateLimitLayer::keyed(Quota::per_second(1).unwrap(), ClientIp::peer())
        .policy_name(PolicyName::new("per-ip").unwrap());
    let global = HttpRateLimitLayer::global(MemoryStore::new(Quota::per_second(10).unwrap()))
        .policy_name(PolicyName::new("global").unwrap());
    let addr = serve(global.layer(per_key.layer(ok_service()))).await;

    let allowed = get(addr, "/", &[]).await;
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.all("ratelimit"),
        [r#""per-ip";r=0;t=1"#, r#""global";r=9;t=1"#]
    );
    let denied = get(addr, "/", &[]).await;
    assert_eq!(denied.status, 429);
    assert_eq!(denied.header("retry-after"), "1");
    assert_eq!(
        denied.all("ratelimit"),
        [r#""per-ip";r=0;t=1"#, r#""global";r=8;t=1"#]
    );
    assert_eq!(
        denied.all("ratelimit-policy"),
        [r#""per-ip";q=1;w=1"#, r#""global";q=10;w=1"#]
    );
}

#[test]
fn the_service_error_type_is_kept() {
    fn error_of<S: tower::Service<http::Request<()>, Error = E>, E>(
        _: &S,
    ) -> std::marker::PhantomData<E> {
        std::marker::PhantomData
    }
    let inner = tower::service_fn(|_: http::Request<()>| async {
        Ok::<_, std::io::Error>(http::Response::new(
            http_body_util::Empty::<bytes::Bytes>::new(),
        ))
    });
    let service =
        HttpRateLimitLayer::global(MemoryStore::new(Quota::per_second(1).unwrap())).layer(inner);
    let _: std::marker::PhantomData<std::io::Error> = error_of(&service);
}

#[tokio::test(start_paused = true)]
async fn a_grpc_key_error_is_never_read_as_a_throttle() {
    // Whatever status a missing key is answered with, a gRPC client must not see
    // RESOURCE_EXHAUSTED (8), which it would back off and retry as a throttle.
    for (status, code) in [(422, "3"), (404, "3"), (401, "16"), (403, "7")] {
        let layer = HttpRateLimitLayer::keyed(
            Quota::per_second(1).unwrap(),
            HeaderKey::new(http::HeaderName::from_static("x-api-key")),
        )
        .on_missing_key(OnMissingKey::Reject(
            http::StatusCode::from_u16(status).unwrap(),
        ))
        .grpc();
        let inner = empty_ok();
        let response = tower::ServiceExt::oneshot(layer.layer(inner), http::Request::new(()))
            .await
            .unwrap();
        assert_eq!(response.headers()["grpc-status"], code, "{status}");
    }
}
