//! The README's client stack (`RetryPolicy` > pool > rate > `FeedbackLayer`) over a
//! Redis-backed limiter, against a server with a smaller burst: a `429` throttles the
//! client for the server's whole-second `Retry-After`, and the throttle must empty the
//! shared bucket in Redis at its end, or the bucket refills while it waits and its
//! burst goes straight into the next `429` (the in-memory version of this test is
//! `tower-ratelimit-http/tests/feedback_throttle_drain.rs`).
//!
//! Redis keeps its own clock, so this runs in real time: the server answers in 51 ms
//! and refuses in whole seconds, and the runs are bounded in time. The "before" run
//! is the same stack over a store that forwards everything but the drain (what
//! `RedisStore` did before it drained).

mod support;

use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::RedisServer;
use tokio::time::Instant;
use tower::retry::RetryLayer;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::error::StoreError;
use tower_ratelimit_core::store::{Decision, MemoryStore, RateStore};
use tower_ratelimit_core::{BoxError, Quota, RateLimiter, ServiceBuilderExt};
use tower_ratelimit_http::server::HttpRateLimitLayer;
use tower_ratelimit_http::{FeedbackLayer, RetryPolicy};
use tower_ratelimit_redis::RedisStore;

type Body = http_body_util::Empty<bytes::Bytes>;

#[derive(Debug)]
struct Run {
    #[allow(dead_code)] // Printed, never asserted: real time.
    seconds: f64,
    ok: usize,
    refused: usize,
    refusals_seen_by_server: usize,
}

/// Up to `n` requests through the README stack (pool of 8) over `limiter` against a
/// server of `server_quota` answering in 51 ms, for at most `bound`: what finished.
async fn run<St: RateStore>(
    server_quota: Quota,
    limiter: RateLimiter<St>,
    n: usize,
    bound: Duration,
) -> Run {
    let refusals = Arc::new(AtomicUsize::new(0));
    let app = tower::service_fn(|_: http::Request<()>| async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok::<_, Infallible>(http::Response::new(Body::new()))
    });
    let server = HttpRateLimitLayer::global(MemoryStore::new(server_quota)).layer(app);
    let counted = Arc::clone(&refusals);
    let server = tower::service_fn(move |request: http::Request<()>| {
        let (server, counted) = (server.clone(), Arc::clone(&counted));
        async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let response = server.oneshot(request).await?;
            if response.status() == 429 {
                counted.fetch_add(1, Ordering::SeqCst);
            }
            Ok::<_, Infallible>(response)
        }
    });
    let client = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::new()))
        .limit_concurrency(8)
        .limit_rate_with(limiter.clone())
        .layer(FeedbackLayer::new(limiter))
        .map_err(BoxError::from)
        .service(server);
    let start = Instant::now();
    let (ok, refused) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let answers = client
        .call_all(futures_util::stream::iter(
            (0..n).map(|_| http::Request::new(())),
        ))
        .unordered()
        .for_each(|answer| {
            match answer {
                Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::SeqCst),
                Ok(r) if r.status() == 429 => refused.fetch_add(1, Ordering::SeqCst),
                _ => 0,
            };
            async {}
        });
    let _ = tokio::time::timeout(bound, answers).await;
    Run {
        seconds: start.elapsed().as_secs_f64(),
        ok: ok.load(Ordering::SeqCst),
        refused: refused.load(Ordering::SeqCst),
        refusals_seen_by_server: refusals.load(Ordering::SeqCst),
    }
}

/// A store that forwards every call to a `RedisStore` but the drain: the store as it
/// was before it drained.
struct NoDrain(RedisStore);

impl RateStore for NoDrain {
    type Future = BoxFuture<'static, Result<Decision, StoreError>>;

    fn check(&self, key: &(), cost: u64) -> Self::Future {
        self.0.check(key, cost)
    }

    fn check_since(&self, key: &(), cost: u64, since: Instant) -> Self::Future {
        self.0.check_since(key, cost, since)
    }

    fn peek(&self, key: &(), cost: u64) -> Self::Future {
        self.0.peek(key, cost)
    }

    fn reserve(&self, key: &(), cost: u64, max_wait: Duration) -> Self::Future {
        self.0.reserve(key, cost, max_wait)
    }

    fn reserve_whole(
        &self,
        key: &(),
        taken: u64,
        taken_at: Instant,
        cost: u64,
        max_wait: Duration,
    ) -> Self::Future {
        self.0.reserve_whole(key, taken, taken_at, cost, max_wait)
    }

    fn quota(&self, key: &()) -> Quota {
        RateStore::<()>::quota(&self.0, key)
    }

    fn max_cost(&self, key: &()) -> u64 {
        RateStore::<()>::max_cost(&self.0, key)
    }

    fn set_quota(&self, quota: Quota) {
        RateStore::<()>::set_quota(&self.0, quota);
    }
}

fn redis_store(server: &RedisServer, prefix: &str, quota: Quota) -> RedisStore {
    RedisStore::builder(quota)
        .prefix(prefix)
        .connect(server.url())
        .expect("store")
}

fn quota(per_second: u64, burst: u64) -> Quota {
    Quota::per_second(per_second)
        .and_then(|q| q.with_burst(burst))
        .expect("quota")
}

/// The showdown's server (100/s, burst 10) and a client at `per_second(90)` with its
/// default burst: the pool of 8 at 51 ms a request sends 157/s until the first `429`;
/// from the throttle's end the client must run at its own rate, under the server's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_refusal_a_redis_backed_client_runs_at_its_rate() {
    let redis = RedisServer::start();
    let (server, client) = (quota(100, 10), Quota::per_second(90).expect("quota"));
    let store = redis_store(&redis, "showdown:after:", client);
    let after = run(
        server,
        RateLimiter::from_store(store.clone()),
        300,
        Duration::from_secs(30),
    )
    .await;
    let stats = store.stats();
    eprintln!("after: {after:?} (3.3 s at the client's rate), {stats:?}");
    assert_eq!((after.ok, after.refused), (300, 0), "{after:?}");
    // Measured: 1 or 2 (in memory: 1), in 4.26-4.27 s: the first burst's, and any
    // request already in flight when it came back. Before, each throttle ended in
    // another (the 300 saw 8 by 8 s).
    assert!(after.refusals_seen_by_server <= 5, "{after:?}");
    assert!(stats.drains >= 1, "{stats:?}");
    // Before: every throttle ended in the bucket's saved burst (measured: 120 of 300
    // in 8 s, 8 refusals; in memory on a paused clock, 20.1 s for the 300).
    let before = run(
        server,
        RateLimiter::from_store(NoDrain(redis_store(&redis, "showdown:before:", client))),
        300,
        Duration::from_secs(5),
    )
    .await;
    eprintln!("before: {before:?}");
    assert!(before.ok < 300, "{before:?}");
    assert!(before.refusals_seen_by_server >= 3, "{before:?}");
}

/// The README's pair: server 100/s with a burst of 1, client `per_second(100)`. On a
/// real clock it is refused about once a second with or without the drain, in memory
/// too (the client's spacing meets the server's exactly, and a millisecond of jitter
/// in either direction is a `429`; the 4.0 s of the in-memory test are a paused
/// clock's). What the drain changes is how each throttle ends: one request, then the
/// rate, where the saved burst sent the whole pool into the next `429`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_pair_over_redis_ends_each_throttle_in_one_request_not_a_burst() {
    let redis = RedisServer::start();
    let (server, client) = (quota(100, 1), Quota::per_second(100).expect("quota"));
    let bound = Duration::from_secs(5);
    let store = redis_store(&redis, "readme:after:", client);
    let after = run(server, RateLimiter::from_store(store.clone()), 300, bound).await;
    eprintln!("after: {after:?}, {:?}", store.stats());
    let no_drain = NoDrain(redis_store(&redis, "readme:before:", client));
    let before = run(server, RateLimiter::from_store(no_drain), 300, bound).await;
    eprintln!("before: {before:?}");
    // Measured over 8 s: 12 refusals for 13 served after, 39 for 8 before (14 in
    // memory); each throttle ends in one refusal after, up to 7 (the pool of 8 at
    // once) before. Compared per request served, so that a loaded machine, which
    // changes how many throttles fit in the bound, does not flip it (a bare count
    // once passed at 22 against 25).
    let per_served = |run: &Run| run.refusals_seen_by_server as f64 / run.ok.max(1) as f64;
    assert!(
        per_served(&after) < per_served(&before),
        "after {after:?}, before {before:?}"
    );
}

/// A measurement, not a check: the same stacks in memory on a real clock, for
/// comparing with the Redis runs above (`cargo test -p tower-ratelimit-redis --test
/// feedback_throttle_drain -- --ignored --nocapture`). Measured: the README pair 11 of
/// 300 in 8 s with 14 refusals (as over Redis: the exact-rate pair is refused about
/// once a second on any real clock), the showdown pair 300 in 4.27 s with 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a real-time measurement of 16 s that asserts nothing"]
async fn in_memory_on_a_real_clock() {
    let bound = Duration::from_secs(8);
    let readme = run(
        quota(100, 1),
        RateLimiter::new(Quota::per_second(100).expect("quota")),
        300,
        bound,
    )
    .await;
    eprintln!("README pair in memory: {readme:?}");
    let showdown = run(
        quota(100, 10),
        RateLimiter::new(Quota::per_second(90).expect("quota")),
        300,
        bound,
    )
    .await;
    eprintln!("showdown pair in memory: {showdown:?}");
}
