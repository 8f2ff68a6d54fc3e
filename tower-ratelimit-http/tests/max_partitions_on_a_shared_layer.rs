//! `PartitionedFeedbackLayer::max_partitions` bounds the shared table, also on a
//! layer that was cloned first, or whose `partitions()` handle was kept (it was
//! silently ignored there, and the table grew to the default 1024).

use tower::{Layer, ServiceExt};
use tower_ratelimit_core::{BoxError, Quota, RateLimiter};
use tower_ratelimit_http::feedback::PartitionedFeedbackLayer;

#[tokio::test(start_paused = true)]
async fn max_partitions_holds_on_a_layer_whose_partitions_are_shared() {
    let layer = PartitionedFeedbackLayer::new(
        Quota::per_second(10).unwrap(),
        RateLimiter::new(Quota::per_second(100).unwrap()),
    );
    let partitions = layer.partitions().clone(); // kept to inspect the table later
    let layer = layer.max_partitions(2);
    let client = layer.layer(tower::service_fn(|_req: http::Request<()>| async {
        Ok::<_, BoxError>(http::Response::new(()))
    }));
    for i in 0..10 {
        let req = http::Request::get(format!("http://h{i}.test/"))
            .body(())
            .unwrap();
        client.clone().oneshot(req).await.unwrap();
    }
    assert!(
        partitions.len() <= 2,
        "max_partitions(2) was ignored: {} partitions held",
        partitions.len()
    );
}
