//! a `SlidingLog` server's `t` is the time until the log's *oldest* entry
//! expires, not until the quota is all back, as `RateLimit`'s `t` (and
//! `Snapshot::reset`'s docs, "sliding log: until the whole limit could start at
//! once") promise: a client that waits `t` and then sends the whole `q` is refused.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tower::{Layer, ServiceExt};
use tower_ratelimit_core::algorithm::SlidingLog;
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::Quota;
use tower_ratelimit_http::server::key::GlobalKey;
use tower_ratelimit_http::server::HttpRateLimitLayer;

type Body = http_body_util::Empty<bytes::Bytes>;

#[tokio::test(start_paused = true)]
async fn t_is_when_the_quota_is_all_back() {
    let store = Arc::new(MemoryStore::with_algorithm(
        SlidingLog,
        Quota::per_minute(5).unwrap(),
    ));
    let svc = HttpRateLimitLayer::with_shared_store(Arc::clone(&store), GlobalKey).layer(
        tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, Infallible>(http::Response::new(Body::new()))
        }),
    );
    let send = || svc.clone().oneshot(http::Request::new(()));
    // One request every 10 s: at 0, 10, 20.
    let mut last = None;
    for i in 0..3 {
        if i > 0 {
            tokio::time::advance(Duration::from_secs(10)).await;
        }
        last = Some(send().await.unwrap());
    }
    let last = last.unwrap();
    assert_eq!(last.headers()["ratelimit-policy"], r#""default";q=5;w=60"#);
    let field = last.headers()["ratelimit"].to_str().unwrap().to_owned();
    // r=2 now; the bucket is whole again when the entry of 20 s expires, at 80 s: t=60.
    // The server says t=40 (when the entry of 0 s expires).
    let t: u64 = field.rsplit("t=").next().unwrap().parse().unwrap();
    tokio::time::advance(Duration::from_secs(t)).await;
    let mut passed = 0;
    for _ in 0..5 {
        if send().await.unwrap().status() == 200 {
            passed += 1;
        }
    }
    assert_eq!(
        passed, 5,
        "{field}: after t={t} s of silence only {passed} of q=5 passed"
    );
}

// With a cost of 2 beside requests of 1 (two layers, one store), a 429's `t` (the
// oldest entry's expiry) comes before its own `Retry-After`: "full again" before the
// request fits.
#[tokio::test(start_paused = true)]
async fn a_429s_t_is_not_before_its_retry_after() {
    let store = Arc::new(MemoryStore::with_algorithm(
        SlidingLog,
        Quota::per_minute(5).unwrap(),
    ));
    let ok = tower::service_fn(|_: http::Request<()>| async {
        Ok::<_, Infallible>(http::Response::new(Body::new()))
    });
    let one = HttpRateLimitLayer::with_shared_store(Arc::clone(&store), GlobalKey).layer(ok);
    let two = HttpRateLimitLayer::with_shared_store(Arc::clone(&store), GlobalKey)
        .cost(2)
        .layer(ok);
    for i in 0..5 {
        if i > 0 {
            tokio::time::advance(Duration::from_secs(10)).await;
        }
        assert_eq!(
            one.clone()
                .oneshot(http::Request::new(()))
                .await
                .unwrap()
                .status(),
            200
        );
    }
    tokio::time::advance(Duration::from_secs(1)).await;
    let denied = two.clone().oneshot(http::Request::new(())).await.unwrap();
    assert_eq!(denied.status(), 429);
    let retry_after: u64 = denied.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let field = denied.headers()["ratelimit"].to_str().unwrap().to_owned();
    let t: u64 = field.rsplit("t=").next().unwrap().parse().unwrap();
    assert!(
        t >= retry_after,
        "429 with Retry-After {retry_after} and {field}: full again before the request fits"
    );
}
