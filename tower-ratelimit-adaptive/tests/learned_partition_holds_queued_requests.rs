//! With `learn_server_partitions`, the requests of a key that were already waiting in
//! its own slot when a 429 moved the key to the server partition's slot wait again in
//! that slot, so the 429's Retry-After holds them (they started 100–400 ms into a
//! 10 s hold, at the abandoned slot's pace).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_ratelimit_adaptive::{AdaptiveRateLimitLayer, Hints, Outcome, ServerPartition};

/// (host id, Retry-After seconds the server answers with, 0 for a 200); every response
/// names the server partition "p".
type Req = (u8, u64);

fn classify(r: &Result<Req, std::io::Error>) -> Outcome {
    let hints = Hints {
        partition: Some(ServerPartition::from_key(b"p")),
        ..Hints::default()
    };
    match r {
        Ok((_, 0)) => Outcome::Success {
            latency: Duration::ZERO,
            hints,
        },
        Ok((_, wait)) => Outcome::Throttled {
            latency: Duration::ZERO,
            retry_after: Some(Duration::from_secs(*wait)),
            hints,
        },
        Err(_) => Outcome::Ignored,
    }
}

#[tokio::test(start_paused = true)]
async fn queued_requests_of_a_key_moved_by_a_429_are_held() {
    let started: Arc<Mutex<Vec<(u8, Instant)>>> = Arc::default();
    let inner = {
        let started = started.clone();
        service_fn(move |r: Req| {
            started.lock().unwrap().push((r.0, Instant::now()));
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok::<_, std::io::Error>(r)
            }
        })
    };
    let layer =
        AdaptiveRateLimitLayer::new(classify as fn(&Result<Req, std::io::Error>) -> Outcome)
            .partition_by(|r: &Req| r.0, 16)
            .learn_server_partitions(true);
    let svc = ServiceBuilder::new().layer(layer.clone()).service(inner);
    // a.example learns that it is partition "p".
    svc.clone().oneshot((1, 0)).await.unwrap();
    // b.example sends five requests at once; its first answer is a 429 naming "p" and
    // asking for 10 s (b's own slot paces the others 100 ms apart).
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..5u64 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            svc.oneshot((2, if i == 0 { 10 } else { 0 })).await
        }));
        tokio::task::yield_now().await;
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let during_hold: Vec<Duration> = started
        .lock()
        .unwrap()
        .iter()
        .filter(|(h, at)| *h == 2 && *at > t0 + Duration::from_millis(60))
        .map(|(_, at)| at.duration_since(t0))
        .filter(|d| *d < Duration::from_secs(9))
        .collect();
    assert!(
        during_hold.is_empty(),
        "b's requests started during the server's 10 s hold at {during_hold:?}"
    );
}
