//! The SSRF guard's address policy: which destinations a sender may connect to. Pure: no
//! I/O; the reqwest transport applies it before connecting and to every resolved address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use super::Refusal;

/// A CIDR range, e.g. `10.0.0.0/8` or `fd00::/8`, for [`AddressPolicy::allow_range`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

/// Text that is not `address/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRange(());

impl fmt::Display for InvalidRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected an address range like 10.0.0.0/8 or fd00::/8")
    }
}

impl std::error::Error for InvalidRange {}

impl IpRange {
    /// `address/prefix`; a bare address is a single-address range.
    pub fn parse(text: &str) -> Result<Self, InvalidRange> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = addr.trim().parse().map_err(|_| InvalidRange(()))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| InvalidRange(()))?,
            None => max,
        };
        if prefix > max {
            return Err(InvalidRange(()));
        }
        Ok(IpRange { network, prefix })
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_match(
                u128::from(u32::from(net)) << 96,
                u128::from(u32::from(ip)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_match(u128::from(net), u128::from(ip), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_match(a: u128, b: u128, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = 128 - u32::from(prefix.min(128));
    (a >> shift) == (b >> shift)
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Where a URL points, once its host is classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// An IP literal, already vetted.
    Address(IpAddr),
    /// A name to resolve; each address it resolves to is vetted before connecting.
    Name(String),
}

/// Which destinations may be delivered to.
///
/// By default only public unicast addresses over `https` are allowed. Refused, in IPv4:
/// `0/8`, `10/8`, `100.64/10`, `127/8`, `169.254/16`, `172.16/12`, `192.0.0/24`, `192.0.2/24`,
/// `192.88.99/24`, `192.168/16`, `198.18/15`, `198.51.100/24`, `203.0.113/24`, `224/4`,
/// `240/4`. In IPv6: `::`, `::1`, `100::/64`, `2001::/23` (Teredo, benchmarking, ORCHID and
/// other IETF special ranges), `2001:db8::/32`, `fc00::/7`, `fe80::/10`, `fec0::/10`,
/// `ff00::/8`, `64:ff9b:1::/48`; and every form that carries an IPv4 address is judged by
/// that address: IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, SIIT
/// `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d` and 6to4 `2002:aabb:ccdd::`. Host names
/// `localhost`, `*.localhost`, `*.local`, `*.internal` (`metadata.google.internal`) and
/// `*.home.arpa` are refused without a lookup.
///
/// Hosts are classified from the parsed URL, never the raw text: the WHATWG parser has
/// already turned `2130706433`, `0x7f.1`, `0177.0.0.1` and `127.1` into `127.0.0.1`.
///
/// When a name resolves to several addresses, the guard connects only to the permitted
/// ones, and refuses the destination if none is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    http: bool,
    private: bool,
    allowed: Vec<IpRange>,
}

impl AddressPolicy {
    /// Public addresses over `https` only (the default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Also allows plain `http://` (local development).
    #[must_use]
    pub fn allow_http(mut self) -> Self {
        self.http = true;
        self
    }

    /// Also allows every non-public address: loopback, private, link-local… (local
    /// development and tests). Prefer [`allow_range`](Self::allow_range) for internal use.
    #[must_use]
    pub fn allow_private_networks(mut self) -> Self {
        self.private = true;
        self
    }

    /// Also allows the addresses in `range` (an explicit allow-list for internal receivers).
    #[must_use]
    pub fn allow_range(mut self, range: IpRange) -> Self {
        self.allowed.push(range);
        self
    }

    /// Whether `ip` may be connected to.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.private || is_public(ip) || self.allowed.iter().any(|r| r.contains(ip))
    }

    /// Checks a URL before any connection: scheme, credentials, and the parsed host.
    pub fn check_url(&self, url: &Url) -> Result<Destination, Refusal> {
        match url.scheme() {
            "https" => {}
            "http" if self.http => {}
            "http" => return Err(Refusal::InsecureScheme),
            _ => return Err(Refusal::Scheme),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::Userinfo);
        }
        let ip = match url.host().ok_or(Refusal::NoHost)? {
            Host::Ipv4(v4) => IpAddr::V4(v4),
            Host::Ipv6(v6) => IpAddr::V6(v6),
            Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name.is_empty() {
                    return Err(Refusal::NoHost);
                }
                if !self.private && is_reserved_name(&name) {
                    return Err(Refusal::NonPublicAddress);
                }
                return Ok(Destination::Name(name));
            }
        };
        if self.permits(ip) {
            Ok(Destination::Address(ip))
        } else {
            Err(Refusal::NonPublicAddress)
        }
    }
}

fn is_reserved_name(name: &str) -> bool {
    const SUFFIXES: &[&str] = &["localhost", "local", "internal", "home.arpa", "localdomain"];
    SUFFIXES.iter().any(|suffix| {
        name == *suffix
            || name
                .strip_suffix(suffix)
                .is_some_and(|rest| rest.ends_with('.'))
    })
}

/// Whether `ip` is a public unicast address (see [`AddressPolicy`] for the ranges).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    const REFUSED: &[(u32, u8)] = &[
        (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
        (0x0A00_0000, 8),  // 10/8
        (0x6440_0000, 10), // 100.64/10 shared (CGNAT)
        (0x7F00_0000, 8),  // 127/8 loopback
        (0xA9FE_0000, 16), // 169.254/16 link-local (cloud metadata)
        (0xAC10_0000, 12), // 172.16/12
        (0xC000_0000, 24), // 192.0.0/24 IETF protocol assignments
        (0xC000_0200, 24), // 192.0.2/24 TEST-NET-1
        (0xC058_6300, 24), // 192.88.99/24 6to4 relay anycast
        (0xC0A8_0000, 16), // 192.168/16
        (0xC612_0000, 15), // 198.18/15 benchmarking
        (0xC633_6400, 24), // 198.51.100/24 TEST-NET-2
        (0xCB00_7100, 24), // 203.0.113/24 TEST-NET-3
        (0xE000_0000, 4),  // 224/4 multicast
        (0xF000_0000, 4),  // 240/4 reserved, broadcast
    ];
    let bits = u32::from(ip);
    !REFUSED.iter().any(|&(net, prefix)| {
        let mask = u32::MAX << (32 - u32::from(prefix));
        bits & mask == net
    })
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    let in_range = |net: u128, prefix: u8| prefix_match(net, bits, prefix);
    let embedded = |shift: u32| Ipv4Addr::from((bits >> shift) as u32);
    if bits == 0 || bits == 1 {
        return false; // :: and ::1
    }
    if in_range(0xffff_0000_0000, 96) // ::ffff:a.b.c.d mapped
        || in_range(0, 96) // ::a.b.c.d compatible
        || in_range(0xffff_0000_0000_0000, 96) // ::ffff:0:a.b.c.d SIIT
        || in_range(0x0064_ff9b_u128 << 96, 96)
    // 64:ff9b::a.b.c.d NAT64
    {
        return is_public_v4(embedded(0));
    }
    if in_range(0x2002_u128 << 112, 16) {
        return is_public_v4(embedded(80)); // 6to4 2002:aabb:ccdd::/48
    }
    const REFUSED: &[(u128, u8)] = &[
        (0x0064_ff9b_0001_u128 << 80, 48), // 64:ff9b:1::/48 local-use NAT64
        (0x0100_u128 << 112, 64),          // 100::/64 discard
        (0x2001_u128 << 112, 23),          // 2001::/23 IETF special (Teredo, ORCHID, …)
        (0x2001_0db8_u128 << 96, 32),      // 2001:db8::/32 documentation
        (0xfc00_u128 << 112, 7),           // fc00::/7 unique local
        (0xfe80_u128 << 112, 10),          // fe80::/10 link-local
        (0xfec0_u128 << 112, 10),          // fec0::/10 site-local
        (0xff00_u128 << 112, 8),           // ff00::/8 multicast
    ];
    !REFUSED.iter().any(|&(net, prefix)| in_range(net, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public(text.parse().unwrap())
    }

    #[test]
    fn ranges_and_edges() {
        for refused in [
            "127.0.0.1",
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.1",
            "203.0.113.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::7f00:1",
            "::ffff:0:7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "2001:db8::1",
            "ff02::1",
            "2001::1",
            "100::1",
            "64:ff9b:1::1",
        ] {
            assert!(!public(refused), "{refused} must be refused");
        }
        for allowed in [
            "1.1.1.1",
            "8.8.8.8",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "64:ff9b::101:101",
            "2002:101:101::1",
            "172.32.0.1",
            "100.128.0.1",
        ] {
            assert!(public(allowed), "{allowed} must be allowed");
        }
    }

    #[test]
    fn ranges_parse_and_match() {
        let r = IpRange::parse("127.0.0.0/8").unwrap();
        assert!(r.contains("127.1.2.3".parse().unwrap()));
        assert!(r.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!r.contains("128.0.0.1".parse().unwrap()));
        assert!(IpRange::parse("10.0.0.0/33").is_err());
        assert!(IpRange::parse("nope").is_err());
        assert!(
            IpRange::parse("fd00::/8")
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
    }
}
