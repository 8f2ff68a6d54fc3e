//! A throttle's drain sent at the throttle's end even when the throttled instance never
//! checks again (`RateStore::schedule_drain`).
//!
//! The core drains a bucket when its limiter next checks after the pause, which is
//! exact in memory: nobody else shares the bucket. Over Redis, the instance that saw
//! the `429` may go quiet (it was the one caller of that backend, or its traffic
//! moved), and every other instance would then start the burst the server just
//! refused. So a throttle's beginning starts a sleeper for its key, which at the
//! throttle's end calls the store's own `drain_until` (recorded and sent as any other
//! drain; the core's own later call is then a no-op under `max`).
//!
//! The drain is not sent at the beginning, dated ahead: the scripts rescale a TAT on
//! a quota change, so a change during the pause would stretch the pause. Read at the
//! end, the quota in force then prices the drain, as in memory.
//!
//! One sleeper per key (a later throttle of the key moves its end), at most
//! [`MAX_SCHEDULED`] keys at once (beyond that the throttle is counted in
//! `Stats::drains_dropped` and drains when its limiter next checks). A sleeper holds
//! no connection and does not keep the store alive. With no Tokio runtime there is
//! no sleeper: the core's drain at the next check is all there is.
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_core::store::RateStore;
//! use tower_ratelimit_core::Quota;
//! use tower_ratelimit_redis::RedisStore;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::builder(Quota::per_second(10)?.with_burst(10)?)
//!     .connect("redis://127.0.0.1:1/")?; // nothing listens here
//! let until = tokio::time::Instant::now() + Duration::from_secs(1);
//! store.schedule_drain(&(), until);
//! assert_eq!(store.pending_drains(), 0);
//! tokio::time::sleep(Duration::from_secs(1)).await;
//! tokio::task::yield_now().await;
//! // At the throttle's end the drain is recorded, on its way to Redis.
//! assert_eq!(store.pending_drains(), 1);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use tokio::time::Instant;

/// The most keys whose throttle may wait for its end at once.
pub(crate) const MAX_SCHEDULED: usize = 1024;

/// Throttle ends to drain at, per Redis key.
pub(crate) struct Schedule {
    ends: Mutex<HashMap<Vec<u8>, Instant>>,
}

/// What [`Schedule::note`] did with a throttle's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheduled {
    /// Recorded, and the key has no sleeper: spawn one.
    Spawn,
    /// The key's sleeper will see it.
    Joined,
    /// [`MAX_SCHEDULED`] keys already wait.
    Dropped,
}

/// What a sleeper does when it wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// A later throttle moved the end: sleep until then.
    Sleep(Instant),
    /// Drain as of this end (the record is gone: a new throttle spawns a new sleeper).
    Drain(Instant),
    /// Nothing to do (the record was given up).
    Gone,
}

impl Schedule {
    pub(crate) fn new() -> Schedule {
        Schedule {
            ends: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Vec<u8>, Instant>> {
        // Plain values: a panic elsewhere leaves the map consistent.
        self.ends.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A throttle of `key` ends at `until`: the latest end wins.
    pub(crate) fn note(&self, key: &[u8], until: Instant) -> Scheduled {
        let mut ends = self.lock();
        if let Some(end) = ends.get_mut(key) {
            *end = (*end).max(until);
            return Scheduled::Joined;
        }
        if ends.len() >= MAX_SCHEDULED {
            return Scheduled::Dropped;
        }
        ends.insert(key.to_vec(), until);
        Scheduled::Spawn
    }

    /// `key`'s sleeper woke at `now`.
    pub(crate) fn wake(&self, key: &[u8], now: Instant) -> Wake {
        let mut ends = self.lock();
        match ends.get(key) {
            Some(&end) if end > now => Wake::Sleep(end),
            Some(&end) => {
                ends.remove(key);
                Wake::Drain(end)
            }
            None => Wake::Gone,
        }
    }

    /// `key`'s sleeper is gone before its end (its runtime shut down, or the store
    /// was dropped): a later throttle of the key spawns a new one.
    pub(crate) fn forget(&self, key: &[u8]) {
        self.lock().remove(key);
    }

    /// Keys waiting for their throttle's end.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn one_sleeper_per_key_and_the_latest_end_wins() {
        let schedule = Schedule::new();
        let now = Instant::now();
        let (early, late) = (now + Duration::from_secs(1), now + Duration::from_secs(2));
        assert_eq!(schedule.note(b"k", late), Scheduled::Spawn);
        assert_eq!(schedule.note(b"k", early), Scheduled::Joined);
        assert_eq!(schedule.wake(b"k", early), Wake::Sleep(late));
        assert_eq!(schedule.wake(b"k", late), Wake::Drain(late));
        assert_eq!(schedule.len(), 0);
        assert_eq!(schedule.wake(b"k", late), Wake::Gone);
        // Gone: the next throttle spawns a new sleeper.
        assert_eq!(schedule.note(b"k", late), Scheduled::Spawn);
        schedule.forget(b"k");
        assert_eq!(schedule.note(b"k", late), Scheduled::Spawn);
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_bounded() {
        let schedule = Schedule::new();
        let until = Instant::now() + Duration::from_secs(1);
        for i in 0..MAX_SCHEDULED as u32 {
            assert_eq!(schedule.note(&i.to_be_bytes(), until), Scheduled::Spawn);
        }
        assert_eq!(schedule.note(b"one more", until), Scheduled::Dropped);
        // A key already waiting still moves its end.
        assert_eq!(schedule.note(&0u32.to_be_bytes(), until), Scheduled::Joined);
        assert_eq!(schedule.len(), MAX_SCHEDULED);
    }
}
