use std::time::Duration;

/// Everything that can go wrong in this crate.
///
/// No variant carries a key, a request URL (it holds the key as `appid`) or the text of an
/// upstream or transport error (which may quote that URL): every message is built from this
/// crate's own words and numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The pool was given no usable key (none set, or all blank).
    #[error("no upstream API key is configured")]
    NoKeysConfigured,
    /// Every key is cooling down (rejected or throttled); the earliest comes back after `retry_after`.
    #[error(
        "no upstream API key is available: {rejected} rejected, {throttled} throttled; retry in {}s",
        retry_after_secs(*retry_after)
    )]
    AllKeysUnavailable {
        /// How long until the first key comes back into rotation.
        retry_after: Duration,
        /// How many keys are out of rotation because the upstream rejected them (401 or 403).
        rejected: usize,
        /// How many keys are cooling down because the upstream throttled them (429).
        throttled: usize,
    },
    /// A configuration value is unusable.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    /// The city name was refused before any request was made.
    #[error("invalid city: {0}")]
    InvalidCity(&'static str),
    /// The coordinates were refused before any request was made.
    #[error("invalid coordinates: {0}")]
    InvalidCoordinates(&'static str),
    /// The upstream did not answer in time.
    #[error("the upstream did not answer within {}ms", after.as_millis())]
    Timeout {
        /// The configured limit that was exceeded.
        after: Duration,
    },
    /// The upstream could not be reached, or the exchange failed before a complete answer arrived.
    #[error("could not reach the upstream")]
    Connect,
    /// The upstream knows no such place (404).
    #[error("the upstream knows no such place")]
    PlaceNotFound,
    /// The upstream answered with a status this client does not accept.
    #[error("the upstream answered with status {status}")]
    UpstreamStatus {
        /// The HTTP status code.
        status: u16,
    },
    /// The upstream body was larger than the configured limit.
    #[error("the upstream body exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The upstream body was not the JSON this client expects.
    #[error("malformed upstream response: {reason}")]
    MalformedResponse {
        /// What was wrong, without quoting the body.
        reason: String,
    },
}

impl Error {
    /// For [`Error::AllKeysUnavailable`]: the `Retry-After` value in whole seconds (rounded up).
    #[must_use]
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::AllKeysUnavailable { retry_after, .. } => Some(retry_after_secs(*retry_after)),
            _ => None,
        }
    }
}

fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// `core::result::Result` with this crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;
