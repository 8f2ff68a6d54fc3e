//! `PartitionedFeedbackLayer` over a client that is always ready (hyper's, reqwest's)
//! holds back a caller that drives it with `call_all`: the partition is known only in
//! `call`, so `max_waiting` bounds the requests waiting for their partitions. Without
//! it (the default), after one second of a 10/s partition all 100,000 requests of the
//! input have been pulled in and wait in memory.

use futures_util::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower::{Layer, ServiceExt};
use tower_ratelimit_core::{BoxError, Quota, RateLimiter};
use tower_ratelimit_http::feedback::PartitionedFeedbackLayer;

/// Drives 100,000 requests to one host at 10/s for a second: (pulled, answered).
async fn one_second_of(layer: PartitionedFeedbackLayer) -> (usize, usize) {
    let api = tower::service_fn(|_req: http::Request<()>| async {
        Ok::<_, BoxError>(http::Response::new(()))
    });
    let client = layer.layer(api);
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let requests = futures_util::stream::iter(0..100_000).map(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
        http::Request::get("http://api.test/items")
            .body(())
            .unwrap()
    });
    let mut answers = client.call_all(requests).unordered();
    let mut answered = 0;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while answers.next().await.is_some() {
            answered += 1;
        }
    })
    .await;
    (pulled.load(Ordering::Relaxed), answered)
}

fn ten_per_second() -> PartitionedFeedbackLayer {
    PartitionedFeedbackLayer::new(
        Quota::per_second(10).unwrap(),
        RateLimiter::new(Quota::per_second(1000).unwrap()),
    )
}

#[tokio::test(start_paused = true)]
async fn call_all_pulls_only_what_may_wait() {
    for bound in [1_024, 5] {
        let (pulled, answered) = one_second_of(ten_per_second().max_waiting(bound)).await;
        // The waiting places, the burst of 10 and the second's 10 that started, and
        // the one `call_all` holds while the service is not ready.
        assert!(
            pulled <= bound + answered + 1,
            "{pulled} pulled, {answered} answered"
        );
        assert_eq!(answered, 20, "the bound costs no throughput");
    }
    // Unbounded (the default), the whole input is pulled in at once.
    let (pulled, answered) = one_second_of(ten_per_second()).await;
    assert_eq!((pulled, answered), (100_000, 20));
}
