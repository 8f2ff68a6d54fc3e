//! The give-back's guard (`booked_at >= taken_at`) compares clock readings,
//! not the order of the TAT updates. A sleeping reservation's mark is the clock it
//! read when it *started* (`reserve_at(now)`, read before its CAS loop, and for several
//! quotas before the lock), while the readiness unit's `taken_at` is read *after* its
//! take. A reservation that read the clock first but took its units after the
//! readiness unit is then missed, and the give-back comes off its slot.
//!
//! Real threads, no runtime (the store's clock and `taken_at` are then both tokio's
//! clock, i.e. `std::time::Instant`): thread A takes a readiness unit (`admit_now(1)`),
//! reads `taken_at`, then `reserve_whole(1, taken_at, 5)`; thread B books a sleeper of
//! cost 5. The bucket is set up so that A's unit fits only if A came first (6 + 5 > 10).
//! So whenever A was admitted, B's booking came after A's unit; when B's slot is 1 T
//! away, B also came before A's give-back, so nothing may be given back: A's slot
//! must be B's slot + 5 T (a give-back off B's booking makes it 4 T). With T = 360 s, the microseconds the
//! test runs are far below the half-interval tolerance.
use std::sync::{Arc, Barrier};
use std::time::Duration;
use tower_ratelimit_core::algorithm::{Admission, Gcra};
use tower_ratelimit_core::store::{Decision, MemoryStore, RateStore};
use tower_ratelimit_core::Quota;

const T: Duration = Duration::from_secs(360);

fn wait_of(d: Decision) -> Duration {
    match d {
        Decision::Allowed { wait, .. } => wait,
        other => panic!("an unbounded reservation is allowed: {other:?}"),
    }
}

fn race(make: fn() -> MemoryStore<Gcra>, rounds: usize) -> (usize, usize) {
    let barrier = Arc::new(Barrier::new(2));
    let (mut raced, mut cut) = (0, 0);
    for _ in 0..rounds {
        let store = Arc::new(make());
        // 5 of 10 units taken: A's readiness unit fits (6), B's cost 5 then sleeps (11).
        assert!(matches!(store.check_now(5), Ok(Decision::Allowed { .. })));
        let b = {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                wait_of(store.reserve_now(5, Duration::MAX).unwrap())
            })
        };
        barrier.wait();
        let a = match store.admit_now(1).unwrap() {
            Admission::Allowed => {
                let taken_at = tokio::time::Instant::now();
                // (in the layer: `poll_ready` returns, the task calls `call`)
                Some(wait_of(
                    store
                        .reserve_whole(&(), 1, taken_at, 5, Duration::MAX)
                        .into_inner()
                        .unwrap(),
                ))
            }
            _ => None,
        };
        let b = b.join().unwrap();
        let Some(a) = a else { continue };
        // A was admitted, so B came after A's unit. B saw A's unit but not A's
        // give-back iff its slot is 1 T away (after A's whole `reserve_whole` it is
        // 5 T; between A's give-back and A's booking, 0). Only then is the TAT's end
        // B's booking when A gives back, and nothing may be given back.
        if !(b > T / 2 && b < T + T / 2) {
            continue;
        }
        raced += 1;
        // A's whole cost starts 5 T after B's slot (A's readiness unit stays spent) or,
        // with the unit given back off B's booking, 4 T after it.
        if a + T / 2 < b + 5 * T {
            cut += 1;
        }
    }
    (raced, cut)
}

fn rounds() -> usize {
    std::env::var("FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

#[test]
fn single_quota_give_back_never_cuts_a_later_booking() {
    let (raced, cut) = race(|| MemoryStore::new(Quota::per_hour(10).unwrap()), rounds());
    eprintln!("single quota: {raced} rounds with B between A's unit and its give-back, {cut} cut B's slot");
    assert_eq!(
        cut, 0,
        "{cut} of {raced} give-backs came off a later sleeper's slot"
    );
}

#[test]
fn several_quotas_give_back_never_cuts_a_later_booking() {
    let (raced, cut) = race(
        || {
            MemoryStore::with_quotas(
                Gcra,
                [Quota::per_hour(10).unwrap(), Quota::per_hour(1000).unwrap()],
            )
            .unwrap()
        },
        rounds(),
    );
    eprintln!("several quotas: {raced} rounds with B between A's unit and its give-back, {cut} cut B's slot");
    assert_eq!(
        cut, 0,
        "{cut} of {raced} give-backs came off a later sleeper's slot"
    );
}

/// Control: the same three steps in one thread, B's booking strictly after A's
/// `taken_at`: the guard sees it and nothing is cut (the detector is sound). Passes.
#[test]
fn control_sequential_order_is_caught() {
    let store = MemoryStore::new(Quota::per_hour(10).unwrap());
    assert!(matches!(store.check_now(5), Ok(Decision::Allowed { .. })));
    assert!(matches!(store.admit_now(1), Ok(Admission::Allowed)));
    let taken_at = tokio::time::Instant::now();
    let b = wait_of(store.reserve_now(5, Duration::MAX).unwrap());
    let a = wait_of(
        store
            .reserve_whole(&(), 1, taken_at, 5, Duration::MAX)
            .into_inner()
            .unwrap(),
    );
    assert!(b > T / 2);
    assert!(a + T / 2 >= b + 5 * T, "a {a:?} b {b:?}");
}

/// The interleaving the threads above hit, in one thread: B's whole booking falls
/// between A's take and A's reading of `taken_at` (in the layer: another thread
/// books while A's `poll_ready` is between `admits_now` and `Instant::now()`; or B
/// read its clock before A's take and its CAS lands after it). B's mark is then older
/// than `taken_at`, and A's give-back comes off B's slot. Fails at HEAD.
#[test]
fn interleaving_b_between_the_take_and_taken_at() {
    let store = MemoryStore::new(Quota::per_hour(10).unwrap());
    assert!(matches!(store.check_now(5), Ok(Decision::Allowed { .. })));
    assert!(matches!(store.admit_now(1), Ok(Admission::Allowed)));
    let b = wait_of(store.reserve_now(5, Duration::MAX).unwrap());
    let taken_at = tokio::time::Instant::now();
    let a = wait_of(
        store
            .reserve_whole(&(), 1, taken_at, 5, Duration::MAX)
            .into_inner()
            .unwrap(),
    );
    assert!(b > T / 2);
    assert!(a + T / 2 >= b + 5 * T, "B's slot was cut: a {a:?} b {b:?}");
}
