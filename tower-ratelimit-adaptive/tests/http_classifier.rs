//! The HTTP classifiers (feature `http`).
#![cfg(feature = "http")]

use std::time::Duration;

use tower_ratelimit_adaptive::layer::classify::{http_feedback, http_status};
use tower_ratelimit_adaptive::{Outcome, ServerPartition};

fn resp(status: u16, headers: &[(&str, &str)]) -> Result<http::Response<()>, std::io::Error> {
    let mut b = http::Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    Ok(b.body(()).unwrap())
}

#[test]
fn status_classifier() {
    assert!(http_status(&resp(200, &[])).is_success());
    assert_eq!(
        http_status(&resp(429, &[("retry-after", "3")])).retry_after(),
        Some(Duration::from_secs(3))
    );
    assert!(http_status(&resp(503, &[("retry-after", "1")])).is_throttle());
    assert!(matches!(
        http_status(&resp(503, &[])),
        Outcome::Overload { .. }
    ));
    assert!(matches!(
        http_status(&resp(429, &[("retry-after", "junk")])),
        Outcome::Throttled {
            retry_after: None,
            ..
        }
    ));
}

#[test]
fn feedback_classifier_reads_policy_and_wait() {
    let ok = http_feedback(&resp(
        200,
        &[
            ("ratelimit-policy", "\"burst\";q=100;w=1"),
            ("ratelimit", "\"burst\";r=40;t=1"),
        ],
    ));
    let hints = ok.hints().copied().unwrap();
    assert!(ok.is_success());
    assert_eq!(hints.policy.map(|p| p.rate()), Some(100.0));
    let throttled = http_feedback(&resp(429, &[("retry-after", "2")]));
    assert!(throttled.is_throttle());
    assert_eq!(throttled.retry_after(), Some(Duration::from_secs(2)));
    assert!(matches!(http_feedback(&resp(404, &[])), Outcome::Ignored));
}

#[test]
fn feedback_classifier_reads_the_partition_key() {
    // pk=:cGs=: is the byte sequence "pk".
    let o = http_feedback(&resp(
        200,
        &[
            ("ratelimit-policy", "\"burst\";q=100;w=1;pk=:cGs=:"),
            ("ratelimit", "\"burst\";r=40;t=1;pk=:cGs=:"),
        ],
    ));
    let hints = o.hints().copied().unwrap();
    assert_eq!(hints.partition, Some(ServerPartition::from_key(b"pk")));
    let none = http_feedback(&resp(200, &[("ratelimit-policy", "\"burst\";q=100;w=1")]));
    assert_eq!(none.hints().unwrap().partition, None);
}

#[test]
fn a_failing_upstream_is_an_overload_not_a_success() {
    for status in [500, 502, 504, 408] {
        assert!(
            matches!(http_status(&resp(status, &[])), Outcome::Overload { .. }),
            "{status}"
        );
    }
    assert!(http_status(&resp(404, &[])).is_success());
}

#[test]
fn a_long_retry_after_is_kept_for_the_layer_to_cap() {
    let long = http_feedback(&resp(429, &[("retry-after", "600")]));
    assert_eq!(long.retry_after(), Some(Duration::from_secs(600)));
}
