//! A slot vacated after its key's bucket was dropped (remove, or eviction by
//! `EvictLeastBusy`), by a request booked before, is not handed to a request of the
//! fresh bucket, which would then start more than the quota admits after the reset
//! (starts at 0.3, 1.0 and 1.3 s under 1/s). Paused clock.
use std::time::Duration;
use tokio::time::Instant;
use tower_ratelimit_core::keyed::{CapPolicy, KeyedMemoryStore};
use tower_ratelimit_core::{KeyedRateLimiter, Quota};

const LONG: Duration = Duration::from_secs(60);

/// Books a slot for `key` in a task, lets it sleep, and returns the task.
async fn sleeper<St>(
    limiter: &KeyedRateLimiter<&'static str, St>,
    key: &'static str,
) -> tokio::task::JoinHandle<()>
where
    St: tower_ratelimit_core::store::RateStore<&'static str>,
{
    let limiter = limiter.clone();
    let task = tokio::spawn(async move {
        limiter.acquire(&key, 1, LONG).await.unwrap();
    });
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    task
}

/// As `a_removed_key_starts_with_a_full_bucket_not_in_its_old_slots` (`keyed_vacated_slots.rs`),
/// except that the sleeper gives up just after the remove instead of just before.
#[tokio::test(start_paused = true)]
async fn a_slot_left_after_remove_is_not_handed_to_the_fresh_bucket() {
    let limiter = KeyedRateLimiter::new(Quota::per_second(1).unwrap());
    let t0 = Instant::now();
    limiter.acquire(&"key", 1, LONG).await.unwrap(); // the burst, at 0
    let booked = sleeper(&limiter, "key").await; // booked at 1 s
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(limiter.remove(&"key"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    booked.abort(); // gives up at 0.2 s, after the remove
    let _ = booked.await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    limiter.acquire(&"key", 1, LONG).await.unwrap(); // fresh bucket: at 0.3 s
    assert_eq!(t0.elapsed(), Duration::from_millis(300));
    limiter.acquire(&"key", 1, LONG).await.unwrap();
    // The fresh bucket's next slot is at 1.3 s; observed: 1.0 s (the old slot).
    assert_eq!(t0.elapsed(), Duration::from_millis(1300));
}

/// A key evicted from a full store comes back with a fresh bucket, which is handed the
/// slot its old bucket's sleeper left (the store does not forget it on eviction).
#[tokio::test(start_paused = true)]
async fn a_slot_left_before_eviction_is_not_handed_to_the_fresh_bucket() {
    let store = KeyedMemoryStore::new(Quota::per_second(1).unwrap())
        .with_max_keys(1)
        .with_cap_policy(CapPolicy::EvictLeastBusy);
    let limiter = KeyedRateLimiter::from_store(store);
    let t0 = Instant::now();
    limiter.acquire(&"a", 1, LONG).await.unwrap(); // at 0
    let booked = sleeper(&limiter, "a").await; // booked at 1 s
    tokio::time::sleep(Duration::from_millis(100)).await;
    booked.abort();
    let _ = booked.await;
    // "b" takes the only place: "a" is evicted.
    limiter.acquire(&"b", 1, LONG).await.unwrap();
    assert!(!limiter.store().contains_key(&"a"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    limiter.acquire(&"a", 1, LONG).await.unwrap(); // fresh bucket: at 0.3 s
    assert_eq!(t0.elapsed(), Duration::from_millis(300));
    limiter.acquire(&"a", 1, LONG).await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_millis(1300));
}
