//! Exponential backoff with full jitter, for retries the server gave no wait for.
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_http::retry::Backoff;
//!
//! let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
//! // Attempt n waits a uniform random time in [0, min(max, base * 2^n)].
//! assert!(backoff.delay(3) <= Duration::from_millis(800));
//! assert_eq!(backoff.ceiling(30), Duration::from_secs(10));
//! ```

use rand::Rng;
use std::time::Duration;

/// Full-jitter exponential backoff ("Exponential Backoff And Jitter", AWS
/// Architecture Blog): spreading retries uniformly over the whole interval is what
/// keeps many clients that failed together from retrying together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(20))
    }
}

impl Backoff {
    /// Backoff starting at `base`, never above `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff { base, max }
    }

    /// The longest wait of attempt `attempt` (0 for the first retry).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// A random wait for attempt `attempt`, uniform in `[0, ceiling(attempt)]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        jitter(ceiling)
    }
}

/// Uniform in `[0, up_to]`, at nanosecond resolution.
pub(crate) fn jitter(up_to: Duration) -> Duration {
    let nanos = u64::try_from(up_to.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::rng().random_range(0..=nanos))
}
