//! The errors of this crate: every one is typed, implements [`std::error::Error`], and
//! boxes into tower's [`BoxError`].
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_core::error::{BoxError, RateLimited};
//! use tower_ratelimit_core::algorithm::Snapshot;
//!
//! let denied = RateLimited::new(
//!     Duration::from_millis(200),
//!     Snapshot { limit: 5, remaining: 0, reset: Duration::from_secs(1) },
//! );
//! let boxed: BoxError = denied.into();
//! let back = boxed.downcast_ref::<RateLimited>().unwrap();
//! assert_eq!(back.retry_after(), Duration::from_millis(200));
//! ```

use crate::algorithm::Snapshot;
use std::fmt;
use std::time::Duration;

/// The boxed error type of tower middleware.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A request's cost is above what its quota can ever admit at once (the burst, or the
/// count per window). Waiting would never help, so it fails at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CostTooLarge {
    /// The cost asked for.
    pub cost: u64,
    /// The most the quota can admit at once.
    pub max: u64,
}

impl fmt::Display for CostTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "request cost {} exceeds the most the quota admits at once ({})",
            self.cost, self.max
        )
    }
}

impl std::error::Error for CostTooLarge {}

/// A request denied by a limiter in reject mode: it was not sent, and may be retried
/// after [`RateLimited::retry_after`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    retry_after: Duration,
    snapshot: Snapshot,
}

impl RateLimited {
    /// A denial that can be retried after `retry_after`.
    pub fn new(retry_after: Duration, snapshot: Snapshot) -> RateLimited {
        RateLimited {
            retry_after,
            snapshot,
        }
    }

    /// How long until the same request could pass.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// The bucket at the time of the denial (limit, remaining, reset).
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot
    }
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rate limited: retry after {:?}", self.retry_after)
    }
}

impl std::error::Error for RateLimited {}

/// `call` was invoked without a successful `poll_ready` first. Tower's contract forbids
/// it; this crate answers with this error instead of panicking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotReady;

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("service called before poll_ready returned Ready")
    }
}

impl std::error::Error for NotReady {}

/// A wait-mode request would have had to wait longer than the configured maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTooLong {
    /// How long the request would have waited.
    pub wait: Duration,
    /// The configured maximum.
    pub max_wait: Duration,
}

impl fmt::Display for WaitTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the next slot is {:?} away, over the maximum wait of {:?}",
            self.wait, self.max_wait
        )
    }
}

impl std::error::Error for WaitTooLong {}

/// Why a [`crate::store::RateStore`] could not decide.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The cost can never pass under the quota.
    CostTooLarge(CostTooLarge),
    /// The store is out of reach (a remote store's connection, timeout, or circuit
    /// breaker). Reported apart from "over the limit" so that callers can fail open.
    Unavailable(BoxError),
    /// A keyed store is full and its policy rejects keys it has not seen.
    TooManyKeys {
        /// The configured cap.
        max_keys: usize,
        /// How soon the store expects room for a new key, when it knows: the soonest
        /// one of the keys it holds is full again and can be dropped. A hint, not a
        /// promise: that key may be used again meanwhile, and another new key may take
        /// the room first.
        retry_after: Option<Duration>,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::CostTooLarge(e) => e.fmt(f),
            StoreError::Unavailable(e) => write!(f, "rate-limit store unavailable: {e}"),
            StoreError::TooManyKeys { max_keys, .. } => {
                write!(
                    f,
                    "rate-limit store holds its maximum of {max_keys} active keys"
                )
            }
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::CostTooLarge(e) => Some(e),
            StoreError::Unavailable(e) => Some(e.as_ref()),
            StoreError::TooManyKeys { .. } => None,
        }
    }
}

impl From<CostTooLarge> for StoreError {
    fn from(e: CostTooLarge) -> Self {
        StoreError::CostTooLarge(e)
    }
}

impl StoreError {
    /// Turns the error into the boxed form tower middleware returns, keeping
    /// [`CostTooLarge`] as its own type so callers can downcast to it.
    pub fn into_box(self) -> BoxError {
        match self {
            StoreError::CostTooLarge(e) => Box::new(e),
            other => Box::new(other),
        }
    }
}
