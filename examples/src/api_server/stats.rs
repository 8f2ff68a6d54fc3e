//! What the API saw: arrivals per 100 ms, 429s, requests in flight.
//!
//! ```
//! use examples::api_server::stats::ApiStats;
//!
//! let stats = ApiStats::new(tokio::time::Instant::now());
//! {
//!     let _guard = stats.arrived(tokio::time::Instant::now());
//!     assert_eq!(stats.report().in_flight, 1);
//! }
//! let report = stats.report();
//! assert_eq!((report.requests, report.in_flight, report.peak_in_flight), (1, 0, 1));
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Width of one bucket of the arrivals histogram.
pub const BUCKET: Duration = Duration::from_millis(100);

/// The histogram keeps at most this many buckets (one hour); later arrivals are
/// counted in the totals but not charted, so memory stays bounded on long runs.
pub const MAX_BUCKETS: usize = 36_000;

/// At most this many throttled pages are remembered for the early-retry check.
const MAX_TRACKED_PAGES: usize = 100_000;

/// Counters shared by every connection of one [`ApiServer`](super::ApiServer).
#[derive(Debug)]
pub struct ApiStats {
    started: Instant,
    requests: AtomicU64,
    ok: AtomicU64,
    throttled: AtomicU64,
    unavailable: AtomicU64,
    early_retries: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    buckets: Mutex<Vec<u32>>,
    // Page -> earliest instant the server told the client to come back.
    not_before: Mutex<HashMap<u64, Instant>>,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiReport {
    /// Requests that reached the handler.
    pub requests: u64,
    /// Answered 200.
    pub ok: u64,
    /// Answered 429.
    pub throttled: u64,
    /// Answered 503.
    pub unavailable: u64,
    /// Requests for a page that came back before the Retry-After it was given.
    pub early_retries: u64,
    /// Requests in the handler now.
    pub in_flight: u64,
    /// The most requests ever in the handler at once.
    pub peak_in_flight: u64,
    /// Arrivals per [`BUCKET`] since the server started.
    pub arrivals: Vec<u32>,
}

impl ApiStats {
    /// Empty counters; histogram buckets are measured from `started`.
    pub fn new(started: Instant) -> Self {
        Self {
            started,
            requests: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            unavailable: AtomicU64::new(0),
            early_retries: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            buckets: Mutex::new(Vec::new()),
            not_before: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an arrival; the request is in flight until the guard drops.
    pub fn arrived(&self, now: Instant) -> InFlight<'_> {
        let seq = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let now_in = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak_in_flight.fetch_max(now_in, Ordering::AcqRel);
        let index = (now.saturating_duration_since(self.started).as_nanos() / BUCKET.as_nanos())
            .min(usize::MAX as u128) as usize;
        if index < MAX_BUCKETS {
            let mut buckets = lock(&self.buckets);
            if buckets.len() <= index {
                buckets.resize(index + 1, 0);
            }
            buckets[index] = buckets[index].saturating_add(1);
        }
        InFlight { stats: self, seq }
    }

    /// Checks a request for `page` against the Retry-After it was last given.
    pub fn check_retry(&self, page: u64, now: Instant) {
        let mut map = lock(&self.not_before);
        if let Some(not_before) = map.remove(&page) {
            if now < not_before {
                self.early_retries.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Records a 429 for `page` that told the client to wait until `not_before`.
    pub fn throttled(&self, page: u64, not_before: Instant) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        self.remember(page, not_before);
    }

    /// Records a 503 for `page` that told the client to wait until `not_before`.
    pub fn unavailable(&self, page: u64, not_before: Instant) {
        self.unavailable.fetch_add(1, Ordering::Relaxed);
        self.remember(page, not_before);
    }

    /// Records a 200.
    pub fn ok(&self) {
        self.ok.fetch_add(1, Ordering::Relaxed);
    }

    /// A copy of every counter.
    pub fn report(&self) -> ApiReport {
        ApiReport {
            requests: self.requests.load(Ordering::Relaxed),
            ok: self.ok.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            unavailable: self.unavailable.load(Ordering::Relaxed),
            early_retries: self.early_retries.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            peak_in_flight: self.peak_in_flight.load(Ordering::Relaxed),
            arrivals: lock(&self.buckets).clone(),
        }
    }

    fn remember(&self, page: u64, not_before: Instant) {
        let mut map = lock(&self.not_before);
        if map.len() < MAX_TRACKED_PAGES || map.contains_key(&page) {
            map.insert(page, not_before);
        }
    }
}

/// Marks one request in flight; dropping it (also on cancellation) ends it.
#[derive(Debug)]
pub struct InFlight<'a> {
    stats: &'a ApiStats,
    seq: u64,
}

impl InFlight<'_> {
    /// The request's arrival number, counting from 1.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

// A poisoned lock only means another request panicked mid-update of a counter;
// the counters are still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_per_bucket_and_stays_bounded() {
        let t0 = Instant::now();
        let stats = ApiStats::new(t0);
        drop(stats.arrived(t0));
        drop(stats.arrived(t0 + Duration::from_millis(50)));
        drop(stats.arrived(t0 + Duration::from_millis(250)));
        drop(stats.arrived(t0 + Duration::from_secs(100_000)));
        let r = stats.report();
        assert_eq!(r.arrivals, vec![2, 0, 1]);
        assert_eq!(r.requests, 4);
    }

    #[test]
    fn early_retry_is_counted_once_per_429() {
        let t0 = Instant::now();
        let stats = ApiStats::new(t0);
        stats.throttled(7, t0 + Duration::from_secs(1));
        stats.check_retry(7, t0 + Duration::from_millis(500));
        stats.check_retry(7, t0 + Duration::from_millis(600));
        stats.throttled(8, t0 + Duration::from_secs(1));
        stats.check_retry(8, t0 + Duration::from_secs(1));
        assert_eq!(stats.report().early_retries, 1);
        assert_eq!(stats.report().throttled, 2);
    }
}
