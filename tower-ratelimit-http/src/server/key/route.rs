//! The route as the key: one quota per endpoint.
//!
//! Inside an axum router (`Router::route_layer`, or a layer on a method router) the key
//! is the route pattern axum matched (`/items/{id}`), with feature `axum`. A request
//! that matched no route (a `fallback`, a `nest_service`, a layer around the whole
//! `Router`, or no `axum` feature) gets the one key [`UNMATCHED`]: the raw path is
//! the client's to choose, and keying by it would hand every client as many buckets
//! as it can invent paths. Routers that record no matched route can key by the first
//! segments of the path instead ([`RouteKey::path_segments`]).
//!
//! ```
//! use tower_ratelimit_http::server::key::{route, KeyExtractor, RouteKey};
//!
//! let request = http::Request::get("/api/items/7?full=1").body(())?;
//! // No router matched this request (no axum feature here): the shared key.
//! assert_eq!(RouteKey::new().extract(&request)?, route::UNMATCHED);
//! assert_eq!(RouteKey::path_segments(2).extract(&request)?, "/api/items");
//! assert_eq!(RouteKey::path_segments(2).with_method().extract(&request)?, "GET /api/items");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::{KeyError, KeyExtractor};
use http::{Method, Request};
use std::borrow::Cow;

/// The key of every request that matched no route (see the [module docs](self)).
pub const UNMATCHED: &str = "<unmatched>";

/// The longest path prefix [`RouteKey::path_segments`] keys by, so that a client
/// cannot make the store hold kilobytes per key.
pub const MAX_PATH_LEN: usize = 256;

/// Keys requests by matched route (feature `axum`) or by a path prefix, optionally
/// with the method.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteKey {
    method: bool,
    /// `None`: the matched route; `Some(n)`: the first `n` segments of the path.
    segments: Option<usize>,
}

impl RouteKey {
    /// The route axum matched, or [`UNMATCHED`].
    pub fn new() -> RouteKey {
        RouteKey {
            method: false,
            segments: None,
        }
    }

    /// The first `segments` segments of the request path (`/api/items/7` with 2 is
    /// `/api/items`), for routers that record no matched route. The path is
    /// normalised first as RFC 3986 (section 6.2.2) does, and empty segments are
    /// dropped, so that the spellings a lenient backend serves alike share a key:
    /// `/api//items`, `/api/./items`, `/x/../api/items` and `/api/%69tems` all key as
    /// `/api/items` (encoded reserved characters stay encoded, in upper case:
    /// `%2f` is `%2F`, not a slash; letters keep their case, as paths do). A client can
    /// still vary these segments, so combine this key with a client key, and rely on
    /// the store's cap on keys; a prefix is cut at [`MAX_PATH_LEN`] bytes.
    pub fn path_segments(segments: usize) -> RouteKey {
        RouteKey {
            method: false,
            segments: Some(segments),
        }
    }

    /// The method and the route (`GET /items/{id}`). `HEAD` counts as `GET`, whose
    /// handler answers it; methods outside the standard nine share the name `OTHER`,
    /// since a client can invent them at will.
    pub fn with_method(self) -> RouteKey {
        RouteKey {
            method: true,
            ..self
        }
    }
}

impl KeyExtractor for RouteKey {
    type Key = String;

    fn extract<B>(&self, request: &Request<B>) -> Result<String, KeyError> {
        let route = match self.segments {
            None => matched_route(request).unwrap_or(UNMATCHED),
            Some(segments) => {
                let prefix = path_prefix(request.uri().path(), segments);
                return Ok(if self.method {
                    format!("{} {}", method_name(request.method()), bounded(&prefix))
                } else {
                    bounded(&prefix).to_owned()
                });
            }
        };
        Ok(if self.method {
            format!("{} {}", method_name(request.method()), route)
        } else {
            route.to_owned()
        })
    }
}

/// The first `segments` segments of `path`, normalised (see
/// [`RouteKey::path_segments`]), as `/a/b`; `/` when there are none.
fn path_prefix(path: &str, segments: usize) -> String {
    // Dot segments may climb above segments already kept, so the whole path is read;
    // the stack holds what is left of it.
    let mut kept: Vec<Cow<'_, str>> = Vec::new();
    for raw in path.split('/') {
        let segment = normalised(raw);
        match &*segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            _ => kept.push(segment),
        }
    }
    let mut prefix = String::with_capacity(path.len().min(MAX_PATH_LEN) + 1);
    for segment in kept.iter().take(segments) {
        prefix.push('/');
        prefix.push_str(segment);
        if prefix.len() >= MAX_PATH_LEN {
            break;
        }
    }
    if prefix.is_empty() {
        prefix.push('/');
    }
    prefix
}

/// A path segment with its percent-encoded unreserved characters decoded and its
/// other percent-encodings in upper case (RFC 3986, sections 2.3 and 6.2.2.1).
fn normalised(segment: &str) -> Cow<'_, str> {
    if !segment.contains('%') {
        return Cow::Borrowed(segment);
    }
    let bytes = segment.as_bytes();
    let mut out = String::with_capacity(segment.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| Some((hex(*bytes.get(i + 1)?)?, hex(*bytes.get(i + 2)?)?)))
            .flatten();
        match decoded {
            Some((high, low)) => {
                let byte = high << 4 | low;
                if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(byte));
                } else {
                    out.push('%');
                    out.push(char::from(HEX_DIGITS[usize::from(high)]));
                    out.push(char::from(HEX_DIGITS[usize::from(low)]));
                }
                i += 3;
            }
            None => {
                // A path holds ASCII only (`http::Uri` checks it); a stray `%` stays.
                out.push(char::from(bytes[i]));
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

const HEX_DIGITS: &[u8; 16] = b"0123456789ABCDEF";

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// `text` cut to at most [`MAX_PATH_LEN`] bytes, at a character boundary.
fn bounded(text: &str) -> &str {
    let mut end = text.len().min(MAX_PATH_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        // axum answers HEAD with the GET handler: one route, one bucket.
        Method::HEAD => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// The route pattern axum matched, when routing has happened.
#[cfg(feature = "axum")]
fn matched_route<B>(request: &Request<B>) -> Option<&str> {
    request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|matched| matched.as_str())
}

#[cfg(not(feature = "axum"))]
fn matched_route<B>(_request: &Request<B>) -> Option<&str> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str) -> Request<()> {
        let Ok(request) = Request::builder().method(method).uri(path).body(()) else {
            panic!("test request {method} {path}")
        };
        request
    }

    #[test]
    fn unmatched_requests_share_one_key_whatever_their_path() {
        let key = RouteKey::new().with_method();
        let keys: std::collections::HashSet<_> = (0..100)
            .map(|i| key.extract(&request("GET", &format!("/x{i}/{}", "y".repeat(i)))))
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        assert_eq!(keys.len(), 1);
        assert!(keys.contains("GET <unmatched>"));
    }

    #[test]
    fn invented_methods_share_one_name() {
        let key = RouteKey::path_segments(1).with_method();
        let long = "M".repeat(4096);
        for method in ["PURGE", "M0", long.as_str()] {
            assert_eq!(
                key.extract(&request(method, "/a/b")),
                Ok("OTHER /a".to_owned())
            );
        }
        assert_eq!(
            key.extract(&request("DELETE", "/a/b")),
            Ok("DELETE /a".to_owned())
        );
        assert_eq!(
            key.extract(&request("HEAD", "/a/b")),
            Ok("GET /a".to_owned())
        );
    }

    #[test]
    fn spellings_of_one_path_share_a_key() {
        let key = RouteKey::path_segments(2);
        for path in [
            "/api/items/7",
            "/api//items/7",
            "//api/items",
            "/api/./items/",
            "/x/../api/items",
            "/../api/items",
            "/api/%69tems/7",
            "/%61%70%69/items",
            "/api/items%2f/../../api/items",
        ] {
            assert_eq!(
                key.extract(&request("GET", path)),
                Ok("/api/items".to_owned()),
                "{path}"
            );
        }
        // Reserved characters stay encoded, in one case; letters keep theirs.
        assert_eq!(
            key.extract(&request("GET", "/api%2fitems/x")),
            Ok("/api%2Fitems/x".to_owned())
        );
        assert_eq!(
            key.extract(&request("GET", "/API/items")),
            Ok("/API/items".to_owned())
        );
        // Broken escapes stay as they came.
        assert_eq!(
            key.extract(&request("GET", "/a%zz/b%4")),
            Ok("/a%zz/b%4".to_owned())
        );
        assert_eq!(
            key.extract(&request("GET", "/%2e%2E/a/b")),
            Ok("/a/b".to_owned())
        );
    }

    #[test]
    fn path_prefixes_cut_at_a_segment_and_are_bounded() {
        let prefix = |path: &str, n| path_prefix(path, n);
        assert_eq!(prefix("/api/items/7", 0), "/");
        assert_eq!(prefix("/api/items/7", 1), "/api");
        assert_eq!(prefix("/api/items/7", 2), "/api/items");
        assert_eq!(prefix("/api/items/", 2), "/api/items");
        assert_eq!(prefix("/api/items/7", 9), "/api/items/7");
        assert_eq!(prefix("/", 3), "/");
        let long = format!("/{}", "a".repeat(300));
        assert_eq!(
            RouteKey::path_segments(1).extract(&request("GET", &long)),
            Ok(long[..MAX_PATH_LEN].to_owned())
        );
        assert_eq!(bounded(&"é".repeat(200)).len(), MAX_PATH_LEN);
        // Many short segments are cut at the bound too.
        let many = "/a".repeat(1_000);
        assert_eq!(
            RouteKey::path_segments(usize::MAX).extract(&request("GET", &many)),
            Ok(many[..MAX_PATH_LEN].to_owned())
        );
        assert_eq!(
            RouteKey::path_segments(1).extract(&request("GET", &format!("/ok{long}"))),
            Ok("/ok".to_owned())
        );
    }
}
