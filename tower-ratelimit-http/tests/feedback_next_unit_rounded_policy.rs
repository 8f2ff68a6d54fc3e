//! A token bucket whose advertised policy rounds its window up to whole seconds while
//! `q` stays the burst: `Quota::new(100, 199 s).with_burst(2)` says `q=2;w=4`, but a
//! unit takes 1.99 s. A client reads a drained bucket's next unit as
//! `t - (q - 1) × w / q`; with `t` the bare time until full that came out up to 10 ms
//! before the next unit, and an obedient client got 3 × 429 in 600 s (review 22,
//! finding 5). The server's `t` now carries the difference. Paused clock.

use std::convert::Infallible;
use std::time::{Duration, SystemTime};
use tower::{Layer, Service, ServiceExt};
use tower_ratelimit_core::algorithm::Gcra;
use tower_ratelimit_core::clock::Clock;
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::Quota;
use tower_ratelimit_http::feedback::FeedbackParser;
use tower_ratelimit_http::server::HttpRateLimitLayer;

#[derive(Debug, Default)]
struct Tally {
    allowed: usize,
    denied: usize,
}

/// One request at a time for `run`: after an allowed response with a spent quota it
/// waits exactly `next_unit_wait`, after a 429 exactly `wait`.
async fn obedient(store: MemoryStore<Gcra>, run: Duration) -> Tally {
    let mut server =
        HttpRateLimitLayer::global(store).layer(tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, Infallible>(http::Response::new(String::new()))
        }));
    let parser = FeedbackParser::new();
    let end = tokio::time::Instant::now() + run;
    let mut tally = Tally::default();
    while tokio::time::Instant::now() < end {
        let response = server
            .ready()
            .await
            .unwrap()
            .call(http::Request::new(()))
            .await
            .unwrap();
        let feedback = parser.parse(response.status(), response.headers(), SystemTime::now());
        let hold = if response.status() == http::StatusCode::TOO_MANY_REQUESTS {
            tally.denied += 1;
            feedback.wait().unwrap().unwrap()
        } else {
            tally.allowed += 1;
            match feedback.is_exhausted() {
                true => feedback.next_unit_wait().unwrap().unwrap(),
                false => Duration::ZERO,
            }
        };
        tokio::time::sleep(hold.max(Duration::from_millis(1))).await;
    }
    tally
}

#[tokio::test(start_paused = true)]
async fn an_obedient_client_is_never_refused_by_a_rounded_policy() {
    let run = Duration::from_secs(600);
    // (quota, its policy): windows rounded up from 3.98 s and 8.97 s.
    for (count, period, burst, policy) in [(100, 199, 2, "q=2;w=4"), (100, 299, 3, "q=3;w=9")] {
        let quota = Quota::new(count, Duration::from_secs(period))
            .unwrap()
            .with_burst(burst)
            .unwrap();
        let advertised = HttpRateLimitLayer::global(MemoryStore::new(quota))
            .layer(tower::service_fn(|_: http::Request<()>| async {
                Ok::<_, Infallible>(http::Response::new(String::new()))
            }))
            .oneshot(http::Request::new(()))
            .await
            .unwrap()
            .headers()["ratelimit-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(advertised, format!(r#""default";{policy}"#));
        for phase_ms in [0u64, 10, 500, 990] {
            let clock = Clock::with_unix_time(Duration::from_millis(phase_ms));
            let store = MemoryStore::with_algorithm(Gcra, quota).with_clock(clock);
            let tally = obedient(store, run).await;
            println!("{policy} phase {phase_ms} ms: {tally:?}");
            assert_eq!(tally.denied, 0, "{policy} phase {phase_ms} ms: {tally:?}");
            // The quota's rate, less what whole-second holds cost: at least 90 % of it.
            let rate = run.as_secs_f64() * count as f64 / period as f64;
            assert!(
                tally.allowed as f64 >= 0.9 * rate,
                "{policy} phase {phase_ms} ms: {tally:?} of {rate:.0}"
            );
        }
    }
}
