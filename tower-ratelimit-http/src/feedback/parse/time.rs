//! Turning dates and epochs into waits, measured against the response's own `Date`.
//!
//! A server whose clock is an hour off still means "in 2 seconds" when it sends a
//! reset 2 seconds after its own `Date`; measuring against the local clock would wait
//! an hour or not at all.

use super::bytes;
use http::HeaderMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The instant a response was produced, on the server's clock when it said so.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseTime {
    base: SystemTime,
}

impl ResponseTime {
    /// The response's `Date` if it parses, else the local `now`.
    pub(crate) fn new(headers: &HeaderMap, now: SystemTime) -> ResponseTime {
        let base = bytes::first(headers, "date")
            .and_then(http_date)
            .unwrap_or(now);
        ResponseTime { base }
    }

    /// The wait until `instant` (zero when it is past).
    pub(crate) fn until(&self, instant: SystemTime) -> Duration {
        instant.duration_since(self.base).unwrap_or(Duration::ZERO)
    }

    /// The wait until a Unix epoch instant.
    pub(crate) fn until_epoch(&self, since_epoch: Duration) -> Duration {
        match UNIX_EPOCH.checked_add(since_epoch) {
            Some(instant) => self.until(instant),
            // Beyond what the platform can represent: as far as it gets, which the
            // cap then reports.
            None => Duration::MAX,
        }
    }
}

/// An HTTP-date in any of the three forms RFC 9110 requires (IMF-fixdate, RFC 850,
/// asctime).
pub(crate) fn http_date(value: &[u8]) -> Option<SystemTime> {
    let text = std::str::from_utf8(bytes::trim(value)).ok()?;
    httpdate::parse_http_date(text).ok()
}

/// How to read a reset value that may be an epoch or a delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResetKind {
    /// Seconds from now.
    Delta,
    /// Unix epoch seconds (possibly fractional).
    EpochSeconds,
    /// The documented default: a value ≥ 1e12 is epoch milliseconds, ≥ 1e9 epoch
    /// seconds, anything smaller a delta in seconds.
    Guess,
}

/// A reset value, as a wait from the response, and whether it was absolute.
pub(crate) fn reset(
    value: &[u8],
    kind: ResetKind,
    time: &ResponseTime,
) -> Option<(Duration, bool)> {
    let raw = bytes::seconds(value)?;
    let secs = raw.as_secs();
    let kind = match kind {
        ResetKind::Guess if secs >= 1_000_000_000_000 => {
            // Epoch milliseconds: the integer part is the millisecond count.
            let fraction_of_ms = (raw - Duration::from_secs(secs)) / 1000;
            let ms = Duration::from_millis(secs).saturating_add(fraction_of_ms);
            return Some((time.until_epoch(ms), true));
        }
        ResetKind::Guess if secs >= 1_000_000_000 => ResetKind::EpochSeconds,
        ResetKind::Guess => ResetKind::Delta,
        other => other,
    };
    match kind {
        ResetKind::EpochSeconds => Some((time.until_epoch(raw), true)),
        _ => Some((raw, false)),
    }
}

/// An RFC 3339 timestamp (`2024-05-01T12:00:30Z`, `2024-05-01T12:00:30.5+02:00`).
pub(crate) fn rfc3339(value: &[u8]) -> Option<SystemTime> {
    let v = bytes::trim(value);
    if v.len() < 20 || v.len() > 64 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let part = v.get(range)?;
        part.iter().all(u8::is_ascii_digit).then(|| {
            part.iter()
                .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'))
        })
    };
    let sep = |i: usize, allowed: &[u8]| v.get(i).is_some_and(|b| allowed.contains(b));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    // Second 60 is a leap second; treat it as the next second's start.
    if hour > 23 || minute > 59 || second > 60 || year < 1970 {
        return None;
    }
    let mut rest = &v[19..];
    let mut nanos = 0u32;
    if rest.first() == Some(&b'.') {
        let digits = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let mut scale = 100_000_000u32;
        for d in rest[1..1 + digits].iter().take(9) {
            nanos += u32::from(d - b'0') * scale;
            scale /= 10;
        }
        rest = &rest[1 + digits..];
    }
    let offset_secs: i64 = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let h = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let m = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if h > 23 || m > 59 {
                return None;
            }
            let s = h * 3600 + m * 60;
            if *sign == b'+' {
                s
            } else {
                -s
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let local = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64;
    let utc = local.checked_sub(offset_secs)?;
    let utc = u64::try_from(utc).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(utc, nanos))
}

fn is_leap(year: u64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`), for years ≥ 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> i64 {
    let y = year as i64 - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A Go duration string as OpenAI sends it: `1s`, `6m0s`, `12ms`, `1h2m3.5s`.
pub(crate) fn go_duration(value: &[u8]) -> Option<Duration> {
    let mut v = bytes::trim(value);
    if v.is_empty() || v.len() > 64 {
        return None;
    }
    if v == b"0" {
        return Some(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    while !v.is_empty() {
        let n = v
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .count();
        let amount = bytes::seconds(&v[..n])?;
        v = &v[n..];
        let unit_len = v
            .iter()
            .take_while(|b| !(b.is_ascii_digit() || **b == b'.'))
            .count();
        let unit = &v[..unit_len];
        v = &v[unit_len..];
        // `amount` holds the number as if it were seconds; scale it to the unit.
        let part = match unit {
            b"h" => amount.saturating_mul(3600),
            b"m" => amount.saturating_mul(60),
            b"s" => amount,
            b"ms" => amount / 1000,
            b"us" | b"\xc2\xb5s" => amount / 1_000_000,
            b"ns" => amount / 1_000_000_000,
            _ => return None,
        };
        total = total.saturating_add(part);
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_forms() {
        let t = |s: &str| rfc3339(s.as_bytes()).map(|t| t.duration_since(UNIX_EPOCH).unwrap());
        assert_eq!(t("1970-01-01T00:00:00Z"), Some(Duration::ZERO));
        assert_eq!(
            t("2000-03-01T00:00:00Z"),
            Some(Duration::from_secs(951_868_800))
        );
        assert_eq!(
            t("2024-02-29T12:00:00.25Z"),
            Some(Duration::new(1_709_208_000, 250_000_000))
        );
        assert_eq!(
            t("2024-02-29T14:00:00+02:00"),
            Some(Duration::from_secs(1_709_208_000))
        );
        assert_eq!(t("2023-02-29T12:00:00Z"), None);
        assert_eq!(t("2024-13-01T12:00:00Z"), None);
        assert_eq!(t("2024-01-01T12:00:00"), None);
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(b"6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(go_duration(b"12ms"), Some(Duration::from_millis(12)));
        assert_eq!(
            go_duration(b"1h2m3.5s"),
            Some(Duration::from_millis(3_723_500))
        );
        assert_eq!(go_duration(b"7.66s"), Some(Duration::from_millis(7660)));
        assert_eq!(go_duration(b"5"), None);
        assert_eq!(go_duration(b"s"), None);
    }
}
