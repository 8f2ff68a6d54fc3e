//! A vacated slot is dated when its request asked for it (`call`, where an in-memory
//! store books), not when its future was first polled: a request called before
//! `remove` and first polled after it leaves no slot to the fresh bucket (it did:
//! starts at 0.3, 1.1 and 1.3 s under 1/s burst 1, where the quota allows 0.3 and
//! 1.3). Paused clock.
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, Layer, Service, ServiceExt};
use tower_ratelimit_core::{KeyedRateLimitLayer, KeyedRateLimiter, Quota};

#[tokio::test(start_paused = true)]
async fn a_request_called_before_remove_and_polled_after_leaves_no_slot_to_the_fresh_bucket() {
    let limiter = KeyedRateLimiter::new(Quota::per_second(1).unwrap());
    let t0 = Instant::now();
    let starts: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let log = Arc::clone(&starts);
    let mut svc = KeyedRateLimitLayer::with_limiter(limiter.clone(), |_: &u32| "key").layer(
        service_fn(move |_: u32| {
            log.lock().unwrap().push(t0.elapsed());
            async { Ok::<_, std::convert::Infallible>(()) }
        }),
    );
    svc.ready().await.unwrap().call(0).await.unwrap(); // the burst, at 0
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Called at 0.1 s: books the slot at 1 s in the current bucket; not polled yet.
    let mut pending = Box::pin(svc.ready().await.unwrap().call(1));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(limiter.remove(&"key")); // at 0.15 s
    tokio::time::sleep(Duration::from_millis(50)).await;
    // First polled at 0.2 s (it sleeps), then given up at 0.25 s.
    let waker = futures_noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(pending.as_mut().poll(&mut cx).is_pending());
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(pending);
    tokio::time::sleep(Duration::from_millis(50)).await;
    svc.ready().await.unwrap().call(2).await.unwrap(); // fresh bucket: at 0.3 s
    svc.ready().await.unwrap().call(3).await.unwrap();
    let starts = starts.lock().unwrap().clone();
    assert_eq!(
        starts,
        vec![
            Duration::ZERO,
            Duration::from_millis(300),
            Duration::from_millis(1300)
        ],
        "the fresh bucket's second request started in the slot booked in the dropped one"
    );
}

fn futures_noop_waker() -> std::task::Waker {
    std::task::Waker::noop().clone()
}
