//! What one response said about the server's limit: the input of every controller.
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_adaptive::{Hints, Outcome, Policy};
//!
//! // A 429 that asks for one second and advertises 100 requests per second.
//! let hints = Hints { policy: Some(Policy::new(100, Duration::from_secs(1))), ..Hints::default() };
//! let outcome = Outcome::Throttled {
//!     latency: Duration::from_millis(40),
//!     retry_after: Some(Duration::from_secs(1)),
//!     hints,
//! };
//! assert!(outcome.is_throttle());
//! assert_eq!(outcome.hints().and_then(|h| h.policy).map(|p| p.rate()), Some(100.0));
//! ```

use std::time::Duration;

/// A quota the server advertised (`RateLimit-Policy: "p";q=100;w=1`): `quota` units
/// per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Units allowed per window (`q`).
    pub quota: u64,
    /// The window (`w`).
    pub window: Duration,
}

impl Policy {
    /// A policy of `quota` units per `window`.
    pub fn new(quota: u64, window: Duration) -> Policy {
        Policy { quota, window }
    }

    /// The advertised rate in units per second; `None` when the window is zero or the
    /// quota is zero (such a header says nothing usable).
    pub fn rate_per_second(&self) -> Option<f64> {
        let secs = self.window.as_secs_f64();
        if self.quota == 0 || secs <= 0.0 {
            return None;
        }
        Some(self.quota as f64 / secs)
    }

    /// The advertised rate in units per second, 0 when unusable.
    pub fn rate(&self) -> f64 {
        self.rate_per_second().unwrap_or(0.0)
    }
}

/// A partition of the server's limits that a response named: the `pk` parameter of
/// the IETF `RateLimit` / `RateLimit-Policy` headers, or a vendor's bucket header.
///
/// Kept as a 64-bit hash of the key's bytes (FNV-1a) so that [`Hints`] stays `Copy`;
/// two different keys colliding would only make two server partitions share one
/// controller.
///
/// ```
/// use tower_ratelimit_adaptive::ServerPartition;
///
/// assert_eq!(ServerPartition::from_key(b"user-1"), ServerPartition::from_key(b"user-1"));
/// assert_ne!(ServerPartition::from_key(b"user-1"), ServerPartition::from_key(b"user-2"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerPartition(u64);

impl ServerPartition {
    /// The partition named by `key` (the raw bytes of `pk`, or a bucket id).
    pub fn from_key(key: &[u8]) -> ServerPartition {
        // FNV-1a: stable across processes and releases, unlike std's hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        ServerPartition(h)
    }

    /// The 64-bit hash identifying the partition.
    pub fn id(&self) -> u64 {
        self.0
    }
}

/// What the server's rate-limit headers said, when it sent any. Every field is
/// optional: servers send some, all or none of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hints {
    /// Units left in the current window (`remaining`, `r`).
    pub remaining: Option<u64>,
    /// The limit the server reported (`limit`), without a window.
    pub limit: Option<u64>,
    /// Time until quota comes back (`reset`, `t`).
    pub reset: Option<Duration>,
    /// The advertised policy (quota per window), when the server sends one.
    pub policy: Option<Policy>,
    /// The partition of the server's limits the response concerns (`pk`), when named.
    pub partition: Option<ServerPartition>,
}

impl Hints {
    /// No hints: the server sent no rate-limit headers.
    pub fn none() -> Hints {
        Hints::default()
    }

    /// Hints carrying only an advertised policy.
    pub fn with_policy(policy: Policy) -> Hints {
        Hints {
            policy: Some(policy),
            ..Hints::default()
        }
    }
}

/// How one request ended, as far as the limit is concerned. A classifier turns a
/// service's `Result<Response, Error>` into one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The server accepted the request (2xx, or any answer that is not a throttle).
    Success {
        /// Time from sending to the response.
        latency: Duration,
        /// Rate-limit headers on the response.
        hints: Hints,
    },
    /// The server refused the request because of its rate limit (429, or 503 with
    /// Retry-After).
    Throttled {
        /// Time from sending to the response.
        latency: Duration,
        /// How long the server asked the client to wait, already capped by the caller.
        retry_after: Option<Duration>,
        /// Rate-limit headers on the response.
        hints: Hints,
    },
    /// The server is overloaded or did not answer in time (503 without a wait, a
    /// timeout, a refused connection).
    Overload {
        /// Time from sending to the failure.
        latency: Duration,
    },
    /// Says nothing about the limit (a 4xx caused by the request, a cancelled call).
    Ignored,
}

impl Outcome {
    /// A success with no headers.
    pub fn success(latency: Duration) -> Outcome {
        Outcome::Success {
            latency,
            hints: Hints::default(),
        }
    }

    /// A throttle (429) with no headers and no Retry-After.
    pub fn throttled(latency: Duration) -> Outcome {
        Outcome::Throttled {
            latency,
            retry_after: None,
            hints: Hints::default(),
        }
    }

    /// The same outcome with its latency replaced (the layer measures latency itself).
    pub fn with_latency(self, latency: Duration) -> Outcome {
        match self {
            Outcome::Success { hints, .. } => Outcome::Success { latency, hints },
            Outcome::Throttled {
                retry_after, hints, ..
            } => Outcome::Throttled {
                latency,
                retry_after,
                hints,
            },
            Outcome::Overload { .. } => Outcome::Overload { latency },
            Outcome::Ignored => Outcome::Ignored,
        }
    }

    /// True for [`Outcome::Throttled`] and [`Outcome::Overload`]: the server said "slower".
    pub fn is_throttle(&self) -> bool {
        matches!(self, Outcome::Throttled { .. } | Outcome::Overload { .. })
    }

    /// The same outcome with a throttle's wait replaced (other outcomes unchanged):
    /// the layer hands controllers the hold it applied, not the server's raw wait.
    pub fn with_retry_after(self, retry_after: Option<Duration>) -> Outcome {
        match self {
            Outcome::Throttled { latency, hints, .. } => Outcome::Throttled {
                latency,
                retry_after,
                hints,
            },
            other => other,
        }
    }

    /// True for [`Outcome::Success`].
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success { .. })
    }

    /// The latency, except for [`Outcome::Ignored`].
    pub fn latency(&self) -> Option<Duration> {
        match self {
            Outcome::Success { latency, .. }
            | Outcome::Throttled { latency, .. }
            | Outcome::Overload { latency } => Some(*latency),
            Outcome::Ignored => None,
        }
    }

    /// The header hints, when the outcome carries a response.
    pub fn hints(&self) -> Option<&Hints> {
        match self {
            Outcome::Success { hints, .. } | Outcome::Throttled { hints, .. } => Some(hints),
            _ => None,
        }
    }

    /// The server's requested wait, for a throttle that carried one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Outcome::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
