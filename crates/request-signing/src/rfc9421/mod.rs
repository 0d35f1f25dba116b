//! HTTP Message Signatures (RFC 9421) with `Content-Digest` (RFC 9530).
//!
//! The third scheme, beside v0 and v1: the client names the parts of the request it signs
//! (components such as `@method`, `@path` or any header field) in `Signature-Input`, and sends
//! the signature in `Signature`, both structured fields (RFC 8941, parsed with `sfv`). Any RFC
//! 9421 library can sign for it, in any language.
//!
//! - [`Message`]: the request as components see it (method, target, headers, body).
//! - [`MessagePolicy`]: what the verifier requires a signature to cover, and whether a nonce
//!   is required; [`Verifier::verify_message`](crate::Verifier::verify_message) applies it.
//! - [`MessageSigner`]: signs a [`Message`] with `hmac-sha256` or (feature `ed25519`) `ed25519`,
//!   adding `Content-Digest` for a body.
//! - [`parse_signatures`]: the signatures a request claims, before any check.

mod base;
mod digest;
mod parse;
mod policy;
mod signer;

pub(crate) use base::field_value;
pub use base::{Message, signature_base};
pub use digest::{DigestAlgorithm, content_digest, verify_content_digest};
pub use parse::{MAX_FIELD_LEN, SignatureParams, parse_signatures};
pub use policy::{MessagePolicy, MessagePolicyBuilder};
pub use signer::{MessageSigner, MessageSignerBuilder, SignedFields, SigningKey};

/// `Signature-Input`: the covered components and parameters of each signature, by label.
pub const HEADER_SIGNATURE_INPUT: &str = "Signature-Input";
/// `Signature`: each signature's bytes, by label.
pub const HEADER_SIGNATURE: &str = "Signature";
/// `Content-Digest` (RFC 9530): digests of the body, by algorithm.
pub const HEADER_CONTENT_DIGEST: &str = "Content-Digest";

/// A signature algorithm, as named by the `alg` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// `hmac-sha256`: a secret shared by the client and the verifier.
    HmacSha256,
    /// `ed25519`: the client signs with its private key, the verifier holds only the public key.
    Ed25519,
}

impl Algorithm {
    /// The name in the RFC 9421 registry (`hmac-sha256`, `ed25519`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::HmacSha256 => "hmac-sha256",
            Self::Ed25519 => "ed25519",
        }
    }

    /// The algorithm of a registry name, if it is one this crate knows.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "hmac-sha256" => Some(Self::HmacSha256),
            "ed25519" => Some(Self::Ed25519),
            _ => None,
        }
    }
}

/// The derived components this crate computes (RFC 9421 §2.2), besides any header field.
pub const DERIVED_COMPONENTS: [&str; 7] = [
    "@method",
    "@target-uri",
    "@authority",
    "@scheme",
    "@request-target",
    "@path",
    "@query",
];

/// Whether `name` is a component identifier this crate can cover: a derived component it
/// knows, or a lower-case header field name (RFC 9110 token characters).
pub(crate) fn supported_component(name: &str) -> bool {
    if name.starts_with('@') {
        return DERIVED_COMPONENTS.contains(&name);
    }
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_round_trip() {
        for alg in [Algorithm::HmacSha256, Algorithm::Ed25519] {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        }
        assert_eq!(Algorithm::from_name("rsa-pss-sha512"), None);
    }

    #[test]
    fn component_names() {
        for ok in ["@method", "@query", "content-digest", "x-request-id"] {
            assert!(supported_component(ok), "{ok}");
        }
        for bad in ["@status", "@query-param", "Content-Type", "", "a b", "@"] {
            assert!(!supported_component(bad), "{bad}");
        }
    }
}
