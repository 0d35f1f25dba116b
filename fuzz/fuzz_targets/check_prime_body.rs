//! The `/check-prime` body: what the handler does with the bytes of a request.
//!
//! Input: the request body, as is.
//!
//! The path is the handler's own: actix-web's `Json` extractor is `serde_json::from_slice`
//! into `PrimeRequest` (with `number` kept as raw JSON text), then `PrimeRequest::validate`
//! (the rounds limit, the raw-text check, `primality`'s parser behind the server's size limit).
//!
//! Properties:
//! - never panics; a refusal is a 400 (`Validation`) or a 413 (`PayloadTooLarge`), never a 500;
//! - an accepted number is within the limit, is the integer the raw JSON spells (a bare JSON
//!   integer, or a string holding a decimal or `0x` hex integer), and the response's `number`
//!   (its decimal form as raw JSON) is valid JSON;
//! - a smaller limit never accepts what a larger one refuses, agrees on what both accept, and
//!   refuses only numbers above it or with more digits than it allows (leading zeros count);
//! - for numbers below 2^64 the verdict agrees with the `u64` test.
#![no_main]

use libfuzzer_sys::fuzz_target;
use num_bigint::BigUint;
use primality::{Limits, Verdict};
use secure_api::error::ApiError;
use secure_api::routes::prime::{MAX_ROUNDS, PrimeRequest};
use serde_json::value::RawValue;

/// The integer the raw JSON of `number` spells, read independently of the server.
fn spelled(raw: &str) -> Option<BigUint> {
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

fn check(request: &PrimeRequest, limits: Limits) -> Option<(BigUint, u32)> {
    match request.validate(limits) {
        Ok((n, rounds)) => {
            assert!(rounds <= MAX_ROUNDS);
            assert_eq!(rounds, request.rounds.unwrap_or(40));
            assert!(n.bits() <= limits.max_bits(), "accepted above the limit");
            let raw = request.number.get();
            assert_eq!(spelled(raw).as_ref(), Some(&n), "{raw} read as {n}");
            let echoed = RawValue::from_string(n.to_str_radix(10)).expect("decimal is JSON");
            assert_eq!(echoed.get(), n.to_str_radix(10));
            Some((n, rounds))
        }
        Err(ApiError::Validation { field, .. }) => {
            assert!(field == "number" || field == "rounds", "field {field}");
            None
        }
        Err(ApiError::PayloadTooLarge(_)) => None,
        Err(other) => panic!("unexpected error kind: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    // Exactly what actix-web's `Json<PrimeRequest>` does with the body.
    let Ok(request) = serde_json::from_slice::<PrimeRequest>(data) else {
        return;
    };
    let server = check(&request, Limits::default());
    let small = check(&request, Limits::new(64));
    match (&server, &small) {
        (None, Some(_)) => panic!("refused at 4096 bits but accepted at 64"),
        (Some(a), Some(b)) => assert_eq!(a, b),
        // Leading zeros count towards the digit limit (documented), so a zero-padded number
        // can be refused by the smaller limit for its length alone.
        (Some((n, _)), None) => assert!(
            n.bits() > 64 || digit_count(request.number.get()) > Limits::new(64).max_digits(),
            "{n} refused at 64 bits"
        ),
        (None, None) => {}
    }
    if let Some((n, _)) = small {
        // Below 2^64 the verdict is deterministic, so the random rounds play no part.
        let word = u64::try_from(&n).expect("at most 64 bits");
        let verdict = primality::check(&n);
        let prime = matches!(verdict, Verdict::Prime | Verdict::ProbablePrime);
        assert_eq!(prime, primality::is_prime_u64(word), "{n}: {verdict:?}");
    }
});
