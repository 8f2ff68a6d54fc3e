//! Why Redis could not decide: the cause inside [`StoreError::Unavailable`].
//!
//! A store error is never reported as "over the limit". Under the fail-closed policy
//! the caller gets `StoreError::Unavailable` with one of these inside; under the
//! other policies the store answers locally and counts the failure in its
//! [`Stats`](crate::Stats).
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_core::error::{BoxError, StoreError};
//! use tower_ratelimit_redis::error::Unavailable;
//!
//! let err = StoreError::Unavailable(Box::new(Unavailable::Timeout(Duration::from_millis(20))));
//! let boxed: BoxError = err.into_box();
//! let store_err = boxed.downcast_ref::<StoreError>().unwrap();
//! let StoreError::Unavailable(cause) = store_err else { unreachable!() };
//! assert!(matches!(
//!     cause.downcast_ref::<Unavailable>(),
//!     Some(Unavailable::Timeout(_))
//! ));
//! ```
//!
//! [`StoreError::Unavailable`]: tower_ratelimit_core::error::StoreError::Unavailable

use std::fmt;
use std::time::Duration;

/// The cause of a failed remote decision.
#[derive(Debug)]
#[non_exhaustive]
pub enum Unavailable {
    /// Redis did not answer within the store's per-call timeout.
    Timeout(Duration),
    /// Recent calls failed, so the circuit breaker is open and no call was made.
    CircuitOpen,
    /// The client or the server reported an error.
    Redis(redis::RedisError),
    /// The script answered something this crate does not understand (a script of
    /// another version under the same name, or a proxy in between).
    BadReply,
    /// Redis could not decide (`cause`), and the local fallback that answers meanwhile
    /// cannot admit the cost at all: it is above this instance's share of the burst,
    /// `local_burst`, though within the shared one. A smaller cost may pass.
    OverLocalBurst {
        /// The most the local fallback admits at once.
        local_burst: u64,
        /// Why Redis could not decide.
        cause: Box<Unavailable>,
    },
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::Timeout(after) => write!(f, "redis did not answer within {after:?}"),
            Unavailable::CircuitOpen => {
                f.write_str("redis circuit breaker is open after recent failures")
            }
            Unavailable::Redis(e) => write!(f, "redis error: {e}"),
            Unavailable::BadReply => f.write_str("unexpected reply from the rate-limit script"),
            Unavailable::OverLocalBurst { local_burst, cause } => write!(
                f,
                "{cause}; the local fallback admits at most {local_burst} units at once"
            ),
        }
    }
}

impl Unavailable {
    /// Whether this failure says Redis is out of reach (or not serving), as opposed to
    /// an error a healthy server gave for this one call. Only outages count toward the
    /// circuit breaker: one odd key must not turn the limiter off for every key.
    pub fn is_outage(&self) -> bool {
        match self {
            Unavailable::Redis(e) => is_outage(e),
            Unavailable::Timeout(_) | Unavailable::CircuitOpen | Unavailable::BadReply => true,
            Unavailable::OverLocalBurst { cause, .. } => cause.is_outage(),
        }
    }
}

/// Whether a client error says Redis is out of reach (see [`Unavailable::is_outage`]).
pub(crate) fn is_outage(e: &redis::RedisError) -> bool {
    // The server answered, with an error about this call: a script error, a key of
    // another type, a missing permission.
    let per_call = matches!(
        e.code(),
        Some("ERR" | "WRONGTYPE" | "NOSCRIPT" | "CROSSSLOT" | "NOPERM" | "EXECABORT")
    ) || e.kind() == redis::ErrorKind::UnexpectedReturnType;
    !per_call
}

impl std::error::Error for Unavailable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Unavailable::Redis(e) => Some(e),
            Unavailable::OverLocalBurst { cause, .. } => Some(cause.as_ref()),
            _ => None,
        }
    }
}

impl From<redis::RedisError> for Unavailable {
    fn from(e: redis::RedisError) -> Self {
        Unavailable::Redis(e)
    }
}
