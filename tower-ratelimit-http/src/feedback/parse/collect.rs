//! What the header families find, gathered before precedence is applied.

use crate::feedback::model::{Dimension, Partition, Policy, WaitSource};
use std::time::Duration;

/// Most dimensions or policies kept from one response.
pub(crate) const MAX_ITEMS: usize = 32;

/// The raw findings of every header family.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    /// Explicit retry waits (millisecond headers, `Retry-After`).
    pub(crate) waits: Vec<(WaitSource, Duration)>,
    pub(crate) dimensions: Vec<Dimension>,
    pub(crate) policies: Vec<Policy>,
    pub(crate) partition: Partition,
    /// A partition key seen on a dimension that is not exhausted; used only when no
    /// exhausted dimension names one.
    pub(crate) fallback_key: Option<Vec<u8>>,
    pub(crate) should_retry: Option<bool>,
    pub(crate) do_not_retry: bool,
    pub(crate) grpc_status: Option<u32>,
}

impl Collected {
    pub(crate) fn wait(&mut self, source: WaitSource, wait: Duration) {
        if self.waits.len() < MAX_ITEMS {
            self.waits.push((source, wait));
        }
    }

    pub(crate) fn dimension(&mut self, dimension: Dimension) {
        let says_something =
            dimension.limit.is_some() || dimension.remaining.is_some() || dimension.reset.is_some();
        if says_something && self.dimensions.len() < MAX_ITEMS {
            self.dimensions.push(dimension);
        }
    }

    pub(crate) fn policy(&mut self, policy: Policy) {
        if self.policies.len() < MAX_ITEMS {
            self.policies.push(policy);
        }
    }

    /// Records a partition key; the key of an exhausted dimension wins.
    pub(crate) fn partition_key(&mut self, key: Vec<u8>, exhausted: bool) {
        if exhausted {
            self.partition.key.get_or_insert(key);
        } else {
            self.fallback_key.get_or_insert(key);
        }
    }
}
