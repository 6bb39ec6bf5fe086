//! Where Consentry may connect on a destination's behalf: the guard against server-side request forgery.
//!
//! A destination URL is chosen by whoever holds a `destinations` key, so without a guard it could point
//! the node at its own loopback services, the cloud metadata endpoint (`169.254.169.254`) or the private
//! network. [`AddressPolicy`] refuses every address that is not publicly routable (loopback, RFC 1918,
//! CGNAT, link-local, unique-local, multicast, unspecified, broadcast and reserved ranges, also when
//! written as an IPv4-mapped, IPv4-compatible, NAT64 or 6to4 IPv6 address) unless the operator lists it
//! in `allow_private_destinations`.
//!
//! Hosts are checked twice: when a destination is created or changed (an IP literal, however it is
//! written: `2130706433` and `127.1` are read as the URL standard reads them), and at send time, after
//! resolution, where only checked addresses are connected to ([`Resolver`] for webhooks,
//! [`AddressPolicy::pin`] for NATS and MQTT), so a name that resolves differently on the second lookup
//! cannot slip through.
//!
//! The CIDR parser is our own: it is twenty lines, and `ipnet` (already in the lock file through reqwest)
//! would be a new direct dependency for a prefix comparison.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

/// The error a refused address gives: every address a host resolved to is internal and not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("refused_address")]
pub struct RefusedAddress;

/// An IP network: an address and the number of leading bits that must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies in this network (an IPv4 network never holds an IPv6 address, and back).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                prefix_eq(u32::from(n).into(), u32::from(a).into(), self.prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(u128::from(n), u128::from(a), self.prefix, 128),
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8, width: u8) -> bool {
    let shift = u32::from(width - prefix);
    shift >= u32::from(width) || (a >> shift) == (b >> shift)
}

impl FromStr for Cidr {
    type Err = String;

    /// `10.0.0.0/8`, `::1/128`, or a bare address (a single host).
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad = || format!("`{text}` is not a CIDR such as 127.0.0.0/8 or ::1/128");
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| bad())?;
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= width).ok_or_else(bad)?,
            None => width,
        };
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The IPv4 address an IPv6 address carries (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64
/// `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`), if any.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    match ip.segments() {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => {
            Some(low)
        }
        [0x2002, ..] => Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32)),
        _ => None,
    }
}

/// Whether `ip` is an address no destination should reach by default: anything not publicly routable.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            // `::` and `::1` first: they also look like IPv4-compatible addresses.
            if v6.is_unspecified() || v6.is_loopback() {
                return true;
            }
            if let Some(v4) = embedded_v4(v6) {
                return is_internal_v4(v4);
            }
            let first = v6.segments()[0];
            (first & 0xfe00) == 0xfc00 // unique-local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
                || (first & 0xff00) == 0xff00 // multicast ff00::/8
                || v6.segments()[..4] == [0x100, 0, 0, 0] // discard-only 100::/64
        }
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network", with 0.0.0.0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0.0/24
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
        || a >= 224 // multicast 224/4, reserved 240/4, broadcast
}

/// Reads `allow_private_destinations`: a list of CIDRs (a file), or the same comma-separated (a variable).
/// Each is checked by [`crate::config::Config::validate`].
pub fn cidr_list<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Cidrs {
        List(Vec<String>),
        Text(String),
    }
    let list = match <Cidrs as serde::Deserialize>::deserialize(deserializer)? {
        Cidrs::List(list) => list,
        Cidrs::Text(text) => text.split(',').map(str::to_owned).collect(),
    };
    Ok(list.into_iter().map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect())
}

/// Which internal addresses the operator lets destinations reach (`allow_private_destinations`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allow: Vec<Cidr>,
}

impl AddressPolicy {
    /// A policy allowing the internal networks `cidrs` (texts such as `127.0.0.0/8`); an error names the
    /// first one that does not parse.
    pub fn parse<S: AsRef<str>>(cidrs: &[S]) -> Result<Self, String> {
        let allow = cidrs.iter().map(|c| c.as_ref().parse()).collect::<Result<_, _>>()?;
        Ok(Self { allow })
    }

    /// Whether a destination may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        if !is_internal(ip) {
            return true;
        }
        let unwrapped = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.allow.iter().any(|c| c.contains(ip) || unwrapped.is_some_and(|u| c.contains(u)))
    }

    /// `addrs` without the refused ones; [`RefusedAddress`] when none is left although some were given.
    pub fn filter(
        &self,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, RefusedAddress> {
        let (kept, refused): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|a| self.permits(a.ip()));
        if kept.is_empty() && !refused.is_empty() {
            tracing::warn!(addresses = ?refused, "a destination resolved only to refused addresses");
            return Err(RefusedAddress);
        }
        Ok(kept)
    }

    /// Resolves `host` (a name or an IP literal) and returns the first address this policy permits, with
    /// `port`: the one address to connect to. `Ok(None)` when the name does not resolve.
    pub async fn pin(&self, host: &str, port: u16) -> Result<Option<SocketAddr>, RefusedAddress> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs = match tokio::net::lookup_host((host, port)).await {
            Ok(addrs) => addrs.collect::<Vec<_>>(),
            Err(e) => {
                tracing::warn!(host, error = %e, "a destination's host does not resolve");
                return Ok(None);
            }
        };
        Ok(self.filter(addrs)?.into_iter().next())
    }
}

/// Why a destination URL cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlProblem {
    /// It does not parse, or has no host.
    Invalid,
    /// It carries `user:password@`.
    Credentials,
    /// Its host is an IP literal this policy refuses.
    Refused(IpAddr),
}

/// The IP address `host` (a URL's host text) stands for when read as the URL standard reads `http://`
/// hosts: `2130706433`, `0x7f.1` and `127.1` are all 127.0.0.1. `None` for a domain name.
pub fn literal_ip(host: &str) -> Option<IpAddr> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse().ok();
    }
    // An `http://` URL's host comes back as a dotted quad when the standard reads it as an IPv4 address.
    let url = reqwest::Url::parse(&format!("http://{host}/")).ok()?;
    url.host_str()?.parse().ok()
}

impl AddressPolicy {
    /// Checks a destination URL when it is created or changed: it parses, has a host, carries no
    /// credentials when `credentials_allowed` is false, and its host, if an IP literal, is permitted.
    /// Names are checked at send time, after resolution.
    pub fn check_url(&self, url: &str, credentials_allowed: bool) -> Result<(), UrlProblem> {
        let parsed = reqwest::Url::parse(url).map_err(|_| UrlProblem::Invalid)?;
        let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or(UrlProblem::Invalid)?;
        if !credentials_allowed && (!parsed.username().is_empty() || parsed.password().is_some()) {
            return Err(UrlProblem::Credentials);
        }
        match literal_ip(host) {
            Some(ip) if !self.permits(ip) => Err(UrlProblem::Refused(ip)),
            _ => Ok(()),
        }
    }
}

/// A DNS resolver for reqwest that hands the connector only permitted addresses, so a webhook connects to
/// exactly the addresses that were checked. (reqwest does not resolve IP literals: the webhook sink checks
/// those itself.)
#[derive(Debug, Clone)]
pub struct Resolver(pub Arc<AddressPolicy>);

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = Arc::clone(&self.0);
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let kept = policy.filter(addrs)?;
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether `error` was caused, somewhere down its chain, by a [`RefusedAddress`].
pub fn caused_by_refusal(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<RefusedAddress>() {
            return true;
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn classifies_addresses() {
        let check = |text: &str, internal: bool| assert_eq!(is_internal(ip(text)), internal, "{text}");
        for text in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "192.0.0.8",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "febf::1",
            "fc00::1",
            "fd00:ec2::254",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "::ffff:0.0.0.0",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "100::1",
        ] {
            check(text, true);
        }
        for text in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "169.253.1.1",
            "192.0.2.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2001:db8::1",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808",
            "2002:808:808::",
            "fec0::1:0:0:0:0",
        ] {
            check(text, text == "fec0::1:0:0:0:0");
        }
    }

    #[test]
    fn parses_cidrs() {
        let check = |text: &str, expected: Option<&str>| {
            assert_eq!(text.parse::<Cidr>().ok().map(|c| c.to_string()).as_deref(), expected, "{text}")
        };
        check("127.0.0.0/8", Some("127.0.0.0/8"));
        check(" ::1/128 ", Some("::1/128"));
        check("10.1.2.3", Some("10.1.2.3/32"));
        check("fd00::", Some("fd00::/128"));
        check("0.0.0.0/0", Some("0.0.0.0/0"));
        check("10.0.0.0/33", None);
        check("::/129", None);
        check("localhost", None);
        check("10.0.0.0/", None);
        check("", None);
    }

    #[test]
    fn the_allow_list_opens_only_its_networks() {
        let policy =
            AddressPolicy::parse(&["127.0.0.0/8", "::1/128", "fd00::/8"]).unwrap_or_else(|e| panic!("{e}"));
        let check = |text: &str, permitted: bool| assert_eq!(policy.permits(ip(text)), permitted, "{text}");
        check("127.0.0.1", true);
        check("127.9.9.9", true);
        check("::1", true);
        check("::ffff:127.0.0.1", true);
        check("fd00:ec2::254", true);
        check("10.0.0.1", false);
        check("169.254.169.254", false);
        check("0.0.0.0", false);
        check("8.8.8.8", true);
        let closed = AddressPolicy::default();
        assert!(
            !closed.permits(ip("127.0.0.1")) && !closed.permits(ip("::1")) && closed.permits(ip("1.1.1.1"))
        );
        assert!(AddressPolicy::parse(&["127.0.0.0/8", "nope"]).is_err());
    }

    #[test]
    fn reads_ip_literals_as_the_url_standard_does() {
        let check = |host: &str, expected: Option<&str>| {
            assert_eq!(literal_ip(host), expected.map(ip), "{host}");
        };
        check("2130706433", Some("127.0.0.1"));
        check("127.1", Some("127.0.0.1"));
        check("0x7f.0.0.1", Some("127.0.0.1"));
        check("0177.0.0.1", Some("127.0.0.1"));
        check("0", Some("0.0.0.0"));
        check("[::1]", Some("::1"));
        check("[::ffff:a9fe:a9fe]", Some("::ffff:169.254.169.254"));
        check("localhost", None);
        check("metadata.google.internal", None);
        check("example.org", None);
    }

    #[test]
    fn checks_urls_at_creation() {
        let policy = AddressPolicy::default();
        let check = |url: &str, expected: Result<(), UrlProblem>| {
            assert_eq!(policy.check_url(url, false), expected, "{url}");
        };
        check("https://hooks.example.org/in", Ok(()));
        check("http://localhost:8080/", Ok(())); // a name: checked at send time
        check("http://127.0.0.1:9/", Err(UrlProblem::Refused(ip("127.0.0.1"))));
        check("http://2130706433/", Err(UrlProblem::Refused(ip("127.0.0.1"))));
        check("http://[::1]/", Err(UrlProblem::Refused(ip("::1"))));
        check("http://[fd00:ec2::254]/", Err(UrlProblem::Refused(ip("fd00:ec2::254"))));
        check("http://169.254.169.254/latest/meta-data", Err(UrlProblem::Refused(ip("169.254.169.254"))));
        check("http://0.0.0.0/", Err(UrlProblem::Refused(ip("0.0.0.0"))));
        check("nats://2130706433:4222", Err(UrlProblem::Refused(ip("127.0.0.1"))));
        check("mqtt://10.0.0.1", Err(UrlProblem::Refused(ip("10.0.0.1"))));
        check("https://user:pass@hooks.example.org/", Err(UrlProblem::Credentials));
        check("https://user@hooks.example.org/", Err(UrlProblem::Credentials));
        check("not a url", Err(UrlProblem::Invalid));
        check("nats://", Err(UrlProblem::Invalid));
        assert_eq!(policy.check_url("nats://u:p@nats.example.org", true), Ok(()));
    }

    #[test]
    fn the_allow_list_comes_from_a_file_list_or_a_variable() {
        use crate::config::{Config, Flags};
        let load = |pairs: &[(&str, &str)]| {
            let env = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
            Config::load(None, env, &Flags::default())
        };
        const VAR: &str = "CONSENTRY_ALLOW_PRIVATE_DESTINATIONS";
        assert!(Config::default().allow_private_destinations.is_empty());
        let c = load(&[(VAR, "127.0.0.0/8, ::1/128")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.allow_private_destinations, ["127.0.0.0/8", "::1/128"]);
        let c = load(&[(VAR, "")]).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.allow_private_destinations.is_empty());
        let err =
            load(&[(VAR, "127.0.0.0/8,localhost")]).err().unwrap_or_else(|| panic!("localhost accepted"));
        assert!(
            err.to_string().starts_with("allow_private_destinations: `localhost` is not a CIDR"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "allow_private_destinations = [\"10.0.0.0/8\"]\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let c = Config::load(Some(&path), Vec::new(), &Flags::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.allow_private_destinations, ["10.0.0.0/8"]);
    }

    #[tokio::test]
    async fn pins_only_permitted_addresses() {
        let closed = AddressPolicy::default();
        assert_eq!(closed.pin("127.0.0.1", 80).await, Err(RefusedAddress));
        assert_eq!(closed.pin("localhost", 80).await, Err(RefusedAddress));
        assert_eq!(closed.pin("[::1]", 80).await, Err(RefusedAddress));
        let open = AddressPolicy::parse(&["127.0.0.0/8"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(open.pin("127.0.0.1", 80).await, Ok(Some(SocketAddr::from(([127, 0, 0, 1], 80)))));
    }
}
