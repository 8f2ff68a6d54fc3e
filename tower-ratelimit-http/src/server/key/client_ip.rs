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
use super::translated::{self, untranslated, TranslationPrefixError};
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
/// [`ClientIp::ipv6_prefix`]. IPv4 clients are keyed by their address, or by their
/// network with [`ClientIp::ipv4_prefix`]. Trusted proxies are matched on the whole
/// address, before it is cut to its network. An IPv4 client that reaches an IPv6
/// server through a translator (SIIT or NAT64, whose addresses embed the IPv4 one) is
/// keyed by its IPv4 address, as if it had connected directly: under the well-known
/// prefix `64:ff9b::/96` by default, under others with [`ClientIp::ipv4_translated_by`].
#[derive(Debug, Clone)]
pub struct ClientIp {
    trusted: Arc<[IpNet]>,
    header: ForwardedHeader,
    ipv6_prefix: u8,
    ipv4_prefix: u8,
    translation_prefixes: Arc<[IpNet]>,
}

fn default_translation_prefixes() -> Arc<[IpNet]> {
    translated::well_known_prefix().into_iter().collect()
}

impl ClientIp {
    /// The TCP peer's address; forwarding headers are ignored.
    pub fn peer() -> ClientIp {
        ClientIp {
            trusted: Arc::from(Vec::new()),
            header: ForwardedHeader::XForwardedFor,
            ipv6_prefix: 64,
            ipv4_prefix: 32,
            translation_prefixes: default_translation_prefixes(),
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
            ipv4_prefix: 32,
            translation_prefixes: default_translation_prefixes(),
        }
    }

    /// Keys IPv6 clients by their network of `prefix` bits (at most 128, which keys each
    /// address apart; the default is 64).
    pub fn ipv6_prefix(mut self, prefix: u8) -> ClientIp {
        self.ipv6_prefix = prefix.min(128);
        self
    }

    /// Keys IPv4 clients by their network of `prefix` bits (at most 32, the default,
    /// which keys each address apart). For a second, wider limit stacked around the
    /// per-address one: a /24 keeps a botnet inside one provider's network, or a
    /// client rotating through its addresses there, to one share, while each address
    /// keeps its own. An IPv4 client that came through a translator is keyed by its
    /// IPv4 network too.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use tower_ratelimit_http::server::key::{ClientIp, KeyExtractor, PeerAddr};
    ///
    /// let per_network = ClientIp::peer().ipv4_prefix(24).ipv6_prefix(48);
    /// let mut request = http::Request::new(());
    /// request.extensions_mut().insert(PeerAddr("198.51.100.77:5000".parse()?));
    /// assert_eq!(per_network.extract(&request)?, "198.51.100.0".parse::<IpAddr>()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ipv4_prefix(mut self, prefix: u8) -> ClientIp {
        self.ipv4_prefix = prefix.min(32);
        self
    }

    /// The IPv6 prefixes under which a translator (SIIT, NAT64) in front of this server
    /// writes its IPv4 clients' addresses, replacing the default `64:ff9b::/96`: an
    /// address under one of them is keyed, and checked against the trusted proxies, as
    /// the IPv4 address it carries (RFC 6052). An empty list reads none.
    ///
    /// # Errors
    /// [`TranslationPrefixError`] for a network RFC 6052 gives no layout for: IPv4, or
    /// IPv6 of a length other than 32, 40, 48, 56, 64 or 96 bits.
    pub fn ipv4_translated_by(
        mut self,
        prefixes: impl IntoIterator<Item = IpNet>,
    ) -> Result<ClientIp, TranslationPrefixError> {
        self.translation_prefixes = prefixes
            .into_iter()
            .map(translated::check)
            .collect::<Result<_, _>>()?;
        Ok(self)
    }

    /// The trusted proxy networks.
    pub fn trusted(&self) -> &[IpNet] {
        &self.trusted
    }

    /// The address as the client had it before a translator wrote it into IPv6.
    fn untranslated(&self, ip: IpAddr) -> IpAddr {
        untranslated(ip, &self.translation_prefixes)
    }

    /// A proxy behind a translator may be listed by either of its addresses.
    fn is_trusted(&self, ip: IpAddr) -> bool {
        let seen_as = self.untranslated(ip);
        self.trusted
            .iter()
            .any(|net| net.contains(ip) || net.contains(seen_as))
    }

    fn client(&self, request_peer: IpAddr, headers: &http::HeaderMap) -> Result<IpAddr, KeyError> {
        let peer = canonical(request_peer);
        if !self.is_trusted(peer) {
            return Ok(self.untranslated(peer));
        }
        match self.header.walk(headers, |ip| self.is_trusted(ip))? {
            Walk::Client(ip) => Ok(self.untranslated(ip)),
            Walk::Absent => Ok(self.untranslated(peer)),
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
            IpAddr::V4(_) => mask(ip, self.ipv4_prefix),
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
    fn ipv4_keys_by_address_unless_told_a_prefix() {
        let v4 = |ip: &ClientIp, peer: &str| ip.extract(&request(peer, None)).unwrap();
        let each = ClientIp::peer();
        assert_eq!(
            v4(&each, "203.0.113.9:1"),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let wide = ClientIp::peer().ipv4_prefix(24);
        for peer in ["203.0.113.9:1", "203.0.113.250:2"] {
            assert_eq!(v4(&wide, peer), "203.0.113.0".parse::<IpAddr>().unwrap());
        }
        // Mapped and translated IPv4 clients are IPv4 networks too.
        assert_eq!(
            v4(&wide, "[::ffff:203.0.113.9]:1"),
            "203.0.113.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            v4(&wide, "[64:ff9b::203.0.113.9]:1"),
            "203.0.113.0".parse::<IpAddr>().unwrap()
        );
        // Over 32 is 32; 0 puts every IPv4 client in one key.
        assert_eq!(
            v4(&ClientIp::peer().ipv4_prefix(200), "203.0.113.9:1"),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            v4(&ClientIp::peer().ipv4_prefix(0), "203.0.113.9:1"),
            "0.0.0.0".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn a_prefix_never_widens_who_is_trusted() {
        let ip = ClientIp::behind_proxies(
            ["10.0.0.5/32".parse().unwrap()],
            ForwardedHeader::XForwardedFor,
        )
        .ipv4_prefix(24);
        // A neighbour of the proxy in its /24 is not the proxy: its header is ignored.
        let key = ip.extract(&request("10.0.0.7:1", Some("1.2.3.4"))).unwrap();
        assert_eq!(key, "10.0.0.0".parse::<IpAddr>().unwrap());
        let key = ip.extract(&request("10.0.0.5:1", Some("1.2.3.4"))).unwrap();
        assert_eq!(key, "1.2.3.0".parse::<IpAddr>().unwrap());
        // Nor is a forwarded hop in the proxy's /24 skipped as trusted.
        let key = ip
            .extract(&request("10.0.0.5:1", Some("1.2.3.4, 10.0.0.9")))
            .unwrap();
        assert_eq!(key, "10.0.0.0".parse::<IpAddr>().unwrap());
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
    fn ipv4_clients_behind_a_translator_get_a_key_each() {
        // Under a /64 they would all be one key.
        let ip = ClientIp::peer();
        let first = ip
            .extract(&request("[64:ff9b::192.0.2.1]:1", None))
            .unwrap();
        let second = ip
            .extract(&request("[64:ff9b::192.0.2.2]:1", None))
            .unwrap();
        assert_eq!(first, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(second, "192.0.2.2".parse::<IpAddr>().unwrap());

        // Forwarded by a proxy that the translator also rewrote, listed by its IPv4.
        let behind = ClientIp::behind_proxies(
            ["10.0.0.0/8".parse().unwrap()],
            ForwardedHeader::XForwardedFor,
        );
        let key = behind
            .extract(&request("[64:ff9b::10.0.0.5]:1", Some("198.51.100.3")))
            .unwrap();
        assert_eq!(key, "198.51.100.3".parse::<IpAddr>().unwrap());
        let key = behind
            .extract(&request(
                "[64:ff9b::10.0.0.5]:1",
                Some("64:ff9b::203.0.113.4"),
            ))
            .unwrap();
        assert_eq!(key, "203.0.113.4".parse::<IpAddr>().unwrap());

        // Turned off, the translator's /64 is one key again.
        let off = ClientIp::peer().ipv4_translated_by([]).unwrap();
        let key = off
            .extract(&request("[64:ff9b::192.0.2.1]:1", None))
            .unwrap();
        assert_eq!(key, "64:ff9b::".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn missing_peer_is_a_key_error() {
        assert!(ClientIp::peer().extract(&Request::new(())).is_err());
    }
}
