//! Table tests: header examples from the public documentation of each format, each
//! with the wait, source and counts a careful client must read from it.

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tower_ratelimit_http::feedback::{
    Class, Classify, DefaultClassifier, Feedback, FeedbackParser, Profile, QuotaUnit, WaitSource,
};

/// 2026-01-01T00:00:00Z, a Thursday: the local clock in every vector.
const NOW_EPOCH: u64 = 1_767_225_600;
const DATE_NOW: &str = "Thu, 01 Jan 2026 00:00:00 GMT";

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_EPOCH)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Wait {
    None,
    Ms(u64),
    OverCap,
}

struct Case {
    name: &'static str,
    status: u16,
    headers: Vec<(&'static str, Vec<u8>)>,
    profile: Profile,
    wait: Option<Wait>,
    source: Option<WaitSource>,
    limit: Option<Option<u64>>,
    remaining: Option<Option<u64>>,
    reset_ms: Option<u64>,
    class: Option<Class>,
    do_not_retry: Option<bool>,
    partition_key: Option<Option<&'static [u8]>>,
    global: Option<bool>,
    policies: Option<usize>,
    extra: Option<fn(&Feedback)>,
}

fn case(name: &'static str, status: u16, headers: &[(&'static str, &str)]) -> Case {
    Case {
        name,
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (*k, v.as_bytes().to_vec()))
            .collect(),
        profile: Profile::Auto,
        wait: None,
        source: None,
        limit: None,
        remaining: None,
        reset_ms: None,
        class: None,
        do_not_retry: None,
        partition_key: None,
        global: None,
        policies: None,
        extra: None,
    }
}

impl Case {
    fn wait_ms(mut self, ms: u64, source: WaitSource) -> Self {
        self.wait = Some(Wait::Ms(ms));
        self.source = Some(source);
        self
    }
    fn no_wait(mut self) -> Self {
        self.wait = Some(Wait::None);
        self
    }
    fn over_cap(mut self, source: WaitSource) -> Self {
        self.wait = Some(Wait::OverCap);
        self.source = Some(source);
        self
    }
    fn limit(mut self, limit: Option<u64>) -> Self {
        self.limit = Some(limit);
        self
    }
    fn remaining(mut self, remaining: Option<u64>) -> Self {
        self.remaining = Some(remaining);
        self
    }
    fn reset_ms(mut self, ms: u64) -> Self {
        self.reset_ms = Some(ms);
        self
    }
    fn class(mut self, class: Class) -> Self {
        self.class = Some(class);
        self
    }
    fn do_not_retry(mut self, flag: bool) -> Self {
        self.do_not_retry = Some(flag);
        self
    }
    fn key(mut self, key: Option<&'static [u8]>) -> Self {
        self.partition_key = Some(key);
        self
    }
    fn global(mut self, global: bool) -> Self {
        self.global = Some(global);
        self
    }
    fn policies(mut self, n: usize) -> Self {
        self.policies = Some(n);
        self
    }
    fn profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }
    fn raw(mut self, name: &'static str, value: &[u8]) -> Self {
        self.headers.push((name, value.to_vec()));
        self
    }
    fn extra(mut self, check: fn(&Feedback)) -> Self {
        self.extra = Some(check);
        self
    }

    fn run(&self) {
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_bytes(value).expect("test vector is a valid header value"),
            );
        }
        let status = StatusCode::from_u16(self.status).unwrap();
        let parser = FeedbackParser::new().profile(self.profile);
        let fb = parser.parse(status, &headers, now());
        let n = self.name;
        if let Some(wait) = self.wait {
            let got = match fb.wait() {
                Ok(None) => Wait::None,
                Ok(Some(d)) => Wait::Ms(d.as_millis() as u64),
                Err(_) => Wait::OverCap,
            };
            assert_eq!(got, wait, "{n}: wait ({fb:?})");
            assert_eq!(fb.wait_source(), self.source, "{n}: source");
        }
        if let Some(limit) = self.limit {
            assert_eq!(fb.limit, limit, "{n}: limit ({fb:?})");
        }
        if let Some(remaining) = self.remaining {
            assert_eq!(fb.remaining, remaining, "{n}: remaining ({fb:?})");
        }
        if let Some(reset) = self.reset_ms {
            assert_eq!(
                fb.reset.map(|d| d.as_millis() as u64),
                Some(reset),
                "{n}: reset ({fb:?})"
            );
        }
        if let Some(class) = self.class {
            assert_eq!(DefaultClassifier.classify(&fb), class, "{n}: class");
        }
        if let Some(flag) = self.do_not_retry {
            assert_eq!(fb.do_not_retry, flag, "{n}: do_not_retry");
        }
        if let Some(key) = self.partition_key {
            assert_eq!(fb.partition.key.as_deref(), key, "{n}: partition key");
        }
        if let Some(global) = self.global {
            assert_eq!(fb.partition.global, global, "{n}: global");
        }
        if let Some(count) = self.policies {
            assert_eq!(
                fb.policies.len(),
                count,
                "{n}: policies ({:?})",
                fb.policies
            );
        }
        if let Some(check) = self.extra {
            check(&fb);
        }
    }
}

use WaitSource::{AbsoluteReset, Milliseconds, RateLimitPolicy, RetryAfter, VendorDelta};

fn vectors() -> Vec<Case> {
    vec![
        // RFC 9110 §10.2.3 examples.
        case("rfc9110 delay-seconds", 429, &[("retry-after", "120")])
            .wait_ms(120_000, RetryAfter)
            .class(Class::Throttled),
        case(
            "rfc9110 date in the past",
            503,
            &[("retry-after", "Fri, 31 Dec 1999 23:59:59 GMT")],
        )
        .wait_ms(100, RetryAfter)
        .class(Class::Throttled),
        case("rfc6585 429 example", 429, &[("retry-after", "3600")]).over_cap(RetryAfter),
        // The three HTTP-date forms, against the response Date.
        case(
            "imf-fixdate",
            429,
            &[
                ("date", DATE_NOW),
                ("retry-after", "Thu, 01 Jan 2026 00:00:05 GMT"),
            ],
        )
        .wait_ms(5_000, RetryAfter),
        case(
            "rfc850 date",
            429,
            &[
                ("date", DATE_NOW),
                ("retry-after", "Thursday, 01-Jan-26 00:00:07 GMT"),
            ],
        )
        .wait_ms(7_000, RetryAfter),
        case(
            "asctime date",
            429,
            &[
                ("date", DATE_NOW),
                ("retry-after", "Thu Jan  1 00:00:09 2026"),
            ],
        )
        .wait_ms(9_000, RetryAfter),
        case(
            "date without Date header uses now",
            429,
            &[("retry-after", "Thu, 01 Jan 2026 00:00:04 GMT")],
        )
        .wait_ms(4_000, RetryAfter),
        // A server clock one hour ahead / behind: the wait is still 2 s.
        case(
            "skewed Date ahead",
            429,
            &[
                ("date", "Thu, 01 Jan 2026 01:00:00 GMT"),
                ("retry-after", "Thu, 01 Jan 2026 01:00:02 GMT"),
            ],
        )
        .wait_ms(2_000, RetryAfter),
        case(
            "skewed Date behind",
            429,
            &[
                ("date", "Wed, 31 Dec 2025 23:00:00 GMT"),
                ("retry-after", "Wed, 31 Dec 2025 23:00:02 GMT"),
            ],
        )
        .wait_ms(2_000, RetryAfter),
        case(
            "invalid Date falls back to now",
            429,
            &[
                ("date", "yesterday"),
                ("retry-after", "Thu, 01 Jan 2026 00:00:03 GMT"),
            ],
        )
        .wait_ms(3_000, RetryAfter),
        // Leniency and hostility.
        case(
            "decimal seconds (Shopify)",
            429,
            &[
                ("retry-after", "2.0"),
                ("x-shopify-shop-api-call-limit", "40/40"),
            ],
        )
        .wait_ms(2_000, RetryAfter)
        .limit(Some(40))
        .remaining(Some(0)),
        case(
            "shopify not exhausted",
            200,
            &[("x-shopify-shop-api-call-limit", "32/40")],
        )
        .no_wait()
        .limit(Some(40))
        .remaining(Some(8)),
        case("whitespace", 429, &[("retry-after", "  5\t")]).wait_ms(5_000, RetryAfter),
        case("garbage ignored", 429, &[("retry-after", "soon")])
            .no_wait()
            .class(Class::Throttled),
        case("negative ignored", 429, &[("retry-after", "-5")]).no_wait(),
        case("zero is floored", 429, &[("retry-after", "0")]).wait_ms(100, RetryAfter),
        case(
            "huge saturates then caps",
            429,
            &[("retry-after", "99999999999999999999999999999")],
        )
        .over_cap(RetryAfter),
        case("draft security example", 429, &[("retry-after", "1000000")]).over_cap(RetryAfter),
        case(
            "several lines: longest",
            429,
            &[("retry-after", "3"), ("retry-after", "8")],
        )
        .wait_ms(8_000, RetryAfter),
        case(
            "non-ascii value ignored, rest read",
            429,
            &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "12")],
        )
        .raw("retry-after", b"5\xff")
        .wait_ms(12_000, VendorDelta),
        // Millisecond headers come first.
        case(
            "retry-after-ms beats retry-after",
            429,
            &[("retry-after-ms", "1500"), ("retry-after", "2")],
        )
        .wait_ms(1_500, Milliseconds),
        case(
            "aws x-amz-retry-after",
            503,
            &[("x-amz-retry-after", "2500")],
        )
        .wait_ms(2_500, Milliseconds)
        .class(Class::Throttled),
        case(
            "grpc resource exhausted with pushback",
            200,
            &[("grpc-status", "8"), ("grpc-retry-pushback-ms", "300")],
        )
        .wait_ms(300, Milliseconds)
        .class(Class::Throttled),
        case(
            "grpc negative pushback: do not retry",
            200,
            &[("grpc-status", "8"), ("grpc-retry-pushback-ms", "-1")],
        )
        .no_wait()
        .do_not_retry(true),
        case("grpc unavailable", 200, &[("grpc-status", "14")]).class(Class::Transient),
        // IETF draft -08 and later (Structured Fields).
        case(
            "ietf-08 exhausted policy",
            429,
            &[
                ("ratelimit-policy", r#""burst";q=100;w=60"#),
                ("ratelimit", r#""burst";r=0;t=30"#),
            ],
        )
        .wait_ms(30_000, RateLimitPolicy)
        .limit(Some(100))
        .remaining(Some(0))
        .reset_ms(30_000)
        .policies(1),
        case(
            "ietf-08 two exhausted: longest t",
            429,
            &[
                (
                    "ratelimit-policy",
                    r#""burst";q=100;w=60,"daily";q=1000;w=86400"#,
                ),
                ("ratelimit", r#""burst";r=0;t=30,"daily";r=0;t=250"#),
            ],
        )
        .wait_ms(250_000, RateLimitPolicy)
        .limit(Some(1000))
        .policies(2)
        .extra(|fb| {
            let daily = fb
                .policies
                .iter()
                .find(|p| p.name.as_deref() == Some("daily"))
                .unwrap();
            assert_eq!(daily.window, Some(Duration::from_secs(86_400)));
            assert_eq!(daily.quota, 1000);
        }),
        case(
            "ietf-08 split over lines",
            429,
            &[
                ("ratelimit-policy", r#""burst";q=100;w=60"#),
                ("ratelimit-policy", r#""daily";q=1000;w=86400"#),
                ("ratelimit", r#""burst";r=40;t=10"#),
                ("ratelimit", r#""daily";r=0;t=200"#),
            ],
        )
        .wait_ms(200_000, RateLimitPolicy)
        .remaining(Some(0))
        .limit(Some(1000))
        .policies(2),
        case(
            "ietf-08 only one dimension exhausted",
            200,
            &[("ratelimit", r#""burst";r=0;t=20, "daily";r=500;t=80000"#)],
        )
        .wait_ms(20_000, RateLimitPolicy),
        case(
            "ietf-08 not exhausted: no wait",
            200,
            &[
                ("ratelimit-policy", r#""default";q=100;w=60"#),
                ("ratelimit", r#""default";r=50;t=30"#),
            ],
        )
        .no_wait()
        .remaining(Some(50))
        .limit(Some(100)),
        case(
            "ietf-08 partition key",
            429,
            &[
                (
                    "ratelimit-policy",
                    r#""peruser";q=100;w=60;pk=:cHsdsRa894==:"#,
                ),
                ("ratelimit", r#""peruser";r=0;t=10;pk=:cHsdsRa894==:"#),
            ],
        )
        .wait_ms(10_000, RateLimitPolicy)
        .key(Some(b"\x70\x7b\x1d\xb1\x16\xbc\xf7")),
        case(
            "ietf-08 quota units",
            200,
            &[(
                "ratelimit-policy",
                r#""bytes";q=65535;qu="content-bytes";w=10, "conc";q=4;qu="concurrent-requests""#,
            )],
        )
        .policies(2)
        .extra(|fb| {
            assert_eq!(fb.policies[0].unit, QuotaUnit::ContentBytes);
            assert_eq!(fb.policies[1].unit, QuotaUnit::ConcurrentRequests);
            assert_eq!(fb.policies[1].window, None);
        }),
        case(
            "retry-after beats t",
            429,
            &[("retry-after", "5"), ("ratelimit", r#""burst";r=0;t=30"#)],
        )
        .wait_ms(5_000, RetryAfter),
        case(
            "cloudflare api (-08 syntax)",
            429,
            &[
                ("ratelimit", r#""default";r=0;t=5"#),
                ("ratelimit-policy", r#""default";q=1200;w=300"#),
            ],
        )
        .wait_ms(5_000, RateLimitPolicy)
        .limit(Some(1200)),
        case(
            "malformed ratelimit ignored",
            429,
            &[("ratelimit", r#""burst";r="#)],
        )
        .no_wait()
        .remaining(None),
        // Older IETF revisions.
        case(
            "ietf-07 dictionary",
            429,
            &[("ratelimit", "limit=100, remaining=0, reset=5")],
        )
        .wait_ms(5_000, RateLimitPolicy)
        .limit(Some(100))
        .remaining(Some(0)),
        case(
            "ietf-06 trio",
            429,
            &[
                ("ratelimit-limit", "100"),
                ("ratelimit-remaining", "0"),
                ("ratelimit-reset", "50"),
            ],
        )
        .wait_ms(50_000, RateLimitPolicy)
        .limit(Some(100)),
        case(
            "ietf-06 policy and limit list",
            200,
            &[
                ("ratelimit-limit", "10, 10;w=1, 50;w=60"),
                ("ratelimit-policy", "10;w=1, 50;w=60"),
                ("ratelimit-remaining", "9"),
            ],
        )
        .no_wait()
        .limit(Some(10))
        .policies(4),
        case(
            "envoy policy list in limit",
            429,
            &[
                ("x-ratelimit-limit", r#"10, 10;w=1;name="per-ip""#),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1"),
            ],
        )
        .wait_ms(1_000, VendorDelta)
        .limit(Some(10))
        .policies(1)
        .extra(|fb| assert_eq!(fb.policies[0].name.as_deref(), Some("per-ip"))),
        // GitHub.
        case(
            "github primary limit",
            403,
            &[
                ("date", DATE_NOW),
                ("x-ratelimit-limit", "60"),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-used", "60"),
                ("x-ratelimit-reset", "1767225630"),
                ("x-ratelimit-resource", "core"),
            ],
        )
        .wait_ms(30_000, AbsoluteReset)
        .class(Class::Throttled)
        .limit(Some(60)),
        case(
            "github secondary limit",
            403,
            &[("retry-after", "60"), ("x-ratelimit-remaining", "4999")],
        )
        .wait_ms(60_000, RetryAfter)
        .class(Class::Throttled),
        case(
            "github plain forbidden",
            403,
            &[
                ("x-ratelimit-remaining", "4999"),
                ("x-ratelimit-resource", "core"),
            ],
        )
        .no_wait()
        .class(Class::Failure),
        case(
            "github ok with skewed Date",
            200,
            &[
                ("date", "Thu, 01 Jan 2026 01:00:00 GMT"),
                ("x-ratelimit-limit", "5000"),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1767229210"),
            ],
        )
        .profile(Profile::GitHub)
        .wait_ms(10_000, AbsoluteReset)
        .class(Class::Success),
        // X (Twitter).
        case(
            "x rate-limit epoch",
            429,
            &[
                ("date", DATE_NOW),
                ("x-rate-limit-limit", "900"),
                ("x-rate-limit-remaining", "0"),
                ("x-rate-limit-reset", "1767225645"),
            ],
        )
        .wait_ms(45_000, AbsoluteReset)
        .limit(Some(900)),
        // Stripe.
        case(
            "stripe should-retry false",
            429,
            &[("stripe-should-retry", "false")],
        )
        .do_not_retry(true)
        .no_wait(),
        case(
            "stripe should-retry true",
            409,
            &[("stripe-should-retry", "true")],
        )
        .do_not_retry(false)
        .extra(|fb| assert_eq!(fb.should_retry, Some(true))),
        // OpenAI.
        case(
            "openai both exhausted: longest",
            429,
            &[
                ("x-ratelimit-limit-requests", "60"),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", "1s"),
                ("x-ratelimit-limit-tokens", "150000"),
                ("x-ratelimit-remaining-tokens", "0"),
                ("x-ratelimit-reset-tokens", "6m0s"),
            ],
        )
        .over_cap(VendorDelta)
        .extra(|fb| assert_eq!(fb.wait().unwrap_err().wait, Duration::from_secs(360))),
        case(
            "openai tokens exhausted",
            429,
            &[
                ("x-ratelimit-limit-requests", "60"),
                ("x-ratelimit-remaining-requests", "59"),
                ("x-ratelimit-reset-requests", "1s"),
                ("x-ratelimit-limit-tokens", "150000"),
                ("x-ratelimit-remaining-tokens", "0"),
                ("x-ratelimit-reset-tokens", "7.66s"),
            ],
        )
        .wait_ms(7_660, VendorDelta)
        .limit(Some(150_000)),
        case(
            "openai retry-after-ms and x-should-retry",
            429,
            &[
                ("retry-after-ms", "20"),
                ("x-should-retry", "true"),
                ("x-ratelimit-remaining-tokens", "0"),
                ("x-ratelimit-reset-tokens", "12ms"),
            ],
        )
        .wait_ms(100, Milliseconds)
        .do_not_retry(false),
        case(
            "openai x-should-retry false",
            500,
            &[("x-should-retry", "false")],
        )
        .do_not_retry(true),
        // Anthropic.
        case(
            "anthropic requests exhausted",
            429,
            &[
                ("date", DATE_NOW),
                ("anthropic-ratelimit-requests-limit", "50"),
                ("anthropic-ratelimit-requests-remaining", "0"),
                ("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:40Z"),
                ("anthropic-ratelimit-tokens-limit", "40000"),
                ("anthropic-ratelimit-tokens-remaining", "1000"),
                ("anthropic-ratelimit-tokens-reset", "2026-01-01T00:00:02Z"),
            ],
        )
        .wait_ms(40_000, AbsoluteReset)
        .limit(Some(50))
        .remaining(Some(0)),
        case(
            "anthropic offset and fraction",
            429,
            &[
                ("date", DATE_NOW),
                ("anthropic-ratelimit-output-tokens-remaining", "0"),
                (
                    "anthropic-ratelimit-output-tokens-reset",
                    "2026-01-01T01:00:12.5+01:00",
                ),
            ],
        )
        .wait_ms(12_500, AbsoluteReset),
        case(
            "anthropic retry-after first",
            429,
            &[
                ("retry-after", "40"),
                ("anthropic-ratelimit-requests-remaining", "0"),
                ("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:59Z"),
            ],
        )
        .wait_ms(40_000, RetryAfter),
        // Discord.
        case(
            "discord bucket",
            429,
            &[
                ("date", DATE_NOW),
                ("x-ratelimit-limit", "5"),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1767225601.337"),
                ("x-ratelimit-reset-after", "1.337"),
                ("x-ratelimit-bucket", "abcd1234"),
            ],
        )
        .wait_ms(1_337, VendorDelta)
        .key(Some(b"abcd1234"))
        .global(false),
        case(
            "discord reset epoch only",
            200,
            &[
                ("date", DATE_NOW),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1767225602.5"),
            ],
        )
        .profile(Profile::Discord)
        .wait_ms(2_500, AbsoluteReset),
        case(
            "discord global",
            429,
            &[
                ("retry-after", "65"),
                ("x-ratelimit-global", "true"),
                ("x-ratelimit-scope", "global"),
            ],
        )
        .wait_ms(65_000, RetryAfter)
        .global(true),
        case(
            "discord shared scope",
            429,
            &[
                ("x-ratelimit-scope", "shared"),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset-after", "3"),
                ("x-ratelimit-bucket", "feed"),
            ],
        )
        .wait_ms(3_000, VendorDelta)
        .global(false)
        .key(Some(b"feed")),
        // Reddit.
        case(
            "reddit remaining decimal",
            200,
            &[
                ("x-ratelimit-used", "4"),
                ("x-ratelimit-remaining", "596.0"),
                ("x-ratelimit-reset", "287"),
            ],
        )
        .no_wait()
        .limit(Some(600))
        .remaining(Some(596))
        .reset_ms(287_000),
        case(
            "reddit exhausted delta reset",
            429,
            &[
                ("x-ratelimit-used", "600"),
                ("x-ratelimit-remaining", "0.0"),
                ("x-ratelimit-reset", "287"),
            ],
        )
        .profile(Profile::Reddit)
        .wait_ms(287_000, VendorDelta),
        // GitLab.
        case(
            "gitlab epoch reset",
            429,
            &[
                ("date", DATE_NOW),
                ("ratelimit-limit", "60"),
                ("ratelimit-observed", "67"),
                ("ratelimit-remaining", "0"),
                ("ratelimit-reset", "1767225660"),
                ("ratelimit-resettime", "Thu, 01 Jan 2026 00:01:00 GMT"),
            ],
        )
        .wait_ms(60_000, AbsoluteReset)
        .limit(Some(60)),
        case(
            "gitlab resettime only",
            429,
            &[
                ("date", DATE_NOW),
                ("ratelimit-remaining", "0"),
                ("ratelimit-resettime", "Thu, 01 Jan 2026 00:00:30 GMT"),
            ],
        )
        .profile(Profile::GitLab)
        .wait_ms(30_000, AbsoluteReset),
        // Guessing by magnitude.
        case(
            "epoch milliseconds guess",
            429,
            &[
                ("date", DATE_NOW),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1767225605000"),
            ],
        )
        .wait_ms(5_000, AbsoluteReset),
        // Classification without headers.
        case("nginx limit_req 503", 503, &[])
            .no_wait()
            .class(Class::Transient),
        case("redirect with retry-after", 301, &[("retry-after", "10")]).class(Class::Success),
        case("plain 200", 200, &[])
            .no_wait()
            .class(Class::Success)
            .remaining(None),
        case("404 is failure", 404, &[]).class(Class::Failure),
        case(
            "413 with retry-after is temporary",
            413,
            &[("retry-after", "30")],
        )
        .wait_ms(30_000, RetryAfter)
        .class(Class::Transient),
        case("413 without retry-after", 413, &[]).class(Class::Failure),
    ]
}

#[test]
fn documented_vectors() {
    let vectors = vectors();
    assert!(vectors.len() >= 40, "only {} vectors", vectors.len());
    for v in &vectors {
        v.run();
    }
}

#[test]
fn cap_and_floor_are_configurable() {
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_static("30"));
    let strict = FeedbackParser::new().max_wait(Duration::from_secs(10));
    let err = strict
        .parse(StatusCode::TOO_MANY_REQUESTS, &headers, now())
        .wait()
        .unwrap_err();
    assert_eq!(err.wait, Duration::from_secs(30));
    assert_eq!(err.max_wait, Duration::from_secs(10));
    let boxed: Box<dyn std::error::Error + Send + Sync> = err.into();
    assert!(boxed.to_string().contains("30s"));

    headers.insert("retry-after", HeaderValue::from_static("0"));
    let floor = FeedbackParser::new().min_wait(Duration::from_secs(1));
    let fb = floor.parse(StatusCode::TOO_MANY_REQUESTS, &headers, now());
    assert_eq!(fb.wait(), Ok(Some(Duration::from_secs(1))));
}

#[test]
fn custom_classifier_replaces_the_rules() {
    let teapot_throttles = |fb: &Feedback| {
        if fb.status == StatusCode::IM_A_TEAPOT {
            Class::Throttled
        } else {
            DefaultClassifier.classify(fb)
        }
    };
    let fb = FeedbackParser::new().parse(StatusCode::IM_A_TEAPOT, &HeaderMap::new(), now());
    assert_eq!(teapot_throttles.classify(&fb), Class::Throttled);
    assert_eq!(DefaultClassifier.classify(&fb), Class::Failure);
}
