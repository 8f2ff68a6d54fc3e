//! Per-key exactness of the keyed store, with many keys interleaved, on tokio's paused
//! clock:
//!
//! * against a reference token bucket per key (GCRA);
//! * against one unkeyed `MemoryStore` per key, for every algorithm, with a quota per
//!   key, sweeps and removals in between: a key's decisions never depend on the other
//!   keys, nor on its bucket having been dropped while idle.

use proptest::prelude::*;
use std::collections::HashMap;
use std::time::Duration;
use tower_ratelimit_core::algorithm::{
    Algorithm, FixedWindow, Gcra, LeakyBucket, SlidingCounter, SlidingLog,
};
use tower_ratelimit_core::clock::Clock;
use tower_ratelimit_core::keyed::KeyedMemoryStore;
use tower_ratelimit_core::store::{Decision, MemoryStore};
use tower_ratelimit_core::Quota;

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime")
}

proptest! {
    /// 64 keys, each with a token bucket of fractional tokens refilled continuously:
    /// the keyed GCRA store agrees with every key's bucket on every decision,
    /// including the exact retry-after of a denial.
    #[test]
    fn gcra_per_key_agrees_with_a_token_bucket_per_key(
        rate in 1u64..1_000,
        burst in 1u64..20,
        steps in proptest::collection::vec((0u8..64, 0u64..20_000_000, 1u64..5), 1..400),
    ) {
        let quota = Quota::per_second(rate).unwrap().with_burst(burst).unwrap();
        let t = quota.emission_interval().as_nanos();
        let cap = u128::from(burst) * t;
        paused_runtime().block_on(async {
            let store = KeyedMemoryStore::new(quota).with_max_keys(64);
            // Tokens scaled by T, so refill is exact integer arithmetic.
            let mut buckets: HashMap<u8, (u128, u128)> = HashMap::new();
            let mut now = 0u128;
            for (key, dt, cost) in steps {
                tokio::time::advance(Duration::from_nanos(dt)).await;
                now += u128::from(dt);
                let (level, last) = buckets.entry(key).or_insert((cap, now));
                *level = (*level + (now - *last)).min(cap);
                *last = now;
                let want = u128::from(cost) * t;
                let got = store.check_now(&key, cost);
                if cost > burst {
                    prop_assert!(got.is_err());
                } else if want <= *level {
                    *level -= want;
                    prop_assert!(matches!(got, Ok(Decision::Allowed { .. })), "key {key}: {got:?}");
                } else {
                    let expected = Duration::from_nanos((want - *level) as u64);
                    let ok = matches!(got, Ok(Decision::Denied { retry_after, .. }) if retry_after == expected);
                    prop_assert!(ok, "key {key}: {got:?}, expected a denial for {expected:?}");
                }
            }
            Ok(())
        })?;
    }
}

#[derive(Debug, Clone)]
enum Op {
    Check(u8, u64),
    Peek(u8, u64),
    Reserve(u8, u64, u64),
    Advance(u64),
    Sweep,
    Remove(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..8, 0u64..6).prop_map(|(k, c)| Op::Check(k, c)),
        1 => (0u8..8, 0u64..4).prop_map(|(k, c)| Op::Peek(k, c)),
        2 => (0u8..8, 1u64..4, 0u64..2_000).prop_map(|(k, c, w)| Op::Reserve(k, c, w)),
        4 => (0u64..300_000_000).prop_map(Op::Advance),
        1 => Just(Op::Sweep),
        1 => (0u8..8).prop_map(Op::Remove),
    ]
}

fn quota_strategy() -> impl Strategy<Value = Quota> {
    (1u64..50, 1u64..3_000, 1u64..8).prop_map(|(count, period_ms, burst)| {
        Quota::new(count, Duration::from_millis(period_ms))
            .and_then(|q| q.with_burst(burst))
            .expect("valid quota")
    })
}

/// Runs `ops` on a keyed store and on one unkeyed store per key (odd keys with their
/// own quota), and requires equal answers.
fn same_as_one_store_per_key<A: Algorithm + Copy>(
    algorithm: A,
    default_quota: Quota,
    odd_quota: Quota,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    paused_runtime().block_on(async {
        let clock = Clock::new();
        let keyed = KeyedMemoryStore::with_algorithm(algorithm, default_quota)
            .with_quota_fn(move |k: &u8| (k % 2 == 1).then_some(odd_quota))
            .with_clock(clock);
        let mut alone: HashMap<u8, MemoryStore<A>> = HashMap::new();
        let store_of = |alone: &mut HashMap<u8, MemoryStore<A>>, k: u8| {
            let quota = if k % 2 == 1 { odd_quota } else { default_quota };
            alone
                .entry(k)
                .or_insert_with(|| MemoryStore::with_algorithm(algorithm, quota).with_clock(clock));
        };
        for (i, op) in ops.iter().enumerate() {
            let (got, want) = match *op {
                Op::Advance(ns) => {
                    tokio::time::advance(Duration::from_nanos(ns)).await;
                    continue;
                }
                Op::Sweep => {
                    keyed.sweep();
                    continue;
                }
                Op::Remove(k) => {
                    keyed.remove(&k);
                    alone.remove(&k);
                    continue;
                }
                Op::Check(k, cost) => {
                    store_of(&mut alone, k);
                    (keyed.check_now(&k, cost), alone[&k].check_now(cost))
                }
                Op::Peek(k, cost) => {
                    store_of(&mut alone, k);
                    (keyed.peek_now(&k, cost), alone[&k].peek_now(cost))
                }
                Op::Reserve(k, cost, max_wait_ms) => {
                    store_of(&mut alone, k);
                    let max_wait = Duration::from_millis(max_wait_ms);
                    // A keyed store books no further than the algorithm's horizon (a
                    // sliding log: one period); a single store has no such bound.
                    let quota = if k % 2 == 1 { odd_quota } else { default_quota };
                    let horizon = Duration::from_nanos(algorithm.booking_horizon(&quota));
                    (
                        keyed.reserve_now(&k, cost, max_wait),
                        alone[&k].reserve_now(cost, max_wait.min(horizon)),
                    )
                }
            };
            let got = got.map_err(|e| e.to_string());
            let want = want.map_err(|e| e.to_string());
            prop_assert_eq!(got, want, "step {} ({:?})", i, op);
        }
        for k in 0..8u8 {
            store_of(&mut alone, k);
            prop_assert_eq!(
                keyed.snapshot_now(&k),
                alone[&k].peek_now(0).unwrap().snapshot()
            );
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn gcra_keyed_equals_one_store_per_key(
        q1 in quota_strategy(), q2 in quota_strategy(), ops in proptest::collection::vec(op(), 1..300),
    ) {
        same_as_one_store_per_key(Gcra, q1, q2, &ops)?;
    }

    #[test]
    fn leaky_bucket_keyed_equals_one_store_per_key(
        q1 in quota_strategy(), q2 in quota_strategy(), ops in proptest::collection::vec(op(), 1..300),
    ) {
        same_as_one_store_per_key(LeakyBucket, q1, q2, &ops)?;
    }

    #[test]
    fn fixed_window_keyed_equals_one_store_per_key(
        q1 in quota_strategy(), q2 in quota_strategy(), ops in proptest::collection::vec(op(), 1..300),
    ) {
        same_as_one_store_per_key(FixedWindow, q1, q2, &ops)?;
    }

    #[test]
    fn sliding_log_keyed_equals_one_store_per_key(
        q1 in quota_strategy(), q2 in quota_strategy(), ops in proptest::collection::vec(op(), 1..300),
    ) {
        same_as_one_store_per_key(SlidingLog, q1, q2, &ops)?;
    }

    #[test]
    fn sliding_counter_keyed_equals_one_store_per_key(
        q1 in quota_strategy(), q2 in quota_strategy(), ops in proptest::collection::vec(op(), 1..300),
    ) {
        same_as_one_store_per_key(SlidingCounter, q1, q2, &ops)?;
    }
}

#[test]
fn idle_keys_are_swept_by_inserts_alone() {
    paused_runtime().block_on(async {
        let quota = Quota::per_second(10).unwrap();
        let store = KeyedMemoryStore::new(quota);
        for k in 0..10_000u32 {
            store.check_now(&k, 1).unwrap();
        }
        assert_eq!(store.len(), 10_000);
        // A second later every bucket is full again; new keys alone clean up.
        tokio::time::advance(Duration::from_secs(1)).await;
        for k in 10_000..40_000u32 {
            store.check_now(&k, 1).unwrap();
        }
        // Only this second's keys can remain, and sweeps keep up with growth.
        let len = store.len();
        assert!(len <= 30_000, "{len} keys held");
        assert!((0..10_000u32).filter(|k| store.contains_key(k)).count() < 1_000);
    });
}

#[test]
fn lookups_that_take_nothing_insert_nothing() {
    paused_runtime().block_on(async {
        let store = KeyedMemoryStore::new(Quota::per_second(5).unwrap());
        store.peek_now(&"a", 1).unwrap();
        assert_eq!(store.snapshot_now(&"b").remaining, 5);
        assert!(store.check_now(&"c", 6).is_err()); // cost above the burst
        store.check_now(&"d", 0).unwrap();
        assert!(store.is_empty());
        store.check_now(&"e", 1).unwrap();
        assert_eq!(store.len(), 1);
    });
}
