//! A controller rate too slow for any `Quota` (an interval over `Quota::MAX_SPAN`,
//! under about 2.2e-10/s) is the slowest quota, not the layer's "unlimited" 1e9/s.
use std::time::Duration;
use tower::{service_fn, Service, ServiceExt};
use tower_ratelimit_adaptive::controller::{Aimd, AimdConfig};
use tower_ratelimit_adaptive::{AdaptiveRateLimitLayer, Outcome};
use tower_ratelimit_core::Quota;

fn classify(_: &Result<u32, std::convert::Infallible>) -> Outcome {
    Outcome::throttled(Duration::ZERO)
}

#[tokio::test(start_paused = true)]
async fn a_near_zero_rate_never_becomes_unlimited() {
    // A valid configuration by `Aimd::new`'s own rules: a positive, finite floor.
    let layer = AdaptiveRateLimitLayer::new(classify).controller(|| {
        Aimd::new(AimdConfig {
            initial_rate: 1e-12,
            min_rate: 1e-12,
            ..AimdConfig::default()
        })
    });
    let mut svc = tower::ServiceBuilder::new()
        .layer(layer.clone())
        .service(service_fn(|n: u32| async move {
            Ok::<_, std::convert::Infallible>(n)
        }));
    // The first request creates the partition.
    svc.ready().await.unwrap().call(0).await.unwrap();
    let limiter = layer.limiter(&()).expect("the partition exists");
    let q = limiter.quota();
    assert_eq!(layer.rate(&()), Some(1e-12));
    assert!(
        q.emission_interval() >= Quota::MAX_SPAN / 2,
        "controller says 1e-12/s, the limiter enforces {:.3e}/s (burst {})",
        q.per_second_f64(),
        q.burst()
    );
}
