//! The recent quota changes of a store, for requests sleeping until slots booked
//! before them: each change moved the bucket's debt from its own instant, so a slot
//! replays every change it missed, in order, rather than one move for all of them.

use crate::algorithm::sync::{lock, AtomicU64, Mutex, Ordering};
use crate::quota::Quota;
use std::collections::VecDeque;
use tokio::time::Instant;

/// How many changes are kept: a sleeper that missed more (not polled through as many
/// changes) is moved by those kept, then once more to the quota in force.
const KEPT: usize = 64;

/// One quota change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaChange {
    /// Counts the store's changes, from 1.
    pub generation: u64,
    /// When the store rescaled its state.
    pub at: Instant,
    /// The quota it replaced.
    pub old: Quota,
    /// The quota it set.
    pub new: Quota,
}

/// The last changes of a store's quota (see [`crate::store::RateStore::quota_changes`]).
#[derive(Debug)]
pub struct QuotaChanges {
    recent: Mutex<VecDeque<QuotaChange>>,
    /// The number of changes, read without the lock: every keyed wait-mode request
    /// reads it when it books a slot.
    generation: AtomicU64,
}

impl Default for QuotaChanges {
    fn default() -> Self {
        QuotaChanges {
            recent: Mutex::new(VecDeque::new()),
            generation: AtomicU64::new(0),
        }
    }
}

impl QuotaChanges {
    /// Notes a change made at `at`; the store calls it where it rescales its state,
    /// under the lock that orders its changes.
    pub fn record(&self, at: Instant, old: Quota, new: Quota) {
        let mut recent = lock(&self.recent);
        // Counted under the lock, so generations follow the order of the log; stored
        // after the entry, so a reader that sees a generation finds its change.
        let generation = self.generation.load(Ordering::Relaxed) + 1;
        if recent.len() == KEPT {
            recent.pop_front();
        }
        recent.push_back(QuotaChange {
            generation,
            at,
            old,
            new,
        });
        self.generation.store(generation, Ordering::Release);
    }

    /// The number of changes so far.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The changes after `generation` that are still kept, oldest first.
    pub fn since(&self, generation: u64) -> Vec<QuotaChange> {
        lock(&self.recent)
            .iter()
            .filter(|change| change.generation > generation)
            .copied()
            .collect()
    }
}
