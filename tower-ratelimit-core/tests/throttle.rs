//! `RateLimiter::throttle_until`: a pause that empties the bucket at its end, for a
//! server's refusal. After it, requests start at the quota's rate; after a plain pause
//! the bucket that refilled meanwhile starts a whole burst at once.

use std::time::Duration;
use tokio::time::Instant;
use tower_ratelimit_core::algorithm::{FixedWindow, Gcra};
use tower_ratelimit_core::keyed::KeyedMemoryStore;
use tower_ratelimit_core::store::{MemoryStore, RateStore};
use tower_ratelimit_core::{Quota, RateLimiter};

/// When each of `n` acquires, all queued at once, starts (ms after `start`).
async fn starts<St>(limiter: &RateLimiter<St>, n: usize, start: Instant) -> Vec<u128>
where
    St: RateStore + Send + Sync + 'static,
{
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                limiter.acquire(1).await.expect("acquire");
                start.elapsed().as_millis()
            })
        })
        .collect();
    let mut starts = Vec::new();
    for task in tasks {
        starts.push(task.await.expect("task"));
    }
    starts.sort_unstable();
    starts
}

fn ten_per_second() -> Quota {
    Quota::per_second(10).expect("quota") // burst 10
}

#[tokio::test(start_paused = true)]
async fn after_a_throttle_requests_start_at_the_rate() {
    let limiter = RateLimiter::new(ten_per_second());
    let start = Instant::now();
    limiter.throttle_for(Duration::from_secs(1));
    let starts = starts(&limiter, 5, start).await;
    assert_eq!(starts, [1000, 1100, 1200, 1300, 1400]);
}

#[tokio::test(start_paused = true)]
async fn after_a_plain_pause_a_burst_starts() {
    let limiter = RateLimiter::new(ten_per_second());
    let start = Instant::now();
    limiter.pause_for(Duration::from_secs(1));
    let starts = starts(&limiter, 5, start).await;
    assert_eq!(starts, [1000; 5]);
}

#[tokio::test(start_paused = true)]
async fn a_throttle_never_fills_a_bucket_that_owes_more() {
    let limiter = RateLimiter::new(ten_per_second());
    let start = Instant::now();
    // The whole burst spent: the next unit is 100 ms away, later than a bucket drained
    // at 50 ms would make it.
    assert!(limiter
        .store()
        .check_now(10)
        .expect("decision")
        .is_allowed());
    limiter.throttle_for(Duration::from_millis(50));
    let starts = starts(&limiter, 2, start).await;
    assert_eq!(starts, [100, 200]);
}

#[tokio::test(start_paused = true)]
async fn every_quota_of_a_store_with_several_is_drained() {
    let per_minute = Quota::per_minute(600).expect("quota"); // burst 600
    let store = MemoryStore::with_quotas(Gcra, [ten_per_second(), per_minute]).expect("quotas");
    let limiter = RateLimiter::from_store(store);
    let start = Instant::now();
    limiter.throttle_for(Duration::from_secs(1));
    let starts = starts(&limiter, 3, start).await;
    assert_eq!(starts, [1000, 1100, 1200]);
}

#[tokio::test(start_paused = true)]
async fn a_keyed_store_drains_the_keys_it_holds() {
    let store = KeyedMemoryStore::new(ten_per_second());
    assert!(store.check_now(&"held", 1).expect("decision").is_allowed());
    let until = Instant::now() + Duration::from_secs(1);
    store.drain_until(&"held", until);
    store.drain_until(&"unknown", until);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(store.check_now(&"held", 1).expect("decision").is_allowed());
    assert!(!store.check_now(&"held", 1).expect("decision").is_allowed());
    // A key not held starts full: nothing was inserted for it.
    assert!(store
        .check_now(&"unknown", 10)
        .expect("decision")
        .is_allowed());
}

/// A window's count is its burst: a throttle only pauses it (documented).
#[tokio::test(start_paused = true)]
async fn window_algorithms_are_only_paused() {
    let limiter =
        RateLimiter::from_store(MemoryStore::with_algorithm(FixedWindow, ten_per_second()));
    let start = Instant::now();
    limiter.throttle_for(Duration::from_secs(1));
    let starts = starts(&limiter, 5, start).await;
    assert_eq!(starts, [1000; 5]);
}

/// A quota change right after a throttle (a 429 whose policy the client adopts) or
/// during it changes the rate after it, not the pause: the bucket is emptied when the
/// pause ends. Emptied at once instead, the pause was part of the debt the change
/// rescaled: 1 s became 19 s (a cut from 100/s to 10/s right after), 14.5 s (at 0.5 s).
#[tokio::test(start_paused = true)]
async fn a_quota_change_during_a_throttle_keeps_the_pause() {
    let hundred = Quota::per_second(100).expect("quota");
    let ten = Quota::per_second(10).expect("quota");
    for change_after in [Duration::ZERO, Duration::from_millis(500)] {
        let limiter = RateLimiter::new(hundred);
        let start = Instant::now();
        limiter.throttle_for(Duration::from_secs(1));
        tokio::time::sleep(change_after).await;
        limiter.set_quota(ten);
        let starts = starts(&limiter, 3, start).await;
        assert_eq!(
            starts,
            [1000, 1100, 1200],
            "quota changed after {change_after:?}"
        );
    }
}

/// A throttle lifted early leaves the bucket as it was: what it saved starts at once.
#[tokio::test(start_paused = true)]
async fn a_resumed_throttle_leaves_the_bucket_as_it_was() {
    for pause in [Duration::from_secs(60), Duration::MAX] {
        let limiter = RateLimiter::new(ten_per_second());
        let start = Instant::now();
        limiter.throttle_for(pause);
        limiter.resume();
        let starts = starts(&limiter, 3, start).await;
        assert_eq!(starts, [0, 0, 0], "{pause:?}");
    }
}

/// Requests already waiting when the throttle comes start after it at the rate.
#[tokio::test(start_paused = true)]
async fn waiters_queued_before_a_throttle_resume_at_the_rate() {
    let limiter = RateLimiter::new(ten_per_second());
    let start = Instant::now();
    assert!(limiter
        .store()
        .check_now(10)
        .expect("decision")
        .is_allowed());
    let waiting = {
        let limiter = limiter.clone();
        tokio::spawn(async move { starts(&limiter, 6, start).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    limiter.throttle_for(Duration::from_secs(1));
    let starts = waiting.await.expect("task");
    assert_eq!(starts, [100, 1150, 1250, 1350, 1450, 1550]);
}
