//! Our server's `RateLimit-Policy`, read back by our own client, is the server's real
//! rate: strict spacing, the default burst, a leaky bucket and whole-minute or
//! whole-hour quotas all come back within 1% (and never faster), and a client that
//! adopts the policy runs at the server's pace without being refused.

use http::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::time::{Duration, SystemTime};
use tower::util::BoxCloneService;
use tower::{service_fn, Layer, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::algorithm::{FixedWindow, LeakyBucket};
use tower_ratelimit_core::store::{MemoryStore, RateStore};
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};
use tower_ratelimit_http::feedback::{FeedbackLayer, FeedbackParser};
use tower_ratelimit_http::server::HttpRateLimitLayer;

type Server = BoxCloneService<Request<()>, Response<()>, Infallible>;

/// A server answering 200 behind a global limit with `store`.
fn server<St>(store: St) -> Server
where
    St: RateStore<()> + Send + Sync + 'static,
    St::Future: Send,
{
    let ok = service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(())) });
    let limited = HttpRateLimitLayer::global(store).layer(ok);
    BoxCloneService::new(limited.map_response(|r| r.map(|_| ())))
}

async fn send(server: &Server) -> Response<()> {
    server.clone().oneshot(Request::new(())).await.unwrap()
}

/// The rate the policy states is the server's rate: never over it, at most 1% under.
fn assert_same_rate(server_quota: &Quota, q: u64, w: Duration, what: &str) {
    let t = server_quota.emission_interval().as_nanos();
    let (q, w) = (u128::from(q), w.as_nanos());
    assert!(q * t <= w, "{what}: q={q} per {w} ns is over 1 per {t} ns");
    assert!(
        q * t * 100 >= w * 99,
        "{what}: q={q} per {w} ns is >1% under 1 per {t} ns"
    );
}

/// The server's first response, parsed by the client's parser; and the quota a client
/// starting at `client` adopts from it.
async fn round_trip(server: &Server, client: Quota) -> ((u64, Duration), Quota) {
    let response = send(server).await;
    assert_eq!(response.status(), StatusCode::OK);
    let feedback =
        FeedbackParser::new().parse(StatusCode::OK, response.headers(), SystemTime::now());
    assert_eq!(feedback.policies.len(), 1, "{:?}", response.headers());
    let policy = &feedback.policies[0];
    let parsed = (policy.quota, policy.window.expect("a window"));
    // A response from the same server, through a feedback layer that adopts it.
    let limiter = RateLimiter::new(client);
    FeedbackLayer::new(limiter.clone())
        .adopt_policy(true)
        .layer(server.clone())
        .oneshot(Request::new(()))
        .await
        .unwrap();
    (parsed, limiter.quota())
}

#[tokio::test(start_paused = true)]
async fn every_store_shape_round_trips_to_its_rate() {
    let strict = Quota::per_second(100).unwrap().with_burst(1).unwrap();
    let cases: Vec<(&str, Quota, Server)> = vec![
        ("strict spacing", strict, server(MemoryStore::new(strict))),
        ("from_rate(100, 1)", Quota::from_rate(100.0, 1).unwrap(), {
            server(MemoryStore::new(Quota::from_rate(100.0, 1).unwrap()))
        }),
        ("default burst", Quota::per_second(10).unwrap(), {
            server(MemoryStore::new(Quota::per_second(10).unwrap()))
        }),
        (
            "burst 7 of 100/min",
            Quota::per_minute(100).unwrap().with_burst(7).unwrap(),
            {
                server(MemoryStore::new(
                    Quota::per_minute(100).unwrap().with_burst(7).unwrap(),
                ))
            },
        ),
        ("leaky bucket 100/s", Quota::per_second(100).unwrap(), {
            server(MemoryStore::with_algorithm(
                LeakyBucket,
                Quota::per_second(100).unwrap(),
            ))
        }),
        ("leaky bucket 100/min", Quota::per_minute(100).unwrap(), {
            server(MemoryStore::with_algorithm(
                LeakyBucket,
                Quota::per_minute(100).unwrap(),
            ))
        }),
        ("fixed window 10/s", Quota::per_second(10).unwrap(), {
            server(MemoryStore::with_algorithm(
                FixedWindow,
                Quota::per_second(10).unwrap(),
            ))
        }),
        ("per minute", Quota::per_minute(100).unwrap(), {
            server(MemoryStore::new(Quota::per_minute(100).unwrap()))
        }),
        ("per hour", Quota::per_hour(100).unwrap(), {
            server(MemoryStore::new(Quota::per_hour(100).unwrap()))
        }),
    ];
    for (what, quota, server) in cases {
        // A client faster than any of these servers: adoption slows it to theirs.
        let client = Quota::per_second(1_000_000).unwrap();
        let ((q, w), adopted) = round_trip(&server, client).await;
        assert_same_rate(&quota, q, w, what);
        assert_same_rate(&quota, adopted.count(), adopted.period(), what);
        assert!(
            adopted.emission_interval() >= quota.emission_interval(),
            "{what}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn whole_second_quotas_are_advertised_as_themselves() {
    for (quota, want) in [
        (Quota::per_minute(100).unwrap(), r#""default";q=100;w=60"#),
        (Quota::per_hour(100).unwrap(), r#""default";q=100;w=3600"#),
        (Quota::per_second(10).unwrap(), r#""default";q=10;w=1"#),
    ] {
        let response = send(&server(MemoryStore::new(quota))).await;
        assert_eq!(response.headers()["ratelimit-policy"], want);
    }
}

/// Ported from the review (finding 4): 100/s with burst 1 was advertised as 1/s.
#[tokio::test(start_paused = true)]
async fn strict_spacing_is_advertised_at_the_rate_it_admits() {
    let server = server(MemoryStore::new(
        Quota::per_second(100).unwrap().with_burst(1).unwrap(),
    ));
    let first = send(&server).await;
    assert_eq!(
        first.headers()["ratelimit-policy"],
        r#""default";q=100;w=1"#
    );
    assert_eq!(first.headers()["ratelimit"], r#""default";r=99;t=1"#);
    // What the server admits in the policy's window, offered every 5 ms.
    let mut admitted = 1;
    for _ in 0..199 {
        tokio::time::advance(Duration::from_millis(5)).await;
        let response = send(&server).await;
        if response.status() == StatusCode::OK {
            admitted += 1;
        } else {
            // A refusal says nothing is left, whatever the scaled count would be.
            assert_eq!(response.headers()["ratelimit"], r#""default";r=0;t=1"#);
        }
    }
    assert_eq!(admitted, 100, "1 s of offers every 5 ms (0 ms ..= 995 ms)");
}

/// Ported from the review: a leaky bucket's snapshot limit is 1, not its count.
#[tokio::test(start_paused = true)]
async fn a_leaky_bucket_is_advertised_at_its_rate() {
    let server = server(MemoryStore::with_algorithm(
        LeakyBucket,
        Quota::per_second(100).unwrap(),
    ));
    let response = send(&server).await;
    assert_eq!(
        response.headers()["ratelimit-policy"],
        r#""default";q=100;w=1"#
    );
}

/// Ported from the review: our client, adopting our server's policy, paced itself at
/// 1/s against a server that admits 100/s (20 requests took 19 s).
#[tokio::test(start_paused = true)]
async fn a_strict_client_adopting_a_strict_server_runs_at_its_rate() {
    for server in [
        server(MemoryStore::new(
            Quota::per_second(100).unwrap().with_burst(1).unwrap(),
        )),
        server(MemoryStore::with_algorithm(
            LeakyBucket,
            Quota::per_second(100).unwrap(),
        )),
    ] {
        let limiter = RateLimiter::new(Quota::per_second(100).unwrap().with_burst(1).unwrap());
        let client = ServiceBuilder::new()
            .layer(RateLimitLayer::with_limiter(limiter.clone()))
            .layer(FeedbackLayer::new(limiter.clone()).adopt_policy(true))
            .service(server);
        let start = tokio::time::Instant::now();
        for i in 0..20 {
            let response = client.clone().oneshot(Request::new(())).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "request {i}");
        }
        // 19 gaps of 10 ms.
        assert_eq!(start.elapsed(), Duration::from_millis(190));
        assert_eq!(limiter.quota().burst(), 1, "the client keeps its spacing");
        assert_eq!(
            limiter.quota().emission_interval(),
            Duration::from_millis(10)
        );
    }
}

/// A client with the default burst adopts the server's `q` as its burst (a window
/// server admits `q` at once) up to its own (its quota is a ceiling: 1000 at once
/// from a client built for 10 at once would be faster than it allows itself); one
/// that chose a smaller burst keeps it.
#[tokio::test(start_paused = true)]
async fn adoption_keeps_the_clients_burst_shape() {
    let hourly = service_fn(|_: Request<()>| async {
        let response = Response::builder()
            .header("ratelimit-policy", r#""hourly";q=1000;w=3600"#)
            .header("ratelimit", r#""hourly";r=999;t=4"#);
        Ok::<_, Infallible>(response.body(()).unwrap())
    });
    for (client, burst) in [
        (Quota::per_second(10).unwrap(), 10),
        (Quota::per_minute(2000).unwrap(), 1000),
        (Quota::per_second(10).unwrap().with_burst(2).unwrap(), 2),
        (Quota::per_second(10).unwrap().with_burst(1).unwrap(), 1),
    ] {
        let limiter = RateLimiter::new(client);
        FeedbackLayer::new(limiter.clone())
            .adopt_policy(true)
            .layer(hourly)
            .oneshot(Request::new(()))
            .await
            .unwrap();
        let adopted = limiter.quota();
        assert_eq!(
            (adopted.count(), adopted.period()),
            (1000, Duration::from_secs(3600))
        );
        assert_eq!(adopted.burst(), burst, "client {client:?}");
    }
}

/// A store of several quotas advertises the one its snapshot describes: 5 per hour
/// binds before 10 per second, so the policy says 5 per 3600 s, not 5 per second.
#[tokio::test(start_paused = true)]
async fn several_quotas_advertise_the_binding_one() {
    let store = MemoryStore::with_quotas(
        tower_ratelimit_core::algorithm::Gcra,
        [Quota::per_second(10).unwrap(), Quota::per_hour(5).unwrap()],
    )
    .unwrap();
    let server = server(store);
    let first = send(&server).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        first.headers()["ratelimit-policy"],
        r#""default";q=5;w=3600"#
    );
    assert_eq!(first.headers()["ratelimit"], r#""default";r=4;t=720"#);
    for _ in 0..4 {
        assert_eq!(send(&server).await.status(), StatusCode::OK);
    }
    let denied = send(&server).await;
    assert_eq!(denied.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        denied.headers()["ratelimit-policy"],
        r#""default";q=5;w=3600"#
    );
}

/// A server's policy may slow a client down, not speed it past its own rate, nor freeze
/// it with a window longer than the wait the parser would accept.
#[tokio::test(start_paused = true)]
async fn a_server_cannot_raise_or_freeze_the_client() {
    let client = Quota::per_second(10).unwrap();
    for (policy, want) in [
        (r#""p";q=1000000000;w=1"#, client),
        (r#""p";q=1;w=4611686018"#, client),
        (r#""p";q=5;w=1"#, Quota::per_second(5).unwrap()),
    ] {
        let advertising = service_fn(move |_: Request<()>| async move {
            let response = Response::builder().header("ratelimit-policy", policy);
            Ok::<_, Infallible>(response.body(()).unwrap())
        });
        let limiter = RateLimiter::new(client);
        FeedbackLayer::new(limiter.clone())
            .adopt_policy(true)
            .layer(advertising)
            .oneshot(Request::new(()))
            .await
            .unwrap();
        assert_eq!(
            limiter.quota().emission_interval(),
            want.emission_interval(),
            "{policy}"
        );
    }
}
