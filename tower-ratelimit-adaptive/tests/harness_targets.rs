//! A reduced harness run: the default controller meets its targets on the rows where
//! the full table says it does (token bucket without and with RateLimit headers, at
//! 100 and 2000 requests/s), and stays ahead of AWS CUBIC and AIMD at 2000/s.

use tower_ratelimit_adaptive::sim::table::{contenders, run_row, scenarios};

#[test]
fn default_controller_meets_targets_on_reduced_harness() {
    let all = scenarios(30);
    let picked: Vec<_> = all
        .iter()
        .filter(|s| s.limit >= 100.0)
        .filter(|s| {
            s.name == "token bucket, burst 0.1 s"
                || s.name == "+ RateLimit headers"
                || s.name == "+ headers + Retry-After"
        })
        .collect();
    assert_eq!(picked.len(), 6);
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
        if s.limit >= 2000.0 {
            for rival in cs
                .iter()
                .filter(|c| c.name == "aws cubic" || c.name == "aimd")
            {
                let other = run_row(s, rival);
                assert!(
                    row.score() > other.score(),
                    "{} at {}: {} vs {}",
                    s.name,
                    s.limit,
                    row.score(),
                    other.score()
                );
            }
        }
    }
}
