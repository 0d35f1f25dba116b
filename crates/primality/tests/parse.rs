//! Laws of the parser for untrusted input: it never panics, it round-trips every number it
//! prints, and its size guard agrees with the number of bits.

use num_bigint::BigUint;
use primality::{Error, Limits, parse_number};
use proptest::prelude::*;

proptest! {
    #[test]
    fn any_string_gives_a_number_or_a_typed_error(s in "\\PC{0,40}") {
        match parse_number(&s, 30) {
            Ok(n) => prop_assert!(n.bits() <= 30 * 4),
            Err(
                Error::Empty
                | Error::Sign { .. }
                | Error::Whitespace { .. }
                | Error::InvalidDigit { .. }
                | Error::TooManyDigits { .. },
            ) => {}
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn decimal_and_hex_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let n = BigUint::from_bytes_le(&bytes);
        prop_assert_eq!(parse_number(&n.to_string(), 200).unwrap(), n.clone());
        prop_assert_eq!(parse_number(&format!("0x{}", n.to_str_radix(16)), 200).unwrap(), n);
    }

    #[test]
    fn limits_accept_exactly_the_numbers_that_fit(
        bytes in proptest::collection::vec(any::<u8>(), 1..64),
        max_bits in 1u64..520,
    ) {
        let n = BigUint::from_bytes_le(&bytes);
        let limits = Limits::new(max_bits);
        let parsed = limits.parse(&n.to_string());
        if n.bits() <= max_bits {
            prop_assert_eq!(parsed.unwrap(), n);
        } else {
            prop_assert!(
                matches!(parsed, Err(Error::TooLarge { .. } | Error::TooManyDigits { .. })),
                "{parsed:?}"
            );
        }
    }
}
