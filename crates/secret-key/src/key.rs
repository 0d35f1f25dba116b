//! The secret key type.

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::derive::hkdf_sha256;
use crate::error::{Error, Result};
use crate::strength::{self, Use};

/// Length of a key made by [`SecretKey::generate`]: 64 bytes (512 bits).
pub const DEFAULT_SECRET_LEN: usize = 64;
/// Length of a subkey made by [`SecretKey::derive`]: 32 bytes (256 bits).
pub const SUBKEY_LEN: usize = 32;

/// A master secret (session signing key, JWT secret, …): at least 32 bytes.
///
/// `Debug` prints `[redacted]`, the bytes are zeroized on drop, equality is constant-time.
/// Every constructor except [`generate`](Self::generate) and [`derive`](Self::derive) refuses
/// weak material (see [`from_text`](Self::from_text)).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey(Vec<u8>);

impl SecretKey {
    /// 64 fresh bytes from the operating system's CSPRNG.
    pub fn generate() -> Result<Self> {
        Self::generate_len(DEFAULT_SECRET_LEN)
    }

    /// `len` fresh bytes (32..=8192) from the operating system's CSPRNG.
    pub fn generate_len(len: usize) -> Result<Self> {
        strength::check_length(len)?;
        let mut bytes = vec![0_u8; len];
        getrandom::fill(&mut bytes).map_err(|e| Error::Rng(e.to_string()))?;
        Ok(Self(bytes))
    }

    /// Raw key material, refused if shorter than 32 bytes, a known placeholder, a repeated or
    /// regular pattern, or of low entropy.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        strength::check_bytes(bytes, Use::Current)?;
        Ok(Self(bytes.to_vec()))
    }

    /// A secret given as text (an environment variable, a config value) and used as its
    /// UTF-8 bytes, as Flask and Django use `SECRET_KEY`.
    ///
    /// Refused if it is (or contains) a known placeholder such as `changeme` or
    /// `your_jwt_secret_key` (case, `-`, `_` and spaces ignored), is shorter than 32 bytes,
    /// or is a repeated/regular pattern or of low entropy. Text that is valid hex or base64
    /// is also judged by its decoded bytes.
    pub fn from_text(text: &str) -> Result<Self> {
        strength::check_text(text, Use::Current)?;
        Ok(Self(text.as_bytes().to_vec()))
    }

    /// Decodes hex text (either case) into key material, then checks it like
    /// [`from_bytes`](Self::from_bytes).
    pub fn from_hex(text: &str) -> Result<Self> {
        Self::from_bytes(&hex_bytes(text)?)
    }

    /// Decodes base64 (standard or URL-safe alphabet, padding optional) into key material,
    /// then checks it like [`from_bytes`](Self::from_bytes).
    pub fn from_base64(text: &str) -> Result<Self> {
        Self::from_bytes(&base64_bytes(text)?)
    }

    /// A retired key (a fallback) given as `text` in `format`: checked as a key in use is, but
    /// for placeholder phrases, so that a key refused as one can still be rotated away from.
    pub(crate) fn retired(text: &str, format: crate::SecretFormat) -> Result<Self> {
        let bytes = match format {
            crate::SecretFormat::Text => {
                strength::check_text(text, Use::Retired)?;
                return Ok(Self(text.as_bytes().to_vec()));
            }
            crate::SecretFormat::Hex => hex_bytes(text)?,
            crate::SecretFormat::Base64 => base64_bytes(text)?,
        };
        strength::check_bytes(&bytes, Use::Retired)?;
        Ok(Self(bytes.to_vec()))
    }

    /// Lowercase hex of the key material (zeroized when dropped).
    #[must_use]
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(&self.0))
    }

    /// Standard padded base64 of the key material (zeroized when dropped).
    #[must_use]
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(&self.0))
    }

    /// The key material, to key a MAC or cipher.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Length of the key material in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always `false`: a secret key has at least 32 bytes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// An independent 32-byte subkey for one purpose (`"jwt-signing"`, `"apikey-pepper"`,
    /// `"signing-secret-encryption"`, …): HKDF-SHA256 with this key as input keying material,
    /// no salt, and the purpose label as `info`.
    ///
    /// Different labels give unrelated keys, and no subkey reveals the master or another
    /// subkey, so one master secret never serves two purposes directly.
    pub fn derive(&self, purpose: &str) -> Result<Self> {
        if purpose.is_empty() || purpose.len() > 255 {
            return Err(Error::InvalidPurpose);
        }
        let mut out = vec![0_u8; SUBKEY_LEN];
        hkdf_sha256(&[], &self.0, purpose.as_bytes(), &mut out)?;
        Ok(Self(out))
    }
}

/// The bytes hex `text` (either case) spells.
fn hex_bytes(text: &str) -> Result<Zeroizing<Vec<u8>>> {
    hex::decode(text)
        .map(Zeroizing::new)
        .map_err(|_| Error::InvalidEncoding { encoding: "hex" })
}

/// The bytes base64 `text` (standard or URL-safe alphabet, padding optional) spells.
fn base64_bytes(text: &str) -> Result<Zeroizing<Vec<u8>>> {
    let unpadded = text.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(unpadded)
        .or_else(|_| URL_SAFE_NO_PAD.decode(unpadded))
        .map(Zeroizing::new)
        .map_err(|_| Error::InvalidEncoding { encoding: "base64" })
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey([redacted; {} bytes])", self.0.len())
    }
}

impl ConstantTimeEq for SecretKey {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for SecretKey {}
