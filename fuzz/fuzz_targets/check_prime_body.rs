//! The `/check-prime` body: what the handler does with the bytes of a request.
//!
//! Input: the request body, as is.
//!
//! The path is the handler's own: actix-web's `Json` extractor is `serde_json::from_slice`
//! into the server's `PrimeRequest`, whose `number` is `primality`'s `JsonNumber` (raw JSON
//! text), then `JsonNumber::parse` under the server's size limit. `Body` below has the shape of
//! `PrimeRequest` (`crates/server/src/routes/prime.rs`); the server maps `TooLarge` and
//! `TooManyDigits` to 413 and every other refusal to 400.
//!
//! Properties:
//! - never panics; a refusal names its kind: a fraction or an exponent is `NotAnInteger`, a
//!   negative number `Negative` (JSON's `-0` is zero, accepted), any other JSON value but a
//!   string `NotANumber`;
//! - an accepted number is within the limit, is the integer the raw JSON spells (a bare JSON
//!   integer, or a string holding a decimal or `0x` hex integer), and its decimal form is valid
//!   JSON, as the response echoes it;
//! - a smaller limit never accepts what a larger one refuses, agrees on what both accept, and
//!   refuses only numbers above it or with more digits than it allows (leading zeros count);
//! - for numbers below 2^64 the verdict agrees with the `u64` test.
#![no_main]

use libfuzzer_sys::fuzz_target;
use num_bigint::BigUint;
use primality::{Error, JsonNumber, Limits, Verdict};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The shape of the server's `PrimeRequest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    number: JsonNumber,
    #[allow(
        dead_code,
        reason = "read by serde: a body with a mistyped `rounds` is refused"
    )]
    rounds: Option<u32>,
}

/// The integer the raw JSON of `number` spells, read independently of the server.
fn spelled(raw: &str) -> Option<BigUint> {
    // JSON's `-0` is zero.
    if raw == "-0" {
        return Some(BigUint::from(0_u8));
    }
    let text: String = if raw.starts_with('"') {
        serde_json::from_str(raw).ok()?
    } else {
        raw.to_owned()
    };
    let (radix, digits) = match text.strip_prefix("0x").or(text.strip_prefix("0X")) {
        Some(hex) => (16, hex),
        None => (10, text.as_str()),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    BigUint::parse_bytes(digits.as_bytes(), radix)
}

/// The number of digits the raw JSON of `number` spells (after any `0x`), leading zeros included.
fn digit_count(raw: &str) -> usize {
    let text: String = serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_owned());
    text.strip_prefix("0x")
        .or(text.strip_prefix("0X"))
        .unwrap_or(&text)
        .chars()
        .count()
}

fn check(request: &Body, limits: Limits) -> Option<BigUint> {
    let raw = request.number.raw();
    match request.number.parse(limits) {
        Ok(n) => {
            assert!(n.bits() <= limits.max_bits(), "accepted above the limit");
            assert_eq!(spelled(raw).as_ref(), Some(&n), "{raw} read as {n}");
            let echoed = RawValue::from_string(n.to_str_radix(10)).expect("decimal is JSON");
            assert_eq!(echoed.get(), n.to_str_radix(10));
            Some(n)
        }
        Err(Error::NotAnInteger) => {
            assert!(raw.starts_with(|c: char| c.is_ascii_digit()), "{raw}");
            assert!(raw.contains(['.', 'e', 'E']), "{raw}");
            None
        }
        Err(Error::Negative) => {
            assert!(raw.starts_with('-'), "{raw}");
            None
        }
        Err(Error::NotANumber) => {
            assert!(
                !raw.starts_with(|c: char| c.is_ascii_digit() || c == '-'),
                "{raw}"
            );
            None
        }
        Err(Error::Sign { .. } | Error::Whitespace { .. } | Error::InvalidDigit { .. }) => {
            assert!(spelled(raw).is_none(), "{raw} refused");
            None
        }
        Err(Error::Empty) => {
            assert!(raw.starts_with('"'), "{raw}");
            None
        }
        Err(Error::TooLarge { .. } | Error::TooManyDigits { .. }) => None,
        Err(other) => panic!("unexpected error kind: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    // What actix-web's `Json<PrimeRequest>` does with the body.
    let Ok(request) = serde_json::from_slice::<Body>(data) else {
        return;
    };
    let server = check(&request, Limits::default());
    let small = check(&request, Limits::new(64));
    match (&server, &small) {
        (None, Some(_)) => panic!("refused at 4096 bits but accepted at 64"),
        (Some(a), Some(b)) => assert_eq!(a, b),
        // Leading zeros count towards the digit limit (documented), so a zero-padded number
        // can be refused by the smaller limit for its length alone.
        (Some(n), None) => assert!(
            n.bits() > 64 || digit_count(request.number.raw()) > Limits::new(64).max_digits(),
            "{n} refused at 64 bits"
        ),
        (None, None) => {}
    }
    if let Some(n) = small {
        // Below 2^64 the verdict is deterministic, so the random rounds play no part.
        let word = u64::try_from(&n).expect("at most 64 bits");
        let verdict = primality::check(&n);
        let prime = matches!(verdict, Verdict::Prime | Verdict::ProbablePrime);
        assert_eq!(prime, primality::is_prime_u64(word), "{n}: {verdict:?}");
    }
});
