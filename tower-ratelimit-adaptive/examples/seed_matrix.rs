//! Per row-seed verdicts of the default controller (a tuning aid): one line per
//! scenario, scale and seed, with whether it meets every target, whether it scores
//! above both AWS CUBIC and AIMD, its score and the targets it misses. Two runs'
//! outputs can be diffed line by line to see exactly which row-seeds a change moved.
//!
//! `cargo run --release -p tower-ratelimit-adaptive --example seed_matrix [-- --seeds N --scenario NAME --limit L --anchor-cache FILE]`
//!
//! The anchors do not change when the default does, so `--anchor-cache FILE` keeps
//! their scores between runs (the file is written when missing).

mod common;

use std::collections::HashMap;
use std::fs;
use std::sync::Mutex;
use std::thread;

use tower_ratelimit_adaptive::sim::table::{contenders, run_row, scenarios, Scenario};

fn main() {
    let arg = common::flag;
    let seeds: u64 = arg("--seeds").and_then(|v| v.parse().ok()).unwrap_or(5);
    let filter = arg("--scenario");
    let limit: Option<f64> = arg("--limit").and_then(|v| v.parse().ok());
    let cache_path = arg("--anchor-cache");
    let cache: HashMap<String, f64> = cache_path
        .as_ref()
        .and_then(|p| fs::read_to_string(p).ok())
        .map(|s| {
            s.lines()
                .filter_map(|l| {
                    let (k, v) = l.rsplit_once('\t')?;
                    Some((k.to_string(), v.parse().ok()?))
                })
                .collect()
        })
        .unwrap_or_default();
    let had_cache = !cache.is_empty();
    let mut jobs: Vec<(usize, Scenario)> = Vec::new();
    for s in scenarios(30) {
        if filter
            .as_ref()
            .is_some_and(|f| !s.name.contains(f.as_str()))
            || limit.is_some_and(|l| l != s.limit)
        {
            continue;
        }
        for seed in 1..=seeds {
            let mut s = s.clone();
            s.config.seed = seed;
            jobs.push((jobs.len(), s));
        }
    }
    let jobs = Mutex::new(jobs);
    let out = Mutex::new(Vec::new());
    let new_cache = Mutex::new(Vec::new());
    thread::scope(|sc| {
        for _ in 0..2 {
            sc.spawn(|| loop {
                let Some((i, s)) = jobs.lock().unwrap().pop() else {
                    return;
                };
                let cs = contenders();
                let key = format!("{}|{}|{}", s.name, s.limit, s.config.seed);
                let rival = match cache.get(&key) {
                    Some(v) => *v,
                    None => {
                        let v = cs[1..3]
                            .iter()
                            .map(|c| run_row(&s, c).score())
                            .fold(f64::MIN, f64::max);
                        new_cache.lock().unwrap().push(format!("{key}\t{v}"));
                        v
                    }
                };
                let row = run_row(&s, &cs[0]);
                let misses = row.misses();
                let line = format!(
                    "{:<28} {:>5} s{} {} {} {:.3} {:.3} {}",
                    s.name,
                    s.limit,
                    s.config.seed,
                    if misses.is_empty() { "MET " } else { "miss" },
                    if row.score() > rival {
                        "ahead"
                    } else {
                        "BEHIND"
                    },
                    row.score(),
                    rival,
                    misses.join(", ")
                );
                out.lock().unwrap().push((i, line));
            });
        }
    });
    let mut out = out.into_inner().unwrap();
    out.sort();
    let (mut met, mut ahead) = (0, 0);
    for (_, l) in &out {
        met += usize::from(l.contains(" MET "));
        ahead += usize::from(l.contains(" ahead "));
        println!("{l}");
    }
    println!("met {met} of {}; ahead {ahead}", out.len());
    if let (Some(p), false) = (cache_path, had_cache) {
        let _ = fs::write(p, new_cache.into_inner().unwrap().join("\n"));
    }
}
