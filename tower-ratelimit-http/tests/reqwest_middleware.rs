//! The reqwest-middleware integration against a hyper server on 127.0.0.1.
//! Real time, one-sided assertions (see `feedback_e2e.rs`).
#![cfg(feature = "reqwest-middleware")]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tower_ratelimit_core::{Quota, RateLimiter};
use tower_ratelimit_http::feedback::{Class, Feedback, FeedbackParser, WaitOverCap};
use tower_ratelimit_http::reqwest::RateLimitMiddleware;

/// Arrivals: (method, body, instant) and the instant each 429 was built.
#[derive(Default)]
struct Log {
    arrivals: Mutex<Vec<(String, Bytes, Instant)>>,
    throttled: Mutex<Vec<Instant>>,
}

/// Answers the first `throttle` requests with 429 and `retry_after`, then 200.
async fn serve(throttle: usize, retry_after: &'static str) -> (SocketAddr, Arc<Log>) {
    serve_on("127.0.0.1", throttle, retry_after, None).await
}

/// As `serve`, on a loopback address of its own (another host to a client keying by
/// host), with one more header on its 429s.
async fn serve_on(
    ip: &str,
    throttle: usize,
    retry_after: &'static str,
    extra: Option<(&'static str, &'static str)>,
) -> (SocketAddr, Arc<Log>) {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Log::default());
    let state = Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let state = Arc::clone(&state);
                        async move {
                            let method = req.method().to_string();
                            let arrived = Instant::now();
                            let body = req.into_body().collect().await?.to_bytes();
                            let n = {
                                let mut a = state.arrivals.lock().unwrap();
                                a.push((method, body, arrived));
                                a.len()
                            };
                            let res = if n <= throttle {
                                let mut res = http::Response::builder()
                                    .status(429)
                                    .header("retry-after", retry_after);
                                if let Some((name, value)) = extra {
                                    res = res.header(name, value);
                                }
                                let res = res.body(Full::new(Bytes::new())).unwrap();
                                state.throttled.lock().unwrap().push(Instant::now());
                                res
                            } else {
                                http::Response::new(Full::new(Bytes::from_static(b"ok")))
                            };
                            Ok::<_, hyper::Error>(res)
                        }
                    });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, log)
}

#[tokio::test]
async fn a_429_is_waited_out_and_retried_through_the_limiter() {
    let (addr, log) = serve(1, "1").await;
    let limiter = RateLimiter::new(Quota::per_second(100).unwrap());
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(RateLimitMiddleware::new(limiter.clone()))
        .build();
    let response = client
        .post(format!("http://{addr}/orders"))
        .body("order-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.extensions().get::<Class>(), Some(&Class::Success));
    assert!(response.extensions().get::<Feedback>().is_some());
    assert_eq!(response.text().await.unwrap(), "ok");

    let arrivals = log.arrivals.lock().unwrap();
    let throttled_at = log.throttled.lock().unwrap()[0];
    assert_eq!(arrivals.len(), 2, "one throttled attempt, one retry");
    // The retry carried the same body and came no sooner than the server asked.
    assert_eq!(arrivals[1].0, "POST");
    assert_eq!(arrivals[1].1, Bytes::from_static(b"order-1"));
    assert!(arrivals[1].2 >= throttled_at + Duration::from_secs(1));
}

#[tokio::test]
async fn the_pause_holds_other_requests_of_the_client() {
    let (addr, log) = serve(1, "1").await;
    let limiter = RateLimiter::new(Quota::per_second(100).unwrap());
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(RateLimitMiddleware::new(limiter.clone()).without_retry())
        .build();
    let first = client.get(format!("http://{addr}/a")).send().await.unwrap();
    assert_eq!(first.status(), 429);
    assert!(limiter.paused_until().is_some());
    let second = client.get(format!("http://{addr}/b")).send().await.unwrap();
    assert_eq!(second.status(), 200);
    let arrivals = log.arrivals.lock().unwrap();
    let throttled_at = log.throttled.lock().unwrap()[0];
    assert!(arrivals[1].2 >= throttled_at + Duration::from_secs(1));
}

#[tokio::test]
async fn a_wait_over_the_cap_is_an_error() {
    let (addr, log) = serve(1, "86400").await;
    let limiter = RateLimiter::new(Quota::per_second(100).unwrap());
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(
            RateLimitMiddleware::new(limiter.clone())
                .parser(FeedbackParser::new().max_wait(Duration::from_secs(30))),
        )
        .build();
    let err = client
        .get(format!("http://{addr}/"))
        .send()
        .await
        .unwrap_err();
    let reqwest_middleware::Error::Middleware(inner) = err else {
        panic!("expected a middleware error, got {err:?}");
    };
    let over = inner.downcast_ref::<WaitOverCap>().expect("typed error");
    assert_eq!(over.wait, Duration::from_secs(86_400));
    assert_eq!(log.arrivals.lock().unwrap().len(), 1, "not retried");
}

fn per_host_client(middleware: RateLimitMiddleware) -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(middleware)
        .build()
}

#[tokio::test]
async fn per_host_a_throttle_holds_only_its_host() {
    // Two hosts on loopback: 127.0.0.1 throttles with "Retry-After: 5", 127.0.0.2 never.
    let (slow, _) = serve_on("127.0.0.1", 1, "5", None).await;
    let (fast, fast_log) = serve_on("127.0.0.2", 0, "5", None).await;
    let middleware = RateLimitMiddleware::per_host(Quota::per_second(100).unwrap()).without_retry();
    let hosts = Arc::clone(middleware.hosts().expect("per host"));
    let client = per_host_client(middleware);

    let started = Instant::now();
    let throttled = client.get(format!("http://{slow}/")).send().await.unwrap();
    assert_eq!(throttled.status(), 429);
    for _ in 0..3 {
        let ok = client.get(format!("http://{fast}/")).send().await.unwrap();
        assert_eq!(ok.status(), 200);
    }
    // One-sided: the 5 s pause of the other host did not hold these.
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(fast_log.arrivals.lock().unwrap().len(), 3);
    assert_eq!(hosts.len(), 2);
    assert!(hosts
        .limiter(slow.to_string().as_bytes())
        .paused_until()
        .is_some());
    assert!(hosts
        .limiter(fast.to_string().as_bytes())
        .paused_until()
        .is_none());
    assert!(hosts.global().paused_until().is_none());
}

/// Two services on one host, on two ports, are two servers: a throttle from one does
/// not hold the other.
#[tokio::test]
async fn per_host_tells_the_ports_of_one_host_apart() {
    let (slow, _) = serve_on("127.0.0.1", 1, "5", None).await;
    let (fast, fast_log) = serve_on("127.0.0.1", 0, "5", None).await;
    let middleware = RateLimitMiddleware::per_host(Quota::per_second(100).unwrap()).without_retry();
    let hosts = Arc::clone(middleware.hosts().expect("per host"));
    let client = per_host_client(middleware);
    let throttled = client.get(format!("http://{slow}/")).send().await.unwrap();
    assert_eq!(throttled.status(), 429);
    let started = Instant::now();
    let ok = client.get(format!("http://{fast}/")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(fast_log.arrivals.lock().unwrap().len(), 1);
    assert_eq!(hosts.len(), 2);
}

/// Under `per_host`, what a server says about its limit is about that server: a
/// "global" flag or a bucket name pauses its own host, and no other.
#[tokio::test]
async fn per_host_a_global_or_bucket_throttle_holds_its_own_host_only() {
    for extra in [
        ("x-ratelimit-global", "true"),
        ("x-ratelimit-bucket", "abc"),
    ] {
        let (slow, slow_log) = serve_on("127.0.0.1", 1, "1", Some(extra)).await;
        let (fast, _) = serve_on("127.0.0.2", 0, "1", None).await;
        let middleware =
            RateLimitMiddleware::per_host(Quota::per_second(100).unwrap()).without_retry();
        assert!(middleware.limiter().is_none());
        let hosts = Arc::clone(middleware.hosts().expect("per host"));
        let client = per_host_client(middleware);

        let throttled = client.get(format!("http://{slow}/a")).send().await.unwrap();
        assert_eq!(throttled.status(), 429);
        let throttled_at = Instant::now();
        assert!(
            hosts
                .limiter(slow.to_string().as_bytes())
                .paused_until()
                .is_some(),
            "{extra:?}"
        );
        let ok = client.get(format!("http://{fast}/")).send().await.unwrap();
        assert_eq!(ok.status(), 200);
        assert!(
            throttled_at.elapsed() < Duration::from_millis(900),
            "{extra:?}"
        );
        // The throttled host's next request, on another path, waits its Retry-After.
        let again = client.get(format!("http://{slow}/b")).send().await.unwrap();
        assert_eq!(again.status(), 200);
        let arrived = slow_log.arrivals.lock().unwrap()[1].2;
        assert!(
            arrived >= throttled_at + Duration::from_millis(900),
            "{extra:?}"
        );
        assert_eq!(hosts.len(), 2, "no limiter for a named bucket: {extra:?}");
    }
}

#[tokio::test]
async fn per_host_keeps_at_most_max_hosts() {
    let (a, _) = serve_on("127.0.0.1", 0, "1", None).await;
    let (b, _) = serve_on("127.0.0.2", 0, "1", None).await;
    let (c, _) = serve_on("127.0.0.3", 0, "1", None).await;
    let middleware = RateLimitMiddleware::per_host(Quota::per_second(100).unwrap()).max_hosts(2);
    let hosts = Arc::clone(middleware.hosts().expect("per host"));
    let client = per_host_client(middleware);
    for addr in [a, b, c, a, b, c] {
        let ok = client.get(format!("http://{addr}/")).send().await.unwrap();
        assert_eq!(ok.status(), 200);
        assert!(hosts.len() <= 2);
    }
    assert_eq!(hosts.len(), 2);
}

#[tokio::test]
async fn per_host_retries_after_its_hosts_retry_after() {
    let (slow, log) = serve_on("127.0.0.1", 1, "1", None).await;
    let client = per_host_client(RateLimitMiddleware::per_host(
        Quota::per_second(100).unwrap(),
    ));
    let response = client.get(format!("http://{slow}/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let arrivals = log.arrivals.lock().unwrap();
    let throttled_at = log.throttled.lock().unwrap()[0];
    assert_eq!(arrivals.len(), 2);
    assert!(arrivals[1].2 >= throttled_at + Duration::from_secs(1));
}

/// Answers every request after `delay`, with a 429 and "Retry-After: 60" for
/// `throttled_host`, logging (host, when) of each: a stand-in server after the
/// middleware, so that the paused clock applies.
struct ScriptedServer {
    throttled_host: &'static str,
    delay: Duration,
    log: SentLog,
}

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for ScriptedServer {
    async fn handle(
        &self,
        request: reqwest::Request,
        _: &mut http::Extensions,
        _: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let host = request.url().host_str().unwrap_or_default().to_string();
        self.log
            .lock()
            .unwrap()
            .push((host.clone(), tokio::time::Instant::now()));
        let throttled = host == self.throttled_host;
        if throttled {
            tokio::time::sleep(self.delay).await;
        }
        let mut response = http::Response::builder();
        if throttled {
            response = response.status(429).header("retry-after", "60");
        }
        Ok(reqwest::Response::from(
            response.body(Vec::<u8>::new()).unwrap(),
        ))
    }
}

type SentLog = Arc<Mutex<Vec<(String, tokio::time::Instant)>>>;

/// A `per_host` client of `quota` that keeps two hosts, over a scripted server whose
/// a.test answers after 100 ms with a 429 and "Retry-After: 60".
fn two_hosts_kept_of_three(quota: Quota) -> (reqwest_middleware::ClientWithMiddleware, SentLog) {
    let log = SentLog::default();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(
            RateLimitMiddleware::per_host(quota)
                .max_hosts(2)
                .without_retry(),
        )
        .with(ScriptedServer {
            throttled_host: "a.test",
            delay: Duration::from_millis(100),
            log: Arc::clone(&log),
        })
        .build();
    (client, log)
}

/// When each request to `host` was sent.
fn sent_to(log: &SentLog, host: &str) -> Vec<tokio::time::Instant> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|(sent, _)| sent == host)
        .map(|(_, at)| *at)
        .collect()
}

/// A host's limiter dropped to make room (max_hosts) while its request was in flight:
/// the 429 that comes back still holds the host.
#[tokio::test(start_paused = true)]
async fn per_host_a_429_holds_its_host_even_if_its_limiter_was_dropped_meanwhile() {
    let (client, log) = two_hosts_kept_of_three(Quota::per_second(100).unwrap());
    let t0 = tokio::time::Instant::now();
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { client.get("http://a.test/").send().await.unwrap().status() }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    for host in ["b.test", "c.test"] {
        client.get(format!("http://{host}/")).send().await.unwrap();
    }
    assert_eq!(in_flight.await.unwrap(), 429);
    client.get("http://a.test/").send().await.unwrap();
    assert!(sent_to(&log, "a.test")[1] >= t0 + Duration::from_secs(60));
}

/// A request still waiting in its host's limiter when the table dropped it (to make
/// room) is held by the 429 another request of the host got.
#[tokio::test(start_paused = true)]
async fn per_host_a_request_waiting_in_a_dropped_limiter_hears_its_hosts_429() {
    let (client, log) =
        two_hosts_kept_of_three(Quota::per_second(1).unwrap().with_burst(1).unwrap());
    let t0 = tokio::time::Instant::now();
    let send = |uri: &'static str| {
        let client = client.clone();
        tokio::spawn(async move { client.get(uri).send().await.unwrap().status() })
    };
    let first = send("http://a.test/1");
    tokio::time::sleep(Duration::from_millis(1)).await;
    let second = send("http://a.test/2"); // waits for its slot, at 1 s
    tokio::time::sleep(Duration::from_millis(10)).await;
    for host in ["b.test", "c.test"] {
        client.get(format!("http://{host}/")).send().await.unwrap();
    }
    assert_eq!(first.await.unwrap(), 429);
    second.await.unwrap();
    assert!(sent_to(&log, "a.test")[1] >= t0 + Duration::from_secs(60));
}
