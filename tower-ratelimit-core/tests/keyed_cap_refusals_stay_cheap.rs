//! A full store that refuses new keys says when it expects room, and finding that
//! instant looks at every held key: done on every refusal, a flood of new keys would
//! cost O(n) each. Counted here through an algorithm that counts its `idle_at` calls:
//! a flood of refusals at one instant (no sweep due by time) costs at most about two
//! looks per refusal, amortised.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower_ratelimit_core::algorithm::{Algorithm, Gcra, Nanos, Reservation, Snapshot, Verdict};
use tower_ratelimit_core::clock::Clock;
use tower_ratelimit_core::error::{CostTooLarge, StoreError};
use tower_ratelimit_core::keyed::{CapPolicy, KeyedMemoryStore};
use tower_ratelimit_core::Quota;

/// GCRA, counting the looks at when a state is idle.
#[derive(Clone, Default)]
struct Counted(Arc<AtomicUsize>);

impl Algorithm for Counted {
    type State = <Gcra as Algorithm>::State;

    fn new_state(&self, quota: &Quota) -> Self::State {
        Gcra.new_state(quota)
    }

    fn check(
        &self,
        state: &Self::State,
        quota: &Quota,
        now: Nanos,
        cost: u64,
    ) -> Result<Verdict, CostTooLarge> {
        Gcra.check(state, quota, now, cost)
    }

    fn peek(
        &self,
        state: &Self::State,
        quota: &Quota,
        now: Nanos,
        cost: u64,
    ) -> Result<Verdict, CostTooLarge> {
        Gcra.peek(state, quota, now, cost)
    }

    fn reserve(
        &self,
        state: &Self::State,
        quota: &Quota,
        now: Nanos,
        cost: u64,
        max_wait: Nanos,
    ) -> Result<Reservation, CostTooLarge> {
        Gcra.reserve(state, quota, now, cost, max_wait)
    }

    fn snapshot(&self, state: &Self::State, quota: &Quota, now: Nanos) -> Snapshot {
        Gcra.snapshot(state, quota, now)
    }

    fn is_idle(&self, state: &Self::State, quota: &Quota, now: Nanos) -> bool {
        Gcra.is_idle(state, quota, now)
    }

    fn busy_until(&self, state: &Self::State, quota: &Quota) -> Nanos {
        Gcra.busy_until(state, quota)
    }

    fn idle_at(&self, state: &Self::State, quota: &Quota) -> Nanos {
        self.0.fetch_add(1, Ordering::Relaxed);
        Gcra.idle_at(state, quota)
    }
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_refusals_looks_at_each_key_about_once_per_sweep() {
    const KEYS: u64 = 1000;
    const REFUSALS: u64 = 100_000;
    let counted = Counted::default();
    let looks = Arc::clone(&counted.0);
    let store = KeyedMemoryStore::with_algorithm(counted, Quota::per_hour(1).unwrap())
        .with_clock(Clock::with_unix_time(Duration::from_secs(1_000_000)))
        .with_max_keys(KEYS as usize)
        .with_cap_policy(CapPolicy::RejectNew);
    for key in 0..KEYS {
        assert!(store.check_now(&key, 1).unwrap().is_allowed());
    }
    for key in KEYS..KEYS + REFUSALS {
        assert!(matches!(
            store.check_now(&key, 1),
            Err(StoreError::TooManyKeys {
                retry_after: Some(_),
                ..
            })
        ));
    }
    let looks = looks.load(Ordering::Relaxed) as u64;
    assert!(
        looks <= 2 * REFUSALS + KEYS,
        "{looks} looks for {REFUSALS} refusals of a store of {KEYS}"
    );
}
