//! With `PartitionedFeedbackLayer`'s default `ByHost` partitions, one host's "the
//! limit is global" (Discord's `X-RateLimit-Global: true`) pauses that host, not the
//! others: a server's global limit covers its own routes, not other APIs (as the
//! reqwest `per_host` middleware reads it). Before, a discord.test 429 held a
//! github.test request 60 s and emptied every host's bucket.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use tower_ratelimit_core::{BoxError, Quota, RateLimiter};
use tower_ratelimit_http::feedback::PartitionedFeedbackLayer;

type Req = http::Request<()>;

#[tokio::test(start_paused = true)]
async fn one_hosts_global_limit_does_not_pause_another_host() {
    let starts: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let log = Arc::clone(&starts);
    let api = tower::service_fn(move |req: Req| {
        let host = req.uri().host().unwrap_or("").to_owned();
        log.lock().unwrap().push((host.clone(), Instant::now()));
        async move {
            let mut b = http::Response::builder();
            if host == "discord.test" {
                b = b
                    .status(429)
                    .header("retry-after", "60")
                    .header("x-ratelimit-global", "true")
                    .header("x-ratelimit-scope", "global");
            }
            Ok::<_, BoxError>(b.body(()).unwrap())
        }
    });
    let layer = PartitionedFeedbackLayer::new(
        Quota::per_second(10).unwrap(),
        RateLimiter::new(Quota::per_second(1000).unwrap()),
    );
    let client = layer.layer(api);
    let t0 = Instant::now();
    let get = |uri: &str| http::Request::get(uri).body(()).unwrap();
    let refused = client
        .clone()
        .oneshot(get("http://discord.test/"))
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    client
        .clone()
        .oneshot(get("http://github.test/"))
        .await
        .unwrap();
    let github = starts
        .lock()
        .unwrap()
        .iter()
        .find(|(h, _)| h == "github.test")
        .map(|(_, at)| *at - t0)
        .unwrap();
    assert!(
        github < Duration::from_secs(1),
        "github.test's request was held {github:?} by discord.test's global 429"
    );
}
