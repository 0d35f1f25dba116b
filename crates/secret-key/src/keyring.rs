//! Key rotation: one current key plus fallbacks.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::error::Result;
use crate::key::SecretKey;

/// Length of a [`Keyring::sign`] tag.
pub const TAG_LEN: usize = 32;

/// Which key of a [`Keyring`] verified a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum KeyMatch {
    /// The current key: nothing to do.
    Current,
    /// Fallback number `n` (0 is the most recent): the data was signed before a rotation and
    /// should be re-signed with the current key when convenient.
    Fallback(usize),
}

/// One current key plus older fallbacks, like Django's and Flask's `SECRET_KEY_FALLBACKS`.
///
/// [`sign`](Self::sign) always uses the current key; [`verify`](Self::verify) accepts a tag
/// made by any of them. (Flask 3.1.0 signed with the oldest fallback instead, CVE-2025-47278.)
#[derive(Debug, Clone)]
pub struct Keyring {
    current: SecretKey,
    fallbacks: Vec<SecretKey>,
}

impl Keyring {
    /// A keyring with only `current`.
    #[must_use]
    pub fn new(current: SecretKey) -> Self {
        Self {
            current,
            fallbacks: Vec::new(),
        }
    }

    /// Adds fallback keys, most recent first. They verify but never sign.
    #[must_use]
    pub fn with_fallbacks(mut self, fallbacks: impl IntoIterator<Item = SecretKey>) -> Self {
        self.fallbacks.extend(fallbacks);
        self
    }

    /// Makes `new_current` the signing key; the old current key becomes the first fallback.
    #[must_use]
    pub fn rotate(mut self, new_current: SecretKey) -> Self {
        let old = core::mem::replace(&mut self.current, new_current);
        self.fallbacks.insert(0, old);
        self
    }

    /// Drops all but the `keep` most recent fallbacks (after a rotation has aged out).
    #[must_use]
    pub fn retain_fallbacks(mut self, keep: usize) -> Self {
        self.fallbacks.truncate(keep);
        self
    }

    /// The key that signs.
    #[must_use]
    pub fn current(&self) -> &SecretKey {
        &self.current
    }

    /// The keys that only verify, most recent first.
    #[must_use]
    pub fn fallbacks(&self) -> &[SecretKey] {
        &self.fallbacks
    }

    /// All keys, the current one first: the order to try them in when verifying.
    pub fn keys(&self) -> impl Iterator<Item = &SecretKey> {
        core::iter::once(&self.current).chain(self.fallbacks.iter())
    }

    /// The same ring with every key replaced by its subkey for `purpose`
    /// (see [`SecretKey::derive`]), so a purpose-specific ring rotates with the master ring.
    pub fn derive(&self, purpose: &str) -> Result<Self> {
        Ok(Self {
            current: self.current.derive(purpose)?,
            fallbacks: self
                .fallbacks
                .iter()
                .map(|k| k.derive(purpose))
                .collect::<Result<_>>()?,
        })
    }

    /// HMAC-SHA256 of `message` with the current key.
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> [u8; TAG_LEN] {
        mac(&self.current, message).finalize().into_bytes().into()
    }

    /// Checks `tag` against every key, in constant time per key, and says which one matched.
    #[must_use]
    pub fn verify(&self, message: &[u8], tag: &[u8]) -> Option<KeyMatch> {
        if mac(&self.current, message).verify_slice(tag).is_ok() {
            return Some(KeyMatch::Current);
        }
        self.fallbacks
            .iter()
            .position(|k| mac(k, message).verify_slice(tag).is_ok())
            .map(KeyMatch::Fallback)
    }
}

fn mac(key: &SecretKey, message: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; a SecretKey is never empty.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose_secret())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message);
    mac
}
