//! The key a request is counted by, held inline when short (client addresses), so that
//! extracting one costs no allocation on the hot path.

use std::fmt;
use std::net::IpAddr;

/// Longest key held inline: an IPv6 network in its longest text form fits.
const INLINE: usize = 46;

/// What a request is counted by: a client address, a key id, a header value.
///
/// Its `Debug` shows only its length, since a key taken from a header may be a credential.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct QuotaKey(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl QuotaKey {
    /// The key as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Only whole `&str`s are ever copied in, so the bytes are UTF-8.
            Repr::Inline { len, bytes } => {
                core::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Repr::Heap(text) => text,
        }
    }

    /// The address's key: IPv4 to `v4_prefix` bits, IPv6 to `v6_prefix` bits (an IPv4-mapped
    /// IPv6 address counts as the IPv4 address). Whole addresses are written plainly
    /// (`203.0.113.7`), networks with their prefix (`2001:db8:1:2::/64`).
    pub(crate) fn network(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> Self {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        let mut out = Inline::default();
        // Writing into the inline buffer cannot fail: the longest form is 43 bytes.
        let _ = match ip {
            // IPv4, the common case, written by hand: `fmt` costs more than the whole decision.
            IpAddr::V4(v4) => {
                let masked = u32::from(v4) & mask32(v4_prefix);
                for (i, octet) in masked.to_be_bytes().into_iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    out.push_decimal(u64::from(octet));
                }
                if v4_prefix < 32 {
                    out.push(b'/');
                    out.push_decimal(u64::from(v4_prefix));
                }
                Ok(())
            }
            IpAddr::V6(v6) if v6_prefix >= 128 => fmt::write(&mut out, format_args!("{v6}")),
            IpAddr::V6(v6) => {
                let masked = u128::from(v6) & mask128(v6_prefix);
                let net = std::net::Ipv6Addr::from(masked);
                fmt::write(&mut out, format_args!("{net}/{v6_prefix}"))
            }
        };
        Self(Repr::Inline {
            len: out.len,
            bytes: out.bytes,
        })
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

struct Inline {
    len: u8,
    bytes: [u8; INLINE],
}

impl Default for Inline {
    fn default() -> Self {
        Self {
            len: 0,
            bytes: [0; INLINE],
        }
    }
}

impl Inline {
    /// Appends one ASCII byte (the caller stays within the buffer: IPv4 forms are short).
    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.bytes.get_mut(usize::from(self.len)) {
            *slot = byte;
            self.len += 1;
        }
    }

    /// Appends `n` in decimal.
    fn push_decimal(&mut self, n: u64) {
        for &digit in itoa::Buffer::new().format(n).as_bytes() {
            self.push(digit);
        }
    }
}

impl fmt::Write for Inline {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let start = usize::from(self.len);
        let end = start + s.len();
        let slot = self.bytes.get_mut(start..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = u8::try_from(end).map_err(|_| fmt::Error)?;
        Ok(())
    }
}

impl From<&str> for QuotaKey {
    fn from(text: &str) -> Self {
        let mut out = Inline::default();
        if fmt::Write::write_str(&mut out, text).is_ok() {
            return Self(Repr::Inline {
                len: out.len,
                bytes: out.bytes,
            });
        }
        Self(Repr::Heap(text.into()))
    }
}

impl From<String> for QuotaKey {
    fn from(text: String) -> Self {
        if text.len() <= INLINE {
            return Self::from(text.as_str());
        }
        Self(Repr::Heap(text.into_boxed_str()))
    }
}

impl fmt::Debug for QuotaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QuotaKey({} bytes)", self.as_str().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn addresses_group_by_prefix() {
        assert_eq!(
            QuotaKey::network(ip("203.0.113.7"), 32, 64).as_str(),
            "203.0.113.7"
        );
        assert_eq!(
            QuotaKey::network(ip("203.0.113.7"), 24, 64).as_str(),
            "203.0.113.0/24"
        );
        assert_eq!(
            QuotaKey::network(ip("2001:db8:1:2:aaaa::1"), 32, 64).as_str(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            QuotaKey::network(ip("2001:db8:1:2:aaaa::1"), 32, 48).as_str(),
            "2001:db8:1::/48"
        );
        assert_eq!(
            QuotaKey::network(ip("::ffff:192.0.2.7"), 32, 64).as_str(),
            "192.0.2.7"
        );
        assert_eq!(
            QuotaKey::network(ip("2001:db8::1"), 32, 128).as_str(),
            "2001:db8::1"
        );
        assert_eq!(QuotaKey::network(ip("2001:db8::1"), 0, 0).as_str(), "::/0");
        assert_eq!(QuotaKey::network(ip("0.0.0.0"), 32, 64).as_str(), "0.0.0.0");
        assert_eq!(
            QuotaKey::network(ip("255.255.255.255"), 32, 64).as_str(),
            "255.255.255.255"
        );
        assert_eq!(
            QuotaKey::network(ip("10.20.30.40"), 0, 64).as_str(),
            "0.0.0.0/0"
        );
        let longest = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe";
        assert_eq!(
            QuotaKey::network(ip(longest), 32, 127).as_str(),
            format!("{longest}/127")
        );
    }

    #[test]
    fn long_keys_go_to_the_heap_and_debug_hides_them() {
        let long = "k".repeat(200);
        assert_eq!(QuotaKey::from(long.as_str()).as_str(), long);
        assert_eq!(QuotaKey::from(long.clone()).as_str(), long);
        assert_eq!(QuotaKey::from("key-42").as_str(), "key-42");
        assert_eq!(
            format!("{:?}", QuotaKey::from("secret")),
            "QuotaKey(6 bytes)"
        );
    }
}
