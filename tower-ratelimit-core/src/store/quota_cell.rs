//! A quota that can be replaced at run time and read on every decision without a lock.

use crate::algorithm::sync::{fence, lock, spin_loop, AtomicU64, Mutex, Ordering};
use crate::quota::Quota;

/// A sequence lock over the quota's words. Reads are a few relaxed loads on a cache
/// line that only changes when the quota does, so readers on many cores never bounce
/// it (a `RwLock` would write its reader count on every read).
#[derive(Debug)]
pub(crate) struct QuotaCell {
    seq: AtomicU64,
    count: AtomicU64,
    period: AtomicU64,
    interval: AtomicU64,
    interval_reciprocal: AtomicU64,
    burst: AtomicU64,
    writer: Mutex<()>,
}

impl QuotaCell {
    pub(crate) fn new(quota: Quota) -> QuotaCell {
        QuotaCell {
            seq: AtomicU64::new(0),
            count: AtomicU64::new(quota.count()),
            period: AtomicU64::new(quota.period_nanos()),
            interval: AtomicU64::new(quota.interval_nanos()),
            interval_reciprocal: AtomicU64::new(quota.interval_reciprocal()),
            burst: AtomicU64::new(quota.burst()),
            writer: Mutex::new(()),
        }
    }

    #[inline]
    pub(crate) fn get(&self) -> Quota {
        loop {
            let before = self.seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                spin_loop();
                continue;
            }
            let quota = Quota::from_parts(
                self.count.load(Ordering::Relaxed),
                self.period.load(Ordering::Relaxed),
                self.interval.load(Ordering::Relaxed),
                self.interval_reciprocal.load(Ordering::Relaxed),
                self.burst.load(Ordering::Relaxed),
            );
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                return quota;
            }
        }
    }

    /// Replaces the quota and hands the one it replaced to `rescale`, all while holding
    /// the writer lock: two changes at once must not both rescale the state from the
    /// same old quota (scaling it twice), and the state must be rescaled in the order
    /// the quotas were set. `rescale` runs after the new words are visible, and must
    /// not read this cell's writer lock (it may read the quota).
    pub(crate) fn replace(&self, quota: Quota, rescale: impl FnOnce(&Quota)) {
        let _guard = lock(&self.writer);
        let old = self.get();
        self.write(quota);
        rescale(&old);
    }

    fn write(&self, quota: Quota) {
        self.seq.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::Release);
        self.count.store(quota.count(), Ordering::Relaxed);
        self.period.store(quota.period_nanos(), Ordering::Relaxed);
        self.interval
            .store(quota.interval_nanos(), Ordering::Relaxed);
        self.interval_reciprocal
            .store(quota.interval_reciprocal(), Ordering::Relaxed);
        self.burst.store(quota.burst(), Ordering::Relaxed);
        self.seq.fetch_add(1, Ordering::Release);
    }
}
