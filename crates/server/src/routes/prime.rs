//! `POST /check-prime`.
//!
//! The number is read from the raw JSON text, digit for digit: a bare JSON integer of any size
//! (as the original clients send it), or a string holding a decimal or `0x` hex integer. It
//! never passes through `f64` or `u64`.
//!
//! Cost against the daily quota: one call per started 1,024 bits of the number, so a
//! 4,096-bit number costs 4 and anything up to 1,024 bits costs 1.

use actix_web::{HttpRequest, HttpResponse, web};
use num_bigint::BigUint;
use primality::{JsonNumber, Limits, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::extract::Json;
use crate::limits::KeyQuota;

/// Extra random-base Miller-Rabin rounds when the request names none (the original ran 40).
pub const DEFAULT_ROUNDS: u32 = 40;
/// Most extra rounds a request may ask for.
pub const MAX_ROUNDS: u32 = 64;
/// Numbers above this many bits are tested on the blocking pool, off the async workers.
pub const INLINE_MAX_BITS: u64 = 128;

/// What to test.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrimeRequest {
    /// A non-negative integer of at most 4,096 bits: a bare JSON number of any size, or a
    /// string holding a decimal or `0x` hexadecimal integer.
    #[schema(schema_with = number_in_request, example = json!(172983479832623897492387592384682937659382477_u128))]
    pub number: JsonNumber,
    /// Extra random-base Miller-Rabin rounds after BPSW for numbers of 2^64 and above
    /// (default 40, at most 64).
    #[schema(maximum = 64)]
    pub rounds: Option<u32>,
}

impl PrimeRequest {
    /// The number to test and the extra rounds, checked against `limits`: everything the
    /// handler does with a body once actix-web's JSON extractor (`serde_json::from_slice`) has
    /// read it. The number is `primality`'s [`JsonNumber`], which its fuzz target
    /// (`fuzz/fuzz_targets/check_prime_body.rs`) runs on whole bodies.
    ///
    /// # Errors
    /// [`ApiError::Validation`] for too many rounds or a number that is not a non-negative
    /// integer, [`ApiError::PayloadTooLarge`] for a number above `limits`.
    pub fn validate(&self, limits: Limits) -> Result<(BigUint, u32), ApiError> {
        let rounds = self.rounds.unwrap_or(DEFAULT_ROUNDS);
        if rounds > MAX_ROUNDS {
            return Err(ApiError::validation(
                "rounds",
                format!("must be at most {MAX_ROUNDS}"),
            ));
        }
        let n = self.number.parse(limits).map_err(prime_error)?;
        Ok((n, rounds))
    }
}

/// The answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrimeResponse {
    /// The number tested, in decimal, as a JSON number.
    #[schema(schema_with = number_in_response, example = json!(172983479832623897492387592384682937659382477_u128))]
    pub number: Box<RawValue>,
    /// Whether it is prime (proven, or probable prime after BPSW and the extra rounds).
    #[serde(rename = "isPrime")]
    pub is_prime: bool,
    /// `prime` (proven), `probable_prime`, `composite`, or `neither` (0 and 1).
    pub verdict: &'static str,
    /// A small factor, when trial division found one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub factor: Option<u64>,
    /// The number's size in bits.
    pub bits: u64,
}

/// The request's `number`: a JSON integer, or a string of decimal or `0x` hex digits.
fn number_in_request() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^(0[xX][0-9a-fA-F]+|[0-9]+)$"))
                .min_length(Some(1)),
        )
        .build()
        .into()
}

/// The answer's `number`: a JSON integer of any size.
fn number_in_response() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .build()
}

/// The quota cost of testing a number of `bits` bits: one per started 1,024 bits.
#[must_use]
pub fn prime_cost(bits: u64) -> u64 {
    bits.max(1).div_ceil(1024)
}

fn verdict_name(verdict: &Verdict) -> (&'static str, bool, Option<u64>) {
    match verdict {
        Verdict::Prime => ("prime", true, None),
        Verdict::ProbablePrime => ("probable_prime", true, None),
        Verdict::Composite { factor } => ("composite", false, *factor),
        // 0 and 1 are neither prime nor composite.
        _ => ("neither", false, None),
    }
}

/// Test whether a number is prime.
#[utoipa::path(
    post, path = "/check-prime", tag = "api",
    request_body = PrimeRequest,
    responses(
        (status = 200, description = "The verdict", body = PrimeResponse),
        (status = 400, description = "Malformed body or number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, unknown, revoked or expired API key", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body or number too large", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Daily quota spent", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("api_key_header" = []), ("signed" = []), ("signed_rfc9421" = []))
)]
pub async fn check_prime(
    req: HttpRequest,
    quota: web::Data<KeyQuota>,
    limits: web::Data<Limits>,
    body: Json<PrimeRequest>,
) -> Result<HttpResponse, ApiError> {
    let (n, rounds) = body.validate(**limits)?;
    let bits = n.bits();
    let charged = quota.charge(&req, prime_cost(bits)).await?;

    let verdict = if bits <= INLINE_MAX_BITS {
        primality::check_with_rounds(&n, rounds, &mut rand::rng())
    } else {
        let n = n.clone();
        web::block(move || primality::check_with_rounds(&n, rounds, &mut rand::rng())).await?
    };
    let (verdict, is_prime, factor) = verdict_name(&verdict);
    let number = RawValue::from_string(n.to_str_radix(10)).map_err(ApiError::internal)?;
    Ok(charged.respond(PrimeResponse {
        number,
        is_prime,
        verdict,
        factor,
        bits,
    }))
}

fn prime_error(error: primality::Error) -> ApiError {
    match error {
        e @ (primality::Error::TooLarge { .. } | primality::Error::TooManyDigits { .. }) => {
            ApiError::PayloadTooLarge(format!("number: {e}"))
        }
        e => ApiError::validation("number", e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cost_grows_with_each_started_1024_bits() {
        assert_eq!(prime_cost(0), 1);
        assert_eq!(prime_cost(1), 1);
        assert_eq!(prime_cost(1024), 1);
        assert_eq!(prime_cost(1025), 2);
        assert_eq!(prime_cost(4096), 4);
    }

    #[test]
    fn a_request_is_validated_rounds_first_then_the_number() {
        let request = |body: &str| serde_json::from_str::<PrimeRequest>(body).unwrap();
        let (n, rounds) = request(r#"{"number": "0x1f"}"#)
            .validate(Limits::default())
            .unwrap();
        assert_eq!((n, rounds), (BigUint::from(31u32), DEFAULT_ROUNDS));
        assert!(matches!(
            request(r#"{"number": -1, "rounds": 65}"#).validate(Limits::default()),
            Err(ApiError::Validation {
                field: "rounds",
                ..
            })
        ));
        assert!(matches!(
            request(r#"{"number": 18446744073709551617}"#).validate(Limits::new(64)),
            Err(ApiError::PayloadTooLarge(_))
        ));
    }

    #[test]
    fn numbers_are_read_digit_for_digit() {
        let number = |json: &str| {
            serde_json::from_str::<PrimeRequest>(&format!(r#"{{"number": {json}}}"#))
                .unwrap()
                .validate(Limits::default())
                .map(|(n, _)| n.to_str_radix(10))
        };
        let big = "172983479832623897492387592384682937659382477";
        assert_eq!(number(big).unwrap(), big);
        assert_eq!(number("\"0x1f\"").unwrap(), "31");
        assert_eq!(number(&format!("\"{big}\"")).unwrap(), big);
        for bad in ["-7", "1.5", "1e10", "true", "null", "[1]", "{}"] {
            assert!(
                matches!(
                    number(bad),
                    Err(ApiError::Validation {
                        field: "number",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }
}
