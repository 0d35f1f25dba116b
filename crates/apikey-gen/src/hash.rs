//! Stored key hashes, the hasher that makes them, and non-secret key ids.

use core::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// Smallest pepper accepted by [`KeyHasher::hmac_sha256`].
pub const MIN_PEPPER_LEN: usize = 32;

/// Number of hash hex characters in a [`KeyId`].
const ID_HEX_LEN: usize = 12;

/// Turns presented keys into the 32-byte [`KeyHash`] that is stored.
///
/// Either plain SHA-256 of the key text (what GitHub and Unkey store), or HMAC-SHA256 keyed
/// with a server-side pepper, so a leaked table of hashes is useless without the pepper.
/// Configure it once; it hashes any presented string, including legacy raw tokens that have
/// no prefix or checksum.
#[derive(Clone)]
pub struct KeyHasher {
    /// `None` for plain SHA-256; otherwise the HMAC state already keyed with the pepper
    /// (zeroized on drop).
    mac: Option<Hmac<Sha256>>,
}

impl KeyHasher {
    /// Plain SHA-256 of the key text.
    #[must_use]
    pub fn sha256() -> Self {
        Self { mac: None }
    }

    /// HMAC-SHA256 of the key text keyed with `pepper` (at least 32 bytes, kept outside the
    /// database, for example derived from the server's master secret).
    pub fn hmac_sha256(pepper: &[u8]) -> Result<Self> {
        if pepper.len() < MIN_PEPPER_LEN {
            return Err(Error::PepperTooShort {
                len: pepper.len(),
                min: MIN_PEPPER_LEN,
            });
        }
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(pepper).map_err(|_| {
            Error::PepperTooShort {
                len: pepper.len(),
                min: MIN_PEPPER_LEN,
            }
        })?;
        Ok(Self { mac: Some(mac) })
    }

    /// Whether a pepper is configured.
    #[must_use]
    pub fn is_peppered(&self) -> bool {
        self.mac.is_some()
    }

    /// Hashes any presented string: a structured key (after [`KeyConfig::parse`]) or a
    /// legacy raw token.
    ///
    /// [`KeyConfig::parse`]: crate::KeyConfig::parse
    #[must_use]
    pub fn hash(&self, presented: &str) -> KeyHash {
        let bytes: [u8; 32] = match &self.mac {
            None => Sha256::digest(presented.as_bytes()).into(),
            Some(mac) => {
                let mut mac = mac.clone();
                mac.update(presented.as_bytes());
                mac.finalize().into_bytes().into()
            }
        };
        KeyHash(bytes)
    }

    /// Hashes `presented` and compares it with `stored` in constant time.
    #[must_use]
    pub fn verify(&self, presented: &str, stored: &KeyHash) -> bool {
        self.hash(presented).ct_eq(stored).into()
    }
}

impl Default for KeyHasher {
    fn default() -> Self {
        Self::sha256()
    }
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algorithm = if self.mac.is_some() {
            "HMAC-SHA256 (pepper redacted)"
        } else {
            "SHA-256"
        };
        f.debug_struct("KeyHasher")
            .field("algorithm", &algorithm)
            .finish()
    }
}

/// The stored form of a key: 32 bytes of SHA-256 or HMAC-SHA256.
///
/// Equality is constant-time. Store it as 64 lowercase hex characters
/// ([`to_hex`](Self::to_hex) / [`from_hex`](Self::from_hex)) or as raw bytes.
#[derive(Clone, Copy)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    /// Wraps 32 raw hash bytes read from storage.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw 32 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex characters, for storage.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Decodes 64 hex characters (either case) read from storage.
    pub fn from_hex(text: &str) -> Result<Self> {
        let mut bytes = [0_u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| Error::InvalidHash)?;
        Ok(Self(bytes))
    }
}

impl ConstantTimeEq for KeyHash {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for KeyHash {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for KeyHash {}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({})", self.to_hex())
    }
}

impl fmt::Display for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A short, non-secret key identifier for logs and admin listings:
/// `<prefix>_...<12 hex characters of the stored hash>`, for example `sk_live_...3f9a0c1d2e4b`.
///
/// It reveals nothing about the key beyond 48 bits of its (already stored) hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// The id of the key with stored hash `hash` and, for structured keys, prefix `prefix`
    /// (use `None` for legacy raw tokens).
    #[must_use]
    pub fn new(prefix: Option<&str>, hash: &KeyHash) -> Self {
        let hex = hash.to_hex();
        let short = &hex[..ID_HEX_LEN];
        Self(match prefix {
            Some(p) => format!("{p}_...{short}"),
            None => format!("...{short}"),
        })
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
