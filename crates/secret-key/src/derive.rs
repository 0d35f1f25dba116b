//! HKDF-SHA256 (RFC 5869).

use hkdf::Hkdf;
use sha2::Sha256;

use crate::error::{Error, Result};

/// HKDF-SHA256 extract-and-expand (RFC 5869): fills `okm` (at most 8160 bytes) from input
/// keying material `ikm`, `salt` (empty means none) and context `info`.
///
/// [`SecretKey::derive`](crate::SecretKey::derive) is this with an empty salt and the purpose
/// label as `info`; it is public so the construction can be checked against RFC 5869's vectors
/// and reproduced elsewhere.
pub fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8], okm: &mut [u8]) -> Result<()> {
    let salt = (!salt.is_empty()).then_some(salt);
    Hkdf::<Sha256>::new(salt, ikm)
        .expand(info, okm)
        .map_err(|_| Error::DerivedLength { len: okm.len() })
}
