//! Booked slots moved by a quota change, in the cases a first version got wrong: a
//! burst that changes with the interval, a change between `call` and the first poll,
//! a sleeper that runs late after a steep cut, changes in a row, keys with a quota of
//! their own; no over-admission after a move, and the keyed wait-mode future is
//! `Send`.

use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::{KeyedRateLimitLayer, KeyedRateLimiter, Quota};

fn strict(n: u64) -> Quota {
    Quota::per_second(n).unwrap().with_burst(1).unwrap()
}

type Svc = tower::util::BoxCloneService<u32, u128, tower_ratelimit_core::BoxError>;

fn keyed_service(limiter: &KeyedRateLimiter<u32>, start: Instant) -> Svc {
    let svc = ServiceBuilder::new()
        .layer(KeyedRateLimitLayer::with_limiter(
            limiter.clone(),
            |r: &u32| *r,
        ))
        .service(service_fn(move |_: u32| async move {
            Ok::<_, std::convert::Infallible>(start.elapsed().as_millis())
        }));
    tower::util::BoxCloneService::new(svc)
}

/// When the burst changes with the interval, the slot is the rescaled bucket's
/// `TAT' - new_burst × T'`: moved as `TAT' - old_burst × T'`, a request that came
/// after the raise started before the sleepers.
#[tokio::test(start_paused = true)]
async fn burst_raise_with_the_interval_keeps_the_sleepers_first() {
    let limiter: KeyedRateLimiter<u32> = KeyedRateLimiter::new(strict(1));
    let start = Instant::now();
    let service = keyed_service(&limiter, start);
    let mut waiting = Vec::new();
    for _ in 0..5 {
        waiting.push(tokio::spawn(service.clone().oneshot(1)));
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // 1/s burst 1 -> 10/s burst 10 (Quota::per_second's default burst).
    limiter.set_quota(Quota::per_second(10).unwrap());
    let late = tokio::spawn(service.clone().oneshot(1));
    let mut starts = Vec::new();
    for request in waiting {
        starts.push(request.await.unwrap().unwrap());
    }
    let late = late.await.unwrap().unwrap();
    assert!(
        late >= *starts.last().unwrap(),
        "the later request overtook the sleepers: sleepers {starts:?}, late {late}"
    );
}

/// The keyed layer decides in `call` (in-memory store); a change before the future's
/// first poll still moves the slot (compared with the quota read in `call`).
#[tokio::test(start_paused = true)]
async fn a_change_between_call_and_first_poll_moves_the_slot() {
    let limiter: KeyedRateLimiter<u32> = KeyedRateLimiter::new(strict(1));
    let start = Instant::now();
    let mut service = keyed_service(&limiter, start);
    let first = service.ready().await.unwrap().call(1);
    let second = service.ready().await.unwrap().call(1); // booked at 1 s
    limiter.set_quota(strict(10)); // the 2 s owed become 0.2 s: slot at 0.1 s
    let late = tokio::spawn(service.clone().oneshot(1));
    assert_eq!(first.await.unwrap(), 0);
    let second = second.await.unwrap();
    let late = late.await.unwrap().unwrap();
    assert!(
        second <= late,
        "missed change: second started at {second} ms, the later request at {late} ms"
    );
}

/// The slot is moved from the instant of the change (where the store rescaled the
/// bucket), not from when the sleeper is polled: with a steep cut, a poll that lagged
/// the change by 0.4 ms started the sleeper 0.4 s before its rescaled slot.
#[tokio::test(start_paused = true)]
async fn a_late_poll_does_not_move_the_slot_earlier_than_the_bucket() {
    let limiter: KeyedRateLimiter<u32> = KeyedRateLimiter::new(strict(1000));
    let start = Instant::now();
    let service = keyed_service(&limiter, start);
    let first = tokio::spawn(service.clone().oneshot(1));
    tokio::task::yield_now().await;
    let second = tokio::spawn(async move {
        let mut s = service;
        s.ready().await.unwrap().call(1).await.unwrap();
        start.elapsed()
    });
    tokio::task::yield_now().await; // second booked at 1 ms and sleeping
    tokio::time::advance(Duration::from_micros(500)).await;
    // At 0.5 ms the 1.5 ms owed become 1.5 s: the second's slot is 0.5 s + 0.5 ms.
    limiter.set_quota(strict(1));
    // The runtime gets to the woken sleeper 0.4 ms later.
    tokio::time::advance(Duration::from_micros(400)).await;
    first.await.unwrap().unwrap();
    let second = second.await.unwrap();
    assert!(
        second >= Duration::from_micros(500_500) - Duration::from_micros(1),
        "second started at {second:?}, its rescaled slot is 500.5 ms"
    );
}

#[test]
fn keyed_wait_mode_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let limiter: KeyedRateLimiter<String> = KeyedRateLimiter::new(strict(1));
    let mut svc = ServiceBuilder::new()
        .layer(KeyedRateLimitLayer::with_limiter(limiter, |r: &String| {
            r.clone()
        }))
        .service(service_fn(|_: String| async {
            Ok::<_, std::convert::Infallible>(())
        }));
    let f = svc.call(String::new());
    assert_send(&f);
    let l: KeyedRateLimiter<String> = KeyedRateLimiter::new(strict(1));
    let k = String::new();
    let acq = l.acquire(&k, 1, Duration::MAX);
    assert_send(&acq);
}

/// After a change, starts in any window that begins at or after the
/// change stay within the new quota's burst + rate × length, for sleepers moved by the
/// change plus a flood of later requests, with the burst and interval both changing.
#[tokio::test(start_paused = true)]
async fn no_over_admission_after_a_move() {
    let cases = [
        (Quota::per_second(10).unwrap(), strict(1)),
        (
            Quota::per_second(1).unwrap().with_burst(5).unwrap(),
            Quota::per_second(20).unwrap().with_burst(2).unwrap(),
        ),
        (strict(1), Quota::per_second(10).unwrap()),
        (
            Quota::per_second(4).unwrap().with_burst(3).unwrap(),
            Quota::per_second(2).unwrap().with_burst(3).unwrap(),
        ),
    ];
    for (from, to) in cases {
        let limiter: KeyedRateLimiter<u32> = KeyedRateLimiter::new(from);
        let start = Instant::now();
        let service = keyed_service(&limiter, start);
        let mut all = Vec::new();
        for _ in 0..(from.burst() + 6) {
            all.push(tokio::spawn(service.clone().oneshot(1)));
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(130)).await;
        let change = start.elapsed().as_nanos();
        limiter.set_quota(to);
        for _ in 0..30 {
            all.push(tokio::spawn(service.clone().oneshot(1)));
            tokio::task::yield_now().await;
        }
        let mut starts = Vec::new();
        for r in all {
            starts.push(r.await.unwrap().unwrap() * 1_000_000);
        }
        starts.sort();
        let t = to.emission_interval().as_nanos();
        for (i, &x) in starts.iter().enumerate() {
            if x < change {
                continue;
            }
            for (j, &y) in starts.iter().enumerate().skip(i) {
                let n = (j - i + 1) as u128;
                // ms rounding of the recorded starts: one unit of slack.
                let allowed = to.burst() as u128 + (y - x) / t + 1;
                assert!(n <= allowed, "{from:?} -> {to:?}: {n} starts in [{x}, {y}] ns, allowed {allowed}; {starts:?}");
            }
        }
    }
}

/// A key with its own quota is not moved when only the default changes.
#[tokio::test(start_paused = true)]
async fn own_quota_key_keeps_its_slot_when_the_default_changes() {
    use tower_ratelimit_core::keyed::KeyedMemoryStore;
    let store =
        KeyedMemoryStore::new(strict(1)).with_quota_fn(|k: &u32| (*k == 7).then(|| strict(1)));
    let limiter = KeyedRateLimiter::from_store(store);
    let start = Instant::now();
    let service = keyed_service(&limiter, start);
    let a = tokio::spawn(service.clone().oneshot(7));
    tokio::task::yield_now().await;
    let b = tokio::spawn(service.clone().oneshot(7));
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    limiter.set_quota(strict(10));
    assert_eq!(a.await.unwrap().unwrap(), 0);
    assert_eq!(b.await.unwrap().unwrap(), 1000);
}

/// As `burst_raise_with_the_interval_keeps_the_sleepers_first`, in the
/// rate layer (`Held::Reserved`): 1/s burst 3 -> 10/s burst 10 while a weighted
/// request sleeps until its booked units.
#[tokio::test(start_paused = true)]
async fn rate_layer_burst_raise_keeps_the_heavy_request_first() {
    use tower_ratelimit_core::{RateLimitLayer, RateLimiter};
    let limiter = RateLimiter::new(Quota::per_second(1).unwrap().with_burst(3).unwrap());
    let start = Instant::now();
    let service = ServiceBuilder::new()
        .layer(RateLimitLayer::with_limiter(limiter.clone()).cost(|cost: &u64| *cost))
        .service(service_fn(move |_: u64| async move {
            Ok::<_, std::convert::Infallible>(start.elapsed().as_millis())
        }));
    assert_eq!(service.clone().oneshot(3).await.unwrap(), 0);
    let heavy = tokio::spawn(service.clone().oneshot(3));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    limiter.set_quota(Quota::per_second(10).unwrap());
    let mut late = service.clone();
    let late = tokio::spawn(async move { late.ready().await.unwrap().call(1).await });
    let heavy = heavy.await.unwrap().unwrap();
    let late = late.await.unwrap().unwrap();
    assert!(
        late >= heavy,
        "late {late} ms overtook the heavy request at {heavy} ms"
    );
}

/// Two changes in a row (1/s -> 10/s -> 2/s) at once, or 100 ms
/// apart, end where the bucket's debt ends.
#[tokio::test(start_paused = true)]
async fn changes_in_a_row_follow_the_bucket() {
    for gap in [0u64, 100] {
        let limiter: KeyedRateLimiter<u32> = KeyedRateLimiter::new(strict(1));
        let start = Instant::now();
        let service = keyed_service(&limiter, start);
        let mut waiting = Vec::new();
        for _ in 0..3 {
            waiting.push(tokio::spawn(service.clone().oneshot(1)));
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        limiter.set_quota(strict(10));
        tokio::time::sleep(Duration::from_millis(gap)).await;
        limiter.set_quota(strict(2));
        let late = tokio::spawn(service.clone().oneshot(1));
        let mut starts = Vec::new();
        for r in waiting {
            starts.push(r.await.unwrap().unwrap());
        }
        let late = late.await.unwrap().unwrap();
        // gap 0: the 2.8 s owed at 0.2 s become 1.4 s (x 1/10 x 5): slots at 0.6 and
        // 1.1 s, the late one at 1.6 s. gap 100: the first sleeper started at 0.28 s
        // (10/s); at 0.3 s the 0.18 s owed become 0.9 s: 0.7 s, the late one at 1.2 s.
        let expected: (Vec<u128>, u128) = if gap == 0 {
            (vec![0, 600, 1100], 1600)
        } else {
            (vec![0, 280, 700], 1200)
        };
        assert_eq!((starts, late), expected);
    }
}
