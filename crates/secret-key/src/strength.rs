//! Weak-secret detection.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Smallest secret, in bytes of key material.
pub const MIN_SECRET_LEN: usize = 32;
/// Largest secret accepted, in bytes (the original used `token_hex(2048)`, 4096 characters).
pub const MAX_SECRET_LEN: usize = 8192;
/// Smallest Shannon entropy per byte accepted. Random bytes, base64, base62 or hex text all
/// measure well above it even in 16-byte samples; words and repeated snippets measure below.
const MIN_BITS_PER_SYMBOL: f64 = 3.0;

/// Known placeholders and defaults, normalised (lowercase ASCII letters and digits only).
/// A secret equal to one of these, after the same normalisation, is refused.
const EXACT: &[&str] = &[
    "secret",
    "secretkey",
    "password",
    "passw0rd",
    "changeme",
    "changeit",
    "default",
    "defaultkey",
    "defaultsecret",
    "defaultfallbackkey",
    "yourjwtsecretkey",
    "jwtsecretkey",
    "jwtsecret",
    "yoursecretkey",
    "mysecretkey",
    "mysecret",
    "supersecret",
    "supersecretkey",
    "flasksecretkey",
    "secretkeybase",
    "test",
    "testing",
    "testkey",
    "dev",
    "development",
    "admin",
    "key",
    "token",
    "example",
    "sample",
    "placeholder",
    "replaceme",
    "none",
    "null",
    "undefined",
    "qwerty",
    "letmein",
    "12345678",
    "123456789",
    "1234567890",
];

/// Distinctive placeholder phrases refused wherever they appear in the secret
/// (`changeme-please-…`, Django's `django-insecure-…` default keys). Each has at least
/// [`MIN_ANYWHERE`] characters, so that a random 512-byte key (its base64 and its bytes) holds
/// one about once in 10^8 keys.
const CONTAINED: &[&str] = &[
    "changeme",
    "changeit",
    "changethis",
    "replaceme",
    "password",
    "passw0rd",
    "secretkey",
    "jwtsecret",
    "mysecret",
    "defaultkey",
    "defaultsecret",
    "defaultfallbackkey",
    "yourjwtsecret",
    "yoursecret",
    "your256bitsecret",
    "secrethere",
    "djangoinsecure",
    "insecure",
    "placeholder",
    "notasecret",
    "supersecret",
    "development",
    "undefined",
    "qwertyuiop",
    "asdfghjkl",
];

/// Placeholder phrases too short to be refused anywhere (a 5-letter phrase turns up in about
/// one random 512-byte key in 40,000): refused where the secret starts with them.
const LEADING: &[&str] = &["dummy"];

/// The shortest phrase of [`CONTAINED`].
const MIN_ANYWHERE: usize = 8;

// Checked when compiling: each list on its side of `MIN_ANYWHERE`.
const _: () = {
    let mut i = 0;
    while i < CONTAINED.len() {
        assert!(CONTAINED[i].len() >= MIN_ANYWHERE);
        i += 1;
    }
    let mut i = 0;
    while i < LEADING.len() {
        assert!(LEADING[i].len() < MIN_ANYWHERE);
        i += 1;
    }
};

fn normalise(bytes: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(
        bytes
            .iter()
            .filter(|b| b.is_ascii_alphanumeric())
            .map(|b| char::from(b.to_ascii_lowercase()))
            .collect(),
    )
}

/// Refuses `bytes` holding a placeholder phrase ([`CONTAINED`], [`LEADING`]) and, for text as
/// it was typed (`whole_text`), one that is nothing but a placeholder ([`EXACT`]). Raw or
/// decoded key material is never matched against [`EXACT`]: random bytes whose only letters
/// and digits spell `key` or `dev` are a sound key.
fn check_placeholder(bytes: &[u8], whole_text: bool) -> Result<()> {
    let norm = normalise(bytes);
    let exact = whole_text && EXACT.contains(&norm.as_str());
    if exact
        || CONTAINED.iter().any(|p| norm.contains(*p))
        || LEADING.iter().any(|p| norm.starts_with(*p))
    {
        return Err(Error::Placeholder);
    }
    Ok(())
}

/// Empirical Shannon entropy of the byte distribution, in bits per byte.
fn bits_per_symbol(bytes: &[u8]) -> f64 {
    let mut counts = [0_u32; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Smallest period of `bytes` (KMP failure function): `n` if there is none.
fn smallest_period(bytes: &[u8]) -> usize {
    let n = bytes.len();
    if n == 0 {
        return 0;
    }
    let mut fail = vec![0_usize; n];
    let mut k = 0;
    for i in 1..n {
        while k > 0 && bytes[i] != bytes[k] {
            k = fail[k - 1];
        }
        if bytes[i] == bytes[k] {
            k += 1;
        }
        fail[i] = k;
    }
    n - fail[n - 1]
}

/// Whether most of the bytes continue an arithmetic progression (`abcd…`, `9876…`, `aaaa…`).
fn mostly_progression(bytes: &[u8]) -> bool {
    if bytes.len() < 3 {
        return false;
    }
    let steady = bytes
        .windows(3)
        .filter(|w| w[1].wrapping_sub(w[0]) == w[2].wrapping_sub(w[1]))
        .count();
    steady * 2 >= bytes.len() - 2
}

/// Statistical checks on the material a secret is judged by.
fn check_randomness(bytes: &[u8]) -> Result<()> {
    check_patterns(bytes)?;
    check_entropy(bytes)
}

/// A repeated sequence or a regular progression.
fn check_patterns(bytes: &[u8]) -> Result<()> {
    if smallest_period(bytes) * 2 <= bytes.len() {
        return Err(Error::Pattern {
            pattern: "a repeated sequence",
        });
    }
    if mostly_progression(bytes) {
        return Err(Error::Pattern {
            pattern: "a regular progression",
        });
    }
    Ok(())
}

/// Too few bits per byte.
fn check_entropy(bytes: &[u8]) -> Result<()> {
    let bits = bits_per_symbol(bytes);
    if bits < MIN_BITS_PER_SYMBOL {
        return Err(Error::LowEntropy {
            bits_per_symbol: bits,
            min: MIN_BITS_PER_SYMBOL,
        });
    }
    Ok(())
}

/// Which checks a key goes through: all of them for a key in use; all but the placeholder
/// phrases for a retired key (a fallback), so that a key this version refuses as a placeholder
/// can still be rotated away from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    Current,
    Retired,
}

/// Checks raw key material: length, placeholders, repetition, progression and entropy.
pub(crate) fn check_bytes(bytes: &[u8], using: Use) -> Result<()> {
    check_length(bytes.len())?;
    if using == Use::Current {
        check_placeholder(bytes, false)?;
    }
    check_randomness(bytes)
}

pub(crate) fn check_length(len: usize) -> Result<()> {
    if len < MIN_SECRET_LEN {
        return Err(Error::TooShort {
            len,
            min: MIN_SECRET_LEN,
        });
    }
    if len > MAX_SECRET_LEN {
        return Err(Error::TooLong {
            len,
            max: MAX_SECRET_LEN,
        });
    }
    Ok(())
}

fn is_hex(text: &str) -> bool {
    text.len() % 2 == 0 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Decodes `text` as hex, or as base64 (standard or URL-safe, padding optional), if it is one.
pub(crate) fn try_decode(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    if is_hex(text) {
        return hex::decode(text).ok().map(Zeroizing::new);
    }
    let unpadded = text.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(unpadded)
        .or_else(|_| URL_SAFE_NO_PAD.decode(unpadded))
        .ok()
        .map(Zeroizing::new)
}

/// Checks a secret given as text and used as its UTF-8 bytes. If the text is hex or base64,
/// the decoded bytes are judged as well (a hex-encoded `changeme…` is still a placeholder).
pub(crate) fn check_text(text: &str, using: Use) -> Result<()> {
    if using == Use::Current {
        check_placeholder(text.as_bytes(), true)?;
    }
    check_length(text.len())?;
    check_patterns(text.as_bytes())?;
    // Hex holds at most 4 bits a character, and 32 random hex digits measure under 3 bits about
    // once in 10,000: hex text is judged by the entropy of its bytes, below.
    if !is_hex(text) {
        check_entropy(text.as_bytes())?;
    }
    // At least 32 characters decode to at least 16 bytes (hex) or 24 (base64): 128 bits.
    if let Some(decoded) = try_decode(text) {
        if using == Use::Current {
            check_placeholder(&decoded, false)?;
        }
        check_randomness(&decoded)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        assert_eq!(smallest_period(b"aaaa"), 1);
        assert_eq!(smallest_period(b"abcabcab"), 3);
        assert_eq!(smallest_period(b"abcd"), 4);
        assert_eq!(smallest_period(b""), 0);
    }

    #[test]
    fn entropy_of_known_distributions() {
        assert!((bits_per_symbol(b"aaaa") - 0.0).abs() < 1e-12);
        assert!((bits_per_symbol(b"abab") - 1.0).abs() < 1e-12);
        let all: Vec<u8> = (0..=255).collect();
        assert!((bits_per_symbol(&all) - 8.0).abs() < 1e-12);
    }

    #[test]
    fn progressions() {
        assert!(mostly_progression(b"abcdefghijklmnopqrstuvwxyz012345"));
        assert!(mostly_progression(b"zyxwvutsrq"));
        assert!(!mostly_progression(b"q8Zr2mX0vK7pL4nW"));
    }
}
