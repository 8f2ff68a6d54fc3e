//! The IETF `RateLimit` header fields, in all three shapes servers send.
//!
//! - revision -08 and later: `RateLimit-Policy: "burst";q=100;w=60` and
//!   `RateLimit: "burst";r=0;t=30`, Structured Field Lists (RFC 9651);
//! - revision -07: one Dictionary, `RateLimit: limit=100, remaining=50, reset=5`;
//! - revision -06 and earlier: `RateLimit-Limit` / `-Remaining` / `-Reset`, and
//!   `RateLimit-Policy: 10;w=1, 50;w=60`.
//!
//! Only -08+ parses as a List of named items and only -07 as a Dictionary, which is
//! how they are told apart. A malformed field is ignored.

use super::bytes;
use super::collect::Collected;
use super::time::{self, ResetKind, ResponseTime};
use crate::feedback::model::{Dimension, Policy, QuotaUnit, WaitSource};
use sfv::{BareItem, Dictionary, List, ListEntry, Parameters, Parser};
use std::time::Duration;

/// Reads every IETF field. `reset_kind` says how the -06 `RateLimit-Reset` is read
/// (GitLab sends an epoch there).
pub(crate) fn read(
    headers: &http::HeaderMap,
    time: &ResponseTime,
    reset_kind: ResetKind,
    out: &mut Collected,
) {
    let policies_before = out.policies.len();
    if let Some(field) = bytes::joined(headers, "ratelimit-policy") {
        read_policy_list(&field, out);
    }
    let named: Vec<Policy> = out.policies[policies_before..].to_vec();
    if let Some(field) = bytes::joined(headers, "ratelimit") {
        if !read_current(&field, &named, out) {
            read_dictionary(&field, out);
        }
    }
    read_trio(headers, time, reset_kind, out);
}

fn integer(item: &BareItem) -> Option<u64> {
    match item {
        BareItem::Integer(i) => u64::try_from(i64::from(*i)).ok(),
        BareItem::Decimal(d) => {
            let f = f64::from(*d);
            // Decimals in SF are bounded to 12 integer digits, so this cannot overflow.
            (f >= 0.0).then_some(f as u64)
        }
        _ => None,
    }
}

fn seconds(item: &BareItem) -> Option<Duration> {
    match item {
        BareItem::Integer(i) => u64::try_from(i64::from(*i)).ok().map(Duration::from_secs),
        BareItem::Decimal(d) => Duration::try_from_secs_f64(f64::from(*d)).ok(),
        _ => None,
    }
}

fn name(item: &BareItem) -> Option<String> {
    let name = match item {
        BareItem::String(s) => s.as_str(),
        BareItem::Token(t) => t.as_str(),
        _ => return None,
    };
    Some(name.chars().take(bytes::MAX_KEY).collect())
}

fn param<'a>(params: &'a Parameters, key: &str) -> Option<&'a BareItem> {
    params
        .iter()
        .find(|(k, _)| k.as_str() == key)
        .map(|(_, v)| v)
}

fn partition_key(params: &Parameters) -> Option<Vec<u8>> {
    match param(params, "pk")? {
        BareItem::ByteSequence(b) if b.len() <= bytes::MAX_KEY => Some(b.clone()),
        _ => None,
    }
}

fn unit(params: &Parameters) -> QuotaUnit {
    match param(params, "qu").and_then(name).as_deref() {
        None | Some("requests") => QuotaUnit::Requests,
        Some("content-bytes") => QuotaUnit::ContentBytes,
        Some("concurrent-requests") => QuotaUnit::ConcurrentRequests,
        Some(other) => QuotaUnit::Other(other.to_owned()),
    }
}

/// `RateLimit-Policy` in either the -08+ form (named, `q`) or the -06 form (the quota
/// is the item, `w` a parameter). Also used for Envoy's policy list in a limit header.
pub(crate) fn read_policy_list(field: &[u8], out: &mut Collected) {
    let Ok(list) = Parser::new(field).parse::<List>() else {
        return;
    };
    for entry in list {
        let ListEntry::Item(item) = entry else {
            continue;
        };
        let (policy_name, quota) = match name(&item.bare_item) {
            Some(n) => match param(&item.params, "q").and_then(integer) {
                Some(q) => (Some(n), q),
                None => continue,
            },
            // The -06 form; a bare number without a window is the plain limit that
            // leads a limit header, not a policy.
            None => match integer(&item.bare_item) {
                Some(q) if param(&item.params, "w").is_some() => {
                    (param(&item.params, "name").and_then(name), q)
                }
                _ => continue,
            },
        };
        let window = param(&item.params, "w").and_then(seconds);
        let policy = Policy {
            name: policy_name,
            quota,
            unit: unit(&item.params),
            window,
            partition: partition_key(&item.params),
        };
        if let Some(pk) = policy.partition.clone() {
            out.partition_key(pk, false);
        }
        out.policy(policy);
    }
}

/// `RateLimit` as an -08+ List of named items with `r` (and `t`, `pk`). Returns
/// whether the field had that shape.
fn read_current(field: &[u8], policies: &[Policy], out: &mut Collected) -> bool {
    let Ok(list) = Parser::new(field).parse::<List>() else {
        return false;
    };
    let mut any = false;
    for entry in list {
        let ListEntry::Item(item) = entry else {
            continue;
        };
        let Some(policy_name) = name(&item.bare_item) else {
            continue;
        };
        let Some(remaining) = param(&item.params, "r").and_then(integer) else {
            continue;
        };
        any = true;
        let limit = policies
            .iter()
            .find(|p| p.name.as_deref() == Some(policy_name.as_str()))
            .map(|p| p.quota);
        if let Some(pk) = partition_key(&item.params) {
            out.partition_key(pk, remaining == 0);
        }
        out.dimension(Dimension {
            name: policy_name,
            limit,
            remaining: Some(remaining),
            reset: param(&item.params, "t").and_then(seconds),
            reset_source: WaitSource::RateLimitPolicy,
        });
    }
    any
}

/// `RateLimit` as the -07 Dictionary `limit=100, remaining=50, reset=5`.
fn read_dictionary(field: &[u8], out: &mut Collected) {
    let Ok(dict) = Parser::new(field).parse::<Dictionary>() else {
        return;
    };
    let get = |key: &str| match dict.iter().find(|(k, _)| k.as_str() == key) {
        Some((_, ListEntry::Item(item))) => Some(item.bare_item.clone()),
        _ => None,
    };
    out.dimension(Dimension {
        name: "ratelimit".to_owned(),
        limit: get("limit").as_ref().and_then(integer),
        remaining: get("remaining").as_ref().and_then(integer),
        reset: get("reset").as_ref().and_then(seconds),
        reset_source: WaitSource::RateLimitPolicy,
    });
}

/// The -06 trio `RateLimit-Limit` / `-Remaining` / `-Reset`, plus GitLab's
/// `RateLimit-ResetTime` (an HTTP-date).
fn read_trio(
    headers: &http::HeaderMap,
    time: &ResponseTime,
    reset_kind: ResetKind,
    out: &mut Collected,
) {
    let limit_field = bytes::first(headers, "ratelimit-limit");
    let limit = limit_field.and_then(|v| bytes::count(bytes::leading_item(v)));
    if let Some(v) = limit_field {
        // `100, 100;w=60`: the policies after the leading limit.
        if v.contains(&b';') {
            read_policy_list(v, out);
        }
    }
    let remaining = bytes::first(headers, "ratelimit-remaining").and_then(bytes::count);
    let mut reset = bytes::first(headers, "ratelimit-reset")
        .and_then(|v| time::reset(v, reset_kind, time))
        .map(|(wait, absolute)| {
            let source = if absolute {
                WaitSource::AbsoluteReset
            } else {
                WaitSource::RateLimitPolicy
            };
            (wait, source)
        });
    if reset.is_none() {
        reset = bytes::first(headers, "ratelimit-resettime")
            .and_then(time::http_date)
            .map(|at| (time.until(at), WaitSource::AbsoluteReset));
    }
    out.dimension(Dimension {
        name: "ratelimit".to_owned(),
        limit,
        remaining,
        reset: reset.map(|r| r.0),
        reset_source: reset.map_or(WaitSource::RateLimitPolicy, |r| r.1),
    });
}
