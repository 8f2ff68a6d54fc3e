//! Paused partitions are held over the table's bound, but only up to twice it: a
//! crawl whose hosts each answer 429 with a long Retry-After no longer grows the
//! table without end (nor makes every new host scan it). Paused clock.

use tower::{Layer, Service, ServiceExt};
use tower_ratelimit_core::{BoxError, Quota, RateLimiter};
use tower_ratelimit_http::feedback::PartitionedFeedbackLayer;

type Req = http::Request<()>;

fn get(uri: &str) -> Req {
    http::Request::get(uri).body(()).unwrap()
}

/// Each host answers 429 with `Retry-After: 300`. `max_partitions(64)`: the table
/// should stay near 64 entries (or some documented multiple), not one per host met in
/// the last five minutes.
#[tokio::test(start_paused = true)]
async fn a_flood_of_refusing_hosts_keeps_the_table_bounded() {
    let hosts: usize = std::env::var("RW11_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let api = tower::service_fn(|_req: Req| async {
        Ok::<_, BoxError>(
            http::Response::builder()
                .status(429)
                .header("retry-after", "300")
                .body(())
                .unwrap(),
        )
    });
    let layer = PartitionedFeedbackLayer::new(
        Quota::per_second(10).unwrap(),
        RateLimiter::new(Quota::per_second(1_000_000).unwrap()),
    )
    .max_partitions(64);
    let mut client = layer.clone().layer(api);
    let started = std::time::Instant::now();
    for i in 0..hosts {
        let ready = client.ready().await.unwrap();
        let answer = ready
            .call(get(&format!("http://host{i}.test/")))
            .await
            .unwrap();
        assert_eq!(answer.status(), 429);
    }
    let held = layer.partitions().len();
    eprintln!(
        "{hosts} refusing hosts: {held} partitions held (max_partitions 64); {:?} wall",
        started.elapsed()
    );
    assert!(
        held <= 4 * 64,
        "{held} partitions held for max_partitions(64) after {hosts} hosts that each paused"
    );
}
