//! Admission under random op sequences on one `RateLimiter` (GCRA) through a
//! wait-mode `RateLimitLayer` with weighted costs stays within the quota in every
//! window (a review's fuzz: it found the give-back cutting later bookings). The same
//! over a store of two quotas (each checked; a reservation is charged in both at its
//! start), where the give-back's latest-slot rule cannot see a sleeper in the quota
//! that does not bind it.
use proptest::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::algorithm::Gcra;
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};

fn quotas() -> Vec<Quota> {
    vec![
        Quota::per_second(10).unwrap().with_burst(1).unwrap(),
        Quota::per_second(10).unwrap().with_burst(5).unwrap(),
        Quota::per_second(2).unwrap().with_burst(3).unwrap(),
        Quota::per_second(50).unwrap().with_burst(10).unwrap(),
        Quota::new(1, Duration::from_millis(300))
            .unwrap()
            .with_burst(2)
            .unwrap(),
        Quota::per_second(1).unwrap().with_burst(8).unwrap(),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Send(u64),
    ReadyThenCall(u64, u64),
    Abort(usize),
    Advance(u64),
    SetQuota(usize),
    Throttle(u64),
    Pause(u64),
    Resume,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u64..6).prop_map(Op::Send),
        2 => (1u64..6, 0u64..400).prop_map(|(c, g)| Op::ReadyThenCall(c, g)),
        1 => (0usize..64).prop_map(Op::Abort),
        4 => (0u64..700).prop_map(Op::Advance),
        2 => (0usize..6).prop_map(Op::SetQuota),
        1 => (0u64..1500).prop_map(Op::Throttle),
        1 => (0u64..1500).prop_map(Op::Pause),
        1 => Just(Op::Resume),
    ]
}

type Starts = Arc<Mutex<Vec<(u128, u64)>>>;

async fn run(q0: usize, ops: Vec<Op>) -> Result<(), String> {
    run_on(q0, None, ops).await
}

/// `second`: a store of two quotas, `q0` and that one, whose quotas stay (a quota
/// change is skipped; a throttle drains the first).
async fn run_on(q0: usize, second: Option<usize>, ops: Vec<Op>) -> Result<(), String> {
    let qs = quotas();
    let limiter = match second {
        None => RateLimiter::new(qs[q0]),
        Some(q1) => RateLimiter::from_store(
            MemoryStore::with_quotas(Gcra, [qs[q0], qs[q1]]).ok_or("two quotas")?,
        ),
    };
    let t0 = Instant::now();
    let starts: Starts = Arc::default();
    let s2 = Arc::clone(&starts);
    let svc = ServiceBuilder::new()
        .layer(RateLimitLayer::with_limiter(limiter.clone()).cost(|c: &u64| *c))
        .service(service_fn(move |c: u64| {
            s2.lock().unwrap().push((t0.elapsed().as_nanos(), c));
            async { Ok::<_, std::convert::Infallible>(()) }
        }));
    // (segment start ns, quota)
    let mut segments = vec![(0u128, qs[q0])];
    // The second quota of a two-quota store, over the whole run.
    let whole_run: Vec<(u128, Quota)> = second.map(|q1| (0u128, qs[q1])).into_iter().collect();
    let mut tasks = Vec::new();
    let max_cost: u64 = std::env::var("FUZZ_MAXCOST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let no_pause = std::env::var("FUZZ_NOPAUSE").is_ok();
    for op in ops {
        let op = match op {
            Op::Send(c) => Op::Send(c.min(max_cost)),
            Op::ReadyThenCall(c, g) => Op::ReadyThenCall(c.min(max_cost), g),
            Op::Pause(ms) if no_pause => Op::Throttle(ms),
            op => op,
        };
        match op {
            Op::Send(c) => tasks.push(tokio::spawn(svc.clone().oneshot(c))),
            Op::ReadyThenCall(c, gap) => {
                let mut s = svc.clone();
                tasks.push(tokio::spawn(async move {
                    s.ready().await?;
                    // Yields, not time: a unit-cost request's unit is taken at
                    // readiness, so time between ready and call is not a start.
                    for _ in 0..gap % 4 {
                        tokio::task::yield_now().await;
                    }
                    s.call(c).await
                }));
            }
            Op::Abort(i) => {
                if !tasks.is_empty() {
                    let i = i % tasks.len();
                    tasks[i].abort();
                }
            }
            Op::Advance(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Op::SetQuota(_) if second.is_some() => {}
            Op::SetQuota(i) => {
                if limiter.quota() != qs[i] {
                    segments.push((t0.elapsed().as_nanos(), qs[i]));
                    limiter.set_quota(qs[i]);
                }
            }
            Op::Throttle(ms) => limiter.throttle_for(Duration::from_millis(ms)),
            Op::Pause(ms) => limiter.pause_for(Duration::from_millis(ms)),
            Op::Resume => limiter.resume(),
        }
        tokio::task::yield_now().await;
    }
    let deadline = Duration::from_secs(3600);
    for t in tasks {
        if tokio::time::timeout(deadline, t).await.is_err() {
            return Err("a request did not finish within an hour".into());
        }
    }
    let mut starts = starts.lock().unwrap().clone();
    starts.sort();
    check_segments(&segments, &starts)?;
    check_segments(&whole_run, &starts)
}

/// Every stretch of starts within a segment stays within the segment's quota.
fn check_segments(segments: &[(u128, Quota)], starts: &[(u128, u64)]) -> Result<(), String> {
    for (k, &(seg_start, q)) in segments.iter().enumerate() {
        let seg_end = segments.get(k + 1).map_or(u128::MAX, |s| s.0);
        let inside: Vec<_> = starts
            .iter()
            .filter(|(t, _)| *t > seg_start && *t < seg_end)
            .copied()
            .collect();
        let t = q.emission_interval().as_nanos();
        for i in 0..inside.len() {
            let mut units = 0;
            let mut oversize = 0;
            for j in i..inside.len() {
                units += inside[j].1 as u128;
                // A request booked under an earlier quota whose cost is over this
                // burst cannot fit any bucket of it: its excess is not counted here
                // (a separate, known edge).
                oversize += (inside[j].1.saturating_sub(q.burst())) as u128;
                let allowed = q.burst() as u128 + (inside[j].0 - inside[i].0) / t + oversize;
                if units > allowed {
                    return Err(format!(
                        "{units} units started in [{}, {}] ns under {:?} (allowed {allowed}); segments {:?}; starts {:?}",
                        inside[i].0, inside[j].0, q, segments, starts
                    ));
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
    fn admission_stays_within_the_quota(q0 in 0usize..6, ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
        let r = rt.block_on(run(q0, ops.clone()));
        prop_assert!(r.is_ok(), "q0 {q0} ops {ops:?}: {}", r.unwrap_err());
    }
}

proptest! {
    // More cases by default: the case the store's reservation mark guards (a sleeper
    // charged in the quota that does not bind it) is rare; with the mark removed, 300
    // cases passed in 5 runs of 5, 3,000 failed in 2 of 4, 20,000 in every run
    // (`several_quotas_give_back_spares_a_sleeper` pins the case itself).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3_000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]
    #[test]
    fn admission_stays_within_both_quotas(q0 in 0usize..6, q1 in 0usize..6, ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
        let r = rt.block_on(run_on(q0, Some(q1), ops.clone()));
        prop_assert!(r.is_ok(), "q0 {q0} q1 {q1} ops {ops:?}: {}", r.unwrap_err());
    }
}

/// Shrunk from a throttle-only run (`FUZZ_NOPAUSE=1`): the same give-back overlap.
#[tokio::test(start_paused = true)]
async fn throttle_case() {
    use Op::*;
    let ops = vec![
        Send(1),
        Send(3),
        Advance(500),
        ReadyThenCall(2, 5),
        SetQuota(4),
        Throttle(184),
        SetQuota(2),
        Advance(169),
        Throttle(332),
        Send(3),
        Advance(331),
        Resume,
        Send(1),
        Send(1),
        Send(1),
    ];
    run(2, ops).await.unwrap();
}

/// Shrunk from the fuzz: a weighted request held through a pause that began while
/// it was booked, and a pause over the one a `resume` lifted.
#[tokio::test(start_paused = true)]
async fn held_through_a_pause_over_a_lifted_throttle() {
    use Op::*;
    let ops = vec![
        SetQuota(2),
        Throttle(1),
        ReadyThenCall(2, 341),
        Send(3),
        Send(1),
        Resume,
        Send(1),
        Pause(1001),
        Send(1),
    ];
    run(0, ops).await.unwrap();
}

/// Shrunk from the fuzz: a quota change, a throttle lifted at once, and a pause over
/// requests booked in between.
#[tokio::test(start_paused = true)]
async fn a_quota_change_a_lifted_throttle_and_a_pause() {
    use Op::*;
    let ops = vec![
        SetQuota(5),
        Throttle(1),
        Send(1),
        ReadyThenCall(2, 1),
        Send(3),
        Send(2),
        Resume,
        Advance(0),
        Send(1),
        SetQuota(4),
        Pause(301),
    ];
    run(0, ops).await.unwrap();
}
