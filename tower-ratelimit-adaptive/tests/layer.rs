//! The layer under tokio's paused clock: exact and instant.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_adaptive::controller::{Gradient2, SreThrottle};
use tower_ratelimit_adaptive::layer::{LocallyRejected, PartitionFn};
use tower_ratelimit_adaptive::{AdaptiveRateLimitLayer, Hints, Outcome, ServerPartition};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Reply {
    Ok,
    TooMany,
}

/// A server-side token bucket of `rate`/s holding `burst`, on tokio's clock.
#[derive(Clone)]
struct Bucket(Arc<Mutex<(f64, Instant, f64, f64)>>);

impl Bucket {
    fn new(rate: f64, burst: f64) -> Bucket {
        Bucket(Arc::new(Mutex::new((burst, Instant::now(), rate, burst))))
    }
    fn set_rate(&self, rate: f64) {
        self.take_refill();
        self.0.lock().unwrap().2 = rate;
    }
    fn take_refill(&self) {
        let mut g = self.0.lock().unwrap();
        let now = Instant::now();
        let dt = now.duration_since(g.1).as_secs_f64();
        g.0 = (g.0 + dt * g.2).min(g.3);
        g.1 = now;
    }
    fn try_take(&self) -> bool {
        self.take_refill();
        let mut g = self.0.lock().unwrap();
        if g.0 >= 1.0 {
            g.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

fn classify(r: &Result<Reply, std::io::Error>) -> Outcome {
    match r {
        Ok(Reply::Ok) => Outcome::success(Duration::ZERO),
        Ok(Reply::TooMany) => Outcome::throttled(Duration::ZERO),
        Err(_) => Outcome::Overload {
            latency: Duration::ZERO,
        },
    }
}

/// Drives `workers` concurrent loops for `secs` of virtual time; returns accepted
/// counts per second.
async fn drive<S>(svc: S, workers: usize, secs: u64) -> Vec<u64>
where
    S: Service<u32, Response = Reply, Error = tower_ratelimit_core::BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let start = Instant::now();
    let bins = Arc::new((0..secs).map(|_| AtomicU64::new(0)).collect::<Vec<_>>());
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let mut svc = svc.clone();
        let bins = bins.clone();
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < Duration::from_secs(secs) {
                if let Ok(Reply::Ok) = svc.ready().await.unwrap().call(0).await {
                    let s = start.elapsed().as_secs();
                    if let Some(b) = bins.get(s as usize) {
                        b.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    bins.iter().map(|b| b.load(Ordering::Relaxed)).collect()
}

fn server(
    bucket: Bucket,
) -> impl Service<u32, Response = Reply, Error = std::io::Error, Future = impl Send> + Clone {
    service_fn(move |_: u32| {
        let bucket = bucket.clone();
        async move {
            // The server decides on arrival, answers after a 20 ms round trip.
            let ok = bucket.try_take();
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok::<_, std::io::Error>(if ok { Reply::Ok } else { Reply::TooMany })
        }
    })
}

#[tokio::test(start_paused = true)]
async fn layer_finds_and_follows_the_servers_limit() {
    let bucket = Bucket::new(200.0, 20.0);
    let layer = AdaptiveRateLimitLayer::new(classify);
    let svc = tower::ServiceBuilder::new()
        .layer(layer.clone())
        .service(server(bucket.clone()));
    let first = drive(svc.clone(), 16, 20).await;
    let steady: u64 = first[10..].iter().sum();
    let rate = steady as f64 / 10.0;
    assert!(
        (180.0..=205.0).contains(&rate),
        "goodput {rate} vs limit 200: {first:?}"
    );
    let r = layer.rate(&()).unwrap();
    // Cruising under the limit, or in a probe step above it (at most about 2x).
    assert!((150.0..=400.0).contains(&r), "controller rate {r}");

    bucket.set_rate(100.0);
    let second = drive(svc, 16, 15).await;
    let steady: u64 = second[5..].iter().sum();
    let rate = steady as f64 / 10.0;
    assert!(
        (90.0..=103.0).contains(&rate),
        "after the drop {rate}: {second:?}"
    );
    assert!(layer.rate(&()).unwrap() < 130.0);
}

#[tokio::test(start_paused = true)]
async fn retry_after_pauses_the_partition() {
    let calls = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    let inner = service_fn(move |_: u32| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, std::io::Error>(n) }
    });
    let layer = AdaptiveRateLimitLayer::new(|r: &Result<u64, std::io::Error>| match r {
        Ok(0) => Outcome::Throttled {
            latency: Duration::ZERO,
            retry_after: Some(Duration::from_secs(3)),
            hints: Default::default(),
        },
        _ => Outcome::success(Duration::ZERO),
    });
    let mut svc = tower::ServiceBuilder::new().layer(layer).service(inner);
    let start = Instant::now();
    svc.ready().await.unwrap().call(0).await.unwrap();
    svc.ready().await.unwrap().call(0).await.unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(3),
        "second request started after {waited:?}"
    );
    assert!(waited < Duration::from_millis(3200), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn retry_after_can_be_ignored() {
    let inner = service_fn(|_: u32| async { Ok::<_, std::io::Error>(()) });
    let layer = AdaptiveRateLimitLayer::new(|_: &Result<(), std::io::Error>| Outcome::Throttled {
        latency: Duration::ZERO,
        retry_after: Some(Duration::from_secs(30)),
        hints: Default::default(),
    })
    .honour_retry_after(None);
    let mut svc = tower::ServiceBuilder::new().layer(layer).service(inner);
    let start = Instant::now();
    svc.ready().await.unwrap().call(0).await.unwrap();
    svc.ready().await.unwrap().call(0).await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn partitions_are_separate_and_bounded() {
    let inner = service_fn(|host: &'static str| async move { Ok::<_, std::io::Error>(host) });
    let layer = AdaptiveRateLimitLayer::new(|r: &Result<&'static str, std::io::Error>| match r {
        Ok("slow.example") => Outcome::throttled(Duration::ZERO),
        _ => Outcome::success(Duration::ZERO),
    })
    .honour_retry_after(None)
    .partition_by(|host: &&'static str| *host, 2);
    let mut svc = tower::ServiceBuilder::new()
        .layer(layer.clone())
        .service(inner);
    for _ in 0..20 {
        svc.ready()
            .await
            .unwrap()
            .call("slow.example")
            .await
            .unwrap();
        svc.ready()
            .await
            .unwrap()
            .call("fast.example")
            .await
            .unwrap();
        tokio::time::advance(Duration::from_millis(100)).await;
    }
    let slow = layer.rate(&"slow.example").unwrap();
    let fast = layer.rate(&"fast.example").unwrap();
    assert!(slow < fast, "slow {slow} fast {fast}");
    assert!(!layer
        .limiter(&"slow.example")
        .unwrap()
        .same_as(&layer.limiter(&"fast.example").unwrap()));
    // A third key exceeds the bound: it works, through the overflow partition.
    svc.ready()
        .await
        .unwrap()
        .call("third.example")
        .await
        .unwrap();
    assert_eq!(layer.partitions(), 2);
    let third = layer
        .limiter(&"third.example")
        .expect("the overflow limiter");
    assert!(!third.same_as(&layer.limiter(&"slow.example").unwrap()));
    assert!(!third.same_as(&layer.limiter(&"fast.example").unwrap()));
}

/// Keys past `max_partitions` are served by the overflow partition; the accessors
/// report its controller and limiters for them, and looking creates nothing.
#[tokio::test(start_paused = true)]
async fn overflow_keys_report_the_overflow_partition() {
    let inner = service_fn(|host: String| async move { Ok::<_, std::io::Error>(host) });
    let layer = AdaptiveRateLimitLayer::new(|r: &Result<String, std::io::Error>| match r {
        Ok(host) if host != "a" => Outcome::throttled(Duration::ZERO),
        _ => Outcome::success(Duration::ZERO),
    })
    .honour_retry_after(None)
    .manage_concurrency(true)
    .partition_by(|host: &String| host.clone(), 1);
    let mut svc = tower::ServiceBuilder::new()
        .layer(layer.clone())
        .service(inner);
    let (a, b, c) = ("a".to_owned(), "b".to_owned(), "c".to_owned());
    // Room in the map: "a" would get a partition of its own, which looking does not make.
    assert!(layer.rate(&a).is_none());
    assert!(layer.limiter(&a).is_none());
    assert_eq!(layer.partitions(), 0);
    svc.ready().await.unwrap().call(a.clone()).await.unwrap();
    // The map is full; "b" would go to the overflow partition, not made yet.
    assert!(layer.limiter(&b).is_none());
    assert!(layer.concurrency_limiter(&b).is_none());
    svc.ready().await.unwrap().call(b.clone()).await.unwrap();
    assert_eq!(layer.partitions(), 1);

    let overflow = layer
        .limiter(&b)
        .expect("b is paced by the overflow limiter");
    assert!(!overflow.same_as(&layer.limiter(&a).unwrap()));
    // "c" was never seen, but a request for it would take the same overflow slot.
    assert!(overflow.same_as(&layer.limiter(&c).unwrap()));
    assert!(layer.concurrency_limiter(&b).is_some());
    assert!(layer.concurrency_limiter(&c).is_some());
    assert_eq!(layer.partitions(), 1);

    // The limiter reported for "b" is the one that paces the overflow keys.
    overflow.pause_for(Duration::from_secs(5));
    let start = Instant::now();
    svc.ready().await.unwrap().call(a.clone()).await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(1), "a is not paused");
    svc.ready().await.unwrap().call(c.clone()).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(5),
        "c waits out the pause"
    );

    // The rate reported for "b" and "c" is the overflow controller's, brought down by
    // their throttles, while "a" keeps succeeding.
    for _ in 0..20 {
        svc.ready().await.unwrap().call(a.clone()).await.unwrap();
        svc.ready().await.unwrap().call(b.clone()).await.unwrap();
        tokio::time::advance(Duration::from_millis(100)).await;
    }
    let (ra, rb) = (layer.rate(&a).unwrap(), layer.rate(&b).unwrap());
    assert!(rb < ra, "overflow {rb} vs a {ra}");
    assert_eq!(layer.rate(&c), Some(rb));
}

#[tokio::test(start_paused = true)]
async fn quota_changes_reach_the_shared_limiter() {
    let inner = service_fn(|_: u32| async { Ok::<_, std::io::Error>(()) });
    let layer = AdaptiveRateLimitLayer::new(|_: &Result<(), std::io::Error>| {
        Outcome::throttled(Duration::ZERO)
    })
    .honour_retry_after(None);
    let mut svc = tower::ServiceBuilder::new()
        .layer(layer.clone())
        .service(inner);
    svc.ready().await.unwrap().call(0).await.unwrap();
    let before = layer.limiter(&()).unwrap().quota().per_second_f64();
    // Throttles for a while: the measurement ends and the rate comes down.
    for _ in 0..30 {
        tokio::time::advance(Duration::from_millis(100)).await;
        svc.ready().await.unwrap().call(0).await.unwrap();
    }
    let after = layer.limiter(&()).unwrap().quota().per_second_f64();
    assert!(after < before, "quota {before} -> {after}");
    let rate = layer.rate(&()).unwrap();
    assert!(
        (after - rate).abs() / rate < 0.01,
        "limiter {after} vs controller {rate}"
    );
}

#[tokio::test(start_paused = true)]
async fn gradient_drives_a_concurrency_limiter() {
    let inner = service_fn(|_: u32| async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok::<_, std::io::Error>(())
    });
    let layer = AdaptiveRateLimitLayer::new(|r: &Result<(), std::io::Error>| {
        tower_ratelimit_adaptive::layer::classify::by_result(r)
    })
    .controller(Gradient2::default)
    .manage_concurrency(true);
    let mut svc = tower::ServiceBuilder::new()
        .layer(layer.clone())
        .service(inner);
    for _ in 0..10 {
        svc.ready().await.unwrap().call(0).await.unwrap();
    }
    let cap = layer.concurrency_limiter(&()).unwrap().limit();
    assert!(cap > 20, "steady latency grows the cap: {cap}");
    assert_eq!(layer.rate(&()), None);
}

#[tokio::test(start_paused = true)]
async fn sre_throttle_rejects_locally() {
    let inner = service_fn(|_: u32| async { Ok::<_, std::io::Error>(()) });
    let layer = AdaptiveRateLimitLayer::new(|_: &Result<(), std::io::Error>| {
        Outcome::throttled(Duration::ZERO)
    })
    .honour_retry_after(None)
    .controller(SreThrottle::default);
    let mut svc = tower::ServiceBuilder::new().layer(layer).service(inner);
    let mut local = 0;
    for _ in 0..200 {
        match svc.ready().await.unwrap().call(0).await {
            Ok(()) => {}
            Err(e) => {
                assert!(e.is::<LocallyRejected>());
                local += 1;
            }
        }
    }
    // Nothing is ever accepted, so nearly every request is rejected locally.
    assert!(local > 150, "{local}");
}

/// A request: (host, the `pk` the server will name, Retry-After seconds or 0 for 200).
type PkReq = (&'static str, &'static str, u64);

fn pk_classify(r: &Result<PkReq, std::io::Error>) -> Outcome {
    match r {
        Ok((_, pk, wait)) => {
            let hints = Hints {
                partition: Some(ServerPartition::from_key(pk.as_bytes())),
                ..Hints::default()
            };
            if *wait > 0 {
                Outcome::Throttled {
                    latency: Duration::ZERO,
                    retry_after: Some(Duration::from_secs(*wait)),
                    hints,
                }
            } else {
                Outcome::Success {
                    latency: Duration::ZERO,
                    hints,
                }
            }
        }
        Err(_) => Outcome::Ignored,
    }
}

type PkClassify = fn(&Result<PkReq, std::io::Error>) -> Outcome;
type PkHost = fn(&PkReq) -> &'static str;

fn pk_layer(learn: bool) -> AdaptiveRateLimitLayer<PkClassify, PartitionFn<PkHost>, PkReq> {
    AdaptiveRateLimitLayer::new(pk_classify as PkClassify)
        .partition_by((|r: &PkReq| r.0) as PkHost, 16)
        .learn_server_partitions(learn)
}

async fn pk_call<S>(svc: &mut S, req: PkReq) -> Duration
where
    S: Service<PkReq, Error = tower_ratelimit_core::BoxError>,
{
    let start = Instant::now();
    svc.ready().await.unwrap().call(req).await.unwrap();
    start.elapsed()
}

#[tokio::test(start_paused = true)]
async fn keys_the_server_names_one_partition_share_one_controller() {
    let inner = service_fn(|r: PkReq| async move { Ok::<_, std::io::Error>(r) });
    let layer = pk_layer(true);
    let mut svc = tower::ServiceBuilder::new()
        .layer(layer.clone())
        .service(inner);
    // Two hosts behind one server quota "p", a third behind "q".
    pk_call(&mut svc, ("a.example", "p", 0)).await;
    pk_call(&mut svc, ("b.example", "p", 0)).await;
    pk_call(&mut svc, ("c.example", "q", 0)).await;
    let lim = |k: &'static str| layer.limiter(&k).unwrap();
    assert!(lim("a.example").same_as(&lim("b.example")));
    assert!(!lim("a.example").same_as(&lim("c.example")));
    assert_eq!(layer.server_partitions(), 2);
    // A throttle on b's requests holds a's (same server partition), not c's.
    pk_call(&mut svc, ("b.example", "p", 3)).await;
    assert!(pk_call(&mut svc, ("c.example", "q", 0)).await < Duration::from_secs(1));
    let waited = pk_call(&mut svc, ("a.example", "p", 0)).await;
    assert!(waited >= Duration::from_secs(3), "{waited:?}");
    // The server moves b to "q": b follows, a stays.
    pk_call(&mut svc, ("b.example", "q", 0)).await;
    assert!(lim("b.example").same_as(&lim("c.example")));
    assert!(!lim("a.example").same_as(&lim("b.example")));
}

#[tokio::test(start_paused = true)]
async fn server_partitions_are_ignored_unless_learning_is_on() {
    let inner = service_fn(|r: PkReq| async move { Ok::<_, std::io::Error>(r) });
    let layer = pk_layer(false);
    let mut svc = tower::ServiceBuilder::new()
        .layer(layer.clone())
        .service(inner);
    pk_call(&mut svc, ("a.example", "p", 0)).await;
    pk_call(&mut svc, ("b.example", "p", 3)).await;
    let lim = |k: &'static str| layer.limiter(&k).unwrap();
    assert!(!lim("a.example").same_as(&lim("b.example")));
    assert_eq!(layer.server_partitions(), 0);
    // b's hold does not reach a.
    assert!(pk_call(&mut svc, ("a.example", "p", 0)).await < Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn the_429_that_first_names_a_partition_holds_that_partition() {
    let inner = service_fn(|r: PkReq| async move { Ok::<_, std::io::Error>(r) });
    let layer = pk_layer(true);
    let mut svc = tower::ServiceBuilder::new()
        .layer(layer.clone())
        .service(inner);
    pk_call(&mut svc, ("a.example", "p", 0)).await;
    // b learns that it shares "p" from a 429 asking for 10 s: the hold belongs to "p".
    pk_call(&mut svc, ("b.example", "p", 10)).await;
    let waited = pk_call(&mut svc, ("a.example", "p", 0)).await;
    assert!(waited >= Duration::from_secs(9), "a waited {waited:?}");
}

/// A controller that starts with a concurrency cap of zero.
struct NoneInFlight;

impl tower_ratelimit_adaptive::controller::Controller for NoneInFlight {
    fn name(&self) -> &'static str {
        "none in flight"
    }
    fn observe(&mut self, _now: Duration, _outcome: &Outcome) {}
    fn rate(&self) -> Option<f64> {
        None
    }
    fn concurrency(&self) -> Option<usize> {
        Some(0)
    }
}

#[tokio::test(start_paused = true)]
async fn a_first_concurrency_cap_of_zero_still_lets_one_through() {
    let layer = AdaptiveRateLimitLayer::new(|r: &Result<u32, std::io::Error>| match r {
        Ok(_) => Outcome::success(Duration::ZERO),
        Err(_) => Outcome::Ignored,
    })
    .controller(|| NoneInFlight)
    .manage_concurrency(true);
    let mut svc = tower::ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(
            |n: u32| async move { Ok::<_, std::io::Error>(n) },
        ));
    let answered =
        tokio::time::timeout(Duration::from_secs(60), svc.ready().await.unwrap().call(1)).await;
    assert!(matches!(answered, Ok(Ok(1))), "{answered:?}");
}

/// A full map makes room for a new key once a partition has been idle for a minute
/// (and is not held by a `Retry-After`): a crawler that meets more hosts over its life
/// than `max_partitions` keeps one partition per host it is calling, instead of
/// serving every later host from one shared partition, whose holds reach them all.
#[tokio::test(start_paused = true)]
async fn an_idle_partition_makes_room_for_a_new_key() {
    let inner = service_fn(|host: &'static str| async move { Ok::<_, std::io::Error>(host) });
    let layer = AdaptiveRateLimitLayer::new(|r: &Result<&str, std::io::Error>| match r {
        Ok("held.example") => Outcome::Throttled {
            latency: Duration::ZERO,
            retry_after: Some(Duration::from_secs(600)),
            hints: Default::default(),
        },
        _ => Outcome::success(Duration::ZERO),
    })
    .honour_retry_after(Some(Duration::from_secs(600)))
    .partition_by(|host: &&'static str| *host, 2);
    let mut svc = ServiceBuilder::new().layer(layer.clone()).service(inner);
    for host in ["old.example", "held.example"] {
        svc.ready().await.unwrap().call(host).await.unwrap();
    }
    // Full, and nothing idle yet: a new host goes to the overflow partition.
    svc.ready()
        .await
        .unwrap()
        .call("new.example")
        .await
        .unwrap();
    assert_eq!(layer.partitions(), 2);
    tokio::time::advance(Duration::from_secs(61)).await;
    // A minute later, the idle partition makes room; the held one stays.
    let fresh = layer.limiter(&"newer.example");
    assert!(
        fresh.is_none(),
        "the new key would get a partition of its own"
    );
    svc.ready()
        .await
        .unwrap()
        .call("newer.example")
        .await
        .unwrap();
    assert_eq!(layer.partitions(), 2);
    let held = layer.limiter(&"held.example").unwrap();
    assert!(
        held.paused_until().is_some(),
        "the held partition kept its hold"
    );
    let newer = layer.limiter(&"newer.example").unwrap();
    assert!(!newer.same_as(&held));
    // The forgotten host is now the one past the bound.
    assert!(layer
        .limiter(&"old.example")
        .is_some_and(|overflow| !overflow.same_as(&newer) && !overflow.same_as(&held)));
}
