use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// An upstream API key. Its `Debug` prints `[redacted]` and its memory is zeroed on drop.
///
/// The only way to read it is [`UpstreamKey::expose_secret`], meant for the moment the key is put
/// into an outgoing request.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct UpstreamKey(String);

impl UpstreamKey {
    /// Wraps a key, trimming surrounding whitespace. Returns `None` when nothing is left.
    #[must_use]
    pub fn new(key: impl Into<String>) -> Option<Self> {
        let mut raw: String = key.into();
        let trimmed = raw.trim();
        let key = if trimmed.is_empty() {
            None
        } else {
            Some(Self(trimmed.to_owned()))
        };
        raw.zeroize();
        key
    }

    /// The key itself, for building the upstream request. Never log or display it.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// A stable, non-secret identifier of this key, for stats and logs.
    #[must_use]
    pub fn fingerprint(&self) -> KeyFingerprint {
        let digest = Sha256::digest(self.0.as_bytes());
        let mut short = [0u8; 6];
        short.copy_from_slice(&digest[..6]);
        KeyFingerprint(short)
    }

    /// Constant-time comparison of two keys.
    pub(crate) fn ct_eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl fmt::Debug for UpstreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UpstreamKey([redacted])")
    }
}

/// The first 48 bits of the SHA-256 of a key, shown as 12 hex digits: enough to tell the keys
/// of one pool apart in stats and logs, useless for recovering the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyFingerprint([u8; 6]);

impl fmt::Display for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyFingerprint({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_keys_are_rejected_and_keys_are_trimmed() {
        assert!(UpstreamKey::new("").is_none());
        assert!(UpstreamKey::new("  \t\n").is_none());
        let key = UpstreamKey::new("  abc123 \n").unwrap();
        assert_eq!(key.expose_secret(), "abc123");
    }

    #[test]
    fn debug_and_fingerprint_do_not_show_the_key() {
        let key = UpstreamKey::new("0123456789abcdef0123456789abcdef").unwrap();
        let shown = format!("{key:?} {:?} {}", key.fingerprint(), key.fingerprint());
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn fingerprints_tell_keys_apart_and_are_stable() {
        let a = UpstreamKey::new("key-a").unwrap();
        let b = UpstreamKey::new("key-b").unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(
            a.fingerprint(),
            UpstreamKey::new("key-a").unwrap().fingerprint()
        );
        assert_eq!(a.fingerprint().to_string().len(), 12);
        assert!(a.ct_eq(&UpstreamKey::new("key-a").unwrap()));
        assert!(!a.ct_eq(&b));
    }
}
