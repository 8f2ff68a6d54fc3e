//! Controllers: one small type per algorithm behind one interface.
//!
//! A controller watches [`Outcome`]s and answers two questions: how fast may
//! requests start (a rate in requests per second) and, optionally, how many may be
//! in flight. It is a plain state machine: time is passed in (`now`, any monotonic
//! origin), there is no clock, no task and no lock, so the same sequence of outcomes
//! always gives the same rates. [`AdaptiveRateLimitLayer`](crate::AdaptiveRateLimitLayer)
//! applies its answers to a shared limiter; the [`sim`](crate::sim) harness applies
//! them to simulated clients.
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_adaptive::controller::{Controller, Goodput};
//! use tower_ratelimit_adaptive::Outcome;
//!
//! let mut c = Goodput::default();
//! let ms = Duration::from_millis;
//! let start = c.rate().unwrap();
//! // Successes while the client uses its rate: the controller probes upward.
//! for i in 0..200u64 {
//!     c.observe(ms(i * 10), &Outcome::success(ms(50)));
//! }
//! assert!(c.rate().unwrap() > start);
//! // A throttle episode: the rate comes down, once.
//! let before = c.rate().unwrap();
//! for i in 200..260u64 {
//!     let o = if i % 2 == 0 { Outcome::throttled(ms(50)) } else { Outcome::success(ms(50)) };
//!     c.observe(ms(i * 10), &o);
//! }
//! assert!(c.rate().unwrap() < before);
//! ```

pub mod aimd;
pub mod aws_cubic;
mod background;
pub mod goodput;
pub mod gradient;
mod meter;
pub mod sre;

pub use aimd::{Aimd, AimdConfig};
pub use aws_cubic::AwsCubic;
pub use goodput::{Goodput, GoodputConfig};
pub use gradient::{Gradient2, Gradient2Config};
pub use sre::{SreConfig, SreThrottle};

use std::time::Duration;

use crate::Outcome;

/// An adaptive algorithm: observes outcomes, outputs a rate and a concurrency cap.
///
/// Implementations must be deterministic functions of the outcomes and the `now`
/// values they are given, and must never output a negative, zero or NaN rate.
pub trait Controller: Send + 'static {
    /// A short name for tables and logs.
    fn name(&self) -> &'static str;

    /// Feeds the outcome of one request that completed at `now` (time since any fixed
    /// origin, non-decreasing between calls).
    fn observe(&mut self, now: Duration, outcome: &Outcome);

    /// The rate requests may start at, in requests per second; `None` means the
    /// controller does not limit the rate (yet).
    fn rate(&self) -> Option<f64>;

    /// How many requests may start at once after idleness (the limiter's burst).
    /// Defaults to 20 ms worth of the rate, at least 1.
    fn burst(&self) -> u64 {
        match self.rate() {
            Some(r) => burst_for(r, 0.02),
            None => 1,
        }
    }

    /// The cap on requests in flight, for controllers that manage one.
    fn concurrency(&self) -> Option<usize> {
        None
    }

    /// Client-side rejection (Google SRE throttling): called before a request is sent,
    /// with `sample` uniform in `[0, 1)`; `false` means fail the request locally.
    fn admit(&mut self, now: Duration, sample: f64) -> bool {
        let _ = (now, sample);
        true
    }
}

impl<C: Controller + ?Sized> Controller for Box<C> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn observe(&mut self, now: Duration, outcome: &Outcome) {
        (**self).observe(now, outcome)
    }
    fn rate(&self) -> Option<f64> {
        (**self).rate()
    }
    fn burst(&self) -> u64 {
        (**self).burst()
    }
    fn concurrency(&self) -> Option<usize> {
        (**self).concurrency()
    }
    fn admit(&mut self, now: Duration, sample: f64) -> bool {
        (**self).admit(now, sample)
    }
}

/// A burst holding `secs` worth of `rate`, at least 1.
pub(crate) fn burst_for(rate: f64, secs: f64) -> u64 {
    let b = (rate * secs).floor();
    if b.is_finite() && b >= 1.0 {
        b.min(1e12) as u64
    } else {
        1
    }
}

/// Clamps a rate into `[min, max]`, mapping NaN to `min`.
pub(crate) fn clamp_rate(rate: f64, min: f64, max: f64) -> f64 {
    if rate.is_nan() {
        min
    } else {
        rate.clamp(min, max)
    }
}

/// The time the request behind `outcome` was sent, assuming it completed at `now`.
pub(crate) fn sent_at(now: Duration, outcome: &Outcome) -> Duration {
    now.saturating_sub(outcome.latency().unwrap_or_default())
}
