//! The crate's client (`RateLimitLayer` + `FeedbackLayer`, default options) against the
//! crate's server (`HttpRateLimitLayer`), on the paused clock.
//!
//! The server's `t` is the time until its bucket is *full*; an allowed response with
//! `r=0` used to hold the client for all of it (60 s at 10/min, where the next unit is
//! 6 s away: 22 of 30 possible requests in 120 s). Against a fixed-window server, whose
//! `t` really is the moment the quota comes back, the client must not come early and
//! collect a 429 per window.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::algorithm::{Algorithm, FixedWindow};
use tower_ratelimit_core::clock::Clock;
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};
use tower_ratelimit_http::server::{HttpRateLimitLayer, ResponseBody};
use tower_ratelimit_http::FeedbackLayer;

type Body = http_body_util::Empty<bytes::Bytes>;

const RUN: Duration = Duration::from_secs(120);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    allowed: usize,
    denied: usize,
}

/// One request at a time through the client stack for `RUN`; counts the answers.
async fn run<S, B>(server: S, client_quota: Quota, adopt: bool) -> Tally
where
    S: Service<http::Request<()>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Error: Into<tower_ratelimit_core::BoxError>,
    S::Future: Send,
{
    let limiter = RateLimiter::new(client_quota);
    let feedback = FeedbackLayer::new(limiter.clone()).adopt_policy(adopt);
    let client = ServiceBuilder::new()
        .layer(RateLimitLayer::with_limiter(limiter.clone()))
        .layer(feedback)
        .service(server);
    let allowed = Arc::new(AtomicUsize::new(0));
    let denied = Arc::new(AtomicUsize::new(0));
    let (a, d) = (Arc::clone(&allowed), Arc::clone(&denied));
    let work = async move {
        loop {
            let response = client
                .clone()
                .oneshot(http::Request::new(()))
                .await
                .expect("no wait is over the cap here");
            match response.status().as_u16() {
                200 => a.fetch_add(1, Ordering::SeqCst),
                429 => d.fetch_add(1, Ordering::SeqCst),
                other => panic!("unexpected status {other}"),
            };
        }
    };
    let _ = tokio::time::timeout(RUN, work).await;
    Tally {
        allowed: allowed.load(Ordering::SeqCst),
        denied: denied.load(Ordering::SeqCst),
    }
}

fn server<A: Algorithm>(
    store: MemoryStore<A>,
) -> impl Service<
    http::Request<()>,
    Response = http::Response<ResponseBody<Body>>,
    Error = Infallible,
    Future: Send,
> + Clone
       + Send
       + 'static
where
    MemoryStore<A>: tower_ratelimit_core::store::RateStore<()> + Send + Sync + 'static,
{
    HttpRateLimitLayer::global(store).layer(tower::service_fn(|_: http::Request<()>| async {
        Ok::<_, Infallible>(http::Response::new(Body::new()))
    }))
}

/// The client wants 1/s, one at a time: faster than every server here.
fn eager() -> Quota {
    Quota::per_second(1).unwrap().with_burst(1).unwrap()
}

/// Most a token bucket of `quota` (burst = count) admits in `RUN` from full: the
/// burst, plus a unit per interval (one due at the run's last instant still passes).
fn bucket_best(quota: Quota) -> usize {
    let interval = quota.emission_interval().as_nanos();
    (quota.burst() as u128 + RUN.as_nanos() / interval) as usize
}

#[tokio::test(start_paused = true)]
async fn own_client_reaches_own_token_bucket_servers_rate() {
    for (quota, least) in [
        // 10 at once, then one every 6 s: 30 in 120 s (it was 22).
        (Quota::per_minute(10).unwrap(), 30),
        // One every 8.57 s: the whole-second `t` costs up to a second per unit.
        (Quota::per_minute(7).unwrap(), 18),
        // One every 20 s, burst 3.
        (Quota::per_minute(3).unwrap(), 8),
        // 5 per 10 s: one every 2 s.
        (Quota::new(5, Duration::from_secs(10)).unwrap(), 64),
    ] {
        let best = bucket_best(quota);
        let plain = run(server(MemoryStore::new(quota)), eager(), false).await;
        let adopting = run(server(MemoryStore::new(quota)), eager(), true).await;
        println!("{quota:?}: default {plain:?}, adopt_policy {adopting:?}, best {best}");
        assert_eq!(plain.denied, 0, "{quota:?}");
        assert!(
            plain.allowed >= least && plain.allowed <= best,
            "{quota:?}: {plain:?}, best {best}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn fixed_window_server_is_not_asked_early() {
    let quota = Quota::per_minute(10).unwrap();
    // Where in its minute the window server starts: the client's requests drain each
    // window at a different point of it, late or right at its start.
    for phase_ms in [0u64, 5_000, 25_000, 55_000, 59_500] {
        let store = || {
            MemoryStore::with_algorithm(FixedWindow, quota)
                .with_clock(Clock::with_unix_time(Duration::from_millis(phase_ms)))
        };
        // Windows the run touches, its last instant included: each admits 10.
        let windows = ((phase_ms as u128 + RUN.as_millis()) / 60_000 + 1) as usize;
        // The client at 1/s spaced: drains each window 9 s or more after it starts.
        let spaced = run(server(store()), eager(), false).await;
        // A client with a burst of 10 drains a window the moment it opens.
        let bursting = run(
            server(store()),
            Quota::per_second(1).unwrap().with_burst(10).unwrap(),
            false,
        )
        .await;
        println!(
            "phase {phase_ms} ms: spaced {spaced:?}, bursting {bursting:?}, windows {windows}"
        );
        assert_eq!(spaced.denied, 0, "phase {phase_ms} ms: {spaced:?}");
        assert!(spaced.allowed <= 10 * windows);
        assert!(
            bursting.denied <= windows,
            "phase {phase_ms} ms: {bursting:?}"
        );
        assert!(bursting.allowed <= 10 * windows);
    }
}

/// What an allowed response with a spent quota holds the client for, by header set.
#[test]
fn next_unit_wait_shortens_only_a_drained_buckets_refill_time() {
    use std::time::SystemTime;
    use tower_ratelimit_http::feedback::FeedbackParser;
    let wait = |fields: &[(&str, &str)]| {
        let mut headers = http::HeaderMap::new();
        for (name, value) in fields {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let feedback =
            FeedbackParser::new().parse(http::StatusCode::OK, &headers, SystemTime::now());
        (feedback.wait().ok().flatten(), feedback.next_unit_wait())
    };
    let secs = |s| Some(Duration::from_secs(s));
    let policy = ("ratelimit-policy", r#""default";q=10;w=60"#);
    // A drained bucket: full in 60 s, the next unit in 6.
    assert_eq!(
        wait(&[policy, ("ratelimit", r#""default";r=0;t=60"#)]),
        (secs(60), Ok(secs(6)))
    );
    // Not a refill time for r=0 at 10/min: a window's end, held whole.
    assert_eq!(
        wait(&[policy, ("ratelimit", r#""default";r=0;t=54"#)]),
        (secs(54), Ok(secs(54)))
    );
    // No policy, another policy's name, or a policy in bytes: nothing to go on.
    assert_eq!(
        wait(&[("ratelimit", r#""default";r=0;t=60"#)]).1,
        Ok(secs(60))
    );
    assert_eq!(
        wait(&[policy, ("ratelimit", r#""other";r=0;t=60"#)]).1,
        Ok(secs(60))
    );
    assert_eq!(
        wait(&[
            (
                "ratelimit-policy",
                r#""default";q=10;w=60;qu="content-bytes""#
            ),
            ("ratelimit", r#""default";r=0;t=60"#)
        ])
        .1,
        Ok(secs(60))
    );
    // An explicit Retry-After wins, and is not shortened.
    assert_eq!(
        wait(&[
            policy,
            ("ratelimit", r#""default";r=0;t=60"#),
            ("retry-after", "60")
        ])
        .1,
        Ok(secs(60))
    );
    // Legacy fields carry no window.
    assert_eq!(
        wait(&[
            ("x-ratelimit-limit", "10"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "60")
        ])
        .1,
        Ok(secs(60))
    );
    // Two spent policies: the later next unit (a window's end beats a bucket's unit).
    assert_eq!(
        wait(&[
            (
                "ratelimit-policy",
                r#""burst";q=10;w=60, "hour";q=100;w=3600"#
            ),
            ("ratelimit", r#""burst";r=0;t=60, "hour";r=0;t=40"#)
        ])
        .1,
        Ok(secs(40))
    );
    // A `t` over the 5 minute cap whose next unit is within it: 100/h drained.
    let (over, next) = wait(&[
        ("ratelimit-policy", r#""hour";q=100;w=3600"#),
        ("ratelimit", r#""hour";r=0;t=3600"#),
    ]);
    assert_eq!((over, next), (None, Ok(secs(36))));
    // The floor (100 ms) still applies: 1000/s drained, next unit in 1 ms.
    assert_eq!(
        wait(&[
            ("ratelimit-policy", r#""fast";q=1000;w=1"#),
            ("ratelimit", r#""fast";r=0;t=1"#)
        ])
        .1,
        Ok(Some(Duration::from_millis(100)))
    );
}
