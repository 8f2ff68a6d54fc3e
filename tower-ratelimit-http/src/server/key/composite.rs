//! Composite keys: a tuple of extractors keys by the tuple of their keys, and fails if
//! any part fails.
//!
//! ```
//! use tower_ratelimit_http::server::key::{GlobalKey, HeaderKey, KeyExtractor, RouteKey};
//!
//! let tenant_and_route = (
//!     HeaderKey::new(http::HeaderName::from_static("x-tenant")),
//!     RouteKey::path_segments(1),
//! );
//! let request = http::Request::get("/a/7").header("x-tenant", "acme").body(())?;
//! assert_eq!(tenant_and_route.extract(&request)?, ("acme".to_string(), "/a".to_string()));
//! # let _ = (GlobalKey, GlobalKey, GlobalKey).extract(&request)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::{KeyError, KeyExtractor};
use http::Request;

macro_rules! tuple_extractor {
    ($($name:ident),+) => {
        impl<$($name: KeyExtractor),+> KeyExtractor for ($($name,)+) {
            type Key = ($($name::Key,)+);

            #[allow(non_snake_case)]
            fn extract<Body>(&self, request: &Request<Body>) -> Result<Self::Key, KeyError> {
                let ($($name,)+) = self;
                Ok(($($name.extract(request)?,)+))
            }
        }
    };
}

tuple_extractor!(A, B);
tuple_extractor!(A, B, C);
tuple_extractor!(A, B, C, D);
