//! Quota changes at run time and quotas at the edges of what the clock can hold: each
//! algorithm keeps working, and nothing overflows into "always" or "never".

use std::time::Duration;
use tokio::time::Instant;
use tower_ratelimit_core::algorithm::{Algorithm, FixedWindow, Gcra, LeakyBucket, SlidingCounter};
use tower_ratelimit_core::clock::Clock;
use tower_ratelimit_core::error::StoreError;
use tower_ratelimit_core::keyed::KeyedMemoryStore;
use tower_ratelimit_core::store::{Decision, MemoryStore, RateStore};
use tower_ratelimit_core::{Quota, RateLimiter};

fn allowed(decision: Result<Decision, StoreError>) -> bool {
    decision.expect("a decision, not an error").is_allowed()
}

fn retry_after(decision: Result<Decision, StoreError>) -> Duration {
    match decision.expect("a decision, not an error") {
        Decision::Denied { retry_after, .. } => retry_after,
        allowed => panic!("expected a denial, got {allowed:?}"),
    }
}

/// Window limiters index windows by periods since the epoch: after a longer period
/// the old index must not read as a window centuries ahead. The clock stands half-way
/// through a minute: read from the wall clock, the test depended on where in the
/// minute it ran (a sliding counter's next unit is a second into the next window).
async fn window_limiter_survives_a_longer_period<A: Algorithm>(algorithm: A) {
    let half_way = Duration::from_secs(60 * 1_000_000 + 30);
    let limiter = RateLimiter::from_store(
        MemoryStore::with_algorithm(algorithm, Quota::per_second(10).unwrap())
            .with_clock(Clock::with_unix_time(half_way)),
    );
    assert!(allowed(limiter.try_acquire(1).await));
    limiter.set_quota(Quota::per_minute(60).unwrap());
    assert!(allowed(limiter.try_acquire(1).await), "one unit used of 60");
    let mut admitted = 2;
    while allowed(limiter.try_acquire(1).await) {
        admitted += 1;
        assert!(admitted <= 60, "the new window holds 60 at most");
    }
    assert_eq!(admitted, 60, "the unit used before the change still counts");
    let wait = retry_after(limiter.try_acquire(1).await);
    assert!(wait <= Duration::from_secs(60), "denied for {wait:?}");
    // Wait mode gets through within the new window, not in 528 years.
    let started = Instant::now();
    limiter.acquire(1).await.unwrap();
    assert!(started.elapsed() <= Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn fixed_window_survives_a_longer_period() {
    window_limiter_survives_a_longer_period(FixedWindow).await;
}

#[tokio::test(start_paused = true)]
async fn sliding_counter_survives_a_longer_period() {
    window_limiter_survives_a_longer_period(SlidingCounter).await;
}

async fn shorter_window_keeps_the_units_already_used(limiter: RateLimiter<impl RateStore>) {
    for _ in 0..10 {
        assert!(allowed(limiter.try_acquire(1).await));
    }
    limiter.set_quota(Quota::per_second(10).unwrap());
    // The ten units were used in the window now in force: no fresh count at once.
    // They free up with the next one-second window (the sliding counter's, weighing
    // the previous window, a tenth of a second into it).
    let wait = retry_after(limiter.try_acquire(1).await);
    assert!(wait <= Duration::from_millis(1_100), "denied for {wait:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(allowed(limiter.try_acquire(1).await));
}

#[tokio::test(start_paused = true)]
async fn a_shorter_window_keeps_the_units_already_used() {
    let quota = Quota::per_minute(10).unwrap();
    shorter_window_keeps_the_units_already_used(RateLimiter::with_algorithm(FixedWindow, quota))
        .await;
    shorter_window_keeps_the_units_already_used(RateLimiter::with_algorithm(SlidingCounter, quota))
        .await;
}

#[test]
fn keyed_buckets_keep_their_units_when_the_rate_rises() {
    let store = KeyedMemoryStore::new(Quota::per_minute(1).unwrap());
    assert!(allowed(store.check_now(&"k", 1)));
    store.set_quota(Quota::per_second(100).unwrap());
    // The key owes one unit: 10 ms at the new rate, not the old minute.
    let snapshot = store.check_now(&"k", 1).unwrap().snapshot();
    assert_eq!(snapshot.remaining, 98);
    assert!(snapshot.reset <= Duration::from_millis(20));
}

#[test]
fn keyed_buckets_keep_their_debt_when_the_rate_falls() {
    let store = KeyedMemoryStore::new(Quota::per_second(100).unwrap());
    for _ in 0..100 {
        assert!(allowed(store.check_now(&"k", 1)));
    }
    store.set_quota(Quota::per_second(1).unwrap().with_burst(60).unwrap());
    assert!(
        !allowed(store.check_now(&"k", 1)),
        "a drained key gets no fresh burst from a rate cut"
    );
    // A key with its own quota is left alone.
    let own = KeyedMemoryStore::new(Quota::per_second(100).unwrap())
        .with_quota_fn(|key: &&str| (*key == "own").then(|| Quota::per_second(2).unwrap()));
    assert!(allowed(own.check_now(&"own", 1)));
    own.set_quota(Quota::per_minute(1).unwrap());
    assert!(allowed(own.check_now(&"own", 1)), "2 per second still");
}

#[tokio::test(start_paused = true)]
async fn a_leaky_bucket_cost_above_the_burst_is_an_error_not_a_lockout() {
    let limiter = RateLimiter::with_algorithm(LeakyBucket, Quota::per_second(100).unwrap());
    for cost in [101, u64::MAX / 1000, u64::MAX] {
        assert!(
            matches!(
                limiter.try_acquire(cost).await,
                Err(StoreError::CostTooLarge(_))
            ),
            "cost {cost}"
        );
    }
    // Nothing was booked: the bucket is still free, and a cost of the burst passes.
    assert!(allowed(limiter.try_acquire(100).await));
    assert!(retry_after(limiter.try_acquire(1).await) <= Duration::from_secs(1));
}

async fn admitted_of_a_thousand(limiter: RateLimiter<impl RateStore>) -> usize {
    let mut admitted = 0;
    for _ in 0..1_000 {
        if allowed(limiter.try_acquire(1).await) {
            admitted += 1;
        }
    }
    admitted
}

#[tokio::test(start_paused = true)]
async fn the_longest_quota_is_enforced() {
    let once = Quota::new(1, Quota::MAX_SPAN).unwrap();
    let admitted = [
        admitted_of_a_thousand(RateLimiter::with_algorithm(Gcra, once)).await,
        admitted_of_a_thousand(RateLimiter::with_algorithm(LeakyBucket, once)).await,
        admitted_of_a_thousand(RateLimiter::with_algorithm(FixedWindow, once)).await,
        admitted_of_a_thousand(RateLimiter::with_algorithm(SlidingCounter, once)).await,
    ];
    assert!(
        admitted.iter().all(|&n| n <= 1),
        "admitted by a once-a-century quota: {admitted:?}"
    );
    assert_eq!(admitted[0], 1, "GCRA admits its one unit");
    assert!(Quota::new(1, Duration::from_nanos(u64::MAX)).is_err());
}

/// Units GCRA admits from 0 to `horizon` ns to a caller that retries at every
/// `retry_at`.
fn admitted_under_saturation(quota: Quota, cost: u64, horizon: u64) -> u64 {
    use tower_ratelimit_core::algorithm::{Algorithm, Verdict};
    let state = Gcra.new_state(&quota);
    let (mut now, mut total) = (0, 0);
    while now <= horizon {
        match Gcra.check(&state, &quota, now, cost).unwrap() {
            Verdict::Allowed(_) => total += cost,
            Verdict::Denied { retry_at, .. } => now = retry_at,
        }
    }
    total
}

// A nanosecond interval rounded down paced 600,000,000 units a second at 1 ns: 1e9 a
// second, 67 % over, for byte costs.
#[test]
fn a_rate_of_a_few_nanoseconds_per_unit_admits_no_more_than_its_count() {
    for (count, period, cost, horizon) in [
        (
            600_000_000,
            Duration::from_secs(1),
            1_000_000,
            10_000_000_000,
        ),
        (
            150_000_000,
            Duration::from_secs(1),
            1_000_000,
            10_000_000_000,
        ),
        (7, Duration::from_nanos(50), 7, 10_000_000),
    ] {
        let quota = Quota::new(count, period).unwrap();
        let periods = horizon / u64::try_from(period.as_nanos()).unwrap();
        let bound = quota.burst() + periods * count;
        let admitted = admitted_under_saturation(quota, cost, horizon);
        assert!(
            admitted <= bound,
            "{count} per {period:?}: {admitted} > {bound}"
        );
    }
    assert_eq!(
        Quota::per_second(600_000_000).unwrap().emission_interval(),
        Duration::from_nanos(2)
    );
}
