//! `Feedback::next_unit_wait` when a response has exhausted dimensions besides the IETF
//! item: the next request needs all of them back, so a vendor quota that resets after
//! the IETF bucket's next unit holds the client until it does (review 22, finding 4:
//! it held 6 s while `X-RateLimit-*` said none left for 30 s). A trio that only repeats
//! the IETF item's numbers (this crate's server's legacy trios) does not undo the
//! shortening.

use std::convert::Infallible;
use std::time::{Duration, SystemTime};
use tower::{service_fn, Layer, ServiceExt};
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::Quota;
use tower_ratelimit_http::feedback::FeedbackParser;
use tower_ratelimit_http::server::headers::HeaderStyle;
use tower_ratelimit_http::server::HttpRateLimitLayer;

const POLICY: (&str, &str) = ("ratelimit-policy", r#""burst";q=10;w=60"#);
const DRAINED: (&str, &str) = ("ratelimit", r#""burst";r=0;t=60"#);

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

/// `(wait, next_unit_wait)` of an allowed response with these fields.
fn hold(fields: &[(&str, &str)]) -> (Option<Duration>, Option<Duration>) {
    let mut headers = http::HeaderMap::new();
    for (name, value) in fields {
        headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let feedback = FeedbackParser::new().parse(http::StatusCode::OK, &headers, SystemTime::now());
    (feedback.wait().unwrap(), feedback.next_unit_wait().unwrap())
}

#[test]
fn an_exhausted_vendor_quota_that_resets_later_holds_the_client() {
    // The reviewer's case: the IETF bucket's next unit is 6 s away, the vendor quota
    // comes back in 30 s.
    let vendor = [
        POLICY,
        DRAINED,
        ("x-ratelimit-limit", "100"),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", "30"),
    ];
    assert_eq!(hold(&vendor), (secs(60), secs(30)));
    // A -06 trio with numbers of its own counts the same way.
    let draft06 = [
        POLICY,
        DRAINED,
        ("ratelimit-limit", "100"),
        ("ratelimit-remaining", "0"),
        ("ratelimit-reset", "30"),
    ];
    assert_eq!(hold(&draft06), (secs(60), secs(30)));
    // The same limit as q but another reset is a quota of its own, too.
    let other_reset = [
        POLICY,
        DRAINED,
        ("x-ratelimit-limit", "10"),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", "45"),
    ];
    assert_eq!(hold(&other_reset), (secs(60), secs(45)));
}

#[test]
fn the_hold_is_still_never_longer_than_the_wait() {
    // The vendor reset is past the IETF `t`: the precedence gave the wait (60 s) and the
    // hold stays within it, as before.
    let later = [
        POLICY,
        DRAINED,
        ("x-ratelimit-limit", "100"),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", "90"),
    ];
    assert_eq!(hold(&later), (secs(60), secs(60)));
}

#[test]
fn a_quota_with_units_left_or_back_sooner_does_not_hold() {
    let left = [
        POLICY,
        DRAINED,
        ("x-ratelimit-limit", "100"),
        ("x-ratelimit-remaining", "5"),
        ("x-ratelimit-reset", "30"),
    ];
    assert_eq!(hold(&left), (secs(60), secs(6)));
    let sooner = [
        POLICY,
        DRAINED,
        ("x-ratelimit-limit", "100"),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", "3"),
    ];
    assert_eq!(hold(&sooner), (secs(60), secs(6)));
}

#[test]
fn a_trio_that_repeats_the_ietf_item_is_read_as_it() {
    for prefix in ["x-ratelimit-", "ratelimit-"] {
        let (limit, remaining, reset) = (
            format!("{prefix}limit"),
            format!("{prefix}remaining"),
            format!("{prefix}reset"),
        );
        let mirror = [
            POLICY,
            DRAINED,
            (limit.as_str(), "10"),
            (remaining.as_str(), "0"),
            (reset.as_str(), "60"),
        ];
        assert_eq!(hold(&mirror), (secs(60), secs(6)), "{prefix}");
    }
}

/// The crate's own server with every field family: a drained 10/min bucket's allowed
/// response holds the client for the next unit (6 s), not the 60 s until full.
#[tokio::test(start_paused = true)]
async fn the_own_servers_legacy_trios_keep_the_next_unit_hold() {
    let quota = Quota::per_minute(10).unwrap();
    for style in [
        HeaderStyle {
            ietf: true,
            x_ratelimit: true,
            draft06: false,
        },
        HeaderStyle {
            ietf: true,
            x_ratelimit: true,
            draft06: true,
        },
    ] {
        let server = HttpRateLimitLayer::global(MemoryStore::new(quota))
            .header_style(style)
            .layer(service_fn(|_: http::Request<()>| async {
                Ok::<_, Infallible>(http::Response::new(String::new()))
            }));
        let mut last = None;
        for _ in 0..10 {
            let response = server
                .clone()
                .oneshot(http::Request::new(()))
                .await
                .unwrap();
            assert_eq!(response.status(), http::StatusCode::OK);
            last = Some(response);
        }
        let response = last.unwrap();
        let feedback =
            FeedbackParser::new().parse(response.status(), response.headers(), SystemTime::now());
        assert!(
            feedback.is_exhausted(),
            "{style:?}: {:?}",
            response.headers()
        );
        assert_eq!(feedback.wait(), Ok(secs(60)), "{style:?}");
        assert_eq!(feedback.next_unit_wait(), Ok(secs(6)), "{style:?}");
    }
}
