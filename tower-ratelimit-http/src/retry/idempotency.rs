//! Which requests may be sent twice.
//!
//! ```
//! use tower_ratelimit_http::retry::Idempotency;
//!
//! let get = http::Request::get("/").body(()).unwrap();
//! let post = http::Request::post("/").body(()).unwrap();
//! let keyed = http::Request::post("/").header("idempotency-key", "k1").body(()).unwrap();
//! assert!(Idempotency::Standard.allows(&get));
//! assert!(!Idempotency::Standard.allows(&post));
//! assert!(Idempotency::Standard.allows(&keyed));
//! ```

use http::Method;

/// Which requests may be retried after a *transient* failure, when the server may
/// already have acted on them. A *throttled* request (429, or 503 with a wait) was not
/// processed, so it is retried whatever its method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Idempotency {
    /// The methods RFC 9110 §9.2.2 calls idempotent (GET, HEAD, OPTIONS, TRACE, PUT,
    /// DELETE), and any request carrying an `Idempotency-Key` header.
    #[default]
    Standard,
    /// Every request (the caller vouches that all are safe to repeat).
    All,
    /// No request: only throttled ones are retried.
    ThrottledOnly,
}

impl Idempotency {
    /// Whether `request` may be retried after a transient failure.
    pub fn allows<B>(&self, request: &http::Request<B>) -> bool {
        self.allows_parts(request.method(), request.headers())
    }

    /// Whether a request with this method and these headers may be retried after a
    /// transient failure.
    pub fn allows_parts(&self, method: &Method, headers: &http::HeaderMap) -> bool {
        match self {
            Idempotency::All => true,
            Idempotency::ThrottledOnly => false,
            Idempotency::Standard => {
                matches!(
                    *method,
                    Method::GET
                        | Method::HEAD
                        | Method::OPTIONS
                        | Method::TRACE
                        | Method::PUT
                        | Method::DELETE
                ) || headers.contains_key("idempotency-key")
            }
        }
    }
}
