//! Reading header values as bytes: bounded, lenient, never panicking.
//!
//! `HeaderValue::to_str` rejects any non-ASCII byte, so a single odd byte would hide a
//! whole header; these helpers read the bytes and ignore only what they cannot parse.

use http::HeaderMap;
use std::time::Duration;

/// Longest header line read; a longer one is ignored (no server sends a sane
/// rate-limit value this long).
pub(crate) const MAX_LINE: usize = 4096;
/// Most lines of one field read (a field may be split over several lines).
pub(crate) const MAX_LINES: usize = 16;
/// Longest partition key or name kept.
pub(crate) const MAX_KEY: usize = 256;
/// Longest number read, in digits (beyond this the value saturates anyway).
const MAX_DIGITS: usize = 40;

/// The lines of a field, trimmed, bounded in number and length.
pub(crate) fn lines<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a [u8]> {
    headers
        .get_all(name)
        .iter()
        .take(MAX_LINES)
        .map(|v| v.as_bytes())
        .filter(|b| b.len() <= MAX_LINE)
        .map(trim)
}

/// The first line of a field, trimmed.
pub(crate) fn first<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    lines(headers, name).next()
}

/// All lines of a field joined with `", "` (how RFC 9110 combines a split list field).
pub(crate) fn joined(headers: &HeaderMap, name: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for line in lines(headers, name) {
        if !out.is_empty() {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(line);
    }
    (!out.is_empty()).then_some(out)
}

/// Strips optional whitespace (space, tab) at both ends.
pub(crate) fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(start, |p| p + 1);
    &bytes[start..end.max(start)]
}

/// A non-negative decimal number of seconds (`2`, `2.0`, `596.0`, `1470173023.123`),
/// saturating on overflow; fraction digits past nanoseconds are ignored.
pub(crate) fn seconds(bytes: &[u8]) -> Option<Duration> {
    let bytes = trim(bytes);
    let (int, frac) = match bytes.iter().position(|b| *b == b'.') {
        Some(dot) => (&bytes[..dot], Some(&bytes[dot + 1..])),
        None => (bytes, None),
    };
    if int.is_empty() || int.len() > MAX_DIGITS || !int.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let secs = int.iter().fold(0u64, |acc, d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    let mut nanos = 0u32;
    if let Some(frac) = frac {
        if frac.is_empty() || frac.len() > MAX_DIGITS || !frac.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut scale = 100_000_000u32;
        for d in frac.iter().take(9) {
            nanos += u32::from(d - b'0') * scale;
            scale /= 10;
        }
    }
    Some(Duration::new(secs, nanos))
}

/// A non-negative decimal number of milliseconds, saturating.
pub(crate) fn millis(bytes: &[u8]) -> Option<Duration> {
    // Reading the digits as seconds then dividing keeps the fraction exact to the
    // nanosecond and saturation still ends at a huge value, which the cap turns into
    // an error.
    let as_secs = seconds(bytes)?;
    let whole_ms = as_secs.as_secs();
    let frac_ns = u64::from(as_secs.subsec_nanos()) / 1000;
    Some(Duration::from_millis(whole_ms).saturating_add(Duration::from_nanos(frac_ns)))
}

/// A count (`50`, `596.0`): the integer part of a non-negative decimal, saturating.
pub(crate) fn count(bytes: &[u8]) -> Option<u64> {
    seconds(bytes).map(|d| d.as_secs())
}

/// The leading item of a comma-separated value (`10, 10;w=1` gives `10`), stripped of
/// parameters.
pub(crate) fn leading_item(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .position(|b| *b == b',' || *b == b';')
        .unwrap_or(bytes.len());
    trim(&bytes[..end])
}

/// `true` / `false`, case-insensitive; anything else is unknown.
pub(crate) fn boolean(bytes: &[u8]) -> Option<bool> {
    let bytes = trim(bytes);
    if bytes.eq_ignore_ascii_case(b"true") || bytes == b"1" || bytes == b"?1" {
        Some(true)
    } else if bytes.eq_ignore_ascii_case(b"false") || bytes == b"0" || bytes == b"?0" {
        Some(false)
    } else {
        None
    }
}

/// A bounded copy of an opaque key.
pub(crate) fn key(bytes: &[u8]) -> Option<Vec<u8>> {
    let bytes = trim(bytes);
    (!bytes.is_empty() && bytes.len() <= MAX_KEY).then(|| bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_lenient_but_strict_about_garbage() {
        assert_eq!(seconds(b" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(seconds(b"2.5"), Some(Duration::from_millis(2500)));
        assert_eq!(seconds(b"-1"), None);
        assert_eq!(seconds(b"1e3"), None);
        assert_eq!(seconds(b"."), None);
        assert_eq!(seconds(b"2."), None);
        assert_eq!(
            seconds(b"99999999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(millis(b"1500"), Some(Duration::from_millis(1500)));
        assert_eq!(millis(b"0.5"), Some(Duration::from_micros(500)));
        assert_eq!(count(b"596.0"), Some(596));
        assert_eq!(leading_item(b"10, 10;w=1"), b"10");
        assert_eq!(trim(b" \t "), b"");
    }
}
