//! Real-thread stress of `ConcurrencyLimiter` after b465094. Each phase:
//! two threads churn permits (`try_acquire`, a polled-once-then-dropped `acquire()`,
//! the service's `poll_ready` polled once and dropped, and drops) while a third
//! resizes the pool (grow and shrink, to 0 and back); then everything is dropped and
//! the idle pool must admit exactly its limit, report 0 in flight, and report each
//! permit held while we take them. A lost permit (a debt paid twice) shows as fewer,
//! an extra one as more. `FUZZ_PHASES` (default 3,000).
use futures_util::FutureExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use tower::{service_fn, Service, ServiceExt};
use tower_ratelimit_core::concurrency::{ConcurrencyLimit, ConcurrencyLimiter};

fn churn(pool: &ConcurrencyLimiter, stop: &AtomicBool, seed: usize) {
    let mut held = Vec::new();
    let inner = service_fn(|_: ()| async { Ok::<_, std::convert::Infallible>(()) });
    let mut svc = ConcurrencyLimit::new(inner, pool.clone());
    let mut i = seed;
    while !stop.load(Ordering::Relaxed) {
        i = i
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        match (i >> 33) % 5 {
            0 | 1 => held.extend(pool.try_acquire()),
            2 => held.extend(pool.acquire().now_or_never()),
            3 => {
                // Readiness taken (or queued) and the service dropped or called.
                if let Some(Ok(s)) = svc.ready().now_or_never() {
                    drop(s.call(()));
                }
                svc = ConcurrencyLimit::new(inner, pool.clone());
            }
            _ => {
                if !held.is_empty() {
                    held.swap_remove((i >> 40) % held.len());
                }
            }
        }
    }
}

#[test]
fn resizes_racing_churn_keep_exactly_the_limit() {
    let phases: usize = std::env::var("FUZZ_PHASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_000);
    let pool = ConcurrencyLimiter::new(2);
    let stop = Arc::new(AtomicBool::new(false));
    let bad = AtomicUsize::new(0);
    for phase in 0..phases {
        stop.store(false, Ordering::Relaxed);
        let start = Arc::new(Barrier::new(3));
        std::thread::scope(|s| {
            for w in 0..2 {
                let (pool, stop, start) = (pool.clone(), Arc::clone(&stop), Arc::clone(&start));
                s.spawn(move || {
                    start.wait();
                    churn(&pool, &stop, phase * 7 + w);
                });
            }
            let (p, stop2, start2) = (pool.clone(), Arc::clone(&stop), Arc::clone(&start));
            s.spawn(move || {
                start2.wait();
                for k in 0..8 {
                    p.set_limit((phase + k * 3) % 5);
                    std::hint::spin_loop();
                }
                stop2.store(true, Ordering::Relaxed);
            });
        });
        let limit = pool.limit();
        assert_eq!(
            pool.in_flight(),
            0,
            "phase {phase}: idle pool reports in flight"
        );
        let mut taken = Vec::new();
        while let Some(p) = pool.try_acquire() {
            taken.push(p);
            if taken.len() > limit + 4 {
                break;
            }
        }
        if taken.len() != limit {
            bad.fetch_add(1, Ordering::Relaxed);
            panic!(
                "phase {phase}: idle pool at limit {limit} admitted {} (in_flight {})",
                taken.len(),
                pool.in_flight()
            );
        }
        assert_eq!(
            pool.in_flight(),
            limit,
            "phase {phase}: in_flight with all taken"
        );
        drop(taken);
    }
    assert_eq!(bad.load(Ordering::Relaxed), 0);
}
