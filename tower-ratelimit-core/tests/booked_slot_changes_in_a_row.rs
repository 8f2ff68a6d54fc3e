//! Several quota changes between two polls of a sleeper: each moved the bucket from
//! its own instant, so the sleeper replays each one (a first version moved it once,
//! from the last change: 2 starts 0.33 s apart under 1/s with a burst of 1).

mod support;
use support::starts::recorder;

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::task::Poll;
use std::time::Duration;
use tokio::time::{sleep_until, Instant};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::{
    KeyedRateLimitLayer, KeyedRateLimiter, Quota, RateLimitLayer, RateLimiter,
};

fn strict(n: u64) -> Quota {
    Quota::per_second(n).unwrap().with_burst(1).unwrap()
}

fn slow() -> Quota {
    // 1 per 10 s, burst 1
    Quota::new(1, Duration::from_secs(10)).unwrap()
}

fn b3(period_s: u64) -> Quota {
    Quota::new(1, Duration::from_secs(period_s))
        .unwrap()
        .with_burst(3)
        .unwrap()
}

/// Rate layer, weighted, GCRA 1 per s burst 3: a cost-3 request drains the bucket at
/// 0; a second cost-3 request is made ready at 1 s and called (its cost booked whole,
/// slot at 3 s). The quota is cut 10x at 1.5 s (the bucket's TAT 6 s -> 46.5 s, the
/// slot -> 16.5 s) and restored at 3.2 s, after the slot's old instant (TAT -> 7.53 s,
/// the slot -> 4.53 s). `poll_between`: whether the response future is polled
/// between the two changes (a spawned task is; a future stored and awaited later is
/// not). Returns (start of the second heavy request, start of a fresh unit request
/// made at 3.2 s).
async fn two_changes(poll_between: bool) -> (Duration, Duration) {
    let t0 = Instant::now();
    let at = |ms| t0 + Duration::from_millis(ms);
    let limiter = RateLimiter::from_store(MemoryStore::new(b3(1)));
    let (starts, inner) = recorder(t0);
    let svc = RateLimitLayer::with_limiter(limiter.clone())
        .cost(|c: &u64| *c)
        .layer(inner);
    svc.clone().oneshot(3).await.unwrap();
    let mut heavy_svc = svc.clone();
    heavy_svc.ready().await.unwrap();
    let mut heavy = Box::pin(heavy_svc.call(3));
    assert!(poll_fn(|cx| Poll::Ready(heavy.as_mut().poll(cx).is_pending())).await);
    sleep_until(at(1_500)).await;
    limiter.set_quota(b3(10));
    if poll_between {
        assert!(poll_fn(|cx| Poll::Ready(heavy.as_mut().poll(cx).is_pending())).await);
    }
    sleep_until(at(3_200)).await;
    limiter.set_quota(b3(1));
    let fresh = tokio::spawn(svc.clone().oneshot(1));
    heavy.await.unwrap();
    fresh.await.unwrap().unwrap();
    let starts = starts.lock().unwrap().clone();
    let heavy = starts.iter().filter(|s| s.1 == 3).nth(1).unwrap().0;
    let fresh = starts.iter().find(|s| s.1 == 1).unwrap().0;
    (heavy, fresh)
}

/// Two quota changes at different instants before the sleeper is polled again: as
/// one change anchored at the last (here none at all, the quota being back to the
/// one the slot was booked under), the heavy request started 1.33 s before its
/// bucket position.
#[tokio::test(start_paused = true)]
async fn two_changes_between_polls_move_the_slot_as_the_bucket_moved() {
    let polled = two_changes(true).await;
    let unpolled = two_changes(false).await;
    eprintln!("polled between the changes: {polled:?}; not polled: {unpolled:?}");
    assert_eq!(
        unpolled, polled,
        "a sleeper not polled between two changes started at {:?}, one polled at {:?}",
        unpolled.0, polled.0
    );
}

fn keyed_service(
    limiter: &KeyedRateLimiter<u32>,
    start: Instant,
) -> tower::util::BoxCloneService<u32, Duration, tower_ratelimit_core::BoxError> {
    let svc = ServiceBuilder::new()
        .layer(KeyedRateLimitLayer::with_limiter(
            limiter.clone(),
            |r: &u32| *r,
        ))
        .service(tower::service_fn(move |_: u32| async move {
            Ok::<_, Infallible>(start.elapsed())
        }));
    tower::util::BoxCloneService::new(svc)
}

/// Keyed, 1/s burst 1: R0 at 0, R1 booked at 1 s (polled once at 0). Cut to 1 per
/// 10 s at 0.5 s, back to 1/s at 1.2 s; R1 not polled in between. The bucket's
/// TAT went 2 s -> 15.5 s -> 2.63 s, so R1's slot is 1.63 s and a fresh R2 at 1.2 s
/// gets 2.63 s... unless R1 starts at 1.2 s: then R1 and R2 start 0.43 s apart under
/// 1/s burst 1 (the quota in force at both starts).
#[tokio::test(start_paused = true)]
async fn keyed_sleeper_not_polled_between_two_changes_starts_before_its_slot() {
    let limiter: KeyedRateLimiter<u32> = KeyedRateLimiter::new(strict(1));
    let t0 = Instant::now();
    let mut service = keyed_service(&limiter, t0);
    let r0 = service.ready().await.unwrap().call(1).await.unwrap();
    assert_eq!(r0, Duration::ZERO);
    let mut r1 = Box::pin(service.ready().await.unwrap().call(1));
    assert!(poll_fn(|cx| Poll::Ready(r1.as_mut().poll(cx).is_pending())).await);
    sleep_until(t0 + Duration::from_millis(500)).await;
    limiter.set_quota(slow());
    sleep_until(t0 + Duration::from_millis(1_200)).await;
    limiter.set_quota(strict(1));
    let r2 = tokio::spawn(service.clone().oneshot(1));
    let r1 = r1.await.unwrap();
    let r2 = r2.await.unwrap().unwrap();
    assert!(
        r1 >= Duration::from_millis(1_630) - Duration::from_millis(1),
        "r1 started at {r1:?}, its bucket position is 1.63 s (r2 {r2:?})"
    );
}

/// The rate layer's weighted response future (it holds a `BookedSlot` in
/// `Held::Reserved`) is `Send`, and so is `KeyedRateLimiter::acquire`.
#[test]
fn weighted_rate_future_and_keyed_acquire_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let limiter = RateLimiter::from_store(MemoryStore::new(b3(1)));
    let (_, inner) = recorder(Instant::now());
    let mut svc = RateLimitLayer::with_limiter(limiter)
        .cost(|c: &u64| *c)
        .layer(inner);
    let f = svc.call(3);
    assert_send(&f);
    let keyed: KeyedRateLimiter<u32> = KeyedRateLimiter::new(strict(1));
    let acquire = keyed.acquire(&1, 1, Duration::MAX);
    assert_send(&acquire);
}

/// Keyed, 1/s burst 1. At 0: Rf starts, R0 is booked at 1 s (a spawned task, polled
/// whenever woken), R1 at 2 s (polled once, then not until after the second change).
/// Cut to 1 per 10 s at 0.5 s (R0 -> 5.5 s, R1 -> 15.5 s), back to 1/s at 2.2 s
/// (R0 -> 2.53 s, R1 -> 3.53 s). R1's old instant (2 s) is before the last change,
/// so it is not moved and starts at 2.2 s: ahead of R0, 0.33 s from it, under 1/s
/// burst 1 in force at both starts (at most 1 start in any 0.33 s).
#[tokio::test(start_paused = true)]
async fn keyed_collapsed_changes_over_admit() {
    let limiter: KeyedRateLimiter<u32> = KeyedRateLimiter::new(strict(1));
    let t0 = Instant::now();
    let mut service = keyed_service(&limiter, t0);
    let first = service.ready().await.unwrap().call(1).await.unwrap();
    assert_eq!(first, Duration::ZERO);
    let r0 = tokio::spawn(service.clone().oneshot(1));
    tokio::task::yield_now().await;
    let mut r1 = Box::pin(service.ready().await.unwrap().call(1));
    assert!(poll_fn(|cx| Poll::Ready(r1.as_mut().poll(cx).is_pending())).await);
    sleep_until(t0 + Duration::from_millis(500)).await;
    limiter.set_quota(slow());
    sleep_until(t0 + Duration::from_millis(2_200)).await;
    limiter.set_quota(strict(1));
    let r1 = r1.await.unwrap();
    let r0 = r0.await.unwrap().unwrap();
    let gap = r0.max(r1) - r0.min(r1);
    assert!(
        gap >= Duration::from_secs(1) - Duration::from_millis(1),
        "two starts {gap:?} apart under 1/s burst 1: r0 {r0:?}, r1 {r1:?}"
    );
}
