//! A request's sleep until its booked slot, moved by quota changes the way the store
//! moved its bucket.
//!
//! In wait mode a keyed request books its slot in `call` and sleeps until it, and so
//! does the rest of a weighted request's cost in the rate layer. When the quota
//! changes meanwhile, a store whose state is time (GCRA, the leaky bucket) rescales
//! each bucket's debt in proportion to the emission interval (a key owing 3 units
//! owes 3 at the new spacing). A slot booked under the old quota is part of
//! that debt, so it moves the same way: `now + (slot − now) × new / old`. Kept where
//! it was, a raise would let a request that came later start before the sleepers,
//! and a cut would start the sleepers at the old spacing.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::futures::OwnedNotified;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

/// The sleep until a booked slot.
pub(crate) struct BookedSlot {
    sleep: Pin<Box<Sleep>>,
    /// The key's emission interval the slot was booked (or last moved) under, in ns.
    interval: u64,
    /// Completes when the limiter's quota changes, and what it listens to; `None`
    /// where slots do not move.
    changed: Option<(Pin<Box<OwnedNotified>>, Arc<Notify>)>,
}

/// The next change of `changes`, registered at once so that none is missed between
/// now and the first poll.
fn next_change(changes: &Arc<Notify>) -> Pin<Box<OwnedNotified>> {
    let mut changed = Box::pin(Arc::clone(changes).notified_owned());
    changed.as_mut().enable();
    changed
}

impl BookedSlot {
    /// `interval`: the key's emission interval now; `moves`: whether the store rescales
    /// booked debt in time ([`crate::store::RateStore::rescales_bookings`]).
    pub(crate) fn new(wait: Duration, interval: u64, moves: bool, changes: &Arc<Notify>) -> Self {
        BookedSlot {
            sleep: Box::pin(tokio::time::sleep(wait)),
            interval,
            changed: moves.then(|| (next_change(changes), Arc::clone(changes))),
        }
    }

    /// A sleep that no quota change moves (a store that does not book ahead in time).
    pub(crate) fn fixed(wait: Duration) -> Self {
        BookedSlot {
            sleep: Box::pin(tokio::time::sleep(wait)),
            interval: 0,
            changed: None,
        }
    }

    /// Ready at the slot. `interval_now` reads the key's emission interval when the
    /// quota has changed.
    pub(crate) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        interval_now: impl Fn() -> u64,
    ) -> Poll<()> {
        loop {
            if self.sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            let Some((changed, changes)) = self.changed.as_mut() else {
                return Poll::Pending;
            };
            if changed.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // Armed again before the quota is read, so that no later change is missed.
            *changed = next_change(changes);
            let interval = interval_now();
            if interval != self.interval && self.interval > 0 {
                let now = Instant::now();
                let left = self.sleep.deadline().saturating_duration_since(now);
                let moved = left.as_nanos() * u128::from(interval) / u128::from(self.interval);
                let moved = Duration::from_nanos(u64::try_from(moved).unwrap_or(u64::MAX));
                let at = now
                    .checked_add(moved)
                    .unwrap_or_else(crate::clock::far_future);
                self.sleep.as_mut().reset(at);
                self.interval = interval;
            }
        }
    }
}
