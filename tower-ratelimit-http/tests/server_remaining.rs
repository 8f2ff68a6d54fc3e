//! What `r` promises, exactly as `HttpRateLimitLayer`'s docs state it, and what a cost
//! of 0 does. Paused clock; time moves only when a test advances it.
//!
//! `r` is the bucket's own remaining units plus `q - burst` (the units `q` adds when
//! it is scaled above the burst): all `r` pass when the bucket's own go at once and
//! the rest at the quota's rate; sent all at once, only the bucket's own pass.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tower::{Layer, Service, ServiceExt};
use tower_ratelimit_core::algorithm::{Algorithm, FixedWindow, Gcra, SlidingLog};
use tower_ratelimit_core::store::{MemoryStore, RateStore};
use tower_ratelimit_core::Quota;
use tower_ratelimit_http::server::key::GlobalKey;
use tower_ratelimit_http::server::{HttpRateLimitLayer, ResponseBody};

type Body = http_body_util::Empty<bytes::Bytes>;

trait Server:
    Service<http::Request<()>, Response = http::Response<ResponseBody<Body>>, Error = Infallible>
    + Clone
{
}

impl<S> Server for S where
    S: Service<
            http::Request<()>,
            Response = http::Response<ResponseBody<Body>>,
            Error = Infallible,
        > + Clone
{
}

fn ok(
) -> impl Service<http::Request<()>, Response = http::Response<Body>, Error = Infallible, Future: Send>
       + Clone {
    tower::service_fn(|_: http::Request<()>| async {
        Ok::<_, Infallible>(http::Response::new(Body::new()))
    })
}

fn server<St: RateStore<()>>(store: Arc<St>, cost: u64) -> impl Server {
    HttpRateLimitLayer::with_shared_store(store, GlobalKey)
        .cost(cost)
        .layer(ok())
}

/// (status, q, w, r, t) of one request.
async fn send(server: &impl Server) -> (u16, u64, u64, u64, u64) {
    let response = server
        .clone()
        .oneshot(http::Request::new(()))
        .await
        .unwrap();
    let field = |name: &str| {
        response.headers()[name]
            .to_str()
            .unwrap()
            .split(';')
            .skip(1)
            .map(|p| p.split_once('=').unwrap())
            .map(|(k, v)| (k.to_owned(), v.parse::<u64>().unwrap()))
            .collect::<Vec<_>>()
    };
    let get = |fields: &[(String, u64)], key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .unwrap()
    };
    let (policy, limit) = (field("ratelimit-policy"), field("ratelimit"));
    (
        response.status().as_u16(),
        get(&policy, "q"),
        get(&policy, "w"),
        get(&limit, "r"),
        get(&limit, "t"),
    )
}

/// After one request: how many of the `r` it announced pass when sent at once.
async fn at_once(quota: Quota) -> (u64, u64, u64, usize) {
    let svc = server(Arc::new(MemoryStore::new(quota)), 1);
    let (status, q, w, r, _) = send(&svc).await;
    assert_eq!(status, 200);
    let mut passed = 0;
    for _ in 0..r {
        if send(&svc).await.0 == 200 {
            passed += 1;
        }
    }
    (q, w, r, passed)
}

#[tokio::test(start_paused = true)]
async fn r_is_a_count_at_once_only_when_the_burst_refills_in_whole_seconds() {
    // Whole seconds: q is the burst, and r is exactly what passes at once.
    let whole = [
        Quota::per_minute(10).unwrap(),
        Quota::per_second(5).unwrap().with_burst(20).unwrap(),
        // 10 per 1.5 s, with a burst that refills in 3 s.
        Quota::new(10, Duration::from_millis(1500))
            .unwrap()
            .with_burst(20)
            .unwrap(),
        Quota::per_second(2).unwrap().with_burst(4).unwrap(),
    ];
    for quota in whole {
        let (q, _, r, passed) = at_once(quota).await;
        assert_eq!(q, quota.burst(), "{quota:?}");
        assert_eq!(passed as u64, r, "{quota:?}");
    }
    // The default burst refilling in a fraction: 10 per 1.5 s says q=20;w=3, and r=19
    // after one request, of which the bucket's own 9 pass at once.
    let fraction = Quota::new(10, Duration::from_millis(1500)).unwrap();
    assert_eq!(at_once(fraction).await, (20, 3, 19, 9));
    // 2/s with a burst of 3: q=4;w=2; after one request r=3, and 2 pass at once.
    let three = Quota::per_second(2).unwrap().with_burst(3).unwrap();
    assert_eq!(at_once(three).await, (4, 2, 3, 2));
    // A burst below the count: 100/s with a burst of 1 says r=99, and none at once.
    let strict = Quota::per_second(100).unwrap().with_burst(1).unwrap();
    assert_eq!(at_once(strict).await, (100, 1, 99, 0));
}

/// All `r` pass when the bucket's own go at once and the rest at the quota's rate.
#[tokio::test(start_paused = true)]
async fn all_of_r_pass_when_the_scaled_part_is_paced() {
    for quota in [
        Quota::new(10, Duration::from_millis(1500)).unwrap(),
        Quota::per_second(2).unwrap().with_burst(3).unwrap(),
        Quota::per_second(100).unwrap().with_burst(1).unwrap(),
        Quota::per_minute(100).unwrap().with_burst(7).unwrap(),
    ] {
        let svc = server(Arc::new(MemoryStore::new(quota)), 1);
        let (_, q, _, r, _) = send(&svc).await;
        let own = r - (q - quota.burst());
        for i in 0..r {
            if i >= own {
                tokio::time::advance(quota.emission_interval()).await;
            }
            assert_eq!(send(&svc).await.0, 200, "{quota:?}: request {i} of r={r}");
        }
        // And one more at once is refused: r was all there was.
        assert_eq!(send(&svc).await.0, 429, "{quota:?}");
    }
}

/// `cost(0)`: the request is not counted. It always passes, and its response reports
/// the key's state as the counted requests left it.
#[tokio::test(start_paused = true)]
async fn cost_zero_is_not_counted_and_reports_the_current_state() {
    async fn check<A: Algorithm>(algorithm: A) {
        let quota = Quota::per_minute(3).unwrap();
        let store = Arc::new(MemoryStore::with_algorithm(algorithm, quota));
        let (counted, status) = (server(Arc::clone(&store), 1), server(store, 0));
        // Never spends anything: the full quota, however often it is asked.
        for _ in 0..10 {
            let (code, _, _, r, _) = send(&status).await;
            assert_eq!((code, r), (200, 3));
        }
        for left in [2, 1, 0] {
            assert_eq!(send(&counted).await.0, 200);
            let (code, _, _, r, _) = send(&status).await;
            assert_eq!((code, r), (200, left));
        }
        assert_eq!(send(&counted).await.0, 429);
        // Drained: still answered, with r=0 and the time until the quota is back.
        let (code, _, _, r, t) = send(&status).await;
        assert_eq!((code, r), (200, 0));
        assert!(t > 0 && t <= 60, "t={t}");
    }
    check(Gcra).await;
    check(FixedWindow).await;
    check(SlidingLog).await;
}

/// `cost(0)` passes even after a quota cut left the key over its new quota (a store
/// refuses such a key any cost, 0 included): the response is a 200 whose fields say
/// `r=0` and when the key is full. Review 22, finding 7: it was a 429.
#[tokio::test(start_paused = true)]
async fn cost_zero_passes_after_a_quota_cut_below_what_the_key_spent() {
    async fn check<A: Algorithm>(algorithm: A) {
        let store = Arc::new(MemoryStore::with_algorithm(
            algorithm,
            Quota::per_minute(10).unwrap(),
        ));
        let (counted, status) = (server(Arc::clone(&store), 1), server(Arc::clone(&store), 0));
        for _ in 0..10 {
            assert_eq!(send(&counted).await.0, 200);
        }
        store.set_quota(Quota::per_minute(5).unwrap());
        // The key holds 10 units under a quota of 5: the counted route is refused...
        assert_eq!(send(&counted).await.0, 429);
        // ...the uncounted one is not, and says the key has nothing left.
        let (code, q, w, r, t) = send(&status).await;
        assert_eq!((code, q, w, r), (200, 5, 60, 0));
        assert!(t > 0 && t <= 120, "t={t}");
    }
    check(Gcra).await;
    check(FixedWindow).await;
}
