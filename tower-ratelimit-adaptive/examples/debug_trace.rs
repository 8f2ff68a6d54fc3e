//! Per-second trace of one default-controller run (a tuning aid).
//!
//! `cargo run --release -p tower-ratelimit-adaptive --example debug_trace -- LIMIT [tb|big|fw|sl] [clients] [ra|hd|hdra]`
use std::time::Duration;
use tower_ratelimit_adaptive::controller::{Controller, Goodput};
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
        schedule: Schedule::halve_double(l, 30),
        rtt: Duration::from_millis(50),
        jitter: 0.2,
        seed: 1,
    };
    let t = simulate(&cfg, &|| {
        Box::new(Goodput::default()) as Box<dyn Controller>
    });
    for s in 0..t.refused.len() {
        let acc: u64 = t.accepted.iter().map(|c| c[s]).sum();
        println!(
            "{s} acc {acc} ref {} lim {:.1} r {:.2}",
            t.refused[s], t.limit[s], t.rate[s]
        );
    }
}
