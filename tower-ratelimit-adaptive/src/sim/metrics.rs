//! Per-phase metrics of a run: goodput against the limit, 429 share, convergence,
//! added wait, fairness.

use super::engine::Trace;
use super::schedule::{Change, Demand, Schedule};

/// The measured behaviour of one phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhaseMetrics {
    /// What the phase does to the limit.
    pub change: Change,
    /// Accepted requests over the steady state (second half of the phase) divided by
    /// the target: the limit, or the demand when that is lower.
    pub goodput: f64,
    /// Refused requests as a share of all requests the server saw in the steady state.
    pub refused_share: f64,
    /// Seconds from the phase start to the start of the first of three consecutive
    /// 1 s windows with `|goodput − target| ≤ 10 %` and under 10 % refused; `None` if
    /// that never happened within the phase.
    pub convergence: Option<f64>,
    /// 99th percentile of the added wait of accepted requests in the steady state, s.
    pub p99_wait: f64,
    /// Jain's fairness index of the clients' accepted requests in the steady state.
    pub fairness: f64,
}

fn target(trace: &Trace, s: usize, demand: Demand) -> f64 {
    let limit = trace.limit[s];
    match demand {
        Demand::Backlog => limit,
        Demand::Poisson(d) => limit.min(d),
    }
}

/// Computes the metrics of every phase of `schedule` from a run's trace.
pub fn phase_metrics(trace: &Trace, schedule: &Schedule) -> Vec<PhaseMetrics> {
    let mut out = Vec::new();
    let mut start = 0usize;
    let n = trace.accepted.len();
    // Waits sorted by bin once.
    let mut waits: Vec<(u32, f32)> = trace.waits.clone();
    waits.sort_by_key(|w| w.0);
    for phase in &schedule.phases {
        let len = phase.duration.as_secs() as usize;
        let end = (start + len).min(trace.refused.len());
        let steady = start + len / 2;
        let accepted_at = |s: usize| -> u64 { trace.accepted.iter().map(|c| c[s]).sum() };
        let (mut acc, mut refused, mut tgt) = (0u64, 0u64, 0.0);
        for s in steady..end {
            acc += accepted_at(s);
            refused += trace.refused[s];
            tgt += target(trace, s, schedule.demand);
        }
        let goodput = if tgt > 0.0 { acc as f64 / tgt } else { 0.0 };
        let refused_share = if acc + refused > 0 {
            refused as f64 / (acc + refused) as f64
        } else {
            0.0
        };
        let good = |s: usize| -> bool {
            let a = accepted_at(s) as f64;
            let r = trace.refused[s] as f64;
            let t = target(trace, s, schedule.demand);
            (a - t).abs() <= 0.1 * t && r < 0.1 * (a + r).max(1e-9)
        };
        let convergence = (start..end.saturating_sub(2))
            .find(|&s| good(s) && good(s + 1) && good(s + 2))
            .map(|s| (s - start) as f64);
        let lo = waits.partition_point(|w| (w.0 as usize) < steady);
        let hi = waits.partition_point(|w| (w.0 as usize) < end);
        let mut w: Vec<f32> = waits[lo..hi].iter().map(|w| w.1).collect();
        let p99_wait = if w.is_empty() {
            0.0
        } else {
            let k = ((w.len() as f64) * 0.99).ceil() as usize;
            let k = k.clamp(1, w.len()) - 1;
            let (_, v, _) = w.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
            f64::from(*v)
        };
        let per: Vec<f64> = (0..n)
            .map(|c| trace.accepted[c][steady..end].iter().sum::<u64>() as f64)
            .collect();
        let sum: f64 = per.iter().sum();
        let sq: f64 = per.iter().map(|x| x * x).sum();
        let fairness = if sq > 0.0 {
            sum * sum / (n as f64 * sq)
        } else {
            1.0
        };
        out.push(PhaseMetrics {
            change: phase.change,
            goodput,
            refused_share,
            convergence,
            p99_wait,
            fairness,
        });
        start = end;
    }
    out
}
