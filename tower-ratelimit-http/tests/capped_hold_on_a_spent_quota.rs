//! A job that drains GitHub's hourly quota (`x-ratelimit-remaining: 0`,
//! `x-ratelimit-reset` up to an hour ahead) with the default 5-minute cap: the
//! allowed response that spends the quota holds the limiter for the cap, and empties
//! its bucket at the cap's end, so that one request asks the server again. With a
//! plain pause the bucket refilled meanwhile, and a whole burst went out into a
//! server that had said "not before the reset": 10 refusals, 10 `WaitOverCap`s.

use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};
use tokio::time::Instant;
use tower::{retry::RetryLayer, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::{BoxError, Quota, RateLimitLayer, RateLimiter};
use tower_ratelimit_http::{FeedbackLayer, RetryPolicy};

type Req = http::Request<()>;

const EPOCH: u64 = 1_767_225_600; // Thu, 01 Jan 2026 00:00:00 GMT, a whole hour

#[tokio::test(start_paused = true)]
async fn after_the_caps_hold_one_request_probes_not_a_burst() {
    let t0 = Instant::now();
    let sent: Arc<Mutex<Vec<(Instant, u16)>>> = Arc::default();
    let log = Arc::clone(&sent);
    // GitHub at 5000/h whose quota this client has just spent: the first answer is the
    // last allowed one; every later one before the reset (an hour) is a 403.
    let api = tower::service_fn(move |_req: Req| {
        let now = Instant::now();
        let elapsed = now - t0;
        let date = UNIX_EPOCH + Duration::from_secs(EPOCH) + elapsed;
        let status = if log.lock().unwrap().is_empty() {
            200
        } else {
            403
        };
        log.lock().unwrap().push((now, status));
        async move {
            // 100 ms to answer, as over a real network.
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<_, BoxError>(
                http::Response::builder()
                    .status(status)
                    .header("date", httpdate::fmt_http_date(date))
                    .header("x-ratelimit-limit", "5000")
                    .header("x-ratelimit-remaining", "0")
                    .header("x-ratelimit-used", "5000")
                    .header("x-ratelimit-reset", (EPOCH + 3600).to_string())
                    .header("x-ratelimit-resource", "core")
                    .body(())
                    .unwrap(),
            )
        }
    });
    let limiter = RateLimiter::new(Quota::per_second(10).unwrap());
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::new()))
        .layer(RateLimitLayer::with_limiter(limiter.clone()))
        .layer(FeedbackLayer::new(limiter.clone()))
        .service(api);
    let first = client.clone().oneshot(Req::new(())).await.unwrap();
    assert_eq!(first.status(), 200);
    // The job goes on: 20 more pages in flight.
    let tasks: Vec<_> = (0..20)
        .map(|_| tokio::spawn(client.clone().oneshot(Req::new(()))))
        .collect();
    tokio::time::sleep(Duration::from_secs(305)).await;
    let refused_at_caps_end = sent
        .lock()
        .unwrap()
        .iter()
        .filter(|(at, status)| *status == 403 && *at - t0 < Duration::from_secs(305))
        .count();
    let mut failed = 0;
    for task in tasks {
        if let Ok(Ok(Err(_))) = tokio::time::timeout(Duration::ZERO, task).await {
            failed += 1;
        }
    }
    assert!(
        refused_at_caps_end <= 1,
        "{refused_at_caps_end} requests were sent at the end of the 300 s hold into a \
         quota the server said was spent for an hour ({failed} failed with an error)"
    );
}
