//! gRPC answers: a denial is status `RESOURCE_EXHAUSTED` (8) with
//! `grpc-retry-pushback-ms`, the retry delay gRPC clients honour (gRFC A6).
//!
//! The layer in gRPC mode ([`super::HttpRateLimitLayer::grpc`]) writes a trailers-only
//! response itself, so it works in front of any gRPC server. With feature `tonic`,
//! `grpc::status` builds the same answer as a `tonic::Status` for code that decides inside
//! a handler or interceptor.
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_http::server::grpc;
//!
//! assert_eq!(grpc::pushback_ms(Duration::from_micros(200_001)), 201);
//! assert_eq!(grpc::code_for(http::StatusCode::TOO_MANY_REQUESTS), grpc::RESOURCE_EXHAUSTED);
//! assert_eq!(grpc::key_error_code(http::StatusCode::INTERNAL_SERVER_ERROR), grpc::INTERNAL);
//! assert_eq!(grpc::key_error_code(http::StatusCode::UNPROCESSABLE_ENTITY), grpc::INVALID_ARGUMENT);
//! ```

use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use http::StatusCode;
use std::time::Duration;

/// `RESOURCE_EXHAUSTED`: the status of a rate-limited call.
pub const RESOURCE_EXHAUSTED: u16 = 8;
/// `UNAVAILABLE`: the status when the server sheds load (HTTP 503).
pub const UNAVAILABLE: u16 = 14;
/// `INVALID_ARGUMENT`: a request whose key could not be read (HTTP 400).
pub const INVALID_ARGUMENT: u16 = 3;
/// `UNAUTHENTICATED`: a request without credentials to key it by (HTTP 401).
pub const UNAUTHENTICATED: u16 = 16;
/// `PERMISSION_DENIED` (HTTP 403).
pub const PERMISSION_DENIED: u16 = 7;
/// `INTERNAL`: the server's own setup failed (HTTP 500, e.g. no peer address to key
/// by), which clients must not take for throttling.
pub const INTERNAL: u16 = 13;

/// `grpc-retry-pushback-ms`.
pub static GRPC_RETRY_PUSHBACK_MS: HeaderName = HeaderName::from_static("grpc-retry-pushback-ms");
static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// Milliseconds for `grpc-retry-pushback-ms`: rounded up, at least 1.
pub fn pushback_ms(wait: Duration) -> u64 {
    let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    let ms = if wait.as_nanos() % 1_000_000 > 0 {
        ms.saturating_add(1)
    } else {
        ms
    };
    ms.max(1)
}

/// The gRPC status code that carries the meaning of an HTTP status the layer is
/// configured with.
pub fn code_for(status: StatusCode) -> u16 {
    match status {
        StatusCode::TOO_MANY_REQUESTS => RESOURCE_EXHAUSTED,
        StatusCode::SERVICE_UNAVAILABLE => UNAVAILABLE,
        StatusCode::BAD_REQUEST => INVALID_ARGUMENT,
        StatusCode::UNAUTHORIZED => UNAUTHENTICATED,
        StatusCode::FORBIDDEN => PERMISSION_DENIED,
        _ => RESOURCE_EXHAUSTED,
    }
}

/// The gRPC status code for a request whose key could not be read, answered with
/// `status`: never `RESOURCE_EXHAUSTED`, which clients take for a throttle and retry.
pub fn key_error_code(status: StatusCode) -> u16 {
    match status {
        StatusCode::UNAUTHORIZED => UNAUTHENTICATED,
        StatusCode::FORBIDDEN => PERMISSION_DENIED,
        status if status.is_server_error() => INTERNAL,
        _ => INVALID_ARGUMENT,
    }
}

/// Turns `headers` into a trailers-only gRPC response's headers with `code` and
/// `message` (visible ASCII; anything else is dropped from the message).
pub(crate) fn trailers_only(
    headers: &mut HeaderMap,
    code: u16,
    message: &str,
    pushback: Option<Duration>,
) {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(GRPC_STATUS.clone(), HeaderValue::from(code));
    let message: String = message
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .filter(|c| *c != '%')
        .collect();
    if let Ok(value) = HeaderValue::try_from(message) {
        headers.insert(GRPC_MESSAGE.clone(), value);
    }
    if let Some(wait) = pushback {
        headers.insert(
            GRPC_RETRY_PUSHBACK_MS.clone(),
            HeaderValue::from(pushback_ms(wait)),
        );
    }
}

/// A `RESOURCE_EXHAUSTED` status telling the client to retry after `retry_after`
/// (`grpc-retry-pushback-ms` in its metadata).
///
/// ```
/// use std::time::Duration;
/// let status = tower_ratelimit_http::server::grpc::status(Duration::from_millis(1500));
/// assert_eq!(status.code(), tonic::Code::ResourceExhausted);
/// assert_eq!(status.metadata().get("grpc-retry-pushback-ms").unwrap(), "1500");
/// ```
#[cfg(feature = "tonic")]
pub fn status(retry_after: Duration) -> tonic::Status {
    let secs = super::headers::retry_after_secs(retry_after);
    let mut status =
        tonic::Status::resource_exhausted(format!("rate limited; retry after {secs} s"));
    status.metadata_mut().insert(
        "grpc-retry-pushback-ms",
        tonic::metadata::MetadataValue::from(pushback_ms(retry_after)),
    );
    status
}
