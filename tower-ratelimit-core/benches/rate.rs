//! The core's hot paths against their peers, each in the same run:
//!
//! 1. `check`: one uncontended decision, ours (`RateLimiter::try_acquire_now`,
//!    `MemoryStore::check_now` with its snapshot, `MemoryStore::admit_now` without,
//!    as governor's) against governor 0.10's direct `RateLimiter::check`,
//!    allowing (a quota that never denies) and denying (a quota that is spent).
//! 2. `contended`: two threads deciding on one shared limiter at once. One iteration
//!    is one decision *per thread*; the time is the wall time of the slower thread.
//! 3. `stack`: `ready().await` then `call(()).await` through a rate + concurrency stack
//!    around an always-ready no-op service, ours against `tower::limit`'s.
//! 4. `algorithm`: the decision alone, at a fixed instant (no clock read).
//! 5. `clock`: what one reading of each limiter's clock costs (ours reads tokio's,
//!    so that paused-clock tests are exact; governor reads quanta's TSC clock).
//!
//! Run: `cargo bench -p tower-ratelimit-core --bench rate`.

mod support;

use criterion::{criterion_group, criterion_main, Criterion};
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{
    drive, governor_allowing, governor_denying, multi_thread, nz, ours_allowing, ours_denying,
    two_threads, HUGE,
};
use tower::{service_fn, ServiceBuilder};
use tower_ratelimit_core::clock::Clock;
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::{Quota, RateLimiter, ServiceBuilderExt};

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("check");
    let rt = multi_thread();
    let _in_runtime = rt.enter();

    let tokio_clock = MemoryStore::new(ours_allowing()).with_clock(Clock::tokio());
    g.bench_function("ours/check_now/allowed/tokio_clock", |b| {
        b.iter(|| black_box(tokio_clock.check_now(black_box(1))))
    });
    let limiter = RateLimiter::new(ours_allowing());
    g.bench_function("ours/try_acquire_now/allowed", |b| {
        b.iter(|| black_box(limiter.try_acquire_now(black_box(1))))
    });
    let store = MemoryStore::new(ours_allowing());
    g.bench_function("ours/check_now/allowed", |b| {
        b.iter(|| black_box(store.check_now(black_box(1))))
    });
    g.bench_function("ours/admit_now/allowed", |b| {
        b.iter(|| black_box(store.admit_now(black_box(1))))
    });
    let gov = governor::RateLimiter::direct(governor_allowing());
    g.bench_function("governor/check/allowed", |b| {
        b.iter(|| black_box(gov.check()))
    });

    let limiter = RateLimiter::new(ours_denying());
    assert!(limiter.try_acquire_now(1).is_ok_and(|d| d.is_allowed()));
    assert!(!limiter.try_acquire_now(1).is_ok_and(|d| d.is_allowed()));
    g.bench_function("ours/try_acquire_now/denied", |b| {
        b.iter(|| black_box(limiter.try_acquire_now(black_box(1))))
    });
    let store = MemoryStore::new(ours_denying());
    assert!(store.check_now(1).is_ok_and(|d| d.is_allowed()));
    g.bench_function("ours/check_now/denied", |b| {
        b.iter(|| black_box(store.check_now(black_box(1))))
    });
    let gov = governor::RateLimiter::direct(governor_denying());
    assert!(gov.check().is_ok());
    assert!(gov.check().is_err());
    g.bench_function("governor/check/denied", |b| {
        b.iter(|| black_box(gov.check()))
    });
    g.finish();
}

fn contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("contended");
    let rt = multi_thread();
    let _in_runtime = rt.enter();

    let limiter = Arc::new(RateLimiter::new(ours_allowing()));
    g.bench_function("ours/try_acquire_now/allowed", |b| {
        b.iter_custom(|iters| {
            two_threads(&limiter, iters, |l| {
                black_box(l.try_acquire_now(black_box(1)).ok());
            })
        })
    });
    let store = Arc::new(MemoryStore::new(ours_allowing()));
    g.bench_function("ours/check_now/allowed", |b| {
        b.iter_custom(|iters| {
            two_threads(&store, iters, |s| {
                black_box(s.check_now(black_box(1)).ok());
            })
        })
    });
    g.bench_function("ours/admit_now/allowed", |b| {
        b.iter_custom(|iters| {
            two_threads(&store, iters, |s| {
                black_box(s.admit_now(black_box(1)).ok());
            })
        })
    });
    let gov = Arc::new(governor::RateLimiter::direct(governor_allowing()));
    g.bench_function("governor/check/allowed", |b| {
        b.iter_custom(|iters| {
            two_threads(&gov, iters, |g| {
                black_box(g.check().ok());
            })
        })
    });

    let limiter = Arc::new(RateLimiter::new(ours_denying()));
    assert!(limiter.try_acquire_now(1).is_ok_and(|d| d.is_allowed()));
    g.bench_function("ours/try_acquire_now/denied", |b| {
        b.iter_custom(|iters| {
            two_threads(&limiter, iters, |l| {
                black_box(l.try_acquire_now(black_box(1)).ok());
            })
        })
    });
    let gov = Arc::new(governor::RateLimiter::direct(governor_denying()));
    assert!(gov.check().is_ok());
    g.bench_function("governor/check/denied", |b| {
        b.iter_custom(|iters| {
            two_threads(&gov, iters, |g| {
                black_box(g.check().ok());
            })
        })
    });
    g.finish();
}

fn stack(c: &mut Criterion) {
    let rt = multi_thread();
    let noop = || service_fn(|()| std::future::ready(Ok::<_, Infallible>(())));
    const LIMIT: usize = 1 << 20;
    let mut g = c.benchmark_group("stack");

    // Built inside the runtime, as in a `#[tokio::main]` program.
    let mut ours = rt.block_on(async {
        ServiceBuilder::new()
            .limit_rate(ours_allowing())
            .limit_concurrency(LIMIT)
            .service(noop())
    });
    g.bench_function("ours/rate+concurrency", |b| {
        b.iter_custom(|iters| drive(&rt, &mut ours, iters))
    });
    let mut tower = rt.block_on(async {
        ServiceBuilder::new()
            .rate_limit(u64::from(HUGE), Duration::from_secs(1))
            .concurrency_limit(LIMIT)
            .service(noop())
    });
    g.bench_function("tower/rate+concurrency", |b| {
        b.iter_custom(|iters| drive(&rt, &mut tower, iters))
    });

    // Each layer alone, to see where the cost is.
    let mut ours_rate = rt.block_on(async {
        ServiceBuilder::new()
            .limit_rate(ours_allowing())
            .service(noop())
    });
    g.bench_function("ours/rate", |b| {
        b.iter_custom(|iters| drive(&rt, &mut ours_rate, iters))
    });
    let mut tower_rate = rt.block_on(async {
        ServiceBuilder::new()
            .rate_limit(u64::from(HUGE), Duration::from_secs(1))
            .service(noop())
    });
    g.bench_function("tower/rate", |b| {
        b.iter_custom(|iters| drive(&rt, &mut tower_rate, iters))
    });
    let mut ours_conc = ServiceBuilder::new()
        .limit_concurrency(LIMIT)
        .service(noop());
    g.bench_function("ours/concurrency", |b| {
        b.iter_custom(|iters| drive(&rt, &mut ours_conc, iters))
    });
    let mut tower_conc = ServiceBuilder::new()
        .concurrency_limit(LIMIT)
        .service(noop());
    g.bench_function("tower/concurrency", |b| {
        b.iter_custom(|iters| drive(&rt, &mut tower_conc, iters))
    });
    let mut bare = noop();
    g.bench_function("bare/noop", |b| {
        b.iter_custom(|iters| drive(&rt, &mut bare, iters))
    });
    g.finish();
}

/// The decision alone, without a clock read: ours at a fixed instant against governor
/// on its fake clock (one relaxed load). Burst 2³²−1, so neither denies in a run.
fn algorithm(c: &mut Criterion) {
    use tower_ratelimit_core::algorithm::{Algorithm, Gcra};
    let mut g = c.benchmark_group("algorithm");
    let q = Quota::per_second(u64::from(HUGE))
        .and_then(|q| q.with_burst(u64::from(u32::MAX)))
        .expect("a valid quota");
    let state = Gcra.new_state(&q);
    let now = Clock::new().now();
    g.bench_function("ours/Gcra::check/fixed_now", |b| {
        b.iter(|| black_box(Gcra.check(&state, &q, black_box(now), black_box(1))))
    });
    let fake = governor::clock::FakeRelativeClock::default();
    let quota = governor::Quota::per_second(nz(HUGE)).allow_burst(nz(u32::MAX));
    let gov = governor::RateLimiter::direct_with_clock(quota, fake);
    g.bench_function("governor/check/fake_clock", |b| {
        b.iter(|| black_box(gov.check()))
    });
    g.finish();
}

fn clock(c: &mut Criterion) {
    let mut g = c.benchmark_group("clock");
    let ours = Clock::new();
    g.bench_function("ours/Clock::now", |b| b.iter(|| black_box(ours.now())));
    g.bench_function("std/Instant::now", |b| b.iter(|| black_box(Instant::now())));
    g.bench_function("tokio/Instant::now", |b| {
        b.iter(|| black_box(tokio::time::Instant::now()))
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let _in_runtime = rt.enter();
    g.bench_function("tokio/Instant::now/in_runtime", |b| {
        b.iter(|| black_box(tokio::time::Instant::now()))
    });
    let gov = governor::clock::DefaultClock::default();
    g.bench_function("governor/DefaultClock::now", |b| {
        b.iter(|| black_box(governor::clock::Clock::now(&gov)))
    });
    g.finish();
}

criterion_group!(benches, uncontended, contended, stack, algorithm, clock);
criterion_main!(benches);
