//! `adopt_policy(true)` against a server that advertises the IETF draft's own example,
//! a short "burst" policy and a long "daily" one (`"burst";q=100;w=60,
//! "daily";q=1000;w=86400`): the shortest window paces the client. Taken as the
//! quota, the daily policy (the lowest long-run rate) made its count the client's
//! burst (301 requests at once from a 10/s client) and its spacing the client's pace
//! (one request per 86.4 s for a strictly spaced one).

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::{BoxError, Quota, RateLimitLayer, RateLimiter};
use tower_ratelimit_http::FeedbackLayer;

type Req = http::Request<()>;
type Res = http::Response<()>;

/// Every answer: 200 with the draft's two policies, plenty left in both.
fn api(
    starts: Arc<Mutex<Vec<Instant>>>,
) -> impl Service<Req, Response = Res, Error = BoxError, Future = impl Send> + Clone + Send {
    tower::service_fn(move |_req: Req| {
        starts.lock().unwrap().push(Instant::now());
        async move {
            Ok::<_, BoxError>(
                http::Response::builder()
                    .header(
                        "ratelimit-policy",
                        r#""burst";q=100;w=60, "daily";q=1000;w=86400"#,
                    )
                    .header("ratelimit", r#""burst";r=99;t=60, "daily";r=999;t=86400"#)
                    .body(())
                    .unwrap(),
            )
        }
    })
}

async fn run(client_quota: Quota, requests: usize) -> (Vec<Instant>, RateLimiter) {
    let starts = Arc::new(Mutex::new(Vec::new()));
    let limiter = RateLimiter::new(client_quota);
    let client = ServiceBuilder::new()
        .layer(RateLimitLayer::with_limiter(limiter.clone()))
        .layer(FeedbackLayer::new(limiter.clone()).adopt_policy(true))
        .service(api(Arc::clone(&starts)));
    // The first answer brings the policies.
    client.clone().oneshot(Req::new(())).await.unwrap();
    let tasks: Vec<_> = (0..requests)
        .map(|_| tokio::spawn(client.clone().oneshot(Req::new(()))))
        .collect();
    let deadline = tokio::time::sleep(Duration::from_secs(60));
    tokio::pin!(deadline);
    let all = futures_util::future::join_all(tasks);
    tokio::select! {
        _ = &mut deadline => {}
        _ = all => {}
    }
    let v = starts.lock().unwrap().clone();
    (v, limiter)
}

/// A client at 10/s (its default burst of 10) adopts 100 a minute and starts no more
/// at once than its own burst (one more: the first request ran under the client's
/// own quota, before the first answer). (The fake server never says `r=0`, so only
/// the first second is asserted: a real one would stop a client that goes on past its
/// `q` with `r=0` and a pause.)
#[tokio::test(start_paused = true)]
async fn adopting_the_daily_policy_does_not_lift_the_clients_burst() {
    let t0 = Instant::now();
    let (starts, limiter) = run(Quota::per_second(10).unwrap(), 300).await;
    let in_first_second = starts
        .iter()
        .filter(|s| **s < t0 + Duration::from_secs(1))
        .count();
    let in_first_minute = starts
        .iter()
        .filter(|s| **s < t0 + Duration::from_secs(60))
        .count();
    let q = limiter.quota();
    assert!(
        in_first_second <= 11,
        "a 10/s client started {in_first_second} requests in its first second and \
         {in_first_minute} in its first minute against a server that advertises 100 a \
         minute; adopted quota: count {} per {:?}, burst {}",
        q.count(),
        q.period(),
        q.burst()
    );
}

/// A strictly spaced client (burst 1) against the same server: 100 a minute are
/// allowed, so ten requests must fit in a minute.
#[tokio::test(start_paused = true)]
async fn a_strict_client_is_not_slowed_to_one_request_per_86_seconds() {
    let t0 = Instant::now();
    let (starts, limiter) = run(Quota::per_second(10).unwrap().with_burst(1).unwrap(), 10).await;
    let in_first_minute = starts
        .iter()
        .filter(|s| **s < t0 + Duration::from_secs(60))
        .count();
    let q = limiter.quota();
    assert!(
        in_first_minute >= 11,
        "only {in_first_minute} of 11 requests started in the first minute; adopted \
         quota: one per {:?} (burst {})",
        q.emission_interval(),
        q.burst()
    );
}
