//! A request's sleep until its booked slot, moved by quota changes the way the store
//! moved its bucket.
//!
//! In wait mode a keyed request books its slot in `call` and sleeps until it, and so
//! does the rest of a weighted request's cost in the rate layer. When the quota
//! changes meanwhile, a store whose state is time (GCRA, the leaky bucket) rescales
//! each bucket's debt in proportion to the emission interval (a key owing 3 units
//! owes 3 at the new spacing). A slot booked under the old quota is part of that
//! debt, so it moves the same way ([`RateStore::moved_slot`]). Kept where it was, a
//! raise would let a request that came later start before the sleepers, and a cut
//! would start the sleepers at the old spacing.

use crate::quota::Quota;
use crate::store::{QuotaChanges, RateStore};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::futures::OwnedNotified;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

/// The quota a slot follows: a key's in a keyed store, the limiter's otherwise.
pub(crate) trait SlotQuota {
    /// The store that moves slots.
    type Store: RateStore<Self::Key> + ?Sized;
    /// The key the slot was booked for.
    type Key: ?Sized;
    /// The store and the key.
    fn parts(&self) -> (&Self::Store, &Self::Key);
}

/// The quota a slot of `key` is booked under now, and the store's changes so far:
/// read after the store's decision (in-memory stores decide when asked), the change
/// count first, so that a change between the two reads is not replayed on a slot
/// already booked under it. A change between the decision and these reads is taken
/// for the slot's own (a window of a few instructions).
pub(crate) fn booked_under<St, K>(store: &St, key: &K) -> (Quota, u64)
where
    St: RateStore<K> + ?Sized,
    K: ?Sized,
{
    let generation = store.quota_changes().map_or(0, QuotaChanges::generation);
    (store.quota(key), generation)
}

/// The sleep until a booked slot.
pub(crate) struct BookedSlot {
    sleep: Pin<Box<Sleep>>,
    /// `None` where slots do not move.
    follow: Option<Follow>,
}

/// What a slot that moves keeps to follow quota changes.
struct Follow {
    /// The quota the slot was booked (or last moved) under.
    quota: Quota,
    /// The store's changes the slot has followed ([`QuotaChanges::generation`]).
    generation: u64,
    /// Whether the quota has been compared since the slot was made: a change between
    /// the booking and the first poll sent its notice before anyone listened.
    compared: bool,
    /// Completes when the limiter's quota changes.
    changed: Pin<Box<OwnedNotified>>,
    changes: Arc<Notify>,
}

/// The next change of `changes`, registered at once so that none is missed between
/// now and the first poll.
fn next_change(changes: &Arc<Notify>) -> Pin<Box<OwnedNotified>> {
    let mut changed = Box::pin(Arc::clone(changes).notified_owned());
    changed.as_mut().enable();
    changed
}

impl BookedSlot {
    /// A slot `wait` from now, booked under `booked` ([`booked_under`]); `moves`:
    /// whether the store moves booked slots ([`RateStore::rescales_bookings`]).
    pub(crate) fn new(
        wait: Duration,
        (quota, generation): (Quota, u64),
        moves: bool,
        changes: &Arc<Notify>,
    ) -> Self {
        BookedSlot {
            sleep: Box::pin(tokio::time::sleep(wait)),
            follow: moves.then(|| Follow {
                quota,
                generation,
                compared: false,
                changed: next_change(changes),
                changes: Arc::clone(changes),
            }),
        }
    }

    /// A sleep that no quota change moves (a store that does not book ahead in time).
    pub(crate) fn fixed(wait: Duration) -> Self {
        BookedSlot {
            sleep: Box::pin(tokio::time::sleep(wait)),
            follow: None,
        }
    }

    /// The instant the slot starts, as moved by the changes followed so far.
    pub(crate) fn deadline(&self) -> Instant {
        self.sleep.deadline()
    }

    /// Ready at a slot no change moves.
    pub(crate) fn poll_unmoved(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.sleep.as_mut().poll(cx)
    }

    /// Ready at the slot, moved first by any quota change since it was booked.
    pub(crate) fn poll<Q: SlotQuota>(&mut self, cx: &mut Context<'_>, source: &Q) -> Poll<()> {
        if let Some(follow) = self.follow.as_mut() {
            // A change before the slot was due moves it, even when this poll comes
            // after its old instant.
            while !follow.compared || follow.changed.as_mut().poll(cx).is_ready() {
                if follow.compared {
                    // Armed again before the quota is read, so no later change is missed.
                    follow.changed = next_change(&follow.changes);
                }
                follow.compared = true;
                let (store, key) = source.parts();
                // Each change moved the bucket from its own instant, so each is
                // replayed from there: from now, a sleeper run late by a steep cut's
                // factor would start far before its slot, and one move for several
                // changes is not where they took the bucket. A change of another
                // quota than the slot's (a key with its own) does not apply.
                let missed = store
                    .quota_changes()
                    .map(|log| log.since(follow.generation))
                    .unwrap_or_default();
                for change in missed {
                    if change.old == follow.quota {
                        move_from(
                            self.sleep.as_mut(),
                            store,
                            change.at,
                            &change.old,
                            &change.new,
                        );
                        follow.quota = change.new;
                    }
                    follow.generation = change.generation;
                }
                // Changes no longer kept, or a store that keeps none: to the quota now.
                let quota = store.quota(key);
                if quota != follow.quota {
                    move_from(
                        self.sleep.as_mut(),
                        store,
                        Instant::now(),
                        &follow.quota,
                        &quota,
                    );
                    follow.quota = quota;
                }
            }
        }
        self.sleep.as_mut().poll(cx)
    }
}

/// Moves `sleep` as a change at `at` from `old` to `new` moved the bucket. A slot due
/// by then stays: it was valid before the change.
fn move_from<St, K>(sleep: Pin<&mut Sleep>, store: &St, at: Instant, old: &Quota, new: &Quota)
where
    St: RateStore<K> + ?Sized,
    K: ?Sized,
{
    let at = at.min(Instant::now());
    let deadline = sleep.deadline();
    if deadline > at {
        let moved = store.moved_slot(old, new, deadline - at);
        sleep.reset(
            at.checked_add(moved)
                .unwrap_or_else(crate::clock::far_future),
        );
    }
}
