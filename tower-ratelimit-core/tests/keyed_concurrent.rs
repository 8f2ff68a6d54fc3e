//! Cleanup (sweeps, evictions, removals of other keys) running on one thread while
//! another checks an active key never loses that key's state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tower_ratelimit_core::keyed::{CapPolicy, KeyedMemoryStore};
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::Quota;

/// Real time, two threads: the active key has a burst of 1,000 and refills one unit
/// an hour, so over the test it may pass exactly 1,000 times. Had its bucket been
/// dropped while busy even once, it would have passed up to 1,000 more. Meanwhile the
/// other thread floods keys that are idle a microsecond after their check, so that
/// sweeps (and, with eviction, evictions) run all the time in every shard.
fn active_key_survives_cleanup(policy: CapPolicy) {
    let active = 0u64;
    let store = KeyedMemoryStore::new(Quota::per_second(1_000_000).unwrap())
        .with_quota_fn(move |k: &u64| {
            (*k == active).then(|| Quota::per_hour(1).unwrap().with_burst(1_000).unwrap())
        })
        .with_max_keys(2_048)
        .with_cap_policy(policy);
    // Known before the flood starts: a full store refuses only unseen keys.
    assert!(store.check_now(&active, 1).unwrap().is_allowed());
    let done = AtomicBool::new(false);
    let allowed = 1 + std::thread::scope(|s| {
        let store = &store;
        let done = &done;
        s.spawn(move || {
            let mut k = 1u64;
            while !done.load(Ordering::Relaxed) && k < 5_000_000 {
                let _ = store.check_now(&k, 1);
                if k % 4_096 == 0 {
                    store.sweep();
                }
                if k % 1_000 == 0 {
                    store.remove(&(k - 500));
                }
                k += 1;
            }
        });
        let checker = s.spawn(move || {
            let mut allowed = 0u32;
            for _ in 1..200_000 {
                if store.check_now(&active, 1).unwrap().is_allowed() {
                    allowed += 1;
                }
            }
            done.store(true, Ordering::Relaxed);
            allowed
        });
        checker.join().unwrap()
    });
    assert_eq!(allowed, 1_000, "{policy:?}");
    assert!(store.len() <= 2_048);
}

#[test]
fn active_key_survives_sweeps_on_another_thread() {
    active_key_survives_cleanup(CapPolicy::RejectNew);
}

#[test]
fn active_key_survives_evictions_on_another_thread() {
    active_key_survives_cleanup(CapPolicy::EvictLeastBusy);
}

/// Paused clock shared by two threads: the flood thread inserts keys that go idle
/// within a millisecond while the test thread moves time and checks an active key;
/// every decision for the active key equals that of an unkeyed bucket alone.
#[test]
fn active_key_is_exact_while_another_thread_sweeps() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let handle = runtime.handle().clone();
    runtime.block_on(async {
        let active = u64::MAX;
        let slow = Quota::per_second(10).unwrap().with_burst(5).unwrap();
        let store = std::sync::Arc::new(
            KeyedMemoryStore::new(Quota::per_second(1_000).unwrap())
                .with_quota_fn(move |k: &u64| (*k == active).then_some(slow))
                .with_max_keys(1_024),
        );
        let alone = MemoryStore::new(slow).with_clock(*store.clock());
        // Known before the flood starts: a full store refuses only unseen keys.
        assert_eq!(
            store.check_now(&active, 1).unwrap(),
            alone.check_now(1).unwrap()
        );
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let flood = {
            let (store, done) = (store.clone(), done.clone());
            std::thread::spawn(move || {
                // The same paused clock as the test thread.
                let _entered = handle.enter();
                let mut k = 0u64;
                while !done.load(Ordering::Relaxed) && k < 20_000_000 {
                    let _ = store.check_now(&k, 1);
                    k += 1;
                }
                k
            })
        };
        for step in 1..2_000 {
            tokio::time::advance(Duration::from_millis(1)).await;
            let got = store.check_now(&active, 1).unwrap();
            assert_eq!(got, alone.check_now(1).unwrap(), "step {step}");
            // Let the flood run a little between steps.
            std::thread::yield_now();
        }
        done.store(true, Ordering::Relaxed);
        let flooded = flood.join().unwrap();
        assert!(flooded > 0);
    });
}
