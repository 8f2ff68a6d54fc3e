//! Quotas: how many units may start per period, and how many at once after idleness.
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_core::Quota;
//!
//! // 100 requests per second: one every 10 ms, and up to 100 at once after a quiet second.
//! let quota = Quota::per_second(100)?;
//! assert_eq!(quota.emission_interval(), Duration::from_millis(10));
//! assert_eq!(quota.burst(), 100);
//!
//! // The same rate with strict spacing: never two requests within 10 ms.
//! let spaced = quota.with_burst(1)?;
//! assert_eq!(spaced.burst(), 1);
//!
//! // Bad input is an error value, never a panic.
//! assert!(Quota::per_second(0).is_err());
//! assert!(Quota::new(5, Duration::ZERO).is_err());
//! # Ok::<(), tower_ratelimit_core::QuotaError>(())
//! ```

use std::fmt;
use std::time::Duration;

/// A rate limit: `count` units per `period`, with a `burst` of units that may start
/// at once after the limiter has been idle.
///
/// * The **emission interval** `T = period / count` is the steady spacing between
///   units: `Quota::per_second(100)` has `T = 10 ms`.
/// * The **burst** `B` is the bucket's size: after at least `B × T` of idleness,
///   `B` units may start at the same instant; afterwards one more becomes available
///   every `T`. The constructors set `B = count` (so `per_second(100)` lets 100 start
///   at once after a quiet second); [`Quota::with_burst`] changes it, and
///   `with_burst(1)` gives strict spacing.
/// * Over any window of length `D` a GCRA limiter admits at most `B + ⌊D / T⌋` units.
///
/// Waiting uses tokio's timer, which fires on whole milliseconds. Waiters queued on a
/// limiter take every slot that fell due while the timer was late, so many callers
/// keep any rate; but a *single* caller with burst 1 and an interval under 1 ms is held
/// to about one start per millisecond. Above 1,000 units per second, give the quota
/// a burst of at least `rate / 1000` (the default burst, `count`, always is).
///
/// The window algorithms (fixed window, sliding log, sliding counter) read the quota
/// as "at most `count` units per `period`" and ignore the burst.
///
/// Quotas are small `Copy` values; every constructor validates its input and returns
/// a [`QuotaError`] instead of panicking.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    count: u64,
    period_nanos: u64,
    interval_nanos: u64,
    /// `⌊(2⁶⁴ − 1) / interval⌋`, kept so that the hot path divides by the interval
    /// with a multiply (see [`divide`]).
    interval_reciprocal: u64,
    burst: u64,
}

const MAX_SPAN_NANOS: u64 = 1 << 62;

/// Why a [`Quota`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuotaError {
    /// The count of units per period was zero.
    ZeroCount,
    /// The period was zero.
    ZeroPeriod,
    /// The burst was zero.
    ZeroBurst,
    /// The period (or, for [`Quota::from_rate`], the emission interval) is longer than
    /// [`Quota::MAX_SPAN`], about 146 years.
    PeriodTooLong,
    /// `period / count` is below one nanosecond: the rate is too high to pace.
    RateTooHigh,
    /// `burst × emission interval` is longer than [`Quota::MAX_SPAN`], about 146 years.
    BurstTooLarge,
}

impl fmt::Display for QuotaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = match self {
            QuotaError::ZeroCount => "the count per period must be at least 1",
            QuotaError::ZeroPeriod => "the period must be longer than zero",
            QuotaError::ZeroBurst => "the burst must be at least 1",
            QuotaError::PeriodTooLong => "the period must be at most 2^62 nanoseconds (146 years)",
            QuotaError::RateTooHigh => {
                "the emission interval (period / count) must be at least one nanosecond"
            }
            QuotaError::BurstTooLarge => {
                "burst × emission interval must be at most 2^62 nanoseconds (146 years)"
            }
        };
        write!(f, "invalid quota: {reason}")
    }
}

impl std::error::Error for QuotaError {}

impl Quota {
    /// The longest period, emission interval or `burst × interval` a quota may have:
    /// 2⁶² ns, about 146 years.
    ///
    /// The limiters keep instants as nanoseconds since the Unix epoch in 64 bits, which
    /// leaves about 528 years of headroom today. Holding every span of a quota under a
    /// quarter of the range keeps `now + capacity` exact until the year 2116, so a
    /// quota that asks for "once a century" is enforced rather than overflowing into
    /// "always".
    pub const MAX_SPAN: Duration = Duration::from_nanos(MAX_SPAN_NANOS);

    /// `count` units per `period`, with a burst of `count`.
    ///
    /// Units are paced a whole number of nanoseconds apart, rounded up so that no more
    /// than `count` pass per `period`. Below a microsecond per unit that rounding is
    /// coarse (600,000,000 per second paces at 500,000,000): count bytes in kilobytes.
    ///
    /// # Errors
    /// A zero count or period, a period over [`Quota::MAX_SPAN`], a rate above one
    /// unit per nanosecond, or (a period within `count` nanoseconds of
    /// [`Quota::MAX_SPAN`]) a burst whose rounded-up span passes it.
    pub fn new(count: u64, period: Duration) -> Result<Quota, QuotaError> {
        if count == 0 {
            return Err(QuotaError::ZeroCount);
        }
        if period.is_zero() {
            return Err(QuotaError::ZeroPeriod);
        }
        let period_nanos = u64::try_from(period.as_nanos())
            .ok()
            .filter(|&nanos| nanos <= MAX_SPAN_NANOS)
            .ok_or(QuotaError::PeriodTooLong)?;
        if period_nanos < count {
            return Err(QuotaError::RateTooHigh);
        }
        // Rounded up: a floored interval paces faster than `count` per `period` (a
        // quota of 600,000,000 per second paced at 1 ns admitted 1e9 a second).
        let interval_nanos = period_nanos.div_ceil(count);
        Quota::from_parts(
            count,
            period_nanos,
            interval_nanos,
            reciprocal(interval_nanos),
            1,
        )
        .with_burst(count)
    }

    /// `count` units per second (emission interval `1 s / count`), burst `count`.
    ///
    /// # Errors
    /// See [`Quota::new`].
    pub fn per_second(count: u64) -> Result<Quota, QuotaError> {
        Quota::new(count, Duration::from_secs(1))
    }

    /// `count` units per minute, burst `count`.
    ///
    /// # Errors
    /// See [`Quota::new`].
    pub fn per_minute(count: u64) -> Result<Quota, QuotaError> {
        Quota::new(count, Duration::from_secs(60))
    }

    /// `count` units per hour, burst `count`.
    ///
    /// # Errors
    /// See [`Quota::new`].
    pub fn per_hour(count: u64) -> Result<Quota, QuotaError> {
        Quota::new(count, Duration::from_secs(3600))
    }

    /// One unit every `interval`, burst 1 (strict spacing).
    ///
    /// # Errors
    /// A zero interval, or one longer than [`Quota::MAX_SPAN`].
    pub fn with_period(interval: Duration) -> Result<Quota, QuotaError> {
        Quota::new(1, interval)
    }

    /// The same rate with another burst: `burst` units may start at once after
    /// `burst × T` of idleness.
    ///
    /// # Errors
    /// A zero burst, or `burst × T` over [`Quota::MAX_SPAN`].
    pub fn with_burst(self, burst: u64) -> Result<Quota, QuotaError> {
        if burst == 0 {
            return Err(QuotaError::ZeroBurst);
        }
        match self.interval_nanos.checked_mul(burst) {
            Some(capacity) if capacity <= MAX_SPAN_NANOS => {}
            _ => return Err(QuotaError::BurstTooLarge),
        }
        Ok(Quota { burst, ..self })
    }

    /// Units per period.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The period the count refers to.
    pub fn period(&self) -> Duration {
        Duration::from_nanos(self.period_nanos)
    }

    /// The burst: how many units may start at once after idleness.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// The steady spacing between units, `period / count` (rounded up to a nanosecond,
    /// so that no more than `count` units pass per `period`).
    pub fn emission_interval(&self) -> Duration {
        Duration::from_nanos(self.interval_nanos)
    }

    /// The rate in units per second, for display and for controllers.
    pub fn per_second_f64(&self) -> f64 {
        1e9 / self.interval_nanos as f64
    }

    /// A quota of `rate` units per second (fractional rates allowed) with the given
    /// burst. The emission interval is rounded up to the nanosecond, as in
    /// [`Quota::new`], so the quota never admits faster than `rate` (3/s paces at
    /// 333,333,334 ns); an interval within a trillionth of a whole number of
    /// nanoseconds, the error of the float division, is taken as that number.
    ///
    /// # Errors
    /// A rate that is not finite or not above zero (`ZeroCount`), one so small its
    /// interval is over [`Quota::MAX_SPAN`] (`PeriodTooLong`), or so large it is under a nanosecond
    /// (`RateTooHigh`); a zero or overflowing burst.
    pub fn from_rate(rate: f64, burst: u64) -> Result<Quota, QuotaError> {
        if !rate.is_finite() || rate <= 0.0 {
            return Err(QuotaError::ZeroCount);
        }
        let exact = 1e9 / rate;
        let nearest = exact.round();
        // The quotient of two floats is off by a few units in its last place; without
        // this, a rate that is a whole number of nanoseconds apart would lose one.
        let interval = if (exact - nearest).abs() <= nearest * 1e-12 {
            nearest
        } else if exact < 1.0 {
            // Under a nanosecond apart: rounding up would pace at 10⁹/s, far slower
            // than asked, so it is refused as `Quota::new` refuses it.
            return Err(QuotaError::RateTooHigh);
        } else {
            exact.ceil()
        };
        if interval > MAX_SPAN_NANOS as f64 {
            return Err(QuotaError::PeriodTooLong);
        }
        let interval_nanos = interval as u64;
        if interval_nanos == 0 {
            return Err(QuotaError::RateTooHigh);
        }
        Quota::from_parts(
            1,
            interval_nanos,
            interval_nanos,
            reciprocal(interval_nanos),
            1,
        )
        .with_burst(burst)
    }

    /// Rebuilds a quota from words that were read from a valid one.
    #[inline]
    pub(crate) fn from_parts(
        count: u64,
        period_nanos: u64,
        interval_nanos: u64,
        interval_reciprocal: u64,
        burst: u64,
    ) -> Quota {
        Quota {
            count,
            period_nanos,
            interval_nanos,
            interval_reciprocal,
            burst,
        }
    }

    pub(crate) fn interval_reciprocal(&self) -> u64 {
        self.interval_reciprocal
    }

    pub(crate) fn interval_nanos(&self) -> u64 {
        self.interval_nanos
    }

    pub(crate) fn period_nanos(&self) -> u64 {
        self.period_nanos
    }

    /// `B × T`: how far ahead of now the theoretical arrival time may run.
    pub(crate) fn capacity_nanos(&self) -> u64 {
        // Validated in `with_burst`.
        self.interval_nanos * self.burst
    }
}

/// `⌊(2⁶⁴ − 1) / divisor⌋`, for [`divide`]. A zero divisor is treated as 1.
pub(crate) fn reciprocal(divisor: u64) -> u64 {
    u64::MAX / divisor.max(1)
}

/// `⌊n / d⌋` given `r = reciprocal(d)`, exact for every `n` and every `d ≥ 1`.
///
/// `r ≥ (2⁶⁴ − d) / d`, so `n·r / 2⁶⁴ > n/d − n/2⁶⁴ > n/d − 1`, and `r < 2⁶⁴/d`, so
/// `n·r / 2⁶⁴ < n/d`: the high word of `n·r` is the quotient or one less, and one
/// comparison of the remainder fixes it.
#[inline]
pub(crate) fn divide(n: u64, d: u64, r: u64) -> u64 {
    let estimate = ((u128::from(n) * u128::from(r)) >> 64) as u64;
    // `estimate · d ≤ n`, so neither the product nor the difference can wrap.
    let remainder = n.wrapping_sub(estimate.wrapping_mul(d));
    estimate + u64::from(remainder >= d)
}

impl fmt::Debug for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quota")
            .field("count", &self.count)
            .field("period", &self.period())
            .field("burst", &self.burst)
            .field("emission_interval", &self.emission_interval())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divide_by_reciprocal_is_exact_at_the_edges() {
        let divisors = [
            1,
            2,
            3,
            7,
            10,
            1_000,
            999_999_937,
            1 << 32,
            (1 << 63) + 1,
            u64::MAX,
        ];
        for d in divisors {
            let r = reciprocal(d);
            for n in [
                0,
                1,
                d - 1,
                d,
                d.saturating_add(1),
                u64::MAX / 2,
                u64::MAX - 1,
                u64::MAX,
            ] {
                assert_eq!(divide(n, d, r), n / d, "{n} / {d}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn divide_by_reciprocal_is_exact(n: u64, d in 1u64..) {
            proptest::prop_assert_eq!(divide(n, d, reciprocal(d)), n / d);
        }

        #[test]
        fn divide_by_a_small_divisor_is_exact(n: u64, d in 1u64..100_000) {
            proptest::prop_assert_eq!(divide(n, d, reciprocal(d)), n / d);
        }
    }

    #[test]
    fn per_second_means_interval_and_burst() {
        let q = Quota::per_second(100).unwrap();
        assert_eq!(q.emission_interval(), Duration::from_millis(10));
        assert_eq!(q.burst(), 100);
        assert_eq!(q.count(), 100);
        assert_eq!(q.period(), Duration::from_secs(1));
        let h = Quota::per_hour(3600).unwrap();
        assert_eq!(h.emission_interval(), Duration::from_secs(1));
    }

    #[test]
    fn invalid_quotas_are_errors() {
        assert_eq!(Quota::per_second(0), Err(QuotaError::ZeroCount));
        assert_eq!(Quota::new(1, Duration::ZERO), Err(QuotaError::ZeroPeriod));
        assert_eq!(
            Quota::new(2_000_000_000, Duration::from_secs(1)),
            Err(QuotaError::RateTooHigh)
        );
        assert_eq!(Quota::new(1, Duration::MAX), Err(QuotaError::PeriodTooLong));
        let q = Quota::per_second(1).unwrap();
        assert_eq!(q.with_burst(0), Err(QuotaError::ZeroBurst));
        assert_eq!(q.with_burst(u64::MAX), Err(QuotaError::BurstTooLarge));
        assert_eq!(Quota::from_rate(f64::NAN, 1), Err(QuotaError::ZeroCount));
        assert_eq!(Quota::from_rate(-1.0, 1), Err(QuotaError::ZeroCount));
        assert_eq!(Quota::from_rate(1e-30, 1), Err(QuotaError::PeriodTooLong));
        assert_eq!(Quota::from_rate(1e12, 1), Err(QuotaError::RateTooHigh));
        assert_eq!(Quota::from_rate(1.5e9, 1), Err(QuotaError::RateTooHigh));
        assert_eq!(
            Quota::from_rate(1e9, 1).map(|q| q.emission_interval()),
            Ok(Duration::from_nanos(1))
        );
    }

    #[test]
    fn spans_past_the_clock_headroom_are_errors() {
        let year = Duration::from_secs(365 * 24 * 3600);
        assert_eq!(
            Quota::new(1, Duration::from_nanos(u64::MAX)),
            Err(QuotaError::PeriodTooLong)
        );
        assert_eq!(Quota::new(1, year * 550), Err(QuotaError::PeriodTooLong));
        assert!(Quota::new(1, Quota::MAX_SPAN).is_ok());
        assert_eq!(
            Quota::per_second(1).unwrap().with_burst(1 << 33),
            Err(QuotaError::BurstTooLarge)
        );
        assert_eq!(
            Quota::from_rate(1e-10, 1),
            Err(QuotaError::PeriodTooLong),
            "one unit per 317 years"
        );
    }

    #[test]
    fn from_rate_rounds_up_to_nanoseconds() {
        let q = Quota::from_rate(3.0, 2).unwrap();
        assert_eq!(q.emission_interval(), Duration::from_nanos(333_333_334));
        assert_eq!(q.burst(), 2);
        // 7×10⁸/s is 1.43 ns apart: pacing at 1 ns would admit 43 % too many.
        let fast = Quota::from_rate(7e8, 1).unwrap();
        assert_eq!(fast.emission_interval(), Duration::from_nanos(2));
    }

    #[test]
    fn from_rate_keeps_whole_nanosecond_intervals() {
        for per_second in [1.0, 3.0e6, 1e7, 100.0, 0.1, 1e9, 2e8, 1.0 / 7.0] {
            let q = Quota::from_rate(per_second, 1).unwrap();
            let exact = 1e9 / per_second;
            if exact.fract() == 0.0 || (exact - exact.round()).abs() < 1e-6 {
                assert_eq!(
                    q.emission_interval().as_nanos() as f64,
                    exact.round(),
                    "{per_second}/s"
                );
            }
            assert!(
                q.per_second_f64() <= per_second * (1.0 + 1e-12),
                "{per_second}/s"
            );
        }
        // Rates read back from a quota's own interval keep it.
        for nanos in [1u64, 3, 7, 333_333_334, 1_000_000_007, 86_400_000_000_000] {
            let q = Quota::from_rate(1e9 / nanos as f64, 1).unwrap();
            assert_eq!(q.emission_interval(), Duration::from_nanos(nanos));
        }
    }
}
