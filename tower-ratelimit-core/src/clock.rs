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
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
    unix_at_epoch: Nanos,
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
        Clock {
            epoch: Instant::now(),
            unix_at_epoch: u64::try_from(unix_time.as_nanos()).unwrap_or(u64::MAX / 2),
        }
    }

    /// Nanoseconds since the Unix epoch, as measured monotonically from the anchor.
    #[inline]
    pub fn now(&self) -> Nanos {
        self.to_nanos(Instant::now())
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
