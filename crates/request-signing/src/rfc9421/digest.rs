//! `Content-Digest` (RFC 9530): the body's digest, so a signature covering the field covers
//! the body.

use sfv::{BareItem, DictSerializer, Dictionary, Item, KeyRef, ListEntry, Parser};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::rfc9421::HEADER_CONTENT_DIGEST;

/// A digest algorithm of the RFC 9530 registry that this crate computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// `sha-256`.
    Sha256,
    /// `sha-512`.
    Sha512,
}

impl DigestAlgorithm {
    /// The registry name (`sha-256`, `sha-512`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha-256",
            Self::Sha512 => "sha-512",
        }
    }

    fn digest(self, body: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(body).to_vec(),
            Self::Sha512 => Sha512::digest(body).to_vec(),
        }
    }
}

/// The `Content-Digest` value for `body`: `sha-256=:<base64>:`, say.
#[must_use]
pub fn content_digest(body: &[u8], algorithm: DigestAlgorithm) -> String {
    let mut dict = DictSerializer::new();
    let key = match algorithm {
        DigestAlgorithm::Sha256 => KeyRef::constant("sha-256"),
        DigestAlgorithm::Sha512 => KeyRef::constant("sha-512"),
    };
    let _ = dict.bare_item(key, algorithm.digest(body).as_slice());
    dict.finish().unwrap_or_default()
}

/// Checks a `Content-Digest` value against `body`: every `sha-256` and `sha-512` member must
/// match, and there must be at least one. Members of other algorithms are ignored.
///
/// # Errors
/// [`Error::MalformedHeader`] for a value that is not a dictionary of byte sequences or has
/// neither algorithm, [`Error::DigestMismatch`] when a digest differs from the body's.
pub fn verify_content_digest(value: &[u8], body: &[u8]) -> Result<()> {
    const H: &str = HEADER_CONTENT_DIGEST;
    let malformed = |reason| Error::MalformedHeader { header: H, reason };
    if value.len() > 1024 {
        return Err(malformed("longer than 1024 bytes"));
    }
    let dict: Dictionary = Parser::new(value)
        .parse()
        .map_err(|_| malformed("not a structured field dictionary"))?;
    let mut checked = false;
    for (name, entry) in &dict {
        let algorithm = match name.as_str() {
            "sha-256" => DigestAlgorithm::Sha256,
            "sha-512" => DigestAlgorithm::Sha512,
            _ => continue,
        };
        let ListEntry::Item(Item {
            bare_item: BareItem::ByteSequence(claimed),
            ..
        }) = entry
        else {
            return Err(malformed("a digest is not a byte sequence"));
        };
        if !bool::from(algorithm.digest(body).ct_eq(claimed)) {
            return Err(Error::DigestMismatch);
        }
        checked = true;
    }
    if checked {
        Ok(())
    } else {
        Err(malformed("no sha-256 or sha-512 digest"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_example_body() {
        // RFC 9421 Appendix B.2's request body and its Content-Digest.
        let body = br#"{"hello": "world"}"#;
        let sent = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:";
        assert_eq!(content_digest(body, DigestAlgorithm::Sha512), sent);
        verify_content_digest(sent.as_bytes(), body).unwrap();
        assert!(matches!(
            verify_content_digest(sent.as_bytes(), b"{}"),
            Err(Error::DigestMismatch)
        ));
    }

    #[test]
    fn every_known_member_must_match() {
        let body = b"abc";
        let good = content_digest(body, DigestAlgorithm::Sha256);
        verify_content_digest(format!("md5=:AA==:, {good}").as_bytes(), body).unwrap();
        let bad_512 = content_digest(b"other", DigestAlgorithm::Sha512);
        assert!(matches!(
            verify_content_digest(format!("{good}, {bad_512}").as_bytes(), body),
            Err(Error::DigestMismatch)
        ));
        for malformed in ["md5=:AA==:", "sha-256=1", "sha-256=:AA", ""] {
            assert!(
                matches!(
                    verify_content_digest(malformed.as_bytes(), body),
                    Err(Error::MalformedHeader { .. })
                ),
                "{malformed}"
            );
        }
    }
}
