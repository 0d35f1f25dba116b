//! The one error type of the crate.

/// Why a number was refused: it could not be parsed, or it is above the configured size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input held no digits (an empty string, or `0x` alone).
    #[error("empty input: expected a decimal or 0x-prefixed hexadecimal number")]
    Empty,
    /// A `+` or `-` sign: only non-negative numbers written without a sign are accepted.
    #[error("sign {sign:?} at position {position}: write the number without a sign")]
    Sign {
        /// The sign character found.
        sign: char,
        /// Its position, counted in characters from 0.
        position: usize,
    },
    /// A whitespace character (leading, trailing or inside the number).
    #[error("whitespace at position {position}")]
    Whitespace {
        /// Its position, counted in characters from 0.
        position: usize,
    },
    /// A character that is not a digit of the number's radix.
    #[error("invalid base-{radix} digit {found:?} at position {position}")]
    InvalidDigit {
        /// The offending character.
        found: char,
        /// Its position, counted in characters from 0.
        position: usize,
        /// 10 for decimal input, 16 after a `0x` prefix.
        radix: u32,
    },
    /// More digits than the caller allows (leading zeros count).
    #[error("more than {max_digits} digits")]
    TooManyDigits {
        /// The configured limit.
        max_digits: usize,
    },
    /// A negative JSON number (`JsonNumber`, feature `json`).
    #[error("negative: only non-negative integers are accepted")]
    Negative,
    /// A JSON number with a fraction or an exponent (`JsonNumber`, feature `json`).
    #[error("not an integer: write it without a fraction or an exponent")]
    NotAnInteger,
    /// A JSON value that is neither a number nor a string (`JsonNumber`, feature
    /// `json`).
    #[error("expected a non-negative integer, or a string holding one")]
    NotANumber,
    /// The number is larger than the configured [`Limits`](crate::Limits) allow.
    #[error("number of {bits} bits exceeds the limit of {max_bits} bits")]
    TooLarge {
        /// Size of the number in bits.
        bits: u64,
        /// The configured limit.
        max_bits: u64,
    },
}

/// Result type of this crate.
pub type Result<T> = core::result::Result<T, Error>;
