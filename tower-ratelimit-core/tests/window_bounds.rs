//! Every quota's bound holds where requests start, in wait mode: with several quotas
//! held together, and with weighted requests on the window algorithms. Paused clock.

mod support;
use support::starts::{most_within, recorder, Starts};

use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};
use tower_ratelimit_core::algorithm::{
    Algorithm, FixedWindow, Gcra, LeakyBucket, SlidingCounter, SlidingLog,
};
use tower_ratelimit_core::clock::Clock;
use tower_ratelimit_core::store::Decision;
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};

/// The Unix time the clocks read at the test's start: windows of 1 s and 10 s begin
/// there.
const ORIGIN: Duration = Duration::from_secs(1_000_000);

/// The most units started in one window `[k·period, (k+1)·period)` of the clock.
fn most_per_window(starts: &[(Duration, u64)], period: Duration) -> u64 {
    let mut per_window = BTreeMap::new();
    for &(at, cost) in starts {
        *per_window
            .entry((at + ORIGIN).as_nanos() / period.as_nanos())
            .or_insert(0) += cost;
    }
    per_window.into_values().max().unwrap_or(0)
}

fn two_per_second_and_six_per_ten_seconds() -> MemoryStore<FixedWindow> {
    MemoryStore::with_quotas(
        FixedWindow,
        [
            Quota::new(2, Duration::from_secs(1)).unwrap(),
            Quota::new(6, Duration::from_secs(10)).unwrap(),
        ],
    )
    .unwrap()
    .with_clock(Clock::with_unix_time(ORIGIN))
}

/// A weighted service whose requests are their cost.
type Weighted = tower::util::BoxCloneService<u64, (), tower_ratelimit_core::BoxError>;

/// 2 units per second under `algorithm`, weighted by the request, on the clock of
/// `ORIGIN`: the test's start, its limiter, and the service logging starts.
fn two_per_second<A: Algorithm>(
    algorithm: A,
) -> (Instant, Starts, RateLimiter<MemoryStore<A>>, Weighted) {
    let t0 = Instant::now();
    let store = MemoryStore::with_algorithm(algorithm, Quota::per_second(2).unwrap())
        .with_clock(Clock::with_unix_time(ORIGIN));
    let limiter = RateLimiter::from_store(store);
    let (starts, inner) = recorder(t0);
    let service = RateLimitLayer::with_limiter(limiter.clone())
        .cost(|cost: &u64| *cost)
        .layer(inner);
    (t0, starts, limiter, Weighted::new(service))
}

/// At most 2 units in each 1 s window of the clock.
fn two_per_window(starts: &[(Duration, u64)]) {
    assert_eq!(
        most_per_window(starts, Duration::from_secs(1)),
        2,
        "{starts:?}"
    );
}

/// At most 2 units within any 1 s.
fn two_within_a_second(starts: &[(Duration, u64)]) {
    assert_eq!(most_within(starts, Duration::from_secs(1)), 2, "{starts:?}");
}

/// At most 2 in each 1 s window and 6 in each 10 s window.
fn both_quotas_held(starts: &[(Duration, u64)]) {
    assert_eq!(
        most_per_window(starts, Duration::from_secs(1)),
        2,
        "{starts:?}"
    );
    assert_eq!(
        most_per_window(starts, Duration::from_secs(10)),
        6,
        "{starts:?}"
    );
}

// A waiter decides as of when it began waiting; each quota used to be charged at its
// own earliest instant, so the one that was not holding the line was charged in
// windows long over, and its limit did not hold when the other let the line go.
#[tokio::test(start_paused = true)]
async fn several_quotas_each_hold_where_requests_start() {
    let t0 = Instant::now();
    let (starts, inner) = recorder(t0);
    let service = RateLimitLayer::with_limiter(RateLimiter::from_store(
        two_per_second_and_six_per_ten_seconds(),
    ))
    .layer(inner);
    let waiting: Vec<_> = (0..30)
        .map(|_| tokio::spawn(service.clone().oneshot(1)))
        .collect();
    for request in waiting {
        request.await.unwrap().unwrap();
    }
    let starts = starts.lock().unwrap().clone();
    assert_eq!(starts.len(), 30);
    // Six started at one instant each time a 10 s window turned.
    both_quotas_held(&starts);
}

#[tokio::test(start_paused = true)]
async fn several_quotas_hold_for_requests_in_a_stream() {
    let t0 = Instant::now();
    let (starts, inner) = recorder(t0);
    let service = RateLimitLayer::with_limiter(RateLimiter::from_store(
        two_per_second_and_six_per_ten_seconds(),
    ))
    .layer(inner);
    service
        .call_all(futures_util::stream::iter(std::iter::repeat_n(1u64, 30)))
        .for_each(|done| async move { done.unwrap() })
        .await;
    let starts = starts.lock().unwrap().clone();
    both_quotas_held(&starts);
}

#[tokio::test(start_paused = true)]
async fn the_second_quota_holds_when_the_first_is_raised() {
    let t0 = Instant::now();
    let store = MemoryStore::with_quotas(
        Gcra,
        [
            // The first quota is the one `set_quota` replaces.
            Quota::new(1, Duration::from_secs(10)).unwrap(),
            Quota::per_second(1).unwrap(),
        ],
    )
    .unwrap();
    let limiter = RateLimiter::from_store(store);
    let (starts, inner) = recorder(t0);
    let service = RateLimitLayer::with_limiter(limiter.clone()).layer(inner);
    let waiting: Vec<_> = (0..20)
        .map(|_| tokio::spawn(service.clone().oneshot(1)))
        .collect();
    tokio::time::sleep(Duration::from_millis(40_500)).await;
    limiter.set_quota(Quota::per_second(100).unwrap());
    for request in waiting {
        request.await.unwrap().unwrap();
    }
    let starts = starts.lock().unwrap().clone();
    // Sixteen started at 40.5 s through "1 per second, burst 1".
    assert_eq!(
        most_within(&starts, Duration::from_millis(999)),
        1,
        "{starts:?}"
    );
}

/// 2 units per 1 s: a request of cost 1 and one of cost 2 at 0.5 s, then one of cost 1
/// every 0.25 s from 1 s on.
async fn weighted_requests<A: Algorithm>(algorithm: A) -> Vec<(Duration, u64)> {
    let (t0, starts, _, service) = two_per_second(algorithm);
    tokio::time::sleep(Duration::from_millis(500)).await;
    service.clone().oneshot(1).await.unwrap();
    let mut heavy = service.clone();
    let heavy = tokio::spawn(heavy.ready().await.unwrap().call(2));
    let light: Vec<_> = (0..4u64)
        .map(|i| {
            let service = service.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(t0 + Duration::from_millis(1_000 + 250 * i)).await;
                service.oneshot(1).await.unwrap();
            })
        })
        .collect();
    heavy.await.unwrap().unwrap();
    for request in light {
        request.await.unwrap();
    }
    let starts = starts.lock().unwrap().clone();
    starts
}

// The unit poll_ready took was counted in its window, and the rest of the cost in a
// later one, where the request started with all of it: that window admitted 3 of 2.
#[tokio::test(start_paused = true)]
async fn a_weighted_request_is_counted_whole_in_the_window_where_it_starts() {
    let starts = weighted_requests(FixedWindow).await;
    assert_eq!(starts.iter().map(|&(_, cost)| cost).sum::<u64>(), 7);
    two_per_window(&starts);
}

#[tokio::test(start_paused = true)]
async fn a_weighted_request_is_counted_whole_in_the_log_where_it_starts() {
    let starts = weighted_requests(SlidingLog).await;
    assert_eq!(starts.iter().map(|&(_, cost)| cost).sum::<u64>(), 7);
    two_within_a_second(&starts);
}

// The leaky bucket's docs: a request of cost n may start when the bucket is empty,
// and pushes the next one n × T later (it started 1 s late, and the next 1 s after).
#[tokio::test(start_paused = true)]
async fn a_weighted_request_on_an_empty_leaky_bucket_starts_at_once() {
    let t0 = Instant::now();
    let quota = Quota::per_second(1).unwrap().with_burst(4).unwrap();
    let (starts, inner) = recorder(t0);
    let mut service = RateLimitLayer::with_limiter(RateLimiter::with_algorithm(LeakyBucket, quota))
        .cost(|cost: &u64| *cost)
        .layer(inner);
    service.ready().await.unwrap().call(2).await.unwrap();
    service.ready().await.unwrap().call(1).await.unwrap();
    let starts = starts.lock().unwrap().clone();
    assert_eq!(starts, [(Duration::ZERO, 2), (Duration::from_secs(2), 1)]);
}

/// 2 units per second: `a` is made ready at `ready_at` (its unit is taken then), `b`
/// starts a request of cost 1 at `other_at`, and `a` calls with cost 2 at `call_at`.
async fn kept_ready<A: Algorithm>(
    algorithm: A,
    [ready_at, other_at, call_at]: [u64; 3],
) -> Vec<(Duration, u64)> {
    let (t0, starts, _, service) = two_per_second(algorithm);
    let at = |ms| t0 + Duration::from_millis(ms);
    let mut a = service.clone();
    tokio::time::sleep_until(at(ready_at)).await;
    a.ready().await.unwrap();
    tokio::time::sleep_until(at(other_at)).await;
    service.clone().oneshot(1).await.unwrap();
    tokio::time::sleep_until(at(call_at)).await;
    a.call(2).await.unwrap();
    let starts = starts.lock().unwrap().clone();
    starts
}

// The unit readiness took is given back as of when it was taken: given back as of
// now, it came off the current window (another request's unit) or a sliding log's
// latest entry (another request's), and 3 units started in a window of 2.
#[tokio::test(start_paused = true)]
async fn a_service_kept_ready_gives_its_unit_back_where_it_was_taken() {
    let starts = kept_ready(FixedWindow, [500, 1_200, 1_300]).await;
    two_per_window(&starts);
    let starts = kept_ready(SlidingCounter, [500, 1_200, 1_300]).await;
    assert!(
        most_per_window(&starts, Duration::from_secs(1)) <= 2,
        "{starts:?}"
    );
    let starts = kept_ready(SlidingLog, [0, 900, 950]).await;
    two_within_a_second(&starts);
}

// Several quotas reserve each at the instant the request starts, which expired a log's
// entries as of that later instant: its snapshot promised 8 of 10 while every check
// was refused.
#[tokio::test(start_paused = true)]
async fn a_store_booked_ahead_promises_no_room() {
    async fn check<A: Algorithm>(algorithm: A) {
        let store = MemoryStore::with_quotas(
            algorithm,
            [
                Quota::new(10, Duration::from_secs(1)).unwrap(),
                Quota::new(3, Duration::from_secs(10)).unwrap(),
            ],
        )
        .unwrap()
        .with_clock(Clock::with_unix_time(ORIGIN));
        assert!(store.check_now(2).unwrap().is_allowed());
        tokio::time::advance(Duration::from_millis(500)).await;
        let Decision::Allowed { wait, .. } = store.reserve_now(2, Duration::MAX).unwrap() else {
            panic!("booked")
        };
        assert!(wait >= Duration::from_secs(2), "{wait:?}");
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(!store.check_now(1).unwrap().is_allowed());
        assert_eq!(store.peek_now(0).unwrap().snapshot().remaining, 0);
    }
    check(SlidingLog).await;
    check(SlidingCounter).await;
    check(FixedWindow).await;
    check(Gcra).await;
}

/// 2 per second: `a` is made ready at `ready_at`, a pause of `pause` ms begins then,
/// `a` calls with cost 2 during it, and another request of cost 1 comes at `other_at`.
async fn weighted_across_a_pause<A: Algorithm>(
    algorithm: A,
    [ready_at, pause, other_at]: [u64; 3],
) -> Vec<(Duration, u64)> {
    let (t0, starts, limiter, service) = two_per_second(algorithm);
    let at = |ms| t0 + Duration::from_millis(ms);
    let mut a = service.clone();
    tokio::time::sleep_until(at(ready_at)).await;
    a.ready().await.unwrap();
    limiter.pause_for(Duration::from_millis(pause));
    let heavy = tokio::spawn(a.call(2));
    tokio::time::sleep_until(at(other_at)).await;
    service.clone().oneshot(1).await.unwrap();
    heavy.await.unwrap().unwrap();
    let starts = starts.lock().unwrap().clone();
    starts
}

// After a pause, the rest of the cost was booked apart from the unit readiness took
// before it: 3 units in a window of 2.
#[tokio::test(start_paused = true)]
async fn a_weighted_request_held_through_a_pause_is_counted_whole() {
    let starts = weighted_across_a_pause(FixedWindow, [900, 200, 1_150]).await;
    two_per_window(&starts);
    let starts = weighted_across_a_pause(SlidingLog, [0, 500, 600]).await;
    two_within_a_second(&starts);
}

/// 2 per second: two requests are made ready at `ready_at` (ms), a pause of `pause`
/// ms begins then and both call during it; two more requests come when it ends.
async fn held_through_a_pause<A: Algorithm>(
    algorithm: A,
    [ready_at, pause]: [u64; 2],
) -> Vec<(Duration, u64)> {
    let (t0, starts, limiter, service) = two_per_second(algorithm);
    let at = |ms| t0 + Duration::from_millis(ms);
    tokio::time::sleep_until(at(ready_at)).await;
    let mut ready = Vec::new();
    for _ in 0..2 {
        let mut held = service.clone();
        held.ready().await.unwrap();
        ready.push(held);
    }
    limiter.pause_for(Duration::from_millis(pause));
    let mut requests: Vec<_> = ready
        .into_iter()
        .map(|mut held| tokio::spawn(held.call(1)))
        .collect();
    tokio::time::sleep_until(at(ready_at + pause)).await;
    for _ in 0..2 {
        requests.push(tokio::spawn(service.clone().oneshot(1)));
    }
    for request in requests {
        request.await.unwrap().unwrap();
    }
    let starts = starts.lock().unwrap().clone();
    assert_eq!(starts.len(), 4, "{starts:?}");
    starts
}

// Requests granted just before a pause used to start when it ended on the units they
// took before it, which the pause had refilled: with the fresh requests, twice the
// quota at the moment the server had asked for less.
#[tokio::test(start_paused = true)]
async fn requests_held_through_a_pause_are_counted_where_they_start() {
    let starts = held_through_a_pause(FixedWindow, [900, 500]).await;
    two_per_window(&starts);
    let starts = held_through_a_pause(SlidingLog, [0, 500]).await;
    two_within_a_second(&starts);
    // GCRA at 2/s with a burst of 2: the burst at the pause's end, then one each 500 ms.
    let starts = held_through_a_pause(Gcra, [0, 2_000]).await;
    let at: Vec<u64> = starts.iter().map(|(at, _)| at.as_millis() as u64).collect();
    assert_eq!(at, [2_000, 2_000, 2_500, 3_000], "{starts:?}");
    // A pause shorter than the units' refill: what is left of them is given back.
    for pause in [400, 100] {
        let starts = held_through_a_pause(Gcra, [0, pause]).await;
        assert_eq!(
            most_within(&starts, Duration::from_millis(499)),
            2,
            "{starts:?}"
        );
    }
}
