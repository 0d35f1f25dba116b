//! The crate's single error type.

/// Everything that can go wrong when configuring, generating, parsing or hashing keys.
///
/// No variant ever carries the key (or any part of it): a presented key is an untrusted
/// secret, and errors end up in logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configured prefix is not 1 to 16 characters of `[a-z0-9_]` starting with a
    /// letter and not ending with `_`.
    #[error("invalid key prefix: {reason}")]
    InvalidPrefix {
        /// Which rule the prefix breaks.
        reason: &'static str,
    },
    /// The configured body length gives fewer than 128 bits or is unreasonably long.
    #[error("body length {len} is outside {min}..={max} base62 characters")]
    InvalidBodyLength {
        /// The requested length.
        len: usize,
        /// The smallest allowed length (128 bits of entropy).
        min: usize,
        /// The largest allowed length.
        max: usize,
    },
    /// `generate_token` was asked for a length outside the allowed range.
    #[error("token length {len} is outside {min}..={max} characters")]
    InvalidTokenLength {
        /// The requested length.
        len: usize,
        /// The smallest allowed length (128 bits of entropy).
        min: usize,
        /// The largest allowed length.
        max: usize,
    },
    /// The presented key does not start with the expected `<prefix>_`.
    #[error("key does not start with the expected prefix `{expected}_`")]
    WrongPrefix {
        /// The prefix the key should carry (public configuration, not part of the secret).
        expected: String,
    },
    /// The presented key has the wrong length for this configuration.
    #[error("key is {actual} bytes long, expected {expected}")]
    WrongLength {
        /// The length a key of this configuration has.
        expected: usize,
        /// The length of the presented key, in bytes.
        actual: usize,
    },
    /// The part after the prefix contains a character outside `[0-9A-Za-z]`.
    #[error("key contains a character outside [0-9A-Za-z] at byte {position}")]
    InvalidCharacter {
        /// Byte offset of the first offending character (the character itself is not shown).
        position: usize,
    },
    /// The checksum does not match the prefix and body: a typo or a made-up key.
    #[error("key checksum does not match")]
    ChecksumMismatch,
    /// A stored hash is not 64 hexadecimal characters.
    #[error("stored key hash is not 64 hexadecimal characters")]
    InvalidHash,
    /// The HMAC pepper is shorter than 32 bytes.
    #[error("pepper is {len} bytes, at least {min} are required")]
    PepperTooShort {
        /// The length of the pepper given.
        len: usize,
        /// The smallest accepted length.
        min: usize,
    },
    /// The creation time cannot be encoded (before 1970 or after the year 3770).
    #[error("creation time is outside the encodable range")]
    TimestampOutOfRange,
    /// The operating system's random number generator failed.
    #[error("OS random number generator failed: {0}")]
    Rng(String),
    /// The request carries no key in any of the headers it may come in.
    #[error("missing API key: send Authorization: <key>, Authorization: Bearer <key> or X-API-Key")]
    MissingKey,
    /// The header meant to carry the key is unreadable (too long, not visible ASCII, another
    /// authorization scheme).
    #[error("invalid API key header: {reason}")]
    MalformedHeader {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The key is well formed, but the store knows no key with its hash.
    #[error("unknown API key")]
    UnknownKey,
    /// The key was revoked.
    #[error("API key revoked")]
    RevokedKey,
    /// The key's expiry has passed.
    #[error("API key expired")]
    ExpiredKey,
    /// A cache (the authenticator's, or a `LookupCache`) was given a capacity of zero.
    #[error("{setting} must be at least 1")]
    InvalidCacheCapacity {
        /// The setting at fault: `known_capacity` or `unknown_capacity`.
        setting: &'static str,
    },
    /// The key store failed; the key could not be checked.
    #[error("key store unavailable: {reason}")]
    StoreUnavailable {
        /// The store's error message (never the key).
        reason: String,
    },
}

/// Result type of this crate.
pub type Result<T> = core::result::Result<T, Error>;
