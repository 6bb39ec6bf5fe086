//! The client's address behind reverse proxies (`trusted_proxies`).
//!
//! The failed-authentication limit and the verification limits count per client address. A request that
//! comes straight from a client has it as its peer; behind a reverse proxy every request's peer is the
//! proxy, and the client's address is in `X-Forwarded-For`, which each proxy extends on the right with the
//! address it received the request from. Anyone can send that header, so it is believed only as far as
//! proxies the operator trusts wrote it: when the peer is in `trusted_proxies`, the hops are walked from
//! the right, each trusted one skipped, and the first address that is not a trusted proxy is the client
//! (the one the nearest trusted proxy saw). A peer that is not trusted is the client, whatever it sends.
//!
//! Each hop is read on its own, from the header's bytes: one that is not an address (`unknown`, garbage,
//! bytes that are not ASCII) spoils no other hop. When the walk reaches such a hop before any untrusted
//! address, the client cannot be known, and the peer's address stands (as without the header). A hop
//! written by the client itself lies left of the address the proxy appended, so it is never reached.
//!
//! Every per-client limit counts a client by its [`AddressBlock`]: an IPv4 address, or the /64 of an IPv6
//! one, so that the many addresses of one IPv6 subscriber share one budget.

use std::net::{IpAddr, SocketAddr};

use crate::egress::Cidr;

/// The block a client is counted by in every per-client limit (failed authentication, verification
/// starts): an IPv4 address, or the /64 of an IPv6 address (the block one subscriber usually holds, and
/// can pick any address in). An IPv4-mapped IPv6 address is its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressBlock {
    V4([u8; 4]),
    V6([u8; 8]),
}

impl AddressBlock {
    /// The block `ip` belongs to.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => AddressBlock::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let mut prefix = [0u8; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                AddressBlock::V6(prefix)
            }
        }
    }

    /// Its bytes: the 4 of an IPv4 address, the 8 of an IPv6 /64 prefix.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            AddressBlock::V4(b) => b,
            AddressBlock::V6(b) => b,
        }
    }
}

/// The proxies whose `X-Forwarded-For` is believed. Empty (the default): none; the peer is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    cidrs: Vec<Cidr>,
}

impl TrustedProxies {
    /// The proxies in `cidrs` (texts such as `10.0.0.0/8` or `::1`); an error names the first that does not
    /// parse.
    pub fn parse<S: AsRef<str>>(cidrs: &[S]) -> Result<Self, String> {
        let cidrs = cidrs.iter().map(|c| c.as_ref().parse()).collect::<Result<_, _>>()?;
        Ok(Self { cidrs })
    }

    /// Whether `ip` is a trusted proxy (an IPv4-mapped IPv6 address is read as its IPv4 address).
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.cidrs.iter().any(|c| c.contains(ip))
    }

    /// The client's address of a request from `peer` carrying the `X-Forwarded-For` header lines
    /// `forwarded_for` (in the order received; several lines read as one list).
    pub fn client<'a>(&self, peer: IpAddr, forwarded_for: impl IntoIterator<Item = &'a [u8]>) -> IpAddr {
        let peer = peer.to_canonical();
        if self.cidrs.is_empty() || !self.trusts(peer) {
            return peer;
        }
        let lines: Vec<&[u8]> = forwarded_for.into_iter().collect();
        let hops = lines.iter().rev().flat_map(|line| line.rsplit(|b| *b == b','));
        let mut client = peer;
        for hop in hops {
            let hop = trim(hop);
            if hop.is_empty() {
                // `a,,b` or a trailing comma: no hop there.
                continue;
            }
            let Some(ip) = hop_address(hop) else {
                return peer;
            };
            client = ip;
            if !self.trusts(ip) {
                return ip;
            }
        }
        // Every hop was a trusted proxy: the leftmost is as far as anyone can tell.
        client
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// One hop's address: `192.0.2.1`, `2001:db8::1`, or either with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`, `[2001:db8::1]`); anything else (not ASCII, `unknown`, a name) is none.
fn hop_address(hop: &[u8]) -> Option<IpAddr> {
    if hop.len() > 64 || !hop.is_ascii() {
        return None;
    }
    let text = std::str::from_utf8(hop).ok()?;
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(socket.ip().to_canonical());
    }
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<std::net::Ipv6Addr>().ok().map(|v6| IpAddr::V6(v6).to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn client(trusted: &[&str], peer: &str, lines: &[&[u8]]) -> IpAddr {
        TrustedProxies::parse(trusted).expect("CIDRs").client(ip(peer), lines.iter().copied())
    }

    #[test]
    fn blocks_are_ipv4_addresses_and_ipv6_64s() {
        let block = |text: &str| AddressBlock::of(ip(text));
        assert_eq!(block("2001:db8:1:2::1"), block("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_ne!(block("2001:db8:1:2::1"), block("2001:db8:1:3::1"));
        assert_eq!(block("::ffff:192.0.2.7"), block("192.0.2.7"));
        assert_ne!(block("192.0.2.7"), block("192.0.2.8"));
        assert_eq!(block("192.0.2.7").as_bytes(), [192, 0, 2, 7]);
        assert_eq!(block("2001:db8:1:2::9").as_bytes(), [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2]);
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        assert_eq!(client(&[], "203.0.113.9", &[b"198.51.100.1"]), ip("203.0.113.9"));
        assert_eq!(client(&["10.0.0.0/8"], "203.0.113.9", &[b"198.51.100.1"]), ip("203.0.113.9"));
    }

    #[test]
    fn trusted_hops_are_skipped_from_the_right() {
        let trusted = ["10.0.0.0/8", "2001:db8:ffff::/48"];
        // The client's own claim (left) is never reached: the proxy's appended hop is untrusted.
        assert_eq!(client(&trusted, "10.0.0.1", &[b"1.1.1.1, 198.51.100.7"]), ip("198.51.100.7"));
        assert_eq!(client(&trusted, "10.0.0.1", &[b"198.51.100.7, 10.0.0.2, 10.9.9.9"]), ip("198.51.100.7"));
        assert_eq!(client(&trusted, "10.0.0.1", &[b"198.51.100.7", b"10.0.0.2"]), ip("198.51.100.7"));
        assert_eq!(client(&trusted, "10.0.0.1", &[b"2001:db8:1::5, 2001:db8:ffff::1"]), ip("2001:db8:1::5"));
        // No header: the peer.
        assert_eq!(client(&trusted, "10.0.0.1", &[]), ip("10.0.0.1"));
        // Every hop trusted: the leftmost.
        assert_eq!(client(&trusted, "10.0.0.1", &[b"10.0.0.3, 10.0.0.2"]), ip("10.0.0.3"));
    }

    #[test]
    fn ports_brackets_spaces_and_empty_hops_are_read() {
        let trusted = ["127.0.0.1"];
        assert_eq!(client(&trusted, "127.0.0.1", &[b"198.51.100.7:4711"]), ip("198.51.100.7"));
        assert_eq!(client(&trusted, "127.0.0.1", &[b"[2001:db8::7]:4711"]), ip("2001:db8::7"));
        assert_eq!(client(&trusted, "127.0.0.1", &[b"[2001:db8::7]"]), ip("2001:db8::7"));
        assert_eq!(client(&trusted, "127.0.0.1", &[b" \t198.51.100.7 ,, "]), ip("198.51.100.7"));
        assert_eq!(client(&trusted, "::ffff:127.0.0.1", &[b"::ffff:198.51.100.7"]), ip("198.51.100.7"));
    }

    #[test]
    fn a_bad_hop_spoils_no_other_hop() {
        let trusted = ["10.0.0.0/8"];
        // Garbage and bytes that are not ASCII left of the client's address do not matter.
        let latin1: &[u8] = b"caf\xe9, 198.51.100.7";
        assert_eq!(client(&trusted, "10.0.0.1", &[latin1]), ip("198.51.100.7"));
        let utf8 = "ä, unknown, 198.51.100.7".as_bytes();
        assert_eq!(client(&trusted, "10.0.0.1", &[utf8]), ip("198.51.100.7"));
        assert_eq!(client(&trusted, "10.0.0.1", &[b"\xff\xfe", b"198.51.100.7"]), ip("198.51.100.7"));
        // Reached before any untrusted hop, a bad one leaves the peer.
        assert_eq!(client(&trusted, "10.0.0.1", &[b"198.51.100.7, unknown"]), ip("10.0.0.1"));
        assert_eq!(client(&trusted, "10.0.0.1", &[b"198.51.100.7, 10.0.0.2, \xe9"]), ip("10.0.0.1"));
        assert_eq!(client(&trusted, "10.0.0.1", &[b"example.com"]), ip("10.0.0.1"));
        assert_eq!(client(&trusted, "10.0.0.1", &[b"1.2.3.4.5"]), ip("10.0.0.1"));
    }

    #[test]
    fn cidrs_are_checked() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::parse(&["proxy.local"]).is_err());
        assert!(TrustedProxies::parse(&["::1", "10.0.0.0/8"]).is_ok());
    }
}
