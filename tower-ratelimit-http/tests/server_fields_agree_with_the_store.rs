//! The fields of every response checked against the store, over random
//! quotas, algorithms, costs and arrival times (paused clock):
//! * a 429's `Retry-After` is >= 1, and a retry after exactly that many seconds passes;
//! * a 429's `t` is not before its `Retry-After`;
//! * after `t` seconds of silence the bucket is full again;
//! * an allowed response whose own units (r minus what q adds over the limit) cover
//!   the cost is followed at once by an allowed request.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tower::{Layer, Service, ServiceExt};
use tower_ratelimit_core::algorithm::{
    Algorithm, FixedWindow, Gcra, LeakyBucket, SlidingCounter, SlidingLog,
};
use tower_ratelimit_core::clock::Clock;
use tower_ratelimit_core::store::{MemoryStore, RateStore};
use tower_ratelimit_core::Quota;
use tower_ratelimit_http::server::key::GlobalKey;
use tower_ratelimit_http::server::HttpRateLimitLayer;

type Body = http_body_util::Empty<bytes::Bytes>;

struct Reply {
    status: u16,
    q: u64,
    r: u64,
    t: u64,
    retry_after: Option<u64>,
}

async fn send<S, B>(svc: &S) -> Reply
where
    S: Service<http::Request<()>, Response = http::Response<B>, Error = Infallible> + Clone,
{
    let response = svc.clone().oneshot(http::Request::new(())).await.unwrap();
    let params = |name: &str| -> Vec<(String, u64)> {
        response.headers()[name]
            .to_str()
            .unwrap()
            .split(';')
            .skip(1)
            .map(|p| p.split_once('=').unwrap())
            .map(|(k, v)| (k.to_owned(), v.parse().unwrap()))
            .collect()
    };
    let get = |f: &[(String, u64)], k: &str| f.iter().find(|(n, _)| n == k).unwrap().1;
    let (p, l) = (params("ratelimit-policy"), params("ratelimit"));
    Reply {
        status: response.status().as_u16(),
        q: get(&p, "q"),
        r: get(&l, "r"),
        t: get(&l, "t"),
        retry_after: response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse().unwrap()),
    }
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

async fn run<A: Algorithm + Clone>(algorithm: A, name: &str, seed: u64) -> Vec<String> {
    let mut rng = Lcg(seed);
    let mut problems = Vec::new();
    let counts = [1u64, 2, 3, 5, 7, 10, 20];
    let periods_ms = [100u64, 250, 1000, 1500, 3000, 10_000, 60_000];
    let count = counts[rng.next(counts.len() as u64) as usize];
    let period = Duration::from_millis(periods_ms[rng.next(periods_ms.len() as u64) as usize]);
    let mut quota = Quota::new(count, period).unwrap();
    if rng.next(2) == 0 {
        quota = quota.with_burst(1 + rng.next(count * 2)).unwrap();
    }
    // A clock on a whole hour, so that where the windows turn, and so a seed's run, is
    // the same on every machine and every run.
    let clock = Clock::with_unix_time(Duration::from_secs(1_800_000_000));
    let store = Arc::new(MemoryStore::with_algorithm(algorithm.clone(), quota).with_clock(clock));
    let max_cost = store.max_cost(&());
    let cost = 1 + rng.next(max_cost.min(3));
    let ok = tower::service_fn(|_: http::Request<()>| async {
        Ok::<_, Infallible>(http::Response::new(Body::new()))
    });
    let svc = HttpRateLimitLayer::with_shared_store(Arc::clone(&store), GlobalKey)
        .cost(cost)
        .layer(ok);
    let limit = store.peek_now(0).unwrap().snapshot().limit;
    let ctx = format!("{name} {quota:?} cost {cost}");
    for step in 0..60 {
        let gap = rng.next(period.as_millis() as u64 * 2 / 3 + 1);
        tokio::time::advance(Duration::from_millis(gap * rng.next(2))).await;
        let reply = send(&svc).await;
        if reply.status == 429 {
            let ra = reply.retry_after.unwrap_or(0);
            if ra == 0 {
                problems.push(format!("{ctx} step {step}: 429 without Retry-After >= 1"));
            }
            if reply.t < ra && cost == 1 {
                problems.push(format!(
                    "{ctx} step {step}: 429 t={} < Retry-After {ra}",
                    reply.t
                ));
            }
            if rng.next(2) == 0 {
                tokio::time::advance(Duration::from_secs(ra)).await;
                let again = send(&svc).await;
                if again.status != 200 {
                    problems.push(format!(
                        "{ctx} step {step}: retried after Retry-After {ra} s and refused again"
                    ));
                }
            }
        } else if reply.status == 200 {
            let own = reply.r.saturating_sub(reply.q.saturating_sub(limit));
            if rng.next(3) == 0 {
                // silent for t seconds: full again
                tokio::time::advance(Duration::from_secs(reply.t) + Duration::from_micros(1)).await;
                let snap = store.peek_now(0).unwrap().snapshot();
                if snap.remaining < snap.limit {
                    problems.push(format!(
                        "{ctx} step {step}: t={} s after r={} the bucket holds {} of {}",
                        reply.t, reply.r, snap.remaining, snap.limit
                    ));
                }
            } else if own >= cost {
                let next = send(&svc).await;
                if next.status != 200 {
                    problems.push(format!(
                        "{ctx} step {step}: r={} (q={}, limit {limit}) but the next request of cost {cost} refused",
                        reply.r, reply.q
                    ));
                }
            }
        } else {
            problems.push(format!("{ctx} step {step}: status {}", reply.status));
        }
    }
    problems
}

#[tokio::test(start_paused = true)]
async fn fields_agree_with_the_store() {
    let cases: u64 = std::env::var("FIELDS_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mut problems = Vec::new();
    for seed in 0..cases {
        problems.extend(run(Gcra, "gcra", seed).await);
        problems.extend(run(LeakyBucket, "leaky", seed).await);
        problems.extend(run(FixedWindow, "fixed", seed).await);
        problems.extend(run(SlidingCounter, "sliding-counter", seed).await);
        problems.extend(run(SlidingLog, "sliding-log", seed).await);
    }
    let shown: Vec<_> = problems.iter().take(25).collect();
    assert!(
        problems.is_empty(),
        "{} problems, first: {shown:#?}",
        problems.len()
    );
}
