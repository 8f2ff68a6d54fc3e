//! Property tests: whatever bytes a server sends, the parser never panics, a wait it
//! returns lies within `[floor, cap]`, and a wait over the cap is an error.

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use proptest::prelude::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
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
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-reset-after",
    "x-ratelimit-used",
    "x-ratelimit-bucket",
    "x-ratelimit-global",
    "x-ratelimit-scope",
    "x-rate-limit-reset",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "x-shopify-shop-api-call-limit",
    "x-should-retry",
    "stripe-should-retry",
];

fn header_value(raw: Vec<u8>) -> HeaderValue {
    // Only bytes an HTTP stack would deliver: no control characters but tab.
    let clean: Vec<u8> = raw
        .into_iter()
        .filter(|b| *b == b'\t' || (*b >= 0x20 && *b != 0x7f))
        .collect();
    HeaderValue::from_bytes(&clean).expect("filtered bytes are a valid value")
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        "[0-9a-zA-Z .,;=:\"?*()+/-]{0,48}".prop_map(String::into_bytes),
        "[0-9]{1,30}(\\.[0-9]{1,12})?".prop_map(String::into_bytes),
        r#""[a-z]{1,5}";[rqtw]=[0-9]{1,20}(;[rqtw]=-?[0-9]{1,20}){0,3}"#.prop_map(String::into_bytes),
        "[0-9]{1,3}(h|m|s|ms|us|ns)([0-9]{1,3}(m|s|ms))?".prop_map(String::into_bytes),
        "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9](\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2})".prop_map(String::into_bytes),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(usize, Vec<u8>)>> {
    proptest::collection::vec((0..NAMES.len(), value()), 0..12)
}

fn profile() -> impl Strategy<Value = Profile> {
    prop_oneof![
        Just(Profile::Auto),
        Just(Profile::GitHub),
        Just(Profile::GitLab),
        Just(Profile::Reddit),
        Just(Profile::Discord),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn any_bytes_never_panic_and_respect_the_cap(
        list in headers(),
        status in 100u16..1000,
        cap_ms in 0u64..1_000_000,
        floor_ms in 0u64..5_000,
        now_secs in 0u64..4_000_000_000,
        profile in profile(),
    ) {
        let mut map = HeaderMap::new();
        for (i, raw) in list {
            map.append(HeaderName::from_static(NAMES[i]), header_value(raw));
        }
        let cap = Duration::from_millis(cap_ms);
        let parser = FeedbackParser::new()
            .max_wait(cap)
            .min_wait(Duration::from_millis(floor_ms))
            .profile(profile);
        let now = UNIX_EPOCH + Duration::from_secs(now_secs);
        let fb = parser.parse(StatusCode::from_u16(status).unwrap(), &map, now);
        let _ = DefaultClassifier.classify(&fb);
        match fb.wait() {
            Ok(Some(wait)) => {
                prop_assert!(wait <= cap, "{wait:?} over cap {cap:?}");
                prop_assert!(wait >= Duration::from_millis(floor_ms).min(cap));
            }
            Ok(None) => {}
            Err(over) => prop_assert!(over.wait > cap),
        }
        // The next unit is never later than the wait, and keeps its floor and cap.
        match (fb.next_unit_wait(), fb.wait()) {
            (Ok(Some(next)), wait) => {
                prop_assert!(next <= cap && next >= Duration::from_millis(floor_ms).min(cap));
                if let Ok(Some(wait)) = wait {
                    prop_assert!(next <= wait);
                }
            }
            (Ok(None), wait) => prop_assert_eq!(wait, Ok(None)),
            (Err(over), wait) => prop_assert_eq!(wait, Err(over)),
        }
        prop_assert!(fb.dimensions.len() <= 32 && fb.policies.len() <= 32);
        prop_assert!(fb.partition.key.as_ref().is_none_or(|k| k.len() <= 256));
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn delay_seconds_are_read_exactly(secs in 0u64..1_000_000, cap_s in 1u64..100_000) {
        let mut map = HeaderMap::new();
        map.insert("retry-after", HeaderValue::from(secs));
        let parser = FeedbackParser::new().max_wait(Duration::from_secs(cap_s));
        let fb = parser.parse(StatusCode::TOO_MANY_REQUESTS, &map, SystemTime::now());
        if secs > cap_s {
            prop_assert_eq!(fb.wait().unwrap_err().wait, Duration::from_secs(secs));
        } else {
            let expected = Duration::from_secs(secs).max(FeedbackParser::DEFAULT_MIN_WAIT);
            prop_assert_eq!(fb.wait(), Ok(Some(expected)));
        }
    }

    #[test]
    fn dates_are_measured_against_the_response_date(
        server_secs in 0u64..100_000_000_000,
        local_secs in 0u64..100_000_000_000,
        ahead in 0u64..300,
    ) {
        // Any server clock, any local clock: the wait is the distance between the two
        // server-side instants.
        let server = UNIX_EPOCH + Duration::from_secs(server_secs % 253_402_300_000);
        let mut map = HeaderMap::new();
        map.insert("date", HeaderValue::from_str(&httpdate::fmt_http_date(server)).unwrap());
        let later = httpdate::fmt_http_date(server + Duration::from_secs(ahead));
        map.insert("retry-after", HeaderValue::from_str(&later).unwrap());
        let local = UNIX_EPOCH + Duration::from_secs(local_secs);
        let fb = FeedbackParser::new().parse(StatusCode::TOO_MANY_REQUESTS, &map, local);
        let expected = Duration::from_secs(ahead).max(FeedbackParser::DEFAULT_MIN_WAIT);
        prop_assert_eq!(fb.wait(), Ok(Some(expected)));
    }

    /// Against a drained token bucket that sends its time until full rounded up to
    /// whole seconds (this crate's server), the shortened hold is never before the
    /// next unit: the client is not refused for coming early.
    #[test]
    fn a_drained_buckets_next_unit_is_never_early(
        q in 1u64..100_000,
        w in 1u64..100_000,
        // Where the next unit is, as a fraction of one unit's interval.
        frac in 1u64..=1_000_000,
    ) {
        let w_ns = u128::from(w) * 1_000_000_000;
        let unit = w_ns / u128::from(q);
        let next = (unit * u128::from(frac) / 1_000_000).max(1);
        let full = w_ns - unit + next;
        let t = full.div_ceil(1_000_000_000);
        let mut map = HeaderMap::new();
        map.insert("ratelimit-policy", HeaderValue::from_str(&format!(r#""p";q={q};w={w}"#)).unwrap());
        map.insert("ratelimit", HeaderValue::from_str(&format!(r#""p";r=0;t={t}"#)).unwrap());
        let parser = FeedbackParser::new().max_wait(Duration::from_secs(200_000)).min_wait(Duration::ZERO);
        let fb = parser.parse(StatusCode::OK, &map, SystemTime::now());
        let hold = fb.next_unit_wait().unwrap().unwrap().as_nanos();
        prop_assert!(hold >= next, "q={q} w={w} t={t}: hold {hold} ns, next unit at {next} ns");
        // And at most a second (the rounding of t) and a nanosecond per unit late.
        prop_assert!(hold <= next + 1_000_000_000 + u128::from(q), "hold {hold} ns, next {next} ns");
    }
}
