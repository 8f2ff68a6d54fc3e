//! A circuit breaker, so that an outage costs one timeout, not one per request.
//!
//! After `failures_to_open` consecutive failed calls the breaker opens: calls fail at
//! once, without touching the network, for `open_for`. Then one call at a time is let
//! through as a probe; its success closes the breaker, its failure opens it again.
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_redis::breaker::{Breaker, BreakerConfig};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let breaker = Breaker::new(BreakerConfig {
//!     failures_to_open: 2,
//!     open_for: Duration::from_millis(100),
//! });
//! for _ in 0..2 {
//!     let call = breaker.try_call().expect("closed");
//!     call.failed();
//! }
//! assert!(breaker.try_call().is_none()); // open: fail fast
//! tokio::time::sleep(Duration::from_millis(100)).await;
//! let probe = breaker.try_call().expect("a probe goes through");
//! assert!(breaker.try_call().is_none()); // one probe at a time
//! probe.succeeded();
//! assert!(breaker.try_call().is_some()); // closed again
//! # }
//! ```

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// When the breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker (0 is read as 1).
    pub failures_to_open: u32,
    /// How long an open breaker fails calls before it lets a probe through.
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    /// Three failures in a row open the breaker for 500 ms.
    fn default() -> Self {
        BreakerConfig {
            failures_to_open: 3,
            open_for: Duration::from_millis(500),
        }
    }
}

/// The breaker's state, in atomics so that the closed path costs two loads.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    epoch: Instant,
    failures: AtomicU32,
    /// Nanoseconds after `epoch` until which the breaker is open; 0 when closed.
    open_until: AtomicU64,
    probing: AtomicBool,
}

/// Permission for one call; report its outcome with [`Call::succeeded`] or
/// [`Call::failed`]. Dropping it unreported (a cancelled request) frees the probe
/// slot without changing the state.
#[derive(Debug)]
#[must_use = "report the call's outcome"]
pub struct Call<'a> {
    breaker: &'a Breaker,
    probe: bool,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker {
            config,
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            probing: AtomicBool::new(false),
        }
    }

    /// The configuration.
    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    /// Whether the breaker is open (calls fail fast, or wait for a probe).
    pub fn is_open(&self) -> bool {
        self.open_until.load(Ordering::Acquire) != 0
    }

    /// Permission for a call, or `None` if the breaker is open.
    pub fn try_call(&self) -> Option<Call<'_>> {
        let open_until = self.open_until.load(Ordering::Acquire);
        if open_until == 0 {
            return Some(Call {
                breaker: self,
                probe: false,
            });
        }
        if self.elapsed() < open_until {
            return None;
        }
        self.probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Call {
                breaker: self,
                probe: true,
            })
    }

    fn elapsed(&self) -> u64 {
        // +1 keeps 0 free to mean "closed".
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn open(&self) {
        let open_for = u64::try_from(self.config.open_for.as_nanos()).unwrap_or(u64::MAX);
        self.open_until
            .store(self.elapsed().saturating_add(open_for), Ordering::Release);
    }
}

impl Call<'_> {
    /// The call succeeded: the breaker closes.
    pub fn succeeded(self) {
        let b = self.breaker;
        if b.failures.load(Ordering::Relaxed) != 0 {
            b.failures.store(0, Ordering::Relaxed);
        }
        if b.open_until.load(Ordering::Acquire) != 0 {
            b.open_until.store(0, Ordering::Release);
        }
    }

    /// The call failed: the breaker opens if this was a probe or the last of
    /// `failures_to_open` failures in a row.
    pub fn failed(self) {
        let b = self.breaker;
        let failures = b.failures.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        if self.probe || failures >= b.config.failures_to_open.max(1) {
            b.open();
        }
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.breaker.probing.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig {
            failures_to_open: 3,
            open_for: Duration::from_millis(50),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_count_of_failures() {
        let b = breaker();
        for _ in 0..2 {
            b.try_call().expect("a call").failed();
        }
        b.try_call().expect("a call").succeeded();
        for _ in 0..2 {
            b.try_call().expect("a call").failed();
        }
        assert!(!b.is_open());
        b.try_call().expect("a call").failed();
        assert!(b.is_open());
        assert!(b.try_call().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_opens_it_again() {
        let b = breaker();
        for _ in 0..3 {
            b.try_call().expect("a call").failed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        b.try_call().expect("a call").failed();
        assert!(b.try_call().is_none());
        tokio::time::sleep(Duration::from_millis(49)).await;
        assert!(b.try_call().is_none());
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(b.try_call().is_some());
    }

    /// The documented default: three failures in a row, then 500 ms open.
    #[tokio::test(start_paused = true)]
    async fn the_default_opens_after_three_failures_for_half_a_second() {
        let b = Breaker::new(BreakerConfig::default());
        for _ in 0..2 {
            b.try_call().expect("a call").failed();
        }
        assert!(!b.is_open());
        b.try_call().expect("a call").failed();
        assert!(b.try_call().is_none());
        tokio::time::sleep(Duration::from_millis(499)).await;
        assert!(b.try_call().is_none());
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(b.try_call().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_probe_frees_the_slot() {
        let b = breaker();
        for _ in 0..3 {
            b.try_call().expect("a call").failed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(b.try_call());
        assert!(b.try_call().is_some());
        assert!(b.is_open());
    }
}
