//! The limiter's clock: `tokio::time`, so paused-time tests are exact and instant.
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_core::clock::Clock;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let clock = Clock::new();
//! let before = clock.now();
//! tokio::time::sleep(Duration::from_millis(250)).await;
//! assert_eq!(clock.now() - before, 250_000_000);
//! # }
//! ```

use crate::algorithm::Nanos;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// A monotonic clock in nanoseconds, read from `tokio::time::Instant` and anchored to
/// the Unix epoch when it is created, so that fixed windows align with wall-clock
/// boundaries (a per-minute window starts on the minute).
///
/// Only the anchor is read from the system clock, once; every later reading is
/// monotonic, and follows tokio's paused clock in tests.
///
/// A reading comes from one of two sources, chosen when the clock is made:
/// * on a multi-thread tokio runtime, whose time can never be paused, the CPU's
///   time-stamp counter through `quanta` (calibrated against the monotonic clock):
///   about 20 ns a read where `clock_gettime` costs 50 on this project's VM, on the
///   hot path of every decision;
/// * everywhere else (a current-thread runtime, the only kind tokio can pause, or no
///   runtime at all) tokio's clock, so that paused-clock tests are exact even for a
///   limiter made before the runtime. [`Clock::tokio`] forces this source.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
    unix_at_epoch: Nanos,
    /// The counter and its raw reading at `epoch`; `None` to read tokio's clock.
    tsc_epoch: Option<TscEpoch>,
}

/// A raw counter reading kept unscaled, so that a reading is one subtraction and one
/// multiply-shift to nanoseconds, with no `Duration` on the way.
#[derive(Debug, Clone, Copy)]
struct TscEpoch {
    counter: &'static quanta::Clock,
    raw: u64,
}

#[inline]
fn tsc() -> &'static quanta::Clock {
    static TSC: std::sync::OnceLock<quanta::Clock> = std::sync::OnceLock::new();
    TSC.get_or_init(quanta::Clock::new)
}

/// Whether the clock is made where tokio's time can never be paused: on a
/// multi-thread runtime.
fn on_multi_thread_runtime() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

impl Clock {
    /// A clock anchored to the current system time.
    pub fn new() -> Clock {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Clock::with_unix_time(unix)
    }

    /// A clock that reads `unix_time` now: for tests that need known window
    /// boundaries, or for aligning to a server's `Date`.
    pub fn with_unix_time(unix_time: Duration) -> Clock {
        let tsc_epoch = on_multi_thread_runtime().then(|| {
            let counter = tsc();
            TscEpoch {
                counter,
                raw: counter.raw(),
            }
        });
        Clock {
            epoch: Instant::now(),
            unix_at_epoch: u64::try_from(unix_time.as_nanos()).unwrap_or(u64::MAX / 2),
            tsc_epoch,
        }
    }

    /// A clock that always reads tokio's clock, wherever it is made: for a limiter
    /// made on a multi-thread runtime and then used on a paused one.
    pub fn tokio() -> Clock {
        Clock {
            tsc_epoch: None,
            ..Clock::new()
        }
    }

    /// Nanoseconds since the Unix epoch, as measured monotonically from the anchor.
    #[inline]
    pub fn now(&self) -> Nanos {
        match self.tsc_epoch {
            Some(TscEpoch { counter, raw }) => {
                let since = counter.delta_as_nanos(raw, counter.raw());
                self.unix_at_epoch.saturating_add(since)
            }
            None => self.to_nanos(Instant::now()),
        }
    }

    /// The clock's reading at `instant`.
    #[inline]
    pub fn to_nanos(&self, instant: Instant) -> Nanos {
        let since = instant.saturating_duration_since(self.epoch).as_nanos();
        self.unix_at_epoch
            .saturating_add(u64::try_from(since).unwrap_or(u64::MAX))
    }

    /// The tokio instant at which the clock reads `nanos` (saturating at the anchor).
    pub fn to_instant(&self, nanos: Nanos) -> Instant {
        let offset = nanos.saturating_sub(self.unix_at_epoch);
        self.epoch
            .checked_add(Duration::from_nanos(offset))
            .unwrap_or_else(far_future)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// An instant about thirty years ahead, for waits that would otherwise overflow.
pub(crate) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}
