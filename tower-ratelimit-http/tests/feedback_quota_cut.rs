//! A 429 that both pauses the limiter and lowers its quota
//! (`FeedbackLayer::adopt_policy`): a request held through the pause is booked again
//! at the new quota and gives nothing back of the unit the old quota priced (priced
//! at the new, much longer interval, it came back out of other requests' bookings).

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::{BoxError, Quota, RateLimitLayer, RateLimiter};
use tower_ratelimit_http::feedback::FeedbackLayer;

type Req = http::Request<()>;
type Res = http::Response<()>;

fn response(status: u16, headers: &[(&str, &str)]) -> Res {
    let mut b = http::Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_429_that_lowers_the_quota_holds_the_new_quota_for_requests_held_through_it() {
    // 10/s with a burst of 2 (T = 100 ms).
    let limiter = RateLimiter::new(Quota::per_second(10).unwrap().with_burst(2).unwrap());
    let t0 = Instant::now();
    let starts: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let log = Arc::clone(&starts);
    let api = service_fn(move |_req: Req| {
        let n = {
            let mut s = log.lock().unwrap();
            s.push(t0.elapsed());
            s.len() - 1
        };
        async move {
            Ok::<_, BoxError>(if n == 0 {
                // Slow down: 2 per minute (T = 30 s), and wait 1 s first.
                response(
                    429,
                    &[
                        ("retry-after", "1"),
                        ("ratelimit-policy", r#""burst";q=2;w=60"#),
                    ],
                )
            } else {
                response(200, &[])
            })
        }
    });
    let client = ServiceBuilder::new()
        .layer(RateLimitLayer::with_limiter(limiter.clone()))
        .layer(FeedbackLayer::new(limiter.clone()).adopt_policy(true))
        .service(api);
    // A is made ready at 0 (its unit is refilled by 100 ms).
    let mut a = client.clone();
    a.ready().await.unwrap();
    // At 500 ms a request gets the 429: pause until 1.5 s, quota 2 per 60 s.
    tokio::time::sleep_until(t0 + Duration::from_millis(500)).await;
    let throttled = client.clone().oneshot(Req::new(())).await.unwrap();
    assert_eq!(throttled.status(), 429);
    assert_eq!(
        limiter.quota(),
        Quota::new(2, Duration::from_secs(60))
            .unwrap()
            .with_burst(2)
            .unwrap()
    );
    // A calls during the pause: held, booked again at its end.
    tokio::time::sleep_until(t0 + Duration::from_millis(600)).await;
    let held = tokio::spawn(a.call(Req::new(())));
    tokio::time::sleep_until(t0 + Duration::from_millis(1_500)).await;
    let fresh = tokio::spawn(client.clone().oneshot(Req::new(())));
    held.await.unwrap().unwrap();
    // Bounded: the fresh request should wait about 30 s; give it 5 s.
    let _ = tokio::time::timeout(Duration::from_secs(5), fresh).await;
    let starts = starts.lock().unwrap().clone();
    // 2 per 60 s, burst 2: the 429'd request and A, then nothing for ~30 s.
    assert_eq!(starts.len(), 2, "{starts:?}");
}
