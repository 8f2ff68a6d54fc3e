//! The response fields a rate-limited server sends, rendered from a decision.
//!
//! - `RateLimit-Policy` and `RateLimit`, the IETF httpapi fields in their current
//!   Structured Fields form (draft revision -08 and later), on allowed and denied
//!   responses alike, so that clients can pace themselves before they are denied:
//!   `RateLimit-Policy: "default";q=10;w=1` and `RateLimit: "default";r=7;t=1`.
//!   `q` per `w` is the server's real rate: a burst that refills in under a second (or
//!   in a fraction of one) is stated over a whole-second window with `q` scaled to
//!   match, and `r` scaled with it ([`quota_and_window`] has the rule). `t` is the
//!   time until the quota is all back: for a bucket, until it is full, which at
//!   `r=0` is `q - 1` units after the next one. A client that holds `r=0` for all of
//!   `t` runs slower than the server allows; the crate's client reads the next unit
//!   out of `t` and the policy
//!   ([`Feedback::next_unit_wait`](crate::feedback::Feedback::next_unit_wait)). When
//!   the policy's window is rounded up to whole seconds, `w / q` is a little longer
//!   than a unit really takes; at `r=0`, `t` then says that much more (under 1 % of
//!   `w`, a fraction of a second for 100 per 199 s with a burst of 2, `q=2;w=4`), so
//!   that reading never comes before the next unit.
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
//!
//! // 100/s with strict spacing is 100 per second, not 1: right after a request the
//! // same bucket with a burst of 100 would have 99 left.
//! let strict = Quota::per_second(100)?.with_burst(1)?;
//! let spent = Snapshot { limit: 1, remaining: 0, reset: Duration::from_millis(10) };
//! let name = PolicyName::default();
//! assert_eq!(headers::policy_value(&name, &strict, 1), r#""default";q=100;w=1"#);
//! assert_eq!(headers::ratelimit_value(&name, &strict, &spent), r#""default";r=99;t=1"#);
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

/// The `t` / reset fields: whole seconds until the bucket is full, rounded up, at the
/// rate the quota states. Its emission interval rounds `period / count` up to a whole
/// nanosecond (so as never to pace faster), which adds up to a nanosecond per unit:
/// a 3/s bucket drained of 3 is full 1 s + 2 ns later, and `t=2` would say a second
/// more than the quota means. `Retry-After` keeps the exact wait.
fn full_in_secs(quota: &Quota, snapshot: &Snapshot) -> u64 {
    ceil_secs(full_in(quota, snapshot))
}

/// [`full_in_secs`] before it is rounded up.
fn full_in(quota: &Quota, snapshot: &Snapshot) -> Duration {
    // Each unit of the wait carries `(T × count - period) / count` of rounding: none
    // when the period divides evenly (1e9 per second), and a window's reset (no
    // rounding) loses a fraction of a nanosecond per unit. Counted from the reset, not
    // `snapshot.limit`, which a leaky bucket reports as 1 whatever its burst.
    let interval = quota.emission_interval().as_nanos().max(1);
    let count = u128::from(quota.count()).max(1);
    let per_count = interval
        .saturating_mul(count)
        .saturating_sub(quota.period().as_nanos());
    let units = snapshot.reset.as_nanos().div_ceil(interval);
    let excess = units.saturating_mul(per_count).div_ceil(count);
    snapshot.reset.saturating_sub(Duration::from_nanos(
        u64::try_from(excess).unwrap_or(u64::MAX),
    ))
}

/// The `t` and legacy reset fields for the policy `(q, w)` when `remaining` units are
/// stated: [`full_in_secs`], and at `r=0` a little more when the policy's `w / q` is
/// longer than the quota's own interval `T`.
///
/// A client reads an `r=0` through the policy: a drained bucket's next unit is
/// `t - (q - 1) × w / q` (see `Feedback::next_unit_wait`). When [`quota_and_window`]
/// rounds the window up to whole seconds and `q` settles on the burst (100 per 199 s
/// with a burst of 2 is `q=2;w=4`, while a unit takes 1.99 s), that reading comes out
/// up to `(q - 1) × (w / q - T)` before the next unit, and an obedient client meets a
/// 429. `t` carries that much more (under 1 % of `w`, and nothing when `w / q` is
/// `T`), so the reading is never early.
fn reset_secs(quota: &Quota, snapshot: &Snapshot, (q, w): (u64, u64), remaining: u64) -> u64 {
    if remaining > 0 || q < 2 {
        return full_in_secs(quota, snapshot);
    }
    let (count, period) = stated_rate(quota);
    // (q - 1) × (w / q - period / count) = (q - 1) × (w × count - q × period) / (q × count)
    let window = u128::from(w).saturating_mul(NANOS_PER_SEC);
    let over = window
        .saturating_mul(count)
        .saturating_sub(u128::from(q).saturating_mul(period));
    let slack = u128::from(q - 1)
        .saturating_mul(over)
        .div_ceil(u128::from(q).saturating_mul(count))
        .min(window);
    ceil_secs(
        full_in(quota, snapshot).saturating_add(Duration::from_nanos(
            u64::try_from(slack).unwrap_or(u64::MAX),
        )),
    )
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

/// Nanoseconds in a second, for whole-second windows.
const NANOS_PER_SEC: u128 = 1_000_000_000;

/// How many windows past the shortest one [`quota_and_window`] tries before it settles
/// for the shortest. 128 always suffices for a 1% fit (see the function's docs); the
/// bound only keeps the loop finite whatever a store reports.
const WINDOW_CANDIDATES: u128 = 128;

/// The policy's quota `q` and window `w` (whole seconds) for the fields, given the
/// snapshot's `limit` (the burst for GCRA, the count for window algorithms, 1 for the
/// leaky bucket).
///
/// The pair describes the real **rate**: a client that spends `q` units every `w`
/// seconds is never refused for rate, and is at most 1% slower than the server allows.
/// The IETF `w` is a whole number of seconds, so a quota whose `limit` refills in less
/// than a second (strict spacing, `Quota::from_rate(100.0, 1)`, a leaky bucket) is
/// expressed by scaling `q`, not by stretching `w`:
///
/// Here `T` is `period / count` as the quota states it (its emission interval rounds
/// that up to a whole nanosecond; under a microsecond per unit, where the rounding is
/// more than 0.1 %, `T` is the emission interval).
///
/// 1. When the `limit` refills in a whole number of seconds (`limit × T`, or the
///    quota's period when `limit` is its count), that is the policy: `q = limit` and
///    `w = limit × T`. `Quota::per_minute(100)` is `q=100;w=60`,
///    `Quota::per_second(5).with_burst(20)` is `q=20;w=4`.
/// 2. Otherwise `w` is the first whole number of seconds, from
///    `max(1, ⌈limit × T⌉)`, in which the quota refills whole units to within 1%, and
///    `q = ⌊w / T⌋`, the units it refills in `w` (rounded down, so the policy never
///    promises more than the server admits). `Quota::per_second(100).with_burst(1)`
///    and a leaky bucket at 100/s are `q=100;w=1`; `Quota::per_minute(100).with_burst(7)`
///    is `q=10;w=6`.
///
/// `q` is never under `limit`, but it can be over it: the fields cannot say "at most
/// one at once", so clients should pace `q` over `w` rather than send it at once (the
/// crate's own `FeedbackLayer::adopt_policy` keeps the client's burst). A `limit` of 0
/// is `q=0;w=1`. Values too large for a Structured Fields Integer are saturated when
/// rendered.
pub fn quota_and_window(quota: &Quota, limit: u64) -> (u64, u64) {
    if limit == 0 {
        return (0, 1);
    }
    let (count, period) = stated_rate(quota);
    let per_window = |nanos: u128| nanos.saturating_mul(count) / period;
    let refill = period.saturating_mul(u128::from(limit));
    if refill % count == 0 {
        let refill = refill / count;
        if refill >= NANOS_PER_SEC && refill % NANOS_PER_SEC == 0 {
            return (limit, saturate(refill / NANOS_PER_SEC));
        }
    }
    let shortest = refill.div_ceil(count).div_ceil(NANOS_PER_SEC).max(1);
    for window in shortest..shortest.saturating_add(WINDOW_CANDIDATES) {
        let Some(nanos) = window.checked_mul(NANOS_PER_SEC) else {
            break;
        };
        // `lost / count` (< T) is the part of the window that refills no whole unit.
        let lost = nanos.saturating_mul(count) % period;
        if lost.saturating_mul(100) <= nanos.saturating_mul(count) {
            return (saturate(per_window(nanos)).max(limit), saturate(window));
        }
    }
    let nanos = shortest.saturating_mul(NANOS_PER_SEC);
    (saturate(per_window(nanos)).max(limit), saturate(shortest))
}

/// The rate as `(count, period in nanoseconds)`, as [`quota_and_window`] measures it.
fn stated_rate(quota: &Quota) -> (u128, u128) {
    // The rate as the quota states it, `count` per `period`: the emission interval `T`
    // is that rounded up to a whole nanosecond, which would leave every window a few
    // nanoseconds short of a whole unit. Past a microsecond per unit that rounding is
    // under 0.1 %, below what any client's clock can tell; under it (bytes per
    // second) the interval is the real rate, and the policy is measured with it.
    let interval = quota.emission_interval().as_nanos().max(1);
    if interval >= 1_000 {
        (
            u128::from(quota.count()).max(1),
            quota.period().as_nanos().max(1),
        )
    } else {
        (1, interval)
    }
}

fn saturate(n: u128) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The `r` that goes with [`quota_and_window`]'s `q` on an allowed response: the
/// snapshot's remaining units plus what `q` adds over the `limit` (`q - limit`).
///
/// For GCRA this is exactly what the same bucket would have left with a burst of `q`:
/// one theoretical arrival time, seen through the advertised policy. So a server at
/// 100/s with burst 1 says `r=99` (not `r=0`) right after a request, and a client does
/// not read "exhausted, wait `t` seconds" into a 10 ms gap. `t` is the time until the
/// bucket is full, which is the same for both bursts.
fn advertised_remaining(q: u64, snapshot: &Snapshot) -> u64 {
    snapshot
        .remaining
        .saturating_add(q.saturating_sub(snapshot.limit))
}

/// Whether a response admits the request: a denial reports the bucket's own remaining
/// units (fewer than the request costs; 0 for one unit), since "99 left" on a 429
/// would contradict its `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Allowed,
    Denied,
}

fn remaining_field(q: u64, snapshot: &Snapshot, verdict: Verdict) -> u64 {
    match verdict {
        Verdict::Allowed => advertised_remaining(q, snapshot),
        Verdict::Denied => snapshot.remaining,
    }
}

/// `RateLimit-Policy: "name";q=..;w=..` (see [`quota_and_window`]).
pub fn policy_value(name: &PolicyName, quota: &Quota, limit: u64) -> HeaderValue {
    let (q, w) = quota_and_window(quota, limit);
    policy_item(name, q, w)
}

fn policy_item(name: &PolicyName, q: u64, w: u64) -> HeaderValue {
    let mut ser = ListSerializer::new();
    let _ = ser
        .bare_item(name.sf())
        .parameter(key_ref("q"), sf_int(q))
        .parameter(key_ref("w"), sf_int(w));
    header_value(ser.finish().unwrap_or_default())
}

/// `RateLimit: "name";r=..;t=..` for an allowed request: `r` units remain under the
/// policy [`policy_value`] advertises for this quota (see [`quota_and_window`]: when
/// `q` is scaled above the snapshot's limit, `r` is scaled by the same amount), and
/// the bucket is full again in `t` seconds (rounded up; at `r=0` with a rounded window,
/// a little more, see the module docs).
pub fn ratelimit_value(name: &PolicyName, quota: &Quota, snapshot: &Snapshot) -> HeaderValue {
    let policy = quota_and_window(quota, snapshot.limit);
    ratelimit_item(
        name,
        quota,
        policy,
        advertised_remaining(policy.0, snapshot),
        snapshot,
    )
}

fn ratelimit_item(
    name: &PolicyName,
    quota: &Quota,
    policy: (u64, u64),
    remaining: u64,
    snapshot: &Snapshot,
) -> HeaderValue {
    let mut ser = ListSerializer::new();
    let _ = ser
        .bare_item(name.sf())
        .parameter(key_ref("r"), sf_int(remaining))
        .parameter(
            key_ref("t"),
            sf_int(reset_secs(quota, snapshot, policy, remaining)),
        );
    header_value(ser.finish().unwrap_or_default())
}

/// Adds the fields of `style` for one policy to the response of an allowed request.
///
/// The IETF fields are appended, so that layers stacked in one app (a global limit
/// around per-route limits) each list their policy. A legacy trio states one policy
/// only: the one closest to exhaustion (the fewest remaining, then the longest reset),
/// which refuses the client first, whichever layer wrote it. The legacy trios carry no
/// window: they state the same per-window quota and remaining as the IETF fields (see
/// [`ratelimit_value`]), and the reset in whole seconds rounded up.
pub fn append(
    headers: &mut HeaderMap,
    style: HeaderStyle,
    name: &PolicyName,
    quota: &Quota,
    snapshot: &Snapshot,
) {
    append_as(headers, style, name, quota, snapshot, Verdict::Allowed);
}

/// [`append`] for the response to a denied request: the same policy, and `r` is the
/// bucket's own remaining units (fewer than the request costs, so 0 for a one-unit
/// request) rather than the scaled count of [`ratelimit_value`].
pub fn append_denied(
    headers: &mut HeaderMap,
    style: HeaderStyle,
    name: &PolicyName,
    quota: &Quota,
    snapshot: &Snapshot,
) {
    append_as(headers, style, name, quota, snapshot, Verdict::Denied);
}

fn append_as(
    headers: &mut HeaderMap,
    style: HeaderStyle,
    name: &PolicyName,
    quota: &Quota,
    snapshot: &Snapshot,
    verdict: Verdict,
) {
    let (q, w) = quota_and_window(quota, snapshot.limit);
    let remaining = remaining_field(q, snapshot, verdict);
    if style.ietf {
        headers.append(RATELIMIT_POLICY.clone(), policy_item(name, q, w));
        headers.append(
            RATELIMIT.clone(),
            ratelimit_item(name, quota, (q, w), remaining, snapshot),
        );
    }
    append_trios(headers, style, quota, (q, w), remaining, snapshot);
}

/// The trios state the same scaled `q` and `r` as the IETF fields: the unscaled
/// snapshot of a strictly spaced quota says `remaining: 0, reset: 1` after every
/// request, which a client reads as "spent until the reset" and slows to 1/s.
fn append_trios(
    headers: &mut HeaderMap,
    style: HeaderStyle,
    quota: &Quota,
    policy: (u64, u64),
    remaining: u64,
    snapshot: &Snapshot,
) {
    let trio = |headers: &mut HeaderMap, names: [&HeaderName; 3]| {
        let reset = reset_secs(quota, snapshot, policy, remaining);
        if !closer_to_exhaustion(headers, names, remaining, reset) {
            return;
        }
        for (name, value) in names.into_iter().zip([policy.0, remaining, reset]) {
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

/// Whether a trio of `remaining` and `reset` should replace the one `names` already
/// hold (an inner layer's, or the service's own): when there is none, or it leaves more
/// units, or as many for a shorter time. A client reads one trio as the limit it is
/// under, so it must be the one that refuses it next; an inner layer's 99 left over an
/// outer layer's 0 told a client to go on into a 429. A trio that cannot be read is
/// not ours to judge, and stays.
fn closer_to_exhaustion(
    headers: &HeaderMap,
    names: [&HeaderName; 3],
    remaining: u64,
    reset: u64,
) -> bool {
    if !headers.contains_key(names[0]) {
        return true;
    }
    let read = |name: &HeaderName| -> Option<u64> {
        headers.get(name)?.to_str().ok()?.trim().parse().ok()
    };
    match read(names[1]) {
        Some(held) if remaining != held => remaining < held,
        Some(_) => read(names[2]).is_some_and(|held| reset > held),
        None => false,
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
    /// The last quota and limit rendered, with their `q` and `RateLimit-Policy` value.
    policy: RwLock<Option<CachedPolicy>>,
}

struct CachedPolicy {
    quota: Quota,
    limit: u64,
    q: u64,
    w: u64,
    value: HeaderValue,
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

    /// The policy's `q` and `w` and its `RateLimit-Policy` value.
    fn policy(&self, quota: &Quota, limit: u64) -> ((u64, u64), HeaderValue) {
        if let Ok(cached) = self.policy.read() {
            if let Some(c) = &*cached {
                if c.quota == *quota && c.limit == limit {
                    return ((c.q, c.w), c.value.clone());
                }
            }
        }
        let (q, w) = quota_and_window(quota, limit);
        let value = policy_item(&self.name, q, w);
        if let Ok(mut cached) = self.policy.write() {
            *cached = Some(CachedPolicy {
                quota: *quota,
                limit,
                q,
                w,
                value: value.clone(),
            });
        }
        ((q, w), value)
    }

    fn ratelimit(
        &self,
        quota: &Quota,
        policy: (u64, u64),
        remaining: u64,
        snapshot: &Snapshot,
    ) -> HeaderValue {
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
            && push(decimal(remaining.min(SF_INTEGER_MAX), &mut digits))
            && push(b";t=")
            && push(decimal(
                reset_secs(quota, snapshot, policy, remaining).min(SF_INTEGER_MAX),
                &mut digits,
            ));
        match fits {
            true => HeaderValue::from_bytes(&buf[..len])
                .unwrap_or_else(|_| ratelimit_item(&self.name, quota, policy, remaining, snapshot)),
            false => ratelimit_item(&self.name, quota, policy, remaining, snapshot),
        }
    }

    /// The fields of an allowed request's response ([`append`]'s output).
    pub(crate) fn append(&self, headers: &mut HeaderMap, quota: &Quota, snapshot: &Snapshot) {
        self.append_as(headers, quota, snapshot, Verdict::Allowed);
    }

    /// The fields of a denial ([`append_denied`]'s output).
    pub(crate) fn append_denied(
        &self,
        headers: &mut HeaderMap,
        quota: &Quota,
        snapshot: &Snapshot,
    ) {
        self.append_as(headers, quota, snapshot, Verdict::Denied);
    }

    fn append_as(
        &self,
        headers: &mut HeaderMap,
        quota: &Quota,
        snapshot: &Snapshot,
        verdict: Verdict,
    ) {
        let ((q, w), policy) = self.policy(quota, snapshot.limit);
        let remaining = remaining_field(q, snapshot, verdict);
        if self.style.ietf {
            headers.append(RATELIMIT_POLICY.clone(), policy);
            headers.append(
                RATELIMIT.clone(),
                self.ratelimit(quota, (q, w), remaining, snapshot),
            );
        }
        append_trios(headers, self.style, quota, (q, w), remaining, snapshot);
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
        let quota = Quota::per_second(1).unwrap();
        assert_eq!(
            ratelimit_value(&name, &quota, &snap),
            r#""per \"ip\" \\ key";r=0;t=0"#
        );
        assert!(PolicyName::new("caf\u{e9}").is_err());
        assert!(PolicyName::new("a\nb").is_err());
    }

    fn q(count: u64, period_ms: u64) -> Quota {
        Quota::new(count, Duration::from_millis(period_ms)).unwrap()
    }

    #[test]
    fn whole_second_burst_windows_are_the_quota_itself() {
        for (quota, limit, want) in [
            (Quota::per_minute(100).unwrap(), 100, (100, 60)),
            (Quota::per_hour(100).unwrap(), 100, (100, 3600)),
            (Quota::per_second(1000).unwrap(), 1000, (1000, 1)),
            (
                Quota::per_second(5).unwrap().with_burst(20).unwrap(),
                20,
                (20, 4),
            ),
            (Quota::per_hour(1).unwrap(), 1, (1, 3600)),
            // T = 333_333_333 ns, but the period is exact: 3 per second.
            (q(3, 1000), 3, (3, 1)),
        ] {
            assert_eq!(quota_and_window(&quota, limit), want, "{quota:?}");
        }
    }

    #[test]
    fn sub_second_and_fractional_windows_scale_q() {
        for (quota, limit, want) in [
            // Strict spacing and the leaky bucket (snapshot limit 1): the rate, not 1/s.
            (
                Quota::per_second(100).unwrap().with_burst(1).unwrap(),
                1,
                (100, 1),
            ),
            (Quota::from_rate(100.0, 1).unwrap(), 1, (100, 1)),
            (Quota::per_second(100).unwrap(), 1, (100, 1)),
            (
                Quota::per_second(100).unwrap().with_burst(10).unwrap(),
                10,
                (100, 1),
            ),
            // 4.2 s of burst; 5 s would refill 8.33 units, 6 s refills 10 exactly.
            (
                Quota::per_minute(100).unwrap().with_burst(7).unwrap(),
                7,
                (10, 6),
            ),
            // A leaky bucket at 100/min: 1 s refills 1.67, 2 s 3.33, 3 s exactly 5.
            (Quota::per_minute(100).unwrap(), 1, (5, 3)),
            (
                Quota::per_second(10).unwrap().with_burst(25).unwrap(),
                25,
                (30, 3),
            ),
            // `count × T` falls 2 ns short of 2 s: 6 units in 2 s, not 5.
            (q(3, 1000).with_burst(6).unwrap(), 6, (6, 2)),
            // Default burst over a non-whole period: 3 per 1.5 s is 2 per second.
            (q(3, 1500), 3, (4, 2)),
            (
                Quota::per_hour(7).unwrap().with_burst(1).unwrap(),
                1,
                (1, 515),
            ),
        ] {
            assert_eq!(
                quota_and_window(&quota, limit),
                want,
                "{quota:?} limit {limit}"
            );
        }
    }

    // `t` is measured at the rate the quota states: the interval's rounding up (2 ns for
    // three units of 3/s) is taken off, and nothing else (subtracting the snapshot's
    // limit in nanoseconds said t=0 for a drained 1e9/s bucket, t=50 for a fixed window
    // of 1e10 a minute with 60 s to go, and still t=2 for a drained 3/s leaky bucket,
    // whose snapshot limit is 1).
    #[test]
    fn t_takes_off_the_intervals_rounding_only() {
        let t = |quota: Quota, limit: u64, reset: Duration| {
            full_in_secs(
                &quota,
                &Snapshot {
                    limit,
                    remaining: 0,
                    reset,
                },
            )
        };
        let three = Quota::per_second(3).unwrap();
        assert_eq!(t(three, 3, three.emission_interval() * 3), 1);
        assert_eq!(t(three, 1, three.emission_interval() * 3), 1);
        assert_eq!(
            t(
                three,
                3,
                three.emission_interval() * 3 + Duration::from_nanos(3)
            ),
            2
        );
        let giga = Quota::per_second(1_000_000_000).unwrap();
        assert_eq!(t(giga, giga.burst(), Duration::from_secs(1)), 1);
        let window = Quota::per_minute(10_000_000_000).unwrap();
        assert_eq!(t(window, window.count(), Duration::from_secs(60)), 60);
    }

    // At r=0, `t` carries what the policy's `w / q` adds over the quota's interval, so
    // that `t - (q - 1) × w / q` is never before the next unit; exact policies and
    // r > 0 keep the bare time until full.
    #[test]
    fn t_at_r_zero_covers_the_policys_rounded_window() {
        let t = |quota: Quota, remaining: u64, reset: Duration| {
            let policy = quota_and_window(&quota, quota.burst());
            let snapshot = Snapshot {
                limit: quota.burst(),
                remaining,
                reset,
            };
            (policy, reset_secs(&quota, &snapshot, policy, remaining))
        };
        // 1.99 s a unit, q=2;w=4: drained with 2.995 s to full, the next unit is
        // 1.005 s away; t=3 would read as 1 s, t=4 reads as 2 s.
        let rounded = q(100, 199_000).with_burst(2).unwrap();
        let reset = Duration::from_millis(2_995);
        assert_eq!(t(rounded, 0, reset), ((2, 4), 4));
        assert_eq!(t(rounded, 1, reset), ((2, 4), 3));
        // Up to (q - 1) × (w / q - T) = 10 ms more: 2.985 s still says 3.
        assert_eq!(t(rounded, 0, Duration::from_millis(2_985)), ((2, 4), 3));
        // Exact policies: nothing added.
        let minute = Quota::per_minute(10).unwrap();
        assert_eq!(t(minute, 0, Duration::from_secs(60)), ((10, 60), 60));
        let three = Quota::per_second(3).unwrap();
        assert_eq!(t(three, 0, three.emission_interval() * 3), ((3, 1), 1));
        // Huge values: no overflow, and never more than a window added.
        for (quota, limit) in [
            (Quota::per_second(1000).unwrap(), u64::MAX),
            (Quota::new(1, Duration::from_nanos(1 << 62)).unwrap(), 1),
            (q(3, 10_000).with_burst(2).unwrap(), 2),
        ] {
            let policy = quota_and_window(&quota, limit);
            for reset in [Duration::ZERO, Duration::from_secs(7), Duration::MAX] {
                let snapshot = Snapshot {
                    limit,
                    remaining: 0,
                    reset,
                };
                let secs = reset_secs(&quota, &snapshot, policy, 0);
                let bare = full_in_secs(&quota, &snapshot);
                assert!(secs >= bare && secs <= bare.saturating_add(policy.1));
            }
        }
    }

    #[test]
    fn window_edge_cases_do_not_overflow() {
        let per_ns = Quota::new(1_000_000_000, Duration::from_secs(1)).unwrap();
        assert_eq!(per_ns.emission_interval(), Duration::from_nanos(1));
        assert_eq!(quota_and_window(&per_ns, 1_000_000_000), (1_000_000_000, 1));
        assert_eq!(quota_and_window(&per_ns, 1), (1_000_000_000, 1));
        assert_eq!(quota_and_window(&per_ns, 0), (0, 1));
        // Once in 2^62 ns (146 years): the window is the period rounded up.
        let rare = Quota::new(1, Duration::from_nanos(1 << 62)).unwrap();
        assert_eq!(quota_and_window(&rare, 1), (1, 4_611_686_019));
        // A store reporting a limit far over the burst: saturated, no overflow.
        let fast = Quota::per_second(1000).unwrap();
        assert_eq!(
            quota_and_window(&fast, u64::MAX),
            (u64::MAX, 18_446_744_073_709_552)
        );
        assert_eq!(quota_and_window(&per_ns, u64::MAX).0, u64::MAX);
        assert_eq!(
            policy_value(&PolicyName::default(), &fast, u64::MAX),
            r#""default";q=999999999999999;w=999999999999999"#
        );
        let snap = Snapshot {
            limit: u64::MAX,
            remaining: u64::MAX,
            reset: Duration::MAX,
        };
        let v = ratelimit_value(&PolicyName::default(), &fast, &snap);
        assert_eq!(v, r#""default";r=999999999999999;t=999999999999999"#);
    }

    proptest::proptest! {
        /// The advertised rate is never over the real one and at most 1% under it,
        /// `q` covers the limit, and `w` is at least a second and covers the burst.
        #[test]
        fn advertised_rate_is_the_real_rate_within_one_percent(
            count in 1u64..2_000_000,
            period_ms in 1u64..10_000_000,
            burst in 1u64..5_000,
            limit_is_count in proptest::bool::ANY,
        ) {
            let Ok(quota) = Quota::new(count, Duration::from_millis(period_ms)) else {
                return Ok(());
            };
            let Ok(quota) = quota.with_burst(burst) else { return Ok(()); };
            let limit = if limit_is_count { quota.count() } else { quota.burst() };
            let (q, w) = quota_and_window(&quota, limit);
            let t = quota.emission_interval().as_nanos();
            let w_ns = u128::from(w) * NANOS_PER_SEC;
            proptest::prop_assert!(w >= 1 && q >= limit);
            // Over the real rate by at most the interval's rounding: 1 ns per unit.
            proptest::prop_assert!(u128::from(q) * t <= w_ns + u128::from(q), "q={q} w={w} over the rate");
            proptest::prop_assert!(u128::from(q) * t * 100 >= w_ns * 99, "q={q} w={w} >1% under");
            proptest::prop_assert!(w_ns + NANOS_PER_SEC > u128::from(limit) * t);
        }
    }

    #[test]
    fn remaining_is_scaled_with_q_on_allowed_responses_only() {
        let strict = Quota::per_second(100).unwrap().with_burst(1).unwrap();
        let spent = Snapshot {
            limit: 1,
            remaining: 0,
            reset: Duration::from_millis(10),
        };
        let (mut allowed, mut denied) = (HeaderMap::new(), HeaderMap::new());
        let name = PolicyName::default();
        append(&mut allowed, HeaderStyle::default(), &name, &strict, &spent);
        append_denied(&mut denied, HeaderStyle::default(), &name, &strict, &spent);
        assert_eq!(allowed["ratelimit-policy"], r#""default";q=100;w=1"#);
        // The same bucket with a burst of 100 has 99 left, and is full within 1 s.
        assert_eq!(allowed["ratelimit"], r#""default";r=99;t=1"#);
        assert_eq!(denied["ratelimit-policy"], r#""default";q=100;w=1"#);
        assert_eq!(denied["ratelimit"], r#""default";r=0;t=1"#);
        // Unscaled policies are unchanged: r is the snapshot's remaining.
        let minute = Quota::per_minute(100).unwrap();
        let snap = Snapshot {
            limit: 100,
            remaining: 40,
            reset: Duration::from_millis(36_500),
        };
        assert_eq!(
            ratelimit_value(&name, &minute, &snap),
            r#""default";r=40;t=37"#
        );
    }

    #[test]
    fn the_cached_renderer_writes_what_sfv_writes() {
        let quotas = [
            Quota::per_second(3).unwrap(),
            Quota::per_minute(100).unwrap().with_burst(7).unwrap(),
            Quota::per_second(100).unwrap().with_burst(1).unwrap(),
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
                    let (mut fast, mut slow) = (HeaderMap::new(), HeaderMap::new());
                    renderer.append_denied(&mut fast, &quota, &snap);
                    append_denied(&mut slow, HeaderStyle::default(), &name, &quota, &snap);
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
        // A policy with fewer left, or as few for longer, states the trio instead.
        let fewer = Snapshot {
            remaining: 1,
            ..snap
        };
        append(&mut map, style, &PolicyName::default(), &q, &fewer);
        assert_eq!(map["x-ratelimit-remaining"], "1");
        let longer = Snapshot {
            remaining: 1,
            reset: Duration::from_millis(1_500),
            ..snap
        };
        append(&mut map, style, &PolicyName::default(), &q, &longer);
        assert_eq!(map["x-ratelimit-reset"], "2");
        assert_eq!(map["ratelimit-reset"], "2");
        // A trio that cannot be read is left alone, its reset too.
        map.insert("x-ratelimit-reset", HeaderValue::from_static("soon"));
        append(&mut map, style, &PolicyName::default(), &q, &longer);
        assert_eq!(map["x-ratelimit-reset"], "soon");
        map.insert("x-ratelimit-remaining", HeaderValue::from_static("many"));
        append(&mut map, style, &PolicyName::default(), &q, &fewer);
        assert_eq!(map["x-ratelimit-remaining"], "many");
    }
}
