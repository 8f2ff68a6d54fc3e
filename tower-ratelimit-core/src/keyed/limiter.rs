//! The keyed limiter handle: one store of per-key buckets, shared by every clone.
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_core::keyed::KeyedRateLimiter;
//! use tower_ratelimit_core::store::Decision;
//! use tower_ratelimit_core::Quota;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let limiter = KeyedRateLimiter::new(Quota::per_second(1)?);
//! let sharer = limiter.clone(); // the same buckets
//!
//! assert!(limiter.check(&"10.0.0.1", 1).await?.is_allowed());
//! match sharer.check(&"10.0.0.1", 1).await? {
//!     Decision::Denied { retry_after, .. } => assert_eq!(retry_after, Duration::from_secs(1)),
//!     other => panic!("{other:?}"),
//! }
//! assert!(sharer.check(&"10.0.0.2", 1).await?.is_allowed()); // another key, its own bucket
//!
//! // Wait mode: take the next slot and sleep until it.
//! let start = tokio::time::Instant::now();
//! limiter.acquire(&"10.0.0.1", 1, Duration::from_secs(5)).await?;
//! assert_eq!(start.elapsed(), Duration::from_secs(1));
//!
//! assert_eq!(limiter.snapshot(&"10.0.0.1").await?.remaining, 0);
//! assert_eq!(limiter.len(), 2);
//! # Ok(()) }
//! ```

use super::store::KeyedMemoryStore;
use crate::algorithm::{Algorithm, Gcra, Snapshot};
use crate::error::{BoxError, StoreError, WaitTooLong};
use crate::limiter::booked_slot::{booked_under, BookedSlot, SlotQuota};
use crate::quota::Quota;
use crate::store::{Decision, RateStore, VacatedSlot};
use std::fmt;
use std::future::poll_fn;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::sync::Notify;

/// A rate limiter with a bucket per key, shared by every clone of the handle.
///
/// Its store is any [`RateStore<K>`]: by default a [`KeyedMemoryStore`] with GCRA
/// buckets, bounded memory and a hard cap on keys; any algorithm through
/// [`KeyedMemoryStore::with_algorithm`], or a remote store.
pub struct KeyedRateLimiter<K, St = KeyedMemoryStore<K, Gcra>> {
    store: Arc<St>,
    /// Told of every [`KeyedRateLimiter::set_quota`], for the requests sleeping until
    /// a booked slot.
    quota_changed: Arc<Notify>,
    _key: PhantomData<fn(&K)>,
}

impl<K, St> Clone for KeyedRateLimiter<K, St> {
    fn clone(&self) -> Self {
        KeyedRateLimiter {
            store: Arc::clone(&self.store),
            quota_changed: Arc::clone(&self.quota_changed),
            _key: PhantomData,
        }
    }
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> KeyedRateLimiter<K> {
    /// A GCRA bucket per key, all with `quota`, in memory, with the default cap of
    /// [`super::DEFAULT_MAX_KEYS`] keys.
    pub fn new(quota: Quota) -> Self {
        KeyedRateLimiter::from_store(KeyedMemoryStore::new(quota))
    }
}

impl<K, St: RateStore<K>> KeyedRateLimiter<K, St> {
    /// A limiter over `store` (a configured [`KeyedMemoryStore`], or a remote store).
    pub fn from_store(store: St) -> Self {
        KeyedRateLimiter {
            store: Arc::new(store),
            quota_changed: Arc::new(Notify::new()),
            _key: PhantomData,
        }
    }

    /// The store.
    pub fn store(&self) -> &St {
        &self.store
    }

    /// Takes `cost` units of `key`'s bucket now if they fit (reject mode).
    pub fn check(&self, key: &K, cost: u64) -> St::Future {
        self.store.check(key, cost)
    }

    /// Whether `cost` units would fit now, taking nothing.
    pub fn peek(&self, key: &K, cost: u64) -> St::Future {
        self.store.peek(key, cost)
    }

    /// Takes the next `cost` units of `key` even if they are valid only later, unless
    /// that is more than `max_wait` away; the decision says how long to wait.
    pub fn reserve(&self, key: &K, cost: u64, max_wait: Duration) -> St::Future {
        self.store.reserve(key, cost, max_wait)
    }

    /// Waits for `cost` units of `key` (wait mode): reserves the next slot, then
    /// sleeps until it. Requests for one key start in the order they reserved. A
    /// quota change through [`KeyedRateLimiter::set_quota`] moves the slot the way it
    /// moves the key's debt, where the store rescales time (GCRA, the leaky bucket).
    ///
    /// Dropping the future during the sleep leaves the slot to the key's next
    /// reservation, where the store keeps such slots ([`RateStore::vacate`]).
    ///
    /// # Errors
    /// [`WaitTooLong`] when the slot is more than `max_wait` away (nothing is taken),
    /// and the store's errors ([`crate::error::CostTooLarge`],
    /// [`StoreError::TooManyKeys`], ...), boxed.
    pub async fn acquire(
        &self,
        key: &K,
        cost: u64,
        max_wait: Duration,
    ) -> Result<Snapshot, BoxError> {
        // Before the store books: a slot is never dated later than its booking.
        let asked_at = tokio::time::Instant::now();
        match self.store.reserve(key, cost, max_wait).await {
            Ok(Decision::Allowed { snapshot, wait }) => {
                if !wait.is_zero() {
                    let booked = booked_under(&*self.store, key);
                    let mut sleeper = Sleeper {
                        slot: self.booked_slot(wait, booked),
                        source: KeySlot { key, limiter: self },
                        booked,
                        booked_at: asked_at,
                        cost,
                        due: false,
                    };
                    poll_fn(|cx| sleeper.poll(cx)).await;
                }
                Ok(snapshot)
            }
            Ok(Decision::Denied { retry_after, .. }) => Err(WaitTooLong {
                wait: retry_after,
                max_wait,
            }
            .into()),
            Err(e) => Err(e.into_box()),
        }
    }

    /// The bucket of `key` now (limit, remaining, reset), for response headers. An
    /// unknown key reads as a full bucket.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn snapshot(&self, key: &K) -> Result<Snapshot, StoreError> {
        Ok(self.store.peek(key, 0).await?.snapshot())
    }

    /// The quota that applies to `key`.
    pub fn quota(&self, key: &K) -> Quota {
        self.store.quota(key)
    }

    /// Replaces the default quota (keys with a quota of their own keep it). Buckets
    /// keep their fill level in units, up to the new burst: a key owing 3 units owes 3
    /// at the new spacing (see [`KeyedMemoryStore::set_default_quota`]). Requests sleeping until a slot
    /// they booked move it the same way where the store rescales time (GCRA, the leaky
    /// bucket), so they keep their order and start at the new spacing; slots of
    /// window algorithms keep their instants, as the windows keep the units booked in
    /// them. A change made on the store directly reaches the buckets only.
    pub fn set_quota(&self, quota: Quota) {
        self.store.set_quota(quota);
        self.quota_changed.notify_waiters();
    }

    /// The sleep until a slot booked `wait` from now under `booked`
    /// ([`booked_under`]).
    pub(super) fn booked_slot(&self, wait: Duration, booked: (Quota, u64)) -> BookedSlot {
        BookedSlot::new(
            wait,
            booked,
            self.store.rescales_bookings(),
            &self.quota_changed,
        )
    }
}

/// An [`acquire`](KeyedRateLimiter::acquire) sleeping until its slot, which leaves
/// the slot to the key's next request if dropped before it ([`RateStore::vacate`]).
struct Sleeper<'a, K, St: RateStore<K>> {
    slot: BookedSlot,
    source: KeySlot<'a, K, St>,
    booked: (Quota, u64),
    booked_at: tokio::time::Instant,
    cost: u64,
    due: bool,
}

impl<K, St: RateStore<K>> Sleeper<'_, K, St> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        ready!(self.slot.poll(cx, &self.source));
        self.due = true;
        Poll::Ready(())
    }
}

impl<K, St: RateStore<K>> Drop for Sleeper<'_, K, St> {
    fn drop(&mut self) {
        if !self.due {
            let KeySlot { key, limiter } = self.source;
            let (quota, generation) = self.booked;
            limiter.store.vacate(
                key,
                VacatedSlot {
                    at: self.slot.deadline(),
                    cost: self.cost,
                    quota,
                    generation,
                    booked_at: self.booked_at,
                },
            );
        }
    }
}

/// The quota a slot of `key` follows.
pub(super) struct KeySlot<'a, K, St> {
    pub(super) key: &'a K,
    pub(super) limiter: &'a KeyedRateLimiter<K, St>,
}

impl<K, St: RateStore<K>> SlotQuota for KeySlot<'_, K, St> {
    type Store = St;
    type Key = K;

    fn parts(&self) -> (&St, &K) {
        (self.limiter.store(), self.key)
    }
}

impl<K, A, S> KeyedRateLimiter<K, KeyedMemoryStore<K, A, S>>
where
    K: Hash + Eq + Clone,
    A: Algorithm,
    S: BuildHasher + Clone,
{
    /// Forgets `key`: its next request starts with a full bucket. Returns whether the
    /// key was held.
    pub fn remove(&self, key: &K) -> bool {
        self.store.remove(key)
    }

    /// The number of keys held.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }
}

impl<K, St: fmt::Debug> fmt::Debug for KeyedRateLimiter<K, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiter")
            .field("store", &self.store)
            .finish()
    }
}
