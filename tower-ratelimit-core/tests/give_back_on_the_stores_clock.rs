//! On a multi-thread runtime the store's clock is the TSC (quanta) while
//! `taken_at` is a tokio `Instant` (the monotonic clock), and the two drift apart
//! (on this VM the monotonic clock gains ~20 µs a second on the TSC clock). Once the
//! drift exceeds the gap between readiness and `call`, `reserve_whole`'s
//! `at = to_nanos(taken_at).min(now)` is the *call's* instant, so every booking made
//! between readiness and call has `booked_at < at`: the guard never fires, and the
//! give-back is a whole unit (`unspent = at + T - now = T`). Review 9c's finding 2,
//! in one task, in order, no race: B's sleeper is booked after A's unit was taken.
use std::time::Duration;
use tower_ratelimit_core::algorithm::Admission;
use tower_ratelimit_core::store::{Decision, MemoryStore, RateStore};
use tower_ratelimit_core::Quota;

const T: Duration = Duration::from_secs(360);

fn wait_of(d: Decision) -> Duration {
    match d {
        Decision::Allowed { wait, .. } => wait,
        other => panic!("an unbounded reservation is allowed: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_booking_is_seen_on_the_tsc_clock() {
    let store = MemoryStore::new(Quota::per_hour(10).unwrap());
    // Let the two clocks drift apart by more than the few hundred nanoseconds the
    // three calls below take (one second: ~20 µs here).
    std::thread::sleep(Duration::from_secs(1));
    assert!(matches!(store.check_now(5), Ok(Decision::Allowed { .. })));
    // A: readiness takes one unit and notes when (as `RateLimit::poll_ready` does).
    assert!(matches!(store.admit_now(1), Ok(Admission::Allowed)));
    let taken_at = tokio::time::Instant::now();
    // B: a weighted request books a sleeping slot, after A's unit.
    let b = wait_of(store.reserve_now(5, Duration::MAX).unwrap());
    // A: `call` books its whole cost; its unit must stay spent (B's slot is the end
    // of the debt), so A starts 5 T after B's slot, not 4 T.
    let a = wait_of(
        store
            .reserve_whole(&(), 1, taken_at, 5, Duration::MAX)
            .into_inner()
            .unwrap(),
    );
    assert!(b > T / 2, "B sleeps about T: {b:?}");
    assert!(
        a + T / 2 >= b + 5 * T,
        "A's give-back came off B's booking: B waits {b:?}, A {a:?} (4 T after B, not 5 T)"
    );
}

/// The same on a current-thread runtime (tokio's clock on both sides): passes.
#[tokio::test(flavor = "current_thread")]
async fn control_on_tokios_clock() {
    let store = MemoryStore::new(Quota::per_hour(10).unwrap());
    std::thread::sleep(Duration::from_millis(50));
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
    assert!(a + T / 2 >= b + 5 * T, "B waits {b:?}, A {a:?}");
}
