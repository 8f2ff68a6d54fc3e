//! The response fields a rate-limited server sends, rendered from a decision.
//!
//! - `RateLimit-Policy` and `RateLimit`, the IETF httpapi fields in their current
//!   Structured Fields form (draft revision -08 and later), on allowed and denied
//!   responses alike, so that clients can pace themselves before they are denied:
//!   `RateLimit-Policy: "default";q=10;w=1` and `RateLimit: "default";r=7;t=1`.
//! - `Retry-After` on denials, in whole seconds rounded **up** and never `0`: a client
//!   that retries after `Retry-After` seconds finds the quota there (the
//!   `as_secs()` truncation of other crates tells a client to retry at once and be
//!   denied again).
//! - Optionally the legacy `X-RateLimit-Limit/Remaining/Reset` trio and the revision
//!   -06 `RateLimit-Limit/Remaining/Reset` trio, for older clients.
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_core::algorithm::Snapshot;
//! use tower_ratelimit_core::Quota;
//! use tower_ratelimit_http::server::headers::{self, HeaderStyle, PolicyName};
//!
//! assert_eq!(headers::retry_after_secs(Duration::from_millis(200)), 1);
//! assert_eq!(headers::retry_after_secs(Duration::ZERO), 1);
//!
//! let quota = Quota::per_second(10)?;
//! let snapshot = Snapshot { limit: 10, remaining: 7, reset: Duration::from_millis(300) };
//! let mut map = http::HeaderMap::new();
//! headers::append(&mut map, HeaderStyle::default(), &PolicyName::default(), &quota, &snapshot);
//! assert_eq!(map["ratelimit-policy"], r#""default";q=10;w=1"#);
//! assert_eq!(map["ratelimit"], r#""default";r=7;t=1"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use sfv::{key_ref, Integer, ListSerializer, StringRef};
use std::fmt;
use std::sync::RwLock;
use std::time::Duration;
use tower_ratelimit_core::algorithm::Snapshot;
use tower_ratelimit_core::Quota;

/// `RateLimit` (draft -08 and later).
pub static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// `RateLimit-Policy` (draft -08 and later).
pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit-Limit` (draft -06).
pub static RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining` (draft -06).
pub static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset` (draft -06), delta seconds.
pub static RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
/// `X-RateLimit-Limit` (legacy).
pub static X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// `X-RateLimit-Remaining` (legacy).
pub static X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// `X-RateLimit-Reset` (legacy), delta seconds.
pub static X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The largest Structured Fields Integer (15 digits); bigger values saturate to it.
const SF_INTEGER_MAX: u64 = 999_999_999_999_999;

/// Which families of fields to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderStyle {
    /// `RateLimit` and `RateLimit-Policy` in the current Structured Fields form.
    pub ietf: bool,
    /// `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (delta seconds).
    pub x_ratelimit: bool,
    /// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (draft -06).
    pub draft06: bool,
}

impl Default for HeaderStyle {
    /// The current IETF fields only.
    fn default() -> Self {
        HeaderStyle {
            ietf: true,
            x_ratelimit: false,
            draft06: false,
        }
    }
}

/// The name of a quota policy, as sent in the fields and in problem details.
///
/// A Structured Fields String: printable ASCII only (quotes and backslashes are escaped
/// when rendered). Layers stacked in one app should use distinct names (`"global"`,
/// `"per-ip"`) so clients can tell the policies apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PolicyName(String);

/// A policy name with characters a Structured Fields String cannot hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyNameError;

impl fmt::Display for PolicyNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a policy name must be printable ASCII")
    }
}

impl std::error::Error for PolicyNameError {}

impl PolicyName {
    /// Checks that `name` can be sent as a Structured Fields String.
    ///
    /// # Errors
    /// [`PolicyNameError`] for control or non-ASCII characters.
    pub fn new(name: impl Into<String>) -> Result<PolicyName, PolicyNameError> {
        let name = name.into();
        StringRef::from_str(&name).map_err(|_| PolicyNameError)?;
        Ok(PolicyName(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn sf(&self) -> &StringRef {
        // Checked in `new`; the fallback is unreachable but keeps this panic-free.
        StringRef::from_str(&self.0).unwrap_or(StringRef::constant("default"))
    }
}

impl Default for PolicyName {
    /// `"default"`.
    fn default() -> Self {
        PolicyName("default".to_owned())
    }
}

/// Whole seconds for `Retry-After`: rounded up, and at least 1, because a denied
/// client told `0` retries at once and is denied again.
pub fn retry_after_secs(wait: Duration) -> u64 {
    ceil_secs(wait).max(1)
}

/// Whole seconds, rounded up (0 stays 0).
pub fn ceil_secs(d: Duration) -> u64 {
    let secs = d.as_secs();
    if d.subsec_nanos() > 0 {
        secs.saturating_add(1)
    } else {
        secs
    }
}

/// `n` in decimal, written at the end of `digits`.
fn decimal(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &digits[start..];
        }
    }
}

fn sf_int(n: u64) -> Integer {
    Integer::try_from(n.min(SF_INTEGER_MAX)).unwrap_or(Integer::constant(0))
}

fn header_value(text: String) -> HeaderValue {
    // Structured Fields serialise to visible ASCII; the fallback is unreachable.
    HeaderValue::try_from(text).unwrap_or(HeaderValue::from_static(""))
}

/// The policy's quota `q` and window `w` (seconds) for the fields.
///
/// `q` is what the client may spend at once (the snapshot's limit: the burst for GCRA,
/// the count for window algorithms) and `w` the time in which that much is refilled,
/// rounded up to whole seconds (at least 1). With the default burst this is the quota's
/// own count and period: `Quota::per_minute(100)` is `q=100;w=60`.
pub fn quota_and_window(quota: &Quota, limit: u64) -> (u64, u64) {
    let window = if limit == quota.count() {
        quota.period()
    } else {
        let nanos = quota
            .emission_interval()
            .as_nanos()
            .saturating_mul(u128::from(limit));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    };
    (limit, ceil_secs(window).max(1))
}

/// `RateLimit-Policy: "name";q=..;w=..`.
pub fn policy_value(name: &PolicyName, quota: &Quota, limit: u64) -> HeaderValue {
    let (q, w) = quota_and_window(quota, limit);
    let mut ser = ListSerializer::new();
    let _ = ser
        .bare_item(name.sf())
        .parameter(key_ref("q"), sf_int(q))
        .parameter(key_ref("w"), sf_int(w));
    header_value(ser.finish().unwrap_or_default())
}

/// `RateLimit: "name";r=..;t=..`: `r` units remain, and the bucket is full again in `t`
/// seconds (rounded up).
pub fn ratelimit_value(name: &PolicyName, snapshot: &Snapshot) -> HeaderValue {
    let mut ser = ListSerializer::new();
    let _ = ser
        .bare_item(name.sf())
        .parameter(key_ref("r"), sf_int(snapshot.remaining))
        .parameter(key_ref("t"), sf_int(ceil_secs(snapshot.reset)));
    header_value(ser.finish().unwrap_or_default())
}

/// Adds the fields of `style` for one policy to `headers`.
///
/// The IETF fields are appended, so that layers stacked in one app (a global limit
/// around per-route limits) each list their policy; each legacy trio is set only if
/// absent, so the innermost layer's numbers win.
pub fn append(
    headers: &mut HeaderMap,
    style: HeaderStyle,
    name: &PolicyName,
    quota: &Quota,
    snapshot: &Snapshot,
) {
    if style.ietf {
        headers.append(
            RATELIMIT_POLICY.clone(),
            policy_value(name, quota, snapshot.limit),
        );
        headers.append(RATELIMIT.clone(), ratelimit_value(name, snapshot));
    }
    append_trios(headers, style, snapshot);
}

fn append_trios(headers: &mut HeaderMap, style: HeaderStyle, snapshot: &Snapshot) {
    let trio = |headers: &mut HeaderMap, names: [&HeaderName; 3]| {
        if headers.contains_key(names[0]) {
            return;
        }
        let reset = ceil_secs(snapshot.reset);
        for (name, value) in names
            .into_iter()
            .zip([snapshot.limit, snapshot.remaining, reset])
        {
            headers.insert(name.clone(), HeaderValue::from(value));
        }
    };
    if style.x_ratelimit {
        trio(
            headers,
            [
                &X_RATELIMIT_LIMIT,
                &X_RATELIMIT_REMAINING,
                &X_RATELIMIT_RESET,
            ],
        );
    }
    if style.draft06 {
        trio(
            headers,
            [&RATELIMIT_LIMIT, &RATELIMIT_REMAINING, &RATELIMIT_RESET],
        );
    }
}

/// One layer's fields, rendered on every response: the policy name is serialised once,
/// and the `RateLimit-Policy` value is kept until the quota changes. The output is the
/// same as [`append`]'s.
pub(crate) struct FieldRenderer {
    name: PolicyName,
    style: HeaderStyle,
    /// The policy name as a serialised Structured Fields String.
    item: String,
    policy: RwLock<Option<(Quota, u64, HeaderValue)>>,
}

impl FieldRenderer {
    pub(crate) fn new(name: PolicyName, style: HeaderStyle) -> FieldRenderer {
        let mut ser = ListSerializer::new();
        let _ = ser.bare_item(name.sf());
        let item = ser.finish().unwrap_or_default();
        FieldRenderer {
            name,
            style,
            item,
            policy: RwLock::new(None),
        }
    }

    pub(crate) fn name(&self) -> &PolicyName {
        &self.name
    }

    pub(crate) fn style(&self) -> HeaderStyle {
        self.style
    }

    fn policy(&self, quota: &Quota, limit: u64) -> HeaderValue {
        if let Ok(cached) = self.policy.read() {
            if let Some((q, l, value)) = &*cached {
                if q == quota && *l == limit {
                    return value.clone();
                }
            }
        }
        let value = policy_value(&self.name, quota, limit);
        if let Ok(mut cached) = self.policy.write() {
            *cached = Some((*quota, limit, value.clone()));
        }
        value
    }

    fn ratelimit(&self, snapshot: &Snapshot) -> HeaderValue {
        // Written into a stack buffer and copied once into the value: this runs on
        // every response, and formatting machinery and intermediate strings cost more
        // than the rest of the layer's fields together.
        let mut buf = [0u8; 128];
        let mut len = 0;
        let mut push = |bytes: &[u8]| {
            let end = len + bytes.len();
            if let Some(slot) = buf.get_mut(len..end) {
                slot.copy_from_slice(bytes);
                len = end;
                true
            } else {
                false
            }
        };
        let mut digits = [0u8; 20];
        let fits = push(self.item.as_bytes())
            && push(b";r=")
            && push(decimal(snapshot.remaining.min(SF_INTEGER_MAX), &mut digits))
            && push(b";t=")
            && push(decimal(
                ceil_secs(snapshot.reset).min(SF_INTEGER_MAX),
                &mut digits,
            ));
        match fits {
            true => HeaderValue::from_bytes(&buf[..len])
                .unwrap_or_else(|_| ratelimit_value(&self.name, snapshot)),
            false => ratelimit_value(&self.name, snapshot),
        }
    }

    pub(crate) fn append(&self, headers: &mut HeaderMap, quota: &Quota, snapshot: &Snapshot) {
        if self.style.ietf {
            headers.append(RATELIMIT_POLICY.clone(), self.policy(quota, snapshot.limit));
            headers.append(RATELIMIT.clone(), self.ratelimit(snapshot));
        }
        append_trios(headers, self.style, snapshot);
    }
}

impl Clone for FieldRenderer {
    fn clone(&self) -> Self {
        FieldRenderer::new(self.name.clone(), self.style)
    }
}

impl fmt::Debug for FieldRenderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldRenderer")
            .field("name", &self.name)
            .field("style", &self.style)
            .finish_non_exhaustive()
    }
}

/// Sets `Retry-After` (see [`retry_after_secs`]) unless an inner layer already did.
pub fn set_retry_after(headers: &mut HeaderMap, wait: Duration) {
    headers
        .entry(RETRY_AFTER)
        .or_insert_with(|| HeaderValue::from(retry_after_secs(wait)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        for (ms, secs) in [
            (0, 1),
            (1, 1),
            (200, 1),
            (900, 1),
            (1000, 1),
            (1001, 2),
            (59_999, 60),
        ] {
            assert_eq!(retry_after_secs(Duration::from_millis(ms)), secs, "{ms} ms");
        }
        assert_eq!(retry_after_secs(Duration::MAX), u64::MAX);
    }

    #[test]
    fn policy_names_are_escaped_or_refused() {
        let name = PolicyName::new(r#"per "ip" \ key"#).unwrap();
        let snap = Snapshot {
            limit: 1,
            remaining: 0,
            reset: Duration::ZERO,
        };
        assert_eq!(
            ratelimit_value(&name, &snap),
            r#""per \"ip\" \\ key";r=0;t=0"#
        );
        assert!(PolicyName::new("caf\u{e9}").is_err());
        assert!(PolicyName::new("a\nb").is_err());
    }

    #[test]
    fn window_follows_burst_and_saturates() {
        let q = Quota::per_second(5).unwrap().with_burst(20).unwrap();
        assert_eq!(quota_and_window(&q, 20), (20, 4));
        let q = Quota::per_minute(100).unwrap();
        assert_eq!(quota_and_window(&q, 100), (100, 60));
        let q = Quota::per_second(1000).unwrap();
        assert_eq!(quota_and_window(&q, 1000), (1000, 1));
        let snap = Snapshot {
            limit: u64::MAX,
            remaining: u64::MAX,
            reset: Duration::MAX,
        };
        let v = ratelimit_value(&PolicyName::default(), &snap);
        assert_eq!(v, r#""default";r=999999999999999;t=999999999999999"#);
        // The window saturates at u64::MAX nanoseconds (about 584 years).
        let v = policy_value(&PolicyName::default(), &q, u64::MAX);
        assert_eq!(v, r#""default";q=999999999999999;w=18446744074"#);
    }

    #[test]
    fn the_cached_renderer_writes_what_sfv_writes() {
        let quotas = [
            Quota::per_second(3).unwrap(),
            Quota::per_minute(100).unwrap().with_burst(7).unwrap(),
        ];
        let long = "x".repeat(200);
        for name in ["default", r#"we"ird\name"#, long.as_str()] {
            let name = PolicyName::new(name).unwrap();
            let renderer = FieldRenderer::new(name.clone(), HeaderStyle::default());
            for quota in quotas {
                for (remaining, reset_ms) in [(0, 0), (5, 1), (u64::MAX, u64::MAX)] {
                    let snap = Snapshot {
                        limit: quota.burst(),
                        remaining,
                        reset: Duration::from_millis(reset_ms),
                    };
                    let (mut fast, mut slow) = (HeaderMap::new(), HeaderMap::new());
                    renderer.append(&mut fast, &quota, &snap);
                    append(&mut slow, HeaderStyle::default(), &name, &quota, &snap);
                    assert_eq!(fast, slow);
                }
            }
        }
    }

    #[test]
    fn legacy_trios_on_request_and_not_overwritten() {
        let q = Quota::per_second(10).unwrap();
        let snap = Snapshot {
            limit: 10,
            remaining: 3,
            reset: Duration::from_millis(700),
        };
        let mut map = HeaderMap::new();
        let style = HeaderStyle {
            ietf: false,
            x_ratelimit: true,
            draft06: true,
        };
        append(&mut map, style, &PolicyName::default(), &q, &snap);
        assert_eq!(map["x-ratelimit-limit"], "10");
        assert_eq!(map["x-ratelimit-remaining"], "3");
        assert_eq!(map["x-ratelimit-reset"], "1");
        assert_eq!(map["ratelimit-remaining"], "3");
        assert!(!map.contains_key("ratelimit"));
        let other = Snapshot {
            remaining: 9,
            ..snap
        };
        append(&mut map, style, &PolicyName::default(), &q, &other);
        assert_eq!(map["x-ratelimit-remaining"], "3");
        assert_eq!(map.get_all("x-ratelimit-remaining").iter().count(), 1);
    }
}
