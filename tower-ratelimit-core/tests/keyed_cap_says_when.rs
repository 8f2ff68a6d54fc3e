//! A full keyed store that refuses new keys says when it expects room: when the
//! soonest of its keys is idle, so that a sweep can drop it. Each algorithm, on a
//! paused clock, with windows aligned to the store's clock.
use std::time::Duration;
use tower_ratelimit_core::algorithm::{
    Algorithm, FixedWindow, Gcra, LeakyBucket, SlidingCounter, SlidingLog,
};
use tower_ratelimit_core::clock::Clock;
use tower_ratelimit_core::error::StoreError;
use tower_ratelimit_core::keyed::{CapPolicy, KeyedMemoryStore};
use tower_ratelimit_core::Quota;

/// A whole number of minutes since the epoch: windows start on the minute.
const ORIGIN: Duration = Duration::from_secs(16_667 * 60);

fn refusal_wait<A: Algorithm>(store: &KeyedMemoryStore<&'static str, A>) -> Option<Duration> {
    match store.check_now(&"b", 1) {
        Err(StoreError::TooManyKeys { retry_after, .. }) => retry_after,
        other => panic!("expected a full store's refusal, got {other:?}"),
    }
}

fn full_store<A: Algorithm>(algorithm: A) -> KeyedMemoryStore<&'static str, A> {
    KeyedMemoryStore::with_algorithm(algorithm, Quota::per_minute(1).unwrap())
        .with_clock(Clock::with_unix_time(ORIGIN))
        .with_max_keys(1)
        .with_cap_policy(CapPolicy::RejectNew)
}

/// `a` spends one unit at 0 of a 1-a-minute quota; 10 s later `b` is told to wait
/// `expected`, and fits then. Asked a millisecond too early, it is told the next
/// sweep of the full table (100 ms after that refusal's), and fits then.
async fn says_when<A: Algorithm + Clone>(algorithm: A, expected: Duration)
where
    A::State: Send + Sync,
{
    for early in [false, true] {
        let store = full_store(algorithm.clone());
        assert!(store.check_now(&"a", 1).unwrap().is_allowed());
        tokio::time::advance(Duration::from_secs(10)).await;
        let wait = refusal_wait(&store).expect("the store knows when its key is idle");
        assert_eq!(wait, expected);
        if early {
            tokio::time::advance(wait - Duration::from_millis(1)).await;
            assert_eq!(refusal_wait(&store), Some(Duration::from_millis(100)));
            tokio::time::advance(Duration::from_millis(99)).await;
            assert!(refusal_wait(&store).is_some());
            tokio::time::advance(Duration::from_millis(1)).await;
        } else {
            tokio::time::advance(wait).await;
        }
        assert!(store.check_now(&"b", 1).unwrap().is_allowed());
    }
}

#[tokio::test(start_paused = true)]
async fn gcra_the_unit_is_back() {
    says_when(Gcra, Duration::from_secs(50)).await;
}

#[tokio::test(start_paused = true)]
async fn leaky_bucket_the_unit_is_back() {
    says_when(LeakyBucket, Duration::from_secs(50)).await;
}

#[tokio::test(start_paused = true)]
async fn fixed_window_the_window_ends() {
    says_when(FixedWindow, Duration::from_secs(50)).await;
}

#[tokio::test(start_paused = true)]
async fn sliding_log_the_entry_leaves() {
    says_when(SlidingLog, Duration::from_secs(50)).await;
}

#[tokio::test(start_paused = true)]
async fn sliding_counter_the_next_window_ends() {
    // The minute's unit weighs through the next minute too.
    says_when(SlidingCounter, Duration::from_secs(110)).await;
}

#[tokio::test(start_paused = true)]
async fn a_window_with_few_units_still_holds_its_place_to_its_end() {
    // 10 a minute, one used at 0: a bucket would be full at 6 s, but the window
    // counts its unit (and keeps the key) until 60 s.
    let store = KeyedMemoryStore::with_algorithm(FixedWindow, Quota::per_minute(10).unwrap())
        .with_clock(Clock::with_unix_time(ORIGIN))
        .with_max_keys(1)
        .with_cap_policy(CapPolicy::RejectNew);
    assert!(store.check_now(&"a", 1).unwrap().is_allowed());
    tokio::time::advance(Duration::from_secs(7)).await;
    assert_eq!(refusal_wait(&store), Some(Duration::from_secs(53)));
}

#[tokio::test(start_paused = true)]
async fn a_default_quota_change_is_heard_by_the_next_refusal() {
    // 1 an hour, then 1 a second: the held key owes under a second, and a client
    // refused right after the change must not be told the hour it owed before.
    let store = KeyedMemoryStore::with_algorithm(Gcra, Quota::per_hour(1).unwrap())
        .with_clock(Clock::with_unix_time(ORIGIN))
        .with_max_keys(1)
        .with_cap_policy(CapPolicy::RejectNew);
    assert!(store.check_now(&"a", 1).unwrap().is_allowed());
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(refusal_wait(&store), Some(Duration::from_secs(3590)));
    store.set_default_quota(Quota::per_second(1).unwrap());
    tokio::time::advance(Duration::from_millis(10)).await;
    let wait = refusal_wait(&store).expect("the store knows when its key is idle");
    assert!(wait <= Duration::from_secs(1), "told {wait:?}");
    tokio::time::advance(wait).await;
    assert!(store.check_now(&"b", 1).unwrap().is_allowed());
}
