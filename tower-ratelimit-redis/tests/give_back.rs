//! `reserve_whole` on the window scripts, call by call, against a real `redis-server`:
//! the units a wait-mode request's readiness took are given back where they are still
//! held (a fixed window's stored window; a sliding counter's current count, or its
//! previous count once the next window began), and nowhere else: not from a window
//! they were not taken in, not when they may have been taken in the one before (near
//! a boundary), not more than the window holds, and not when the failure policy,
//! not Redis, granted them.
//!
//! Real time (Redis keeps its own clock): each case waits for a known offset into a
//! window of one second, and retries when a loaded machine made it miss that offset.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::RedisServer;
use tokio::time::Instant;
use tower_ratelimit_core::error::StoreError;
use tower_ratelimit_core::store::{Decision, RateStore};
use tower_ratelimit_core::Quota;
use tower_ratelimit_redis::breaker::BreakerConfig;
use tower_ratelimit_redis::{FailurePolicy, RedisStore, RemoteAlgorithm};

const SECOND: u128 = 1_000_000;
const WINDOWS: [RemoteAlgorithm; 2] =
    [RemoteAlgorithm::FixedWindow, RemoteAlgorithm::SlidingWindow];
/// Units taken less than twice this far into a window are not given back.
const TIMEOUT: Duration = Duration::from_millis(200);

fn unix_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_micros()
}

/// Sleeps until `offset` into the next window of one second.
async fn into_next_window(offset: Duration) {
    let now = unix_micros();
    let target = (now / SECOND + 1) * SECOND + offset.as_micros();
    tokio::time::sleep(Duration::from_micros((target - now) as u64)).await;
}

fn store(server: &RedisServer, algorithm: RemoteAlgorithm, count: u64) -> RedisStore {
    RedisStore::builder(Quota::new(count, Duration::from_secs(1)).expect("quota"))
        .prefix(format!("give-back:{algorithm:?}:"))
        .algorithm(algorithm)
        .negative_cache(0)
        .timeout(TIMEOUT)
        .connect(server.url())
        .expect("store")
}

fn now_without_waiting(decision: &Result<Decision, StoreError>) -> bool {
    matches!(decision, Ok(Decision::Allowed { wait, .. }) if wait.is_zero())
}

/// Takes one unit of `key` now, as a readiness check does; when it was taken.
async fn take_one(store: &RedisStore, key: &str) -> Instant {
    let decision = store.check(key, 1).await;
    assert!(now_without_waiting(&decision), "readiness unit");
    Instant::now()
}

/// Runs `case` (which returns whether its timing held) up to 5 times.
async fn with_retries<F, Fut>(what: &str, mut case: F)
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for attempt in 0..5 {
        if case(attempt).await {
            return;
        }
    }
    panic!("{what}: the machine never met the timing in 5 attempts");
}

/// A unit taken well inside the current window is given back before the whole cost
/// is booked: a request of 2 on a window of 2 whose readiness took 1 starts now, and
/// the window is then full (2, not 1 or 3). Left spent, the request had to wait.
#[tokio::test]
async fn a_unit_taken_in_this_window_is_given_back() {
    let server = RedisServer::start();
    for algorithm in WINDOWS {
        let store = store(&server, algorithm, 2);
        with_retries("in-window give-back", |attempt| {
            let store = store.clone();
            async move {
                let key = format!("here:{attempt}");
                into_next_window(Duration::from_millis(600)).await;
                let window = unix_micros() / SECOND;
                let taken_at = take_one(&store, &key).await;
                let whole = store
                    .reserve_whole(&key[..], 1, taken_at, 2, Duration::ZERO)
                    .await;
                let then = store.check(&key[..], 1).await;
                if unix_micros() / SECOND != window {
                    return false;
                }
                assert!(
                    now_without_waiting(&whole),
                    "{algorithm:?}: the readiness unit stayed spent"
                );
                assert!(
                    matches!(then, Ok(Decision::Denied { .. })),
                    "{algorithm:?}: the window held less than 2 after the request: {then:?}"
                );
                true
            }
        })
        .await;
    }
}

/// The sliding counter gives a unit back from the previous count once the next
/// window began: taken at 0.9 s, given back at 1.6 s, so a request of 2 starts at
/// once (left spent, 40 % of it still weighed and the request waited). A claim of 3
/// units where the previous count holds 1 gets nothing back.
#[tokio::test]
async fn the_sliding_counter_gives_back_from_the_previous_count_what_it_holds() {
    let server = RedisServer::start();
    let store = store(&server, RemoteAlgorithm::SlidingWindow, 2);
    with_retries("previous-window give-back", |attempt| {
        let store = store.clone();
        async move {
            let (key, claim) = (format!("prev:{attempt}"), format!("prev-claim:{attempt}"));
            into_next_window(Duration::from_millis(900)).await;
            let window = unix_micros() / SECOND;
            let taken_at = take_one(&store, &key).await;
            let claim_taken_at = take_one(&store, &claim).await;
            if unix_micros() / SECOND != window {
                return false;
            }
            into_next_window(Duration::from_millis(600)).await;
            let whole = store
                .reserve_whole(&key[..], 1, taken_at, 2, Duration::ZERO)
                .await;
            let then = store.check(&key[..], 1).await;
            let claimed = store
                .reserve_whole(&claim[..], 3, claim_taken_at, 2, Duration::ZERO)
                .await;
            if unix_micros() / SECOND != window + 1 {
                return false;
            }
            assert!(now_without_waiting(&whole), "the unit stayed spent");
            assert!(
                matches!(then, Ok(Decision::Denied { .. })),
                "the window held less than 2 after the request: {then:?}"
            );
            assert!(
                matches!(claimed, Ok(Decision::Denied { .. })),
                "3 units came out of a previous count of 1: {claimed:?}"
            );
            true
        }
    })
    .await;
}

/// A unit taken in the previous window is not given back from the fixed window's
/// new one, which holds another request's unit: a request of 2 then does not fit.
#[tokio::test]
async fn a_unit_taken_in_the_previous_window_is_not_given_back_from_this_one() {
    let server = RedisServer::start();
    let store = store(&server, RemoteAlgorithm::FixedWindow, 2);
    with_retries("previous window", |attempt| {
        let store = store.clone();
        async move {
            let key = format!("before:{attempt}");
            into_next_window(Duration::from_millis(900)).await;
            let window = unix_micros() / SECOND;
            let taken_at = take_one(&store, &key).await;
            if unix_micros() / SECOND != window {
                return false;
            }
            into_next_window(Duration::from_millis(600)).await;
            take_one(&store, &key).await;
            let whole = store
                .reserve_whole(&key[..], 1, taken_at, 2, Duration::ZERO)
                .await;
            if unix_micros() / SECOND != window + 1 {
                return false;
            }
            assert!(
                matches!(whole, Ok(Decision::Denied { .. })),
                "a unit of the window before came out of this one: {whole:?}"
            );
            true
        }
    })
    .await;
}

/// Near a boundary the client cannot tell which window a unit was taken in (its age
/// is short of the truth by up to two calls): a unit taken 20 ms into a window is
/// not given back, on either script.
#[tokio::test]
async fn a_unit_taken_just_after_a_boundary_is_not_given_back() {
    let server = RedisServer::start();
    for algorithm in WINDOWS {
        let store = store(&server, algorithm, 2);
        with_retries("boundary", |attempt| {
            let store = store.clone();
            async move {
                let key = format!("edge:{attempt}");
                into_next_window(Duration::from_millis(20)).await;
                let window = unix_micros() / SECOND;
                let taken_at = take_one(&store, &key).await;
                let whole = store
                    .reserve_whole(&key[..], 1, taken_at, 2, Duration::ZERO)
                    .await;
                // Well within twice the timeout (400 ms) of the boundary.
                let late = unix_micros() - window * SECOND > 300_000;
                if late {
                    return false;
                }
                assert!(
                    matches!(whole, Ok(Decision::Denied { .. })),
                    "{algorithm:?}: a unit within the slack of a boundary was given back: {whole:?}"
                );
                true
            }
        })
        .await;
    }
}

/// Hostile arguments give back nothing that was not taken in the window and never
/// panic: `taken` above what the window holds, an age of almost two windows,
/// `taken` = 0, and extremes (u64::MAX units, a `taken_at` an hour ahead).
#[tokio::test]
async fn hostile_arguments_give_back_nothing_that_was_not_taken() {
    let server = RedisServer::start();
    for algorithm in WINDOWS {
        let store = store(&server, algorithm, 3);
        with_retries("hostile", |attempt| {
            let store = store.clone();
            async move {
                into_next_window(Duration::from_millis(500)).await;
                let window = unix_micros() / SECOND;
                let key = |case: &str| format!("hostile:{case}:{attempt}");

                // Holds 1, claims 3 were taken: nothing given back, 1 + 2 = 3.
                let more = key("more");
                let taken_at = take_one(&store, &more).await;
                let whole = store.reserve_whole(&more[..], 3, taken_at, 2, Duration::ZERO);
                let more_whole = whole.await;
                let more_then = store.check(&more[..], 1).await;

                // Taken 1.9 s ago by its own account (0.6 s into the window before
                // last, clear of the slack): no window the key holds.
                let old = key("old");
                let taken_at = take_one(&store, &old).await;
                let long_ago = taken_at
                    .checked_sub(Duration::from_millis(1900))
                    .expect("an instant 1.9 s back");
                let whole = store.reserve_whole(&old[..], 1, long_ago, 2, Duration::ZERO);
                let old_whole = whole.await;
                let old_then = store.check(&old[..], 1).await;

                // Nothing taken: the whole cost is booked on top.
                let none = key("none");
                let taken_at = take_one(&store, &none).await;
                let whole = store.reserve_whole(&none[..], 0, taken_at, 2, Duration::ZERO);
                let none_whole = whole.await;
                let none_then = store.check(&none[..], 1).await;

                // Extremes: answered, never a panic, nothing given back.
                let wild = key("wild");
                let taken_at = take_one(&store, &wild).await;
                let ahead = taken_at + Duration::from_secs(3600);
                let wild_whole = store
                    .reserve_whole(&wild[..], u64::MAX, ahead, 0, Duration::MAX)
                    .await;
                let too_large = store
                    .reserve_whole(&wild[..], u64::MAX, ahead, u64::MAX, Duration::MAX)
                    .await;
                let wild_then = store.check(&wild[..], 2).await;
                let wild_full = store.check(&wild[..], 1).await;

                if unix_micros() / SECOND != window {
                    return false;
                }
                for (case, whole, then) in [
                    ("taken > held", &more_whole, &more_then),
                    ("age 1.9 windows", &old_whole, &old_then),
                    ("taken = 0", &none_whole, &none_then),
                ] {
                    assert!(
                        matches!(whole, Ok(Decision::Allowed { .. })),
                        "{algorithm:?}, {case}: {whole:?}"
                    );
                    assert!(
                        matches!(then, Ok(Decision::Denied { .. })),
                        "{algorithm:?}, {case}: a unit was given back: {then:?}"
                    );
                }
                assert!(
                    matches!(wild_whole, Ok(Decision::Allowed { .. })),
                    "{algorithm:?}: {wild_whole:?}"
                );
                assert!(
                    matches!(too_large, Err(StoreError::CostTooLarge(_))),
                    "{algorithm:?}: {too_large:?}"
                );
                assert!(
                    matches!(wild_then, Ok(Decision::Allowed { .. })),
                    "{algorithm:?}: {wild_then:?}"
                );
                assert!(
                    matches!(wild_full, Ok(Decision::Denied { .. })),
                    "{algorithm:?}: u64::MAX units claimed gave one back: {wild_full:?}"
                );
                true
            }
        })
        .await;
    }
}

/// A readiness unit the failure policy granted (Redis did not answer in time) was
/// never taken in Redis, so none is given back there when Redis answers again.
#[tokio::test]
async fn a_unit_granted_by_the_failure_policy_is_not_given_back() {
    let server = RedisServer::start();
    for algorithm in WINDOWS {
        let store = RedisStore::builder(Quota::new(2, Duration::from_secs(1)).expect("quota"))
            .prefix(format!("policy:{algorithm:?}:"))
            .algorithm(algorithm)
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
        for attempt in 0..5 {
            let key = format!("policy:{attempt}");
            into_next_window(Duration::from_millis(250)).await;
            let window = unix_micros() / SECOND;
            let full = store.check(&key[..], 2).await;
            assert!(now_without_waiting(&full), "{algorithm:?}: {full:?}");
            server.freeze();
            let granted = store.check(&key[..], 1).await;
            let taken_at = Instant::now();
            server.thaw();
            let whole = store
                .reserve_whole(&key[..], 1, taken_at, 1, Duration::ZERO)
                .await;
            if unix_micros() / SECOND != window {
                assert!(attempt < 4, "{algorithm:?}: never within one window");
                continue;
            }
            assert!(
                now_without_waiting(&granted),
                "{algorithm:?}: fail open: {granted:?}"
            );
            assert!(
                matches!(whole, Ok(Decision::Denied { .. })),
                "{algorithm:?}: a unit granted by the policy came out of Redis: {whole:?}"
            );
            break;
        }
    }
}

/// Units taken before the store's quota last changed were counted under another
/// quota, so none is given back, even with the period unchanged: a window of 2
/// raised to 3 after the readiness unit was taken is full after a request of 2
/// (1 + 2). Given back, the window had room for one more.
#[tokio::test]
async fn a_unit_taken_before_a_quota_change_is_not_given_back() {
    let server = RedisServer::start();
    let quota = |count| Quota::new(count, Duration::from_secs(1)).expect("quota");
    for algorithm in WINDOWS {
        let store = store(&server, algorithm, 2);
        with_retries("quota change", |attempt| {
            let store = store.clone();
            async move {
                let key = format!("changed:{attempt}");
                into_next_window(Duration::from_millis(500)).await;
                let window = unix_micros() / SECOND;
                RateStore::<str>::set_quota(&store, quota(2));
                let taken_at = take_one(&store, &key).await;
                RateStore::<str>::set_quota(&store, quota(3));
                let whole = store
                    .reserve_whole(&key[..], 1, taken_at, 2, Duration::ZERO)
                    .await;
                let then = store.check(&key[..], 1).await;
                if unix_micros() / SECOND != window {
                    return false;
                }
                assert!(now_without_waiting(&whole), "{algorithm:?}: {whole:?}");
                assert!(
                    matches!(then, Ok(Decision::Denied { .. })),
                    "{algorithm:?}: a unit taken before the quota changed was given back: {then:?}"
                );
                true
            }
        })
        .await;
    }
}
