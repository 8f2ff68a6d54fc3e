//! Client keys: what a request is counted against.
//!
//! A [`KeyExtractor`] reads a key out of a request without consuming it: the client's IP
//! address ([`ClientIp`], which believes forwarding headers only from trusted proxies),
//! a header such as an API key ([`HeaderKey`]), the matched route ([`RouteKey`]), an
//! identity that authentication placed in the extensions ([`ExtensionKey`]), one global
//! key ([`GlobalKey`]), or several at once (a tuple of extractors is a composite key).
//!
//! Extraction can fail (no API key, a garbled forwarding header); the layer then
//! answers as configured: 400, 401 or a shared fallback key. Only a key the server's
//! own setup cannot provide (no peer address recorded) is answered 500, with the
//! reason as the body.
//!
//! ```
//! use std::net::IpAddr;
//! use tower_ratelimit_http::server::key::{ClientIp, HeaderKey, KeyExtractor, PeerAddr, RouteKey};
//!
//! // Per client IP *and* route: each client gets its own quota on each route (in an
//! // axum router, the route it matched; here, the path's first segment).
//! let extractor = (ClientIp::peer(), RouteKey::path_segments(1));
//! let mut request = http::Request::get("/items/7").body(())?;
//! request.extensions_mut().insert(PeerAddr("192.0.2.1:3000".parse()?));
//! let (ip, route) = extractor.extract(&request)?;
//! assert_eq!(ip, "192.0.2.1".parse::<IpAddr>()?);
//! assert_eq!(route, "/items");
//!
//! // An API key that is missing is an error the layer turns into 401 if so configured.
//! assert!(HeaderKey::new(http::HeaderName::from_static("x-api-key")).extract(&request).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cidr;
mod client_ip;
mod composite;
mod extension;
mod forwarded;
mod header;
mod peer;
pub mod route;
pub mod translated;

pub use cidr::{CidrError, IpNet};
pub use client_ip::ClientIp;
pub use extension::ExtensionKey;
pub use forwarded::ForwardedHeader;
pub use header::HeaderKey;
pub use peer::{peer_addr, PeerAddr};
pub use route::RouteKey;
pub use translated::TranslationPrefixError;

use http::Request;
use std::fmt;

/// Reads the key a request is limited by.
///
/// Implementations must not panic on any request; what cannot be read is a
/// [`KeyError`].
pub trait KeyExtractor: Clone + Send + Sync + 'static {
    /// The key: hashable for the in-memory store, and whatever the chosen store needs.
    type Key: Clone + Send + Sync + 'static;

    /// The key of `request`.
    ///
    /// # Errors
    /// [`KeyError`] when the request does not carry what the key is made of.
    fn extract<B>(&self, request: &Request<B>) -> Result<Self::Key, KeyError>;
}

/// Why a key could not be read from a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    kind: KeyErrorKind,
    what: &'static str,
}

/// The ways extraction fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyErrorKind {
    /// The request does not carry the key at all (no API key header, no peer address).
    Missing,
    /// The request carries something unusable (a non-text header, a garbled address).
    Invalid,
    /// The server gives the layer nothing to read the key from (no peer address: the
    /// app is not served with connect info). The server's setup is at fault, not the
    /// request, so the layer answers 500 with this error as the body.
    Unconfigured,
}

impl KeyError {
    /// The key is absent; `what` names it.
    pub fn missing(what: &'static str) -> KeyError {
        KeyError {
            kind: KeyErrorKind::Missing,
            what,
        }
    }

    /// The key is present but unusable; `what` says why.
    pub fn invalid(what: &'static str) -> KeyError {
        KeyError {
            kind: KeyErrorKind::Invalid,
            what,
        }
    }

    /// The server's setup gives no source for the key; `what` says what to add.
    pub fn unconfigured(what: &'static str) -> KeyError {
        KeyError {
            kind: KeyErrorKind::Unconfigured,
            what,
        }
    }

    /// Missing, invalid, or not configured.
    pub fn kind(&self) -> KeyErrorKind {
        self.kind
    }

    /// What was missing or wrong, for logs and problem details.
    pub fn what(&self) -> &'static str {
        self.what
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            KeyErrorKind::Missing => write!(f, "rate-limit key missing: {}", self.what),
            KeyErrorKind::Invalid => write!(f, "rate-limit key invalid: {}", self.what),
            KeyErrorKind::Unconfigured => {
                write!(
                    f,
                    "rate-limit key has no source on this server: {}",
                    self.what
                )
            }
        }
    }
}

impl std::error::Error for KeyError {}

/// One key for every request: a global limit over a [`RateStore<()>`](tower_ratelimit_core::store::RateStore).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GlobalKey;

impl KeyExtractor for GlobalKey {
    type Key = ();

    fn extract<B>(&self, _request: &Request<B>) -> Result<(), KeyError> {
        Ok(())
    }
}

/// Lets the extractors of this module key the core's `KeyedRateLimitLayer` as well
/// (wait or reject mode without HTTP responses); a failure becomes the boxed
/// [`KeyError`].
macro_rules! core_extractor {
    ($($ty:ty $(, $param:ident)?);+ $(;)?) => {$(
        impl<Body $(, $param: Clone + Send + Sync + 'static)?>
            tower_ratelimit_core::keyed::KeyExtractor<Request<Body>> for $ty
        {
            type Key = <$ty as KeyExtractor>::Key;

            fn extract(&self, request: &Request<Body>) -> Result<Self::Key, tower_ratelimit_core::BoxError> {
                KeyExtractor::extract(self, request).map_err(Into::into)
            }
        }
    )+};
}

core_extractor! {
    ClientIp;
    HeaderKey;
    RouteKey;
    GlobalKey;
    ExtensionKey<T>, T;
}
