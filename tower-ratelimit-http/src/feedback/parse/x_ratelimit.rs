//! The `X-RateLimit-*` and `X-Rate-Limit-*` families: GitHub, X, Reddit, Discord,
//! Envoy and many others, where the same names mean different things.
//!
//! `reset` is an epoch at GitHub, X and Discord but a delta at Reddit; the
//! [`Profile`](crate::feedback::Profile) decides, or else the documented guess by
//! magnitude. Discord adds `Reset-After` (a fractional delta, preferred over
//! `Reset`), `Bucket` (a partition key), `Global` and `Scope`. Envoy appends a policy
//! list to the limit (`10, 10;w=1;name="per-ip"`).

use super::bytes;
use super::collect::Collected;
use super::ietf;
use super::time::{self, ResetKind, ResponseTime};
use crate::feedback::model::{Dimension, WaitSource};

/// Reads both prefixes.
pub(crate) fn read(
    headers: &http::HeaderMap,
    time: &ResponseTime,
    reset_kind: ResetKind,
    out: &mut Collected,
) {
    for prefix in ["x-ratelimit-", "x-rate-limit-"] {
        read_prefix(headers, prefix, time, reset_kind, out);
    }
}

fn read_prefix(
    headers: &http::HeaderMap,
    prefix: &str,
    time: &ResponseTime,
    reset_kind: ResetKind,
    out: &mut Collected,
) {
    let field = |suffix: &str| bytes::first(headers, &format!("{prefix}{suffix}"));
    let limit_field = field("limit");
    let mut limit = limit_field.and_then(|v| bytes::count(bytes::leading_item(v)));
    if let Some(v) = limit_field {
        if v.contains(&b';') {
            ietf::read_policy_list(v, out);
        }
    }
    let remaining = field("remaining").and_then(bytes::count);
    if limit.is_none() {
        // Reddit sends used and remaining only.
        if let (Some(used), Some(left)) = (field("used").and_then(bytes::count), remaining) {
            limit = Some(used.saturating_add(left));
        }
    }
    let reset = match field("reset-after").and_then(bytes::seconds) {
        Some(delta) => Some((delta, WaitSource::VendorDelta)),
        None => field("reset")
            .and_then(|v| time::reset(v, reset_kind, time))
            .map(|(wait, absolute)| {
                let source = if absolute {
                    WaitSource::AbsoluteReset
                } else {
                    WaitSource::VendorDelta
                };
                (wait, source)
            }),
    };
    let name = field("resource")
        .filter(|v| v.len() <= bytes::MAX_KEY)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_else(|| prefix.trim_end_matches('-').to_owned());
    if let Some(bucket) = field("bucket").and_then(bytes::key) {
        out.partition_key(bucket, true);
    }
    if field("global").and_then(bytes::boolean) == Some(true)
        || field("scope").is_some_and(|v| v.eq_ignore_ascii_case(b"global"))
    {
        out.partition.global = true;
    }
    out.dimension(Dimension {
        name,
        limit,
        remaining,
        reset: reset.map(|r| r.0),
        reset_source: reset.map_or(WaitSource::VendorDelta, |r| r.1),
    });
}
