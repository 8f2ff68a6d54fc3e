//! Explicit retry waits: `Retry-After` (RFC 9110 §10.2.3) and the millisecond headers
//! `retry-after-ms` (OpenAI), `x-amz-retry-after` (AWS), `grpc-retry-pushback-ms`
//! (gRPC retry design A6).

use super::bytes;
use super::collect::Collected;
use super::time::{self, ResponseTime};
use crate::feedback::model::WaitSource;
use std::time::Duration;

/// Reads every explicit retry header.
pub(crate) fn read(headers: &http::HeaderMap, time: &ResponseTime, out: &mut Collected) {
    for name in ["retry-after-ms", "x-amz-retry-after"] {
        for line in bytes::lines(headers, name) {
            if let Some(wait) = bytes::millis(line) {
                out.wait(WaitSource::Milliseconds, wait);
            }
        }
    }
    if let Some(line) = bytes::first(headers, "grpc-retry-pushback-ms") {
        // A6: a negative or malformed pushback means the server does not want a retry.
        match bytes::millis(line) {
            Some(wait) => out.wait(WaitSource::Milliseconds, wait),
            None => out.do_not_retry = true,
        }
    }
    for line in bytes::lines(headers, "retry-after") {
        if let Some(wait) = retry_after(line, time) {
            out.wait(WaitSource::RetryAfter, wait);
        }
    }
    if let Some(status) = bytes::first(headers, "grpc-status").and_then(bytes::count) {
        out.grpc_status = u32::try_from(status).ok();
    }
}

/// One `Retry-After` value: delay-seconds (leniently with a fraction, as Shopify
/// sends `2.0`) or an HTTP-date in any of its three forms; a date in the past is a
/// wait of zero.
pub(crate) fn retry_after(value: &[u8], time: &ResponseTime) -> Option<Duration> {
    let value = bytes::trim(value);
    match value.first() {
        Some(b) if b.is_ascii_digit() => bytes::seconds(value),
        Some(_) => time::http_date(value).map(|at| time.until(at)),
        None => None,
    }
}
