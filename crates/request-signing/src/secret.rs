//! The shared secret newtype.

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A shared HMAC secret: zeroized on drop, printed as `[redacted]`.
///
/// Cloning copies the bytes; every copy is zeroized when it is dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps the secret bytes (any length; 32 random bytes or more is recommended).
    #[must_use]
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The secret bytes, for computing a MAC.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value.as_bytes())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value.into_bytes())
    }
}

impl From<Vec<u8>> for Secret {
    fn from(value: Vec<u8>) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let secret = Secret::from("hunter2-very-secret");
        let shown = format!("{secret:?}");
        assert_eq!(shown, "Secret([redacted])");
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn exposes_bytes() {
        assert_eq!(Secret::from("abc").expose_secret(), b"abc");
    }
}
