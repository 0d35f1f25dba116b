//! Key extractors: what a request is counted by.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::net::IpAddr;

use ipnet::IpNet;

use super::RequestView;
use super::key::QuotaKey;

/// Longest header value [`FromHeader`] takes as a key.
const MAX_HEADER_KEY_LEN: usize = 256;

/// Why a request has no key: answered with its status (400 for what the client sent, 500 for
/// a layer missing in front) and an `application/problem+json` body with its detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unkeyed {
    status: u16,
    detail: Cow<'static, str>,
}

impl Unkeyed {
    /// The request itself lacks what the key is read from (400).
    pub fn bad_request(detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: 400,
            detail: detail.into(),
        }
    }

    /// The server is set up wrong: a layer that should have run first did not (500).
    pub fn misconfigured(detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: 500,
            detail: detail.into(),
        }
    }

    /// The status answered.
    #[must_use]
    pub const fn status(&self) -> u16 {
        self.status
    }

    /// What is missing.
    #[must_use]
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

/// Reads the key a request is counted by.
///
/// Ready-made: [`PeerIp`], [`ForwardedIp`], [`FromHeader`], [`FromExtension`]; and any closure
/// `Fn(&R) -> Option<K>` with `K: Into<QuotaKey>` (`None` answers 400).
pub trait KeyExtractor<R: ?Sized>: Send + Sync + 'static {
    /// The key of `req`.
    ///
    /// # Errors
    /// [`Unkeyed`] when the request has nothing to count it by.
    fn extract(&self, req: &R) -> Result<QuotaKey, Unkeyed>;
}

impl<R, F, K> KeyExtractor<R> for F
where
    R: ?Sized,
    F: Fn(&R) -> Option<K> + Send + Sync + 'static,
    K: Into<QuotaKey>,
{
    fn extract(&self, req: &R) -> Result<QuotaKey, Unkeyed> {
        self(req)
            .map(Into::into)
            .ok_or_else(|| Unkeyed::bad_request("the request carries nothing to count it by"))
    }
}

/// The TCP peer's address, IPv6 grouped by a prefix (/64 by default: one host usually holds a
/// whole /64, so counting single addresses would give it 2^64 buckets).
///
/// **Caveat**: behind a proxy or load balancer every request comes from the proxy, so every
/// client shares one bucket. Use [`ForwardedIp`] there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerIp {
    v4_prefix: u8,
    v6_prefix: u8,
}

impl Default for PeerIp {
    fn default() -> Self {
        Self {
            v4_prefix: 32,
            v6_prefix: 64,
        }
    }
}

impl PeerIp {
    /// Whole IPv4 addresses, IPv6 by /64.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Groups IPv6 addresses by their first `prefix` bits (values above 128 count as 128).
    #[must_use]
    pub const fn ipv6_prefix(mut self, prefix: u8) -> Self {
        self.v6_prefix = if prefix > 128 { 128 } else { prefix };
        self
    }

    /// Groups IPv4 addresses by their first `prefix` bits (values above 32 count as 32).
    #[must_use]
    pub const fn ipv4_prefix(mut self, prefix: u8) -> Self {
        self.v4_prefix = if prefix > 32 { 32 } else { prefix };
        self
    }

    fn key(&self, ip: IpAddr) -> QuotaKey {
        QuotaKey::network(ip, self.v4_prefix, self.v6_prefix)
    }
}

fn unknown_peer() -> Unkeyed {
    Unkeyed::misconfigured("the client's address is unknown")
}

impl<R: RequestView + ?Sized> KeyExtractor<R> for PeerIp {
    fn extract(&self, req: &R) -> Result<QuotaKey, Unkeyed> {
        req.peer_ip()
            .map(|ip| self.key(ip))
            .ok_or_else(unknown_peer)
    }
}

/// The client behind trusted proxies: the peer when it is not a trusted proxy; otherwise the
/// `X-Forwarded-For` chain walked right to left, skipping trusted proxies, up to the first
/// address that is not one. Grouped like [`PeerIp`].
///
/// A proxy appends the address it received from, so the right-most entries are the ones your
/// own proxies wrote, and anything left of the first untrusted one was written by the client
/// and is never read. The walk stops at the first entry that does not parse as an address, and
/// a chain made only of trusted proxies names no client: both are refused with 400, never
/// counted against the proxy's own address (which would put every client in one bucket).
///
/// **Caveat**: list exactly the proxies that overwrite or append `X-Forwarded-For` (your load
/// balancers). With no trusted proxy this is [`PeerIp`]; a client that reaches the server
/// directly cannot forge its address either way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardedIp {
    trusted: Vec<IpNet>,
    peer: PeerIp,
}

impl ForwardedIp {
    /// Trusting the proxies in `trusted` (e.g. `"10.0.0.0/8".parse::<ipnet::IpNet>()?`).
    pub fn new(trusted: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            trusted: trusted.into_iter().collect(),
            peer: PeerIp::default(),
        }
    }

    /// Groups IPv6 clients by their first `prefix` bits (default 64).
    #[must_use]
    pub fn ipv6_prefix(mut self, prefix: u8) -> Self {
        self.peer = self.peer.ipv6_prefix(prefix);
        self
    }

    /// Groups IPv4 clients by their first `prefix` bits (default 32).
    #[must_use]
    pub fn ipv4_prefix(mut self, prefix: u8) -> Self {
        self.peer = self.peer.ipv4_prefix(prefix);
        self
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client's address, given the peer and the `X-Forwarded-For` lines in order.
    ///
    /// # Errors
    /// [`Unkeyed`] (400) when the chain names no client or holds an unreadable entry.
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&[u8]]) -> Result<IpAddr, Unkeyed> {
        if !self.is_trusted(peer) {
            return Ok(peer);
        }
        // Right to left: the last line first, and in each line the last entry first.
        for line in forwarded_for.iter().rev() {
            for hop in line.rsplit(|&b| b == b',') {
                let ip = parse_hop(hop).ok_or_else(|| {
                    Unkeyed::bad_request("X-Forwarded-For holds an entry that is not an address")
                })?;
                if !self.is_trusted(ip) {
                    return Ok(ip);
                }
            }
        }
        Err(Unkeyed::bad_request(
            "X-Forwarded-For names no client outside the trusted proxies",
        ))
    }
}

/// One `X-Forwarded-For` entry: an address, optionally in brackets (IPv6), surrounded by
/// optional spaces or tabs. Ports are not accepted.
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let hop = core::str::from_utf8(hop).ok()?.trim_matches([' ', '\t']);
    let hop = hop
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(hop);
    hop.parse().ok()
}

impl<R: RequestView + ?Sized> KeyExtractor<R> for ForwardedIp {
    fn extract(&self, req: &R) -> Result<QuotaKey, Unkeyed> {
        let peer = req.peer_ip().ok_or_else(unknown_peer)?;
        let client = if self.trusted.is_empty() || !self.is_trusted(peer) {
            peer
        } else {
            self.client(peer, &req.header_values("x-forwarded-for"))?
        };
        Ok(self.peer.key(client))
    }
}

/// A header's value, e.g. a tenant id a gateway in front sets. The value must be 1 to 256
/// visible ASCII characters; a request without it is refused with 400.
///
/// **Caveat**: a header is what the client says. Count by a header only when something in
/// front has checked it, and prefer a key's id to the key itself (counts are stored by key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FromHeader {
    name: String,
}

impl FromHeader {
    /// The header `name` (case-insensitive).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into().to_ascii_lowercase(),
        }
    }
}

impl<R: RequestView + ?Sized> KeyExtractor<R> for FromHeader {
    fn extract(&self, req: &R) -> Result<QuotaKey, Unkeyed> {
        let value = req
            .header(&self.name)
            .ok_or_else(|| Unkeyed::bad_request(format!("missing header {}", self.name)))?;
        let visible = !value.is_empty()
            && value.len() <= MAX_HEADER_KEY_LEN
            && value.iter().all(|b| (0x21..=0x7e).contains(b));
        match core::str::from_utf8(value) {
            Ok(text) if visible => Ok(QuotaKey::from(text)),
            _ => Err(Unkeyed::bad_request(format!(
                "header {} must be 1 to 256 visible ASCII characters",
                self.name
            ))),
        }
    }
}

/// A value an earlier layer put into the request extensions, such as the authenticated key's
/// id: `FromExtension::new(|identity: &MyIdentity| identity.key_id.clone())`.
///
/// A request without the extension is refused with 500: the layer that inserts it is missing
/// in front of this one.
pub struct FromExtension<T, F> {
    read: F,
    _type: PhantomData<fn(&T)>,
}

impl<T, F, K> FromExtension<T, F>
where
    T: Send + Sync + 'static,
    F: Fn(&T) -> K + Send + Sync + 'static,
    K: Into<QuotaKey>,
{
    /// Reads the key from the extension of type `T` with `read`.
    pub fn new(read: F) -> Self {
        Self {
            read,
            _type: PhantomData,
        }
    }
}

impl<T, F> fmt::Debug for FromExtension<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromExtension")
            .field("type", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

impl<R, T, F, K> KeyExtractor<R> for FromExtension<T, F>
where
    R: RequestView + ?Sized,
    T: Send + Sync + 'static,
    F: Fn(&T) -> K + Send + Sync + 'static,
    K: Into<QuotaKey>,
{
    fn extract(&self, req: &R) -> Result<QuotaKey, Unkeyed> {
        req.with_extension(|value: &T| (self.read)(value).into())
            .ok_or_else(|| {
                Unkeyed::misconfigured(format!(
                    "no {} in the request: the layer that adds it must run first",
                    short_type_name::<T>()
                ))
            })
    }
}

/// `T`'s name without its module path.
fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn lb() -> ForwardedIp {
        ForwardedIp::new(["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()])
    }

    #[test]
    fn the_walk_stops_at_the_first_untrusted_hop() {
        let peer = ip("10.0.0.2");
        assert_eq!(lb().client(peer, &[b"203.0.113.9"]), Ok(ip("203.0.113.9")));
        // A client's forged entries sit left of the real one and are never read.
        assert_eq!(
            lb().client(peer, &[b"1.1.1.1, garbage, 203.0.113.9"]),
            Ok(ip("203.0.113.9"))
        );
        // Several of our proxies, and the header on two lines (the later line is further right).
        assert_eq!(
            lb().client(peer, &[b"198.51.100.4", b"10.1.1.1, 10.2.2.2"]),
            Ok(ip("198.51.100.4"))
        );
        assert_eq!(
            lb().client(peer, &[b" [2001:db8::7] "]),
            Ok(ip("2001:db8::7"))
        );
        // An untrusted peer is the client, whatever it claims.
        assert_eq!(
            lb().client(ip("198.51.100.7"), &[b"1.1.1.1"]),
            Ok(ip("198.51.100.7"))
        );
    }

    #[test]
    fn the_proxy_itself_is_never_the_client() {
        let peer = ip("10.0.0.2");
        for chain in [
            &[][..],
            &[&b"10.9.9.9"[..]][..],
            &[&b"203.0.113.9, not-an-ip"[..]][..],
            &[&b"203.0.113.9:4711"[..]][..],
            &[&b"203.0.113.9,"[..]][..],
            &[&b"\xff"[..]][..],
        ] {
            let refused = lb().client(peer, chain);
            assert_eq!(refused.map_err(|u| u.status()), Err(400), "{chain:?}");
        }
        // IPv4-mapped forms of a trusted proxy are trusted too.
        assert!(
            lb().client(ip("::ffff:10.0.0.2"), &[b"::ffff:10.0.0.3"])
                .is_err()
        );
    }

    #[test]
    fn unkeyed_says_what_is_missing() {
        let u = Unkeyed::bad_request("missing header x-tenant");
        assert_eq!((u.status(), u.detail()), (400, "missing header x-tenant"));
        assert_eq!(Unkeyed::misconfigured("x").status(), 500);
        assert_eq!(short_type_name::<String>(), "String");
    }
}
