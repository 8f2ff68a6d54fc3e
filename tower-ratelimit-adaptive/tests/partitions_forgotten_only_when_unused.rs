//! A full partition map forgets a key only when nothing uses its partition: no
//! request in flight or queued in its limiter (each holds it), so two limiters never
//! pace one key; and a learned server partition is forgotten with its last key, so
//! that new ones are learned again. Paused clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_ratelimit_adaptive::controller::Controller;
use tower_ratelimit_adaptive::{AdaptiveRateLimitLayer, Hints, Outcome, ServerPartition};

/// Unlimited until the server throttles it once; 1/s burst 1 from then on.
struct LearnsOnce {
    throttled: bool,
}

impl Controller for LearnsOnce {
    fn name(&self) -> &'static str {
        "learns-once"
    }
    fn observe(&mut self, _now: Duration, outcome: &Outcome) {
        if matches!(outcome, Outcome::Throttled { .. }) {
            self.throttled = true;
        }
    }
    fn rate(&self) -> Option<f64> {
        Some(if self.throttled { 1.0 } else { 1_000.0 })
    }
    fn burst(&self) -> u64 {
        if self.throttled {
            1
        } else {
            1_000
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_key_with_a_queue_is_not_forgotten() {
    let starts: Arc<Mutex<Vec<(&'static str, Instant)>>> = Arc::default();
    let log = Arc::clone(&starts);
    let inner = service_fn(move |host: &'static str| {
        log.lock().unwrap().push((host, Instant::now()));
        async move { Ok::<_, std::io::Error>(host) }
    });
    let refused = Arc::new(AtomicBool::new(false));
    let once = Arc::clone(&refused);
    let layer = AdaptiveRateLimitLayer::new(move |r: &Result<&str, std::io::Error>| {
        if matches!(r, Ok("a")) && !once.swap(true, Ordering::SeqCst) {
            Outcome::Throttled {
                latency: Duration::ZERO,
                retry_after: None,
                hints: Default::default(),
            }
        } else {
            Outcome::success(Duration::ZERO)
        }
    })
    .controller(|| LearnsOnce { throttled: false })
    .partition_by(|host: &&'static str| *host, 1);
    let svc = ServiceBuilder::new().layer(layer.clone()).service(inner);
    let t0 = Instant::now();
    // The server says "a" is too fast: its controller learns 1/s.
    svc.clone().oneshot("a").await.unwrap();
    // A batch of 100 requests to "a", made at once: they queue at 1/s for 100 s.
    let mut batch = Vec::new();
    for _ in 0..100 {
        batch.push(tokio::spawn(svc.clone().oneshot("a")));
    }
    tokio::time::sleep(Duration::from_secs(61)).await;
    // "a" still has about 40 requests queued. A request to another host arrives.
    svc.clone().oneshot("b").await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // More requests to "a": they should queue behind the others at 1/s.
    for _ in 0..20 {
        batch.push(tokio::spawn(svc.clone().oneshot("a")));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let from = t0 + Duration::from_secs(62);
    let to = t0 + Duration::from_secs(63);
    let in_that_second = starts
        .lock()
        .unwrap()
        .iter()
        .filter(|(host, at)| *host == "a" && *at >= from && *at < to)
        .count();
    assert!(
        in_that_second <= 2,
        "{in_that_second} requests to \"a\" started in one second, whose server \
         allows 1/s and whose queue still held about 40 requests"
    );
    for task in batch {
        task.abort();
    }
}

/// A concurrency cap of 1 (a controller that manages one, as Gradient2 does).
struct CapOne;

impl Controller for CapOne {
    fn name(&self) -> &'static str {
        "cap-one"
    }
    fn observe(&mut self, _now: Duration, _outcome: &Outcome) {}
    fn rate(&self) -> Option<f64> {
        None
    }
    fn concurrency(&self) -> Option<usize> {
        Some(1)
    }
}

/// A request in flight for longer than a minute does not touch its slot: a full map
/// forgets the key, and its next request gets a fresh slot with a concurrency
/// limiter of its own, so two requests of a key capped at 1 are in flight at once.
#[tokio::test(start_paused = true)]
async fn a_key_with_a_request_in_flight_is_not_forgotten() {
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (now, max) = (Arc::clone(&in_flight), Arc::clone(&most));
    let inner = service_fn(move |host: &'static str| {
        let (now, max) = (Arc::clone(&now), Arc::clone(&max));
        async move {
            if host == "a" {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(90)).await;
                now.fetch_sub(1, Ordering::SeqCst);
            }
            Ok::<_, std::io::Error>(host)
        }
    });
    let layer = AdaptiveRateLimitLayer::new(|_: &Result<&str, std::io::Error>| {
        Outcome::success(Duration::ZERO)
    })
    .controller(|| CapOne)
    .partition_by(|host: &&'static str| *host, 1);
    let svc = ServiceBuilder::new().layer(layer.clone()).service(inner);
    let first = tokio::spawn(svc.clone().oneshot("a"));
    tokio::time::sleep(Duration::from_secs(61)).await;
    // Another host, while "a"'s only request is still in flight.
    svc.clone().oneshot("b").await.unwrap();
    // "a" again: it should wait for the first to finish (cap 1).
    let second = tokio::spawn(svc.clone().oneshot("a"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        most.load(Ordering::SeqCst),
        1,
        "two requests of a key whose concurrency cap is 1 were in flight at once"
    );
    first.abort();
    second.abort();
}

/// The learned server partitions (`by_server`, bounded by `max_partitions`) are never
/// forgotten: once a crawler has met `max_partitions` server partitions over its life,
/// no later one is learned, even after the keys that named the first ones were
/// forgotten as idle. Two hosts that the server says share partition `p3` keep
/// separate controllers and limiters.
#[tokio::test(start_paused = true)]
async fn server_partitions_are_learned_after_idle_ones_are_forgotten() {
    let inner =
        service_fn(
            |req: (&'static str, &'static str)| async move { Ok::<_, std::io::Error>(req.1) },
        );
    let layer = AdaptiveRateLimitLayer::new(|r: &Result<&'static str, std::io::Error>| {
        let pk = r.as_ref().map(|pk| *pk).unwrap_or("");
        Outcome::Success {
            latency: Duration::ZERO,
            hints: Hints {
                partition: Some(ServerPartition::from_key(pk.as_bytes())),
                ..Default::default()
            },
        }
    })
    .partition_by(|req: &(&'static str, &'static str)| req.0, 2)
    .learn_server_partitions(true);
    let svc = ServiceBuilder::new().layer(layer.clone()).service(inner);
    for req in [("h1", "p1"), ("h2", "p2")] {
        svc.clone().oneshot(req).await.unwrap();
    }
    assert_eq!(layer.server_partitions(), 2);
    tokio::time::sleep(Duration::from_secs(61)).await;
    // h1 and h2 have been idle for a minute: h3 and h4 take their places.
    for req in [("h3", "p3"), ("h4", "p3")] {
        svc.clone().oneshot(req).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let h3 = layer.limiter(&"h3").expect("h3 has a partition");
    let h4 = layer.limiter(&"h4").expect("h4 has a partition");
    assert!(
        h3.same_as(&h4),
        "h3 and h4, which the server says share partition p3, have separate limiters \
         ({} server partitions learned, the table's bound: the first two, stale, are kept for ever)",
        layer.server_partitions()
    );
}
