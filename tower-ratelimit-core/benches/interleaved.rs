//! The hot-path comparisons of `benches/rate.rs`, measured so that a busy machine
//! cannot tilt a ratio: ours and the peer run in alternating batches, many rounds,
//! and each side reports its *fastest* batch and its median batch.
//!
//! Criterion's estimate is a mean over a few seconds; when another process takes the
//! CPU for part of one side's window, that side looks slower and the ratio moves by
//! ±30%. Interleaving gives both sides the same conditions, and the minimum over many
//! short batches is the cost of the code itself, undisturbed.
//!
//! Run: `cargo bench -p tower-ratelimit-core --bench interleaved [-- FILTER]`
//! (`ROUNDS=400 BATCH=20000` are the defaults; FILTER keeps the rows whose name
//! contains it).

mod support;

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{
    drive, governor_allowing, governor_denying, multi_thread, ours_allowing, ours_denying,
    two_threads, HUGE,
};
use tower::{service_fn, ServiceBuilder};
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::{RateLimiter, ServiceBuilderExt};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Nanoseconds per operation of each batch, for each side.
struct Samples {
    ours: Vec<f64>,
    peer: Vec<f64>,
}

impl Samples {
    fn report(mut self, name: &str, peer: &str) {
        if self.ours.is_empty() {
            return;
        }
        let stats = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            (v[0], v[v.len() / 2])
        };
        let (ours_min, ours_median) = stats(&mut self.ours);
        let (peer_min, peer_median) = stats(&mut self.peer);
        println!(
            "| {name} | {ours_min:.1} | {ours_median:.1} | {peer} {peer_min:.1} | {peer_median:.1} | {:.2}× | {:.2}× |",
            ours_min / peer_min,
            ours_median / peer_median,
        );
    }
}

/// Runs `rounds` rounds; each times one batch of each side (alternating which goes
/// first) and records ns per operation.
fn interleave(
    name: &str,
    rounds: u64,
    batch: u64,
    mut ours: impl FnMut(u64) -> Duration,
    mut peer: impl FnMut(u64) -> Duration,
) -> Samples {
    let mut samples = Samples {
        ours: Vec::new(),
        peer: Vec::new(),
    };
    if !selected(name) {
        return samples;
    }
    let per_op = |d: Duration| d.as_nanos() as f64 / batch as f64;
    // Warm both sides up before recording.
    ours(batch);
    peer(batch);
    for round in 0..rounds {
        if round % 2 == 0 {
            samples.ours.push(per_op(ours(batch)));
            samples.peer.push(per_op(peer(batch)));
        } else {
            samples.peer.push(per_op(peer(batch)));
            samples.ours.push(per_op(ours(batch)));
        }
    }
    samples
}

/// Whether the row named `name` is selected by the command line's filter.
fn selected(name: &str) -> bool {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .all(|filter| name.contains(&filter))
}

fn timed(batch: u64, mut op: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..batch {
        op();
    }
    start.elapsed()
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let rounds = env("ROUNDS", 400);
    let batch = env("BATCH", 20_000);
    let rt = multi_thread();
    let _in_runtime = rt.enter();

    println!("{rounds} rounds of {batch} operations per side, alternating; ns per operation\n");
    println!("| benchmark | ours min | ours median | peer min | peer median | min ratio | median ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|");

    let store = MemoryStore::new(ours_allowing());
    let gov = governor::RateLimiter::direct(governor_allowing());
    interleave(
        "uncontended `check_now(1)`, allowed",
        rounds,
        batch,
        |n| timed(n, || drop(black_box(store.check_now(black_box(1))))),
        |n| timed(n, || drop(black_box(gov.check()))),
    )
    .report("uncontended `check_now(1)`, allowed", "governor");

    interleave(
        "uncontended `admit_now(1)`, allowed",
        rounds,
        batch,
        |n| timed(n, || drop(black_box(store.admit_now(black_box(1))))),
        |n| timed(n, || drop(black_box(gov.check()))),
    )
    .report("uncontended `admit_now(1)`, allowed", "governor");

    let limiter = RateLimiter::new(ours_allowing());
    interleave(
        "uncontended `try_acquire_now(1)`, allowed",
        rounds,
        batch,
        |n| timed(n, || drop(black_box(limiter.try_acquire_now(black_box(1))))),
        |n| timed(n, || drop(black_box(gov.check()))),
    )
    .report("uncontended `try_acquire_now(1)`, allowed", "governor");

    let spent = MemoryStore::new(ours_denying());
    assert!(spent.check_now(1).is_ok_and(|d| d.is_allowed()));
    let gov_spent = governor::RateLimiter::direct(governor_denying());
    assert!(gov_spent.check().is_ok());
    interleave(
        "uncontended `check_now(1)`, denied",
        rounds,
        batch,
        |n| timed(n, || drop(black_box(spent.check_now(black_box(1))))),
        |n| timed(n, || drop(black_box(gov_spent.check()))),
    )
    .report("uncontended `check_now(1)`, denied", "governor");

    let shared_store = Arc::new(MemoryStore::new(ours_allowing()));
    let shared_gov = Arc::new(governor::RateLimiter::direct(governor_allowing()));
    // Long batches, so that the two threads overlap for nearly all of each one
    // (starting a thread takes tens of microseconds).
    let threads_rounds = rounds / 8;
    let threads_batch = batch * 10;
    interleave(
        "two threads, `check_now(1)`, allowed",
        threads_rounds,
        threads_batch,
        |n| {
            two_threads(&shared_store, n, |s| {
                drop(black_box(s.check_now(black_box(1))));
            })
        },
        |n| {
            two_threads(&shared_gov, n, |g| {
                drop(black_box(g.check()));
            })
        },
    )
    .report("two threads, `check_now(1)`, allowed", "governor");

    interleave(
        "two threads, `admit_now(1)`, allowed",
        threads_rounds,
        threads_batch,
        |n| {
            two_threads(&shared_store, n, |s| {
                drop(black_box(s.admit_now(black_box(1))));
            })
        },
        |n| {
            two_threads(&shared_gov, n, |g| {
                drop(black_box(g.check()));
            })
        },
    )
    .report("two threads, `admit_now(1)`, allowed", "governor");

    let shared_limiter = Arc::new(RateLimiter::new(ours_allowing()));
    interleave(
        "two threads, `try_acquire_now(1)`, allowed",
        threads_rounds,
        threads_batch,
        |n| {
            two_threads(&shared_limiter, n, |l| {
                drop(black_box(l.try_acquire_now(black_box(1))));
            })
        },
        |n| {
            two_threads(&shared_gov, n, |g| {
                drop(black_box(g.check()));
            })
        },
    )
    .report("two threads, `try_acquire_now(1)`, allowed", "governor");

    let noop = || service_fn(|()| std::future::ready(Ok::<_, Infallible>(())));
    const LIMIT: usize = 1 << 20;
    let (mut ours, mut tower) = rt.block_on(async {
        let ours = ServiceBuilder::new()
            .limit_rate(ours_allowing())
            .limit_concurrency(LIMIT)
            .service(noop());
        let tower = ServiceBuilder::new()
            .rate_limit(u64::from(HUGE), Duration::from_secs(1))
            .concurrency_limit(LIMIT)
            .service(noop());
        (ours, tower)
    });
    interleave(
        "stack: rate + concurrency, `ready` + `call`",
        rounds,
        batch,
        |n| drive(&rt, &mut ours, n),
        |n| drive(&rt, &mut tower, n),
    )
    .report("stack: rate + concurrency, `ready` + `call`", "tower");

    let (mut ours_rate, mut tower_rate) = rt.block_on(async {
        let ours = ServiceBuilder::new()
            .limit_rate(ours_allowing())
            .service(noop());
        let tower = ServiceBuilder::new()
            .rate_limit(u64::from(HUGE), Duration::from_secs(1))
            .service(noop());
        (ours, tower)
    });
    interleave(
        "· rate layer alone",
        rounds,
        batch,
        |n| drive(&rt, &mut ours_rate, n),
        |n| drive(&rt, &mut tower_rate, n),
    )
    .report("· rate layer alone", "tower");

    let mut ours_conc = ServiceBuilder::new()
        .limit_concurrency(LIMIT)
        .service(noop());
    let mut tower_conc = ServiceBuilder::new()
        .concurrency_limit(LIMIT)
        .service(noop());
    interleave(
        "· concurrency layer alone",
        rounds,
        batch,
        |n| drive(&rt, &mut ours_conc, n),
        |n| drive(&rt, &mut tower_conc, n),
    )
    .report("· concurrency layer alone", "tower");
}
