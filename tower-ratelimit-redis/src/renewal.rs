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
//! URL now leads. Nor is a replacement replaced while it is still connecting (its
//! warm-up runs, for at most the warm-up's own bound, whether or not its task gets to
//! run): a setup slower than `open_for` would otherwise be thrown away each time,
//! nearly made, and the store would never connect. A store built on a connection of
//! its own ([`RedisStoreBuilder::build`]) keeps it.
//!
//! [`RedisStoreBuilder::connect`]: crate::RedisStoreBuilder::connect
//! [`RedisStoreBuilder::build`]: crate::RedisStoreBuilder::build

use futures_util::future::BoxFuture;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Makes a fresh connection and what connects it in the background (a bounded
/// future), or `None` when it cannot.
pub(crate) type MakeConnection<C> =
    Box<dyn Fn() -> Option<(C, BoxFuture<'static, ()>)> + Send + Sync>;

/// Makes replacement connections, at most one per `gap`, and none while the last
/// one is still connecting.
pub(crate) struct Renewal<C> {
    make: MakeConnection<C>,
    /// The least time between two replacements.
    gap: Duration,
    /// The most a warm-up may take: past it, the replacement counts as connected or
    /// failed whether or not its task has ended, since a task on a runtime nobody
    /// drives (kept idle, or between `block_on`s) may never end.
    warm_for: Duration,
    /// When the last replacement was made, and its number.
    last: Mutex<Option<(Instant, u64)>>,
    /// The number of the replacement whose warm-up runs, 0 when none does.
    warming: Arc<AtomicU64>,
}

/// Clears `warming` when the warm-up ends, however it ends (done, timed out, panicked,
/// or dropped with its runtime), so that a warm-up that never runs blocks nothing.
/// Only its own number: a warm-up that ends past its bound, after the next
/// replacement was made, must not clear the flag of that one.
struct Warming {
    flag: Arc<AtomicU64>,
    number: u64,
}

impl Drop for Warming {
    fn drop(&mut self) {
        let _ = self
            .flag
            .compare_exchange(self.number, 0, Ordering::AcqRel, Ordering::Acquire);
    }
}

impl<C> fmt::Debug for Renewal<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Renewal")
            .field("gap", &self.gap)
            .finish_non_exhaustive()
    }
}

impl<C> Renewal<C> {
    /// Replacements at most one per `gap`, none while the last one's warm-up runs,
    /// and that for at most `warm_for`.
    pub(crate) fn new(make: MakeConnection<C>, gap: Duration, warm_for: Duration) -> Renewal<C> {
        Renewal {
            make,
            gap,
            warm_for,
            last: Mutex::new(None),
            warming: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A fresh connection, unless one was made less than the gap ago or the last one
    /// is still connecting, or there is no runtime to connect it on.
    pub(crate) fn renew(&self) -> Option<C> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, number)) = *last {
            let since = now.saturating_duration_since(at);
            let warming = self.warming.load(Ordering::Acquire) == number;
            if since < self.gap || (warming && since < self.warm_for) {
                return None;
            }
        }
        let (fresh, warm_up) = (self.make)()?;
        let number = last.map_or(0, |(_, number)| number).wrapping_add(1).max(1);
        *last = Some((now, number));
        self.warming.store(number, Ordering::Release);
        let warming = Warming {
            flag: self.warming.clone(),
            number,
        };
        runtime.spawn(async move {
            let _warming = warming;
            warm_up.await;
        });
        Some(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    /// How long a warm-up may take in these tests.
    const WARM_FOR: Duration = Duration::from_secs(4);

    /// Warm-ups that end at once.
    fn counting() -> (Renewal<u32>, Arc<AtomicU32>) {
        warming_for(Duration::ZERO, Duration::from_millis(500))
    }

    /// Warm-ups that take `warm_for`, replacements at most one per `gap`.
    fn warming_for(warm_for: Duration, gap: Duration) -> (Renewal<u32>, Arc<AtomicU32>) {
        let made = Arc::new(AtomicU32::new(0));
        let counter = made.clone();
        let make: MakeConnection<u32> = Box::new(move || {
            let warm_up: BoxFuture<'static, ()> = Box::pin(tokio::time::sleep(warm_for));
            Some((counter.fetch_add(1, Ordering::Relaxed) + 1, warm_up))
        });
        (Renewal::new(make, gap, WARM_FOR), made)
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

    #[tokio::test(start_paused = true)]
    async fn a_replacement_still_connecting_is_not_replaced() {
        let (renewal, made) = warming_for(Duration::from_millis(1_200), Duration::from_millis(500));
        assert_eq!(renewal.renew(), Some(1));
        tokio::time::sleep(Duration::from_millis(1_199)).await;
        assert_eq!(renewal.renew(), None, "replaced while connecting");
        tokio::time::sleep(Duration::from_millis(1)).await;
        // The warm-up task runs its last step.
        tokio::task::yield_now().await;
        assert_eq!(renewal.renew(), Some(2));
        assert_eq!(made.load(Ordering::Relaxed), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_warm_up_dropped_with_its_runtime_blocks_nothing() {
        // No gap: two runtimes' paused clocks do not compare.
        let (renewal, _) = warming_for(Duration::from_secs(3_600), Duration::ZERO);
        let inner = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("runtime");
            let first = runtime.block_on(async { renewal.renew() });
            drop(runtime);
            (first, renewal)
        });
        let (first, renewal) = inner.join().expect("thread");
        assert_eq!(first, Some(1));
        assert_eq!(renewal.renew(), Some(2));
    }

    /// Warm-ups that end only when `end` is notified, or never.
    fn held_warm_ups(
        end: Arc<tokio::sync::Notify>,
        gap: Duration,
    ) -> (Renewal<u32>, Arc<AtomicU32>) {
        let made = Arc::new(AtomicU32::new(0));
        let counter = made.clone();
        let make: MakeConnection<u32> = Box::new(move || {
            let made = counter.fetch_add(1, Ordering::Relaxed) + 1;
            let end = end.clone();
            let warm_up: BoxFuture<'static, ()> = if made == 1 {
                Box::pin(async move { end.notified().await })
            } else {
                Box::pin(std::future::pending())
            };
            Some((made, warm_up))
        });
        (Renewal::new(make, gap, WARM_FOR), made)
    }

    // A warm-up that is not polled to its end (its runtime idle and kept, a
    // current-thread runtime between `block_on`s) must not block replacements for
    // longer than a warm-up may take.
    #[tokio::test(start_paused = true)]
    async fn a_warm_up_that_never_ends_blocks_only_for_its_bound() {
        let end = Arc::new(tokio::sync::Notify::new());
        let (renewal, _) = held_warm_ups(end, Duration::from_millis(500));
        assert_eq!(renewal.renew(), Some(1));
        tokio::time::sleep(WARM_FOR - Duration::from_millis(1)).await;
        assert_eq!(renewal.renew(), None, "replaced while connecting");
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(renewal.renew(), Some(2), "blocked past the warm-up's bound");
    }

    // The first warm-up, late past its bound, ends while the second runs: the
    // second is still connecting, and must not be replaced.
    #[tokio::test(start_paused = true)]
    async fn a_late_warm_up_does_not_clear_the_next_ones_flag() {
        let end = Arc::new(tokio::sync::Notify::new());
        let (renewal, made) = held_warm_ups(end.clone(), Duration::from_millis(500));
        assert_eq!(renewal.renew(), Some(1));
        tokio::time::sleep(WARM_FOR).await;
        assert_eq!(renewal.renew(), Some(2));
        end.notify_one();
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(renewal.renew(), None, "replaced while connecting");
        assert_eq!(made.load(Ordering::Relaxed), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_warm_up_blocks_nothing() {
        let make: MakeConnection<u32> = Box::new(|| {
            let warm_up: BoxFuture<'static, ()> = Box::pin(async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                panic!("warm-up failed");
            });
            Some((1, warm_up))
        });
        let renewal = Renewal::new(make, Duration::ZERO, WARM_FOR);
        assert_eq!(renewal.renew(), Some(1));
        tokio::time::sleep(Duration::from_millis(10)).await;
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        assert_eq!(renewal.renew(), Some(1));
    }

    #[test]
    fn a_connection_that_cannot_be_made_is_none() {
        let make: MakeConnection<u32> = Box::new(|| None);
        let renewal = Renewal::new(make, Duration::ZERO, WARM_FOR);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        assert_eq!(runtime.block_on(async { renewal.renew() }), None);
        // Nor outside a runtime, where nothing could connect it.
        assert_eq!(renewal.renew(), None);
    }
}
