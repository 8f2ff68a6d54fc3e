//! IPv4 clients seen through an IPv4/IPv6 translator (NAT64, SIIT, RFC 6052): the
//! translator writes each client's IPv4 address into an IPv6 address under one prefix,
//! so a server keying IPv6 clients by their /64 would count every IPv4 client of the
//! Internet under one key.
//!
//! ```
//! use std::net::IpAddr;
//! use tower_ratelimit_http::server::key::{ClientIp, IpNet, KeyExtractor, PeerAddr};
//!
//! // The well-known prefix 64:ff9b::/96 is read by default.
//! let mut request = http::Request::new(());
//! request.extensions_mut().insert(PeerAddr("[64:ff9b::203.0.113.9]:443".parse()?));
//! assert_eq!(ClientIp::peer().extract(&request)?, "203.0.113.9".parse::<IpAddr>()?);
//!
//! // A translator with a prefix of its own (RFC 6052 allows /32, /40, /48, /56, /64, /96).
//! let client_ip = ClientIp::peer().ipv4_translated_by(["2001:db8:64::/96".parse::<IpNet>()?])?;
//! request.extensions_mut().insert(PeerAddr("[2001:db8:64::198.51.100.7]:443".parse()?));
//! assert_eq!(client_ip.extract(&request)?, "198.51.100.7".parse::<IpAddr>()?);
//!
//! // A prefix no translator can use is an error, not a silent miss.
//! assert!(ClientIp::peer().ipv4_translated_by(["2001:db8::/33".parse::<IpNet>()?]).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::cidr::IpNet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The well-known prefix of RFC 6052, `64:ff9b::/96`.
pub(crate) fn well_known_prefix() -> Option<IpNet> {
    IpNet::new(
        IpAddr::V6(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0)),
        96,
    )
}

/// The prefix lengths RFC 6052 defines for IPv4-embedded IPv6 addresses.
const EMBEDDING_PREFIXES: [u8; 6] = [32, 40, 48, 56, 64, 96];

/// An IPv6 network that cannot carry IPv4 addresses as RFC 6052 writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslationPrefixError {
    prefix: IpNet,
}

impl TranslationPrefixError {
    /// The network that was given.
    pub fn prefix(&self) -> IpNet {
        self.prefix
    }
}

impl fmt::Display for TranslationPrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cannot be an IPv4/IPv6 translation prefix: RFC 6052 prefixes are IPv6 \
             networks of 32, 40, 48, 56, 64 or 96 bits",
            self.prefix
        )
    }
}

impl std::error::Error for TranslationPrefixError {}

/// Checks that `prefix` is an IPv6 network of a length RFC 6052 defines.
pub(crate) fn check(prefix: IpNet) -> Result<IpNet, TranslationPrefixError> {
    match prefix.addr() {
        IpAddr::V6(_) if EMBEDDING_PREFIXES.contains(&prefix.prefix()) => Ok(prefix),
        _ => Err(TranslationPrefixError { prefix }),
    }
}

/// The IPv4 address that `ip` carries under one of `prefixes`, or `ip` itself.
pub(crate) fn untranslated(ip: IpAddr, prefixes: &[IpNet]) -> IpAddr {
    let IpAddr::V6(v6) = ip else {
        return ip;
    };
    match prefixes.iter().find(|net| net.contains(ip)) {
        Some(net) => IpAddr::V4(embedded_ipv4(v6, net.prefix())),
        None => ip,
    }
}

/// The 32 bits after the first `prefix_len` bits, skipping bits 64–71 (RFC 6052's
/// reserved "u" octet, which no IPv4 bit may occupy).
fn embedded_ipv4(v6: Ipv6Addr, prefix_len: u8) -> Ipv4Addr {
    let octets = v6.octets();
    let mut v4 = [0u8; 4];
    let carried = (usize::from(prefix_len) / 8..16).filter(|&i| i != 8);
    for (slot, index) in v4.iter_mut().zip(carried) {
        *slot = octets[index];
    }
    Ipv4Addr::from(v4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    // The examples of RFC 6052, section 2.4: 192.0.2.33 under 2001:db8::/n.
    #[test]
    fn reads_every_example_of_rfc_6052() {
        for (prefix, written) in [
            ("2001:db8::/32", "2001:db8:c000:221::"),
            ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
            ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
            ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
            ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
            ("2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"),
            ("64:ff9b::/96", "64:ff9b::192.0.2.33"),
        ] {
            let prefixes = [check(net(prefix)).unwrap()];
            assert_eq!(
                untranslated(written.parse().unwrap(), &prefixes),
                "192.0.2.33".parse::<IpAddr>().unwrap(),
                "{written} under {prefix}"
            );
        }
    }

    #[test]
    fn leaves_other_addresses_alone() {
        let prefixes = [well_known_prefix().unwrap()];
        for ip in ["2001:db8::1", "64:ff9b:1::c000:221", "192.0.2.33"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(untranslated(ip, &prefixes), ip);
        }
    }

    #[test]
    fn rejects_prefixes_no_translator_uses() {
        for bad in [
            "2001:db8::/33",
            "2001:db8::/128",
            "::/0",
            "10.0.0.0/8",
            "::ffff:0:0/96",
        ] {
            let err = check(net(bad)).unwrap_err();
            assert_eq!(err.prefix(), net(bad));
            assert!(err.to_string().contains("RFC 6052"), "{err}");
        }
    }
}
