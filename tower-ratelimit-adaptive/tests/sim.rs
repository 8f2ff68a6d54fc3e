//! The harness itself: deterministic, and its server models and metrics do what the
//! table says.

use std::time::Duration;

use tower_ratelimit_adaptive::controller::{Aimd, Controller, Goodput, Gradient2};
use tower_ratelimit_adaptive::sim::{
    phase_metrics, simulate, Change, Feedback, Schedule, ServerKind, SimConfig,
};

fn config(server: ServerKind, feedback: Feedback, limit: f64) -> SimConfig {
    SimConfig {
        server,
        feedback,
        honour_retry_after: true,
        clients: 1,
        schedule: Schedule::halve_double(limit, 10),
        rtt: Duration::from_millis(50),
        jitter: 0.2,
        seed: 7,
    }
}

const NONE: Feedback = Feedback {
    headers: false,
    retry_after: false,
};

#[test]
fn same_seed_same_run() {
    let cfg = config(ServerKind::TokenBucket { burst_secs: 0.1 }, NONE, 300.0);
    let make = || Box::new(Goodput::default()) as Box<dyn Controller>;
    let a = simulate(&cfg, &make);
    let b = simulate(&cfg, &make);
    assert_eq!(a.accepted, b.accepted);
    assert_eq!(a.refused, b.refused);
    let mut other = cfg.clone();
    other.seed = 8;
    let c = simulate(&other, &make);
    assert_ne!(a.accepted, c.accepted, "the seed drives jitter");
}

#[test]
fn the_server_never_accepts_more_than_its_limit_allows() {
    for server in [
        ServerKind::TokenBucket { burst_secs: 0.1 },
        ServerKind::FixedWindow {
            window: Duration::from_secs(1),
        },
        ServerKind::SlidingLog {
            window: Duration::from_secs(1),
        },
    ] {
        // AIMD overshoots often: the server must hold the line anyway.
        let cfg = config(server, NONE, 200.0);
        let t = simulate(&cfg, &|| Box::new(Aimd::default()) as Box<dyn Controller>);
        for (s, &limit) in t.limit.iter().enumerate() {
            let acc = t.accepted[0][s] as f64;
            // One window's quota plus a bucket's burst at most.
            assert!(
                acc <= limit * 1.1 + 21.0,
                "{server:?} second {s}: {acc} > {limit}"
            );
        }
    }
}

#[test]
fn metrics_follow_the_phases() {
    let cfg = config(
        ServerKind::TokenBucket { burst_secs: 0.1 },
        Feedback {
            headers: true,
            retry_after: false,
        },
        500.0,
    );
    let t = simulate(&cfg, &|| {
        Box::new(Goodput::default()) as Box<dyn Controller>
    });
    let m = phase_metrics(&t, &cfg.schedule);
    assert_eq!(
        m.iter().map(|p| p.change).collect::<Vec<_>>(),
        [Change::Start, Change::Drop, Change::Rise]
    );
    // With the policy header the default controller tracks the limit exactly.
    for p in &m {
        assert!(p.goodput > 0.95 && p.goodput < 1.02, "{p:?}");
        assert!(p.refused_share < 0.01, "{p:?}");
        assert_eq!(p.fairness, 1.0);
    }
    assert!(m[1].convergence.is_some_and(|c| c <= 1.0), "{:?}", m[1]);
}

#[test]
fn retry_after_holds_the_client() {
    let cfg = config(
        ServerKind::TokenBucket { burst_secs: 0.1 },
        Feedback {
            headers: false,
            retry_after: true,
        },
        100.0,
    );
    // Gradient2 sets no rate: without holds it floods the server.
    let make = || Box::new(Gradient2::default()) as Box<dyn Controller>;
    let held = simulate(&cfg, &make);
    let mut free_cfg = cfg.clone();
    free_cfg.honour_retry_after = false;
    let free = simulate(&free_cfg, &make);
    // Pausing a whole second on every 429 means far fewer refusals.
    let r_held: u64 = held.refused.iter().sum();
    let r_free: u64 = free.refused.iter().sum();
    assert!(r_held * 2 < r_free, "held {r_held} vs free {r_free}");
}

#[test]
fn the_table_marks_convergence_no_whole_count_can_reach() {
    use tower_ratelimit_adaptive::sim::table::{contenders, run_row, scenarios};
    let all = scenarios(6);
    let find = |name: &str, limit: f64| {
        all.iter()
            .find(|s| s.name == name && s.limit == limit)
            .unwrap()
    };
    let aimd = &contenders()[2];
    // L/2 = 2.5/s on a token bucket: 2 and 3 per second are both 20 % off.
    let row = run_row(find("token bucket, burst 0.1 s", 5.0), aimd);
    assert_eq!(row.infeasible(), vec!["p2 conv".to_string()]);
    assert!(row.misses().iter().any(|m| m.contains("infeasible")));
    // A fixed window enforces round(2.5) = 3 per second: reachable.
    let row = run_row(find("fixed window 1 s", 5.0), aimd);
    assert!(row.infeasible().is_empty());
    let row = run_row(find("token bucket, burst 0.1 s", 100.0), aimd);
    assert!(row.infeasible().is_empty());
}
