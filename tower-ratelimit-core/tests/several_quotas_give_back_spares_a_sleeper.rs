//! With several quotas a reservation is charged in every quota at the instant it
//! starts, the latest of their earliest ones. In a quota that does not bind it, the
//! booking's latest slot (`TAT − capacity`) is behind the clock while it sleeps, so
//! the give-back's latest-slot rule cannot see it there; the store's reservation mark
//! (`booked_at`) does, and a readiness unit taken before the booking is not given back
//! in any quota. Given back in the non-binding quota, the unit's time, which the
//! sleeper's charge had absorbed, was counted twice: that quota admitted a start more
//! than it allows.

mod support;

use std::time::Duration;
use tower_ratelimit_core::algorithm::{Admission, Gcra};
use tower_ratelimit_core::store::{Decision, MemoryStore, RateStore};
use tower_ratelimit_core::Quota;

fn wait(decision: Result<Decision, tower_ratelimit_core::error::StoreError>) -> Duration {
    match decision {
        Ok(Decision::Allowed { wait, .. }) => wait,
        other => panic!("an unbounded reservation is allowed: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_readiness_unit_is_not_given_back_in_a_quota_that_charged_a_sleeper_later() {
    let per_second = Quota::per_second(1).unwrap();
    let three_per_ten = Quota::new(3, Duration::from_secs(10)).unwrap();
    let store = MemoryStore::with_quotas(Gcra, [per_second, three_per_ten]).unwrap();
    // A's readiness unit; B, of cost 1, then sleeps 1 s behind it (1/s binds).
    assert!(matches!(store.admit_now(1), Ok(Admission::Allowed)));
    let taken_at = tokio::time::Instant::now();
    let b = wait(store.reserve_now(1, Duration::MAX));
    // A books its whole cost; then two more requests.
    let a = wait(
        store
            .reserve_whole(&(), 1, taken_at, 1, Duration::MAX)
            .into_inner(),
    );
    let c = wait(store.reserve_now(1, Duration::MAX));
    let d = wait(store.reserve_now(1, Duration::MAX));
    let starts: Vec<(Duration, u64)> = [b, a, c, d].iter().map(|&at| (at, 1)).collect();
    support::starts::assert_within_quota(per_second, &starts);
    support::starts::assert_within_quota(three_per_ten, &starts);
}
