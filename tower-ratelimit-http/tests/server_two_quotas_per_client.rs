//! Two quotas per client (a short one against bursts, a daily one), as two keyed
//! layers: the short one outside, so that the requests it refuses never reach the
//! daily one and spend none of it. Over real loopback HTTP, paused clock.

mod server_support;

use server_support::{get, ok_service, serve, Reply};
use std::time::Duration;
use tower::Layer;
use tower_ratelimit_core::Quota;
use tower_ratelimit_http::server::headers::PolicyName;
use tower_ratelimit_http::server::key::HeaderKey;
use tower_ratelimit_http::server::HttpRateLimitLayer;

fn api_key() -> HeaderKey {
    HeaderKey::new(http::HeaderName::from_static("x-api-key"))
}

/// The `r` the policy named `name` reports.
fn remaining(reply: &Reply, name: &str) -> Option<u64> {
    let prefix = format!("\"{name}\";r=");
    reply.all("ratelimit").iter().find_map(|field| {
        let rest = field.strip_prefix(&prefix)?;
        rest.split(';').next()?.parse().ok()
    })
}

#[tokio::test(start_paused = true)]
async fn requests_the_short_quota_refuses_spend_nothing_of_the_daily_one() {
    let per_second = HttpRateLimitLayer::keyed(Quota::per_second(2).unwrap(), api_key())
        .policy_name(PolicyName::new("burst").unwrap());
    let per_day = HttpRateLimitLayer::keyed(
        Quota::new(5, Duration::from_secs(86_400)).unwrap(),
        api_key(),
    )
    .policy_name(PolicyName::new("daily").unwrap());
    // The outer layer decides first.
    let addr = serve(per_second.layer(per_day.layer(ok_service()))).await;
    let key = [("x-api-key", "alice")];

    // A flood of 50 at once: the burst of 2 passes and spends 2 of the day's 5.
    let mut statuses = Vec::new();
    let mut last_allowed = None;
    for _ in 0..50 {
        let reply = get(addr, "/", &key).await;
        statuses.push(reply.status);
        if reply.status == 200 {
            last_allowed = Some(reply);
        } else {
            assert_eq!(reply.status, 429);
            // Refused by the short quota alone: only its fields, its wait.
            assert_eq!(reply.all("ratelimit"), [r#""burst";r=0;t=1"#]);
            assert_eq!(reply.header("retry-after"), "1");
        }
    }
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 2);
    let allowed = last_allowed.expect("two allowed");
    assert_eq!(remaining(&allowed, "daily"), Some(3));
    assert_eq!(remaining(&allowed, "burst"), Some(0));

    // Three more over the next seconds take the day's last units.
    for expect_daily in [2, 1, 0] {
        tokio::time::advance(Duration::from_secs(1)).await;
        let reply = get(addr, "/", &key).await;
        assert_eq!(reply.status, 200);
        assert_eq!(remaining(&reply, "daily"), Some(expect_daily));
    }
    // Then the daily quota refuses, with its own wait: its next unit is a fifth of a
    // day after the first was spent, 4 s ago. Both policies are in the fields.
    tokio::time::advance(Duration::from_secs(1)).await;
    let refused = get(addr, "/", &key).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), "17276");
    assert_eq!(remaining(&refused, "daily"), Some(0));
    assert!(
        remaining(&refused, "burst").is_some(),
        "{:?}",
        refused.all("ratelimit")
    );

    // Another client is untouched by alice's day.
    let bob = get(addr, "/", &[("x-api-key", "bob")]).await;
    assert_eq!(bob.status, 200);
    assert_eq!(remaining(&bob, "daily"), Some(4));
}
