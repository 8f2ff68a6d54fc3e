//! A partition made through the public `Partitions::limiter` (to read or pre-create
//! it) takes the origin of the first request that uses it, so its server's global
//! refusal empties it as it does a partition the layer made (it had none, and at the
//! pause's end it spent the burst it saved into the server that had just refused).
//! Paused clock.
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use tower_ratelimit_core::{BoxError, Quota, RateLimiter};
use tower_ratelimit_http::feedback::PartitionedFeedbackLayer;

type Req = http::Request<()>;

/// Starts within the first 50 ms after a 5 s global hold, of 10 requests sent during it.
async fn burst_after_global_hold(precreate: bool) -> usize {
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
                    .header("retry-after", "5")
                    .header("x-ratelimit-global", "true");
            }
            Ok::<_, BoxError>(b.body(()).unwrap())
        }
    });
    let layer = PartitionedFeedbackLayer::new(
        Quota::per_second(10).unwrap(),
        RateLimiter::new(Quota::per_second(1000).unwrap()),
    );
    if precreate {
        let _ = layer.partitions().limiter(b"api.test");
    }
    let client = layer.layer(api);
    let get = || http::Request::get("http://api.test/").body(()).unwrap();
    let refused = client.clone().oneshot(get()).await.unwrap();
    assert_eq!(refused.status(), 429);
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..10)
        .map(|_| tokio::spawn(client.clone().oneshot(get())))
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let starts = starts.lock().unwrap();
    starts[1..]
        .iter()
        .filter(|&&at| at - t0 < Duration::from_millis(5050))
        .count()
}

#[tokio::test(start_paused = true)]
async fn a_precreated_partition_is_emptied_by_its_servers_global_refusal() {
    let plain = burst_after_global_hold(false).await;
    let precreated = burst_after_global_hold(true).await;
    assert_eq!(
        precreated, plain,
        "after the hold: {plain} at once when the layer made the partition, {precreated} when it was made through Partitions::limiter"
    );
}
