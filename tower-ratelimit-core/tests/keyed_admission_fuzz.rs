//! Keyed wait mode (GCRA and the leaky bucket) under random sends with
//! costs, aborts, default-quota changes (rate and burst up and down) and time: per key,
//! between two changes, units started in any window `[x, y]` stay within
//! `B + ⌊(y − x) / T⌋` (for the leaky bucket, `⌈cost⌉`-spaced: `1 + ⌊(y − x) / T⌋`
//! counted in units). `FUZZ_CASES` (default 300).
use proptest::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::algorithm::{Algorithm, Gcra, LeakyBucket};
use tower_ratelimit_core::keyed::KeyedMemoryStore;
use tower_ratelimit_core::{KeyedRateLimitLayer, KeyedRateLimiter, Quota};

fn quotas() -> Vec<Quota> {
    vec![
        Quota::per_second(10).unwrap().with_burst(3).unwrap(),
        Quota::per_second(10).unwrap().with_burst(5).unwrap(),
        Quota::per_second(2).unwrap().with_burst(3).unwrap(),
        Quota::per_second(50).unwrap().with_burst(10).unwrap(),
        Quota::new(1, Duration::from_millis(300))
            .unwrap()
            .with_burst(4)
            .unwrap(),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Send(u32, u64),
    Abort(usize),
    Advance(u64),
    SetQuota(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u32..2, 1u64..4).prop_map(|(k, c)| Op::Send(k, c)),
        1 => (0usize..64).prop_map(Op::Abort),
        3 => (0u64..700).prop_map(Op::Advance),
        2 => (0usize..5).prop_map(Op::SetQuota),
    ]
}

async fn run<A: Algorithm + Clone>(
    alg: A,
    leaky: bool,
    q0: usize,
    ops: Vec<Op>,
) -> Result<(), String>
where
    A::State: Send + Sync,
{
    let qs = quotas();
    let store = KeyedMemoryStore::with_algorithm(alg, qs[q0]);
    let limiter: KeyedRateLimiter<u32, _> = KeyedRateLimiter::from_store(store);
    let t0 = Instant::now();
    let starts: Arc<Mutex<Vec<(u128, u32, u64)>>> = Arc::default();
    let s2 = Arc::clone(&starts);
    let svc = ServiceBuilder::new()
        .layer(
            KeyedRateLimitLayer::with_limiter(limiter.clone(), |r: &(u32, u64)| r.0)
                .cost(|r: &(u32, u64)| r.1),
        )
        .service(service_fn(move |r: (u32, u64)| {
            s2.lock().unwrap().push((t0.elapsed().as_nanos(), r.0, r.1));
            async { Ok::<_, std::convert::Infallible>(()) }
        }));
    let mut segments = vec![(0u128, qs[q0])];
    let mut tasks = Vec::new();
    for op in ops {
        match op {
            Op::Send(k, c) => tasks.push(tokio::spawn(svc.clone().oneshot((k, c)))),
            Op::Abort(i) => {
                if !tasks.is_empty() {
                    let i = i % tasks.len();
                    tasks[i].abort();
                }
            }
            Op::Advance(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Op::SetQuota(i) => {
                if limiter.quota(&0) != qs[i] {
                    segments.push((t0.elapsed().as_nanos(), qs[i]));
                    limiter.set_quota(qs[i]);
                }
            }
        }
        tokio::task::yield_now().await;
    }
    for t in tasks {
        if tokio::time::timeout(Duration::from_secs(3600), t)
            .await
            .is_err()
        {
            return Err("a request did not finish within an hour".into());
        }
    }
    let starts = starts.lock().unwrap().clone();
    for key in 0..2 {
        let mut mine: Vec<_> = starts
            .iter()
            .filter(|s| s.1 == key)
            .map(|s| (s.0, s.2))
            .collect();
        mine.sort();
        for (k, &(seg_start, q)) in segments.iter().enumerate() {
            let seg_end = segments.get(k + 1).map_or(u128::MAX, |s| s.0);
            let inside: Vec<_> = mine
                .iter()
                .filter(|(t, _)| *t > seg_start && *t < seg_end)
                .copied()
                .collect();
            let t = q.emission_interval().as_nanos();
            let burst = if leaky { 1 } else { q.burst() as u128 };
            for i in 0..inside.len() {
                let mut units = 0;
                for j in i..inside.len() {
                    units += inside[j].1 as u128;
                    // The leaky bucket lets a cost-c request start on an empty bucket:
                    // the last one's cost rides on top.
                    let extra = if leaky { inside[j].1 as u128 - 1 } else { 0 };
                    let allowed = burst + (inside[j].0 - inside[i].0) / t + extra;
                    if units > allowed {
                        return Err(format!("key {key}: {units} units in [{}, {}] under {q:?} (allowed {allowed}); segments {segments:?}; starts {mine:?}", inside[i].0, inside[j].0));
                    }
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]
    #[test]
    fn keyed_gcra_admission(q0 in 0usize..5, ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
        let r = rt.block_on(run(Gcra, false, q0, ops.clone()));
        prop_assert!(r.is_ok(), "q0 {q0} ops {ops:?}: {}", r.unwrap_err());
    }
    #[test]
    fn keyed_leaky_admission(q0 in 0usize..5, ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
        let r = rt.block_on(run(LeakyBucket, true, q0, ops.clone()));
        prop_assert!(r.is_ok(), "q0 {q0} ops {ops:?}: {}", r.unwrap_err());
    }
}
