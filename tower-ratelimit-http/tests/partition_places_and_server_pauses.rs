//! `PartitionedFeedbackLayer`'s waiting places (`max_waiting`, unbounded by default)
//! and the server-wide limiter of a global refusal. Paused clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};
use tower_ratelimit_core::{BoxError, Quota, RateLimiter};
use tower_ratelimit_http::feedback::PartitionedFeedbackLayer;

type Req = http::Request<()>;

fn get(uri: &str) -> Req {
    http::Request::get(uri).body(()).unwrap()
}

fn layer() -> PartitionedFeedbackLayer {
    PartitionedFeedbackLayer::new(
        Quota::per_second(10).unwrap(),
        RateLimiter::new(Quota::per_second(1000).unwrap()),
    )
}

/// A caller that makes its requests first and awaits them after (`ready().call()` in
/// a loop, then `join_all`): with no bound on waiting requests (the default) every
/// `ready()` comes. (A bound of 1,024 by default hung this at the 1,025th request:
/// each response future held its place until first polled.)
#[tokio::test(start_paused = true)]
async fn a_batch_over_the_default_bound_completes() {
    let api = tower::service_fn(|_req: Req| async { Ok::<_, BoxError>(http::Response::new(())) });
    let mut client = layer().layer(api);
    let made = tokio::time::timeout(Duration::from_secs(600), async {
        let mut pending = Vec::new();
        for i in 0..1_100 {
            let ready = client.ready().await.unwrap();
            pending.push(ready.call(get(&format!("http://host{}.test/", i % 50))));
        }
        pending
    })
    .await;
    assert!(made.is_ok(), "ready() hung");
}

/// A server's global refusal pauses its server-wide limiter, an entry of the bounded
/// table; a paused entry is never evicted (the table holds it over its bound), so the
/// next request's own partition does not drop the pause (it did: the request started
/// 0 s into the server's 60 s hold).
#[tokio::test(start_paused = true)]
async fn a_servers_global_pause_survives_a_small_table() {
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let log = Arc::clone(&starts);
    let api = tower::service_fn(move |_req: Req| {
        let first = {
            let mut log = log.lock().unwrap();
            log.push(Instant::now());
            log.len() == 1
        };
        async move {
            let mut b = http::Response::builder();
            if first {
                b = b
                    .status(429)
                    .header("retry-after", "60")
                    .header("x-ratelimit-global", "true")
                    .header("x-ratelimit-scope", "global");
            }
            Ok::<_, BoxError>(b.body(()).unwrap())
        }
    });
    let client = layer().max_partitions(1).layer(api);
    let t0 = Instant::now();
    let refused = client
        .clone()
        .oneshot(get("http://discord.test/"))
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    client
        .clone()
        .oneshot(get("http://discord.test/"))
        .await
        .unwrap();
    let second = starts.lock().unwrap()[1] - t0;
    assert!(
        second >= Duration::from_secs(60),
        "discord.test's second request started {second:?} into its 60 s global hold"
    );
}
