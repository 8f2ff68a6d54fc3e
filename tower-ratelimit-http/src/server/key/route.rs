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
    /// `/api/items`), for routers that record no matched route. A client can still
    /// vary these segments, so combine this key with a client key, and rely on the
    /// store's cap on keys; a prefix is cut at [`MAX_PATH_LEN`] bytes.
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
            Some(segments) => bounded(path_prefix(request.uri().path(), segments)),
        };
        Ok(if self.method {
            format!("{} {}", method_name(request.method()), route)
        } else {
            route.to_owned()
        })
    }
}

/// The path up to the slash that follows its `segments`-th segment.
fn path_prefix(path: &str, segments: usize) -> &str {
    match path.match_indices('/').nth(segments) {
        Some((0, _)) => "/",
        Some((end, _)) => &path[..end],
        None => path,
    }
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
    fn path_prefixes_cut_at_a_segment_and_are_bounded() {
        let prefix = |path: &str, n| path_prefix(path, n).to_owned();
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
        assert_eq!(
            RouteKey::path_segments(1).extract(&request("GET", &format!("/ok{long}"))),
            Ok("/ok".to_owned())
        );
    }
}
