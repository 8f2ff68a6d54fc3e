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
//! `http_feedback` reads everything tower-ratelimit-http's parser understands
//! (Retry-After, RateLimit and RateLimit-Policy, vendor headers) and classifies with
//! its `DefaultClassifier`; `http_status` is a minimal status-code classifier.

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
    /// when it carries `Retry-After` (delay-seconds form) and an overload otherwise;
    /// 500, 502, 504 and 408 (a failing or timing-out upstream) are overloads; any
    /// other response is a success; an error is an overload. It reads no RateLimit
    /// headers (tower-ratelimit-http's parser does that), and a `Retry-After` only in
    /// its delay-seconds form: a 429 whose `Retry-After` is an HTTP date is a throttle
    /// without a hold (`http_feedback` reads dates).
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
        } else if matches!(
            status,
            http::StatusCode::SERVICE_UNAVAILABLE
                | http::StatusCode::INTERNAL_SERVER_ERROR
                | http::StatusCode::BAD_GATEWAY
                | http::StatusCode::GATEWAY_TIMEOUT
                | http::StatusCode::REQUEST_TIMEOUT
        ) {
            Outcome::Overload {
                latency: Duration::ZERO,
            }
        } else {
            Outcome::success(Duration::ZERO)
        }
    }
}

#[cfg(feature = "http")]
mod http_feedback_classifier {
    use std::time::{Duration, SystemTime};

    use tower_ratelimit_http::feedback::{
        Class, Classify, DefaultClassifier, Feedback, FeedbackParser, QuotaUnit,
    };

    use crate::{Hints, Outcome, Policy, ServerPartition};

    fn hints(f: &Feedback) -> Hints {
        let policy = f
            .policies
            .iter()
            .filter(|p| p.unit == QuotaUnit::Requests)
            .filter_map(|p| Some(Policy::new(p.quota, p.window?)))
            .filter(|p| p.rate_per_second().is_some())
            // The tightest advertised rate binds.
            .min_by(|a, b| a.rate().total_cmp(&b.rate()));
        Hints {
            remaining: f.remaining,
            limit: f.limit,
            reset: f.reset,
            policy,
            // The parser's partition: the `pk` of an exhausted RateLimit item first,
            // else any `pk` (RateLimit or RateLimit-Policy), else a vendor bucket.
            partition: f.partition.key.as_deref().map(ServerPartition::from_key),
        }
    }

    /// Turns parsed [`Feedback`] into an outcome with tower-ratelimit-http's
    /// [`DefaultClassifier`]: throttled → [`Outcome::Throttled`] with the parsed wait
    /// (a wait over the parser's cap is kept: the layer caps holds itself),
    /// transient → [`Outcome::Overload`], failure → [`Outcome::Ignored`].
    pub fn outcome_from_feedback(f: &Feedback) -> Outcome {
        let hints = hints(f);
        match DefaultClassifier.classify(f) {
            Class::Success => Outcome::Success {
                latency: Duration::ZERO,
                hints,
            },
            Class::Throttled => Outcome::Throttled {
                latency: Duration::ZERO,
                retry_after: f.wait().unwrap_or_else(|over| Some(over.wait)),
                hints,
            },
            Class::Transient => Outcome::Overload {
                latency: Duration::ZERO,
            },
            Class::Failure => Outcome::Ignored,
        }
    }

    /// The full HTTP classifier: parses the response's rate-limit feedback with
    /// [`FeedbackParser::new`] and classifies it with [`outcome_from_feedback`]; a
    /// transport error is an overload.
    pub fn http_feedback<B, E>(result: &Result<http::Response<B>, E>) -> Outcome {
        match result {
            Ok(resp) => {
                let f =
                    FeedbackParser::new().parse(resp.status(), resp.headers(), SystemTime::now());
                outcome_from_feedback(&f)
            }
            Err(_) => Outcome::Overload {
                latency: Duration::ZERO,
            },
        }
    }
}

#[cfg(feature = "http")]
pub use http_classifier::{http_status, MAX_RETRY_AFTER};
#[cfg(feature = "http")]
pub use http_feedback_classifier::{http_feedback, outcome_from_feedback};
