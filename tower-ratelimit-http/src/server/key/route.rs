//! The route as the key: one quota per endpoint.
//!
//! Inside an axum router (`route_layer`, or a layer on a method router) the key is the
//! matched route pattern (`/items/{id}`) with feature `axum`; elsewhere it is the
//! request path, which a client can vary at will — combine it with another key, and
//! rely on the store's cap on keys.
//!
//! ```
//! use tower_ratelimit_http::server::key::{KeyExtractor, RouteKey};
//!
//! let request = http::Request::get("/items/7?full=1").body(())?;
//! assert_eq!(RouteKey::new().extract(&request)?, "/items/7");
//! assert_eq!(RouteKey::new().with_method().extract(&request)?, "GET /items/7");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::{KeyError, KeyExtractor};
use http::Request;

/// Keys requests by matched route (feature `axum`) or path, optionally with the method.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteKey {
    method: bool,
}

impl RouteKey {
    /// The route alone.
    pub fn new() -> RouteKey {
        RouteKey { method: false }
    }

    /// The method and the route (`GET /items/{id}`).
    pub fn with_method(self) -> RouteKey {
        RouteKey { method: true }
    }
}

impl KeyExtractor for RouteKey {
    type Key = String;

    fn extract<B>(&self, request: &Request<B>) -> Result<String, KeyError> {
        let route = matched_route(request).unwrap_or_else(|| request.uri().path());
        Ok(if self.method {
            format!("{} {}", request.method(), route)
        } else {
            route.to_owned()
        })
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
