//! Two stacked layers with the legacy trios: each trio can state one policy, and it
//! must be the one closest to exhaustion, the one that refuses the client next. With
//! the innermost layer's numbers kept whatever they said, a client reading
//! `X-RateLimit-Remaining: 99` was refused by the outer layer on its next request.
//! Paused clock.

use std::convert::Infallible;
use tower::{service_fn, Layer, ServiceExt};
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::Quota;
use tower_ratelimit_http::server::headers::{HeaderStyle, PolicyName};
use tower_ratelimit_http::server::HttpRateLimitLayer;

const TRIOS: HeaderStyle = HeaderStyle {
    ietf: true,
    x_ratelimit: true,
    draft06: true,
};

fn layer(
    quota: Quota,
    name: &str,
) -> HttpRateLimitLayer<MemoryStore, tower_ratelimit_http::server::key::GlobalKey> {
    HttpRateLimitLayer::global(MemoryStore::new(quota))
        .policy_name(PolicyName::new(name).unwrap())
        .header_style(TRIOS)
}

/// A "global" layer of `outer` around a "route" layer of `inner`, around a service
/// that answers 200.
fn stacked(
    outer: Quota,
    inner: Quota,
) -> impl tower::Service<
    http::Request<()>,
    Response = http::Response<impl Sized>,
    Error = impl std::fmt::Debug,
> + Clone {
    let ok = service_fn(|_: http::Request<()>| async {
        Ok::<_, Infallible>(http::Response::new(String::new()))
    });
    layer(outer, "global").layer(layer(inner, "route").layer(ok))
}

fn trio(response: &http::Response<impl Sized>, prefix: &str) -> [u64; 3] {
    ["limit", "remaining", "reset"].map(|field| {
        let name = format!("{prefix}{field}");
        response.headers()[name.as_str()]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    })
}

#[tokio::test(start_paused = true)]
async fn the_trios_state_the_policy_closest_to_exhaustion() {
    // 3 a minute outside (a global limit), 100 a second inside (a route's).
    let service = stacked(
        Quota::per_minute(3).unwrap(),
        Quota::per_second(100).unwrap(),
    );

    for sent in 1..=3u64 {
        let response = service
            .clone()
            .oneshot(http::Request::new(()))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        for prefix in ["x-ratelimit-", "ratelimit-"] {
            // The global quota has fewer left than the route's 99, and is full again
            // 20 s after each request it took.
            assert_eq!(
                trio(&response, prefix),
                [3, 3 - sent, 20 * sent],
                "{prefix} after {sent}"
            );
        }
    }
    let refused = service
        .clone()
        .oneshot(http::Request::new(()))
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(trio(&refused, "x-ratelimit-"), [3, 0, 60]);
}

#[tokio::test(start_paused = true)]
async fn an_inner_refusal_keeps_its_own_trio() {
    // The route refuses; the global layer it passed through on the way out has units
    // left, which would not tell the client that it must wait.
    let service = stacked(
        Quota::per_second(100).unwrap(),
        Quota::per_minute(1).unwrap(),
    );

    assert_eq!(
        service
            .clone()
            .oneshot(http::Request::new(()))
            .await
            .unwrap()
            .status(),
        200
    );
    let refused = service
        .clone()
        .oneshot(http::Request::new(()))
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "60");
    assert_eq!(trio(&refused, "x-ratelimit-"), [1, 0, 60]);
    assert_eq!(trio(&refused, "ratelimit-"), [1, 0, 60]);
}
