//! Encryption of signing secrets at rest.
//!
//! A signing key's HMAC secret must be recoverable (the server recomputes signatures), so it
//! cannot be stored as a hash. It is sealed with ChaCha20-Poly1305 under a subkey derived from
//! the server secret for this purpose only, with a random nonce per secret, and the key id as
//! associated data so that a ciphertext moved to another key's row does not open.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;

/// Why a sealed secret could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The stored text is not hex of nonce and ciphertext.
    #[error("sealed secret is malformed")]
    Malformed,
    /// Wrong key, wrong key id, or the ciphertext was altered.
    #[error("sealed secret does not open with this server secret")]
    Open,
    /// The subkey has the wrong length.
    #[error("sealing key must be 32 bytes")]
    KeyLength,
}

/// Seals and opens signing secrets: seals with the current key, opens with it or any
/// fallback (after `SECRET_KEY` was rotated).
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
    fallbacks: Vec<ChaCha20Poly1305>,
}

/// A secret opened by [`Sealer::open`].
#[derive(Debug, PartialEq, Eq)]
pub struct Opened {
    /// The secret.
    pub secret: Zeroizing<Vec<u8>>,
    /// Whether it was sealed under a fallback key, and should be sealed again.
    pub stale: bool,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

impl Sealer {
    /// A sealer with a 32-byte subkey.
    pub fn new(key: &[u8]) -> Result<Self, SealError> {
        let cipher = ChaCha20Poly1305::new_from_slice(key).map_err(|_| SealError::KeyLength)?;
        Ok(Self {
            cipher,
            fallbacks: Vec::new(),
        })
    }

    /// Also opens secrets sealed under `key` (a subkey of a fallback server secret).
    pub fn with_fallback(mut self, key: &[u8]) -> Result<Self, SealError> {
        let cipher = ChaCha20Poly1305::new_from_slice(key).map_err(|_| SealError::KeyLength)?;
        self.fallbacks.push(cipher);
        Ok(self)
    }

    /// `secret` sealed for the key `key_id`, as hex of nonce and ciphertext.
    #[must_use]
    pub fn seal(&self, key_id: &str, secret: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: key_id.as_bytes(),
                },
            )
            .expect("encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        hex::encode(out)
    }

    /// The secret sealed for `key_id` in `sealed`, under the current key or a fallback.
    pub fn open(&self, key_id: &str, sealed: &str) -> Result<Opened, SealError> {
        let bytes = hex::decode(sealed).map_err(|_| SealError::Malformed)?;
        if bytes.len() <= NONCE_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Malformed)?;
        let payload = || Payload {
            msg: ciphertext,
            aad: key_id.as_bytes(),
        };
        std::iter::once(&self.cipher)
            .chain(&self.fallbacks)
            .enumerate()
            .find_map(|(i, cipher)| {
                let secret = cipher.decrypt(&Nonce::from(nonce), payload()).ok()?;
                Some(Opened {
                    secret: Zeroizing::new(secret),
                    stale: i > 0,
                })
            })
            .ok_or(SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_key_id_and_server_secret() {
        let sealer = Sealer::new(&[7u8; 32]).unwrap();
        let sealed = sealer.seal("key_abc", b"signing secret");
        assert!(!sealed.contains(&hex::encode(b"signing secret")));
        let opened = sealer.open("key_abc", &sealed).unwrap();
        assert_eq!(
            (&opened.secret[..], opened.stale),
            (&b"signing secret"[..], false)
        );
        assert_eq!(sealer.open("key_xyz", &sealed), Err(SealError::Open));
        let other = Sealer::new(&[8u8; 32]).unwrap();
        assert_eq!(other.open("key_abc", &sealed), Err(SealError::Open));
    }

    #[test]
    fn a_secret_sealed_under_a_fallback_opens_and_says_it_is_stale() {
        let old = Sealer::new(&[7u8; 32]).unwrap();
        let sealed = old.seal("key_abc", b"signing secret");
        let rotated = Sealer::new(&[8u8; 32])
            .unwrap()
            .with_fallback(&[7u8; 32])
            .unwrap();
        let opened = rotated.open("key_abc", &sealed).unwrap();
        assert_eq!(
            (&opened.secret[..], opened.stale),
            (&b"signing secret"[..], true)
        );
        let resealed = rotated.seal("key_abc", &opened.secret);
        assert!(!rotated.open("key_abc", &resealed).unwrap().stale);
        assert_eq!(old.open("key_abc", &resealed), Err(SealError::Open));
    }

    #[test]
    fn altered_or_malformed_text_is_refused() {
        let sealer = Sealer::new(&[7u8; 32]).unwrap();
        let sealed = sealer.seal("k", b"s");
        let mut altered = sealed.into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(sealer.open("k", &altered), Err(SealError::Open));
        assert_eq!(sealer.open("k", "zz"), Err(SealError::Malformed));
        assert_eq!(sealer.open("k", "00"), Err(SealError::Malformed));
        assert_eq!(Sealer::new(&[0u8; 16]).unwrap_err(), SealError::KeyLength);
    }
}
