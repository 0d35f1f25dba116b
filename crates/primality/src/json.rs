//! A number as a JSON request body carries it (feature `json`).

use std::fmt;

use num_bigint::BigUint;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::parse::Limits;

/// A number in a JSON document, kept as its raw text until [`JsonNumber::parse`] reads it under
/// a [`Limits`].
///
/// It accepts a bare JSON integer of any size (JSON puts no bound on the digits, and reading
/// it as an `f64` or `u64` first would round or refuse it) or a JSON string holding a decimal
/// or `0x` hexadecimal integer. Deserializing only checks that the value is well-formed JSON
/// and does no work on the digits, so a body's size limit is the only cost before `parse`.
/// It deserializes with `serde_json` only (it holds a [`RawValue`]).
///
/// ```
/// use primality::{Error, JsonNumber, Limits};
///
/// #[derive(serde::Deserialize)]
/// struct Body {
///     number: JsonNumber,
/// }
///
/// let limits = Limits::new(4096);
/// let body: Body = serde_json::from_str(r#"{"number": 172983479832623897492387592384682937659382477}"#)?;
/// assert_eq!(body.number.parse(limits)?.bits(), 147);
///
/// let body: Body = serde_json::from_str(r#"{"number": "0x1f"}"#)?;
/// assert_eq!(body.number.parse(limits)?, 31u32.into());
///
/// let body: Body = serde_json::from_str(r#"{"number": 2.5}"#)?;
/// assert_eq!(body.number.parse(limits), Err(Error::NotAnInteger));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JsonNumber(Box<RawValue>);

impl JsonNumber {
    /// The raw JSON text of the value, exactly as the document spells it.
    #[must_use]
    pub fn raw(&self) -> &str {
        self.0.get()
    }

    /// The integer the value spells, refused as [`Limits::parse`] refuses text, and besides:
    /// [`Error::Negative`] for a negative JSON number (`-0` is zero), [`Error::NotAnInteger`] for a fraction or an
    /// exponent, [`Error::NotANumber`] for any other JSON value (`null`, `true`, an object...).
    pub fn parse(&self, limits: Limits) -> Result<BigUint> {
        let raw = self.raw();
        match raw.as_bytes().first() {
            Some(b'"') => {
                let text: String = serde_json::from_str(raw).map_err(|_| Error::NotANumber)?;
                limits.parse(&text)
            }
            Some(b'0'..=b'9') if raw.bytes().all(|b| b.is_ascii_digit()) => limits.parse(raw),
            // JSON's other numbers: a fraction or an exponent.
            Some(b'0'..=b'9') => Err(Error::NotAnInteger),
            // JSON's `-0` is zero, the one integer with a minus that is not negative.
            Some(b'-') if raw == "-0" => limits.parse("0"),
            Some(b'-') => Err(Error::Negative),
            _ => Err(Error::NotANumber),
        }
    }
}

impl<'de> Deserialize<'de> for JsonNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> core::result::Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(Self)
    }
}

impl fmt::Debug for JsonNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JsonNumber").field(&self.raw()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(json: &str) -> JsonNumber {
        serde_json::from_str(json).expect("valid JSON")
    }

    #[test]
    fn bare_integers_of_any_size_and_strings_parse() {
        let limits = Limits::default();
        let big = "172983479832623897492387592384682937659382477";
        assert_eq!(
            number(big).parse(limits).unwrap().to_str_radix(10),
            big,
            "no rounding through f64"
        );
        assert_eq!(number(r#""0X1F""#).parse(limits), Ok(31u32.into()));
        // An escaped digit is still the digit.
        assert_eq!(number(r#""\u0031\u0037""#).parse(limits), Ok(17u32.into()));
        assert_eq!(number("0").parse(limits), Ok(0u32.into()));
    }

    #[test]
    fn every_other_json_value_is_refused_by_kind() {
        let limits = Limits::default();
        for json in ["1.5", "1e3", "1E+3", "0.0"] {
            assert_eq!(
                number(json).parse(limits),
                Err(Error::NotAnInteger),
                "{json}"
            );
        }
        for json in ["null", "true", "[1]", r#"{"n":1}"#] {
            assert_eq!(number(json).parse(limits), Err(Error::NotANumber), "{json}");
        }
        assert_eq!(number("-7").parse(limits), Err(Error::Negative));
        assert_eq!(number("-0").parse(limits), Ok(BigUint::from(0_u32)));
        assert_eq!(number("-0.0").parse(limits), Err(Error::Negative));
        assert_eq!(
            number(r#""-7""#).parse(limits),
            Err(Error::Sign {
                sign: '-',
                position: 0
            })
        );
        assert_eq!(
            number(r#"" 7""#).parse(limits),
            Err(Error::Whitespace { position: 0 })
        );
        assert_eq!(number(r#""""#).parse(limits), Err(Error::Empty));
    }

    #[test]
    fn the_limits_apply_to_both_forms() {
        let limits = Limits::new(64);
        let over = "18446744073709551616"; // 2^64
        let too_large = Err(Error::TooLarge {
            bits: 65,
            max_bits: 64,
        });
        assert_eq!(number(over).parse(limits), too_large);
        assert_eq!(number(&format!("\"{over}\"")).parse(limits), too_large);
        assert_eq!(
            number(&"9".repeat(21)).parse(limits),
            Err(Error::TooManyDigits { max_digits: 20 })
        );
    }

    #[test]
    fn debug_shows_the_raw_text() {
        assert_eq!(format!("{:?}", number("12")), r#"JsonNumber("12")"#);
    }
}
