//! Fuzzes the rate-limit feedback parser: any header bytes, any status, any clock.
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run feedback_parse -- -max_total_time=300
//! ```
//!
//! Input layout: 2 bytes of status, 1 byte of profile, 4 bytes of local clock, then
//! fields separated by `0x00`, each a name-selector byte followed by the value bytes.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, UNIX_EPOCH};
use tower_ratelimit_http::feedback::{Classify, DefaultClassifier, FeedbackParser, Profile};

const NAMES: &[&str] = &[
    "retry-after",
    "retry-after-ms",
    "x-amz-retry-after",
    "grpc-retry-pushback-ms",
    "grpc-status",
    "date",
    "ratelimit",
    "ratelimit-policy",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "ratelimit-resettime",
    "ratelimit-observed",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-reset-after",
    "x-ratelimit-used",
    "x-ratelimit-resource",
    "x-ratelimit-bucket",
    "x-ratelimit-global",
    "x-ratelimit-scope",
    "x-rate-limit-limit",
    "x-rate-limit-remaining",
    "x-rate-limit-reset",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
    "x-shopify-shop-api-call-limit",
    "x-should-retry",
    "stripe-should-retry",
];

const PROFILES: [Profile; 5] = [
    Profile::Auto,
    Profile::GitHub,
    Profile::GitLab,
    Profile::Reddit,
    Profile::Discord,
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 7 {
        return;
    }
    let status = 100 + u16::from_le_bytes([data[0], data[1]]) % 900;
    let profile = PROFILES[usize::from(data[2]) % PROFILES.len()];
    let now = UNIX_EPOCH
        + Duration::from_secs(u64::from(u32::from_le_bytes([
            data[3], data[4], data[5], data[6],
        ])));
    let mut headers = HeaderMap::new();
    for field in data[7..].split(|b| *b == 0) {
        let Some((selector, value)) = field.split_first() else {
            continue;
        };
        let name = HeaderName::from_static(NAMES[usize::from(*selector) % NAMES.len()]);
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    let cap = FeedbackParser::DEFAULT_MAX_WAIT;
    let parser = FeedbackParser::new().profile(profile);
    let feedback = parser.parse(StatusCode::from_u16(status).unwrap(), &headers, now);
    let _ = DefaultClassifier.classify(&feedback);
    match feedback.wait() {
        Ok(Some(wait)) => assert!(wait <= cap && wait >= FeedbackParser::DEFAULT_MIN_WAIT),
        Ok(None) => {}
        Err(over) => assert!(over.wait > cap),
    }
    assert!(feedback.dimensions.len() <= 32 && feedback.policies.len() <= 32);
    assert!(feedback
        .partition
        .key
        .as_ref()
        .is_none_or(|k| k.len() <= 256));
});
