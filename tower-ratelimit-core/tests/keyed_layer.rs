//! `KeyedRateLimitLayer` on tokio's paused clock: reject and wait modes, costs,
//! readiness, clones, errors, and every algorithm.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::time::Instant;
use tower::util::BoxCloneService;
use tower::{service_fn, Service, ServiceExt};
use tower_layer::Layer;
use tower_ratelimit_core::algorithm::{FixedWindow, SlidingLog};
use tower_ratelimit_core::clock::Clock;
use tower_ratelimit_core::error::{
    BoxError, CostTooLarge, NotReady, RateLimited, StoreError, WaitTooLong,
};
use tower_ratelimit_core::keyed::{
    KeyExtractor, KeyedMemoryStore, KeyedRateLimitLayer, KeyedRateLimiter,
};
use tower_ratelimit_core::Quota;

#[derive(Debug, Clone, Copy)]
struct Req {
    client: u32,
    cost: u64,
}

fn req(client: u32) -> Req {
    Req { client, cost: 1 }
}

/// An inner service that counts its calls and answers with the client id.
fn counting() -> (Arc<AtomicUsize>, BoxCloneService<Req, u32, BoxError>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let svc = service_fn(move |r: Req| {
        c.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, BoxError>(r.client) }
    });
    (calls, BoxCloneService::new(svc))
}

#[tokio::test(start_paused = true)]
async fn reject_mode_refuses_over_the_limit_without_calling_inner() {
    let (calls, inner) = counting();
    let layer =
        KeyedRateLimitLayer::new(Quota::per_second(2).unwrap(), |r: &Req| r.client).reject();
    let mut svc = layer.layer(inner);
    for _ in 0..2 {
        assert_eq!(svc.ready().await.unwrap().call(req(7)).await.unwrap(), 7);
    }
    let err = svc.ready().await.unwrap().call(req(7)).await.unwrap_err();
    let denied = err.downcast_ref::<RateLimited>().expect("RateLimited");
    assert_eq!(denied.retry_after(), Duration::from_millis(500));
    assert_eq!(denied.snapshot().remaining, 0);
    assert_eq!(denied.snapshot().limit, 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // Other keys are untouched, and the key recovers on time.
    assert_eq!(svc.ready().await.unwrap().call(req(8)).await.unwrap(), 8);
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(svc.ready().await.unwrap().call(req(7)).await.unwrap(), 7);
}

#[tokio::test(start_paused = true)]
async fn clones_share_one_limiter() {
    let (_, inner) = counting();
    let layer =
        KeyedRateLimitLayer::new(Quota::per_minute(1).unwrap(), |r: &Req| r.client).reject();
    let mut a = layer.layer(inner.clone());
    let mut b = a.clone();
    let mut c = layer.layer(inner);
    a.ready().await.unwrap().call(req(1)).await.unwrap();
    assert!(b.ready().await.unwrap().call(req(1)).await.is_err());
    assert!(c.ready().await.unwrap().call(req(1)).await.is_err());
    assert_eq!(layer.limiter().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn wait_mode_spaces_each_key_and_leaves_others_alone() {
    let (_, inner) = counting();
    let layer = KeyedRateLimitLayer::new(
        Quota::per_second(10).unwrap().with_burst(1).unwrap(),
        |r: &Req| r.client,
    );
    let svc = layer.layer(inner);
    let start = Instant::now();
    // Five requests of client 1 and one of client 2, called at once from clones.
    let mut tasks = Vec::new();
    for client in [1, 1, 1, 1, 1, 2] {
        let mut svc = svc.clone();
        let fut = svc.ready().await.unwrap().call(req(client));
        tasks.push(tokio::spawn(async move {
            fut.await.unwrap();
            (client, start.elapsed())
        }));
    }
    let mut ones = Vec::new();
    for t in tasks {
        let (client, at) = t.await.unwrap();
        if client == 1 {
            ones.push(at);
        } else {
            assert_eq!(at, Duration::ZERO, "another key does not wait");
        }
    }
    let expected: Vec<_> = (0..5).map(|i| Duration::from_millis(100 * i)).collect();
    assert_eq!(ones, expected, "slots in call order, 100 ms apart");
}

#[tokio::test(start_paused = true)]
async fn wait_mode_refuses_a_slot_beyond_max_wait_and_takes_nothing() {
    let (calls, inner) = counting();
    let layer = KeyedRateLimitLayer::new(Quota::per_second(1).unwrap(), |r: &Req| r.client)
        .max_wait(Duration::from_millis(1_500));
    let mut svc = layer.layer(inner);
    let start = Instant::now();
    svc.ready().await.unwrap().call(req(1)).await.unwrap(); // now
    svc.ready().await.unwrap().call(req(1)).await.unwrap(); // after 1 s
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    // Reserve two more without waiting for them: the second is 2 s away.
    let third = svc.ready().await.unwrap().call(req(1));
    let err = svc.ready().await.unwrap().call(req(1)).await.unwrap_err();
    let too_long = err.downcast_ref::<WaitTooLong>().expect("WaitTooLong");
    assert_eq!(too_long.wait, Duration::from_secs(2));
    assert_eq!(too_long.max_wait, Duration::from_millis(1_500));
    third.await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // The refused request took nothing: the next slot is 1 s later, not 2.
    svc.ready().await.unwrap().call(req(1)).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn weighted_costs_and_cost_above_the_burst() {
    for reject in [false, true] {
        let (calls, inner) = counting();
        let mut layer =
            KeyedRateLimitLayer::new(Quota::per_second(10).unwrap(), |r: &Req| r.client)
                .cost(|r: &Req| r.cost);
        if reject {
            layer = layer.reject();
        }
        let mut svc = layer.layer(inner);
        let start = Instant::now();
        let err = svc
            .ready()
            .await
            .unwrap()
            .call(Req {
                client: 1,
                cost: 11,
            })
            .await
            .unwrap_err();
        assert_eq!(
            *err.downcast_ref::<CostTooLarge>().expect("CostTooLarge"),
            CostTooLarge { cost: 11, max: 10 }
        );
        assert_eq!(start.elapsed(), Duration::ZERO, "fails at once");
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        svc.ready()
            .await
            .unwrap()
            .call(Req { client: 1, cost: 8 })
            .await
            .unwrap();
        let third = svc
            .ready()
            .await
            .unwrap()
            .call(Req { client: 1, cost: 4 })
            .await;
        if reject {
            let denied = third.unwrap_err();
            let denied = denied.downcast_ref::<RateLimited>().unwrap();
            assert_eq!(denied.retry_after(), Duration::from_millis(200));
        } else {
            third.unwrap();
            assert_eq!(start.elapsed(), Duration::from_millis(200));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn call_without_readiness_is_an_error_not_a_panic() {
    let (calls, inner) = counting();
    let mut svc = KeyedRateLimitLayer::new(Quota::per_second(1).unwrap(), |r: &Req| r.client)
        .reject()
        .layer(inner);
    let err = svc.call(req(1)).await.unwrap_err();
    assert!(err.is::<NotReady>());
    // One readiness, one call.
    svc.ready().await.unwrap();
    svc.call(req(1)).await.unwrap();
    assert!(svc.call(req(2)).await.unwrap_err().is::<NotReady>());
    // A clone has not been polled.
    svc.ready().await.unwrap();
    let mut clone = svc.clone();
    assert!(clone.call(req(3)).await.unwrap_err().is::<NotReady>());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn inner_readiness_is_respected_and_held_through_the_wait() {
    let (mock, mut handle) = tower_test::mock::pair::<Req, u32>();
    let layer = KeyedRateLimitLayer::new(
        Quota::per_second(1).unwrap().with_burst(1).unwrap(),
        |r: &Req| r.client,
    );
    let mut svc = layer.layer(mock);
    // Inner not ready: neither are we.
    handle.allow(0);
    let polled = std::future::poll_fn(|cx| Poll::Ready(svc.poll_ready(cx))).await;
    assert!(polled.is_pending());
    handle.allow(2);
    let polled = std::future::poll_fn(|cx| Poll::Ready(svc.poll_ready(cx))).await;
    assert!(matches!(polled, Poll::Ready(Ok(()))));
    let first = tokio::spawn(svc.call(req(1)));
    let (r, send) = handle.next_request().await.unwrap();
    assert_eq!(r.client, 1);
    send.send_response(1);
    assert_eq!(first.await.unwrap().unwrap(), 1);

    svc.ready().await.unwrap();
    let start = Instant::now();
    let second = tokio::spawn(svc.call(req(1)));
    // The inner service sees the request only when its slot comes, 1 s later.
    let (r, send) = handle.next_request().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(r.client, 1);
    send.send_response(11);
    assert_eq!(second.await.unwrap().unwrap(), 11);
}

#[tokio::test(start_paused = true)]
async fn extractor_errors_and_inner_errors_reach_the_caller() {
    struct Header;
    impl KeyExtractor<Req> for Header {
        type Key = u32;
        fn extract(&self, req: &Req) -> Result<u32, BoxError> {
            if req.client == 0 {
                Err("no client id".into())
            } else {
                Ok(req.client)
            }
        }
    }
    let mut svc = KeyedRateLimitLayer::new(Quota::per_second(5).unwrap(), Header)
        .reject()
        .layer(service_fn(|r: Req| async move {
            if r.client == 13 {
                Err::<u32, BoxError>("inner failed".into())
            } else {
                Ok(r.client)
            }
        }));
    let err = svc.ready().await.unwrap().call(req(0)).await.unwrap_err();
    assert_eq!(err.to_string(), "no client id");
    let err = svc.ready().await.unwrap().call(req(13)).await.unwrap_err();
    assert_eq!(err.to_string(), "inner failed");
    assert_eq!(svc.ready().await.unwrap().call(req(4)).await.unwrap(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_full_store_refuses_new_keys_through_the_layer() {
    let limiter = KeyedRateLimiter::from_store(
        KeyedMemoryStore::new(Quota::per_minute(10).unwrap()).with_max_keys(1),
    );
    let mut svc = KeyedRateLimitLayer::with_limiter(limiter.clone(), |r: &Req| r.client)
        .reject()
        .layer(counting().1);
    svc.ready().await.unwrap().call(req(1)).await.unwrap();
    let err = svc.ready().await.unwrap().call(req(2)).await.unwrap_err();
    assert!(matches!(
        err.downcast_ref::<StoreError>(),
        Some(StoreError::TooManyKeys { max_keys: 1, .. })
    ));
    // Once the known key is forgotten, there is room again.
    assert!(limiter.remove(&1));
    svc.ready().await.unwrap().call(req(2)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn every_algorithm_is_available_and_quotas_change_at_run_time() {
    // A sliding log: at most 3 in any second, per key.
    let limiter = KeyedRateLimiter::from_store(KeyedMemoryStore::with_algorithm(
        SlidingLog,
        Quota::per_second(3).unwrap(),
    ));
    let mut svc = KeyedRateLimitLayer::with_limiter(limiter.clone(), |r: &Req| r.client)
        .reject()
        .layer(counting().1);
    for _ in 0..3 {
        svc.ready().await.unwrap().call(req(1)).await.unwrap();
        tokio::time::advance(Duration::from_millis(300)).await;
    }
    let err = svc.ready().await.unwrap().call(req(1)).await.unwrap_err();
    let denied = err.downcast_ref::<RateLimited>().unwrap();
    assert_eq!(denied.retry_after(), Duration::from_millis(100));
    // Raise the default quota: the same key gets more at once.
    limiter.set_quota(Quota::per_second(4).unwrap());
    svc.ready().await.unwrap().call(req(1)).await.unwrap();
    assert_eq!(limiter.snapshot(&1).await.unwrap().remaining, 0);

    // Fixed windows aligned to a known clock.
    let store = KeyedMemoryStore::with_algorithm(FixedWindow, Quota::per_second(2).unwrap())
        .with_clock(Clock::with_unix_time(Duration::from_secs(1_000)));
    let mut svc =
        KeyedRateLimitLayer::with_limiter(KeyedRateLimiter::from_store(store), |r: &Req| r.client)
            .reject()
            .layer(counting().1);
    tokio::time::advance(Duration::from_millis(900)).await;
    for _ in 0..2 {
        svc.ready().await.unwrap().call(req(5)).await.unwrap();
    }
    let err = svc.ready().await.unwrap().call(req(5)).await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<RateLimited>().unwrap().retry_after(),
        Duration::from_millis(100),
        "the window resets on the second"
    );
}

// A sliding log books a key at most one period ahead: past that, a waiter is refused
// as rate limited, with the slot's distance (it was reported as over a maximum wait
// of 18446744073709551615 s, which the caller had not set).
#[tokio::test(start_paused = true)]
async fn a_hot_sliding_log_key_refuses_past_one_period_as_rate_limited() {
    let limiter = KeyedRateLimiter::from_store(KeyedMemoryStore::with_algorithm(
        SlidingLog,
        Quota::per_second(2).unwrap(),
    ));
    let svc = KeyedRateLimitLayer::with_limiter(limiter, |r: &Req| r.client).layer(counting().1);
    let waiting: Vec<_> = (0..4)
        .map(|_| tokio::spawn(svc.clone().oneshot(req(1))))
        .collect();
    tokio::task::yield_now().await;
    let err = svc.clone().oneshot(req(1)).await.unwrap_err();
    let denied = err.downcast_ref::<RateLimited>().expect("RateLimited");
    assert_eq!(denied.retry_after(), Duration::from_secs(2));
    for request in waiting {
        request.await.unwrap().unwrap();
    }
}
