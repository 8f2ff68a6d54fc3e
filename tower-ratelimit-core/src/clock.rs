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
use crate::store::duration_nanos;
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
            None => self.tokio_nanos(Instant::now()),
        }
    }

    /// The clock's reading at `instant` (saturating at the anchor).
    ///
    /// With the counter as its source, measured from a reading of both clocks: the
    /// counter's calibration and tokio's clock drift apart by parts per million of
    /// the clock's age (up to 20 µs a second measured here, seconds a day), and an
    /// instant converted from the anchor would carry all of it into every comparison
    /// with [`Clock::now`]: a one-second pause that a day-old limiter ended at once, or
    /// held for two. Measured from now, only the drift over the instant's distance
    /// from now remains.
    #[inline]
    pub fn to_nanos(&self, instant: Instant) -> Nanos {
        if self.tsc_epoch.is_none() {
            return self.tokio_nanos(instant);
        }
        let (now, tokio_now) = (self.now(), Instant::now());
        let reading = match instant.checked_duration_since(tokio_now) {
            Some(ahead) => now.saturating_add(duration_nanos(ahead)),
            None => now.saturating_sub(duration_nanos(tokio_now - instant)),
        };
        reading.max(self.unix_at_epoch)
    }

    /// The tokio instant at which the clock reads `nanos` (saturating at the anchor),
    /// measured from now as [`Clock::to_nanos`] measures.
    pub fn to_instant(&self, nanos: Nanos) -> Instant {
        // (Also what a limiter never paused asks for, on its waiters' path: no reads.)
        if nanos <= self.unix_at_epoch {
            return self.epoch;
        }
        if self.tsc_epoch.is_none() {
            let offset = nanos.saturating_sub(self.unix_at_epoch);
            return self
                .epoch
                .checked_add(Duration::from_nanos(offset))
                .unwrap_or_else(far_future);
        }
        let (now, tokio_now) = (self.now(), Instant::now());
        if nanos >= now {
            tokio_now
                .checked_add(Duration::from_nanos(nanos - now))
                .unwrap_or_else(far_future)
        } else {
            tokio_now
                .checked_sub(Duration::from_nanos(now - nanos))
                .map_or(self.epoch, |at| at.max(self.epoch))
        }
    }

    /// Tokio's clock as this clock reads it: nanoseconds from the anchor.
    #[inline]
    fn tokio_nanos(&self, instant: Instant) -> Nanos {
        let since = instant.saturating_duration_since(self.epoch);
        self.unix_at_epoch.saturating_add(duration_nanos(since))
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A clock whose counter the test moves, apart from tokio's clock.
    fn with_counter() -> (Clock, Arc<quanta::Mock>) {
        let (counter, mock) = quanta::Clock::mock();
        let counter: &'static quanta::Clock = Box::leak(Box::new(counter));
        let clock = Clock {
            epoch: Instant::now(),
            unix_at_epoch: 1_000_000_000,
            tsc_epoch: Some(TscEpoch {
                counter,
                raw: counter.raw(),
            }),
        };
        (clock, mock)
    }

    fn signed(nanos: Nanos) -> i128 {
        i128::from(nanos)
    }

    /// A day-old clock whose counter ran 20 ppm fast (1.728 s ahead of tokio's clock),
    /// then one that ran as slow: an instant a second ahead still reads a second after
    /// `now()`, a second ago a second before, and a reading a quarter second ahead
    /// converts back to a quarter second from now. From the anchor, the first read
    /// 0.728 s *before* now (a one-second pause over at once) on the fast counter.
    #[tokio::test(start_paused = true)]
    async fn instants_keep_their_distance_from_now_when_the_counter_drifts() {
        let day = Duration::from_secs(86_400);
        let drift = Duration::from_micros(1_728_000);
        for fast in [true, false] {
            let (clock, counter) = with_counter();
            tokio::time::advance(day).await;
            counter.increment(if fast { day + drift } else { day - drift });
            let now = signed(clock.now());
            let ahead = Instant::now() + Duration::from_secs(1);
            assert_eq!(
                signed(clock.to_nanos(ahead)) - now,
                1_000_000_000,
                "fast {fast}"
            );
            let ago = Instant::now() - Duration::from_secs(1);
            assert_eq!(
                now - signed(clock.to_nanos(ago)),
                1_000_000_000,
                "fast {fast}"
            );
            let at = clock.now() + 250_000_000;
            assert_eq!(
                clock.to_instant(at) - Instant::now(),
                Duration::from_millis(250),
                "fast {fast}"
            );
        }
    }

    /// Instants before the anchor read as the anchor, and readings before it convert
    /// to it, whatever the drift; the far future saturates.
    #[tokio::test(start_paused = true)]
    async fn conversions_saturate() {
        let (clock, counter) = with_counter();
        let anchor = Instant::now();
        tokio::time::advance(Duration::from_secs(10)).await;
        counter.increment(Duration::from_secs(11));
        // (The anchor itself reads as now less 10 s: the counter's second ahead is
        // the drift, which a reading relative to now leaves out.)
        assert_eq!(clock.to_nanos(anchor), clock.now() - 10_000_000_000);
        let before_anchor = Instant::now() - Duration::from_secs(20);
        assert_eq!(clock.to_nanos(before_anchor), clock.unix_at_epoch);
        assert_eq!(clock.to_instant(0), anchor);
        assert_eq!(
            clock.to_nanos(far_future()),
            clock.now() + (far_future() - Instant::now()).as_nanos() as u64
        );
        assert!(clock.to_instant(u64::MAX) > Instant::now() + Duration::from_secs(86_400 * 365));
    }
}
