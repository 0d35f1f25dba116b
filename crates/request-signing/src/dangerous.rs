//! Verification that skips the timestamp window and the replay cache.
//!
//! **For tests of old captured requests only.** A request that passes here may be hours old
//! and replayed; never authorize anything with [`SignatureOnly`].

use core::fmt;

use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::signer::Scheme;
use crate::verifier::{Request, SignatureHeaders, find_match, parse_headers};

/// A signature that matched, with no timestamp or replay check. Not a [`Verified`](crate::Verified).
#[derive(Clone, PartialEq, Eq)]
#[must_use]
pub struct SignatureOnly {
    key_id: String,
    scheme: Scheme,
    timestamp: u64,
    secret_index: usize,
}

impl SignatureOnly {
    /// The `X-API-Key` value.
    #[must_use]
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The scheme the request was signed with.
    #[must_use]
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The signed timestamp, Unix seconds (not checked).
    #[must_use]
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// Index in `secrets` of the secret that matched.
    #[must_use]
    pub fn secret_index(&self) -> usize {
        self.secret_index
    }
}

impl fmt::Debug for SignatureOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureOnly")
            .field("key_id", &"[redacted]")
            .field("scheme", &self.scheme)
            .field("timestamp", &self.timestamp)
            .field("secret_index", &self.secret_index)
            .finish()
    }
}

/// Checks only the headers' format and the signature against `secrets` (v0 accepted too).
///
/// # Errors
/// [`Error::MissingHeader`], [`Error::MalformedHeader`], [`Error::InvalidRequest`],
/// [`Error::UnknownKey`] when `secrets` is empty, [`Error::BadSignature`].
pub fn verify_ignoring_timestamp(
    headers: &SignatureHeaders<'_>,
    request: &Request<'_>,
    secrets: &[Secret],
) -> Result<SignatureOnly> {
    let parsed = parse_headers(headers, true)?;
    let message = parsed.message(request)?;
    if secrets.is_empty() {
        return Err(Error::UnknownKey);
    }
    let secret_index =
        find_match(secrets, &message, parsed.signatures()).ok_or(Error::BadSignature)?;
    Ok(SignatureOnly {
        key_id: parsed.key_id.to_owned(),
        scheme: parsed.scheme(),
        timestamp: parsed.timestamp,
        secret_index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Signer;

    #[test]
    fn accepts_an_old_capture_and_still_checks_the_signature() {
        let secret = Secret::from("s3cret");
        let signer = Signer::new("svc", secret.clone()).unwrap();
        let h = signer
            .sign_with("GET", "/old", b"", 1, "0123456789abcdef")
            .unwrap();
        let headers = SignatureHeaders::from_signed(&h);
        let ok = verify_ignoring_timestamp(
            &headers,
            &Request::new("GET", "/old", b""),
            core::slice::from_ref(&secret),
        )
        .unwrap();
        assert_eq!(ok.timestamp(), 1);
        assert!(matches!(
            verify_ignoring_timestamp(&headers, &Request::new("GET", "/new", b""), &[secret]),
            Err(Error::BadSignature)
        ));
    }
}
