//! The legacy `X-RateLimit-*` and draft-06 trios, read by this crate's own client: they
//! must state the same per-second quota and remaining as the IETF fields. Unscaled, a
//! 100/s quota with a burst of 1 said `remaining: 0, reset: 1` after every request, and
//! a client that honours them slowed to one request a second. Paused clock.

use std::convert::Infallible;
use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, Layer, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};
use tower_ratelimit_http::server::headers::HeaderStyle;
use tower_ratelimit_http::server::HttpRateLimitLayer;
use tower_ratelimit_http::FeedbackLayer;

fn strictly_spaced() -> Quota {
    Quota::per_second(100).unwrap().with_burst(1).unwrap()
}

fn server(
    style: HeaderStyle,
) -> impl tower::Service<
    http::Request<()>,
    Response = http::Response<tower_ratelimit_http::server::ResponseBody<String>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    HttpRateLimitLayer::global(MemoryStore::new(strictly_spaced()))
        .header_style(style)
        .layer(service_fn(|_: http::Request<()>| async {
            Ok::<_, Infallible>(http::Response::new(String::new()))
        }))
}

/// 100 requests through the crate's client stack at the server's own quota.
async fn hundred_requests(style: HeaderStyle) -> (Duration, usize) {
    let limiter = RateLimiter::new(strictly_spaced());
    let client = ServiceBuilder::new()
        .layer(RateLimitLayer::with_limiter(limiter.clone()))
        .layer(FeedbackLayer::new(limiter.clone()))
        .service(server(style));
    let start = Instant::now();
    let mut refused = 0;
    for _ in 0..100 {
        let response = client
            .clone()
            .oneshot(http::Request::new(()))
            .await
            .unwrap();
        if response.status() != http::StatusCode::OK {
            refused += 1;
        }
    }
    (start.elapsed(), refused)
}

#[tokio::test(start_paused = true)]
async fn a_client_reading_the_trios_keeps_the_servers_rate() {
    for style in [
        HeaderStyle::default(),
        HeaderStyle {
            ietf: true,
            x_ratelimit: true,
            draft06: false,
        },
        HeaderStyle {
            ietf: false,
            x_ratelimit: false,
            draft06: true,
        },
    ] {
        let (elapsed, refused) = hundred_requests(style).await;
        assert_eq!(refused, 0, "{style:?}");
        // 99 intervals of 10 ms; 99 s when every response paused the client for 1 s.
        assert!(
            elapsed <= Duration::from_millis(990),
            "{style:?}: {elapsed:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_trios_agree_with_the_ietf_fields() {
    let style = HeaderStyle {
        ietf: true,
        x_ratelimit: true,
        draft06: true,
    };
    let response = server(style).oneshot(http::Request::new(())).await.unwrap();
    let headers = response.headers();
    assert_eq!(headers["ratelimit-policy"], r#""default";q=100;w=1"#);
    assert_eq!(headers["ratelimit"], r#""default";r=99;t=1"#);
    for (name, value) in [
        ("x-ratelimit-limit", "100"),
        ("x-ratelimit-remaining", "99"),
        ("x-ratelimit-reset", "1"),
        ("ratelimit-limit", "100"),
        ("ratelimit-remaining", "99"),
        ("ratelimit-reset", "1"),
    ] {
        assert_eq!(headers[name], value, "{name}");
    }
}
