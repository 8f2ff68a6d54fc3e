//! A controller that reports a concurrency cap (`Gradient2`) has it applied without
//! `manage_concurrency(true)`: it sets no rate, so the layer limited nothing (all
//! 500 requests in flight at once).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_ratelimit_adaptive::controller::Gradient2;
use tower_ratelimit_adaptive::layer::classify;
use tower_ratelimit_adaptive::AdaptiveRateLimitLayer;

#[tokio::test(start_paused = true)]
async fn a_gradient2_layer_caps_requests_in_flight() {
    let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let inner = {
        let (now, peak) = (now.clone(), peak.clone());
        service_fn(move |_: u32| {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(n, Ordering::SeqCst);
            let now = now.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>(())
            }
        })
    };
    let layer = AdaptiveRateLimitLayer::new(classify::by_result).controller(Gradient2::default);
    let svc = ServiceBuilder::new().layer(layer).service(inner);
    let tasks: Vec<_> = (0..500)
        .map(|i| tokio::spawn(svc.clone().oneshot(i)))
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // Gradient2 starts at a cap of 20 and grows by under one per response at a steady
    // latency: all 500 at once means no cap was applied.
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        peak < 500,
        "{peak} requests in flight at once under a Gradient2 layer"
    );
}
