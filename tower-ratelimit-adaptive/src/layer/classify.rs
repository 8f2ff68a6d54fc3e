//! Classifiers: turn a service's result into an [`Outcome`].
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_adaptive::layer::classify;
//! use tower_ratelimit_adaptive::Outcome;
//!
//! let ok: Result<u32, &str> = Ok(7);
//! assert!(classify::by_result(&ok).is_success());
//! let err: Result<u32, &str> = Err("timeout");
//! assert!(matches!(classify::by_result(&err), Outcome::Overload { .. }));
//! ```
//!
//! A classifier is any `Fn(&Result<Resp, Error>) -> Outcome`. The latency in the
//! outcome it returns is ignored: the layer measures it. With the `http` feature,
//! [`http_status`] reads status codes and `Retry-After`.

use std::time::Duration;

use crate::Outcome;

/// `Ok` is a success, `Err` an overload (a timeout or a failed connection).
pub fn by_result<R, E>(result: &Result<R, E>) -> Outcome {
    match result {
        Ok(_) => Outcome::success(Duration::ZERO),
        Err(_) => Outcome::Overload {
            latency: Duration::ZERO,
        },
    }
}

#[cfg(feature = "http")]
mod http_classifier {
    use std::time::Duration;

    use crate::{Hints, Outcome};

    /// Longest Retry-After honoured by this classifier; longer values are capped.
    pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

    fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
        let v = headers.get(http::header::RETRY_AFTER)?.as_bytes();
        let s = std::str::from_utf8(v).ok()?.trim();
        let secs: f64 = s.parse().ok()?;
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        Some(Duration::from_secs_f64(
            secs.min(MAX_RETRY_AFTER.as_secs_f64()),
        ))
    }

    /// Status-code classifier for `http::Response`: 429 is a throttle, 503 a throttle
    /// when it carries `Retry-After` (delay-seconds form) and an overload otherwise,
    /// any other response a success; an error is an overload. It reads no RateLimit
    /// headers (tower-ratelimit-http's parser does that).
    pub fn http_status<B, E>(result: &Result<http::Response<B>, E>) -> Outcome {
        let resp = match result {
            Ok(r) => r,
            Err(_) => {
                return Outcome::Overload {
                    latency: Duration::ZERO,
                }
            }
        };
        let status = resp.status();
        let wait = retry_after(resp.headers());
        if status == http::StatusCode::TOO_MANY_REQUESTS
            || (status == http::StatusCode::SERVICE_UNAVAILABLE && wait.is_some())
        {
            Outcome::Throttled {
                latency: Duration::ZERO,
                retry_after: wait,
                hints: Hints::default(),
            }
        } else if status == http::StatusCode::SERVICE_UNAVAILABLE {
            Outcome::Overload {
                latency: Duration::ZERO,
            }
        } else {
            Outcome::success(Duration::ZERO)
        }
    }
}

#[cfg(feature = "http")]
pub use http_classifier::{http_status, MAX_RETRY_AFTER};
