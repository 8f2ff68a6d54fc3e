//! A service that logs when each request started, and the bound checks on the log.

use std::convert::Infallible;
use std::future::Ready;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::Service;

/// When each request started (since the test's start), with its cost.
pub type Starts = Arc<Mutex<Vec<(Duration, u64)>>>;

/// A service whose request is its cost, logging when each started.
pub fn recorder(
    t0: Instant,
) -> (
    Starts,
    impl Service<u64, Response = (), Error = Infallible, Future = Ready<Result<(), Infallible>>> + Clone,
) {
    let starts: Starts = Arc::default();
    let log = Arc::clone(&starts);
    let service = tower::service_fn(move |cost: u64| {
        log.lock().unwrap().push((t0.elapsed(), cost));
        std::future::ready(Ok(()))
    });
    (starts, service)
}

/// The most units started within any `span`.
pub fn most_within(starts: &[(Duration, u64)], span: Duration) -> u64 {
    starts
        .iter()
        .map(|&(from, _)| {
            starts
                .iter()
                .filter(|&&(at, _)| at >= from && at < from + span)
                .map(|&(_, cost)| cost)
                .sum()
        })
        .max()
        .unwrap_or(0)
}

/// Asserts that the units started in every stretch `[x, y]` stay within `quota`: its
/// burst, plus one unit per emission interval of the stretch.
pub fn assert_within_quota(quota: tower_ratelimit_core::Quota, starts: &[(Duration, u64)]) {
    let mut starts = starts.to_vec();
    starts.sort();
    let interval = quota.emission_interval().as_nanos();
    for (i, &(from, _)) in starts.iter().enumerate() {
        let mut units = 0;
        for &(to, cost) in &starts[i..] {
            units += u128::from(cost);
            let allowed = u128::from(quota.burst()) + (to - from).as_nanos() / interval;
            assert!(
                units <= allowed,
                "{units} units started in [{from:?}, {to:?}], the quota allows {allowed}: {starts:?}"
            );
        }
    }
}
