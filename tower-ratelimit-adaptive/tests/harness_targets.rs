//! A reduced harness run: the default controller meets its targets on rows where the
//! full table says it does with seed 1 (token bucket with small and large burst,
//! fixed window, RateLimit headers with and without Retry-After, at 100 and 2000
//! requests/s), and is ahead of AWS CUBIC and AIMD on the header-less ones.

use tower_ratelimit_adaptive::sim::table::{contenders, run_row, scenarios};

#[test]
fn default_controller_meets_targets_on_reduced_harness() {
    let all = scenarios(30);
    let met = |name: &str| {
        matches!(
            name,
            "token bucket, burst 0.1 s"
                | "+ RateLimit headers"
                | "+ headers + Retry-After"
                | "token bucket, burst 1 s"
                | "fixed window 1 s"
        )
    };
    let picked: Vec<_> = all
        .iter()
        .filter(|s| s.limit >= 100.0 && met(&s.name))
        .collect();
    assert_eq!(picked.len(), 10);
    let cs = contenders();
    for s in picked {
        let row = run_row(s, &cs[0]);
        assert!(
            row.misses().is_empty(),
            "{} at {}: {:?}",
            s.name,
            s.limit,
            row.misses()
        );
        if s.name.contains("headers") {
            continue;
        }
        for rival in cs
            .iter()
            .filter(|c| c.name == "aws cubic" || c.name == "aimd")
        {
            let other = run_row(s, rival);
            assert!(
                row.score() > other.score(),
                "{} at {}: {} vs {} {}",
                s.name,
                s.limit,
                row.score(),
                rival.name,
                other.score()
            );
        }
    }
}
