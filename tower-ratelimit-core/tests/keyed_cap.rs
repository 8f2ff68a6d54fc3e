//! The hard cap on keys and its two policies, on tokio's paused clock.

use std::time::Duration;
use tower_ratelimit_core::error::StoreError;
use tower_ratelimit_core::keyed::{CapPolicy, KeyedMemoryStore};
use tower_ratelimit_core::store::{Decision, MemoryStore};
use tower_ratelimit_core::Quota;

#[tokio::test(start_paused = true)]
async fn a_full_store_refuses_unseen_keys_until_its_keys_go_idle() {
    // 10 per second: a key that sent once is busy for 100 ms.
    let store = KeyedMemoryStore::new(Quota::per_second(10).unwrap()).with_max_keys(1_000);
    for k in 0..1_000u32 {
        assert!(store.check_now(&k, 1).unwrap().is_allowed());
    }
    for k in 1_000..1_100u32 {
        assert!(matches!(
            store.check_now(&k, 1),
            Err(StoreError::TooManyKeys {
                max_keys: 1_000,
                ..
            })
        ));
    }
    // Known keys are still decided exactly: key 7 owes 100 ms, so its full burst
    // of 10 fits 100 ms from now.
    assert!(matches!(
        store.check_now(&7, 10),
        Ok(Decision::Denied { retry_after, .. }) if retry_after == Duration::from_millis(100)
    ));
    // Once the burst's keys are idle, the next unseen key makes the full shard sweep,
    // though far fewer new keys came than a count-based sweep would wait for.
    tokio::time::advance(Duration::from_millis(100)).await;
    assert!(store.check_now(&5_000, 1).unwrap().is_allowed());
    assert_eq!(store.len(), 1, "every idle key was dropped");
}

#[tokio::test(start_paused = true)]
async fn eviction_spares_the_busiest_key_and_admits_new_ones() {
    let quota = Quota::per_second(10).unwrap().with_burst(5).unwrap();
    let store = KeyedMemoryStore::new(quota)
        .with_max_keys(1_000)
        .with_cap_policy(CapPolicy::EvictLeastBusy);
    let alone = MemoryStore::new(quota).with_clock(*store.clock());
    let busy = u32::MAX;
    for _ in 0..5 {
        assert_eq!(
            store.check_now(&busy, 1).unwrap(),
            alone.check_now(1).unwrap()
        );
    }
    for round in 0..10u32 {
        // 1,000 new keys a round, each sending once: the store is always full.
        for k in 0..1_000 {
            assert!(store
                .check_now(&(round * 1_000 + k), 1)
                .unwrap()
                .is_allowed());
        }
        assert!(store.len() <= 1_000);
        assert_eq!(
            store.check_now(&busy, 1).unwrap(),
            alone.check_now(1).unwrap()
        );
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    assert!(store.contains_key(&busy));
}

// Window algorithms ranked keys by their window's index, which cannot be compared
// across periods: a 1-per-hour key that had just spent its hour ranked below every
// per-second key, was evicted first, and got a second request within the hour.
#[tokio::test(start_paused = true)]
async fn eviction_compares_keys_of_different_periods_by_when_they_refill() {
    use tower_ratelimit_core::algorithm::{FixedWindow, SlidingCounter, SlidingLog};
    use tower_ratelimit_core::clock::Clock;

    fn hourly_survives<A: tower_ratelimit_core::algorithm::Algorithm>(algorithm: A) -> bool {
        let store = KeyedMemoryStore::with_algorithm(algorithm, Quota::per_second(5).unwrap())
            .with_quota_fn(|k: &&str| (*k == "hourly").then(|| Quota::per_hour(1).unwrap()))
            .with_max_keys(4)
            .with_cap_policy(CapPolicy::EvictLeastBusy)
            .with_clock(Clock::with_unix_time(Duration::from_secs(3_600 * 1_000)));
        assert!(store.check_now(&"hourly", 1).unwrap().is_allowed());
        for k in ["a", "b", "c"] {
            assert!(store.check_now(&k, 1).unwrap().is_allowed());
        }
        // The store is full: a new key evicts the one soonest full again.
        assert!(store.check_now(&"d", 1).unwrap().is_allowed());
        store.contains_key(&"hourly")
    }
    assert!(hourly_survives(FixedWindow));
    assert!(hourly_survives(SlidingCounter));
    assert!(hourly_survives(SlidingLog));
}

// Unbounded, each booking of a hot key's waiter that gave up stayed in its log until a
// period after its instant: 20,000 held a megabyte, and each booking walked them all.
#[tokio::test(start_paused = true)]
async fn a_keyed_sliding_log_books_at_most_one_period_ahead() {
    use tower_ratelimit_core::algorithm::SlidingLog;
    let store = KeyedMemoryStore::with_algorithm(SlidingLog, Quota::per_second(2).unwrap());
    let mut booked = 0;
    for _ in 0..20_000 {
        match store.reserve_now(&7u32, 1, Duration::MAX).unwrap() {
            Decision::Allowed { wait, .. } => {
                assert!(wait <= Duration::from_secs(1));
                booked += 1;
            }
            Decision::Denied { retry_after, .. } => {
                assert_eq!(retry_after, Duration::from_secs(2));
            }
        }
    }
    assert_eq!(booked, 4, "two now, two a period later");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(store
        .reserve_now(&7u32, 1, Duration::MAX)
        .unwrap()
        .is_allowed());
}
