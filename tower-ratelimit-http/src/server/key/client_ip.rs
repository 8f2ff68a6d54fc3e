//! The client's IP address as the key: the TCP peer, or the address forwarded by
//! proxies you trust — never one the client wrote itself.
//!
//! ```
//! use std::net::IpAddr;
//! use tower_ratelimit_http::server::key::{ClientIp, ForwardedHeader, KeyExtractor, PeerAddr};
//!
//! // Trusting nobody, a forged header changes nothing.
//! let client_ip = ClientIp::peer();
//! let mut request = http::Request::new(());
//! request.headers_mut().insert("x-forwarded-for", "1.2.3.4".parse()?);
//! request.extensions_mut().insert(PeerAddr("198.51.100.4:5000".parse()?));
//! assert_eq!(client_ip.extract(&request)?, "198.51.100.4".parse::<IpAddr>()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::cidr::{canonical, mask, IpNet};
use super::forwarded::{ForwardedHeader, Walk};
use super::peer::peer_addr;
use super::{KeyError, KeyExtractor};
use http::Request;
use std::net::IpAddr;
use std::sync::Arc;

/// Keys requests by client IP address.
///
/// The address is the TCP peer's (see [`super::peer_addr`]). Only when the peer is one
/// of the trusted proxies is the forwarding header read, from the right, past every
/// trusted hop (see [`ForwardedHeader`]). A request that arrives from a trusted proxy
/// without the header is keyed by the proxy's address.
///
/// IPv6 clients are keyed by their /64 network by default, since one host usually
/// holds a whole /64 and could otherwise rotate through 2^64 keys; see
/// [`ClientIp::ipv6_prefix`].
#[derive(Debug, Clone)]
pub struct ClientIp {
    trusted: Arc<[IpNet]>,
    header: ForwardedHeader,
    ipv6_prefix: u8,
}

impl ClientIp {
    /// The TCP peer's address; forwarding headers are ignored.
    pub fn peer() -> ClientIp {
        ClientIp {
            trusted: Arc::from(Vec::new()),
            header: ForwardedHeader::XForwardedFor,
            ipv6_prefix: 64,
        }
    }

    /// The address forwarded in `header` by the proxies in `trusted`; the peer's own
    /// address for requests that do not come from one of them.
    ///
    /// Trust your proxies' addresses, not whole networks your clients also send from:
    /// a client inside a trusted range writes the header itself and picks its key.
    pub fn behind_proxies(
        trusted: impl IntoIterator<Item = IpNet>,
        header: ForwardedHeader,
    ) -> ClientIp {
        ClientIp {
            trusted: trusted.into_iter().collect(),
            header,
            ipv6_prefix: 64,
        }
    }

    /// Keys IPv6 clients by their network of `prefix` bits (at most 128, which keys each
    /// address apart; the default is 64).
    pub fn ipv6_prefix(mut self, prefix: u8) -> ClientIp {
        self.ipv6_prefix = prefix.min(128);
        self
    }

    /// The trusted proxy networks.
    pub fn trusted(&self) -> &[IpNet] {
        &self.trusted
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(ip))
    }

    fn client(&self, request_peer: IpAddr, headers: &http::HeaderMap) -> Result<IpAddr, KeyError> {
        let peer = canonical(request_peer);
        if !self.is_trusted(peer) {
            return Ok(peer);
        }
        match self.header.walk(headers, |ip| self.is_trusted(ip))? {
            Walk::Client(ip) => Ok(ip),
            Walk::Absent => Ok(peer),
        }
    }
}

impl KeyExtractor for ClientIp {
    type Key = IpAddr;

    fn extract<B>(&self, request: &Request<B>) -> Result<IpAddr, KeyError> {
        let peer = peer_addr(request.extensions()).ok_or(KeyError::unconfigured(
            "peer address (serve with connect info, or insert PeerAddr)",
        ))?;
        let ip = self.client(peer.ip(), request.headers())?;
        Ok(match ip {
            IpAddr::V6(_) => mask(ip, self.ipv6_prefix),
            v4 => v4,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::key::PeerAddr;

    fn request(peer: &str, xff: Option<&'static str>) -> Request<()> {
        let mut req = Request::new(());
        req.extensions_mut().insert(PeerAddr(peer.parse().unwrap()));
        if let Some(v) = xff {
            req.headers_mut()
                .insert("x-forwarded-for", v.parse().unwrap());
        }
        req
    }

    #[test]
    fn untrusted_peer_cannot_spoof() {
        let ip = ClientIp::behind_proxies(
            ["10.0.0.0/8".parse().unwrap()],
            ForwardedHeader::XForwardedFor,
        );
        let key = ip
            .extract(&request("198.51.100.1:1", Some("10.0.0.5, 1.2.3.4")))
            .unwrap();
        assert_eq!(key, "198.51.100.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn trusted_peer_without_header_is_the_key() {
        let ip = ClientIp::behind_proxies(
            ["10.0.0.0/8".parse().unwrap()],
            ForwardedHeader::XForwardedFor,
        );
        let key = ip.extract(&request("10.0.0.7:1", None)).unwrap();
        assert_eq!(key, "10.0.0.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn ipv6_keys_by_prefix_and_mapped_v4_is_v4() {
        let ip = ClientIp::peer();
        let key = ip
            .extract(&request("[2001:db8:1:2:3:4:5:6]:1", None))
            .unwrap();
        assert_eq!(key, "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        let key = ip
            .ipv6_prefix(128)
            .extract(&request("[::ffff:1.2.3.4]:1", None))
            .unwrap();
        assert_eq!(key, "1.2.3.4".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn missing_peer_is_a_key_error() {
        assert!(ClientIp::peer().extract(&Request::new(())).is_err());
    }
}
