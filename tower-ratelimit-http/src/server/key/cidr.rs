//! Networks written as CIDR (`10.0.0.0/8`, `2001:db8::/32`), for the list of trusted
//! proxies.
//!
//! ```
//! use tower_ratelimit_http::server::key::IpNet;
//!
//! let net: IpNet = "10.0.0.0/8".parse()?;
//! assert!(net.contains("10.1.2.3".parse()?));
//! assert!(!net.contains("11.0.0.1".parse()?));
//! // A bare address is a network of one.
//! let host: IpNet = "::1".parse()?;
//! assert!(host.contains("::1".parse()?));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP network: an address and a prefix length.
///
/// [`IpNet::new`] clears the address's host bits, so `new(10.1.2.3, 8)` is
/// `10.0.0.0/8`. Parsing is stricter: `"10.1.2.3/8"` is an error that names the
/// network, since a trusted-proxy list is where a typo like `10.0.0.1/0` (all of
/// IPv4) must not pass quietly. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) are compared as
/// the IPv4 address they carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// Why a string is not a CIDR network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrError {
    input: String,
    reason: &'static str,
    /// For an address with host bits set: the network its prefix makes of it.
    network: Option<IpNet>,
}

impl CidrError {
    /// For an address with bits set past its prefix (`10.1.2.3/8`): the network the
    /// prefix makes of it (`10.0.0.0/8`), to write instead if that is what was meant.
    pub fn network(&self) -> Option<IpNet> {
        self.network
    }
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid CIDR network {:?}: {}", self.input, self.reason)?;
        if let Some(network) = self.network {
            write!(
                f,
                " (the prefix makes it {network}; write that if it is meant)"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for CidrError {}

impl IpNet {
    /// The network of `addr` with `prefix` leading bits, or `None` when the prefix is
    /// longer than the address (32 bits for IPv4, 128 for IPv6).
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        let addr = canonical(addr);
        let max = max_prefix(addr);
        if prefix > max {
            return None;
        }
        Some(IpNet {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// The network's first address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The number of leading bits that identify the network.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` belongs to this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                mask(ip, self.prefix) == self.addr
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IpNet {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<IpNet, CidrError> {
        let error = |reason| CidrError {
            input: s.chars().take(64).collect(),
            reason,
            network: None,
        };
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| error("not an IP address"))?;
        let prefix = match prefix {
            None => max_prefix(canonical(addr)),
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                // A mapped address written with an IPv6 prefix (`::ffff:10.0.0.0/104`)
                // keeps the meaning of the prefix over the IPv4 part.
                let mut prefix: u8 = p.parse().map_err(|_| error("prefix is not a number"))?;
                if let IpAddr::V6(v6) = addr {
                    if v6.to_ipv4_mapped().is_some() {
                        prefix = prefix
                            .checked_sub(96)
                            .ok_or_else(|| error("prefix shorter than the IPv4-mapped range"))?;
                    }
                }
                prefix
            }
            Some(_) => return Err(error("prefix is not a number")),
        };
        let network =
            IpNet::new(addr, prefix).ok_or_else(|| error("prefix longer than the address"))?;
        if network.addr != canonical(addr) {
            return Err(CidrError {
                network: Some(network),
                ..error("the address has bits set past the prefix")
            });
        }
        Ok(network)
    }
}

/// The address as compared and keyed: IPv4-mapped IPv6 addresses become IPv4, so a
/// dual-stack listener sees one key per IPv4 client.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Clears every bit after the first `prefix` (which must fit the address family).
pub(crate) fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & mask))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_masks() {
        assert_eq!(net("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(net("192.168.1.7").to_string(), "192.168.1.7/32");
        assert_eq!(net("192.168.1.7/32").to_string(), "192.168.1.7/32");
        assert_eq!(net("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(
            IpNet::new("10.1.2.3".parse().unwrap(), 8)
                .unwrap()
                .to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(net("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(net("::ffff:10.0.0.0/104").to_string(), "10.0.0.0/8");
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in [
            "",
            "/",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/-1",
            "10.0.0.0/8/8",
            "x/8",
            "10.0.0.0/0008",
            "::ffff:1.2.3.4/95",
            "10.0.0.0/ 8",
            "10.0.0.0/255",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn host_bits_past_the_prefix_are_an_error_that_names_the_network() {
        // A typo for /32 that would trust all of IPv4.
        let typo = "10.0.0.1/0".parse::<IpNet>().unwrap_err();
        assert_eq!(typo.network(), Some(net("0.0.0.0/0")));
        assert!(typo.to_string().contains("0.0.0.0/0"), "{typo}");
        for (written, network) in [
            ("10.1.2.3/8", "10.0.0.0/8"),
            ("2001:db8::1/32", "2001:db8::/32"),
            ("::ffff:10.0.0.1/104", "10.0.0.0/8"),
        ] {
            let err = written.parse::<IpNet>().unwrap_err();
            assert_eq!(err.network(), Some(net(network)), "{written}");
        }
    }

    #[test]
    fn contains_respects_family_and_mapping() {
        let v4 = net("10.0.0.0/8");
        assert!(v4.contains("10.255.0.1".parse().unwrap()));
        assert!(v4.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!v4.contains("::a00:1".parse().unwrap()));
        assert!(net("::/0").contains("2001:db8::1".parse().unwrap()));
        assert!(!net("::/0").contains("1.2.3.4".parse().unwrap()));
        assert!(net("0.0.0.0/0").contains("1.2.3.4".parse().unwrap()));
    }
}
