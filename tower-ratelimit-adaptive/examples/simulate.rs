//! Prints the simulation table: every controller on every standard scenario.
//!
//! `cargo run --release -p tower-ratelimit-adaptive --example simulate [-- --phase-secs N --only NAME --scenario NAME --seed N --seeds N]`

mod common;

use std::time::Instant;

use tower_ratelimit_adaptive::sim::table::{
    ahead_of_anchors, contenders, markdown, run_row, scenarios,
};

fn main() {
    let arg = common::flag;
    let phase_secs = arg("--phase-secs")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let seed: Option<u64> = arg("--seed").and_then(|v| v.parse().ok());
    let only = arg("--only");
    let filter = arg("--scenario");
    let started = Instant::now();
    let mut rows = Vec::new();
    for mut s in scenarios(phase_secs) {
        if filter
            .as_ref()
            .is_some_and(|f| !s.name.contains(f.as_str()))
        {
            continue;
        }
        if let Some(seed) = seed {
            s.config.seed = seed;
        }
        for c in contenders() {
            if only.as_ref().is_some_and(|o| !c.name.contains(o.as_str())) {
                continue;
            }
            rows.push(run_row(&s, &c));
        }
    }
    println!("{}", markdown(&rows));
    let extra_seeds: u64 = arg("--seeds").and_then(|v| v.parse().ok()).unwrap_or(1);
    if extra_seeds > 1 {
        // The default controller on further seeds: how often each row meets every
        // target, and its mean score against the best of AWS CUBIC and AIMD.
        println!("| scenario | L | seeds meeting every target | mean score default / best of cubic, aimd | targets no controller can meet |");
        println!("|---|---:|---:|---|---|");
        let cs = contenders();
        for s in scenarios(phase_secs) {
            if filter
                .as_ref()
                .is_some_and(|f| !s.name.contains(f.as_str()))
            {
                continue;
            }
            let (mut met, mut own, mut rival) = (0, 0.0, 0.0);
            let mut infeasible = Vec::new();
            for seed in 1..=extra_seeds {
                let mut s = s.clone();
                s.config.seed = seed;
                let row = run_row(&s, &cs[0]);
                met += usize::from(row.misses().is_empty());
                infeasible = row.infeasible();
                own += row.score();
                rival += cs[1..3]
                    .iter()
                    .map(|c| run_row(&s, c).score())
                    .fold(f64::MIN, f64::max);
            }
            let n = extra_seeds as f64;
            println!(
                "| {} | {} | {met} / {extra_seeds} | {:.3} / {:.3} | {} |",
                s.name,
                s.limit,
                own / n,
                rival / n,
                if infeasible.is_empty() {
                    "—".to_string()
                } else {
                    infeasible.join(", ")
                }
            );
        }
    }
    let default: Vec<_> = rows
        .iter()
        .filter(|r| r.controller == "goodput (default)")
        .collect();
    let met = default.iter().filter(|r| r.misses().is_empty()).count();
    let infeasible = default
        .iter()
        .filter(|r| !r.infeasible().is_empty())
        .count();
    let ahead = default
        .iter()
        .filter(|r| ahead_of_anchors(r, &rows))
        .count();
    println!(
        "default controller: {met} of {} rows meet every target ({infeasible} rows hold a target no controller can meet); ahead of AWS CUBIC and AIMD on {ahead}; {} phases of {} s; {:.1} s wall",
        default.len(),
        3,
        phase_secs,
        started.elapsed().as_secs_f64()
    );
}
