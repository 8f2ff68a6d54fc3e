//! `reserve_whole` on the GCRA script: the part of the readiness units that time has
//! not refilled (less the slack for the client's age) comes off the TAT, and the
//! whole cost is booked, in one call; nothing comes back for units taken before the
//! quota changed or granted by the failure policy. Through the core's layers (a pause
//! that holds requests, a quota change meanwhile) and call by call, with hostile
//! arguments.
//!
//! Real redis-server, real clock (Redis keeps its own). The call-by-call cases use an
//! emission interval of 10 s or more, so the milliseconds a loaded machine adds to a
//! call move no result across its bound; the layer cases keep margins of 50 ms or
//! more.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::RedisServer;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};
use tower_ratelimit_core::error::{BoxError, StoreError};
use tower_ratelimit_core::store::{Decision, RateStore};
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};
use tower_ratelimit_redis::breaker::BreakerConfig;
use tower_ratelimit_redis::{FailurePolicy, RedisStore};

/// The readiness units' slack is twice this.
const TIMEOUT: Duration = Duration::from_millis(200);

type Starts = Arc<Mutex<Vec<Duration>>>;

/// The most starts within any span of `span`.
fn most_within(starts: &[Duration], span: Duration) -> usize {
    starts
        .iter()
        .map(|&from| {
            starts
                .iter()
                .filter(|&&at| at >= from && at < from + span)
                .count()
        })
        .max()
        .unwrap_or(0)
}

struct Layered {
    t0: Instant,
    starts: Starts,
    limiter: RateLimiter<RedisStore>,
    service: tower::util::BoxCloneService<(), (), BoxError>,
}

/// A rate layer over a GCRA store of 2 per second, burst 2 (at most 2 + ⌊D / 500 ms⌋
/// starts within any D), that logs when each request starts. `weighted`: with a cost
/// closure (of 1), so the layer knows when readiness took its unit.
fn layered(server: &RedisServer, prefix: &str, weighted: bool) -> Layered {
    let quota = Quota::per_second(2).expect("quota");
    let store = RedisStore::builder(quota)
        .prefix(prefix)
        // Long, so a loaded machine never hands a call to the failure policy.
        .timeout(Duration::from_secs(2))
        .negative_cache(0)
        .connect(server.url())
        .expect("store");
    let limiter = RateLimiter::from_store(store);
    let t0 = Instant::now();
    let starts: Starts = Arc::default();
    let log = Arc::clone(&starts);
    let inner = tower::service_fn(move |()| {
        log.lock().expect("lock").push(t0.elapsed());
        async { Ok::<_, BoxError>(()) }
    });
    let layer = RateLimitLayer::with_limiter(limiter.clone());
    let service = if weighted {
        tower::util::BoxCloneService::new(layer.cost(|_: &()| 1u64).layer(inner))
    } else {
        tower::util::BoxCloneService::new(layer.layer(inner))
    };
    Layered {
        t0,
        starts,
        limiter,
        service,
    }
}

fn sorted(starts: &Starts) -> Vec<Duration> {
    let mut starts = starts.lock().expect("lock").clone();
    starts.sort();
    starts
}

/// Two requests take the burst, then a pause shorter than one interval holds them.
/// Their units are still in the TAT when it ends: booking only what the pause
/// refilled (⌊400 / 500⌋ = 0 units) let both start on them at 400 ms and a fresh
/// request 100 ms later: 3 within 100 ms on a burst of 2.
#[tokio::test]
async fn a_pause_shorter_than_an_interval_does_not_let_held_requests_start_on_owed_units() {
    let server = RedisServer::start();
    let Layered {
        t0,
        starts,
        limiter,
        service,
    } = layered(&server, "short-pause:", true);
    let mut ready = Vec::new();
    for _ in 0..2 {
        let mut held = service.clone();
        held.ready().await.expect("ready");
        ready.push(held);
    }
    let pause = Duration::from_millis(400);
    limiter.pause_for(pause);
    let mut requests: Vec<_> = ready
        .into_iter()
        .map(|mut held| tokio::spawn(held.call(())))
        .collect();
    tokio::time::sleep_until(t0 + pause + Duration::from_millis(20)).await;
    requests.push(tokio::spawn(service.clone().oneshot(())));
    for request in requests {
        request.await.expect("task").expect("request");
    }
    let starts = sorted(&starts);
    assert_eq!(starts.len(), 3);
    assert!(starts[0] >= pause, "{starts:?}");
    // 2 + ⌊D / 500 ms⌋: two starts at most within 450 ms.
    assert!(
        most_within(&starts, Duration::from_millis(450)) <= 2,
        "{starts:?}"
    );
}

/// An unweighted service made ready at 0 and called at 1 s during a 100 ms pause:
/// the layer does not know when readiness took its unit, so none is given back and
/// the request pays its unit again at the pause's end. Given back as of the call
/// (1 s), the unit the bucket refilled at 500 ms came back: it started at once with
/// the two fresh requests.
#[tokio::test]
async fn an_unweighted_request_ready_long_before_a_pause_pays_its_unit_again() {
    let server = RedisServer::start();
    let Layered {
        t0,
        starts,
        limiter,
        service,
    } = layered(&server, "unweighted-pause:", false);
    let mut early = service.clone();
    early.ready().await.expect("ready");
    tokio::time::sleep_until(t0 + Duration::from_millis(1_000)).await;
    limiter.pause_for(Duration::from_millis(100));
    let held = early.call(());
    tokio::time::sleep_until(t0 + Duration::from_millis(1_120)).await;
    for _ in 0..2 {
        service.clone().oneshot(()).await.expect("fresh");
    }
    held.await.expect("held");
    let starts = sorted(&starts);
    assert_eq!(starts.len(), 3);
    assert!(
        most_within(&starts, Duration::from_millis(450)) <= 2,
        "{starts:?}"
    );
}

/// A weighted request's unit taken at 0 under 2/s was refilled by 500 ms; at 550 ms
/// the quota drops to 2 per 10 s (5 s a unit), and the pause holding the request
/// ends at 600 ms. Priced at the new interval, its unit looked unspent (a refill of
/// ⌊600 ms / 5 s⌋ = 0 units), so it booked nothing and started with two fresh
/// requests: 3 within 50 ms where 2 + ⌊D / 5 s⌋ allows 2.
#[tokio::test]
async fn a_quota_lowered_while_a_request_is_held_gives_nothing_back() {
    let server = RedisServer::start();
    let Layered {
        t0,
        starts,
        limiter,
        service,
    } = layered(&server, "quota-pause:", true);
    let mut early = service.clone();
    early.ready().await.expect("ready");
    limiter.pause_for(Duration::from_millis(600));
    let held = tokio::spawn(early.call(()));
    tokio::time::sleep_until(t0 + Duration::from_millis(550)).await;
    limiter.set_quota(Quota::new(2, Duration::from_secs(10)).expect("quota"));
    tokio::time::sleep_until(t0 + Duration::from_millis(650)).await;
    let fresh: Vec<_> = (0..2)
        .map(|_| tokio::spawn(service.clone().oneshot(())))
        .collect();
    // The held request and one fresh one start now; the other fresh one waits ~5 s.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let starts = sorted(&starts);
    held.abort();
    for request in fresh {
        request.abort();
    }
    assert_eq!(starts.len(), 2, "{starts:?}");
}

fn store(server: &RedisServer, prefix: &str, quota: Quota) -> RedisStore {
    RedisStore::builder(quota)
        .prefix(prefix)
        .negative_cache(0)
        .timeout(TIMEOUT)
        .connect(server.url())
        .expect("store")
}

/// Takes `cost` units of `key` now, as a readiness check does; when it was taken.
async fn take(store: &RedisStore, key: &str, cost: u64) -> Instant {
    let decision = store.check(key, cost).await;
    assert!(
        matches!(decision, Ok(Decision::Allowed { wait, .. }) if wait.is_zero()),
        "readiness: {decision:?}"
    );
    Instant::now()
}

fn wait(decision: &Result<Decision, StoreError>) -> Duration {
    match decision {
        Ok(Decision::Allowed { wait, .. }) => *wait,
        other => panic!("not admitted: {other:?}"),
    }
}

fn retry_after(decision: &Result<Decision, StoreError>) -> Duration {
    match decision {
        Ok(Decision::Denied { retry_after, .. }) => *retry_after,
        other => panic!("not denied: {other:?}"),
    }
}

/// Call by call, with 10 s a unit (2 per 20 s): two units taken at 0 and booked whole
/// at 1 s. The first gives back what the TAT still holds of its unit, 10 s - 1 s - the
/// slack (up to 0.4 s), and starts within a second; its slot is then the slack ahead,
/// a sleeping booking, so the second gives back nothing while it sleeps and starts a
/// unit later or more (about 10 s; the core's in-memory GCRA, with no slack, gives
/// back both: 1 s and 2 s). The next unit is free a full interval after the first
/// start. Left in the TAT and booked over (⌊1 s / 10 s⌋ = 0 units refilled, so nothing
/// booked), both started at 1 s and the next unit was free at 10 s: 3 within 9 s on a
/// burst of 2.
#[tokio::test]
async fn units_still_in_the_tat_are_given_back_and_booked_again() {
    let server = RedisServer::start();
    let store = store(
        &server,
        "tat:",
        Quota::new(2, Duration::from_secs(20)).expect("quota"),
    );
    let key = "k";
    let taken_at = take(&store, key, 1).await;
    take(&store, key, 1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let first = store
        .reserve_whole(key, 1, taken_at, 1, Duration::MAX)
        .await;
    let second = store
        .reserve_whole(key, 1, taken_at, 1, Duration::MAX)
        .await;
    let next = store.check(key, 1).await;
    let (first, second, next) = (wait(&first), wait(&second), retry_after(&next));
    // Given back: under 0.4 s (plus the calls' time), then nothing (about 10 s) or,
    // if the first's slot came due first, 1.8 s; nothing given back: 9 s.
    assert!(first < Duration::from_secs(2), "first waits {first:?}");
    assert!(
        second > first + Duration::from_secs(1),
        "{first:?}, {second:?}"
    );
    assert!(
        next >= first + Duration::from_secs(10),
        "next unit in {next:?}, first start in {first:?}"
    );
}

/// A unit taken at 0 under 2/s (refilled at 500 ms); at 600 ms two fresh units take
/// the burst and the quota drops to 2 per 20 s (10 s a unit). The held request's
/// unit was priced at the old interval, so nothing of it comes back: it waits a full
/// new interval. Priced at the new one, 9 s of the fresh units' booking came back
/// (it waited 1 s); counting refills at the new interval booked nothing (it started
/// at once: 3 at once on a burst of 2).
#[tokio::test]
async fn units_taken_before_a_quota_change_are_not_given_back() {
    let server = RedisServer::start();
    let store = store(&server, "changed:", Quota::per_second(2).expect("quota"));
    let key = "k";
    let taken_at = take(&store, key, 1).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    take(&store, key, 2).await;
    RateStore::<str>::set_quota(
        &store,
        Quota::new(2, Duration::from_secs(20)).expect("quota"),
    );
    let held = store
        .reserve_whole(key, 1, taken_at, 1, Duration::MAX)
        .await;
    let held = wait(&held);
    assert!(
        held >= Duration::from_secs(9),
        "the held request waits {held:?}"
    );
    // A unit taken after the change is given back as usual.
    let taken_at = take(&store, "after", 1).await;
    let whole = store
        .reserve_whole("after", 1, taken_at, 2, Duration::MAX)
        .await;
    assert!(wait(&whole) < Duration::from_secs(2), "{whole:?}");
}

/// A readiness unit the failure policy granted (Redis did not answer in time) was
/// never taken in Redis, so nothing of it comes off the TAT when Redis answers again:
/// the request books its whole cost on top of the full bucket.
#[tokio::test]
async fn a_unit_granted_by_the_failure_policy_is_not_given_back() {
    let server = RedisServer::start();
    let store = RedisStore::builder(Quota::new(1, Duration::from_secs(10)).expect("quota"))
        .prefix("policy:")
        .negative_cache(0)
        .timeout(TIMEOUT)
        .failure_policy(FailurePolicy::FailOpen)
        // One timeout must not open the breaker: the next call goes to Redis.
        .breaker(BreakerConfig {
            failures_to_open: 100,
            open_for: Duration::from_millis(10),
        })
        .connect(server.url())
        .expect("store");
    take(&store, "k", 1).await;
    server.freeze();
    let granted = store.check("k", 1).await;
    let taken_at = Instant::now();
    server.thaw();
    assert!(
        matches!(granted, Ok(Decision::Allowed { .. })),
        "fail open: {granted:?}"
    );
    assert_eq!(store.stats().policy_decisions, 1);
    // Given back, 10 s - 0.4 s came off the TAT and the request waited ~0.4 s.
    let whole = store
        .reserve_whole("k", 1, taken_at, 1, Duration::from_secs(2))
        .await;
    assert!(
        matches!(whole, Ok(Decision::Denied { retry_after, .. }) if retry_after >= Duration::from_secs(9)),
        "a unit granted by the policy came off the TAT: {whole:?}"
    );
}

/// Hostile arguments never panic and never give back more than a check can have
/// taken (the burst) or more than the TAT holds: `taken` = u64::MAX, a `taken_at`
/// long ago or ahead, `taken` = 0, cost 0 (the request costs nothing: its unit comes
/// back) and a cost above the burst.
#[tokio::test]
async fn hostile_arguments_give_back_at_most_what_a_check_can_hold() {
    let server = RedisServer::start();
    // 2 per 20 s: 10 s a unit, capacity 20 s.
    let store = store(
        &server,
        "hostile:",
        Quota::new(2, Duration::from_secs(20)).expect("quota"),
    );

    // The burst taken and 2 units booked ahead (20 s of debt beyond the capacity's
    // 20 s): u64::MAX units claimed give back at most the burst, 20 s less the slack.
    let taken_at = take(&store, "max", 2).await;
    let ahead = store.reserve("max", 2, Duration::MAX).await;
    assert!(wait(&ahead) >= Duration::from_secs(19), "{ahead:?}");
    let whole = store
        .reserve_whole("max", u64::MAX, taken_at, 1, Duration::MAX)
        .await;
    let whole = wait(&whole);
    assert!(
        whole >= Duration::from_secs(10),
        "u64::MAX units gave back more than the burst: waits {whole:?}"
    );

    // Taken a minute ago: all refilled, nothing given back, the whole cost booked
    // beyond the full bucket.
    let taken_now = take(&store, "old", 2).await;
    let long_ago = taken_now
        .checked_sub(Duration::from_secs(60))
        .expect("an instant a minute back");
    let whole = store
        .reserve_whole("old", 1, long_ago, 1, Duration::MAX)
        .await;
    assert!(wait(&whole) >= Duration::from_secs(9), "{whole:?}");

    // Nothing taken: the whole cost on top.
    take(&store, "none", 2).await;
    let whole = store
        .reserve_whole("none", 0, Instant::now(), 1, Duration::MAX)
        .await;
    assert!(wait(&whole) >= Duration::from_secs(9), "{whole:?}");

    // Taken "an hour from now": an age of 0, so the unit less the slack comes back
    // (9.6 s of 40 s owed), no more.
    let taken_at = take(&store, "ahead", 2).await;
    store
        .reserve("ahead", 2, Duration::MAX)
        .await
        .expect("booked ahead");
    let whole = store
        .reserve_whole(
            "ahead",
            1,
            taken_at + Duration::from_secs(3600),
            1,
            Duration::MAX,
        )
        .await;
    let whole = wait(&whole);
    assert!(whole >= Duration::from_millis(19_500), "waits {whole:?}");

    // Cost 0: the request costs nothing, so the unit its readiness took comes back
    // (but the slack): the next unit is free in well under a unit's time.
    let taken_at = take(&store, "free", 2).await;
    let whole = store
        .reserve_whole("free", 1, taken_at, 0, Duration::MAX)
        .await;
    assert!(wait(&whole).is_zero(), "{whole:?}");
    let next = store.check("free", 1).await;
    assert!(
        retry_after(&next) < Duration::from_secs(2),
        "a request of cost 0 kept its readiness unit: {next:?}"
    );

    // Above the burst: an error at once, whatever was taken.
    let too_large = store
        .reserve_whole("free", u64::MAX, taken_at, u64::MAX, Duration::MAX)
        .await;
    assert!(
        matches!(too_large, Err(StoreError::CostTooLarge(_))),
        "{too_large:?}"
    );
}

/// Weighted requests called at once pay their cost and a few round trips, not a
/// unit more: with a slack of twice the timeout (100 ms by default), at 10/s every
/// readiness unit stayed spent, and 5 requests of cost 2 (10 units, a burst of 2)
/// took 1.3 s instead of 0.8 s.
#[tokio::test]
async fn weighted_requests_called_at_once_pay_their_cost() {
    let server = RedisServer::start();
    let quota = Quota::per_second(10)
        .and_then(|q| q.with_burst(2))
        .expect("quota");
    let store = RedisStore::builder(quota)
        .prefix("weighted-at-once:")
        .negative_cache(0)
        .connect(server.url())
        .expect("store");
    let mut service = RateLimitLayer::with_limiter(RateLimiter::from_store(store))
        .cost(|cost: &u64| *cost)
        .layer(tower::service_fn(|_: u64| async { Ok::<_, BoxError>(()) }));
    let start = Instant::now();
    for _ in 0..5 {
        service
            .ready()
            .await
            .expect("ready")
            .call(2)
            .await
            .expect("call");
    }
    let took = start.elapsed();
    // 8 units after the burst, 100 ms each; the bound leaves 250 ms for a loaded
    // machine's timers and calls, half the unit a request overpaid each time.
    assert!(took >= Duration::from_millis(790), "{took:?}");
    assert!(took < Duration::from_millis(1_050), "{took:?}");
}
