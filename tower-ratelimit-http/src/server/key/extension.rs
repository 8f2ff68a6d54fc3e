//! An identity that earlier middleware (authentication) placed in the request's
//! extensions, as the key.
//!
//! ```
//! use tower_ratelimit_http::server::key::{ExtensionKey, KeyExtractor};
//!
//! #[derive(Clone, Debug, PartialEq, Eq, Hash)]
//! struct UserId(u64);
//!
//! let mut request = http::Request::new(());
//! request.extensions_mut().insert(UserId(42));
//! assert_eq!(ExtensionKey::<UserId>::new().extract(&request)?, UserId(42));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::{KeyError, KeyExtractor};
use http::Request;
use std::fmt;
use std::marker::PhantomData;

/// Keys requests by the extension of type `T` (missing when absent: an
/// unauthenticated request).
pub struct ExtensionKey<T> {
    _type: PhantomData<fn() -> T>,
}

impl<T> ExtensionKey<T> {
    /// The extension of type `T`.
    pub fn new() -> Self {
        ExtensionKey { _type: PhantomData }
    }
}

impl<T> Default for ExtensionKey<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for ExtensionKey<T> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for ExtensionKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExtensionKey<{}>", std::any::type_name::<T>())
    }
}

impl<T: Clone + Send + Sync + 'static> KeyExtractor for ExtensionKey<T> {
    type Key = T;

    fn extract<B>(&self, request: &Request<B>) -> Result<T, KeyError> {
        request
            .extensions()
            .get::<T>()
            .cloned()
            .ok_or(KeyError::missing(
                "identity extension (is authentication in front?)",
            ))
    }
}
