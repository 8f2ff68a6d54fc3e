//! A long mutation-fuzz run of the parser, kept out of CI (`#[ignore]`).
//!
//! `cargo fuzz` needs a nightly toolchain, which this project's CI does not have, so
//! this is the fuzz target: it mutates documented header values (bit flips, byte
//! inserts, deletions, splices between values, header-name swaps) with a seeded RNG,
//! parses each input, and checks the same invariants as the property tests.
//!
//! ```text
//! FEEDBACK_FUZZ_ITERS=5000000 FEEDBACK_FUZZ_SEED=1 \
//!   cargo test -p tower-ratelimit-http --release --test feedback_fuzz -- --ignored --nocapture
//! ```

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, UNIX_EPOCH};
use tower_ratelimit_http::feedback::{Classify, DefaultClassifier, FeedbackParser, Profile};

const SEEDS: &[(&str, &str)] = &[
    ("retry-after", "120"),
    ("retry-after", "2.0"),
    ("retry-after", "Thu, 01 Jan 2026 00:00:05 GMT"),
    ("retry-after", "Thursday, 01-Jan-26 00:00:07 GMT"),
    ("retry-after", "Thu Jan  1 00:00:09 2026"),
    ("date", "Thu, 01 Jan 2026 00:00:00 GMT"),
    ("retry-after-ms", "1500"),
    ("x-amz-retry-after", "2500"),
    ("grpc-retry-pushback-ms", "300"),
    ("grpc-status", "8"),
    (
        "ratelimit-policy",
        r#""burst";q=100;w=60,"daily";q=1000;w=86400"#,
    ),
    ("ratelimit", r#""burst";r=0;t=30;pk=:cHsdsRa894==:"#),
    ("ratelimit", "limit=100, remaining=0, reset=5"),
    ("ratelimit-limit", r#"10, 10;w=1;name="per-ip""#),
    ("ratelimit-remaining", "0"),
    ("ratelimit-reset", "1767225660"),
    ("ratelimit-resettime", "Thu, 01 Jan 2026 00:01:00 GMT"),
    ("x-ratelimit-limit", "60"),
    ("x-ratelimit-remaining", "596.0"),
    ("x-ratelimit-reset", "1767225601.337"),
    ("x-ratelimit-reset-after", "1.337"),
    ("x-ratelimit-bucket", "abcd1234"),
    ("x-ratelimit-global", "true"),
    ("x-ratelimit-used", "4"),
    ("x-rate-limit-reset", "1767225645"),
    ("x-ratelimit-reset-tokens", "6m0s"),
    ("x-ratelimit-remaining-tokens", "0"),
    ("anthropic-ratelimit-requests-remaining", "0"),
    (
        "anthropic-ratelimit-requests-reset",
        "2026-01-01T01:00:12.5+01:00",
    ),
    ("x-shopify-shop-api-call-limit", "32/40"),
    ("stripe-should-retry", "false"),
    ("x-should-retry", "true"),
];

fn mutate(rng: &mut StdRng, value: &mut Vec<u8>) {
    for _ in 0..rng.random_range(1..4) {
        match rng.random_range(0..6) {
            0 if !value.is_empty() => {
                let i = rng.random_range(0..value.len());
                value[i] ^= 1 << rng.random_range(0..8);
            }
            1 => {
                let i = rng.random_range(0..=value.len());
                value.insert(i, rng.random());
            }
            2 if !value.is_empty() => {
                let i = rng.random_range(0..value.len());
                value.remove(i);
            }
            3 => {
                let (_, other) = SEEDS[rng.random_range(0..SEEDS.len())];
                let at = rng.random_range(0..=value.len());
                let from = rng.random_range(0..=other.len());
                value.splice(at..at, other.as_bytes()[from..].iter().copied());
            }
            4 => {
                let i = rng.random_range(0..=value.len());
                let digits = b"0123456789999999999";
                value.splice(i..i, digits.iter().copied().take(rng.random_range(1..19)));
            }
            _ => value.truncate(rng.random_range(0..=value.len())),
        }
    }
    value.retain(|b| *b == b'\t' || (*b >= 0x20 && *b != 0x7f));
    value.truncate(8192);
}

#[test]
#[ignore = "long fuzz run; see the module docs"]
fn fuzz_parser() {
    let iters: u64 = std::env::var("FEEDBACK_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = std::env::var("FEEDBACK_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut rng = StdRng::seed_from_u64(seed);
    let profiles = [
        Profile::Auto,
        Profile::GitHub,
        Profile::GitLab,
        Profile::Reddit,
        Profile::Discord,
    ];
    let cap = Duration::from_secs(300);
    let mut with_wait = 0u64;
    let mut over_cap = 0u64;
    for _ in 0..iters {
        let mut map = HeaderMap::new();
        for _ in 0..rng.random_range(1..6) {
            let (name, value) = SEEDS[rng.random_range(0..SEEDS.len())];
            let name = if rng.random_ratio(1, 8) {
                SEEDS[rng.random_range(0..SEEDS.len())].0
            } else {
                name
            };
            let mut value = value.as_bytes().to_vec();
            mutate(&mut rng, &mut value);
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_bytes(&value).expect("mutated value is cleaned"),
            );
        }
        let status = StatusCode::from_u16(rng.random_range(100..1000)).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(rng.random_range(0..4_000_000_000));
        let parser = FeedbackParser::new().profile(profiles[rng.random_range(0..profiles.len())]);
        let fb = parser.parse(status, &map, now);
        let _ = DefaultClassifier.classify(&fb);
        match fb.wait() {
            Ok(Some(wait)) => {
                assert!(
                    wait <= cap && wait >= FeedbackParser::DEFAULT_MIN_WAIT,
                    "{map:?}"
                );
                with_wait += 1;
            }
            Ok(None) => {}
            Err(e) => {
                assert!(e.wait > cap, "{map:?}");
                over_cap += 1;
            }
        }
    }
    println!("feedback fuzz: {iters} inputs (seed {seed}), {with_wait} with a wait, {over_cap} over the cap");
    assert!(with_wait > 0, "the mutator never produced a parseable wait");
}
