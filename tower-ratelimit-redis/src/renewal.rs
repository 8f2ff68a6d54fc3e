//! Replacing a connection that stopped answering without an error.
//!
//! The `ConnectionManager` that [`RedisStoreBuilder::connect`] builds reconnects when
//! its connection reports an error, not when it merely stops answering. A host that
//! vanished (a failover to another machine, a partition) leaves every call timing
//! out for as long as the operating system retransmits (about 15 minutes on Linux's
//! defaults), and a middlebox that keeps the socket open after its backend died
//! leaves it so for good. So when a call times out and the circuit breaker is open
//! after it, the store replaces the manager with a fresh one on the same client, at
//! most once per `open_for`: the breaker's next probe connects anew, to wherever the
//! URL now leads. A store built on a connection of its own
//! ([`RedisStoreBuilder::build`]) keeps it.
//!
//! [`RedisStoreBuilder::connect`]: crate::RedisStoreBuilder::connect
//! [`RedisStoreBuilder::build`]: crate::RedisStoreBuilder::build

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Makes a fresh connection, or `None` when it cannot (no runtime to run it on).
pub(crate) type MakeConnection<C> = Box<dyn Fn() -> Option<C> + Send + Sync>;

/// Makes replacement connections, at most one per `gap`.
pub(crate) struct Renewal<C> {
    make: MakeConnection<C>,
    /// The least time between two replacements.
    gap: Duration,
    last: Mutex<Option<Instant>>,
}

impl<C> fmt::Debug for Renewal<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Renewal")
            .field("gap", &self.gap)
            .finish_non_exhaustive()
    }
}

impl<C> Renewal<C> {
    pub(crate) fn new(make: MakeConnection<C>, gap: Duration) -> Renewal<C> {
        Renewal {
            make,
            gap,
            last: Mutex::new(None),
        }
    }

    /// A fresh connection, unless one was made less than the gap ago.
    pub(crate) fn renew(&self) -> Option<C> {
        let now = Instant::now();
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| now.saturating_duration_since(at) < self.gap) {
                return None;
            }
            *last = Some(now);
        }
        (self.make)()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    fn counting() -> (Renewal<u32>, Arc<AtomicU32>) {
        let made = Arc::new(AtomicU32::new(0));
        let counter = made.clone();
        let make: MakeConnection<u32> =
            Box::new(move || Some(counter.fetch_add(1, Ordering::Relaxed) + 1));
        (Renewal::new(make, Duration::from_millis(500)), made)
    }

    #[tokio::test(start_paused = true)]
    async fn renews_at_most_once_per_gap() {
        let (renewal, made) = counting();
        assert_eq!(renewal.renew(), Some(1));
        assert_eq!(renewal.renew(), None);
        tokio::time::sleep(Duration::from_millis(499)).await;
        assert_eq!(renewal.renew(), None);
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(renewal.renew(), Some(2));
        assert_eq!(made.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_connection_that_cannot_be_made_is_none() {
        let make: MakeConnection<u32> = Box::new(|| None);
        assert_eq!(Renewal::new(make, Duration::ZERO).renew(), None);
    }
}
