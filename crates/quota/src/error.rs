//! The crate's error type.

/// Everything that can go wrong in this crate. Messages never contain a quota key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A policy's parameters make no sense.
    #[error("invalid policy: {0}")]
    InvalidPolicy(&'static str),
    /// A builder or constructor was given a value it cannot use.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    /// The quota key is longer than the limiter accepts.
    #[error("quota key is {len} bytes long; the limit is {max}")]
    KeyTooLong {
        /// The key's length in bytes.
        len: usize,
        /// The longest key accepted, in bytes.
        max: usize,
    },
    /// The store could not be reached in time (the Redis backend with `FailMode::Error`, or an
    /// admin operation).
    #[error("quota store unavailable: {reason}")]
    Unavailable {
        /// What went wrong: a timeout or the connection error.
        reason: String,
    },
    /// The store answered, but not as expected (for example a key holding a value of another type).
    #[error("quota store error: {reason}")]
    Store {
        /// The store's error message.
        reason: String,
    },
}

/// The crate's result type.
pub type Result<T> = core::result::Result<T, Error>;
