//! Deciding what a response means for the client: throttled, transient, success or
//! failure. The rules are replaceable: implement [`Classify`] (or pass a closure).
//!
//! ```
//! use std::time::SystemTime;
//! use http::{HeaderMap, StatusCode};
//! use tower_ratelimit_http::feedback::{Class, Classify, DefaultClassifier, FeedbackParser};
//!
//! let parser = FeedbackParser::new();
//! let mut headers = HeaderMap::new();
//! headers.insert("retry-after", "5".parse().unwrap());
//!
//! let unavailable = parser.parse(StatusCode::SERVICE_UNAVAILABLE, &headers, SystemTime::now());
//! assert_eq!(DefaultClassifier.classify(&unavailable), Class::Throttled);
//!
//! // A Retry-After on a redirect is the minimum wait before following it, not a throttle.
//! let moved = parser.parse(StatusCode::MOVED_PERMANENTLY, &headers, SystemTime::now());
//! assert_eq!(DefaultClassifier.classify(&moved), Class::Success);
//! ```

use super::model::Feedback;
use http::StatusCode;

/// What a response means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// The request was served (2xx, 3xx, and 1xx).
    Success,
    /// The server is limiting this client: slow down (pause the limiter) and retry.
    Throttled,
    /// A temporary failure (overload without a wait, a gateway error): retry with backoff.
    Transient,
    /// A failure that retrying will not fix.
    Failure,
}

/// The gRPC status code `RESOURCE_EXHAUSTED`.
pub const GRPC_RESOURCE_EXHAUSTED: u32 = 8;
/// The gRPC status code `UNAVAILABLE`.
pub const GRPC_UNAVAILABLE: u32 = 14;

/// Classifies a response from its parsed feedback (which carries the status).
pub trait Classify: Send + Sync + 'static {
    /// What `feedback`'s response means.
    fn classify(&self, feedback: &Feedback) -> Class;
}

impl<F> Classify for F
where
    F: Fn(&Feedback) -> Class + Send + Sync + 'static,
{
    fn classify(&self, feedback: &Feedback) -> Class {
        self(feedback)
    }
}

/// The rules of the reference:
/// - gRPC `RESOURCE_EXHAUSTED` is throttling, `UNAVAILABLE` transient;
/// - 429 is always throttling;
/// - 503 is throttling when it carries a retry wait, else transient;
/// - 403 is throttling only with a vendor signal (a retry wait, or a quota at 0, as
///   GitHub sends), else a failure;
/// - 3xx is success even with `Retry-After` (the minimum wait before following it);
/// - 413 with a retry wait (a temporary condition), 408, 500, 502 and 504 are
///   transient; other 4xx/5xx are failures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultClassifier;

impl Classify for DefaultClassifier {
    fn classify(&self, feedback: &Feedback) -> Class {
        match feedback.grpc_status {
            Some(GRPC_RESOURCE_EXHAUSTED) => return Class::Throttled,
            Some(GRPC_UNAVAILABLE) => return Class::Transient,
            _ => {}
        }
        let status = feedback.status;
        match status {
            StatusCode::TOO_MANY_REQUESTS => Class::Throttled,
            StatusCode::SERVICE_UNAVAILABLE if feedback.has_retry_signal() => Class::Throttled,
            StatusCode::SERVICE_UNAVAILABLE => Class::Transient,
            StatusCode::FORBIDDEN if feedback.has_retry_signal() || feedback.is_exhausted() => {
                Class::Throttled
            }
            // "Payload too large, but only for now" (RFC 9110 §15.5.14).
            StatusCode::PAYLOAD_TOO_LARGE if feedback.has_retry_signal() => Class::Transient,
            StatusCode::REQUEST_TIMEOUT
            | StatusCode::INTERNAL_SERVER_ERROR
            | StatusCode::BAD_GATEWAY
            | StatusCode::GATEWAY_TIMEOUT => Class::Transient,
            s if s.is_informational() || s.is_success() || s.is_redirection() => Class::Success,
            _ => Class::Failure,
        }
    }
}
