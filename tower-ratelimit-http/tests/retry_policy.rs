//! The retry policy on tokio's paused clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::retry::RetryLayer;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::{BoxError, Quota, RateLimitLayer, RateLimiter};
use tower_ratelimit_http::feedback::{FeedbackLayer, FeedbackParser, WaitOverCap};
use tower_ratelimit_http::retry::{Backoff, Budget, Idempotency, RetryPolicy};

type Req = http::Request<String>;
type Res = http::Response<()>;
type Starts = Arc<Mutex<Vec<Instant>>>;

fn response(status: u16, headers: &[(&str, &str)]) -> Res {
    let mut b = http::Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap()
}

/// An API answering `respond(n)` to the n-th call, logging start instants.
fn api(
    starts: Starts,
    respond: impl Fn(usize) -> Res + Clone + Send + Sync + 'static,
) -> impl tower::Service<
    Req,
    Response = Res,
    Error = BoxError,
    Future = impl std::future::Future<Output = Result<Res, BoxError>> + Send,
> + Clone
       + Send {
    service_fn(move |_req: Req| {
        let starts = Arc::clone(&starts);
        let respond = respond.clone();
        async move {
            let n = {
                let mut s = starts.lock().unwrap();
                s.push(Instant::now());
                s.len() - 1
            };
            Ok::<_, BoxError>(respond(n))
        }
    })
}

fn get() -> Req {
    http::Request::get("http://api.test/")
        .body(String::new())
        .unwrap()
}

fn post() -> Req {
    http::Request::post("http://api.test/")
        .body("payload".to_owned())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn waits_what_the_server_said_then_succeeds() {
    let starts: Starts = Arc::default();
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::new()))
        .service(api(Arc::clone(&starts), |n| {
            if n == 0 {
                response(429, &[("retry-after", "2")])
            } else {
                response(200, &[])
            }
        }));
    let res = svc.oneshot(get()).await.unwrap();
    assert_eq!(res.status(), 200);
    let s = starts.lock().unwrap();
    assert_eq!(s.len(), 2);
    let gap = s[1] - s[0];
    // The server's 2 s plus at most 10 % jitter.
    assert!(
        gap >= Duration::from_secs(2) && gap <= Duration::from_millis(2200),
        "{gap:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_zero_is_not_a_hot_loop() {
    let starts: Starts = Arc::default();
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::new().max_retries(3)))
        .service(api(Arc::clone(&starts), |_| {
            response(429, &[("retry-after", "0")])
        }));
    let res = svc.oneshot(get()).await.unwrap();
    assert_eq!(res.status(), 429);
    let s = starts.lock().unwrap();
    assert_eq!(s.len(), 4, "three retries, then the last answer");
    for pair in s.windows(2) {
        assert!(pair[1] - pair[0] >= FeedbackParser::DEFAULT_MIN_WAIT);
    }
}

#[tokio::test(start_paused = true)]
async fn retries_go_back_through_the_limiter() {
    // One request per second, burst 1: the retry must wait for the next slot even
    // though the backoff alone would have sent it after at most 1 ms.
    let limiter = RateLimiter::new(Quota::per_second(1).unwrap().with_burst(1).unwrap());
    let starts: Starts = Arc::default();
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::new().backoff(Backoff::new(
            Duration::from_millis(1),
            Duration::from_millis(1),
        ))))
        .layer(RateLimitLayer::with_limiter(limiter.clone()))
        .layer(FeedbackLayer::new(limiter.clone()))
        .service(api(Arc::clone(&starts), |n| {
            if n == 0 {
                response(502, &[])
            } else {
                response(200, &[])
            }
        }));
    let t0 = Instant::now();
    assert_eq!(svc.oneshot(get()).await.unwrap().status(), 200);
    let s = starts.lock().unwrap();
    assert_eq!(*s, vec![t0, t0 + Duration::from_secs(1)]);
}

#[tokio::test(start_paused = true)]
async fn a_throttled_retry_also_honours_the_limiters_pause() {
    // The feedback layer paused the limiter for 3 s; another clone's retry with a
    // short server wait still waits for the pause.
    let limiter = RateLimiter::new(Quota::per_second(100).unwrap());
    let starts: Starts = Arc::default();
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::new()))
        .layer(RateLimitLayer::with_limiter(limiter.clone()))
        .layer(FeedbackLayer::new(limiter.clone()))
        .service(api(Arc::clone(&starts), |n| match n {
            0 => response(429, &[("retry-after-ms", "200")]),
            _ => response(200, &[]),
        }));
    let t0 = Instant::now();
    limiter.pause_for(Duration::from_secs(3));
    assert_eq!(svc.oneshot(get()).await.unwrap().status(), 200);
    let s = starts.lock().unwrap();
    assert_eq!(s[0], t0 + Duration::from_secs(3));
    assert!(s[1] >= s[0] + Duration::from_millis(200));
}

#[tokio::test(start_paused = true)]
async fn a_post_is_retried_when_throttled_not_when_transient() {
    for (status, expected_calls) in [(429u16, 2usize), (503, 1), (502, 1)] {
        let starts: Starts = Arc::default();
        let svc = ServiceBuilder::new()
            .layer(RetryLayer::new(RetryPolicy::new()))
            .service(api(Arc::clone(&starts), move |n| {
                if n == 0 {
                    response(status, &[])
                } else {
                    response(200, &[])
                }
            }));
        svc.oneshot(post()).await.unwrap();
        assert_eq!(
            starts.lock().unwrap().len(),
            expected_calls,
            "status {status}"
        );
    }
    // With an Idempotency-Key, or with Idempotency::All, a transient POST is retried.
    let starts: Starts = Arc::default();
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(
            RetryPolicy::new().idempotency(Idempotency::All),
        ))
        .service(api(Arc::clone(&starts), |n| {
            response(if n == 0 { 502 } else { 200 }, &[])
        }));
    assert_eq!(svc.oneshot(post()).await.unwrap().status(), 200);
    assert_eq!(starts.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_explicit_do_not_retry_stops() {
    let starts: Starts = Arc::default();
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::new()))
        .service(api(Arc::clone(&starts), |_| {
            response(
                429,
                &[("retry-after", "1"), ("stripe-should-retry", "false")],
            )
        }));
    assert_eq!(svc.oneshot(get()).await.unwrap().status(), 429);
    assert_eq!(starts.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_wait_over_the_cap_is_not_retried() {
    let starts: Starts = Arc::default();
    let limiter = RateLimiter::new(Quota::per_second(100).unwrap());
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::new()))
        .layer(FeedbackLayer::new(limiter))
        .service(api(Arc::clone(&starts), |_| {
            response(429, &[("retry-after", "100000")])
        }));
    let err = svc.oneshot(get()).await.unwrap_err();
    assert!(err.is::<WaitOverCap>(), "{err}");
    assert_eq!(starts.lock().unwrap().len(), 1);

    // Without the feedback layer the policy reads the headers itself, same answer.
    let starts: Starts = Arc::default();
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::new()))
        .service(api(Arc::clone(&starts), |_| {
            response(429, &[("retry-after", "100000")])
        }));
    assert_eq!(svc.oneshot(get()).await.unwrap().status(), 429);
    assert_eq!(starts.lock().unwrap().len(), 1);
}

/// A budget of exactly `n` retries, whatever the deposits.
struct Fixed {
    left: AtomicUsize,
}

impl Budget for Fixed {
    fn deposit(&self) {}
    fn withdraw(&self) -> bool {
        self.left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

#[tokio::test(start_paused = true)]
async fn the_budget_bounds_retries_across_requests() {
    let starts: Starts = Arc::default();
    let budget = Fixed {
        left: AtomicUsize::new(3),
    };
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::new().budget(budget)))
        .service(api(Arc::clone(&starts), |_| {
            response(429, &[("retry-after", "1")])
        }));
    for _ in 0..4 {
        assert_eq!(svc.clone().oneshot(get()).await.unwrap().status(), 429);
    }
    // 4 first attempts + 3 retries in total (not 4 × 5).
    assert_eq!(starts.lock().unwrap().len(), 7);
}

#[tokio::test(start_paused = true)]
async fn backoff_without_a_server_wait_has_full_jitter_under_the_ceiling() {
    let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    let starts: Starts = Arc::default();
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(
            RetryPolicy::new()
                .backoff(backoff)
                .max_retries(6)
                .budget(Fixed {
                    left: AtomicUsize::new(100),
                }),
        ))
        .service(api(Arc::clone(&starts), |_| response(503, &[])));
    svc.oneshot(get()).await.unwrap();
    let s = starts.lock().unwrap();
    assert_eq!(s.len(), 7);
    for (attempt, pair) in s.windows(2).enumerate() {
        assert!(pair[1] - pair[0] <= backoff.ceiling(attempt as u32));
    }
}

#[test]
fn full_jitter_spreads_over_the_whole_interval() {
    let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
    assert_eq!(backoff.ceiling(0), Duration::from_millis(100));
    assert_eq!(backoff.ceiling(3), Duration::from_millis(800));
    assert_eq!(backoff.ceiling(200), Duration::from_secs(10));
    let samples: Vec<Duration> = (0..2000).map(|_| backoff.delay(4)).collect();
    assert!(samples.iter().all(|d| *d <= Duration::from_millis(1600)));
    // Uniform over [0, 1.6 s]: both the lowest and the highest quarter are hit.
    assert!(samples.iter().any(|d| *d < Duration::from_millis(400)));
    assert!(samples.iter().any(|d| *d > Duration::from_millis(1200)));
}

#[tokio::test(start_paused = true)]
async fn a_429_naming_no_wait_waits_at_least_what_retry_after_zero_does() {
    // Full jitter alone drew the first retry from [0, 100 ms]: a few milliseconds, sooner
    // than a server that said `Retry-After: 0` is answered.
    for _ in 0..20 {
        let starts: Starts = Arc::default();
        let svc = ServiceBuilder::new()
            .layer(RetryLayer::new(RetryPolicy::new().max_retries(1)))
            .service(api(Arc::clone(&starts), |_| response(429, &[])));
        svc.oneshot(get()).await.unwrap();
        let s = starts.lock().unwrap();
        assert_eq!(s.len(), 2);
        assert!(
            s[1] - s[0] >= FeedbackParser::DEFAULT_MIN_WAIT,
            "retried after {:?}",
            s[1] - s[0]
        );
    }
}
