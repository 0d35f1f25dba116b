//! Signing a request with RFC 9421.

use core::fmt;

use sfv::{BareItem, DictSerializer, KeyRef};

use crate::canonical::{check_key_id, hmac_sha256};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::rfc9421::base::{Message, signature_base};
use crate::rfc9421::digest::{DigestAlgorithm, content_digest};
use crate::rfc9421::parse::SignatureParams;
use crate::rfc9421::{
    Algorithm, HEADER_CONTENT_DIGEST, HEADER_SIGNATURE, HEADER_SIGNATURE_INPUT, supported_component,
};
use crate::secret::Secret;

/// The key a [`MessageSigner`] signs with. `Debug` shows only the algorithm; both kinds are
/// zeroized on drop.
#[derive(Clone)]
#[non_exhaustive]
pub enum SigningKey {
    /// `hmac-sha256` with a secret the verifier also holds.
    HmacSha256(Secret),
    /// `ed25519` with a private key; the verifier holds only its public key.
    #[cfg(feature = "ed25519")]
    Ed25519(ed25519_dalek::SigningKey),
}

impl SigningKey {
    /// An `hmac-sha256` key.
    #[must_use]
    pub fn hmac_sha256(secret: Secret) -> Self {
        Self::HmacSha256(secret)
    }

    /// An `ed25519` key from its 32-byte seed (the private key of RFC 8032).
    #[cfg(feature = "ed25519")]
    #[must_use]
    pub fn ed25519_from_seed(seed: &[u8; 32]) -> Self {
        Self::Ed25519(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The public key of an `ed25519` key, which the verifier's store returns; `None` for HMAC.
    #[cfg(feature = "ed25519")]
    #[must_use]
    pub fn ed25519_public_key(&self) -> Option<[u8; 32]> {
        match self {
            Self::Ed25519(key) => Some(key.verifying_key().to_bytes()),
            Self::HmacSha256(_) => None,
        }
    }

    /// The algorithm.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::HmacSha256(_) => Algorithm::HmacSha256,
            #[cfg(feature = "ed25519")]
            Self::Ed25519(_) => Algorithm::Ed25519,
        }
    }

    fn sign(&self, base: &[u8]) -> Vec<u8> {
        match self {
            Self::HmacSha256(secret) => hmac_sha256(secret, base).to_vec(),
            #[cfg(feature = "ed25519")]
            Self::Ed25519(key) => {
                use ed25519_dalek::Signer as _;
                key.sign(base).to_bytes().to_vec()
            }
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({}, [redacted])", self.algorithm().name())
    }
}

/// The header fields a [`MessageSigner`] adds to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedFields {
    content_digest: Option<String>,
    signature_input: String,
    signature: String,
}

impl SignedFields {
    /// `Content-Digest`, when the signer computed it for the body.
    #[must_use]
    pub fn content_digest(&self) -> Option<&str> {
        self.content_digest.as_deref()
    }

    /// `Signature-Input`.
    #[must_use]
    pub fn signature_input(&self) -> &str {
        &self.signature_input
    }

    /// `Signature`.
    #[must_use]
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// The `(name, value)` pairs to add to the request.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            self.content_digest
                .as_deref()
                .map(|v| (HEADER_CONTENT_DIGEST, v)),
            Some((HEADER_SIGNATURE_INPUT, self.signature_input.as_str())),
            Some((HEADER_SIGNATURE, self.signature.as_str())),
        ]
        .into_iter()
        .flatten()
    }
}

/// Signs requests with RFC 9421 for one key id.
///
/// By default it covers `@method`, `@authority`, `@path` and `@query`, plus `content-digest`
/// for a request with a body (computing `Content-Digest` with SHA-256 when the request has
/// none), under the label `sig1`, with `created`, a random `nonce`, `keyid` and `alg`.
#[derive(Clone)]
pub struct MessageSigner<C = SystemClock> {
    key_id: String,
    key: SigningKey,
    components: Vec<String>,
    label: String,
    nonce: bool,
    include_alg: bool,
    expires_in_secs: Option<u64>,
    digest: DigestAlgorithm,
    clock: C,
}

impl<C> fmt::Debug for MessageSigner<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageSigner")
            .field("key_id", &"[redacted]")
            .field("key", &self.key)
            .field("components", &self.components)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl MessageSigner<SystemClock> {
    /// A builder for `key_id` signing with `key`.
    pub fn builder(key_id: impl Into<String>, key: SigningKey) -> MessageSignerBuilder {
        MessageSignerBuilder {
            signer: MessageSigner {
                key_id: key_id.into(),
                key,
                components: ["@method", "@authority", "@path", "@query"]
                    .map(String::from)
                    .to_vec(),
                label: "sig1".to_owned(),
                nonce: true,
                include_alg: true,
                expires_in_secs: None,
                digest: DigestAlgorithm::Sha256,
                clock: SystemClock,
            },
        }
    }
}

/// Builds a [`MessageSigner`]; see its docs for the defaults.
#[must_use = "a builder does nothing until `build` is called"]
#[derive(Debug)]
pub struct MessageSignerBuilder<C = SystemClock> {
    signer: MessageSigner<C>,
}

impl<C: Clock> MessageSignerBuilder<C> {
    /// The components to cover, in order (`content-digest` is added for a body).
    pub fn components<'s>(mut self, components: impl IntoIterator<Item = &'s str>) -> Self {
        self.signer.components = components.into_iter().map(String::from).collect();
        self
    }

    /// The label (default `sig1`).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.signer.label = label.into();
        self
    }

    /// Whether to send a random `nonce` (default true; a verifier may require one).
    pub fn nonce(mut self, nonce: bool) -> Self {
        self.signer.nonce = nonce;
        self
    }

    /// Whether to send `alg` (default true).
    pub fn include_alg(mut self, include: bool) -> Self {
        self.signer.include_alg = include;
        self
    }

    /// Sends `expires`, `secs` after `created`.
    pub fn expires_in_secs(mut self, secs: u64) -> Self {
        self.signer.expires_in_secs = Some(secs);
        self
    }

    /// The digest computed for `Content-Digest` (default SHA-256).
    pub fn content_digest(mut self, algorithm: DigestAlgorithm) -> Self {
        self.signer.digest = algorithm;
        self
    }

    /// Reads time from `clock`.
    pub fn clock<C2: Clock>(self, clock: C2) -> MessageSignerBuilder<C2> {
        let s = self.signer;
        MessageSignerBuilder {
            signer: MessageSigner {
                key_id: s.key_id,
                key: s.key,
                components: s.components,
                label: s.label,
                nonce: s.nonce,
                include_alg: s.include_alg,
                expires_in_secs: s.expires_in_secs,
                digest: s.digest,
                clock,
            },
        }
    }

    /// The signer.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] for a key id that is not 1 to 256 visible ASCII characters, a
    /// label that is not a structured-field key, or a component this crate cannot compute or
    /// listed twice.
    pub fn build(self) -> Result<MessageSigner<C>> {
        let s = &self.signer;
        let invalid = |part, reason| Error::InvalidRequest { part, reason };
        check_key_id(s.key_id.as_bytes()).map_err(|reason| invalid("key id", reason))?;
        if sfv::String::from_string(s.key_id.clone()).is_err() {
            return Err(invalid("key id", "not visible ASCII"));
        }
        if KeyRef::from_str(&s.label).is_err() {
            return Err(invalid("label", "not a structured-field key"));
        }
        for (i, component) in s.components.iter().enumerate() {
            if !supported_component(component) {
                return Err(invalid("components", "not one this crate computes"));
            }
            if s.components[..i].contains(component) {
                return Err(invalid("components", "listed twice"));
            }
        }
        Ok(self.signer)
    }
}

impl<C: Clock> MessageSigner<C> {
    /// Signs `message` now, with a fresh random nonce.
    ///
    /// # Errors
    /// As [`sign_with`](Self::sign_with), and [`Error::Randomness`].
    pub fn sign(&self, message: &Message<'_>) -> Result<SignedFields> {
        let nonce = if self.nonce {
            let mut bytes = [0u8; 16];
            getrandom::fill(&mut bytes).map_err(|_| Error::Randomness)?;
            Some(hex::encode(bytes))
        } else {
            None
        };
        self.sign_with(message, self.clock.now_unix(), nonce.as_deref())
    }

    /// Signs `message` with a given `created` time and nonce (for test vectors; never reuse a
    /// nonce).
    ///
    /// # Errors
    /// [`Error::ComponentAbsent`] when a covered header field is not in the message, and
    /// [`Error::InvalidRequest`] for a nonce that is not a structured-field string.
    pub fn sign_with(
        &self,
        message: &Message<'_>,
        created: u64,
        nonce: Option<&str>,
    ) -> Result<SignedFields> {
        let mut components = self.components.clone();
        let body = message.body();
        let mut added_digest = None;
        if !body.is_empty() {
            if !components.iter().any(|c| c == "content-digest") {
                components.push("content-digest".to_owned());
            }
            if message.header("content-digest").is_none() {
                added_digest = Some(content_digest(body, self.digest));
            }
        }
        let mut headers = message.headers().to_vec();
        if let Some(digest) = &added_digest {
            headers.push(("content-digest", digest.as_bytes()));
        }
        let message = message.with_headers(&headers);

        let integer = |value: u64| {
            i64::try_from(value)
                .ok()
                .and_then(|v| sfv::Integer::try_from(v).ok())
                .map(BareItem::Integer)
                .ok_or(Error::InvalidRequest {
                    part: "created",
                    reason: "out of range",
                })
        };
        let string = |value: &str, part| {
            sfv::String::from_string(value.to_owned())
                .map(BareItem::String)
                .map_err(|_| Error::InvalidRequest {
                    part,
                    reason: "not visible ASCII",
                })
        };
        let mut params = vec![("created", integer(created)?)];
        if let Some(secs) = self.expires_in_secs {
            params.push(("expires", integer(created.saturating_add(secs))?));
        }
        if let Some(nonce) = nonce {
            params.push(("nonce", string(nonce, "nonce")?));
        }
        params.push(("keyid", string(&self.key_id, "key id")?));
        if self.include_alg {
            params.push(("alg", string(self.key.algorithm().name(), "alg")?));
        }
        let params = SignatureParams::for_signing(&self.label, components, params)?;
        let base = signature_base(&message, &params)?;
        let signature = self.key.sign(&base);

        let label = KeyRef::from_str(&self.label).map_err(|_| Error::InvalidRequest {
            part: "label",
            reason: "not a structured-field key",
        })?;
        let mut dict = DictSerializer::new();
        let _ = dict.bare_item(label, signature.as_slice());
        Ok(SignedFields {
            content_digest: added_digest,
            signature_input: format!("{}={}", self.label, params.serialized()),
            signature: dict.finish().unwrap_or_default(),
        })
    }
}
