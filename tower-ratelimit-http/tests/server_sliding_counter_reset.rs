//! A sliding counter's `t` is when it is full again, not when the clock window ends:
//! the units counted in the current window keep weighing through the next one.

use std::time::Duration;
use tower::{Layer, ServiceExt};
use tower_ratelimit_core::algorithm::SlidingCounter;
use tower_ratelimit_core::keyed::KeyedMemoryStore;
use tower_ratelimit_core::Quota;
use tower_ratelimit_http::server::key::{ClientIp, PeerAddr};
use tower_ratelimit_http::server::HttpRateLimitLayer;

fn request() -> http::Request<()> {
    let mut request = http::Request::new(());
    request
        .extensions_mut()
        .insert(PeerAddr("192.0.2.1:1000".parse().expect("address")));
    request
}

fn t_of(field: &http::HeaderValue) -> u64 {
    field
        .to_str()
        .expect("ascii")
        .split(';')
        .find_map(|param| param.strip_prefix("t="))
        .expect("a t parameter")
        .parse()
        .expect("seconds")
}

#[tokio::test(start_paused = true)]
async fn t_is_when_a_sliding_counter_admits_its_whole_count_again() {
    let store = KeyedMemoryStore::with_algorithm(SlidingCounter, Quota::per_minute(10).unwrap());
    let service = HttpRateLimitLayer::new(store, ClientIp::peer()).layer(tower::service_fn(
        |_: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<
                bytes::Bytes,
            >::new()))
        },
    ));
    // Into a window, so that its end and the counter's full instant differ.
    tokio::time::sleep(Duration::from_secs(30)).await;
    for _ in 0..10 {
        let allowed = service.clone().oneshot(request()).await.unwrap();
        assert_eq!(allowed.status(), 200);
    }
    let denied = service.clone().oneshot(request()).await.unwrap();
    assert_eq!(denied.status(), 429);
    let retry_after: u64 = denied.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let t = t_of(&denied.headers()["ratelimit"]);
    assert!(t >= retry_after, "t={t} before Retry-After={retry_after}");
    tokio::time::sleep(Duration::from_secs(t)).await;
    for n in 0..10 {
        let after_t = service.clone().oneshot(request()).await.unwrap();
        assert_eq!(after_t.status(), 200, "request {n} after t={t}");
    }
}
