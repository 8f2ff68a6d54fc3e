//! Requests of cost 1 in a layer with a cost function, made ready before a pause and
//! held through it, keep the rate when they are booked again at its end.
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{sleep_until, Instant};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};

#[tokio::test(start_paused = true)]
async fn held_unit_requests_keep_the_spacing() {
    let quota = Quota::per_second(2).unwrap().with_burst(1).unwrap();
    let limiter = RateLimiter::new(quota);
    let t0 = Instant::now();
    let starts: Arc<Mutex<Vec<u128>>> = Arc::default();
    let s2 = Arc::clone(&starts);
    let svc = ServiceBuilder::new()
        .layer(RateLimitLayer::with_limiter(limiter.clone()).cost(|_: &()| 1u64))
        .service(service_fn(move |_: ()| {
            s2.lock().unwrap().push(t0.elapsed().as_millis());
            async { Ok::<_, std::convert::Infallible>(()) }
        }));
    tokio::time::sleep(Duration::from_secs(1)).await;
    svc.clone().oneshot(()).await.unwrap();
    let call_at = t0 + Duration::from_millis(2_050);
    let held = |mut s: tower::util::BoxCloneService<(), (), tower_ratelimit_core::BoxError>| {
        tokio::spawn(async move {
            s.ready().await?;
            sleep_until(call_at).await;
            s.call(()).await
        })
    };
    let a = held(tower::util::BoxCloneService::new(svc.clone()));
    tokio::task::yield_now().await;
    let b = held(tower::util::BoxCloneService::new(svc.clone()));
    tokio::time::sleep_until(t0 + Duration::from_secs(2)).await;
    tokio::task::yield_now().await;
    limiter.pause_for(Duration::from_millis(200));
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    let mut starts = starts.lock().unwrap().clone();
    starts.sort();
    for pair in starts.windows(2) {
        assert!(
            pair[1] - pair[0] >= 500,
            "two starts {} ms apart under one per 500 ms, burst 1: {starts:?}",
            pair[1] - pair[0]
        );
    }
}
