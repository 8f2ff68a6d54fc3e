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
