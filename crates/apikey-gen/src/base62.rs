//! Base62 in ASCII order (`0-9A-Za-z`), so fixed-width numbers sort like their values.

use crate::error::{Error, Result};

/// The 62 characters, in ASCII order.
pub(crate) const ALPHABET: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Largest multiple of 62 not above 256: bytes at or above it are rejected so every
/// character is exactly equally likely (no modulo bias).
const REJECT_FROM: u8 = 248;

/// The value of a base62 character, or `None` outside the alphabet.
pub(crate) const fn digit_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'Z' => Some(c - b'A' + 10),
        b'a'..=b'z' => Some(c - b'a' + 36),
        _ => None,
    }
}

/// Appends `value` as exactly `width` base62 digits, most significant first.
///
/// The caller guarantees `value < 62^width`.
pub(crate) fn encode_fixed(mut value: u64, width: usize, out: &mut String) {
    let mut buf = [b'0'; 11];
    for slot in buf[..width].iter_mut().rev() {
        // `value % 62` is below 62, so the index is in range.
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    debug_assert_eq!(value, 0, "value does not fit the width");
    out.extend(buf[..width].iter().map(|&b| char::from(b)));
}

/// Decodes base62 digits (already checked to be in the alphabet) into a number.
pub(crate) fn decode(digits: &[u8]) -> u64 {
    digits.iter().fold(0_u64, |acc, &c| {
        acc.saturating_mul(62)
            .saturating_add(u64::from(digit_value(c).unwrap_or(0)))
    })
}

/// Appends `len` uniformly random base62 characters from the OS CSPRNG.
pub(crate) fn push_random(len: usize, out: &mut String) -> Result<()> {
    let mut pool = [0_u8; 64];
    let mut needed = len;
    while needed > 0 {
        // Ask for a little more than needed: about 3% of bytes are rejected.
        let take = (needed + needed / 16 + 4).min(pool.len());
        let chunk = &mut pool[..take];
        getrandom::fill(chunk).map_err(|e| Error::Rng(e.to_string()))?;
        for &b in chunk.iter() {
            if needed == 0 {
                break;
            }
            if b < REJECT_FROM {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
                needed -= 1;
            }
        }
    }
    zeroize::Zeroize::zeroize(&mut pool);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_is_sorted_and_round_trips() {
        assert!(ALPHABET.windows(2).all(|w| w[0] < w[1]));
        for (i, &c) in ALPHABET.iter().enumerate() {
            assert_eq!(digit_value(c), Some(i as u8));
        }
        assert_eq!(digit_value(b'_'), None);
        assert_eq!(digit_value(b'-'), None);
    }

    #[test]
    fn fixed_width_encoding() {
        let mut s = String::new();
        encode_fixed(0, 6, &mut s);
        assert_eq!(s, "000000");
        s.clear();
        encode_fixed(u64::from(u32::MAX), 6, &mut s);
        assert_eq!(s, "4gfFC3");
        assert_eq!(decode(s.as_bytes()), u64::from(u32::MAX));
        s.clear();
        encode_fixed(61, 2, &mut s);
        assert_eq!(s, "0z");
    }

    #[test]
    fn random_has_requested_length_and_alphabet() {
        for len in [0, 1, 22, 64, 200] {
            let mut s = String::new();
            push_random(len, &mut s).unwrap();
            assert_eq!(s.len(), len);
            assert!(s.bytes().all(|b| digit_value(b).is_some()));
        }
    }
}
