//! The server's own token bucket.
//!
//! The API is the referee of the showdown, so it does not share code with the
//! contestants: this bucket is written out here in a few lines instead of borrowing
//! the GCRA from `tower-ratelimit-core`.
//!
//! ```
//! use std::time::Duration;
//! use examples::api_server::bucket::TokenBucket;
//!
//! let start = tokio::time::Instant::now();
//! let mut bucket = TokenBucket::new(10.0, 2, start);
//! assert!(bucket.take(start).is_ok());
//! assert!(bucket.take(start).is_ok());
//! // Empty: the next token is 100 ms away.
//! assert_eq!(bucket.take(start), Err(Duration::from_millis(100)));
//! ```

use std::time::Duration;

use tokio::time::Instant;

/// Tokens refill at `rate` per second up to `burst`; each request takes one.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket. A rate that is not a positive finite number is raised to
    /// one token per hour, and a zero burst to one, so the bucket never divides by zero.
    pub fn new(rate: f64, burst: u32, now: Instant) -> Self {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            1.0 / 3600.0
        };
        let burst = f64::from(burst.max(1));
        Self {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one token: `Ok(tokens left)`, or `Err(time until one is there)`.
    pub fn take(&mut self, now: Instant) -> Result<u64, Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            // Truncation is the point: a client may only count whole tokens.
            Ok(self.tokens as u64)
        } else {
            Err(self.time_to_next())
        }
    }

    /// Whole tokens left and the time until the next one, without taking any.
    pub fn peek(&mut self, now: Instant) -> (u64, Duration) {
        self.refill(now);
        (self.tokens as u64, self.time_to_next())
    }

    /// The refill rate per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The bucket's capacity.
    pub fn burst(&self) -> u64 {
        self.burst as u64
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }

    fn time_to_next(&self) -> Duration {
        let missing = (1.0 - self.tokens).max(0.0);
        Duration::try_from_secs_f64(missing / self.rate).unwrap_or(Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_at_rate_up_to_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100.0, 5, t0);
        for left in (0..5).rev() {
            assert_eq!(b.take(t0), Ok(left));
        }
        assert_eq!(b.take(t0), Err(Duration::from_millis(10)));
        // 25 ms buys two tokens (2.5, truncated).
        let t1 = t0 + Duration::from_millis(25);
        assert_eq!(b.take(t1), Ok(1));
        assert_eq!(b.take(t1), Ok(0));
        assert!(b.take(t1).is_err());
        // A long idle never fills past the burst.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!(b.peek(t2).0, 5);
    }

    #[test]
    fn degenerate_rates_do_not_panic() {
        let t0 = Instant::now();
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let mut b = TokenBucket::new(rate, 0, t0);
            assert!(b.take(t0).is_ok());
            assert!(b.take(t0).is_err());
        }
    }
}
