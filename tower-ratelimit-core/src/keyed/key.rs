//! How the keyed layer derives a key, and a cost, from each request.
//!
//! ```
//! use tower_ratelimit_core::keyed::{KeyExtractor, RequestCost};
//! use tower_ratelimit_core::error::BoxError;
//!
//! struct Request { api_key: Option<String>, rows: u64 }
//!
//! // A closure is an extractor that cannot fail...
//! let by_rows = |req: &Request| req.rows;
//! assert_eq!(RequestCost::cost(&by_rows, &Request { api_key: None, rows: 7 }), 7);
//!
//! // ...and a type of your own can refuse a request it cannot key.
//! struct ApiKey;
//! impl KeyExtractor<Request> for ApiKey {
//!     type Key = String;
//!     fn extract(&self, req: &Request) -> Result<String, BoxError> {
//!         req.api_key.clone().ok_or_else(|| "missing API key".into())
//!     }
//! }
//! assert!(ApiKey.extract(&Request { api_key: None, rows: 1 }).is_err());
//! ```

use crate::error::BoxError;

/// Derives the rate-limit key of a request (client address, API key, tenant, route).
///
/// Every `Fn(&Req) -> K` closure is an extractor that never fails. Implement the trait
/// on a type of your own when a request may carry no usable key: the error is
/// returned by the service instead of calling the inner one.
pub trait KeyExtractor<Req> {
    /// The key.
    type Key;

    /// The key of `req`.
    ///
    /// # Errors
    /// Any error, returned to the caller as the service's error.
    fn extract(&self, req: &Req) -> Result<Self::Key, BoxError>;
}

impl<Req, K, F> KeyExtractor<Req> for F
where
    F: Fn(&Req) -> K,
{
    type Key = K;

    #[inline]
    fn extract(&self, req: &Req) -> Result<K, BoxError> {
        Ok(self(req))
    }
}

/// The cost of a request in quota units (bytes, rows, tokens). Every
/// `Fn(&Req) -> u64` closure is one; [`UnitCost`] charges 1 per request.
pub trait RequestCost<Req> {
    /// The units `req` takes.
    fn cost(&self, req: &Req) -> u64;
}

impl<Req, F> RequestCost<Req> for F
where
    F: Fn(&Req) -> u64,
{
    #[inline]
    fn cost(&self, req: &Req) -> u64 {
        self(req)
    }
}

/// One unit per request, the default cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnitCost;

impl<Req> RequestCost<Req> for UnitCost {
    #[inline]
    fn cost(&self, _req: &Req) -> u64 {
        1
    }
}
