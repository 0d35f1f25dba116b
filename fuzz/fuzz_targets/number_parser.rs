//! `primality::parse_number` and `Limits::parse`, the decimal/hex parser behind `/check-prime`.
//!
//! Input: the text to parse, as is (no fields).
//!
//! Properties:
//! - the result is exactly the one a plain reading of the documented rules gives (the
//!   `expected` oracle below): the first whitespace, sign or non-digit is reported with its
//!   character position, an empty digit string is `Empty`, more digits than allowed is
//!   `TooManyDigits`;
//! - a success round-trips: the number printed back (decimal, or lower-case hex after `0x`)
//!   is the input without its prefix and leading zeros, lower-cased;
//! - `Limits::parse` never accepts more bits than its limit, and always accepts the canonical
//!   decimal and hex forms of a number within it (its digit limit never undercounts).
#![no_main]

use libfuzzer_sys::fuzz_target;
use num_bigint::BigUint;
use primality::{Error, Limits, parse_number};

/// The documented rules, written the obvious way.
fn expected(input: &str, max_digits: usize) -> Result<BigUint, Error> {
    let (radix, offset) = if input.starts_with("0x") || input.starts_with("0X") {
        (16, 2)
    } else {
        (10, 0)
    };
    let digits: Vec<char> = input[offset..].chars().collect();
    for (i, &c) in digits.iter().enumerate() {
        let position = i + offset;
        if c.is_whitespace() {
            return Err(Error::Whitespace { position });
        }
        if c == '+' || c == '-' {
            return Err(Error::Sign { sign: c, position });
        }
        if !c.is_digit(radix) {
            return Err(Error::InvalidDigit {
                found: c,
                position,
                radix,
            });
        }
        if i + 1 > max_digits {
            return Err(Error::TooManyDigits { max_digits });
        }
    }
    if digits.is_empty() {
        return Err(Error::Empty);
    }
    let value = digits.iter().fold(BigUint::ZERO, |acc, c| {
        acc * radix + c.to_digit(radix).expect("checked above")
    });
    Ok(value)
}

/// The input as the parser should print it back: no prefix, no leading zeros, lower case.
fn canonical(input: &str) -> (u32, String) {
    let (radix, digits) = match input.strip_prefix("0x").or(input.strip_prefix("0X")) {
        Some(hex) => (16, hex),
        None => (10, input),
    };
    let trimmed = digits.trim_start_matches('0');
    let text = if trimmed.is_empty() { "0" } else { trimmed };
    (radix, text.to_ascii_lowercase())
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    // Digit limits around the input's own length, so both sides of the limit are reached.
    let len = input.chars().count();
    for max_digits in [
        0,
        len.saturating_sub(3),
        len.saturating_sub(1),
        len,
        1234,
        usize::MAX,
    ] {
        let got = parse_number(input, max_digits);
        assert_eq!(
            got,
            expected(input, max_digits),
            "{input:?} max {max_digits}"
        );
        if let Ok(n) = &got {
            let (radix, text) = canonical(input);
            assert_eq!(n.to_str_radix(radix), text, "{input:?} does not round-trip");
            assert!(!input.starts_with(['+', '-']) && !input.contains(char::is_whitespace));
        }
    }

    // The cost guard, at the server's default and at limits near the number's own size.
    let Ok(n) = parse_number(input, usize::MAX) else {
        return;
    };
    let bits = n.bits();
    for max_bits in [
        0,
        1,
        bits.saturating_sub(1),
        bits,
        bits + 1,
        64,
        Limits::DEFAULT_MAX_BITS,
    ] {
        let limits = Limits::new(max_bits);
        match limits.parse(input) {
            Ok(m) => {
                assert_eq!(m, n);
                assert!(
                    m.bits() <= max_bits,
                    "{input:?} accepted above {max_bits} bits"
                );
            }
            Err(Error::TooLarge {
                bits: b,
                max_bits: m,
            }) => {
                assert_eq!((b, m), (bits, max_bits));
                assert!(bits > max_bits);
            }
            Err(Error::TooManyDigits { max_digits }) => {
                assert_eq!(max_digits, limits.max_digits());
                let digits = input.strip_prefix("0x").or(input.strip_prefix("0X"));
                assert!(digits.unwrap_or(input).len() > max_digits);
            }
            Err(e) => panic!("{input:?} parsed unlimited but not under {max_bits} bits: {e}"),
        }
        if bits <= max_bits {
            let decimal = n.to_str_radix(10);
            let hex = format!("0x{}", n.to_str_radix(16));
            assert_eq!(
                limits.parse(&decimal).as_ref(),
                Ok(&n),
                "{decimal} within {max_bits}"
            );
            assert_eq!(
                limits.parse(&hex).as_ref(),
                Ok(&n),
                "{hex} within {max_bits}"
            );
        }
    }
});
