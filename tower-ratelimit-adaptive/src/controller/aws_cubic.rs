//! A port of the AWS SDKs' "adaptive" client rate limiter (CUBIC on a request rate).
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_adaptive::controller::{AwsCubic, Controller};
//! use tower_ratelimit_adaptive::Outcome;
//!
//! let mut c = AwsCubic::new();
//! assert_eq!(c.rate(), None); // no limit until the first throttle
//! for i in 0..100u64 {
//!     c.observe(Duration::from_millis(i * 10), &Outcome::success(Duration::from_millis(5)));
//! }
//! c.observe(Duration::from_secs(1), &Outcome::throttled(Duration::from_millis(5)));
//! let r = c.rate().unwrap();
//! assert!(r > 0.5 && r < 100.0);
//! ```
//!
//! Faithful to botocore's `retries/adaptive.py`, `bucket.py` and `throttling.py` and
//! smithy-rs's `client_rate_limiter.rs`: β = 0.7, C = 0.4, a measured response rate
//! in 0.5 s buckets smoothed by 0.8, `new = min(cubic, 2·measured)`, fill rate at
//! least 0.5/s, capacity `max(rate, 1)`; every throttle cuts (the SDK has no
//! de-duplication). Two differences, both outside the rate math: the token bucket is
//! the core's GCRA with burst = capacity (so capacity cannot go negative, the bug of
//! smithy-rs#4632), and a throttle is an [`Outcome::Throttled`] (the SDK matches
//! throttling error codes). An [`Outcome::Overload`] (a transient 5xx, a timeout)
//! does not cut, as in the SDK, which retries those but counts them as responses.
//!
//! # With Retry-After holds
//! A faithful comparison anchor for the simulation: its cubic rate is a function of
//! the time since the last throttle and does not pause while the layer holds the
//! client for a `Retry-After` (only the `2 · measured` cap slows it), so after a hold
//! the rate may draw the next 429 at once. `Aimd`, which has no such cap, collapses
//! that way (about 1 request a second against a 15/s token bucket answering
//! `Retry-After: 1`, 13.8/s with `honour_retry_after(None)`). Use
//! it with [`honour_retry_after(None)`](crate::AdaptiveRateLimitLayer::honour_retry_after),
//! or against servers that send no `Retry-After`.

use std::time::Duration;

use super::Controller;
use crate::Outcome;

const BETA: f64 = 0.7;
const SCALE_CONSTANT: f64 = 0.4;
const SMOOTH: f64 = 0.8;
const MIN_FILL_RATE: f64 = 0.5;
const MIN_CAPACITY: f64 = 1.0;
const BUCKET_SECS: f64 = 0.5;

/// The AWS SDK adaptive-retry client rate limiter's controller.
#[derive(Debug, Clone)]
pub struct AwsCubic {
    enabled: bool,
    fill_rate: f64,
    max_capacity: f64,
    measured_rate: f64,
    last_bucket: Option<f64>,
    request_count: u64,
    last_max_rate: f64,
    last_throttle: f64,
    time_window: f64,
}

impl Default for AwsCubic {
    fn default() -> Self {
        AwsCubic::new()
    }
}

impl AwsCubic {
    /// The limiter as the SDK creates it: disabled until the first throttle.
    pub fn new() -> AwsCubic {
        AwsCubic {
            enabled: false,
            fill_rate: MIN_FILL_RATE,
            max_capacity: MIN_CAPACITY,
            measured_rate: 0.0,
            last_bucket: None,
            request_count: 0,
            last_max_rate: MIN_FILL_RATE,
            last_throttle: 0.0,
            time_window: 0.0,
        }
    }

    fn update_measured_rate(&mut self, t: f64) {
        let bucket = (t / BUCKET_SECS).floor() * BUCKET_SECS;
        self.request_count += 1;
        match self.last_bucket {
            None => self.last_bucket = Some(bucket),
            Some(last) if bucket > last => {
                let current = self.request_count as f64 / (bucket - last);
                self.measured_rate = current * SMOOTH + self.measured_rate * (1.0 - SMOOTH);
                self.request_count = 0;
                self.last_bucket = Some(bucket);
            }
            Some(_) => {}
        }
    }

    fn calculate_time_window(&mut self) {
        self.time_window = ((self.last_max_rate * (1.0 - BETA)) / SCALE_CONSTANT).cbrt();
    }

    fn cubic_success(&self, t: f64) -> f64 {
        let dt = t - self.last_throttle - self.time_window;
        SCALE_CONSTANT * dt.powi(3) + self.last_max_rate
    }
}

impl Controller for AwsCubic {
    fn name(&self) -> &'static str {
        "aws cubic"
    }

    fn observe(&mut self, now: Duration, outcome: &Outcome) {
        if matches!(outcome, Outcome::Ignored) {
            return;
        }
        let t = now.as_secs_f64();
        self.update_measured_rate(t);
        let calculated = if matches!(outcome, Outcome::Throttled { .. }) {
            let rate_to_use = if self.enabled {
                self.measured_rate.min(self.fill_rate)
            } else {
                self.measured_rate
            };
            self.last_max_rate = rate_to_use;
            self.calculate_time_window();
            self.last_throttle = t;
            self.enabled = true;
            rate_to_use * BETA
        } else {
            self.calculate_time_window();
            self.cubic_success(t)
        };
        let new_rate = calculated.min(2.0 * self.measured_rate);
        let new_rate = if new_rate.is_nan() {
            MIN_FILL_RATE
        } else {
            new_rate
        };
        self.fill_rate = new_rate.max(MIN_FILL_RATE);
        self.max_capacity = new_rate.max(MIN_CAPACITY);
    }

    fn rate(&self) -> Option<f64> {
        self.enabled.then_some(self.fill_rate)
    }

    fn burst(&self) -> u64 {
        let c = self.max_capacity.floor();
        if c.is_finite() && c >= 1.0 {
            c.min(1e12) as u64
        } else {
            1
        }
    }
}
