//! Counters of what a store did, so that failures answered by the policy (fail open,
//! local fallback) stay visible.
//!
//! ```
//! use tower_ratelimit_redis::Stats;
//!
//! let stats = Stats::default();
//! assert_eq!(stats.remote_decisions, 0);
//! assert_eq!(stats.failures(), 0);
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

/// A point-in-time copy of a store's counters (all since the store was built).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Decisions made by a script on the server.
    pub remote_decisions: u64,
    /// Calls that failed: errors and timeouts.
    pub remote_errors: u64,
    /// Calls not made because the circuit breaker was open.
    pub short_circuited: u64,
    /// Denials answered from the local negative cache.
    pub cached_denials: u64,
    /// Decisions made by the failure policy (fail open, fail closed, or local
    /// fallback) instead of Redis.
    pub policy_decisions: u64,
    /// Throttle drain calls (`RateStore::drain_until`) that Redis answered as the
    /// drain script: a drain sent both by its task and ahead of a decision counts
    /// twice (the second finds the bucket drained and changes nothing).
    pub drains: u64,
    /// Drain calls that failed, timed out or were skipped while the breaker was open:
    /// after an outage or a timeout the drain stays pending (for a task, or the key's
    /// next decision); after an answer about the call itself (an error such as
    /// `NOPERM`, or a reply that is not the script's) it is given up, since every
    /// resend would meet the same answer.
    pub drain_failures: u64,
    /// Drains dropped because too many keys already had one pending, and throttles
    /// whose end could not be scheduled because too many keys already wait for
    /// theirs (`RateStore::schedule_drain`; those drain at the limiter's next check).
    pub drains_dropped: u64,
    /// Connections replaced because calls on them timed out until the breaker opened
    /// (a store from `RedisStoreBuilder::connect` only): a connection can stop
    /// answering without an error, which its manager never reconnects from.
    pub reconnects: u64,
}

impl Stats {
    /// Remote errors plus short-circuited calls.
    pub fn failures(&self) -> u64 {
        self.remote_errors + self.short_circuited
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) remote_decisions: AtomicU64,
    pub(crate) remote_errors: AtomicU64,
    pub(crate) short_circuited: AtomicU64,
    pub(crate) cached_denials: AtomicU64,
    pub(crate) policy_decisions: AtomicU64,
    pub(crate) drains: AtomicU64,
    pub(crate) drain_failures: AtomicU64,
    pub(crate) drains_dropped: AtomicU64,
    pub(crate) reconnects: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            remote_decisions: get(&self.remote_decisions),
            remote_errors: get(&self.remote_errors),
            short_circuited: get(&self.short_circuited),
            cached_denials: get(&self.cached_denials),
            policy_decisions: get(&self.policy_decisions),
            drains: get(&self.drains),
            drain_failures: get(&self.drain_failures),
            drains_dropped: get(&self.drains_dropped),
            reconnects: get(&self.reconnects),
        }
    }
}
