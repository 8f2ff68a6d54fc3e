//! Keyed wait mode with abandoned sleepers (timeouts through the layer and around
//! `acquire`, aborts), two keys (one with its own quota), costs, default-quota
//! changes (GCRA and the leaky bucket only), and keys forgotten (`remove`, `clear`)
//! while sleepers hold slots, for every algorithm, each with its own bound. A key
//! forgotten starts a new epoch: the requests sent in it must keep the bound among
//! themselves, so a slot booked before the key was forgotten and handed to one of
//! them fails the check. Paused clock. `FUZZ_CASES` (default 64 per algorithm).
use proptest::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, Layer, ServiceExt};
use tower_ratelimit_core::algorithm::{
    Algorithm, FixedWindow, Gcra, LeakyBucket, SlidingCounter, SlidingLog,
};
use tower_ratelimit_core::clock::Clock;
use tower_ratelimit_core::keyed::KeyedMemoryStore;
use tower_ratelimit_core::{KeyedRateLimitLayer, KeyedRateLimiter, Quota};

const ORIGIN: Duration = Duration::from_secs(1_000_000);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Gcra,
    Leaky,
    Fixed,
    Log,
    Counter,
}

fn quotas(kind: Kind) -> Vec<Quota> {
    match kind {
        Kind::Gcra | Kind::Leaky => vec![
            Quota::per_second(10).unwrap().with_burst(3).unwrap(),
            Quota::per_second(2).unwrap().with_burst(3).unwrap(),
            Quota::per_second(50).unwrap().with_burst(10).unwrap(),
            Quota::new(1, Duration::from_millis(300))
                .unwrap()
                .with_burst(4)
                .unwrap(),
        ],
        _ => vec![Quota::per_second(3).unwrap()],
    }
}

/// Key 1's own quota.
fn own(kind: Kind) -> Quota {
    match kind {
        Kind::Gcra | Kind::Leaky => Quota::per_second(4).unwrap().with_burst(2).unwrap(),
        _ => Quota::new(4, Duration::from_secs(2)).unwrap(),
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// key, cost, patience (ms; 0 = none), through the layer or `acquire`.
    Send(u32, u64, u64, bool),
    Abort(usize),
    Advance(u64),
    SetQuota(usize),
    Remove(u32),
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u32..2, 1u64..4, prop_oneof![Just(0u64), 1u64..2500], any::<bool>())
            .prop_map(|(k, c, p, a)| Op::Send(k, c, p, a)),
        1 => (0usize..64).prop_map(Op::Abort),
        3 => (0u64..700).prop_map(Op::Advance),
        1 => (0usize..4).prop_map(Op::SetQuota),
        1 => (0u32..2).prop_map(Op::Remove),
        1 => Just(Op::Clear),
    ]
}

/// Start instant (ns), key, cost, the key's epoch when the request was sent.
type Log = Arc<Mutex<Vec<(u128, u32, u64, u32)>>>;

async fn run<A: Algorithm + Clone>(alg: A, kind: Kind, ops: Vec<Op>) -> Result<(), String>
where
    A::State: Send + Sync,
{
    let qs = quotas(kind);
    let own_q = own(kind);
    let store = KeyedMemoryStore::with_algorithm(alg, qs[0])
        .with_clock(Clock::with_unix_time(ORIGIN))
        .with_quota_fn(move |k: &u32| (*k == 1).then_some(own_q));
    let limiter: KeyedRateLimiter<u32, _> = KeyedRateLimiter::from_store(store);
    let t0 = Instant::now();
    let starts: Log = Arc::default();
    let s2 = Arc::clone(&starts);
    let svc = KeyedRateLimitLayer::with_limiter(limiter.clone(), |r: &(u32, u64, u32)| r.0)
        .cost(|r: &(u32, u64, u32)| r.1)
        .layer(service_fn(move |r: (u32, u64, u32)| {
            s2.lock()
                .unwrap()
                .push((t0.elapsed().as_nanos(), r.0, r.1, r.2));
            async { Ok::<_, std::convert::Infallible>(()) }
        }));
    let mut epochs = [0u32; 2];
    let mut segments = vec![(0u128, qs[0])];
    let mut tasks: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    for op in ops {
        match op {
            Op::Send(k, c, patience, via_acquire) => {
                let epoch = epochs[k as usize];
                let patience = if patience == 0 {
                    Duration::from_secs(3600)
                } else {
                    Duration::from_millis(patience)
                };
                if via_acquire {
                    let (limiter, log) = (limiter.clone(), Arc::clone(&starts));
                    tasks.push(tokio::spawn(async move {
                        let got =
                            tokio::time::timeout(patience, limiter.acquire(&k, c, Duration::MAX))
                                .await;
                        if let Ok(Ok(_)) = got {
                            log.lock()
                                .unwrap()
                                .push((t0.elapsed().as_nanos(), k, c, epoch));
                        }
                    }));
                } else {
                    let svc = svc.clone();
                    tasks.push(tokio::spawn(async move {
                        let _ = tokio::time::timeout(patience, svc.oneshot((k, c, epoch))).await;
                    }));
                }
            }
            Op::Abort(i) => {
                if !tasks.is_empty() {
                    let i = i % tasks.len();
                    tasks[i].abort();
                }
            }
            Op::Advance(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Op::SetQuota(i) => {
                if matches!(kind, Kind::Gcra | Kind::Leaky) && limiter.quota(&0) != qs[i] {
                    segments.push((t0.elapsed().as_nanos(), qs[i]));
                    limiter.set_quota(qs[i]);
                }
            }
            Op::Remove(k) => {
                limiter.remove(&k);
                epochs[k as usize] += 1;
            }
            Op::Clear => {
                limiter.store().clear();
                epochs.iter_mut().for_each(|e| *e += 1);
            }
        }
        tokio::task::yield_now().await;
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(7200), t).await;
    }
    let starts = starts.lock().unwrap().clone();
    for key in 0..2u32 {
        for epoch in 0..=epochs[key as usize] {
            let mut mine: Vec<(u128, u64)> = starts
                .iter()
                .filter(|s| s.1 == key && s.3 == epoch)
                .map(|s| (s.0, s.2))
                .collect();
            mine.sort();
            let segs: Vec<(u128, Quota)> = if key == 1 {
                vec![(0, own_q)]
            } else {
                segments.clone()
            };
            check(kind, &segs, &mine).map_err(|e| format!("key {key} epoch {epoch}: {e}"))?;
        }
    }
    Ok(())
}

fn check(kind: Kind, segments: &[(u128, Quota)], mine: &[(u128, u64)]) -> Result<(), String> {
    for (k, &(seg_start, q)) in segments.iter().enumerate() {
        let seg_end = segments.get(k + 1).map_or(u128::MAX, |s| s.0);
        let inside: Vec<_> = mine
            .iter()
            .filter(|(t, _)| (*t > seg_start || k == 0) && *t < seg_end)
            .copied()
            .collect();
        match kind {
            Kind::Gcra | Kind::Leaky => {
                let t = q.emission_interval().as_nanos();
                let burst = if kind == Kind::Leaky {
                    1
                } else {
                    q.burst() as u128
                };
                for i in 0..inside.len() {
                    let mut units = 0;
                    for j in i..inside.len() {
                        units += inside[j].1 as u128;
                        let extra = if kind == Kind::Leaky {
                            inside[j].1 as u128 - 1
                        } else {
                            0
                        };
                        let allowed = burst + (inside[j].0 - inside[i].0) / t + extra
                            - u128::from(std::env::var("RV11_TIGHTEN").is_ok());
                        if units > allowed {
                            return Err(format!(
                                "{units} units in [{}, {}] (allowed {allowed}) {q:?}; {inside:?}",
                                inside[i].0, inside[j].0
                            ));
                        }
                    }
                }
            }
            Kind::Fixed | Kind::Log | Kind::Counter => {
                let p = q.period().as_nanos();
                let count = q.count() as u128 - u128::from(std::env::var("RV11_TIGHTEN").is_ok());
                let origin = ORIGIN.as_nanos();
                let window = |t: u128| (t + origin) / p;
                let in_window = |w: u128| -> u128 {
                    inside
                        .iter()
                        .filter(|s| window(s.0) == w)
                        .map(|s| s.1 as u128)
                        .sum()
                };
                for &(t, _) in &inside {
                    // Every algorithm: a clock window never holds more than its count
                    // (the sliding log: any span of one period).
                    let used = match kind {
                        Kind::Log => inside
                            .iter()
                            .filter(|s| s.0 >= t && s.0 < t + p)
                            .map(|s| s.1 as u128)
                            .sum(),
                        _ => in_window(window(t)),
                    };
                    if used > count {
                        return Err(format!("{used} units from {t} (count {count}); {inside:?}"));
                    }
                    if kind == Kind::Counter {
                        let w = window(t);
                        let r = (t + origin) % p;
                        let prev = if w == 0 { 0 } else { in_window(w - 1) };
                        let cur: u128 = inside
                            .iter()
                            .filter(|s| window(s.0) == w && s.0 <= t)
                            .map(|s| s.1 as u128)
                            .sum();
                        if prev * (p - r) + cur * p > count * p {
                            return Err(format!(
                                "estimate at {t}: prev {prev} × {}/{p} + {cur} > {count}; {inside:?}",
                                p - r
                            ));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn gcra(ops in proptest::collection::vec(op(), 1..60)) {
        let r = paused().block_on(run(Gcra, Kind::Gcra, ops.clone()));
        prop_assert!(r.is_ok(), "{ops:?}: {}", r.unwrap_err());
    }
    #[test]
    fn leaky(ops in proptest::collection::vec(op(), 1..60)) {
        let r = paused().block_on(run(LeakyBucket, Kind::Leaky, ops.clone()));
        prop_assert!(r.is_ok(), "{ops:?}: {}", r.unwrap_err());
    }
    #[test]
    fn fixed_window(ops in proptest::collection::vec(op(), 1..60)) {
        let r = paused().block_on(run(FixedWindow, Kind::Fixed, ops.clone()));
        prop_assert!(r.is_ok(), "{ops:?}: {}", r.unwrap_err());
    }
    #[test]
    fn sliding_log(ops in proptest::collection::vec(op(), 1..60)) {
        let r = paused().block_on(run(SlidingLog, Kind::Log, ops.clone()));
        prop_assert!(r.is_ok(), "{ops:?}: {}", r.unwrap_err());
    }
    #[test]
    fn sliding_counter(ops in proptest::collection::vec(op(), 1..60)) {
        let r = paused().block_on(run(SlidingCounter, Kind::Counter, ops.clone()));
        prop_assert!(r.is_ok(), "{ops:?}: {}", r.unwrap_err());
    }
}
