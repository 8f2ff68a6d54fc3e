//! `CapPolicy::EvictLeastBusy` over window algorithms ranks every key used in
//! the current window alike (busy_until = the window's end), so a key that drained its
//! whole count is evicted as readily as one that sent a single request, and a client
//! that floods new keys gets drained keys reset inside one window. GCRA ranks by the
//! theoretical arrival time and keeps the drained keys.

use std::time::Duration;
use tower_ratelimit_core::algorithm::{Algorithm, FixedWindow, Gcra, SlidingCounter, SlidingLog};
use tower_ratelimit_core::clock::Clock;
use tower_ratelimit_core::keyed::{CapPolicy, KeyedMemoryStore};
use tower_ratelimit_core::Quota;

/// 100 keys drain 10/min each; then, a millisecond later, 5 rounds of 2,000 fresh
/// keys (one request each) arrive, and after each round the drained keys try again.
/// Returns the requests the 100 drained keys got admitted within the one minute.
async fn admitted_in_one_window<A: Algorithm>(algorithm: A) -> u64 {
    let store = KeyedMemoryStore::with_algorithm(algorithm, Quota::per_minute(10).unwrap())
        .with_max_keys(1_000)
        .with_cap_policy(CapPolicy::EvictLeastBusy)
        // A clock on a whole minute: the five milliseconds must fall in one window
        // (started 2 ms before a minute turned, a drained key spent its 10 again).
        .with_clock(Clock::with_unix_time(Duration::from_secs(1_800_000_000)));
    let drained = 1_000_000..1_000_100u32;
    let mut admitted = 0;
    for round in 0..5u32 {
        for key in drained.clone() {
            for _ in 0..10 {
                if store.check_now(&key, 1).unwrap().is_allowed() {
                    admitted += 1;
                }
            }
        }
        // A millisecond later (the flood comes after the drain).
        tokio::time::advance(Duration::from_millis(1)).await;
        for k in 0..2_000 {
            let _ = store.check_now(&(round * 2_000 + k), 1);
        }
    }
    admitted
}

#[tokio::test(start_paused = true)]
async fn drained_keys_are_not_evicted_before_keys_that_sent_once() {
    // GCRA keeps the drained keys: 100 keys x 10 in the minute.
    assert_eq!(admitted_in_one_window(Gcra).await, 1_000);
    // The window algorithms should too (a drained key is as busy as a key gets).
    let fixed = admitted_in_one_window(FixedWindow).await;
    let counter = admitted_in_one_window(SlidingCounter).await;
    let log = admitted_in_one_window(SlidingLog).await;
    assert_eq!(
        (fixed, counter, log),
        (1_000, 1_000, 1_000),
        "admitted within one minute to 100 keys under 10/min: fixed window {fixed}, sliding counter {counter}, sliding log {log}"
    );
}
