//! Producing the signature headers for an outgoing request.

use core::fmt;

use crate::canonical::{self, canonical_string_v1, check_key_id, hmac_sha256};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// `X-API-Key`: the key id (v0: the raw API key).
pub const HEADER_KEY: &str = "X-API-Key";
/// `X-API-Timestamp`: Unix seconds, decimal.
pub const HEADER_TIMESTAMP: &str = "X-API-Timestamp";
/// `X-API-Nonce`: a unique value per request (v1 only).
pub const HEADER_NONCE: &str = "X-API-Nonce";
/// `X-API-Signature`: `v1=<hex>[,v1=<hex>...]`, or bare hex for v0.
pub const HEADER_SIGNATURE: &str = "X-API-Signature";

/// The signature scheme of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Legacy: `hex(HMAC-SHA256(secret, key + timestamp))`; covers neither method, path nor body.
    V0,
    /// The default: HMAC-SHA256 over the canonical request (see the crate docs).
    V1,
    /// HTTP Message Signatures (RFC 9421): `Signature-Input` and `Signature`, `hmac-sha256`
    /// or `ed25519` (see [`rfc9421`](crate::rfc9421)).
    Rfc9421,
}

/// The headers to add to a signed request.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    key_id: String,
    timestamp: String,
    nonce: Option<String>,
    signature: String,
}

impl SignedHeaders {
    /// The `X-API-Key` value.
    #[must_use]
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The `X-API-Timestamp` value.
    #[must_use]
    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }

    /// The `X-API-Nonce` value (`None` for v0).
    #[must_use]
    pub fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }

    /// The `X-API-Signature` value.
    #[must_use]
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// The `(name, value)` pairs to add to the request, in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            Some((HEADER_KEY, self.key_id.as_str())),
            Some((HEADER_TIMESTAMP, self.timestamp.as_str())),
            self.nonce.as_deref().map(|n| (HEADER_NONCE, n)),
            Some((HEADER_SIGNATURE, self.signature.as_str())),
        ]
        .into_iter()
        .flatten()
    }
}

impl fmt::Debug for SignedHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedHeaders")
            .field("key_id", &"[redacted]")
            .field("timestamp", &self.timestamp)
            .field("nonce", &self.nonce)
            .field("signature", &self.signature)
            .finish()
    }
}

/// Signs outgoing requests with scheme v1 for one key id.
///
/// Works with any HTTP client: give it the method, the URL (absolute, or `/path?query`) and the
/// body bytes exactly as they will be sent, then add [`SignedHeaders::iter`] to the request.
#[derive(Clone)]
pub struct Signer<C = SystemClock> {
    key_id: String,
    secrets: Vec<Secret>,
    clock: C,
}

impl Signer<SystemClock> {
    /// A v1 signer for `key_id` using the system clock.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] when `key_id` is not 1 to 256 visible ASCII characters.
    pub fn new(key_id: impl Into<String>, secret: Secret) -> Result<Self> {
        let key_id = key_id.into();
        check_key_id(key_id.as_bytes()).map_err(|reason| Error::InvalidRequest {
            part: "key id",
            reason,
        })?;
        Ok(Self {
            key_id,
            secrets: vec![secret],
            clock: SystemClock,
        })
    }
}

impl<C: Clock> Signer<C> {
    /// The same signer reading time from `clock`.
    #[must_use]
    pub fn with_clock<C2: Clock>(self, clock: C2) -> Signer<C2> {
        Signer {
            key_id: self.key_id.clone(),
            secrets: self.secrets.clone(),
            clock,
        }
    }

    /// Also signs with `secret`, sending one more `v1=` value, during a secret rotation.
    #[must_use]
    pub fn with_rotation_secret(mut self, secret: Secret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// Signs a request now, with a fresh random nonce.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] when the method or URL cannot be canonicalized,
    /// [`Error::Randomness`] when the OS random number generator fails.
    pub fn sign(&self, method: &str, url: &str, body: &[u8]) -> Result<SignedHeaders> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|_| Error::Randomness)?;
        self.sign_with(
            method,
            url,
            body,
            self.clock.now_unix(),
            &hex::encode(bytes),
        )
    }

    /// Signs a request with a given timestamp and nonce (for test vectors; never reuse a nonce).
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] when the method, URL or nonce is not valid.
    pub fn sign_with(
        &self,
        method: &str,
        url: &str,
        body: &[u8],
        timestamp: u64,
        nonce: &str,
    ) -> Result<SignedHeaders> {
        let canonical = canonical_string_v1(&self.key_id, timestamp, nonce, method, url, body)?;
        let signature = self
            .secrets
            .iter()
            .map(|s| format!("v1={}", hex::encode(hmac_sha256(s, canonical.as_bytes()))))
            .collect::<Vec<_>>()
            .join(",");
        Ok(SignedHeaders {
            key_id: self.key_id.clone(),
            timestamp: timestamp.to_string(),
            nonce: Some(nonce.to_owned()),
            signature,
        })
    }
}

impl<C> fmt::Debug for Signer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &"[redacted]")
            .field("secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}

/// Signs with the legacy scheme v0: `hex(HMAC-SHA256(secret, api_key + timestamp))`.
///
/// Only for talking to servers that accept nothing else: v0 covers neither method, path nor
/// body, so anyone who sees the headers can attach them to another request within the age window.
///
/// # Errors
/// [`Error::InvalidRequest`] when `api_key` is not 1 to 256 visible ASCII characters.
pub fn sign_v0(api_key: &str, secret: &Secret, timestamp: u64) -> Result<SignedHeaders> {
    check_key_id(api_key.as_bytes()).map_err(|reason| Error::InvalidRequest {
        part: "key id",
        reason,
    })?;
    let ts = timestamp.to_string();
    let mac = hmac_sha256(secret, &canonical::v0_message(api_key, &ts));
    Ok(SignedHeaders {
        key_id: api_key.to_owned(),
        timestamp: ts,
        nonce: None,
        signature: hex::encode(mac),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;

    #[test]
    fn sign_uses_clock_and_random_nonce() {
        let signer = Signer::new("svc", Secret::from("s"))
            .unwrap()
            .with_clock(FakeClock::at_unix_secs(42));
        let a = signer.sign("GET", "/x", b"").unwrap();
        let b = signer.sign("GET", "/x", b"").unwrap();
        assert_eq!(a.timestamp(), "42");
        assert_ne!(a.nonce(), b.nonce());
        assert_eq!(a.nonce().unwrap().len(), 32);
        assert_eq!(a.iter().count(), 4);
    }

    #[test]
    fn rotation_sends_one_value_per_secret() {
        let signer = Signer::new("svc", Secret::from("old"))
            .unwrap()
            .with_rotation_secret(Secret::from("new"));
        let h = signer
            .sign_with("GET", "/", b"", 1, "0123456789abcdef")
            .unwrap();
        let parts: Vec<_> = h.signature().split(',').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.starts_with("v1=") && p.len() == 67));
        assert_ne!(parts[0], parts[1]);
    }

    #[test]
    fn debug_hides_key_and_secret() {
        let signer = Signer::new("raw-api-key-123", Secret::from("topsecret")).unwrap();
        let h = sign_v0("raw-api-key-123", &Secret::from("topsecret"), 5).unwrap();
        for shown in [format!("{signer:?}"), format!("{h:?}")] {
            assert!(!shown.contains("raw-api-key-123"), "{shown}");
            assert!(!shown.contains("topsecret"), "{shown}");
        }
    }

    #[test]
    fn rejects_bad_inputs() {
        assert!(Signer::new("a b", Secret::from("s")).is_err());
        let signer = Signer::new("svc", Secret::from("s")).unwrap();
        assert!(signer.sign("G T", "/", b"").is_err());
        assert!(signer.sign("GET", "relative", b"").is_err());
        assert!(signer.sign_with("GET", "/", b"", 1, "short").is_err());
    }
}
