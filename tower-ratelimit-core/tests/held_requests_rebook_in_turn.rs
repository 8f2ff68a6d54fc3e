//! Two weighted wait-mode requests held through one pause are booked again in turn
//! when it ends, and the second gives nothing back off the first's fresh booking
//! (given back, the two started within less than their cost's time).
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};

#[tokio::test(start_paused = true)]
async fn two_held_weighted_requests_do_not_overlap_after_a_pause() {
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
    let a = tokio::spawn(async move {
        a.ready().await?;
        tokio::time::sleep(Duration::from_millis(1)).await;
        a.call(2).await
    });
    tokio::task::yield_now().await;
    let b = tokio::spawn(svc.clone().oneshot(3));
    tokio::task::yield_now().await;
    limiter.pause_for(Duration::from_secs(1));
    a.await.unwrap().unwrap();
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
