//! What the core's benches share: the quotas both libraries get, the runtime the
//! limiters are built on, and the timing loops for two threads and for a service.
//!
//! Each bench uses part of it.
#![allow(dead_code)]

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use tower::{Service, ServiceExt};
use tower_ratelimit_core::Quota;

/// 10⁹ per second with a burst of 10⁹: an emission interval of 1 ns and a capacity of
/// one second, so a decision that takes longer than 1 ns can never be denied. Both
/// libraries get the same numbers.
pub const HUGE: u32 = 1_000_000_000;

pub fn ours_allowing() -> Quota {
    Quota::per_second(u64::from(HUGE))
        .and_then(|q| q.with_burst(u64::from(HUGE)))
        .expect("a valid quota")
}

/// One unit per hour, spent before measuring: every later check in the run is denied.
pub fn ours_denying() -> Quota {
    Quota::per_hour(1).expect("a valid quota")
}

pub fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("non-zero")
}

pub fn governor_allowing() -> governor::Quota {
    governor::Quota::per_second(nz(HUGE)).allow_burst(nz(HUGE))
}

pub fn governor_denying() -> governor::Quota {
    governor::Quota::per_hour(nz(1))
}

/// A multi-thread runtime, where a `#[tokio::main]` program builds its limiters: their
/// clocks read the TSC there (tokio can only pause current-thread runtimes).
pub fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Runs `check` `iters` times on each of two threads released together, and returns
/// the wall time of the slower one.
pub fn two_threads<L, F>(limiter: &Arc<L>, iters: u64, check: F) -> Duration
where
    L: Send + Sync + 'static,
    F: Fn(&L) + Send + Sync + Copy + 'static,
{
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let limiter = Arc::clone(limiter);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let start = Instant::now();
                for _ in 0..iters {
                    check(&limiter);
                }
                start.elapsed()
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("bench thread"))
        .max()
        .unwrap_or_default()
}

/// Times `iters` rounds of `ready().await` + `call(()).await` on one runtime.
pub fn drive<S>(rt: &tokio::runtime::Runtime, svc: &mut S, iters: u64) -> Duration
where
    S: Service<()>,
    S::Error: std::fmt::Debug,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let ready = svc.ready().await.expect("always ready");
            black_box(ready.call(()).await.expect("never fails"));
        }
        start.elapsed()
    })
}
