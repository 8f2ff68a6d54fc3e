//! A header's value as the key: API keys, tenant ids, client ids.
//!
//! The value is whatever the client writes. Put this extractor behind the layer that
//! checks it (authentication), or key by what that layer found
//! ([`ExtensionKey`](super::ExtensionKey)), or pair it with the client's address
//! (`(ClientIp::peer(), HeaderKey::new(..))`): in front of any check, a client that
//! invents a value for each request is never limited, and every value is a key the
//! store holds until it is idle.
//!
//! ```
//! use tower_ratelimit_http::server::key::{HeaderKey, KeyExtractor};
//!
//! let api_key = HeaderKey::new(http::HeaderName::from_static("x-api-key"));
//! let request = http::Request::get("/").header("x-api-key", "k-123").body(())?;
//! assert_eq!(api_key.extract(&request)?, "k-123");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::{KeyError, KeyExtractor};
use http::{HeaderName, Request};

/// The longest header value used as a key; longer ones are invalid, so a client cannot
/// make the store hold kilobytes per key.
const MAX_LEN: usize = 256;

/// Keys requests by the value of one header, sent once: a header sent twice is
/// [`KeyError::invalid`], since which line a proxy added cannot be told.
#[derive(Debug, Clone)]
pub struct HeaderKey {
    name: HeaderName,
}

impl HeaderKey {
    /// The value of `name`.
    pub fn new(name: HeaderName) -> HeaderKey {
        HeaderKey { name }
    }

    /// The header read.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }
}

impl KeyExtractor for HeaderKey {
    type Key = String;

    fn extract<B>(&self, request: &Request<B>) -> Result<String, KeyError> {
        let mut lines = request.headers().get_all(&self.name).iter();
        let value = lines.next().ok_or(KeyError::missing("key header"))?;
        // Two lines are two claims: which one a proxy added, and which one the client
        // wrote, cannot be told apart, so neither is believed.
        if lines.next().is_some() {
            return Err(KeyError::invalid("key header sent more than once"));
        }
        let text = value
            .to_str()
            .map_err(|_| KeyError::invalid("key header is not visible ASCII"))?
            .trim();
        if text.is_empty() {
            return Err(KeyError::missing("key header is empty"));
        }
        if text.len() > MAX_LEN {
            return Err(KeyError::invalid("key header is too long"));
        }
        Ok(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_header_sent_twice_is_not_believed() {
        let key = HeaderKey::new(http::HeaderName::from_static("x-api-key"));
        let mut request = Request::new(());
        request
            .headers_mut()
            .append("x-api-key", "victim".parse().unwrap());
        request
            .headers_mut()
            .append("x-api-key", "mine".parse().unwrap());
        let error = key.extract(&request).err();
        assert_eq!(
            error.map(|e| e.kind()),
            Some(crate::server::key::KeyErrorKind::Invalid)
        );
        request.headers_mut().remove("x-api-key");
        request
            .headers_mut()
            .insert("x-api-key", "mine".parse().unwrap());
        assert_eq!(key.extract(&request), Ok("mine".to_owned()));
    }
}
