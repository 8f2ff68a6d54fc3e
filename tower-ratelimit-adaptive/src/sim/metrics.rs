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
    /// `Some(target)` when convergence is impossible for any client: no whole number
    /// of requests in a 1 s window is within 10 % of the target (requests per second)
    /// in any three consecutive seconds of the phase, as at 2.5/s (2 and 3 are both
    /// 20 % off). The metric is kept as defined; this says why it cannot be met.
    pub convergence_infeasible: Option<f64>,
    /// 99th percentile of the added wait of accepted requests in the steady state, s.
    pub p99_wait: f64,
    /// Jain's fairness index of the clients' accepted requests in the steady state.
    pub fairness: f64,
}

/// What a perfect client could have had accepted in each second: the limit under a
/// backlog; under Poisson demand, the requests that had arrived and were not yet
/// served (this second's arrivals and what earlier seconds left), up to the limit.
/// Measured on the run's own arrivals, so neither their noise nor the queue a lower
/// limit left behind counts against the controller.
fn targets(trace: &Trace, demand: Demand) -> Vec<f64> {
    match demand {
        Demand::Backlog => trace.limit.clone(),
        Demand::Poisson(_) => {
            let mut queued = 0.0;
            trace
                .limit
                .iter()
                .zip(&trace.arrivals)
                .map(|(&limit, &arrived)| {
                    let want = queued + arrived as f64;
                    let served = want.min(limit);
                    queued = want - served;
                    served
                })
                .collect()
        }
    }
}

/// Whether some whole number lies within `tol · t` of `t` (a tiny slack absorbs the
/// rounding of a limit integrated over 0.1 s ticks).
fn integer_within(t: f64, tol: f64) -> bool {
    let slack = 1e-6 * t.abs().max(1.0);
    (t - tol * t - slack).ceil() <= (t + tol * t + slack).floor()
}

/// Computes the metrics of every phase of `schedule` from a run's trace.
pub fn phase_metrics(trace: &Trace, schedule: &Schedule) -> Vec<PhaseMetrics> {
    let mut out = Vec::new();
    let mut start = 0usize;
    let n = trace.accepted.len();
    // Waits sorted by bin once.
    let mut waits: Vec<(u32, f32)> = trace.waits.clone();
    let target_of = targets(trace, schedule.demand);
    let target = |_: &Trace, s: usize, _: Demand| target_of[s];
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
        let reachable = |s: usize| integer_within(target(trace, s, schedule.demand), 0.1);
        let convergence_infeasible = (!(start..end.saturating_sub(2))
            .any(|s| reachable(s) && reachable(s + 1) && reachable(s + 2)))
        .then(|| target(trace, start, schedule.demand));
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
            convergence_infeasible,
            p99_wait,
            fairness,
        });
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::integer_within;

    #[test]
    fn whole_counts_near_a_target() {
        // 2.5/s: 2 and 3 are both 20 % away; 5/s, 3/s and 50/s are reachable.
        assert!(!integer_within(2.5, 0.1));
        assert!(!integer_within(2.499_999_9, 0.1));
        assert!(integer_within(5.0, 0.1));
        assert!(integer_within(3.0, 0.1));
        assert!(integer_within(50.0, 0.1));
        assert!(!integer_within(1.5, 0.1));
    }
}
