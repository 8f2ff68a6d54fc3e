//! What the store answers when Redis cannot decide.
//!
//! ```
//! use tower_ratelimit_redis::FailurePolicy;
//!
//! assert_eq!(FailurePolicy::default(), FailurePolicy::FailOpen);
//! // Ten instances share the limit: each keeps a tenth of it while Redis is down.
//! let insurance = FailurePolicy::local(0.1);
//! assert!(matches!(insurance, FailurePolicy::LocalFallback { .. }));
//! ```

/// The answer while Redis is unreachable, slow (past the per-call timeout), or
/// behind an open circuit breaker.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Admit every request (what Stripe and Envoy do): an outage of the limiter
    /// must not become an outage of the service. The default.
    #[default]
    FailOpen,
    /// Fail every decision with `StoreError::Unavailable`, which is not a denial:
    /// callers (and the layers) can tell "Redis is down" from "over the limit".
    FailClosed,
    /// Decide locally with per-key GCRA buckets at `share` of the shared rate (and of
    /// the burst); `1 / instances` keeps the fleet near the shared rate.
    LocalFallback {
        /// The share of the shared rate, in `(0, 1]`.
        share: f64,
        /// The most keys the local limiter holds.
        max_keys: usize,
    },
}

impl FailurePolicy {
    /// A local fallback at `share` of the rate, holding up to 10 000 keys.
    pub fn local(share: f64) -> FailurePolicy {
        FailurePolicy::LocalFallback {
            share,
            max_keys: 10_000,
        }
    }
}
