//! Partitioned feedback on tokio's paused clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use tower_ratelimit_core::{BoxError, Quota, RateLimiter};
use tower_ratelimit_http::feedback::{ByRoute, PartitionedFeedbackLayer};

type Req = http::Request<()>;
type Res = http::Response<()>;
type Log = Arc<Mutex<Vec<(String, Instant)>>>;

fn get(uri: &str) -> Req {
    http::Request::get(uri).body(()).unwrap()
}

/// Answers `respond(path_and_host, n)`, logging each start.
fn api(
    log: Log,
    respond: fn(&str, usize) -> Vec<(&'static str, &'static str)>,
) -> impl tower::Service<
    Req,
    Response = Res,
    Error = BoxError,
    Future = impl std::future::Future<Output = Result<Res, BoxError>> + Send,
> + Clone
       + Send
       + 'static {
    tower::service_fn(move |req: Req| {
        let log = Arc::clone(&log);
        async move {
            let target = format!("{}{}", req.uri().host().unwrap_or(""), req.uri().path());
            let n = {
                let mut l = log.lock().unwrap();
                l.push((target.clone(), Instant::now()));
                l.len() - 1
            };
            let headers = respond(&target, n);
            let mut b = http::Response::builder();
            for (k, v) in headers {
                if k == ":status" {
                    b = b.status(v.parse::<u16>().unwrap());
                } else {
                    b = b.header(k, v);
                }
            }
            Ok::<_, BoxError>(b.body(()).unwrap())
        }
    })
}

fn starts_of(log: &Log, target: &str) -> Vec<Instant> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| t == target)
        .map(|(_, i)| *i)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_throttled_host_does_not_hold_the_others() {
    let log: Log = Arc::default();
    let layer = PartitionedFeedbackLayer::new(
        Quota::per_second(100).unwrap(),
        RateLimiter::new(Quota::per_second(1000).unwrap()),
    );
    let client = layer.layer(api(Arc::clone(&log), |target, _| {
        if target == "a.test/" {
            vec![(":status", "429"), ("retry-after", "4")]
        } else {
            vec![]
        }
    }));
    let t0 = Instant::now();
    client.clone().oneshot(get("http://a.test/")).await.unwrap();
    let b = tokio::spawn(client.clone().oneshot(get("http://b.test/")));
    let a = tokio::spawn(client.clone().oneshot(get("http://a.test/")));
    b.await.unwrap().unwrap();
    a.await.unwrap().unwrap();
    assert!(starts_of(&log, "b.test/")[0] < t0 + Duration::from_millis(100));
    assert_eq!(starts_of(&log, "a.test/")[1], t0 + Duration::from_secs(4));
    assert_eq!(layer.partitions().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_named_bucket_is_shared_by_its_routes() {
    let log: Log = Arc::default();
    let layer = PartitionedFeedbackLayer::new(
        Quota::per_second(100).unwrap(),
        RateLimiter::new(Quota::per_second(1000).unwrap()),
    )
    .partition_by(ByRoute);
    let client = layer.layer(api(Arc::clone(&log), |target, n| match target {
        "d.test/a" if n > 0 => vec![
            (":status", "429"),
            ("retry-after", "3"),
            ("x-ratelimit-bucket", "shared"),
        ],
        "d.test/a" | "d.test/b" => vec![
            ("x-ratelimit-bucket", "shared"),
            ("x-ratelimit-remaining", "5"),
        ],
        _ => vec![("x-ratelimit-bucket", "other")],
    }));
    // The server tells which bucket each route uses.
    client
        .clone()
        .oneshot(get("http://d.test/a"))
        .await
        .unwrap();
    client
        .clone()
        .oneshot(get("http://d.test/b"))
        .await
        .unwrap();
    client
        .clone()
        .oneshot(get("http://d.test/c"))
        .await
        .unwrap();
    let t1 = Instant::now();
    let throttled = client
        .clone()
        .oneshot(get("http://d.test/a"))
        .await
        .unwrap();
    assert_eq!(throttled.status(), 429);
    let b = tokio::spawn(client.clone().oneshot(get("http://d.test/b")));
    let c = tokio::spawn(client.clone().oneshot(get("http://d.test/c")));
    b.await.unwrap().unwrap();
    c.await.unwrap().unwrap();
    assert!(starts_of(&log, "d.test/b")[1] >= t1 + Duration::from_secs(3));
    assert!(starts_of(&log, "d.test/c")[1] < t1 + Duration::from_millis(100));
}

/// A server that says its limit is global (Discord's `X-RateLimit-Global`) pauses
/// every partition of its own, not another server's: its limit is not theirs.
#[tokio::test(start_paused = true)]
async fn a_global_throttle_holds_every_partition_of_its_server() {
    let log: Log = Arc::default();
    let global = RateLimiter::new(Quota::per_second(1000).unwrap());
    let layer = PartitionedFeedbackLayer::new(Quota::per_second(100).unwrap(), global.clone())
        .partition_by(ByRoute);
    let client = layer.layer(api(Arc::clone(&log), |target, _| {
        if target == "a.test/" {
            vec![
                (":status", "429"),
                ("retry-after", "2"),
                ("x-ratelimit-global", "true"),
            ]
        } else {
            vec![]
        }
    }));
    let t0 = Instant::now();
    client.clone().oneshot(get("http://a.test/")).await.unwrap();
    assert!(
        global.paused_until().is_none(),
        "the global limiter is the user's"
    );
    client.clone().oneshot(get("http://b.test/")).await.unwrap();
    assert!(starts_of(&log, "b.test/")[0] < t0 + Duration::from_millis(100));
    client
        .clone()
        .oneshot(get("http://a.test/other"))
        .await
        .unwrap();
    assert!(starts_of(&log, "a.test/other")[0] >= t0 + Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn partitions_are_bounded_and_keep_paused_ones() {
    let log: Log = Arc::default();
    let layer = PartitionedFeedbackLayer::new(
        Quota::per_second(100).unwrap(),
        RateLimiter::new(Quota::per_second(1000).unwrap()),
    )
    .max_partitions(4);
    let client = layer.layer(api(Arc::clone(&log), |target, _| {
        if target == "paused.test/" {
            vec![(":status", "429"), ("retry-after", "60")]
        } else {
            vec![]
        }
    }));
    client
        .clone()
        .oneshot(get("http://paused.test/"))
        .await
        .unwrap();
    for i in 0..100 {
        client
            .clone()
            .oneshot(get(&format!("http://h{i}.test/")))
            .await
            .unwrap();
        assert!(layer.partitions().len() <= 4);
    }
    let paused = layer.partitions().limiter(b"paused.test");
    assert!(
        paused.paused_until().is_some(),
        "the paused partition was evicted"
    );
}

#[tokio::test(start_paused = true)]
async fn a_partition_adopts_its_servers_policy() {
    let log: Log = Arc::default();
    let layer = PartitionedFeedbackLayer::new(
        Quota::per_second(100).unwrap(),
        RateLimiter::new(Quota::per_second(1000).unwrap()),
    )
    .adopt_policy(true);
    let client = layer.layer(api(Arc::clone(&log), |target, _| {
        if target == "a.test/" {
            vec![("ratelimit-policy", r#""api";q=5;w=1"#)]
        } else {
            vec![]
        }
    }));
    client.clone().oneshot(get("http://a.test/")).await.unwrap();
    client.clone().oneshot(get("http://b.test/")).await.unwrap();
    let partitions = layer.partitions();
    assert_eq!(
        partitions.limiter(b"a.test").quota(),
        Quota::per_second(5).unwrap()
    );
    assert_eq!(
        partitions.limiter(b"b.test").quota(),
        Quota::per_second(100).unwrap()
    );
}

#[tokio::test(start_paused = true)]
async fn a_global_pause_costs_a_waiting_request_no_unit() {
    let log: Log = Arc::default();
    let global = RateLimiter::new(Quota::per_second(1000).unwrap());
    // One request per 10 s per host: a unit lost to the pause would cost 10 s.
    let layer = PartitionedFeedbackLayer::new(
        Quota::new(1, Duration::from_secs(10)).unwrap(),
        global.clone(),
    );
    let client = layer.layer(api(Arc::clone(&log), |_, _| vec![]));
    let t0 = Instant::now();
    global.pause_for(Duration::from_secs(2));
    client.oneshot(get("http://a.test/")).await.unwrap();
    assert_eq!(
        starts_of(&log, "a.test/"),
        vec![t0 + Duration::from_secs(2)]
    );
}

#[tokio::test(start_paused = true)]
async fn resuming_the_global_limiter_releases_requests_waiting_out_its_pause() {
    let log: Log = Arc::default();
    let global = RateLimiter::new(Quota::per_second(1000).unwrap());
    let layer = PartitionedFeedbackLayer::new(Quota::per_second(100).unwrap(), global.clone());
    let client = layer.layer(api(Arc::clone(&log), |_, _| vec![]));
    let t0 = Instant::now();
    global.pause_for(Duration::from_secs(60));
    let resumer = global.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        resumer.resume();
    });
    client.oneshot(get("http://a.test/")).await.unwrap();
    assert_eq!(
        starts_of(&log, "a.test/"),
        vec![t0 + Duration::from_secs(1)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_host_cannot_pause_another_hosts_partition_by_naming_it() {
    let log: Log = Arc::default();
    let layer = PartitionedFeedbackLayer::new(
        Quota::per_second(100).unwrap(),
        RateLimiter::new(Quota::per_second(1000).unwrap()),
    );
    let client = layer.layer(api(Arc::clone(&log), |target, _| {
        if target == "evil.test/" {
            vec![
                (":status", "429"),
                ("retry-after", "300"),
                ("x-ratelimit-bucket", "victim.test"),
            ]
        } else {
            vec![]
        }
    }));
    client
        .clone()
        .oneshot(get("http://victim.test/"))
        .await
        .unwrap();
    client
        .clone()
        .oneshot(get("http://evil.test/"))
        .await
        .unwrap();
    let t0 = Instant::now();
    client
        .clone()
        .oneshot(get("http://victim.test/"))
        .await
        .unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "victim.test held {:?} by evil.test's 429",
        t0.elapsed()
    );
}

/// Keyed by host (the default), a bucket the server names is not learned for the whole
/// host (it would follow whichever answer came last): a bucket's throttle holds the
/// host, also after another bucket of it answered.
#[tokio::test(start_paused = true)]
async fn by_host_a_named_buckets_throttle_holds_the_host() {
    let log: Log = Arc::default();
    let layer = PartitionedFeedbackLayer::new(
        Quota::per_second(100).unwrap(),
        RateLimiter::new(Quota::per_second(1000).unwrap()),
    );
    let client = layer.layer(api(Arc::clone(&log), |target, n| match (target, n) {
        ("h.test/a", 0) => vec![
            (":status", "429"),
            ("retry-after", "10"),
            ("x-ratelimit-bucket", "a"),
        ],
        ("h.test/b", _) => vec![("x-ratelimit-bucket", "b")],
        _ => vec![("x-ratelimit-bucket", "a")],
    }));
    let t0 = Instant::now();
    client
        .clone()
        .oneshot(get("http://h.test/a"))
        .await
        .unwrap();
    client
        .clone()
        .oneshot(get("http://h.test/b"))
        .await
        .unwrap();
    client
        .clone()
        .oneshot(get("http://h.test/a"))
        .await
        .unwrap();
    // Held 10 s, behind the request to /b; the throttle emptied the host's bucket, so
    // they start one interval apart (100/s).
    assert_eq!(
        starts_of(&log, "h.test/a"),
        vec![t0, t0 + Duration::from_millis(10_010)]
    );
    assert_eq!(layer.partitions().len(), 1, "no limiter per named bucket");
}

/// A request waiting out a global pause is not queued behind the global limiter's
/// unit waiters (here: requests to other hosts at the gate of a `RateLimitLayer` on the
/// same limiter): it had taken its global unit already, and starts when the pause ends.
#[tokio::test(start_paused = true)]
async fn a_request_waiting_out_a_global_pause_is_not_queued_behind_its_rate_waiters() {
    let log: Log = Arc::default();
    let global = RateLimiter::new(Quota::per_second(1).unwrap().with_burst(2).unwrap());
    let partition = Quota::per_second(1).unwrap().with_burst(1).unwrap();
    let client = tower_ratelimit_core::RateLimitLayer::with_limiter(global.clone()).layer(
        PartitionedFeedbackLayer::new(partition, global.clone())
            .layer(api(Arc::clone(&log), |_, _| vec![])),
    );
    let t0 = Instant::now();
    // a.test's second request takes its global unit at once, and waits for its
    // partition until 1 s.
    let mut tasks = vec![];
    for _ in 0..2 {
        tasks.push(tokio::spawn(client.clone().oneshot(get("http://a.test/"))));
        tokio::task::yield_now().await;
    }
    tokio::time::sleep_until(t0 + Duration::from_millis(500)).await;
    global.pause_for(Duration::from_secs(2));
    tokio::time::sleep_until(t0 + Duration::from_millis(600)).await;
    for host in 0..8 {
        let uri = format!("http://b{host}.test/");
        tasks.push(tokio::spawn(client.clone().oneshot(get(&uri))));
        tokio::task::yield_now().await;
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        starts_of(&log, "a.test/"),
        vec![t0, t0 + Duration::from_millis(2_500)]
    );
}

/// A server is its host and, unless it is the scheme's default, its port: other ports
/// of one host are other servers.
#[test]
fn partitions_key_a_server_by_host_and_non_default_port() {
    use tower_ratelimit_http::feedback::{ByHost, PartitionBy};
    let by_host = |uri: &str| ByHost.partition(&get(uri));
    assert_eq!(by_host("http://a.test/x"), b"a.test");
    assert_eq!(by_host("http://a.test:80/x"), b"a.test");
    assert_eq!(by_host("https://a.test:443/x"), b"a.test");
    assert_eq!(by_host("https://a.test:8443/x"), b"a.test:8443");
    assert_eq!(by_host("http://127.0.0.1:3000/"), b"127.0.0.1:3000");
    assert_eq!(by_host("http://A.Test:8080/"), b"a.test:8080");
    assert_eq!(
        ByRoute.partition(&get("http://a.test:8080/p")),
        b"GET a.test:8080/p"
    );
}

/// A server-wide refusal (`X-RateLimit-Global`) holds every partition through the
/// global limiter, and empties each partition's bucket too: a host's requests resume
/// at its rate, not with the burst its bucket saved during the pause.
#[tokio::test(start_paused = true)]
async fn partitions_resume_at_their_rate_after_a_global_refusal() {
    let log: Log = Arc::default();
    let layer = PartitionedFeedbackLayer::new(
        Quota::per_second(10).unwrap(), // per host: one every 100 ms, burst 10
        RateLimiter::new(Quota::per_second(1000).unwrap()),
    );
    let client = layer.layer(api(Arc::clone(&log), |_, n| match n {
        0 => vec![
            (":status", "429"),
            ("retry-after", "1"),
            ("x-ratelimit-global", "true"),
        ],
        _ => vec![],
    }));
    let t0 = Instant::now();
    let refused = client.clone().oneshot(get("http://a.test/")).await.unwrap();
    assert_eq!(refused.status(), 429);
    let later: Vec<_> = (0..4)
        .map(|_| tokio::spawn(client.clone().oneshot(get("http://a.test/"))))
        .collect();
    for request in later {
        request.await.unwrap().unwrap();
    }
    let ms = |n: u64| t0 + Duration::from_millis(n);
    assert_eq!(
        starts_of(&log, "a.test/"),
        vec![t0, ms(1000), ms(1100), ms(1200), ms(1300)]
    );
}

/// A host long enough to fill the key keeps room for its port: two ports of it are
/// two servers.
#[test]
fn a_long_hosts_ports_stay_apart() {
    use tower_ratelimit_http::feedback::{ByHost, PartitionBy};
    let host = format!("{}.test", "a".repeat(250));
    let key = |port: u16| ByHost.partition(&get(&format!("http://{host}:{port}/")));
    assert_ne!(key(8080), key(8081));
    assert!(key(8080).len() <= 256);
    assert!(key(8080).ends_with(b":8080"));
}
