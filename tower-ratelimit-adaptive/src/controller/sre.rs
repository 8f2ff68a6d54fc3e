//! Google SRE client-side adaptive throttling.
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_adaptive::controller::{Controller, SreThrottle};
//! use tower_ratelimit_adaptive::Outcome;
//!
//! let mut c = SreThrottle::default();
//! let now = Duration::from_secs(1);
//! // 100 requests, 10 accepted: reject locally with p = (100 − 2·10)/(100 + 1).
//! for i in 0..100 {
//!     assert!(c.admit(now, 0.999)); // a high sample always passes
//!     let o = if i < 10 { Outcome::success(Duration::ZERO) } else { Outcome::throttled(Duration::ZERO) };
//!     c.observe(now, &o);
//! }
//! assert!((c.reject_probability(now) - 80.0 / 101.0).abs() < 1e-9);
//! ```
//!
//! From *Site Reliability Engineering*, "Handling Overload": each client keeps the
//! last two minutes of `requests` (attempts by the application, including those
//! rejected locally) and `accepts` (requests the backend accepted), and rejects a new
//! request locally with probability `max(0, (requests − K·accepts) / (requests + 1))`,
//! `K = 2`. It sets no rate of its own.

use std::time::Duration;

use super::Controller;
use crate::Outcome;

const SLOTS: usize = 120;

/// Tuning of [`SreThrottle`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SreConfig {
    /// The multiplier K (2 in the book; lower is more aggressive).
    pub k: f64,
    /// History kept (two minutes in the book); counted in 120 slots.
    pub history: Duration,
}

impl Default for SreConfig {
    fn default() -> Self {
        SreConfig {
            k: 2.0,
            history: Duration::from_secs(120),
        }
    }
}

/// Client-side throttling by the accepts/requests ratio.
#[derive(Debug, Clone)]
pub struct SreThrottle {
    k: f64,
    slot_nanos: u64,
    head: u64,
    requests: [u64; SLOTS],
    accepts: [u64; SLOTS],
}

impl Default for SreThrottle {
    fn default() -> Self {
        SreThrottle::new(SreConfig::default())
    }
}

impl SreThrottle {
    /// A throttle with the given tuning.
    pub fn new(cfg: SreConfig) -> SreThrottle {
        let k = if cfg.k.is_finite() && cfg.k >= 1.0 {
            cfg.k
        } else {
            2.0
        };
        let slot_nanos =
            ((cfg.history.as_nanos() / SLOTS as u128).min(u64::MAX as u128) as u64).max(1);
        SreThrottle {
            k,
            slot_nanos,
            head: 0,
            requests: [0; SLOTS],
            accepts: [0; SLOTS],
        }
    }

    fn slot(&mut self, now: Duration) -> usize {
        let idx = (now.as_nanos().min(u64::MAX as u128) as u64) / self.slot_nanos;
        if idx > self.head {
            let gap = (idx - self.head).min(SLOTS as u64);
            for i in 1..=gap {
                let s = ((self.head + i) % SLOTS as u64) as usize;
                self.requests[s] = 0;
                self.accepts[s] = 0;
            }
            self.head = idx;
        }
        (self.head % SLOTS as u64) as usize
    }

    /// The probability that the next request is rejected locally.
    pub fn reject_probability(&mut self, now: Duration) -> f64 {
        self.slot(now);
        let req: u64 = self.requests.iter().sum();
        let acc: u64 = self.accepts.iter().sum();
        ((req as f64 - self.k * acc as f64) / (req as f64 + 1.0)).max(0.0)
    }
}

impl Controller for SreThrottle {
    fn name(&self) -> &'static str {
        "google sre"
    }

    fn observe(&mut self, now: Duration, outcome: &Outcome) {
        // The paper's "accepts" are the requests the backend processed: anything but
        // a throttle or an overload. A 404 (`Ignored`) was processed; counting it as a
        // rejection would make the client refuse its own requests.
        if !outcome.is_throttle() {
            let s = self.slot(now);
            self.accepts[s] = self.accepts[s].saturating_add(1);
        }
    }

    fn rate(&self) -> Option<f64> {
        None
    }

    fn admit(&mut self, now: Duration, sample: f64) -> bool {
        let p = self.reject_probability(now);
        let s = self.slot(now);
        self.requests[s] = self.requests[s].saturating_add(1);
        sample >= p || p.is_nan()
    }
}
