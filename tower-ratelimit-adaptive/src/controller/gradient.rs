//! Netflix's Gradient2: a concurrency cap from the ratio of long-term to recent latency.
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_adaptive::controller::{Controller, Gradient2};
//! use tower_ratelimit_adaptive::Outcome;
//!
//! let mut c = Gradient2::default();
//! assert_eq!(c.concurrency(), Some(20));
//! // Steady latency: the cap grows by the queue allowance.
//! for i in 0..50u64 {
//!     c.observe(Duration::from_millis(i), &Outcome::success(Duration::from_millis(50)));
//! }
//! assert!(c.concurrency().unwrap() > 20);
//! // Latency jumps fourfold: the gradient (floored at 0.5) shrinks the cap.
//! let before = c.concurrency().unwrap();
//! for i in 50..60u64 {
//!     c.observe(Duration::from_millis(i), &Outcome::success(Duration::from_millis(200)));
//! }
//! assert!(c.concurrency().unwrap() < before);
//! ```
//!
//! As in `Gradient2Limit`: the long RTT is an exponential average with factor
//! `2 / (window + 1)` (window 600, the first 10 samples a plain mean); when the long
//! RTT exceeds twice the short one it decays toward it; the gradient is
//! `clamp(tolerance · long / short, 0.5, 1)` with tolerance 1.5, and
//! `L' = (1 − s)·L + s·(g·L + queue)` with smoothing `s = 0.2`, queue 4. Drops are
//! ignored, as in the original (Netflix concurrency-limits #176); the controller sets
//! no rate. One difference: `Gradient2Limit` does not grow while fewer than half the
//! cap are in flight (the client, not the server, is the limit then); the
//! [`Controller`] trait tells it no in-flight count, so this port
//! grows toward `max_limit` while demand is low.

use std::time::Duration;

use super::Controller;
use crate::Outcome;

/// Tuning of [`Gradient2`] (Netflix's defaults, with a higher maximum so it can reach
/// the concurrency that thousands of requests per second need).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gradient2Config {
    /// Starting cap.
    pub initial_limit: f64,
    /// Lowest cap.
    pub min_limit: f64,
    /// Highest cap.
    pub max_limit: f64,
    /// Allowed ratio of long to short RTT before the cap shrinks.
    pub tolerance: f64,
    /// Weight of the new value.
    pub smoothing: f64,
    /// Requests allowed to queue on top of the gradient.
    pub queue_size: f64,
    /// Samples in the long RTT average.
    pub long_window: u32,
}

impl Default for Gradient2Config {
    fn default() -> Self {
        Gradient2Config {
            initial_limit: 20.0,
            min_limit: 20.0,
            max_limit: 1000.0,
            tolerance: 1.5,
            smoothing: 0.2,
            queue_size: 4.0,
            long_window: 600,
        }
    }
}

/// The Gradient2 concurrency controller.
#[derive(Debug, Clone)]
pub struct Gradient2 {
    cfg: Gradient2Config,
    limit: f64,
    long_rtt: f64,
    samples: u32,
}

impl Default for Gradient2 {
    fn default() -> Self {
        Gradient2::new(Gradient2Config::default())
    }
}

impl Gradient2 {
    /// A Gradient2 controller with the given tuning.
    pub fn new(cfg: Gradient2Config) -> Gradient2 {
        let min = if cfg.min_limit.is_finite() && cfg.min_limit >= 1.0 {
            cfg.min_limit
        } else {
            1.0
        };
        let max = if cfg.max_limit.is_finite() && cfg.max_limit >= min {
            cfg.max_limit
        } else {
            min.max(1000.0)
        };
        let s = if cfg.smoothing > 0.0 && cfg.smoothing <= 1.0 {
            cfg.smoothing
        } else {
            0.2
        };
        let cfg = Gradient2Config {
            min_limit: min,
            max_limit: max,
            smoothing: s,
            tolerance: if cfg.tolerance.is_finite() && cfg.tolerance >= 1.0 {
                cfg.tolerance
            } else {
                1.5
            },
            queue_size: if cfg.queue_size.is_finite() && cfg.queue_size >= 0.0 {
                cfg.queue_size
            } else {
                4.0
            },
            long_window: cfg.long_window.max(1),
            ..cfg
        };
        let limit = if cfg.initial_limit.is_nan() {
            min
        } else {
            cfg.initial_limit.clamp(min, max)
        };
        Gradient2 {
            cfg,
            limit,
            long_rtt: 0.0,
            samples: 0,
        }
    }
}

impl Controller for Gradient2 {
    fn name(&self) -> &'static str {
        "gradient2 (concurrency)"
    }

    fn observe(&mut self, _now: Duration, outcome: &Outcome) {
        let rtt = match outcome {
            Outcome::Success { latency, .. } | Outcome::Throttled { latency, .. } => {
                latency.as_secs_f64()
            }
            _ => return,
        };
        if rtt <= 0.0 || !rtt.is_finite() {
            return;
        }
        self.samples = self.samples.saturating_add(1);
        if self.samples <= 10 {
            self.long_rtt += (rtt - self.long_rtt) / self.samples as f64;
        } else {
            let f = 2.0 / (self.cfg.long_window as f64 + 1.0);
            self.long_rtt = self.long_rtt * (1.0 - f) + rtt * f;
        }
        if self.long_rtt / rtt > 2.0 {
            self.long_rtt *= 0.95;
        }
        let g = (self.cfg.tolerance * self.long_rtt / rtt).clamp(0.5, 1.0);
        let target = self.limit * g + self.cfg.queue_size;
        let next = self.limit * (1.0 - self.cfg.smoothing) + target * self.cfg.smoothing;
        if next.is_finite() {
            self.limit = next.clamp(self.cfg.min_limit, self.cfg.max_limit);
        }
    }

    fn rate(&self) -> Option<f64> {
        None
    }

    fn concurrency(&self) -> Option<usize> {
        Some(self.limit.floor().max(1.0) as usize)
    }
}
