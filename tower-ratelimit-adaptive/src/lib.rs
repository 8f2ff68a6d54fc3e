//! Adaptive limits for tower-ratelimit: find an unknown, changing rate limit from
//! the responses a server sends, and keep a shared limiter just under it.
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_adaptive::controller::{Controller, Goodput};
//! use tower_ratelimit_adaptive::Outcome;
//!
//! let mut c = Goodput::default();
//! c.observe(Duration::from_millis(100), &Outcome::success(Duration::from_millis(40)));
//! assert!(c.rate().unwrap() > 0.0);
//! ```

pub mod controller;
pub mod layer;
mod outcome;
pub mod sim;

pub use layer::AdaptiveRateLimitLayer;
pub use outcome::{Hints, Outcome, Policy};
