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
//! warm-up runs): a setup slower than `open_for` would otherwise be thrown away each
//! time, nearly made, and the store would never connect. A store built on a connection of its own
//! ([`RedisStoreBuilder::build`]) keeps it.
//!
//! [`RedisStoreBuilder::connect`]: crate::RedisStoreBuilder::connect
//! [`RedisStoreBuilder::build`]: crate::RedisStoreBuilder::build

use futures_util::future::BoxFuture;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
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
    last: Mutex<Option<Instant>>,
    /// Set while the last replacement's warm-up runs.
    warming: Arc<AtomicBool>,
}

/// Clears `warming` when the warm-up ends, however it ends (done, timed out, or
/// dropped with its runtime), so that a warm-up that never runs blocks nothing.
struct Warming(Arc<AtomicBool>);

impl Drop for Warming {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
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
    pub(crate) fn new(make: MakeConnection<C>, gap: Duration) -> Renewal<C> {
        Renewal {
            make,
            gap,
            last: Mutex::new(None),
            warming: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A fresh connection, unless one was made less than the gap ago or the last one
    /// is still connecting, or there is no runtime to connect it on.
    pub(crate) fn renew(&self) -> Option<C> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if self.warming.load(Ordering::Acquire)
            || last.is_some_and(|at| now.saturating_duration_since(at) < self.gap)
        {
            return None;
        }
        let (fresh, warm_up) = (self.make)()?;
        *last = Some(now);
        self.warming.store(true, Ordering::Release);
        let warming = Warming(self.warming.clone());
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
        (Renewal::new(make, gap), made)
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

    #[test]
    fn a_connection_that_cannot_be_made_is_none() {
        let make: MakeConnection<u32> = Box::new(|| None);
        let renewal = Renewal::new(make, Duration::ZERO);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        assert_eq!(runtime.block_on(async { renewal.renew() }), None);
        // Nor outside a runtime, where nothing could connect it.
        assert_eq!(renewal.renew(), None);
    }
}
