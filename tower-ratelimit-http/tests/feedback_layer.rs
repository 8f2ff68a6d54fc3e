//! The client feedback layer on tokio's paused clock: exact, instant.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::{BoxError, Quota, RateLimitLayer, RateLimiter};
use tower_ratelimit_http::feedback::{Class, Feedback, FeedbackLayer, FeedbackParser, WaitOverCap};

type Req = http::Request<()>;
type Res = http::Response<()>;

/// A fake API: answers with `respond(n)` for the n-th request and records start instants.
fn api(
    starts: Arc<Mutex<Vec<Instant>>>,
    respond: fn(usize) -> Res,
) -> impl Service<
    Req,
    Response = Res,
    Error = BoxError,
    Future = impl std::future::Future<Output = Result<Res, BoxError>> + Send,
> + Clone
       + Send {
    service_fn(move |_req: Req| {
        let starts = Arc::clone(&starts);
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

fn response(status: u16, headers: &[(&str, &str)]) -> Res {
    let mut b = http::Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_429_pauses_every_clone() {
    let limiter = RateLimiter::new(Quota::per_second(1000).unwrap());
    let starts = Arc::new(Mutex::new(Vec::new()));
    let client = ServiceBuilder::new()
        .layer(RateLimitLayer::with_limiter(limiter.clone()))
        .layer(FeedbackLayer::new(limiter.clone()))
        .service(api(Arc::clone(&starts), |n| {
            if n == 0 {
                response(429, &[("retry-after", "2")])
            } else {
                response(200, &[])
            }
        }));
    let t0 = Instant::now();
    let first = client.clone().oneshot(Req::new(())).await.unwrap();
    assert_eq!(first.status(), 429);
    assert_eq!(first.extensions().get::<Class>(), Some(&Class::Throttled));
    assert_eq!(
        first.extensions().get::<Feedback>().unwrap().wait(),
        Ok(Some(Duration::from_secs(2)))
    );
    let tasks: Vec<_> = (0..32)
        .map(|_| tokio::spawn(client.clone().oneshot(Req::new(()))))
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().status(), 200);
    }
    let starts = starts.lock().unwrap();
    assert_eq!(starts.len(), 33);
    for s in &starts[1..] {
        assert!(*s >= t0 + Duration::from_secs(2), "{:?}", *s - t0);
    }
}

#[tokio::test(start_paused = true)]
async fn requests_already_waiting_are_held_too() {
    // Burst 1 at 10/s: the queued requests were waiting for slots when the 429 came.
    let limiter = RateLimiter::new(Quota::per_second(10).unwrap().with_burst(1).unwrap());
    let starts = Arc::new(Mutex::new(Vec::new()));
    let client = ServiceBuilder::new()
        .layer(RateLimitLayer::with_limiter(limiter.clone()))
        .layer(FeedbackLayer::new(limiter.clone()))
        .service(api(Arc::clone(&starts), |n| {
            if n == 0 {
                response(429, &[("retry-after", "3")])
            } else {
                response(200, &[])
            }
        }));
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|_| tokio::spawn(client.clone().oneshot(Req::new(()))))
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap().unwrap().status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 1);
    let starts = starts.lock().unwrap();
    assert_eq!(starts[0], t0);
    for s in &starts[1..] {
        assert!(*s >= t0 + Duration::from_secs(3), "{:?}", *s - t0);
    }
}

#[tokio::test(start_paused = true)]
async fn a_spent_quota_holds_until_its_reset() {
    let limiter = RateLimiter::new(Quota::per_second(1000).unwrap());
    let starts = Arc::new(Mutex::new(Vec::new()));
    let mut client = ServiceBuilder::new()
        .layer(RateLimitLayer::with_limiter(limiter.clone()))
        .layer(FeedbackLayer::new(limiter.clone()))
        .service(api(Arc::clone(&starts), |n| {
            if n == 0 {
                response(200, &[("ratelimit", r#""default";r=0;t=5"#)])
            } else {
                response(200, &[])
            }
        }));
    let t0 = Instant::now();
    let ok = client
        .ready()
        .await
        .unwrap()
        .call(Req::new(()))
        .await
        .unwrap();
    assert_eq!(ok.extensions().get::<Class>(), Some(&Class::Success));
    assert!(limiter.paused_until().is_some());
    client
        .ready()
        .await
        .unwrap()
        .call(Req::new(()))
        .await
        .unwrap();
    assert_eq!(starts.lock().unwrap()[1], t0 + Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn redirects_and_transient_errors_do_not_pause() {
    let limiter = RateLimiter::new(Quota::per_second(1000).unwrap());
    let starts = Arc::new(Mutex::new(Vec::new()));
    let mut client = ServiceBuilder::new()
        .layer(FeedbackLayer::new(limiter.clone()))
        .service(api(Arc::clone(&starts), |n| match n {
            0 => response(302, &[("retry-after", "30"), ("location", "/x")]),
            _ => response(503, &[]),
        }));
    let r = client
        .ready()
        .await
        .unwrap()
        .call(Req::new(()))
        .await
        .unwrap();
    assert_eq!(r.extensions().get::<Class>(), Some(&Class::Success));
    assert_eq!(limiter.paused_until(), None);
    let r = client
        .ready()
        .await
        .unwrap()
        .call(Req::new(()))
        .await
        .unwrap();
    assert_eq!(r.extensions().get::<Class>(), Some(&Class::Transient));
    assert_eq!(limiter.paused_until(), None);
}

#[tokio::test(start_paused = true)]
async fn a_throttle_without_a_wait_uses_the_fallback_pause() {
    let limiter = RateLimiter::new(Quota::per_second(1000).unwrap());
    let mut client = ServiceBuilder::new()
        .layer(FeedbackLayer::new(limiter.clone()).fallback_pause(Duration::from_millis(750)))
        .service(api(Arc::default(), |_| response(429, &[])));
    client
        .ready()
        .await
        .unwrap()
        .call(Req::new(()))
        .await
        .unwrap();
    let until = limiter.paused_until().expect("paused");
    assert_eq!(until - Instant::now(), Duration::from_millis(750));
}

#[tokio::test(start_paused = true)]
async fn a_wait_over_the_cap_is_an_error_and_holds_only_the_cap() {
    let limiter = RateLimiter::new(Quota::per_second(1000).unwrap());
    let mut client = ServiceBuilder::new()
        .layer(
            FeedbackLayer::new(limiter.clone())
                .parser(FeedbackParser::new().max_wait(Duration::from_secs(60))),
        )
        .service(api(Arc::default(), |_| {
            response(429, &[("retry-after", "86400")])
        }));
    let err = client
        .ready()
        .await
        .unwrap()
        .call(Req::new(()))
        .await
        .unwrap_err();
    let over = err.downcast_ref::<WaitOverCap>().expect("typed error");
    assert_eq!(over.wait, Duration::from_secs(86_400));
    assert_eq!(over.max_wait, Duration::from_secs(60));
    let until = limiter.paused_until().expect("paused");
    assert_eq!(until - Instant::now(), Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn an_advertised_policy_becomes_the_quota() {
    let limiter = RateLimiter::new(Quota::per_second(1000).unwrap());
    let mut client = ServiceBuilder::new()
        .layer(FeedbackLayer::new(limiter.clone()).adopt_policy(true))
        .service(api(Arc::default(), |_| {
            response(
                200,
                &[
                    (
                        "ratelimit-policy",
                        r#""burst";q=100;w=60, "daily";q=1000;w=86400"#,
                    ),
                    ("ratelimit", r#""burst";r=99;t=60"#),
                ],
            )
        }));
    client
        .ready()
        .await
        .unwrap()
        .call(Req::new(()))
        .await
        .unwrap();
    // The burst policy paces; the daily one is a budget its `r=0` enforces.
    assert_eq!(
        limiter.quota(),
        Quota::new(100, Duration::from_secs(60)).unwrap()
    );
    assert_eq!(limiter.paused_until(), None);

    let other = RateLimiter::new(Quota::per_second(1000).unwrap());
    let mut unchanged = ServiceBuilder::new()
        .layer(FeedbackLayer::new(other.clone()))
        .service(api(Arc::default(), |_| {
            response(200, &[("ratelimit-policy", r#""burst";q=100;w=60"#)])
        }));
    unchanged
        .ready()
        .await
        .unwrap()
        .call(Req::new(()))
        .await
        .unwrap();
    assert_eq!(other.quota(), Quota::per_second(1000).unwrap());
}
