//! Per-second trace of one default-controller run (a tuning aid).
//!
//! `cargo run --release -p tower-ratelimit-adaptive --example debug_trace -- LIMIT [tb|big|fw|sl] [clients] [ra|hd|hdra|-] [halve|ramp|demand] [seed] [controller]`
use std::time::Duration;
use tower_ratelimit_adaptive::sim::table::contenders;
use tower_ratelimit_adaptive::sim::*;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let l: f64 = a.get(1).and_then(|v| v.parse().ok()).unwrap_or(100.0);
    let server = match a.get(2).map(String::as_str) {
        Some("fw") => ServerKind::FixedWindow {
            window: Duration::from_secs(1),
        },
        Some("sl") => ServerKind::SlidingLog {
            window: Duration::from_secs(1),
        },
        Some("big") => ServerKind::TokenBucket { burst_secs: 1.0 },
        _ => ServerKind::TokenBucket { burst_secs: 0.1 },
    };
    let clients = a.get(3).and_then(|v| v.parse().ok()).unwrap_or(1);
    let fb = a.get(4).map(String::as_str).unwrap_or("");
    let cfg = SimConfig {
        server,
        feedback: Feedback {
            headers: fb.starts_with("hd"),
            retry_after: fb.ends_with("ra"),
        },
        honour_retry_after: true,
        clients,
        schedule: match a.get(5).map(String::as_str) {
            Some("ramp") => Schedule::ramp(l, 30),
            Some("demand") => Schedule::below_demand(l, 30, 0.6),
            _ => Schedule::halve_double(l, 30),
        },
        rtt: Duration::from_millis(50),
        jitter: 0.2,
        seed: a.get(6).and_then(|v| v.parse().ok()).unwrap_or(1),
    };
    let name = a.get(7).cloned().unwrap_or_else(|| "goodput".into());
    let contender = contenders()
        .into_iter()
        .find(|c| c.name.contains(name.as_str()))
        .expect("a controller name: goodput, aws cubic, aimd, gradient2, google sre");
    let t = simulate(&cfg, &|| (contender.make)());
    for s in 0..t.refused.len() {
        let acc: u64 = t.accepted.iter().map(|c| c[s]).sum();
        println!(
            "{s} acc {acc} ref {} lim {:.1} r {:.2} arr {}",
            t.refused[s], t.limit[s], t.rate[s], t.arrivals[s]
        );
    }
}
