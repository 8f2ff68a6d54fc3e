//! Many clones waiting on one limiter: served in FIFO order, none lost, and a pause
//! holds every one of them, including those already waiting for a slot.

mod support;
use support::BoxedAnswer;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, Service, ServiceExt};
use tower_layer::Layer;
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};

type Starts = Arc<Mutex<Vec<(usize, Duration)>>>;

fn recording_service(
    starts: Starts,
    t0: Instant,
) -> impl Service<
    usize,
    Response = (),
    Error = std::convert::Infallible,
    Future = std::future::Ready<Result<(), std::convert::Infallible>>,
> + Clone {
    service_fn(move |id: usize| {
        starts.lock().unwrap().push((id, t0.elapsed()));
        std::future::ready(Ok(()))
    })
}

/// Spawns `n` clones that each wait for one slot, in order, and returns when all are
/// queued (each task runs until it is parked in the limiter's queue before the next
/// one is spawned).
async fn spawn_waiters<S>(svc: &S, n: usize) -> Vec<tokio::task::JoinHandle<()>>
where
    S: Service<usize> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: std::fmt::Debug,
{
    let mut tasks = vec![];
    for id in 0..n {
        let mut clone = svc.clone();
        tasks.push(tokio::spawn(async move {
            clone.ready().await.unwrap();
            let _ = clone.call(id).await;
        }));
        tokio::task::yield_now().await;
    }
    tasks
}

#[tokio::test(start_paused = true)]
async fn sixty_four_clones_are_served_in_order() {
    let t0 = Instant::now();
    let starts: Starts = Arc::default();
    let limiter = RateLimiter::new(Quota::per_second(10).unwrap().with_burst(1).unwrap());
    let svc = RateLimitLayer::with_limiter(limiter).layer(recording_service(starts.clone(), t0));
    for task in spawn_waiters(&svc, 64).await {
        task.await.unwrap();
    }
    let starts = starts.lock().unwrap().clone();
    let ids: Vec<_> = starts.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (0..64).collect::<Vec<_>>(), "FIFO across clones");
    for (i, (_, at)) in starts.iter().enumerate() {
        assert_eq!(*at, Duration::from_millis(100 * i as u64), "exact spacing");
    }
}

#[tokio::test(start_paused = true)]
async fn a_pause_holds_every_waiter_then_they_resume_in_order() {
    let t0 = Instant::now();
    let starts: Starts = Arc::default();
    let limiter = RateLimiter::new(Quota::per_second(10).unwrap().with_burst(1).unwrap());
    let svc =
        RateLimitLayer::with_limiter(limiter.clone()).layer(recording_service(starts.clone(), t0));
    let tasks = spawn_waiters(&svc, 64).await;

    tokio::time::sleep(Duration::from_millis(250)).await;
    // Three started (0, 100, 200 ms); the head is asleep until 300 ms.
    assert_eq!(starts.lock().unwrap().len(), 3);
    let pause_end = Duration::from_millis(250 + 2_000);
    limiter.pause_for(Duration::from_secs(2));
    assert!(limiter.paused_until().is_some());

    for task in tasks {
        task.await.unwrap();
    }
    let starts = starts.lock().unwrap().clone();
    assert_eq!(starts.len(), 64, "no waiter lost");
    let ids: Vec<_> = starts.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (0..64).collect::<Vec<_>>(), "FIFO across the pause");
    for (_, at) in &starts[3..] {
        assert!(
            *at >= pause_end,
            "a request started at {at:?}, during the pause"
        );
    }
    // After the pause, the rate holds: spacing of at least 100 ms.
    for pair in starts[3..].windows(2) {
        assert!(pair[1].1 - pair[0].1 >= Duration::from_millis(100));
    }
}

#[tokio::test(start_paused = true)]
async fn a_faster_quota_wakes_the_sleeping_head() {
    let t0 = Instant::now();
    let starts: Starts = Arc::default();
    let limiter = RateLimiter::new(Quota::per_minute(1).unwrap());
    let svc =
        RateLimitLayer::with_limiter(limiter.clone()).layer(recording_service(starts.clone(), t0));
    let tasks = spawn_waiters(&svc, 3).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        starts.lock().unwrap().len(),
        1,
        "the next slot is a minute away"
    );
    // The bucket owes 59/60 of a unit under the old quota; under 10/s that is 98.3 ms.
    limiter.set_quota(Quota::per_second(10).unwrap().with_burst(1).unwrap());
    for task in tasks {
        task.await.unwrap();
    }
    // tokio's timer fires on whole milliseconds, rounding deadlines up.
    let starts: Vec<_> = starts
        .lock()
        .unwrap()
        .iter()
        .map(|(_, at)| at.as_micros())
        .collect();
    assert_eq!(starts, vec![0, 1_099_000, 1_199_000]);
}

#[tokio::test(start_paused = true)]
async fn call_without_ready_is_an_error_not_a_panic() {
    let t0 = Instant::now();
    let mut svc = RateLimitLayer::new(Quota::per_second(1).unwrap())
        .layer(recording_service(Arc::default(), t0));
    let err = svc.call(1).await.unwrap_err();
    assert!(err.is::<tower_ratelimit_core::error::NotReady>());
    let mut pool = tower_ratelimit_core::ConcurrencyLimitLayer::new(1)
        .layer(recording_service(Arc::default(), t0));
    let err = pool.call(1).await.unwrap_err();
    assert!(err.is::<tower_ratelimit_core::error::NotReady>());
}

#[tokio::test(start_paused = true)]
async fn a_cost_above_the_burst_fails_at_once_in_both_modes() {
    let t0 = Instant::now();
    let quota = Quota::per_second(10).unwrap().with_burst(3).unwrap();
    for layer in [
        RateLimitLayer::new(quota),
        RateLimitLayer::new(quota).reject(),
    ] {
        let mut svc = layer
            .cost(|n: &usize| *n as u64)
            .layer(recording_service(Arc::default(), t0));
        let err = svc.ready().await.unwrap().call(4).await.unwrap_err();
        assert!(
            err.is::<tower_ratelimit_core::error::CostTooLarge>(),
            "{err}"
        );
        assert_eq!(
            t0.elapsed(),
            Duration::ZERO,
            "no waiting for an impossible cost"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn wait_mode_costs_are_charged_as_debt() {
    let t0 = Instant::now();
    let starts: Starts = Arc::default();
    // 10 units per second, burst 10: a request of cost 10 empties the bucket, so the
    // next one waits for one unit to refill (100 ms), where without the debt it would
    // have started at once.
    let mut svc = RateLimitLayer::new(Quota::per_second(10).unwrap())
        .cost(|n: &usize| if *n == 0 { 10 } else { 1 })
        .layer(recording_service(starts.clone(), t0));
    svc.ready().await.unwrap().call(0).await.unwrap();
    svc.ready().await.unwrap().call(1).await.unwrap();
    let starts = starts.lock().unwrap().clone();
    assert_eq!(
        starts,
        vec![(0, Duration::ZERO), (1, Duration::from_millis(100))]
    );
}

#[tokio::test(start_paused = true)]
async fn a_heavy_request_waits_for_its_own_cost() {
    let t0 = Instant::now();
    let starts: Starts = Arc::default();
    // 10 per second, burst 10, every request costs 10: the first empties the full
    // bucket and starts at once; the second takes one unit after 100 ms and reserves
    // nine more, so it starts at 1 s (20 units by 1 s: B + D/T).
    let mut svc = RateLimitLayer::new(Quota::per_second(10).unwrap())
        .cost(|_: &usize| 10)
        .layer(recording_service(starts.clone(), t0));
    svc.ready().await.unwrap().call(0).await.unwrap();
    svc.ready().await.unwrap().call(1).await.unwrap();
    let starts = starts.lock().unwrap().clone();
    assert_eq!(
        starts,
        vec![(0, Duration::ZERO), (1, Duration::from_secs(1))]
    );
}

#[tokio::test(start_paused = true)]
async fn ready_clones_with_heavy_costs_start_at_the_rate() {
    let t0 = Instant::now();
    let starts: Starts = Arc::default();
    let svc = RateLimitLayer::new(Quota::per_second(10).unwrap())
        .cost(|_: &usize| 10)
        .layer(recording_service(starts.clone(), t0));
    // Ten clones made ready take the burst's ten units, one each; each call then
    // books its whole cost, so the clones start a second apart (ten units each at
    // 10/s), not all at once. The first gets back what its readiness unit still held;
    // the others do not, since the first's booking is the end of the debt by then
    // (given back, they started 0.9 s apart: 20 units within 0.9 s, one over).
    let mut clones: Vec<_> = (0..10).map(|_| svc.clone()).collect();
    for clone in clones.iter_mut() {
        clone.ready().await.unwrap();
    }
    let calls: Vec<_> = clones
        .iter_mut()
        .enumerate()
        .map(|(i, clone)| clone.call(i))
        .collect();
    for call in calls {
        call.await.unwrap();
    }
    let starts = starts.lock().unwrap().clone();
    let expected: Vec<_> = (0..10)
        .map(|i| (i, Duration::from_millis(900 + 1000 * i as u64)))
        .collect();
    assert_eq!(starts, expected);
}

#[tokio::test(start_paused = true)]
async fn timer_granularity_does_not_lower_the_rate() {
    // Intervals below tokio's 1 ms timer resolution: every wake-up of the queue's head
    // is late. Slots that fell due meanwhile belong to the queue, so 16 callers keep a
    // strict 1,500/s; above that the documented burst of rate / 1000 keeps the rate.
    for (rate, burst) in [(1_500u64, 1), (20_000, 20), (100_000, 100)] {
        let quota = Quota::per_second(rate).unwrap().with_burst(burst).unwrap();
        let limiter = RateLimiter::new(quota);
        let start = Instant::now();
        let per_task = 2 * rate / 16;
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        limiter.acquire(1).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let elapsed = start.elapsed();
        // The burst at once, then one per interval; the timer adds at most 1 ms.
        let units = 16 * per_task;
        let exact = quota.emission_interval() * (units - burst) as u32;
        assert!(
            elapsed >= exact && elapsed <= exact + Duration::from_millis(1),
            "{units} units at {rate}/s took {elapsed:?}, exactly {exact:?}"
        );
    }
}

/// Two hosts' wait-mode limiters over one worker pool of one permit: host A is paused
/// for 30 s with requests of its own waiting. Returns when host B's request started,
/// and when A's last one did.
async fn shared_pool_with_a_paused_host(a_queued_before_the_pause: bool) -> (Duration, Duration) {
    let t0 = Instant::now();
    let starts: Starts = Arc::default();
    let pool = tower_ratelimit_core::concurrency::ConcurrencyLimiter::new(1);
    let pooled = tower_ratelimit_core::ConcurrencyLimitLayer::with_limiter(pool.clone())
        .layer(recording_service(starts.clone(), t0));
    let quota = Quota::per_second(10).unwrap().with_burst(1).unwrap();
    let host_a = RateLimiter::new(quota);
    let svc_a = RateLimitLayer::with_limiter(host_a.clone()).layer(pooled.clone());
    // B's requests are numbered from 100.
    let svc_b = RateLimitLayer::new(quota).layer(pooled.map_request(|id: usize| id + 100));

    let mut tasks = vec![];
    if a_queued_before_the_pause {
        // A's first request takes the burst; the next two wait for slots.
        tasks.extend(spawn_waiters(&svc_a, 3).await);
        host_a.pause_for(Duration::from_secs(30));
    } else {
        host_a.pause_for(Duration::from_secs(30));
        tasks.extend(spawn_waiters(&svc_a, 2).await);
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    tasks.extend(spawn_waiters(&svc_b, 1).await);
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(pool.in_flight(), 0, "every permit given back");
    let starts = starts.lock().unwrap().clone();
    let b = starts
        .iter()
        .find(|(id, _)| *id == 100)
        .map(|(_, at)| *at)
        .expect("B started");
    let a_last = starts.iter().map(|(_, at)| *at).max().unwrap();
    (b, a_last)
}

#[tokio::test(start_paused = true)]
async fn a_paused_host_does_not_hold_a_shared_pool_permit() {
    let (b, a_last) = shared_pool_with_a_paused_host(false).await;
    assert_eq!(b, Duration::from_millis(1), "B starts at once");
    // A's two requests start after its pause: at 30 s and one interval later.
    assert_eq!(a_last, Duration::from_millis(30_100));
}

#[tokio::test(start_paused = true)]
async fn requests_waiting_for_a_slot_give_the_pool_back_when_their_host_pauses() {
    let (b, a_last) = shared_pool_with_a_paused_host(true).await;
    assert_eq!(b, Duration::from_millis(1), "B starts at once");
    assert_eq!(a_last, Duration::from_millis(30_100));
}

#[tokio::test(start_paused = true)]
async fn resume_releases_the_requests_waiting_out_a_pause() {
    let t0 = Instant::now();
    let starts: Starts = Arc::default();
    let pool = tower_ratelimit_core::concurrency::ConcurrencyLimiter::new(4);
    let limiter = RateLimiter::new(Quota::per_second(10).unwrap().with_burst(1).unwrap());
    let svc = RateLimitLayer::with_limiter(limiter.clone()).layer(
        tower_ratelimit_core::ConcurrencyLimitLayer::with_limiter(pool.clone())
            .layer(recording_service(starts.clone(), t0)),
    );
    limiter.pause_for(Duration::from_secs(60));
    let tasks = spawn_waiters(&svc, 3).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(pool.in_flight(), 0, "nothing held while paused");
    limiter.resume();
    for task in tasks {
        task.await.unwrap();
    }
    let starts = starts.lock().unwrap().clone();
    assert_eq!(
        starts,
        vec![
            (0, Duration::from_secs(1)),
            (1, Duration::from_millis(1_100)),
            (2, Duration::from_millis(1_200)),
        ],
        "in order, at the rate, from the resume"
    );
}

/// A per-host wait-mode rate layer stacked over a global one: requests that meet the
/// host's pause wait it out without polling the global layer, whose units they would
/// otherwise take and lose with the readiness they give back.
#[tokio::test(start_paused = true)]
async fn a_pause_takes_no_unit_of_a_rate_layer_inside() {
    let t0 = Instant::now();
    let starts: Starts = Arc::default();
    // Global: 3 per minute (a unit every 20 s once the burst of 3 is spent).
    let global = RateLimiter::new(Quota::per_minute(3).unwrap());
    let host = RateLimiter::new(Quota::per_second(10).unwrap().with_burst(1).unwrap());
    let svc = RateLimitLayer::with_limiter(host.clone())
        .layer(RateLimitLayer::with_limiter(global).layer(recording_service(starts.clone(), t0)));
    for task in spawn_waiters(&svc, 1).await {
        task.await.unwrap();
    }
    host.pause_for(Duration::from_secs(5));
    for task in spawn_waiters(&svc, 2).await {
        task.await.unwrap();
    }
    let starts: Vec<_> = starts.lock().unwrap().iter().map(|(_, at)| *at).collect();
    assert_eq!(
        starts,
        vec![
            Duration::ZERO,
            Duration::from_secs(5),
            Duration::from_millis(5_100)
        ]
    );
}

/// `services` clones of a 10/s (burst 1) service ask for a slot, before or after a 5 s
/// pause begins; a caller of `acquire` (id 100) comes 1 s into the pause. Returns
/// every start.
async fn services_and_a_later_caller_across_a_pause(
    services: usize,
    pause_first: bool,
) -> Vec<(usize, Duration)> {
    let t0 = Instant::now();
    let starts: Starts = Arc::default();
    let limiter = RateLimiter::new(Quota::per_second(10).unwrap().with_burst(1).unwrap());
    let svc =
        RateLimitLayer::with_limiter(limiter.clone()).layer(recording_service(starts.clone(), t0));
    if pause_first {
        limiter.pause_for(Duration::from_secs(5));
    }
    let mut tasks = spawn_waiters(&svc, services).await;
    if !pause_first {
        limiter.pause_for(Duration::from_secs(5));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (late, record) = (limiter.clone(), starts.clone());
    tasks.push(tokio::spawn(async move {
        late.acquire(1).await.unwrap();
        record.lock().unwrap().push((100, t0.elapsed()));
    }));
    for task in tasks {
        task.await.unwrap();
    }
    let starts = starts.lock().unwrap().clone();
    starts
}

/// Services that leave their places in line for a pause go back to them: a caller
/// of `acquire` that came during the pause does not overtake them.
#[tokio::test(start_paused = true)]
async fn waiters_of_a_pause_keep_their_places_in_line() {
    // 0 starts at once; 1 and 2 wait for their slots when the pause begins.
    let starts = services_and_a_later_caller_across_a_pause(3, false).await;
    let ids: Vec<_> = starts.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![0, 1, 2, 100]);
}

/// A store that answers `LATENCY` after it is asked, deciding then (as a server does
/// when the request arrives), and counts what it was asked for.
struct RemoteStore {
    inner: Arc<tower_ratelimit_core::store::MemoryStore>,
    asked_costs: Arc<Mutex<Vec<u64>>>,
}

const LATENCY: Duration = Duration::from_millis(10);

impl tower_ratelimit_core::store::RateStore for RemoteStore {
    type Future = BoxedAnswer;
    fn check(&self, _: &(), cost: u64) -> BoxedAnswer {
        self.asked_costs.lock().unwrap().push(cost);
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            tokio::time::sleep(LATENCY).await;
            inner.check_now(cost)
        })
    }
    fn peek(&self, _: &(), cost: u64) -> BoxedAnswer {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move { inner.peek_now(cost) })
    }
    fn reserve(&self, _: &(), cost: u64, max_wait: Duration) -> BoxedAnswer {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move { inner.reserve_now(cost, max_wait) })
    }
    fn quota(&self, _: &()) -> Quota {
        tower_ratelimit_core::store::RateStore::quota(&*self.inner, &())
    }
    fn set_quota(&self, quota: Quota) {
        tower_ratelimit_core::store::RateStore::set_quota(&*self.inner, quota)
    }
}

/// With a remote store, waiting out a pause costs no round trip: the first request
/// starts one round trip after the pause ends, the rest in order, and a request that
/// came later goes last.
#[tokio::test(start_paused = true)]
async fn a_pause_costs_a_remote_store_no_round_trip() {
    let t0 = Instant::now();
    let starts: Starts = Arc::default();
    let asked_costs = Arc::new(Mutex::new(Vec::new()));
    let limiter = RateLimiter::from_store(RemoteStore {
        inner: Arc::new(tower_ratelimit_core::store::MemoryStore::new(
            Quota::per_second(1000).unwrap(),
        )),
        asked_costs: Arc::clone(&asked_costs),
    });
    let svc =
        RateLimitLayer::with_limiter(limiter.clone()).layer(recording_service(starts.clone(), t0));
    limiter.pause_for(Duration::from_secs(1));
    let mut tasks = spawn_waiters(&svc, 10).await;
    tokio::time::sleep_until(t0 + Duration::from_millis(1_005)).await;
    let late = svc.clone().map_request(|id: usize| id + 100);
    tasks.extend(spawn_waiters(&late, 1).await);
    for task in tasks {
        task.await.unwrap();
    }
    assert!(
        !asked_costs.lock().unwrap().contains(&0),
        "no store call for a pause"
    );
    let starts = starts.lock().unwrap().clone();
    assert_eq!(starts[0].1, Duration::from_millis(1_010));
    let ids: Vec<_> = starts.iter().map(|(id, _)| *id).collect();
    let mut expected: Vec<_> = (0..10).collect();
    expected.push(100);
    assert_eq!(ids, expected);
}

#[tokio::test(start_paused = true)]
async fn until_unpaused_follows_extensions_and_resume() {
    let limiter = RateLimiter::new(Quota::per_second(10).unwrap());
    let t0 = Instant::now();
    limiter.until_unpaused().await;
    assert_eq!(t0.elapsed(), Duration::ZERO, "not paused: at once");

    limiter.pause_for(Duration::from_secs(1));
    let extender = limiter.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        extender.pause_for(Duration::from_secs(2)); // now until 2.5 s
    });
    limiter.until_unpaused().await;
    assert_eq!(t0.elapsed(), Duration::from_millis(2_500));

    limiter.pause_for(Duration::from_secs(60));
    let resumer = limiter.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        resumer.resume();
    });
    limiter.until_unpaused().await;
    assert_eq!(t0.elapsed(), Duration::from_millis(3_500));
    assert_eq!(
        limiter.snapshot().await.unwrap().remaining,
        10,
        "nothing taken"
    );
}

/// A request whose `call` had begun when its host paused (here: waiting for the rest
/// of a cost of 3, reserved until 300 ms) gives the shared pool back for the pause, and
/// takes a permit again when the pause ends.
#[tokio::test(start_paused = true)]
async fn a_request_reserving_its_cost_gives_the_pool_back_for_a_pause() {
    let t0 = Instant::now();
    let starts: Starts = Arc::default();
    let pool = tower_ratelimit_core::concurrency::ConcurrencyLimiter::new(1);
    let pooled = tower_ratelimit_core::ConcurrencyLimitLayer::with_limiter(pool.clone())
        .layer(recording_service(starts.clone(), t0));
    let host_a = RateLimiter::new(Quota::per_second(10).unwrap().with_burst(3).unwrap());
    let svc_a = RateLimitLayer::with_limiter(host_a.clone())
        .cost(|_: &usize| 3)
        .layer(pooled.clone());
    let svc_b = RateLimitLayer::new(Quota::per_second(10).unwrap())
        .layer(pooled.map_request(|id: usize| id + 100));
    // A's first request takes the burst; its second takes a unit at 100 ms and waits
    // for the other two until 300 ms, holding the permit meanwhile.
    let mut tasks = spawn_waiters(&svc_a, 2).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    host_a.pause_for(Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(pool.in_flight(), 0, "nothing held through the pause");
    tasks.extend(spawn_waiters(&svc_b, 1).await);
    for task in tasks {
        task.await.unwrap();
    }
    let starts = starts.lock().unwrap().clone();
    assert_eq!(
        starts,
        vec![
            (0, Duration::ZERO),
            (100, Duration::from_millis(350)),
            (1, Duration::from_millis(30_150)),
        ]
    );
}

/// With a burst of one, no two requests start within one interval after a pause, also
/// when a caller of `acquire` waited through it (it must not take a slot from inside
/// the pause).
#[tokio::test(start_paused = true)]
async fn no_two_starts_within_an_interval_after_a_pause() {
    let starts = services_and_a_later_caller_across_a_pause(1, true).await;
    let mut at: Vec<_> = starts.iter().map(|(_, at)| *at).collect();
    at.sort();
    assert_eq!(
        at,
        vec![Duration::from_secs(5), Duration::from_millis(5_100)]
    );
}

/// `resume` releases requests their response futures hold through a pause: one
/// granted just before it, and one waiting for the rest of a cost of 3.
#[tokio::test(start_paused = true)]
async fn resume_releases_requests_held_by_their_response_futures() {
    let t0 = Instant::now();
    let starts: Starts = Arc::default();
    let limiter = RateLimiter::new(Quota::per_second(10).unwrap().with_burst(3).unwrap());
    let mut granted =
        RateLimitLayer::with_limiter(limiter.clone()).layer(recording_service(starts.clone(), t0));
    granted.ready().await.unwrap();
    let heavy = RateLimitLayer::with_limiter(limiter.clone())
        .cost(|_: &usize| 3)
        .layer(recording_service(starts.clone(), t0).map_request(|id: usize| id + 10));
    // The heavy request takes a unit at once and reserves two more, due at 100 ms.
    let mut tasks = spawn_waiters(&heavy, 1).await;
    limiter.pause_for(Duration::from_secs(60));
    tasks.push(tokio::spawn(async move {
        granted.call(0).await.unwrap();
    }));
    tokio::time::sleep_until(t0 + Duration::from_secs(1)).await;
    limiter.resume();
    for task in tasks {
        task.await.unwrap();
    }
    let mut starts = starts.lock().unwrap().clone();
    starts.sort();
    // Both are booked again at the resume, on a full bucket of 3: 1 + 3 units do not
    // all fit, so the heavy one waits one interval.
    assert_eq!(
        starts,
        vec![
            (0, Duration::from_secs(1)),
            (10, Duration::from_millis(1_100))
        ]
    );
}

/// A request held through a pause by its response future, waiting in a shared pool's
/// queue when a second pause begins, gives back the permit the pool hands it.
#[tokio::test(start_paused = true)]
async fn a_held_request_gives_the_pool_back_through_a_second_pause() {
    let t0 = Instant::now();
    let starts: Starts = Arc::default();
    let pool = tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(Arc::new(
        tokio::sync::Semaphore::new(1),
    ));
    let host_a = RateLimiter::new(Quota::per_second(100).unwrap());
    let slow = |log: Starts| {
        service_fn(move |id: usize| {
            log.lock().unwrap().push((id, t0.elapsed()));
            async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                Ok::<_, std::convert::Infallible>(())
            }
        })
    };
    let mut svc_a = RateLimitLayer::with_limiter(host_a.clone())
        .layer(pool.layer(recording_service(starts.clone(), t0)));
    let svc_b = RateLimitLayer::new(Quota::per_second(100).unwrap())
        .layer(pool.layer(slow(starts.clone())));
    // A's request is granted, then held through a 1 s pause; B's first request holds
    // the permit from 0 to 2 s, so A's waits for it when its pause ends.
    svc_a.ready().await.unwrap();
    host_a.pause_for(Duration::from_secs(1));
    let held = tokio::spawn(svc_a.call(0));
    tokio::task::yield_now().await;
    let mut tasks = spawn_waiters(&svc_b.clone().map_request(|id: usize| id + 100), 1).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    host_a.pause_for(Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(600)).await;
    tasks.extend(spawn_waiters(&svc_b.map_request(|id: usize| id + 200), 1).await);
    for task in tasks {
        task.await.unwrap();
    }
    held.await.unwrap().unwrap();
    let starts = starts.lock().unwrap().clone();
    assert_eq!(
        starts,
        vec![
            (100, Duration::ZERO),
            (200, Duration::from_millis(2_100)),
            (0, Duration::from_millis(61_500)),
        ]
    );
}
