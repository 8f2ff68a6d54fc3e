//! What a full keyed store does with a key it has not seen.
//!
//! ```
//! use tower_ratelimit_core::keyed::{CapPolicy, KeyedMemoryStore};
//! use tower_ratelimit_core::store::Decision;
//! use tower_ratelimit_core::error::StoreError;
//! use tower_ratelimit_core::Quota;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = KeyedMemoryStore::new(Quota::per_minute(1)?)
//!     .with_max_keys(2)
//!     .with_cap_policy(CapPolicy::RejectNew);
//! assert!(store.check_now(&"a", 1)?.is_allowed());
//! assert!(store.check_now(&"b", 1)?.is_allowed());
//! // Both keys are in use for a minute: a third key is refused, and the
//! // known keys keep their exact state.
//! assert!(matches!(store.check_now(&"c", 1), Err(StoreError::TooManyKeys { max_keys: 2, .. })));
//! assert!(matches!(store.check_now(&"a", 1)?, Decision::Denied { .. }));
//! # Ok(()) }
//! ```

/// The policy of a keyed store that holds its maximum number of keys, all of them
/// busy (idle keys are always dropped first, since dropping them changes nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CapPolicy {
    /// Refuse unseen keys with [`StoreError::TooManyKeys`](crate::error::StoreError)
    /// until some key becomes idle (a full shard sweeps idle keys at least every
    /// 100 ms while unseen keys keep arriving). Known keys keep their exact state: a
    /// flood of new keys can never reset the limit of a key already in the store. New
    /// clients are refused while the flood lasts. The default.
    #[default]
    RejectNew,
    /// Make room by dropping the keys whose buckets are closest to full (the soonest
    /// full again, by [`Algorithm::busy_until`](crate::algorithm::Algorithm::busy_until)),
    /// about an eighth of a full shard at a time, chosen from a sample.
    ///
    /// **An evicted key starts again with a full bucket**: a client whose key was
    /// evicted may get up to its whole burst again, sooner than its quota allows.
    /// Because the least busy keys go first, what it gains is at most what it had
    /// left to refill. The window algorithms rank by the units their windows hold (as
    /// a bucket refilling at the quota's rate would be full again), not by when the
    /// window ends, which every key used in it shares: a key that drained its count
    /// goes after every key that used less. New clients are always served.
    EvictLeastBusy,
}
