use std::time::Duration;
use tower_ratelimit_adaptive::controller::{Controller, Goodput};
use tower_ratelimit_adaptive::sim::*;
fn main() {
    let l: f64 = std::env::args().nth(1).unwrap().parse().unwrap();
    let cfg = SimConfig {
        server: match std::env::args().nth(2).as_deref() {
            Some("fw") => ServerKind::FixedWindow {
                window: Duration::from_secs(1),
            },
            Some("sl") => ServerKind::SlidingLog {
                window: Duration::from_secs(1),
            },
            Some("big") => ServerKind::TokenBucket { burst_secs: 1.0 },
            _ => ServerKind::TokenBucket { burst_secs: 0.1 },
        },
        feedback: Feedback {
            headers: false,
            retry_after: false,
        },
        honour_retry_after: true,
        clients: 1,
        schedule: Schedule::halve_double(l, 30),
        rtt: Duration::from_millis(50),
        jitter: 0.2,
        seed: 1,
    };
    let t = simulate(&cfg, &|| {
        Box::new(Goodput::default()) as Box<dyn Controller>
    });
    for s in 0..90 {
        println!(
            "{s} acc {} ref {} lim {:.1}",
            t.accepted[0][s], t.refused[s], t.limit[s]
        );
    }
}
