//! A `with_quota_fn` whose answer for a key changes (a customer moves to another plan,
//! read from a table) leaves the key's state in the old quota's terms. Under a window
//! algorithm the stored window index, counted in the old period, read as a window
//! centuries ahead under a longer one: the key was refused for 192,718 days, and, never
//! idle, never swept. The windows now keep the period they count in and re-index on a
//! change, as `set_quota` does. GCRA (the control) was always served.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower_ratelimit_core::algorithm::{Algorithm, FixedWindow, Gcra, SlidingCounter};
use tower_ratelimit_core::keyed::KeyedMemoryStore;
use tower_ratelimit_core::store::Decision;
use tower_ratelimit_core::Quota;

/// The key "acme" on a per-second plan (5/s) sends once; its plan changes to
/// `new_plan`; the next request is decided. Returns the retry-after if refused.
async fn after_plan_change<A: Algorithm>(algorithm: A, new_plan: Quota) -> Option<Duration> {
    // The server has been up a day.
    tokio::time::advance(Duration::from_secs(86_400)).await;
    let upgraded = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&upgraded);
    let store = KeyedMemoryStore::with_algorithm(algorithm, Quota::per_second(5).unwrap())
        .with_quota_fn(move |_: &&str| flag.load(Ordering::Relaxed).then_some(new_plan));
    assert!(store.check_now(&"acme", 1).unwrap().is_allowed());
    upgraded.store(true, Ordering::Relaxed);
    tokio::time::advance(Duration::from_secs(1)).await;
    match store.check_now(&"acme", 1).unwrap() {
        Decision::Allowed { .. } => None,
        Decision::Denied { retry_after, .. } => Some(retry_after),
    }
}

#[tokio::test(start_paused = true)]
async fn a_window_key_moved_to_an_hourly_plan_is_served() {
    let hourly = Quota::per_hour(1_000).unwrap();
    let fixed = after_plan_change(FixedWindow, hourly).await;
    assert_eq!(
        fixed,
        None,
        "fixed window: refused for {:?} days",
        fixed.map(|d| d.as_secs() / 86_400)
    );
}

#[tokio::test(start_paused = true)]
async fn a_sliding_counter_key_moved_to_an_hourly_plan_is_served() {
    let hourly = Quota::per_hour(1_000).unwrap();
    let sliding = after_plan_change(SlidingCounter, hourly).await;
    assert_eq!(
        sliding,
        None,
        "sliding counter: refused for {:?} days",
        sliding.map(|d| d.as_secs() / 86_400)
    );
}

#[tokio::test(start_paused = true)]
async fn a_gcra_key_moved_to_a_larger_plan_is_served() {
    let gcra = after_plan_change(Gcra, Quota::per_hour(1_000).unwrap()).await;
    assert_eq!(gcra, None, "gcra: refused for {gcra:?}");
}
