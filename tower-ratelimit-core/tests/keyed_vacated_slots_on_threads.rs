//! Abandoned keyed sleepers on a multi-thread runtime (real clock, so only bounds
//! with slack are checked, never timing; ignored by default), and the vacated slots'
//! fast path once every slot has passed.
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower_ratelimit_core::algorithm::{Algorithm, Gcra, SlidingLog};
use tower_ratelimit_core::keyed::KeyedMemoryStore;
use tower_ratelimit_core::store::{VacatedSlot, VacatedSlots};
use tower_ratelimit_core::{KeyedRateLimiter, Quota};

/// 8 tasks, 4 keys, 200/s each, timeouts of 5-80 ms; per key, the units started in
/// any second stay within the quota plus a slack of 10 % for late wake-ups.
fn hammer<A: Algorithm + Clone>(alg: A, quota: Quota, allowed_per_second: u64)
where
    A::State: Send + Sync,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let limiter: KeyedRateLimiter<u32, _> =
            KeyedRateLimiter::from_store(KeyedMemoryStore::with_algorithm(alg, quota));
        let starts: Arc<Mutex<Vec<(u32, Duration)>>> = Arc::default();
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for worker in 0..8u64 {
            let (limiter, starts) = (limiter.clone(), Arc::clone(&starts));
            tasks.push(tokio::spawn(async move {
                let mut seed = worker * 7919 + 1;
                let mut inflight = tokio::task::JoinSet::new();
                while t0.elapsed() < Duration::from_millis(1500) {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let key = (seed >> 33) as u32 % 4;
                    let patience = Duration::from_millis(5 + (seed >> 40) % 75);
                    let (limiter, starts) = (limiter.clone(), Arc::clone(&starts));
                    inflight.spawn(async move {
                        let got = tokio::time::timeout(
                            patience,
                            limiter.acquire(&key, 1, Duration::from_secs(5)),
                        )
                        .await;
                        if let Ok(Ok(_)) = got {
                            starts.lock().unwrap().push((key, t0.elapsed()));
                        }
                    });
                    tokio::time::sleep(Duration::from_micros(500)).await;
                }
                while inflight.join_next().await.is_some() {}
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let starts = starts.lock().unwrap().clone();
        let mut total = 0;
        for key in 0..4 {
            let mut mine: Vec<Duration> =
                starts.iter().filter(|s| s.0 == key).map(|s| s.1).collect();
            mine.sort();
            total += mine.len();
            let slack = allowed_per_second / 10;
            for (i, &from) in mine.iter().enumerate() {
                let within = mine[i..]
                    .iter()
                    .take_while(|&&t| t < from + Duration::from_secs(1))
                    .count() as u64;
                assert!(
                    within <= allowed_per_second + slack,
                    "key {key}: {within} starts in the second from {from:?}"
                );
            }
        }
        // Requests did get through, and the clients asked for far more than that.
        assert!(total > 400, "{total} starts");
    });
}

#[test]
#[ignore = "real clock, 3 s: cargo test --release --test keyed_vacated_slots_on_threads -- --ignored"]
fn gcra_on_threads() {
    hammer(
        Gcra,
        Quota::per_second(200).unwrap().with_burst(5).unwrap(),
        205,
    );
}

#[test]
#[ignore = "real clock, 3 s: cargo test --release --test keyed_vacated_slots_on_threads -- --ignored"]
fn sliding_log_on_threads() {
    hammer(SlidingLog, Quota::per_second(200).unwrap(), 200);
}

/// Once every vacated slot has passed, the store reads as holding none, so later
/// reservations skip the store-wide lock (it counted the key for as long as the key
/// that left a slot stayed away).
#[tokio::test(start_paused = true)]
async fn expired_slots_are_not_counted_for_ever() {
    let slots = VacatedSlots::<u32>::default();
    let quota = Quota::per_second(1).unwrap();
    slots.vacate(
        &1,
        VacatedSlot {
            at: Instant::now() + Duration::from_secs(1),
            cost: 1,
            quota,
            generation: 0,
            booked_at: Instant::now(),
        },
    );
    assert!(slots.holds_any());
    tokio::time::advance(Duration::from_secs(2)).await;
    // Other keys' lookups find nothing to take...
    for key in 2..100 {
        assert_eq!(slots.take(&key, 1, Duration::MAX, || (quota, 0)), None);
    }
    // ...and the passed slot is not counted.
    assert!(!slots.holds_any(), "{slots:?}");
}
