//! Rate AIMD: add a fixed rate per second while all is well, multiply on a throttle.
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_adaptive::controller::{Aimd, Controller};
//! use tower_ratelimit_adaptive::Outcome;
//!
//! let mut c = Aimd::default();
//! c.observe(Duration::from_secs(1), &Outcome::success(Duration::from_millis(10)));
//! c.observe(Duration::from_secs(2), &Outcome::success(Duration::from_millis(10)));
//! assert_eq!(c.rate(), Some(30.0)); // 10 + 20/s for one second
//! c.observe(Duration::from_secs(3), &Outcome::throttled(Duration::from_millis(10)));
//! assert!((c.rate().unwrap() - 21.0).abs() < 1e-9); // 30 × 0.7
//! ```
//!
//! # With Retry-After holds
//! A faithful comparison anchor for the simulation: its rate keeps growing while the
//! layer holds the client for a `Retry-After` (it does not pause its growth during
//! holds), so after a hold the grown rate draws the next 429 at once. Against a 15/s
//! token bucket answering `Retry-After: 1`, `Aimd` under the layer's default holds
//! settles at about 1 request a second (13.8/s with `honour_retry_after(None)`). Use
//! it with [`honour_retry_after(None)`](crate::AdaptiveRateLimitLayer::honour_retry_after),
//! or against servers that send no `Retry-After`.

use std::time::Duration;

use super::{clamp_rate, sent_at, Controller};
use crate::Outcome;

/// Tuning of [`Aimd`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AimdConfig {
    /// Starting rate, requests per second.
    pub initial_rate: f64,
    /// Additive increase, requests per second gained per second without throttles.
    pub increase_per_sec: f64,
    /// Multiplicative decrease on a throttle.
    pub backoff: f64,
    /// Lowest rate.
    pub min_rate: f64,
    /// Highest rate.
    pub max_rate: f64,
}

impl Default for AimdConfig {
    fn default() -> Self {
        AimdConfig {
            initial_rate: 10.0,
            increase_per_sec: 20.0,
            backoff: 0.7,
            min_rate: 0.5,
            max_rate: 1e6,
        }
    }
}

/// Additive increase, multiplicative decrease on a request rate, cutting at most once
/// per round trip (throttles of requests sent before the last cut are ignored), as
/// TCP Reno does per window.
#[derive(Debug, Clone)]
pub struct Aimd {
    cfg: AimdConfig,
    rate: f64,
    last: Option<Duration>,
    last_cut: Duration,
}

impl Default for Aimd {
    fn default() -> Self {
        Aimd::new(AimdConfig::default())
    }
}

impl Aimd {
    /// An AIMD controller with the given tuning.
    pub fn new(cfg: AimdConfig) -> Aimd {
        let min = if cfg.min_rate > 0.0 && cfg.min_rate.is_finite() {
            cfg.min_rate
        } else {
            0.5
        };
        let max = if cfg.max_rate.is_finite() && cfg.max_rate >= min {
            cfg.max_rate
        } else {
            1e6f64.max(min)
        };
        let backoff = if cfg.backoff > 0.0 && cfg.backoff < 1.0 {
            cfg.backoff
        } else {
            0.7
        };
        let inc = if cfg.increase_per_sec.is_finite() && cfg.increase_per_sec >= 0.0 {
            cfg.increase_per_sec
        } else {
            20.0
        };
        let cfg = AimdConfig {
            min_rate: min,
            max_rate: max,
            backoff,
            increase_per_sec: inc,
            ..cfg
        };
        Aimd {
            rate: clamp_rate(cfg.initial_rate, min, max),
            cfg,
            last: None,
            last_cut: Duration::ZERO,
        }
    }
}

impl Controller for Aimd {
    fn name(&self) -> &'static str {
        "aimd"
    }

    fn observe(&mut self, now: Duration, outcome: &Outcome) {
        if matches!(outcome, Outcome::Ignored) {
            return;
        }
        let dt = self
            .last
            .map_or(0.0, |l| now.saturating_sub(l).as_secs_f64());
        self.last = Some(now.max(self.last.unwrap_or_default()));
        if outcome.is_throttle() {
            if sent_at(now, outcome) >= self.last_cut {
                self.rate = clamp_rate(
                    self.rate * self.cfg.backoff,
                    self.cfg.min_rate,
                    self.cfg.max_rate,
                );
                self.last_cut = now;
            }
        } else {
            let r = self.rate + self.cfg.increase_per_sec * dt;
            self.rate = clamp_rate(r, self.cfg.min_rate, self.cfg.max_rate);
        }
    }

    fn rate(&self) -> Option<f64> {
        Some(self.rate)
    }
}
