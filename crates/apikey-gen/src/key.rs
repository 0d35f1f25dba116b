//! Key format, generation and parsing.

use core::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::base62;
use crate::error::{Error, Result};
use crate::hash::{KeyHash, KeyHasher, KeyId};

/// Smallest body length: 22 base62 characters carry 130.99 bits, the first length >= 128 bits.
pub const MIN_BODY_LEN: usize = 22;
/// Default body length: 32 base62 characters (190 bits), as long as the original keys.
pub const DEFAULT_BODY_LEN: usize = 32;
/// Largest body length accepted.
pub const MAX_BODY_LEN: usize = 128;
/// Longest prefix accepted.
pub const MAX_PREFIX_LEN: usize = 16;
/// Width of the optional creation-time part (seconds since 1970 in base62).
pub const TIMESTAMP_LEN: usize = 6;
/// Width of the CRC32 checksum in base62.
pub const CHECKSUM_LEN: usize = 6;

/// Largest encodable creation time: `62^6 - 1` seconds after 1970 (about the year 3770).
const MAX_TIMESTAMP: u64 = 62_u64.pow(6) - 1;

/// An API key in full: a secret shown to its owner once and never stored.
///
/// `Debug` and `Display` print `[redacted]`; the memory is zeroized on drop; equality is
/// constant-time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ApiKey(String);

impl ApiKey {
    /// The full key text, to show the owner once (or send in a request).
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl ConstantTimeEq for ApiKey {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.as_bytes().ct_eq(other.0.as_bytes())
    }
}

impl PartialEq for ApiKey {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for ApiKey {}

/// A freshly generated key: the secret to hand out once, and what to store.
#[derive(Debug)]
pub struct GeneratedKey {
    key: ApiKey,
    hash: KeyHash,
    id: KeyId,
}

impl GeneratedKey {
    /// The full key: show it to the owner once, then drop it.
    #[must_use]
    pub fn key(&self) -> &ApiKey {
        &self.key
    }

    /// The hash to store (the only form of the key that is kept).
    #[must_use]
    pub fn hash(&self) -> &KeyHash {
        &self.hash
    }

    /// A short, non-secret identifier for logs and admin listings.
    #[must_use]
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// Splits into the key, its hash and its id.
    #[must_use]
    pub fn into_parts(self) -> (ApiKey, KeyHash, KeyId) {
        (self.key, self.hash, self.id)
    }
}

/// Builds a [`KeyConfig`]: setters never fail, [`build`](Self::build) checks the whole.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct KeyConfigBuilder {
    prefix: String,
    body_len: usize,
    timestamp: bool,
    hasher: KeyHasher,
}

impl KeyConfigBuilder {
    /// The number of random base62 characters (22..=128; default 32).
    pub const fn body_len(mut self, len: usize) -> Self {
        self.body_len = len;
        self
    }

    /// Whether keys carry the 6-character creation time after the prefix (default: no).
    pub const fn timestamp(mut self, on: bool) -> Self {
        self.timestamp = on;
        self
    }

    /// The hasher for stored hashes (default: plain SHA-256).
    pub fn hasher(mut self, hasher: KeyHasher) -> Self {
        self.hasher = hasher;
        self
    }

    /// The configuration.
    ///
    /// # Errors
    /// [`Error::InvalidPrefix`], [`Error::InvalidBodyLength`].
    pub fn build(self) -> Result<KeyConfig> {
        validate_prefix(&self.prefix)?;
        if !(MIN_BODY_LEN..=MAX_BODY_LEN).contains(&self.body_len) {
            return Err(Error::InvalidBodyLength {
                len: self.body_len,
                min: MIN_BODY_LEN,
                max: MAX_BODY_LEN,
            });
        }
        Ok(KeyConfig {
            prefix: self.prefix,
            body_len: self.body_len,
            timestamp: self.timestamp,
            hasher: self.hasher,
        })
    }
}

/// The format of one family of keys: `<prefix>_[<time>]<body><checksum>`, and how they are hashed.
///
/// Build it once at start-up and use it to [`generate`](Self::generate),
/// [`parse`](Self::parse) and [`hash`](Self::hash) keys.
#[derive(Debug, Clone)]
pub struct KeyConfig {
    prefix: String,
    body_len: usize,
    timestamp: bool,
    hasher: KeyHasher,
}

impl KeyConfig {
    /// A configuration for keys starting with `<prefix>_`: 32-character body, no creation
    /// time, plain SHA-256 hashing. The same as `KeyConfig::builder(prefix).build()`.
    ///
    /// The prefix is 1 to 16 characters of `[a-z0-9_]`, starts with a letter and does not
    /// end with `_` (for example `sk_live`).
    ///
    /// # Errors
    /// [`Error::InvalidPrefix`].
    pub fn new(prefix: &str) -> Result<Self> {
        Self::builder(prefix).build()
    }

    /// A builder for keys starting with `<prefix>_`, for the settings that must be checked (the
    /// body length); its setters never fail and [`build`](KeyConfigBuilder::build) checks them.
    pub fn builder(prefix: &str) -> KeyConfigBuilder {
        KeyConfigBuilder {
            prefix: prefix.to_owned(),
            body_len: DEFAULT_BODY_LEN,
            timestamp: false,
            hasher: KeyHasher::sha256(),
        }
    }

    /// Adds (or removes) the 6-character creation time (whole seconds) after the prefix, so
    /// keys of one configuration sort by creation time.
    #[must_use]
    pub fn with_timestamp(mut self, on: bool) -> Self {
        self.timestamp = on;
        self
    }

    /// Uses `hasher` (for example a peppered HMAC) for [`hash`](Self::hash) and generation.
    #[must_use]
    pub fn with_hasher(mut self, hasher: KeyHasher) -> Self {
        self.hasher = hasher;
        self
    }

    /// The prefix, without the trailing `_`.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether keys carry the creation-time part.
    #[must_use]
    pub fn has_timestamp(&self) -> bool {
        self.timestamp
    }

    /// The number of random base62 characters in a key.
    #[must_use]
    pub fn body_len(&self) -> usize {
        self.body_len
    }

    /// The hasher used for stored hashes.
    #[must_use]
    pub fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    /// The length in bytes of every key of this configuration.
    #[must_use]
    pub fn key_len(&self) -> usize {
        self.prefix.len() + 1 + self.timestamp_len() + self.body_len + CHECKSUM_LEN
    }

    const fn timestamp_len(&self) -> usize {
        if self.timestamp { TIMESTAMP_LEN } else { 0 }
    }

    /// A regular expression (POSIX ERE / Rust `regex` / PCRE syntax) matching exactly the keys
    /// of this configuration, for secret scanners.
    #[must_use]
    pub fn regex(&self) -> String {
        format!(
            r"\b{}_[0-9A-Za-z]{{{}}}\b",
            self.prefix,
            self.timestamp_len() + self.body_len + CHECKSUM_LEN
        )
    }

    /// Generates a key now. See [`generate_at`](Self::generate_at).
    pub fn generate(&self) -> Result<GeneratedKey> {
        self.generate_at(SystemTime::now())
    }

    /// Generates a key whose creation-time part (if enabled) is `created`, truncated to the
    /// second. The body comes from the OS CSPRNG.
    pub fn generate_at(&self, created: SystemTime) -> Result<GeneratedKey> {
        let mut text = String::with_capacity(self.key_len());
        text.push_str(&self.prefix);
        text.push('_');
        if self.timestamp {
            let secs = created
                .duration_since(UNIX_EPOCH)
                .map_err(|_| Error::TimestampOutOfRange)?
                .as_secs();
            if secs > MAX_TIMESTAMP {
                return Err(Error::TimestampOutOfRange);
            }
            base62::encode_fixed(secs, TIMESTAMP_LEN, &mut text);
        }
        base62::push_random(self.body_len, &mut text)?;
        let crc = crc32fast::hash(text.as_bytes());
        base62::encode_fixed(u64::from(crc), CHECKSUM_LEN, &mut text);
        debug_assert_eq!(text.len(), self.key_len());
        let key = ApiKey(text);
        let hash = self.hasher.hash(key.expose_secret());
        let id = KeyId::new(Some(&self.prefix), &hash);
        Ok(GeneratedKey { key, hash, id })
    }

    /// Checks a presented key's prefix, length, characters and checksum, in that order,
    /// without any storage lookup. Errors never contain the key.
    pub fn parse<'k>(&self, presented: &'k str) -> Result<ParsedKey<'k>> {
        let bytes = presented.as_bytes();
        let p = self.prefix.len();
        if bytes.len() <= p || &bytes[..p] != self.prefix.as_bytes() || bytes[p] != b'_' {
            return Err(Error::WrongPrefix {
                expected: self.prefix.clone(),
            });
        }
        if bytes.len() != self.key_len() {
            return Err(Error::WrongLength {
                expected: self.key_len(),
                actual: bytes.len(),
            });
        }
        let rest = p + 1;
        if let Some(i) = bytes[rest..]
            .iter()
            .position(|&b| base62::digit_value(b).is_none())
        {
            return Err(Error::InvalidCharacter { position: rest + i });
        }
        let check_at = bytes.len() - CHECKSUM_LEN;
        let expected = u64::from(crc32fast::hash(&bytes[..check_at]));
        if base62::decode(&bytes[check_at..]) != expected {
            return Err(Error::ChecksumMismatch);
        }
        let created = self.timestamp.then(|| {
            UNIX_EPOCH + Duration::from_secs(base62::decode(&bytes[rest..rest + TIMESTAMP_LEN]))
        });
        Ok(ParsedKey {
            text: presented,
            prefix_len: p,
            created,
        })
    }

    /// Hashes a presented key with this configuration's hasher (same as
    /// [`KeyHasher::hash`]).
    #[must_use]
    pub fn hash(&self, presented: &str) -> KeyHash {
        self.hasher.hash(presented)
    }
}

fn validate_prefix(prefix: &str) -> Result<()> {
    let reason = if prefix.is_empty() {
        "empty"
    } else if prefix.len() > MAX_PREFIX_LEN {
        "longer than 16 characters"
    } else if !prefix
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        "only lowercase letters, digits and `_` are allowed"
    } else if !prefix.as_bytes()[0].is_ascii_lowercase() {
        "must start with a lowercase letter"
    } else if prefix.ends_with('_') {
        "must not end with `_`"
    } else {
        return Ok(());
    };
    Err(Error::InvalidPrefix { reason })
}

/// A presented key that passed [`KeyConfig::parse`]: right prefix, length, alphabet and
/// checksum. It borrows the caller's string; `Debug` does not show the key.
#[derive(Clone, Copy)]
pub struct ParsedKey<'k> {
    text: &'k str,
    prefix_len: usize,
    created: Option<SystemTime>,
}

impl<'k> ParsedKey<'k> {
    /// The prefix (without the `_`).
    #[must_use]
    pub fn prefix(&self) -> &'k str {
        &self.text[..self.prefix_len]
    }

    /// The creation time carried in the key, if the configuration has one.
    ///
    /// It is only as trustworthy as the key: anyone can write a well-formed key with any
    /// time. Use the time stored next to the hash for decisions.
    #[must_use]
    pub fn created(&self) -> Option<SystemTime> {
        self.created
    }

    /// The whole key text, for hashing.
    #[must_use]
    pub fn expose_secret(&self) -> &'k str {
        self.text
    }
}

impl fmt::Debug for ParsedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedKey")
            .field("prefix", &self.prefix())
            .field("created", &self.created)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Smallest token length for [`generate_token`] (128 bits).
pub const MIN_TOKEN_LEN: usize = MIN_BODY_LEN;
/// Largest token length for [`generate_token`].
pub const MAX_TOKEN_LEN: usize = 1024;

/// A plain token of `len` random letters and digits (no prefix, no checksum), like the
/// original's 32-character keys. `len` is 22..=1024 so a token has at least 128 bits.
pub fn generate_token(len: usize) -> Result<ApiKey> {
    if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&len) {
        return Err(Error::InvalidTokenLength {
            len,
            min: MIN_TOKEN_LEN,
            max: MAX_TOKEN_LEN,
        });
    }
    let mut text = String::with_capacity(len);
    base62::push_random(len, &mut text)?;
    Ok(ApiKey(text))
}

/// Generates a key for `config` (shorthand for [`KeyConfig::generate`]).
pub fn generate(config: &KeyConfig) -> Result<GeneratedKey> {
    config.generate()
}

/// Parses a presented key against `config` (shorthand for [`KeyConfig::parse`]).
pub fn parse<'k>(config: &KeyConfig, presented: &'k str) -> Result<ParsedKey<'k>> {
    config.parse(presented)
}
