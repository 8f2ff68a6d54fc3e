//! What a response says about the server's limits, as one typed value.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use http::{HeaderMap, StatusCode};
//! use tower_ratelimit_http::feedback::{FeedbackParser, WaitSource};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("retry-after", "7".parse().unwrap());
//! let feedback = FeedbackParser::new().parse(StatusCode::TOO_MANY_REQUESTS, &headers, SystemTime::now());
//! assert_eq!(feedback.wait(), Ok(Some(Duration::from_secs(7))));
//! assert_eq!(feedback.wait_source(), Some(WaitSource::RetryAfter));
//! ```

use http::StatusCode;
use std::fmt;
use std::time::Duration;

/// Where a wait came from, in the order of precedence the parser applies (first wins;
/// several values of the same kind: the longest wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WaitSource {
    /// A millisecond header: `retry-after-ms`, `x-amz-retry-after`, `grpc-retry-pushback-ms`.
    Milliseconds,
    /// `Retry-After`, as delay-seconds or an HTTP-date.
    RetryAfter,
    /// The refill time of an exhausted IETF `RateLimit` policy (`t`, or `reset` in the
    /// older revisions).
    RateLimitPolicy,
    /// A vendor's delta until refill of an exhausted dimension (Discord `Reset-After`,
    /// OpenAI durations, Reddit's `reset`, a guessed delta).
    VendorDelta,
    /// An absolute reset instant of an exhausted dimension (epoch, RFC 3339, HTTP-date),
    /// measured against the response's `Date`.
    AbsoluteReset,
}

/// A wait the server asked for that is longer than the configured maximum: the caller
/// sees it as an error instead of sleeping for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOverCap {
    /// The wait the server asked for (saturated, never overflowing).
    pub wait: Duration,
    /// The configured maximum.
    pub max_wait: Duration,
    /// Which header gave it.
    pub source: WaitSource,
}

impl fmt::Display for WaitOverCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "server asked to wait {:?} ({:?}), over the maximum of {:?}",
            self.wait, self.source, self.max_wait
        )
    }
}

impl std::error::Error for WaitOverCap {}

/// What a policy's quota counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaUnit {
    /// Requests (the default).
    Requests,
    /// Bytes of content.
    ContentBytes,
    /// Requests in flight at once.
    ConcurrentRequests,
    /// Anything else a server names (bounded length).
    Other(String),
}

/// A quota a server advertises (`RateLimit-Policy`, or a policy list in a limit header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The policy's name, when it has one.
    pub name: Option<String>,
    /// How many units the window admits (`q`).
    pub quota: u64,
    /// What a unit is (`qu`).
    pub unit: QuotaUnit,
    /// The window (`w`), when given.
    pub window: Option<Duration>,
    /// The partition key (`pk`), when given.
    pub partition: Option<Vec<u8>>,
}

/// Which part of the server's limits a response concerns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partition {
    /// An opaque key (Discord's bucket, a policy's `pk`), bounded in length.
    pub key: Option<Vec<u8>>,
    /// The server said the limit is global (all routes / partitions).
    pub global: bool,
}

/// One counted dimension: requests, tokens, a named policy...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dimension {
    /// A name for diagnostics (`"requests"`, `"tokens"`, a policy name, a header family).
    pub name: String,
    /// The size of the quota, when known.
    pub limit: Option<u64>,
    /// What is left, when known.
    pub remaining: Option<u64>,
    /// Time until the quota refills, measured from the response, when known.
    pub reset: Option<Duration>,
    /// What kind of header gave the reset (ranks it in the precedence).
    pub reset_source: WaitSource,
}

impl Dimension {
    /// No units left.
    pub fn is_exhausted(&self) -> bool {
        self.remaining == Some(0)
    }
}

/// Everything a response says about the server's limits.
///
/// Built by [`FeedbackParser::parse`](super::FeedbackParser::parse). The wait is read
/// through [`Feedback::wait`], which is either within the cap or an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    /// The response status.
    pub status: StatusCode,
    pub(crate) wait: Option<Result<Duration, WaitOverCap>>,
    pub(crate) wait_source: Option<WaitSource>,
    /// The wait until the next unit when it is shorter than `wait` (a drained bucket's
    /// `t`; see [`Feedback::next_unit_wait`]), raised to the same floor.
    pub(crate) next_unit: Option<Duration>,
    /// The limit of the most constrained dimension.
    pub limit: Option<u64>,
    /// What is left of the most constrained dimension.
    pub remaining: Option<u64>,
    /// Time until the most constrained dimension refills.
    pub reset: Option<Duration>,
    /// Every dimension the headers describe (bounded in number).
    pub dimensions: Vec<Dimension>,
    /// The policies the server advertises (bounded in number).
    pub policies: Vec<Policy>,
    /// The partition the response concerns.
    pub partition: Partition,
    /// An explicit retry hint (`x-should-retry`, `Stripe-Should-Retry`).
    pub should_retry: Option<bool>,
    /// The server said not to retry (a `false` retry hint, a negative gRPC pushback).
    pub do_not_retry: bool,
    /// `grpc-status` read from the headers (trailers-only responses), when present.
    pub grpc_status: Option<u32>,
}

impl Feedback {
    /// An empty feedback for `status`: no wait, nothing known.
    pub fn empty(status: StatusCode) -> Feedback {
        Feedback {
            status,
            wait: None,
            wait_source: None,
            next_unit: None,
            limit: None,
            remaining: None,
            reset: None,
            dimensions: Vec::new(),
            policies: Vec::new(),
            partition: Partition::default(),
            should_retry: None,
            do_not_retry: false,
            grpc_status: None,
        }
    }

    /// How long the server asked to wait before the next request: `Ok(None)` when it
    /// said nothing, `Err` when it asked for more than the cap. A returned wait is
    /// always within `[min_wait, max_wait]`.
    pub fn wait(&self) -> Result<Option<Duration>, WaitOverCap> {
        self.wait.transpose()
    }

    /// Which header gave the wait.
    pub fn wait_source(&self) -> Option<WaitSource> {
        self.wait_source
    }

    /// The wait came from an explicit retry signal (a millisecond header or
    /// `Retry-After`), not from a reset of an exhausted quota.
    pub fn has_retry_signal(&self) -> bool {
        matches!(
            self.wait_source,
            Some(WaitSource::Milliseconds | WaitSource::RetryAfter)
        )
    }

    /// Some dimension has nothing left.
    pub fn is_exhausted(&self) -> bool {
        self.remaining == Some(0) || self.dimensions.iter().any(Dimension::is_exhausted)
    }
}
