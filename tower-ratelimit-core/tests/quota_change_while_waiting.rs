//! A quota change reaches requests already sleeping until their booked slots (keyed
//! wait mode, and the rest of a weighted request's cost in the rate layer): with GCRA
//! the slots move as the bucket's debt moves, so the sleepers keep their order and
//! start at the new spacing.

use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::{
    KeyedRateLimitLayer, KeyedRateLimiter, Quota, RateLimitLayer, RateLimiter,
};

fn per_second_strict(n: u64) -> Quota {
    Quota::per_second(n).unwrap().with_burst(1).unwrap()
}

/// Five requests of one key wait under `from`; the quota becomes `to` at
/// `change_at`, and one more request comes then. The starts (ms) of the five and of
/// the late one.
async fn change_while_waiting(from: Quota, to: Quota, change_at: u64) -> (Vec<u128>, u128) {
    let limiter: KeyedRateLimiter<u32> = KeyedRateLimiter::new(from);
    let start = Instant::now();
    let service = ServiceBuilder::new()
        .layer(KeyedRateLimitLayer::with_limiter(
            limiter.clone(),
            |r: &u32| *r,
        ))
        .service(service_fn(move |_: u32| async move {
            Ok::<_, std::convert::Infallible>(start.elapsed().as_millis())
        }));
    let mut waiting = Vec::new();
    for _ in 0..5 {
        waiting.push(tokio::spawn(service.clone().oneshot(1)));
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(change_at)).await;
    limiter.set_quota(to);
    let late = tokio::spawn(service.clone().oneshot(1));
    let mut starts = Vec::new();
    for request in waiting {
        starts.push(request.await.unwrap().unwrap());
    }
    (starts, late.await.unwrap().unwrap())
}

#[tokio::test(start_paused = true)]
async fn a_raise_moves_the_sleepers_ahead_of_later_requests() {
    // Booked at 0, 1, 2, 3, 4 s; at 0.5 s the 4.5 s owed become 0.45 s.
    let (starts, late) =
        change_while_waiting(per_second_strict(1), per_second_strict(10), 500).await;
    assert_eq!(starts, [0, 550, 650, 750, 850]);
    assert_eq!(late, 950);
}

#[tokio::test(start_paused = true)]
async fn a_cut_spaces_the_sleepers_at_the_new_rate() {
    // Booked at 0, 100, 200, 300, 400 ms; at 150 ms the 350 ms owed become 3.5 s.
    let (starts, late) =
        change_while_waiting(per_second_strict(10), per_second_strict(1), 150).await;
    assert_eq!(starts, [0, 100, 650, 1_650, 2_650]);
    assert_eq!(late, 3_650);
}

#[tokio::test(start_paused = true)]
async fn acquire_follows_a_change_too() {
    let limiter: KeyedRateLimiter<u32> = KeyedRateLimiter::new(per_second_strict(1));
    let start = Instant::now();
    limiter.acquire(&7, 1, Duration::MAX).await.unwrap();
    let second = {
        let limiter = limiter.clone();
        tokio::spawn(async move {
            limiter.acquire(&7, 1, Duration::MAX).await.unwrap();
            start.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    limiter.set_quota(per_second_strict(4));
    // 800 ms left at 1/s are 200 ms at 4/s.
    assert_eq!(second.await.unwrap(), Duration::from_millis(400));
}

#[tokio::test(start_paused = true)]
async fn a_weighted_request_booked_ahead_moves_with_a_change() {
    let limiter = RateLimiter::new(Quota::per_second(1).unwrap().with_burst(3).unwrap());
    let start = Instant::now();
    let service = ServiceBuilder::new()
        .layer(RateLimitLayer::with_limiter(limiter.clone()).cost(|cost: &u64| *cost))
        .service(service_fn(move |_: u64| async move {
            Ok::<_, std::convert::Infallible>(start.elapsed().as_millis())
        }));
    assert_eq!(service.clone().oneshot(3).await.unwrap(), 0);
    // Ready at 1 s, its whole cost of 3 then falls due at 3 s.
    let heavy = tokio::spawn(service.clone().oneshot(3));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    limiter.set_quota(Quota::per_second(10).unwrap().with_burst(3).unwrap());
    let mut late = service.clone();
    let late = tokio::spawn(async move { late.ready().await.unwrap().call(1).await });
    // The 4.5 s owed at 1.5 s become 0.45 s: the heavy one starts at 1.65 s, the late
    // one after it.
    assert_eq!(heavy.await.unwrap().unwrap(), 1_650);
    assert_eq!(late.await.unwrap().unwrap(), 1_750);
}
