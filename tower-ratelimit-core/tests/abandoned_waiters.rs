//! A waiter whose owner stops polling it without dropping it (a service whose
//! `ready()` timed out and was kept, a raw `poll_ready` that is never repeated) cannot
//! hold the queue: about a second after its turn came, the next waiter takes its
//! place, and the idle one joins again at the back when it is polled.

mod support;
use support::BoxedAnswer;

use std::convert::Infallible;
use std::task::{Context, Waker};
use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, Layer, Service, ServiceExt};
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};

/// The longest a waiter may hold its turn unpolled, plus a margin for the timer.
const TAKEOVER: Duration = Duration::from_millis(1_200);

/// Awaits `future`, failing (instead of hanging) if it is blocked for a minute.
async fn within_a_minute<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .expect("blocked for a minute behind an idle waiter")
}

fn ten_per_second() -> RateLimiter {
    RateLimiter::new(Quota::per_second(10).unwrap().with_burst(1).unwrap())
}

fn limited(
    limiter: &RateLimiter,
) -> impl Service<u32, Response = u32, Error = tower_ratelimit_core::error::BoxError> + Clone {
    RateLimitLayer::with_limiter(limiter.clone())
        .layer(service_fn(|n: u32| async move { Ok::<_, Infallible>(n) }))
}

#[tokio::test(start_paused = true)]
async fn a_kept_service_whose_ready_timed_out_does_not_block_its_clones() {
    let limiter = ten_per_second();
    let svc = limited(&limiter);
    let (mut a, mut b) = (svc.clone(), svc.clone());
    a.ready().await.unwrap().call(0).await.unwrap();
    // The caller gives up on readiness after 10 ms but keeps `a` (now the head).
    assert!(tokio::time::timeout(Duration::from_millis(10), a.ready())
        .await
        .is_err());
    let start = Instant::now();
    within_a_minute(b.ready())
        .await
        .unwrap()
        .call(1)
        .await
        .unwrap();
    assert!(
        start.elapsed() <= TAKEOVER,
        "b waited {:?} behind an idle clone",
        start.elapsed()
    );
    // `a` is not lost: polled again, it waits its turn at the back and gets through.
    a.ready().await.unwrap().call(2).await.unwrap();
}

/// The head and the first in line both kept but no longer polled: the live waiter
/// behind them takes over about a second per idle waiter after the head's turn.
#[tokio::test(start_paused = true)]
async fn several_idle_waiters_in_a_row_do_not_block_those_behind() {
    let limiter = ten_per_second();
    let svc = limited(&limiter);
    let mut idle: Vec<_> = (0..3).map(|_| svc.clone()).collect();
    idle[0].ready().await.unwrap().call(0).await.unwrap();
    for kept in idle.iter_mut() {
        assert!(
            tokio::time::timeout(Duration::from_millis(10), kept.ready())
                .await
                .is_err()
        );
    }
    let start = Instant::now();
    let mut live = svc.clone();
    within_a_minute(live.ready())
        .await
        .unwrap()
        .call(1)
        .await
        .unwrap();
    assert!(
        start.elapsed() <= TAKEOVER * 3,
        "waited {:?} behind three idle clones",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn one_pending_poll_does_not_block_acquire() {
    let limiter = ten_per_second();
    let mut a = limited(&limiter);
    a.ready().await.unwrap().call(0).await.unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    assert!(Service::<u32>::poll_ready(&mut a, &mut cx).is_pending());
    let start = Instant::now();
    within_a_minute(limiter.acquire(1)).await.unwrap();
    assert!(start.elapsed() <= TAKEOVER, "waited {:?}", start.elapsed());
}

#[tokio::test(start_paused = true)]
async fn an_idle_waiter_in_line_is_passed_over_when_its_turn_comes() {
    let limiter = ten_per_second();
    limiter.acquire(1).await.unwrap();
    // A live head sleeps until its slot at 100 ms.
    let head = tokio::spawn({
        let limiter = limiter.clone();
        async move { limiter.acquire(1).await.unwrap() }
    });
    tokio::task::yield_now().await;
    // Next in line: a service polled once and never again.
    let mut idle = limited(&limiter);
    let mut cx = Context::from_waker(Waker::noop());
    assert!(Service::<u32>::poll_ready(&mut idle, &mut cx).is_pending());
    // Then a live waiter behind it.
    let start = Instant::now();
    within_a_minute(limiter.acquire(1)).await.unwrap();
    head.await.unwrap();
    assert!(
        start.elapsed() <= Duration::from_millis(100) + TAKEOVER,
        "waited {:?} behind an idle waiter",
        start.elapsed()
    );
    // The idle one, polled again, still gets its unit.
    idle.ready().await.unwrap().call(3).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_live_head_keeps_its_place_through_a_long_wait() {
    // One unit a minute: the head sleeps far longer than the grace, and must not be
    // overtaken by those behind it.
    let limiter = RateLimiter::new(Quota::per_minute(1).unwrap());
    limiter.acquire(1).await.unwrap();
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for id in 0..3 {
        let (limiter, order) = (limiter.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            limiter.acquire(1).await.unwrap();
            order.lock().unwrap().push(id);
        }));
        tokio::task::yield_now().await;
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2]);
}

/// A store whose answers take longer than the queue's grace (a remote store during a
/// failover): the next waiter may take the head meanwhile, but the answer that comes
/// back is still used, so no admission is wasted and every waiter gets through.
struct SlowStore(tower_ratelimit_core::store::MemoryStore);

impl tower_ratelimit_core::store::RateStore for SlowStore {
    type Future = BoxedAnswer;
    fn check(&self, _: &(), cost: u64) -> BoxedAnswer {
        let decided = self.0.check_now(cost);
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            decided
        })
    }
    fn peek(&self, _: &(), cost: u64) -> BoxedAnswer {
        let decided = self.0.peek_now(cost);
        Box::pin(async move { decided })
    }
    fn reserve(&self, _: &(), cost: u64, max_wait: Duration) -> BoxedAnswer {
        let decided = self.0.reserve_now(cost, max_wait);
        Box::pin(async move { decided })
    }
    fn quota(&self, _: &()) -> Quota {
        tower_ratelimit_core::store::RateStore::quota(&self.0, &())
    }
    fn set_quota(&self, quota: Quota) {
        tower_ratelimit_core::store::RateStore::set_quota(&self.0, quota)
    }
}

#[tokio::test(start_paused = true)]
async fn a_head_waiting_on_a_slow_store_keeps_its_answer() {
    let limiter =
        RateLimiter::from_store(SlowStore(tower_ratelimit_core::store::MemoryStore::new(
            Quota::per_second(1).unwrap().with_burst(1).unwrap(),
        )));
    limiter.acquire(1).await.unwrap();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire(1).await.unwrap() })
        })
        .collect();
    within_a_minute(futures_util::future::join_all(waiters)).await;
}

/// A head kept but no longer polled after its lease moved earlier (a faster quota):
/// the waiters in line, whose watchdogs were armed against the old lease, take over
/// about a second after the new one, and in their order.
#[tokio::test(start_paused = true)]
async fn an_idle_head_whose_lease_moved_earlier_is_overtaken_in_order() {
    use futures_util::FutureExt;
    let t0 = Instant::now();
    let limiter = RateLimiter::new(Quota::per_minute(1).unwrap().with_burst(1).unwrap());
    limiter.acquire(1).await.unwrap(); // the next slot is a minute away
    let mut head = Box::pin(limiter.acquire(1));
    assert!(head.as_mut().now_or_never().is_none());
    let spawn = |limiter: &RateLimiter| {
        let limiter = limiter.clone();
        tokio::spawn(async move {
            limiter.acquire(1).await.unwrap();
            t0.elapsed()
        })
    };
    let first = spawn(&limiter);
    tokio::time::sleep(Duration::from_secs(1)).await;
    limiter.set_quota(
        Quota::with_period(Duration::from_secs(5))
            .unwrap()
            .with_burst(1)
            .unwrap(),
    );
    // Its owner polls the head once more (its lease moves to its new slot), then
    // keeps it without polling it again.
    assert!(head.as_mut().now_or_never().is_none());
    tokio::time::sleep(Duration::from_millis(10)).await;
    let second = spawn(&limiter);
    let first = within_a_minute(first).await.unwrap();
    let second = within_a_minute(second).await.unwrap();
    assert!(
        first < Duration::from_secs(10),
        "first started at {first:?}"
    );
    assert!(first < second, "out of order: {first:?}, {second:?}");
    drop(head);
}
