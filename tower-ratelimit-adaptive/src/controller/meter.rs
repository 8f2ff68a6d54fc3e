//! Counts of events in fixed time buckets over a short horizon.

use std::time::Duration;

const BUCKETS: usize = 64;

/// Events counted in `BUCKETS` buckets of `width`; older events fall off.
#[derive(Debug, Clone)]
pub(crate) struct Meter {
    width_nanos: u64,
    counts: [u32; BUCKETS],
    /// Index (time / width) of the newest bucket written.
    head: u64,
}

impl Meter {
    pub(crate) fn new(width: Duration) -> Meter {
        Meter {
            width_nanos: (width.as_nanos() as u64).max(1),
            counts: [0; BUCKETS],
            head: 0,
        }
    }

    fn index(&self, now: Duration) -> u64 {
        (now.as_nanos().min(u64::MAX as u128) as u64) / self.width_nanos
    }

    fn advance(&mut self, idx: u64) {
        if idx <= self.head {
            return;
        }
        let gap = (idx - self.head).min(BUCKETS as u64);
        for i in 1..=gap {
            self.counts[((self.head + i) % BUCKETS as u64) as usize] = 0;
        }
        self.head = idx;
    }

    pub(crate) fn record(&mut self, now: Duration) {
        let idx = self.index(now);
        self.advance(idx);
        if idx + (BUCKETS as u64) > self.head {
            let slot = &mut self.counts[(idx % BUCKETS as u64) as usize];
            *slot = slot.saturating_add(1);
        }
    }

    /// Events per second over the last `window` (rounded to whole buckets, capped at
    /// the horizon), ending at `now`.
    pub(crate) fn rate(&mut self, now: Duration, window: Duration) -> f64 {
        let idx = self.index(now);
        self.advance(idx);
        let n = ((window.as_nanos() as u64) / self.width_nanos).clamp(1, BUCKETS as u64 - 1);
        // The current bucket is partial; count n whole buckets before it plus it.
        let mut sum = 0u64;
        for i in 0..=n {
            if i > idx {
                break;
            }
            sum += u64::from(self.counts[((idx - i) % BUCKETS as u64) as usize]);
        }
        let partial = (now.as_nanos() as u64 % self.width_nanos) as f64;
        let span = n as f64 * self.width_nanos as f64 + partial;
        if span <= 0.0 {
            return 0.0;
        }
        sum as f64 / (span / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_of_a_steady_stream() {
        let mut m = Meter::new(Duration::from_millis(50));
        for i in 0..1000u64 {
            m.record(Duration::from_millis(i));
        }
        let r = m.rate(Duration::from_millis(1000), Duration::from_millis(500));
        assert!((r - 1000.0).abs() < 50.0, "{r}");
        // After a long silence the meter forgets.
        assert_eq!(
            m.rate(Duration::from_secs(100), Duration::from_millis(500)),
            0.0
        );
    }
}
