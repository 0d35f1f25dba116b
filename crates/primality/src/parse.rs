//! Strict parsing of untrusted number strings, and the cost guard.

use num_bigint::BigUint;
use rand_core::Rng;

use crate::error::{Error, Result};
use crate::verdict::{Verdict, check, check_with_rounds};

/// Parses a non-negative integer written in decimal, or in hexadecimal after a `0x`/`0X` prefix.
///
/// The input is untrusted: signs, whitespace anywhere, any character that is not a digit, an
/// empty digit string and more than `max_digits` digits (leading zeros count, the prefix does
/// not) are each refused with their own [`Error`]. The scan stops at the first problem, so a huge
/// input costs at most `max_digits` steps before [`Error::TooManyDigits`].
///
/// ```
/// use primality::{Error, parse_number};
/// assert_eq!(parse_number("0x1f", 10).unwrap(), 31u32.into());
/// assert_eq!(parse_number(" 7", 10), Err(Error::Whitespace { position: 0 }));
/// ```
pub fn parse_number(input: &str, max_digits: usize) -> Result<BigUint> {
    let (radix, digits, offset) = match input.as_bytes() {
        [b'0', b'x' | b'X', ..] => (16u32, &input[2..], 2usize),
        _ => (10u32, input, 0usize),
    };
    let mut count = 0usize;
    for (i, c) in digits.chars().enumerate() {
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
        count += 1;
        if count > max_digits {
            return Err(Error::TooManyDigits { max_digits });
        }
    }
    if count == 0 {
        return Err(Error::Empty);
    }
    // Every character is an ASCII digit of `radix`, so this cannot fail.
    BigUint::parse_bytes(digits.as_bytes(), radix).ok_or(Error::Empty)
}

/// A cost guard: the largest number, in bits, a caller is willing to test.
///
/// Checking the size first lets a service refuse an expensive input before any work starts.
/// The default is 4096 bits.
///
/// ```
/// use primality::{Error, Limits, Verdict};
/// let limits = Limits::new(64);
/// assert_eq!(limits.check(&97u32.into()), Ok(Verdict::Prime));
/// let big = limits.parse("18446744073709551617"); // 2^64 + 1
/// assert_eq!(big, Err(Error::TooLarge { bits: 65, max_bits: 64 }));
/// assert_eq!(limits.parse(&"9".repeat(21)), Err(Error::TooManyDigits { max_digits: 20 }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    max_bits: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX_BITS)
    }
}

impl Limits {
    /// The default limit, 4096 bits.
    pub const DEFAULT_MAX_BITS: u64 = 4096;

    /// A guard that accepts numbers of at most `max_bits` bits.
    #[must_use]
    pub const fn new(max_bits: u64) -> Self {
        Self { max_bits }
    }

    /// The largest accepted size in bits.
    #[must_use]
    pub const fn max_bits(&self) -> u64 {
        self.max_bits
    }

    /// The digit limit [`Limits::parse`] applies: the number of decimal digits of `2^max_bits`
    /// rounded up, which is also enough for the hexadecimal form.
    #[must_use]
    pub fn max_digits(&self) -> usize {
        // log10(2) < 0.30103, so this never undercounts; the exact bit check follows the parse.
        let digits = u128::from(self.max_bits) * 30_103 / 100_000 + 1;
        usize::try_from(digits).unwrap_or(usize::MAX)
    }

    /// Refuses `n` with [`Error::TooLarge`] when it has more than `max_bits` bits.
    pub fn ensure(&self, n: &BigUint) -> Result<()> {
        let bits = n.bits();
        if bits > self.max_bits {
            return Err(Error::TooLarge {
                bits,
                max_bits: self.max_bits,
            });
        }
        Ok(())
    }

    /// Parses `input` like [`parse_number`] with [`Limits::max_digits`], then applies
    /// [`Limits::ensure`].
    pub fn parse(&self, input: &str) -> Result<BigUint> {
        let n = parse_number(input, self.max_digits())?;
        self.ensure(&n)?;
        Ok(n)
    }

    /// [`check`] behind the size guard.
    pub fn check(&self, n: &BigUint) -> Result<Verdict> {
        self.ensure(n)?;
        Ok(check(n))
    }

    /// [`check_with_rounds`] behind the size guard.
    pub fn check_with_rounds<R: Rng + ?Sized>(
        &self,
        n: &BigUint,
        rounds: u32,
        rng: &mut R,
    ) -> Result<Verdict> {
        self.ensure(n)?;
        Ok(check_with_rounds(n, rounds, rng))
    }

    /// [`miller_rabin`](crate::miller_rabin) behind the size guard.
    pub fn miller_rabin<R: Rng + ?Sized>(
        &self,
        n: &BigUint,
        rounds: u32,
        rng: &mut R,
    ) -> Result<bool> {
        self.ensure(n)?;
        Ok(crate::verdict::miller_rabin(n, rounds, rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_and_hex() {
        assert_eq!(parse_number("0", 5).unwrap(), BigUint::ZERO);
        assert_eq!(parse_number("12345", 5).unwrap(), BigUint::from(12_345u32));
        assert_eq!(parse_number("0xFFff", 4).unwrap(), BigUint::from(65_535u32));
        assert_eq!(parse_number("0X10", 4).unwrap(), BigUint::from(16u32));
        assert_eq!(parse_number("007", 3).unwrap(), BigUint::from(7u32));
    }

    #[test]
    fn refuses_each_bad_input_with_its_error() {
        assert_eq!(parse_number("", 5), Err(Error::Empty));
        assert_eq!(parse_number("0x", 5), Err(Error::Empty));
        assert_eq!(
            parse_number("+5", 5),
            Err(Error::Sign {
                sign: '+',
                position: 0
            })
        );
        assert_eq!(
            parse_number("-5", 5),
            Err(Error::Sign {
                sign: '-',
                position: 0
            })
        );
        assert_eq!(
            parse_number("0x-5", 5),
            Err(Error::Sign {
                sign: '-',
                position: 2
            })
        );
        assert_eq!(
            parse_number("5 ", 5),
            Err(Error::Whitespace { position: 1 })
        );
        assert_eq!(
            parse_number("\t5", 5),
            Err(Error::Whitespace { position: 0 })
        );
        assert_eq!(
            parse_number("1e5", 5),
            Err(Error::InvalidDigit {
                found: 'e',
                position: 1,
                radix: 10
            })
        );
        assert_eq!(
            parse_number("0x1g", 5),
            Err(Error::InvalidDigit {
                found: 'g',
                position: 3,
                radix: 16
            })
        );
        assert_eq!(
            parse_number("1.0", 5),
            Err(Error::InvalidDigit {
                found: '.',
                position: 1,
                radix: 10
            })
        );
        assert_eq!(
            parse_number("١٢", 5),
            Err(Error::InvalidDigit {
                found: '١',
                position: 0,
                radix: 10
            })
        );
        assert_eq!(
            parse_number("123456", 5),
            Err(Error::TooManyDigits { max_digits: 5 })
        );
        assert_eq!(
            parse_number("0x123456", 5),
            Err(Error::TooManyDigits { max_digits: 5 })
        );
    }

    #[test]
    fn limits_refuse_large_numbers_before_work() {
        let limits = Limits::default();
        assert_eq!(limits.max_bits(), 4096);
        assert_eq!(limits.max_digits(), 1234);
        let max = (BigUint::from(1u32) << 4096u32) - 1u32;
        assert!(limits.ensure(&max).is_ok());
        assert_eq!(limits.parse(&max.to_string()).unwrap(), max);
        let over = BigUint::from(1u32) << 4096u32;
        assert_eq!(
            limits.parse(&over.to_string()),
            Err(Error::TooLarge {
                bits: 4097,
                max_bits: 4096
            })
        );
        assert_eq!(
            limits.check(&over),
            Err(Error::TooLarge {
                bits: 4097,
                max_bits: 4096
            })
        );
        let long = "1".repeat(1235);
        assert_eq!(
            limits.parse(&long),
            Err(Error::TooManyDigits { max_digits: 1234 })
        );
        assert_eq!(Limits::new(0).check(&BigUint::ZERO), Ok(Verdict::Neither));
    }
}
