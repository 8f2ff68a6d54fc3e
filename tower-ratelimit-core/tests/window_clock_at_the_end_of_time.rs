//! No algorithm panics when its clock reads at the end of its 64-bit nanosecond range.
//! The clock saturates there rather than wrapping, and `Clock::with_unix_time` accepts
//! any `Duration`, so a clock anchored at the year 2554 or later gets there: the window
//! algorithms' next window index overflowed (a panic in debug builds, a wrapped window
//! in release). Exact arithmetic is promised only until 2116 (`Quota::MAX_SPAN`); not
//! panicking is promised for any input.
use std::time::Duration;
use tower_ratelimit_core::algorithm::{
    Algorithm, FixedWindow, Gcra, LeakyBucket, SlidingCounter, SlidingLog,
};
use tower_ratelimit_core::clock::Clock;
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::Quota;

fn panics<A: Algorithm>(alg: A, quota: Quota, unix: u64) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let store = MemoryStore::with_algorithm(alg, quota)
            .with_clock(Clock::with_unix_time(Duration::from_nanos(unix)));
        let _ = store.check_now(1);
        let _ = store.peek_now(1);
        let _ = store.reserve_now(1, Duration::MAX);
        let _ = store.check_now(1);
    }))
    .is_err()
}

#[tokio::test(start_paused = true)]
async fn no_algorithm_panics_at_the_end_of_the_clock() {
    let quotas = [
        Quota::new(1, Duration::from_nanos(1)).unwrap(),
        Quota::per_second(1).unwrap(),
        Quota::new(1, Quota::MAX_SPAN).unwrap(),
    ];
    let mut failed = Vec::new();
    for unix in [u64::MAX, u64::MAX - 1, u64::MAX - 500_000_000] {
        for q in quotas {
            for (name, p) in [
                ("gcra", panics(Gcra, q, unix)),
                ("leaky", panics(LeakyBucket, q, unix)),
                ("fixed", panics(FixedWindow, q, unix)),
                ("sliding_log", panics(SlidingLog, q, unix)),
                ("sliding_counter", panics(SlidingCounter, q, unix)),
            ] {
                if p {
                    failed.push(format!(
                        "{name} {:?} at u64::MAX-{}",
                        q.period(),
                        u64::MAX - unix
                    ));
                }
            }
        }
    }
    assert!(failed.is_empty(), "panicked: {failed:#?}");
}
