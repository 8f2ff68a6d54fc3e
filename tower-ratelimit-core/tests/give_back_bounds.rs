//! What a wait-mode request gives back of the unit its readiness took is never more
//! than time has left of it: not for a unit-cost layer that does not note when it
//! took the unit, and not after the quota changed (the unit was priced by the old
//! one). Paused clock; GCRA's bound is `burst + ⌊D / interval⌋` units in any `D`.

mod support;
use support::starts::{most_within, recorder, Starts};

use std::time::Duration;
use tokio::time::{sleep_until, Instant};
use tower::{Layer, Service, ServiceExt};
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};

type Boxed = tower::util::BoxCloneService<u64, (), tower_ratelimit_core::BoxError>;

/// GCRA, 2/s, burst 2 (T = 500 ms). `weighted`: a cost closure (sets `ready_at`).
fn setup(weighted: bool) -> (Instant, Starts, RateLimiter<MemoryStore>, Boxed) {
    let t0 = Instant::now();
    let limiter = RateLimiter::from_store(MemoryStore::new(Quota::per_second(2).unwrap()));
    let (starts, inner) = recorder(t0);
    let layer = RateLimitLayer::with_limiter(limiter.clone());
    let service = if weighted {
        Boxed::new(layer.cost(|c: &u64| *c).layer(inner))
    } else {
        Boxed::new(layer.layer(inner))
    };
    (t0, starts, limiter, service)
}

/// An unweighted wait-mode service made ready at 0 and called (during a 100 ms
/// pause) at 1 s, then two fresh requests at the pause's end. Dated at the call, 400
/// ms of a unit the bucket refilled long ago came back out of the fresh requests'
/// bookings: 3 started within 100 ms on a burst of 2.
async fn ready_early_called_in_pause(weighted: bool) -> Vec<(Duration, u64)> {
    let (t0, starts, limiter, service) = setup(weighted);
    let at = |ms| t0 + Duration::from_millis(ms);
    let mut early = service.clone();
    early.ready().await.unwrap();
    sleep_until(at(1_000)).await;
    limiter.pause_for(Duration::from_millis(100));
    let held = early.call(1);
    sleep_until(at(1_100)).await;
    for _ in 0..2 {
        service.clone().oneshot(1).await.unwrap();
    }
    held.await.unwrap();
    let starts = starts.lock().unwrap().clone();
    assert_eq!(starts.len(), 3, "{starts:?}");
    starts
}

#[tokio::test(start_paused = true)]
async fn a_weighted_request_ready_before_a_pause_keeps_the_bound() {
    let starts = ready_early_called_in_pause(true).await;
    assert_eq!(
        most_within(&starts, Duration::from_millis(499)),
        2,
        "{starts:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unweighted_request_ready_before_a_pause_gives_nothing_back() {
    let starts = ready_early_called_in_pause(false).await;
    assert_eq!(
        most_within(&starts, Duration::from_millis(499)),
        2,
        "{starts:?}"
    );
}

/// A quota change between `taken_at` and the booking. The unit readiness took at 0
/// under 2/s was refilled by 500 ms; at 550 ms the quota drops to 2 per 10 s (an
/// adaptive controller's cut on the same 429 that paused). Priced at the new
/// interval, 4.4 s of it came back out of the fresh requests' bookings: a third
/// unit within 600 ms on a burst of 2, where the next slot was at 5.6 s.
#[tokio::test(start_paused = true)]
async fn a_quota_cut_during_a_pause_gives_nothing_back() {
    let (t0, starts, limiter, service) = setup(true);
    let at = |ms| t0 + Duration::from_millis(ms);
    let mut early = service.clone();
    early.ready().await.unwrap();
    limiter.pause_for(Duration::from_millis(600));
    let held = tokio::spawn(early.call(1));
    sleep_until(at(550)).await;
    limiter.set_quota(Quota::new(2, Duration::from_secs(10)).unwrap());
    sleep_until(at(600)).await;
    // Fresh requests at the pause's end, before the held one rebooks.
    for _ in 0..2 {
        service.clone().oneshot(1).await.unwrap();
    }
    held.await.unwrap().unwrap();
    let starts = starts.lock().unwrap().clone();
    assert_eq!(starts.len(), 3, "{starts:?}");
    // 2 per 10 s with a burst of 2: at most 2 + ⌊D / 5 s⌋ units within any D.
    assert_eq!(
        most_within(&starts, Duration::from_millis(4_999)),
        2,
        "{starts:?}"
    );
}

/// The same without a pause, in `call`: ready at 0 under 2/s, the quota cut to 2 per
/// 10 s at 550 ms, two fresh units at 600 ms, then the ready service calls with cost
/// 2 (it started at 6.2 s with 4 units within 5.6 s).
#[tokio::test(start_paused = true)]
async fn a_quota_cut_between_ready_and_call_gives_nothing_back() {
    let (t0, starts, limiter, service) = setup(true);
    let at = |ms| t0 + Duration::from_millis(ms);
    let mut early = service.clone();
    early.ready().await.unwrap();
    sleep_until(at(550)).await;
    limiter.set_quota(Quota::new(2, Duration::from_secs(10)).unwrap());
    sleep_until(at(600)).await;
    service.clone().oneshot(2).await.unwrap();
    early.call(2).await.unwrap();
    let starts = starts.lock().unwrap().clone();
    assert_eq!(starts.len(), 2, "{starts:?}");
    // Within 9.999 s: 2 + ⌊D / 5 s⌋ = 3 at most.
    assert!(
        most_within(&starts, Duration::from_millis(9_999)) <= 3,
        "{starts:?}"
    );
}

/// Hostile values through the public `Algorithm::refund_taken_at`: no panic.
#[test]
fn refund_taken_at_never_panics_on_hostile_values() {
    use tower_ratelimit_core::algorithm::{
        Algorithm, FixedWindow, Gcra, LeakyBucket, SlidingCounter, SlidingLog,
    };
    fn run<A: Algorithm>(a: A) {
        let quotas = [
            Quota::per_second(2).unwrap(),
            Quota::new(u64::MAX, Duration::from_nanos(u64::MAX))
                .unwrap_or(Quota::per_second(1).unwrap()),
            Quota::new(1, Duration::from_secs(86_400 * 365))
                .unwrap_or(Quota::per_second(1).unwrap()),
        ];
        let vals = [0u64, 1, 1_000_000_000, u64::MAX / 2, u64::MAX - 1, u64::MAX];
        for q in quotas {
            for &taken_at in &vals {
                for &now in &vals {
                    for &cost in &[0u64, 1, 2, u64::MAX] {
                        let s = a.new_state(&q);
                        let _ = a.reserve(&s, &q, now, 1, u64::MAX);
                        a.refund_taken_at(&s, &q, cost, taken_at, now);
                        let _ = a.check(&s, &q, now, 1);
                    }
                }
            }
        }
    }
    run(Gcra);
    run(LeakyBucket);
    run(FixedWindow);
    run(SlidingLog);
    run(SlidingCounter);
}
