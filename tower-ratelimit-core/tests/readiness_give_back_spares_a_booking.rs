//! A weighted wait-mode request's readiness unit is given back in `call` only when no
//! other request booked a slot after it: the end of the debt is then that booking,
//! and giving back off it started a newcomer in its slot.
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};

#[tokio::test(start_paused = true)]
async fn a_readiness_give_back_does_not_cut_a_sleepers_booking() {
    let quota = Quota::per_second(2).unwrap().with_burst(3).unwrap();
    let limiter = RateLimiter::new(quota);
    let t0 = Instant::now();
    let starts: Arc<Mutex<Vec<(u128, u64)>>> = Arc::default();
    let s2 = Arc::clone(&starts);
    let svc = ServiceBuilder::new()
        .layer(RateLimitLayer::with_limiter(limiter.clone()).cost(|c: &u64| *c))
        .service(service_fn(move |c: u64| {
            s2.lock().unwrap().push((t0.elapsed().as_millis(), c));
            async { Ok::<_, std::convert::Infallible>(()) }
        }));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut a = svc.clone();
    a.ready().await.unwrap();
    let b = tokio::spawn(svc.clone().oneshot(3));
    tokio::task::yield_now().await;
    let a = a.call(2);
    a.await.unwrap();
    b.await.unwrap().unwrap();
    let mut starts = starts.lock().unwrap().clone();
    starts.sort();
    let t = quota.emission_interval().as_millis();
    for i in 0..starts.len() {
        let mut units = 0;
        for j in i..starts.len() {
            units += starts[j].1 as u128;
            let allowed = quota.burst() as u128 + (starts[j].0 - starts[i].0) / t;
            assert!(
                units <= allowed,
                "{units} units started in [{} ms, {} ms], the quota allows {allowed}: {starts:?}",
                starts[i].0,
                starts[j].0
            );
        }
    }
}
