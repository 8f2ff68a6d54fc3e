//! Wait and reject modes at work: backpressure for a lazy stream of a million
//! requests, a rejected request never reaching the inner service, several quotas held
//! all or nothing, and every algorithm behind the same layer.

use futures_util::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_layer::Layer;
use tower_ratelimit_core::algorithm::{FixedWindow, Gcra, LeakyBucket, SlidingCounter, SlidingLog};
use tower_ratelimit_core::clock::Clock;
use tower_ratelimit_core::error::RateLimited;
use tower_ratelimit_core::store::{Decision, MemoryStore};
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter, ServiceBuilderExt};

#[tokio::test(start_paused = true)]
async fn a_lazy_stream_of_a_million_requests_is_held_back() {
    const N: usize = 1_000_000;
    let pulled = Arc::new(AtomicUsize::new(0));
    let completed = Arc::new(AtomicUsize::new(0));
    let max_ahead = Arc::new(AtomicUsize::new(0));
    let requests = {
        let (pulled, completed, max_ahead) = (pulled.clone(), completed.clone(), max_ahead.clone());
        futures_util::stream::iter(0..N).inspect(move |_| {
            let ahead =
                pulled.fetch_add(1, Ordering::SeqCst) + 1 - completed.load(Ordering::SeqCst);
            max_ahead.fetch_max(ahead, Ordering::SeqCst);
        })
    };
    let api = {
        let completed = completed.clone();
        service_fn(move |_: usize| {
            let completed = completed.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                completed.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::convert::Infallible>(())
            }
        })
    };
    let svc = ServiceBuilder::new()
        .limit_rate(Quota::per_second(200_000).unwrap())
        .limit_concurrency(64)
        .service(api);
    let start = Instant::now();
    let done = svc
        .call_all(requests)
        .filter(|r| std::future::ready(r.is_ok()))
        .count()
        .await;
    assert_eq!(done, N);
    // The stream is pulled only as fast as requests can start: never more than the
    // pool plus the one being readied is outstanding, so memory stays flat.
    let ahead = max_ahead.load(Ordering::SeqCst);
    assert!(ahead <= 65, "{ahead} requests pulled ahead of completion");
    // 64 in flight at 5 ms carry 12,800/s: the pool binds, as Little's law says.
    let elapsed = start.elapsed().as_secs_f64();
    assert!(
        (elapsed - N as f64 * 0.005 / 64.0).abs() < 0.5,
        "took {elapsed} s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rejected_request_never_reaches_the_inner_service() {
    let calls = Arc::new(AtomicUsize::new(0));
    let inner = {
        let calls = calls.clone();
        service_fn(move |_: ()| {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok::<_, std::convert::Infallible>(()))
        })
    };
    let mut svc = RateLimitLayer::new(Quota::per_second(2).unwrap().with_burst(2).unwrap())
        .reject()
        .layer(inner);
    let start = Instant::now();
    svc.ready().await.unwrap().call(()).await.unwrap();
    svc.ready().await.unwrap().call(()).await.unwrap();
    let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
    let denied = err
        .downcast_ref::<RateLimited>()
        .expect("a typed rejection");
    assert_eq!(denied.retry_after(), Duration::from_millis(500));
    assert_eq!(denied.snapshot().remaining, 0);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the denied request was not sent"
    );
    assert_eq!(start.elapsed(), Duration::ZERO, "rejection is immediate");
    // A pause rejects too, with the pause's remaining time.
    svc.limiter().pause_for(Duration::from_secs(3));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<RateLimited>().unwrap().retry_after(),
        Duration::from_secs(2)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn several_quotas_are_all_or_nothing() {
    // 10 per second and 15 per minute.
    let limiter = RateLimiter::with_quotas(
        Gcra,
        [
            Quota::per_second(10).unwrap(),
            Quota::per_minute(15).unwrap(),
        ],
    )
    .unwrap();
    let mut allowed = 0;
    for _ in 0..12 {
        if limiter.try_acquire(1).await.unwrap().is_allowed() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 10, "the per-second quota denies the 11th and 12th");
    // A second later the per-second bucket holds 10 again, but the per-minute one only
    // 5: had the two denials taken from the minute quota, fewer would pass now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut allowed = 0;
    for _ in 0..10 {
        match limiter.try_acquire(1).await.unwrap() {
            Decision::Allowed { .. } => allowed += 1,
            Decision::Denied { retry_after, .. } => {
                // The longest wait decides: the minute quota's 4 s per unit.
                assert_eq!(retry_after, Duration::from_secs(3));
            }
        }
    }
    // 15 per minute refills one unit every 4 s: 5 remain. Had the two denials taken
    // from the minute quota, only 3 would pass now.
    assert_eq!(allowed, 5);
}

/// Every algorithm runs behind the same layer, with its own exact schedule.
#[tokio::test(start_paused = true)]
async fn every_algorithm_behind_the_layer() {
    async fn starts<A: tower_ratelimit_core::algorithm::Algorithm>(algorithm: A) -> Vec<u128> {
        let quota = Quota::per_second(4).unwrap().with_burst(2).unwrap();
        // A clock that reads the Unix epoch now, so windows start at t0.
        let clock = Clock::with_unix_time(Duration::ZERO);
        let store = MemoryStore::with_algorithm(algorithm, quota).with_clock(clock);
        let t0 = Instant::now();
        let mut svc = RateLimitLayer::with_limiter(RateLimiter::from_store(store)).layer(
            service_fn(move |_: ()| {
                std::future::ready(Ok::<_, std::convert::Infallible>(t0.elapsed().as_millis()))
            }),
        );
        let mut out = vec![];
        for _ in 0..6 {
            out.push(svc.ready().await.unwrap().call(()).await.unwrap());
        }
        out
    }
    // GCRA: a burst of 2, then every 250 ms.
    assert_eq!(starts(Gcra).await, [0, 0, 250, 500, 750, 1000]);
    // Leaky bucket: strict spacing, no burst.
    assert_eq!(starts(LeakyBucket).await, [0, 250, 500, 750, 1000, 1250]);
    // Windows read the quota as 4 per second and ignore the burst.
    assert_eq!(starts(FixedWindow).await, [0, 0, 0, 0, 1000, 1000]);
    assert_eq!(starts(SlidingLog).await, [0, 0, 0, 0, 1000, 1000]);
    // At 1.25 s the previous window's 4 weigh 3: one fits; at 1.5 s, another.
    assert_eq!(starts(SlidingCounter).await, [0, 0, 0, 0, 1250, 1500]);
}

/// `admit_now` is `check_now` without the snapshot, for every algorithm and for several
/// quotas held together: twin stores fed the same costs at the same instants agree on
/// every decision and every retry time.
#[tokio::test(start_paused = true)]
async fn admit_now_decides_as_check_now_does() {
    use tower_ratelimit_core::algorithm::{Admission, Algorithm};

    async fn twins<A: Algorithm + Copy>(algorithm: A, quotas: &[Quota]) {
        let clock = Clock::new();
        let checked = MemoryStore::with_quotas(algorithm, quotas.iter().copied())
            .unwrap()
            .with_clock(clock);
        let admitted = MemoryStore::with_quotas(algorithm, quotas.iter().copied())
            .unwrap()
            .with_clock(clock);
        let (mut allowed, mut denied) = (0, 0);
        for step in 0u64..400 {
            let cost = 1 + step % 3;
            let expected = checked.check_now(cost).map(Admission::from).ok();
            let got = admitted.admit_now(cost).ok();
            assert_eq!(got, expected, "step {step}, cost {cost}");
            match got {
                Some(Admission::Allowed) => allowed += 1,
                Some(Admission::Denied { .. }) => denied += 1,
                None => {}
            }
            tokio::time::sleep(Duration::from_millis(7 * (step % 5))).await;
        }
        assert!(allowed > 0 && denied > 0, "both answers were exercised");
    }

    let per_second = Quota::per_second(20).unwrap().with_burst(5).unwrap();
    let per_minute = Quota::per_minute(300).unwrap();
    twins(Gcra, &[per_second]).await;
    twins(Gcra, &[per_second, per_minute]).await;
    twins(LeakyBucket, &[per_second]).await;
    twins(FixedWindow, &[per_second]).await;
    twins(SlidingLog, &[per_second]).await;
    twins(SlidingCounter, &[per_second]).await;
}
