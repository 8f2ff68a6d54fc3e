//! Reading the client address out of forwarding headers, right to left.
//!
//! Each proxy appends the address it received the request from, so the rightmost entry
//! was written by the proxy closest to this server and the leftmost by whoever sent the
//! request first — possibly the client itself, who can write anything there. The only
//! entries worth believing are the ones appended by proxies we trust: walk from the
//! right, skip every trusted hop, and the first untrusted address is the client.
//!
//! ```
//! use tower_ratelimit_http::server::key::{ClientIp, ForwardedHeader, IpNet, PeerAddr};
//! use tower_ratelimit_http::server::key::KeyExtractor;
//!
//! let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse()?];
//! let client_ip = ClientIp::behind_proxies(proxies, ForwardedHeader::XForwardedFor);
//!
//! // The client wrote "6.6.6.6" itself; our proxy 10.0.0.2 appended the real address.
//! let mut request = http::Request::new(());
//! request.headers_mut().insert("x-forwarded-for", "6.6.6.6, 203.0.113.9".parse()?);
//! request.extensions_mut().insert(PeerAddr("10.0.0.2:5000".parse()?));
//! assert_eq!(client_ip.extract(&request)?, "203.0.113.9".parse::<std::net::IpAddr>()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::cidr::canonical;
use super::KeyError;
use http::header::{HeaderMap, HeaderName};
use std::net::{IpAddr, SocketAddr};

/// The most entries read from one forwarding header: a longer chain is a client
/// stuffing the header, and is walked no further than this.
const MAX_HOPS: usize = 64;

/// Which header the trusted proxies write the client address into.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, most load balancers).
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client;proto=https, for=proxy1`. A trusted hop whose
    /// element names no client (no `for=`, or `for=unknown` / `for=_hidden`) is taken
    /// as the client: nothing left of it can be believed.
    Forwarded,
    /// `X-Real-Ip: client`, one address set by the proxy in front of this server.
    XRealIp,
    /// Another header holding one address or a comma-separated chain
    /// (`CF-Connecting-IP`, `True-Client-IP`, `Fly-Client-IP`...).
    Custom(HeaderName),
}

/// The outcome of reading a header chain.
pub(super) enum Walk {
    /// The first untrusted address from the right (or the leftmost if all are trusted).
    Client(IpAddr),
    /// The header is absent or empty.
    Absent,
}

impl ForwardedHeader {
    /// Walks the header's chain from the right, past every address `trusted` accepts.
    pub(super) fn walk(
        &self,
        headers: &HeaderMap,
        trusted: impl Fn(IpAddr) -> bool,
    ) -> Result<Walk, KeyError> {
        // Only RFC 7239 has quoted strings; in address lists a quote is just garbage.
        let quoted = matches!(self, ForwardedHeader::Forwarded);
        let (name, parse): (&HeaderName, fn(&str) -> Node) = match self {
            ForwardedHeader::XForwardedFor => (&X_FORWARDED_FOR, address_node),
            ForwardedHeader::Forwarded => (&http::header::FORWARDED, parse_forwarded_element),
            ForwardedHeader::XRealIp => (&X_REAL_IP, address_node),
            ForwardedHeader::Custom(name) => (name, address_node),
        };
        // Lines of a repeated field concatenate in order, so the last entry of the last
        // line is the nearest hop. Read from there, lazily: the work is bounded by the
        // hops read, not by how much a client stuffed into the header.
        let nearest_first = headers
            .get_all(name)
            .iter()
            .rev()
            .flat_map(|line| entries_from_right(line.as_bytes(), quoted))
            .take(MAX_HOPS);
        let mut last = None;
        for entry in nearest_first {
            let text = std::str::from_utf8(entry)
                .map_err(|_| KeyError::invalid("forwarding header is not text"))?;
            let ip = match parse(text) {
                Node::Address(ip) => canonical(ip),
                // A trusted hop that does not disclose who connected to it: it is the
                // nearest client we can name (what lies further left, anyone wrote).
                Node::Undisclosed => break,
                Node::Garbage => {
                    return Err(KeyError::invalid(
                        "forwarding header holds an entry that is not an IP address",
                    ))
                }
            };
            if !trusted(ip) {
                return Ok(Walk::Client(ip));
            }
            last = Some(ip);
        }
        Ok(match last {
            Some(ip) => Walk::Client(ip),
            None => Walk::Absent,
        })
    }
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The entries of one comma-separated line, nearest (rightmost) first, without empty
/// ones. With `quoted` (RFC 7239) a comma inside a quoted string does not split. Read
/// from the right, the part our proxies appended is well formed and splits right
/// whatever the client wrote before it: a quote the client left open can only merge
/// the client's own entries (read from the left, `for=6.6.6.6;x="` swallowed the
/// `, for=<real>` a proxy appended).
fn entries_from_right(line: &[u8], quoted: bool) -> impl Iterator<Item = &[u8]> {
    let mut end = line.len();
    let mut at = line.len();
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut in_quotes = false;
        while at > 0 {
            at -= 1;
            match line[at] {
                b'"' if quoted => {
                    // Inside a quoted string, a quote after an odd run of backslashes
                    // is a character, not the string's start.
                    let backslashes = line[..at].iter().rev().take_while(|&&b| b == b'\\').count();
                    if !(in_quotes && backslashes % 2 == 1) {
                        in_quotes = !in_quotes;
                    }
                }
                b',' if !in_quotes => {
                    let entry = &line[at + 1..end];
                    end = at;
                    return Some(entry);
                }
                _ => {}
            }
        }
        done = true;
        Some(&line[..end])
    })
    .map(<[u8]>::trim_ascii)
    .filter(|entry| !entry.is_empty())
}

/// An address with or without a port: `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]:80`,
/// `[::1]`.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<IpAddr>().ok()
}

/// What one entry of a forwarding header says about the client of its hop.
enum Node {
    Address(IpAddr),
    /// A valid entry that names no address: an RFC 7239 element without `for=`, or
    /// with an `unknown` or obfuscated (`_hidden`) node.
    Undisclosed,
    Garbage,
}

/// An entry of an address list (`X-Forwarded-For`, `X-Real-IP`). `unknown` is what a
/// proxy that hides its clients writes (Squid with `forwarded_for off`).
fn address_node(text: &str) -> Node {
    if text.trim().eq_ignore_ascii_case("unknown") {
        return Node::Undisclosed;
    }
    parse_node(text).map_or(Node::Garbage, Node::Address)
}

/// The `for=` node of one RFC 7239 element (`for=1.2.3.4;proto=https`).
fn parse_forwarded_element(element: &str) -> Node {
    let mut nodes = element.split(';').filter_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim().eq_ignore_ascii_case("for").then_some(value)
    });
    let Some(value) = nodes.next() else {
        return Node::Undisclosed;
    };
    // RFC 7239 allows one `for` per element; with two, a careless proxy may have put
    // its own after one the client wrote, and neither can be believed.
    if nodes.next().is_some() {
        return Node::Garbage;
    }
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    let host = node_name(value);
    if host.eq_ignore_ascii_case("unknown") || host.starts_with('_') {
        return Node::Undisclosed;
    }
    address_node(host)
}

/// The node name of an RFC 7239 node, without its port (a number or an obfuscated
/// `_name`): `[2001:db8::1]:4711` is `2001:db8::1`, `unknown:8080` is `unknown`, and a
/// bare IPv6 address (several colons) is itself.
fn node_name(node: &str) -> &str {
    if let Some(bracketed) = node.strip_prefix('[') {
        return bracketed.split_once(']').map_or(node, |(name, _)| name);
    }
    match node.split_once(':') {
        Some((name, port)) if !port.contains(':') => name,
        _ => node,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(name, v.parse().unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn walk(h: &ForwardedHeader, map: &HeaderMap, trusted: &[&str]) -> Option<IpAddr> {
        let trusted: Vec<IpAddr> = trusted.iter().map(|s| ip(s)).collect();
        match h.walk(map, |candidate| trusted.contains(&candidate)) {
            Ok(Walk::Client(ip)) => Some(ip),
            Ok(Walk::Absent) => None,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn x_forwarded_for_walks_from_the_right_across_lines() {
        let map = headers(
            "x-forwarded-for",
            &["6.6.6.6, 1.1.1.1", "10.0.0.1 , 10.0.0.2"],
        );
        let h = ForwardedHeader::XForwardedFor;
        assert_eq!(
            walk(&h, &map, &["10.0.0.1", "10.0.0.2"]),
            Some(ip("1.1.1.1"))
        );
        assert_eq!(walk(&h, &map, &[]), Some(ip("10.0.0.2")));
        // Everything trusted: the leftmost entry is the best we know.
        assert_eq!(
            walk(&h, &map, &["10.0.0.1", "10.0.0.2", "1.1.1.1", "6.6.6.6"]),
            Some(ip("6.6.6.6"))
        );
        assert_eq!(walk(&h, &HeaderMap::new(), &[]), None);
    }

    #[test]
    fn forwarded_reads_for_nodes_with_ports_and_quotes() {
        let map = headers(
            "forwarded",
            &[r#"for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https, For="10.0.0.1:80";by=x"#],
        );
        let h = ForwardedHeader::Forwarded;
        assert_eq!(walk(&h, &map, &["10.0.0.1"]), Some(ip("2001:db8:cafe::17")));
    }

    #[test]
    fn a_hop_that_names_no_client_is_the_nearest_client_known() {
        let h = ForwardedHeader::Forwarded;
        // RFC 7239 elements without `for=`, or with an undisclosed node: valid, and
        // nothing further left (which anyone could have written) is read.
        for value in [
            "proto=https;host=example.com",
            "for=6.6.6.6, proto=https",
            "for=6.6.6.6, for=unknown",
            r#"for=6.6.6.6, for="_hidden""#,
        ] {
            let map = headers("forwarded", &[value]);
            assert_eq!(walk(&h, &map, &[]), None, "{value}");
        }
        let map = headers("forwarded", &["for=6.6.6.6, for=_gw, for=10.0.0.2"]);
        assert_eq!(walk(&h, &map, &["10.0.0.2"]), Some(ip("10.0.0.2")));
        let xff = ForwardedHeader::XForwardedFor;
        let map = headers("x-forwarded-for", &["6.6.6.6, unknown"]);
        assert_eq!(walk(&xff, &map, &[]), None);
        // Ports, real or obfuscated, belong to the node and change nothing.
        for (value, client) in [
            (r#"for="unknown:8080""#, None),
            (r#"for="_gw:_p1""#, None),
            (r#"for="192.0.2.43:_p1""#, Some(ip("192.0.2.43"))),
            (r#"for="[2001:db8::7]:_p1""#, Some(ip("2001:db8::7"))),
            ("for=192.0.2.44:443", Some(ip("192.0.2.44"))),
        ] {
            let map = headers("forwarded", &[value]);
            assert_eq!(walk(&h, &map, &[]), client, "{value}");
        }
    }

    #[test]
    fn a_quote_left_open_by_the_client_does_not_swallow_the_proxys_entry() {
        let h = ForwardedHeader::Forwarded;
        // The client wrote everything before ", for=198.51.100.7", which our proxy
        // appended to the same line.
        for client_part in [
            r#"for=6.6.6.6;x=""#,
            r#"for=_x;y=""#,
            r#"for=6.6.6.6;x="""#,
            r#"for=6.6.6.6;x=", y=""#,
        ] {
            let line = format!("{client_part}, for=198.51.100.7");
            let map = headers("forwarded", &[line.as_str()]);
            assert_eq!(walk(&h, &map, &[]), Some(ip("198.51.100.7")), "{line}");
        }
        // Also when the proxy's own node is quoted.
        let map = headers(
            "forwarded",
            &[r#"for=6.6.6.6;x=", for="[2001:db8::1]:443""#],
        );
        assert_eq!(walk(&h, &map, &[]), Some(ip("2001:db8::1")));
        // A well-formed quoted comma stays inside its element, also when our proxy
        // wrote it after a quote the client left open.
        let map = headers("forwarded", &[r#"for=198.51.100.8;ext="a,b""#]);
        assert_eq!(walk(&h, &map, &[]), Some(ip("198.51.100.8")));
        let map = headers(
            "forwarded",
            &[r#"for=6.6.6.6;x=", for=198.51.100.7;ext="a,b""#],
        );
        assert_eq!(walk(&h, &map, &[]), Some(ip("198.51.100.7")));
        let map = headers("forwarded", &[r#"for=198.51.100.9;ext="a,\"b""#]);
        assert_eq!(walk(&h, &map, &[]), Some(ip("198.51.100.9")));
    }

    #[test]
    fn address_lists_have_no_quotes_to_hide_the_proxys_entry() {
        for name in ["x-forwarded-for", "x-real-ip"] {
            let h = if name == "x-real-ip" {
                ForwardedHeader::XRealIp
            } else {
                ForwardedHeader::XForwardedFor
            };
            let map = headers(name, &[r#"", 198.51.100.7"#]);
            assert_eq!(walk(&h, &map, &[]), Some(ip("198.51.100.7")), "{name}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let h = ForwardedHeader::XForwardedFor;
        for bad in ["1.2.3.4.5", "[::1", "\"", "for=1.2.3.4"] {
            let map = headers("x-forwarded-for", &[bad]);
            assert!(h.walk(&map, |_| false).is_err(), "{bad:?}");
        }
        let map = headers("forwarded", &["for=1.2.3.4.5"]);
        assert!(ForwardedHeader::Forwarded.walk(&map, |_| false).is_err());
        let map = headers("forwarded", &["for=6.6.6.6;for=198.51.100.7"]);
        assert!(ForwardedHeader::Forwarded.walk(&map, |_| false).is_err());
        let mut map = HeaderMap::new();
        map.insert(
            "x-forwarded-for",
            http::HeaderValue::from_bytes(b"\xff").unwrap(),
        );
        assert!(h.walk(&map, |_| false).is_err());
    }

    #[test]
    fn a_stuffed_header_is_read_no_further_than_the_nearest_hops() {
        // 200,000 entries a client wrote, then our proxies' 63: the walk reads 64 from
        // the right and stops, whatever lies beyond.
        let stuffed = format!(
            "{}198.51.100.7{}",
            "6.6.6.6, ".repeat(200_000),
            ", 10.0.0.1".repeat(63)
        );
        let mut map = HeaderMap::new();
        map.insert("x-forwarded-for", stuffed.parse().unwrap());
        let h = ForwardedHeader::XForwardedFor;
        assert_eq!(walk(&h, &map, &["10.0.0.1"]), Some(ip("198.51.100.7")));
        // One hop more than that and the walk gives up at the last one it read.
        let deeper = format!("198.51.100.7{}", ", 10.0.0.1".repeat(64));
        map.insert("x-forwarded-for", deeper.parse().unwrap());
        assert_eq!(walk(&h, &map, &["10.0.0.1"]), Some(ip("10.0.0.1")));
    }

    #[test]
    fn only_the_nearest_hops_are_read() {
        let long = vec!["10.0.0.1"; 1000].join(",");
        let mut map = HeaderMap::new();
        map.insert("x-forwarded-for", long.parse().unwrap());
        let h = ForwardedHeader::XForwardedFor;
        assert_eq!(walk(&h, &map, &["10.0.0.1"]), Some(ip("10.0.0.1")));
    }
}
