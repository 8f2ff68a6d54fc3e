//! The waiters' queue under real threads: many tasks on a multi-thread runtime wait,
//! give up at random and come back, and every waiter that stays gets through at the
//! quota's rate, with nothing left in the queue. Real time, so it is ignored by
//! default (speed and timing are not asserted in tests); run it by hand:
//! `cargo test -p tower-ratelimit-core --test queue_stress --release -- --ignored`.

use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_ratelimit_core::{Quota, RateLimiter};

#[test]
#[ignore = "real time, a few seconds"]
fn waiters_that_give_up_and_return_lose_nothing() {
    const TASKS: usize = 256;
    const PER_TASK: usize = 40;
    const RATE: u64 = 4_000;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let limiter = RateLimiter::new(Quota::per_second(RATE).unwrap().with_burst(4).unwrap());
    let granted = Arc::new(AtomicUsize::new(0));
    let gave_up = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|seed| {
                let (limiter, granted, gave_up) =
                    (limiter.clone(), granted.clone(), gave_up.clone());
                tokio::spawn(async move {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(seed as u64);
                    let mut done = 0;
                    while done < PER_TASK {
                        let patience = Duration::from_micros(rng.random_range(100..20_000));
                        match tokio::time::timeout(patience, limiter.acquire(1)).await {
                            Ok(result) => {
                                result.unwrap();
                                granted.fetch_add(1, Ordering::Relaxed);
                                done += 1;
                            }
                            Err(_) => {
                                gave_up.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    let elapsed = start.elapsed();
    let granted = granted.load(Ordering::Relaxed);
    assert_eq!(granted, TASKS * PER_TASK);
    let rate = granted as f64 / elapsed.as_secs_f64();
    println!(
        "{granted} granted in {elapsed:?} ({rate:.0}/s against {RATE}/s), {} gave up",
        gave_up.load(Ordering::Relaxed)
    );
    // Every waiter left: the limiter answers at once again.
    assert!(limiter.try_acquire_now(1).is_ok());
}
