//! Sealing of recoverable secrets at rest (feature `seal`).
//!
//! A secret the application must use again, such as an HMAC signing secret it recomputes
//! signatures with, cannot be stored as a hash. It is sealed with ChaCha20-Poly1305 under a
//! subkey derived for one purpose ([`SecretKey::derive`]), with a random nonce per secret and
//! the id it is stored under as associated data, so that a ciphertext moved to another row does
//! not open.
//!
//! The sealed text is lowercase hex of the 12-byte nonce followed by the ciphertext and its
//! 16-byte tag. It is a stored format: it must not change.

use core::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::key::SecretKey;
use crate::keyring::Keyring;

const NONCE_LEN: usize = 12;

/// Seals secrets with the current key's subkey for one purpose, and opens them with it or a
/// fallback's (after a rotation).
///
/// Made by [`Keyring::sealer`], or by [`Sealer::new`] for a single key. `Debug` prints no key.
#[derive(Clone)]
pub struct Sealer {
    current: ChaCha20Poly1305,
    fallbacks: Vec<ChaCha20Poly1305>,
}

/// A secret opened by [`Sealer::open`], and whether it should be sealed again.
///
/// `Debug` prints `[redacted]` for the secret, which is zeroized on drop.
#[must_use]
pub struct Opened {
    secret: Zeroizing<Vec<u8>>,
    stale: bool,
}

impl Keyring {
    /// A [`Sealer`] for `purpose`: it seals under the current key's subkey for `purpose` and
    /// opens under any key's, so sealed secrets survive a rotation.
    ///
    /// The subkeys are [`SecretKey::derive`]'s, as [`Keyring::derive`] gives them.
    ///
    /// # Errors
    /// [`Error::InvalidPurpose`] if `purpose` is empty or longer than 255 bytes.
    pub fn sealer(&self, purpose: &str) -> Result<Sealer> {
        let ring = self.derive(purpose)?;
        Ok(Sealer {
            current: cipher(ring.current()),
            fallbacks: ring.fallbacks().iter().map(cipher).collect(),
        })
    }
}

impl Sealer {
    /// A sealer with `key`'s subkey for `purpose` and no fallback: the same as
    /// `Keyring::new(key).sealer(purpose)`.
    ///
    /// # Errors
    /// [`Error::InvalidPurpose`] if `purpose` is empty or longer than 255 bytes.
    pub fn new(key: &SecretKey, purpose: &str) -> Result<Self> {
        Ok(Self {
            current: cipher(&key.derive(purpose)?),
            fallbacks: Vec::new(),
        })
    }

    /// `secret` sealed under the current key for `id` (the id of the row or record it is
    /// stored with), as hex of a fresh random nonce and the ciphertext.
    ///
    /// The text opens only for the same `id`.
    ///
    /// # Errors
    /// [`Error::Rng`] if the operating system's random number generator fails.
    ///
    /// # Panics
    /// If `secret` is longer than ChaCha20-Poly1305 can encrypt (256 GiB).
    pub fn seal(&self, id: &str, secret: &[u8]) -> Result<String> {
        let mut nonce = [0_u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| Error::Rng(e.to_string()))?;
        let sealed = self
            .current
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: id.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 encrypts up to 256 GiB");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(hex::encode(out))
    }

    /// The secret that [`seal`](Self::seal) sealed for `id` in `sealed`, under the current key
    /// or a fallback (then [`Opened::is_stale`] says to seal it again).
    ///
    /// # Errors
    /// [`Error::SealMalformed`] if `sealed` is not hex of a nonce and a ciphertext;
    /// [`Error::SealOpen`] if no key opens it for `id` (another key, another id, or altered).
    pub fn open(&self, id: &str, sealed: &str) -> Result<Opened> {
        let bytes = hex::decode(sealed).map_err(|_| Error::SealMalformed)?;
        if bytes.len() <= NONCE_LEN {
            return Err(Error::SealMalformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::SealMalformed)?;
        let payload = || Payload {
            msg: ciphertext,
            aad: id.as_bytes(),
        };
        core::iter::once(&self.current)
            .chain(&self.fallbacks)
            .enumerate()
            .find_map(|(i, cipher)| {
                let secret = cipher.decrypt(&Nonce::from(nonce), payload()).ok()?;
                Some(Opened {
                    secret: Zeroizing::new(secret),
                    stale: i > 0,
                })
            })
            .ok_or(Error::SealOpen)
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("current", &format_args!("[redacted]"))
            .field("fallbacks", &self.fallbacks.len())
            .finish()
    }
}

impl Opened {
    /// The secret.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8] {
        &self.secret
    }

    /// Whether it was sealed under a fallback key: seal it again with [`Sealer::seal`] and
    /// store that, so it still opens once the fallback is retired.
    #[must_use]
    pub fn is_stale(&self) -> bool {
        self.stale
    }
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("secret", &format_args!("[redacted]"))
            .field("stale", &self.stale)
            .finish()
    }
}

fn cipher(subkey: &SecretKey) -> ChaCha20Poly1305 {
    // `SecretKey::derive` makes `SUBKEY_LEN` (32) bytes, ChaCha20-Poly1305's key length.
    ChaCha20Poly1305::new_from_slice(subkey.expose_secret())
        .unwrap_or_else(|_| unreachable!("a subkey is 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::generate().unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_id_and_key() {
        let master = key();
        let sealer = Sealer::new(&master, "signing-secrets").unwrap();
        let sealed = sealer.seal("key_abc", b"signing secret").unwrap();
        assert!(!sealed.contains(&hex::encode(b"signing secret")));
        let opened = sealer.open("key_abc", &sealed).unwrap();
        assert_eq!(
            (opened.expose_secret(), opened.is_stale()),
            (&b"signing secret"[..], false)
        );
        assert!(matches!(
            sealer.open("key_xyz", &sealed),
            Err(Error::SealOpen)
        ));
        let other = Sealer::new(&key(), "signing-secrets").unwrap();
        assert!(matches!(
            other.open("key_abc", &sealed),
            Err(Error::SealOpen)
        ));
        let other_purpose = Sealer::new(&master, "other-secrets").unwrap();
        assert!(matches!(
            other_purpose.open("key_abc", &sealed),
            Err(Error::SealOpen)
        ));
    }

    #[test]
    fn a_secret_sealed_under_a_fallback_opens_and_says_it_is_stale() {
        let (old, new) = (key(), key());
        let before = Keyring::new(old.clone()).sealer("signing-secrets").unwrap();
        let sealed = before.seal("key_abc", b"signing secret").unwrap();
        let after = Keyring::new(old)
            .rotate(new)
            .sealer("signing-secrets")
            .unwrap();
        let opened = after.open("key_abc", &sealed).unwrap();
        assert_eq!(
            (opened.expose_secret(), opened.is_stale()),
            (&b"signing secret"[..], true)
        );
        let resealed = after.seal("key_abc", opened.expose_secret()).unwrap();
        assert!(!after.open("key_abc", &resealed).unwrap().is_stale());
        assert!(matches!(
            before.open("key_abc", &resealed),
            Err(Error::SealOpen)
        ));
    }

    #[test]
    fn altered_or_malformed_text_is_refused() {
        let sealer = Sealer::new(&key(), "signing-secrets").unwrap();
        let sealed = sealer.seal("k", b"s").unwrap();
        let mut altered = sealed.into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(matches!(sealer.open("k", &altered), Err(Error::SealOpen)));
        assert!(matches!(sealer.open("k", "zz"), Err(Error::SealMalformed)));
        assert!(matches!(sealer.open("k", "00"), Err(Error::SealMalformed)));
        assert!(matches!(
            Sealer::new(&key(), ""),
            Err(Error::InvalidPurpose)
        ));
    }

    #[test]
    fn debug_shows_no_key_and_no_secret() {
        let ring = Keyring::new(key()).rotate(key());
        let sealer = ring.sealer("signing-secrets").unwrap();
        assert_eq!(
            format!("{sealer:?}"),
            "Sealer { current: [redacted], fallbacks: 1 }"
        );
        let sealed = sealer.seal("k", b"signing secret").unwrap();
        let opened = sealer.open("k", &sealed).unwrap();
        assert_eq!(
            format!("{opened:?}"),
            "Opened { secret: [redacted], stale: false }"
        );
    }
}
