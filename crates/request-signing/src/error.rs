//! The crate's error type.

/// A boxed error from a secret store or replay cache backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why signing or verification failed.
///
/// No variant carries a secret, a key id (a v0 key id is the client's raw API key) or the
/// expected signature, so errors are safe to log and to map to an HTTP status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A required signature header is absent.
    #[error("missing header {header}")]
    MissingHeader {
        /// The header name, e.g. `X-API-Nonce`.
        header: &'static str,
    },
    /// A signature header is present but does not follow the format.
    #[error("malformed header {header}: {reason}")]
    MalformedHeader {
        /// The header name.
        header: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The method, path or query of the request cannot be canonicalized.
    #[error("invalid request {part}: {reason}")]
    InvalidRequest {
        /// `method`, `path`, `query` or `key id`.
        part: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The HTTP layers could not read the request's body (the client went away, or sent a
    /// broken chunked body): nothing was verified.
    #[error("the request body could not be read")]
    UnreadableBody,
    /// The request is signed with scheme v0, which this verifier does not accept.
    #[error("signature scheme v0 is not accepted")]
    V0NotAccepted,
    /// An RFC 9421 signature covers less than the verifier's policy requires.
    #[error("the signature does not cover {missing}")]
    CoverageTooNarrow {
        /// What is missing, e.g. `@method` or `content-digest`.
        missing: &'static str,
    },
    /// An RFC 9421 signature covers a header field the request does not have.
    #[error("a covered header field is absent from the request")]
    ComponentAbsent,
    /// `Content-Digest` does not match the body.
    #[error("Content-Digest does not match the body")]
    DigestMismatch,
    /// An RFC 9421 signature's `expires` time has passed.
    #[error("signature expired {secs_ago} s ago")]
    PastExpiry {
        /// How long ago it expired.
        secs_ago: u64,
    },
    /// An RFC 9421 signature names an `alg` this verifier does not accept.
    #[error("signature algorithm not supported")]
    UnsupportedAlgorithm,
    /// The secret store knows no active secret for the key id.
    #[error("unknown key")]
    UnknownKey,
    /// The timestamp is older than the maximum age.
    #[error("request expired: {age_secs} s old, maximum {max_age_secs} s")]
    Expired {
        /// How old the timestamp is.
        age_secs: u64,
        /// The configured maximum age.
        max_age_secs: u64,
    },
    /// The timestamp is further in the future than the allowed clock skew.
    #[error("request timestamp {ahead_secs} s in the future, maximum {max_skew_secs} s")]
    FromFuture {
        /// How far ahead of the verifier's clock the timestamp is.
        ahead_secs: u64,
        /// The configured allowed future skew.
        max_skew_secs: u64,
    },
    /// No signature matches any active secret of the key.
    #[error("bad signature")]
    BadSignature,
    /// The signature is valid but this request was already accepted once.
    #[error("request replayed")]
    Replayed,
    /// The signature is valid, but the key already holds its whole share of the replay cache
    /// (it signed more requests in the time window than its share allows). Nothing was
    /// recorded; other keys are unaffected.
    #[error("too many signed requests for this key; retry in {retry_after_secs} s")]
    ReplayBudgetExceeded {
        /// Seconds until the key's oldest recorded request expires.
        retry_after_secs: u64,
    },
    /// The body is larger than the verifier accepts.
    #[error("body too large: {len} bytes, maximum {max} bytes")]
    BodyTooLarge {
        /// The body length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The secret store failed; the request was not verified.
    #[error("secret store unavailable")]
    SecretStoreUnavailable(#[source] BoxError),
    /// The replay cache failed, timed out or is full; the request was not verified (fail closed).
    #[error("replay store unavailable")]
    ReplayStoreUnavailable(#[source] BoxError),
    /// The operating system's random number generator failed while making a nonce.
    #[error("random number generator failed")]
    Randomness,
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;
