//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong creating, checking, loading or deriving a secret, or opening a
/// sealed one.
///
/// No variant carries secret material: weak-secret errors say *why* the secret is refused,
/// never what it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The secret is shorter than the minimum.
    #[error("secret is {len} bytes, at least {min} are required")]
    TooShort {
        /// Length of the refused secret, in bytes.
        len: usize,
        /// Smallest accepted length.
        min: usize,
    },
    /// The secret is longer than the maximum.
    #[error("secret is {len} bytes, at most {max} are accepted")]
    TooLong {
        /// Length of the refused secret, in bytes.
        len: usize,
        /// Largest accepted length.
        max: usize,
    },
    /// The secret is, or contains, a well-known placeholder such as `changeme`.
    ///
    /// Neither the message nor `Debug` names the placeholder: within the refused value it is a
    /// piece of what the operator meant as a secret, and errors go to logs.
    #[error("secret is, or contains, a known placeholder or default value, not a secret")]
    Placeholder,
    /// The secret's symbols are too unevenly distributed to be random.
    #[error(
        "secret has low entropy: {bits_per_symbol:.2} bits per symbol, at least {min:.1} expected from a random secret"
    )]
    LowEntropy {
        /// Measured Shannon entropy per byte of the judged material.
        bits_per_symbol: f64,
        /// The threshold.
        min: f64,
    },
    /// The secret is a repetition or a regular progression (`aaaa…`, `abab…`, `abcd…`).
    #[error("secret is a predictable pattern ({pattern})")]
    Pattern {
        /// What kind of pattern.
        pattern: &'static str,
    },
    /// The text is not valid in the expected encoding.
    #[error("secret is not valid {encoding}")]
    InvalidEncoding {
        /// `hex`, `base64` or `UTF-8`.
        encoding: &'static str,
    },
    /// An item of a list of keys holds a line break or another control character: a list
    /// written one key per line, which would be read as one key.
    #[error(
        "holds a line break or another control character: list the keys on one line, separated by commas"
    )]
    ControlCharacter,
    /// An environment variable or file holds an empty value.
    #[error("secret is empty")]
    Empty,
    /// The key file can be read by its group or by others.
    #[error(
        "key file {path} has mode {mode:o}: it must not be readable or writable by group or others (chmod 600)"
    )]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file is not a regular file.
    #[error("key file {path} is not a regular file")]
    NotAFile {
        /// The path given.
        path: PathBuf,
    },
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// No secret was found and the mode does not allow generating one.
    #[error("no secret configured: {hint}")]
    Missing {
        /// What to set, for example `set the SECRET_KEY environment variable or create /etc/app/secret`.
        hint: String,
    },
    /// A secret from a named source was refused.
    #[error("secret from {origin} refused: {cause}")]
    Refused {
        /// Where the secret came from, for example `env SECRET_KEY`.
        origin: String,
        /// Why it was refused.
        #[source]
        cause: Box<Error>,
    },
    /// The purpose label for subkey derivation is empty or too long.
    #[error("purpose label must be 1 to 255 bytes")]
    InvalidPurpose,
    /// HKDF cannot produce the requested output length.
    #[error("HKDF-SHA256 cannot produce {len} bytes (at most 8160)")]
    DerivedLength {
        /// Requested length.
        len: usize,
    },
    /// The operating system's random number generator failed.
    #[error("OS random number generator failed: {0}")]
    Rng(String),
    /// A sealed secret is not hex of a nonce and a ciphertext (feature `seal`).
    #[error("sealed secret is malformed")]
    SealMalformed,
    /// A sealed secret opens with no key of the sealer: sealed under a key it does not hold,
    /// sealed for another id, or altered (feature `seal`).
    #[error("sealed secret does not open with these keys")]
    SealOpen,
}

/// Result type of this crate.
pub type Result<T> = core::result::Result<T, Error>;
