//! `POST /check-prime`.
//!
//! The number is read from the raw JSON text, digit for digit: a bare JSON integer of any size
//! (as the original clients send it), or a string holding a decimal or `0x` hex integer. It
//! never passes through `f64` or `u64`.
//!
//! Cost against the daily quota: the test's modelled work ([`primality::work`]: bits times
//! words squared times BPSW plus the rounds) in units of one BPSW test of a 1,024-bit number,
//! at least 1 (the table is in `docs/api.md`). A test that takes a few microseconds runs on the
//! async worker that received it. A longer one runs on the [`PrimePool`]: it is charged only
//! once its verdict is known, so a test that never answers (the pool stayed full, the request
//! timed out, the client went away) costs nothing, and it stops between rounds as soon as
//! nobody waits for it. When the key's quota cannot be read before the test (Redis is away), it
//! is charged once it holds its thread, before it runs: a full pool still costs nothing, a test
//! dropped while it runs is paid.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, web};
use num_bigint::BigUint;
use primality::{JsonNumber, Limits, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::auth::principal::Principal;
use crate::error::{ApiError, Problem};
use crate::extract::Json;
use crate::limits::KeyQuota;
use crate::work::{Reserved, WorkError, WorkPool};

/// Extra random-base Miller-Rabin rounds when the request names none: none, BPSW alone (the
/// error bounds and costs of each choice are in `docs/api.md`).
pub const DEFAULT_ROUNDS: u32 = 0;
/// Most extra rounds a request may ask for.
pub const MAX_ROUNDS: u32 = 64;
/// Tests of at most this much modelled work run inline on the async worker: a BPSW test of a
/// 192-bit number, about 12 µs.
pub const INLINE_MAX_WORK: u64 = 192 * 3 * 3 * primality::BPSW_ROUNDS;
/// The work one quota unit pays for: a BPSW test of a 1,024-bit number, about 2 ms.
pub const WORK_PER_UNIT: u64 = 1024 * 16 * 16 * primality::BPSW_ROUNDS;
/// How long a test waits for a free prime thread before the answer is 503.
pub const PRIME_QUEUE_TIMEOUT: Duration = Duration::from_secs(1);

/// What to test.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrimeRequest {
    /// A non-negative integer of at most 4,096 bits: a bare JSON number of any size, or a
    /// string holding a decimal or `0x` hexadecimal integer.
    #[schema(schema_with = number_in_request, example = json!(172983479832623897492387592384682937659382477_u128))]
    pub number: JsonNumber,
    /// Extra random-base Miller-Rabin rounds after BPSW for numbers of 2^64 and above
    /// (default 0, at most 64): each one at least quarters the chance that a composite passes.
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

/// The quota cost of a test of `work` ([`primality::work`]): one unit per started
/// [`WORK_PER_UNIT`], at least 1.
#[must_use]
pub fn prime_cost(work: u64) -> u64 {
    work.div_ceil(WORK_PER_UNIT).max(1)
}

/// The threads big numbers are tested on, shared fairly: one key holds at most half of them
/// (rounded up), so with two threads or more a key flooding big tests leaves threads for the
/// other keys. A key over its share is answered 503 at once; a test that finds every thread
/// busy waits at most [`PRIME_QUEUE_TIMEOUT`], then 503.
#[derive(Debug)]
pub struct PrimePool {
    pool: WorkPool,
    per_key: usize,
    running: Arc<Mutex<HashMap<String, usize>>>,
}

/// A key's place among the running tests, given back when dropped.
#[derive(Debug)]
struct Share {
    running: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = running.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.key);
            }
        }
    }
}

/// Tells a running test to stop when dropped: when the handler's future is dropped because the
/// request timed out or the client went away.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl PrimePool {
    /// A pool of `threads` threads (at least 1).
    ///
    /// # Errors
    /// When a thread cannot be spawned.
    pub fn new(threads: usize, queue_timeout: Duration) -> Result<Self, WorkError> {
        let pool = WorkPool::new("primes", threads, queue_timeout)?;
        Ok(Self {
            per_key: pool.threads().div_ceil(2),
            pool,
            running: Arc::default(),
        })
    }

    /// How many tests run now, and how many wait for a thread.
    #[must_use]
    pub fn load(&self) -> (usize, usize) {
        (self.pool.running(), self.pool.queued())
    }

    fn enter(&self, key: &str) -> Result<Share, ApiError> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let n = running.entry(key.to_owned()).or_insert(0);
        if *n >= self.per_key {
            return Err(ApiError::Unavailable {
                detail: "this key already has as many prime tests running as it may; try again shortly",
                retry_after: Some(1),
            });
        }
        *n += 1;
        Ok(Share {
            running: Arc::clone(&self.running),
            key: key.to_owned(),
        })
    }

    /// A prime thread held for one test of `key`'s, with the key's place among the running
    /// tests: taken before the test is charged, so that a test refused here costs nothing.
    ///
    /// # Errors
    /// 503 with `Retry-After` when the key holds its share or no thread frees up in time.
    pub async fn reserve(&self, key: &str) -> Result<PrimeThread, ApiError> {
        let share = self.enter(key)?;
        let thread = self.pool.reserve().await.map_err(|error| match error {
            WorkError::Busy => ApiError::Unavailable {
                detail: "every prime thread is busy; try again shortly",
                retry_after: Some(1),
            },
            other => ApiError::internal(other),
        })?;
        Ok(PrimeThread { thread, share })
    }
}

/// A prime thread held for one test, from [`PrimePool::reserve`]; dropped unused, the thread
/// and the key's place are free again.
#[derive(Debug)]
pub struct PrimeThread {
    thread: Reserved,
    share: Share,
}

impl PrimeThread {
    /// The verdict on `n` with `rounds` extra rounds. Dropping the future stops the test before
    /// its next round.
    ///
    /// # Errors
    /// 500 when the pool's threads are gone.
    pub async fn test(self, n: BigUint, rounds: u32) -> Result<Verdict, ApiError> {
        let Self { thread, share } = self;
        let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
        let stopped = Arc::clone(&stop.0);
        let verdict = thread
            .run(move || {
                let _share = share;
                primality::check_with_rounds_while(&n, rounds, &mut rand::rng(), || {
                    !stopped.load(Ordering::Relaxed)
                })
            })
            .await
            .map_err(ApiError::internal)?;
        drop(stop);
        // `None` only once `stop` was dropped, and then nobody awaits this future any more.
        verdict.ok_or_else(|| ApiError::internal("a prime test stopped while awaited"))
    }
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
        (status = 429, description = "A limit of the key is reached: its rate limit, its daily or monthly quota, or its credits (each its own problem type)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["prime:check"]), ("api_key_header" = ["prime:check"]), ("signed" = ["prime:check"]), ("signed_rfc9421" = ["prime:check"]))
)]
pub async fn check_prime(
    req: HttpRequest,
    quota: web::Data<KeyQuota>,
    limits: web::Data<Limits>,
    primes: web::Data<PrimePool>,
    body: Json<PrimeRequest>,
) -> Result<HttpResponse, ApiError> {
    let (n, rounds) = body.validate(**limits)?;
    let bits = n.bits();
    let work = primality::work(bits, rounds);
    let cost = prime_cost(work);
    let (verdict, charged) = if work <= INLINE_MAX_WORK {
        let charged = quota.charge(&req, cost).await?;
        (
            primality::check_with_rounds(&n, rounds, &mut rand::rng()),
            charged,
        )
    } else {
        // A key that cannot pay is refused before any work, with no thread held. The thread
        // is held before anything is charged, so a 503 from the pool costs nothing. When the
        // quota cannot be read (a Redis outage), the charge comes before the test and follows
        // the quota's fail policy.
        let remaining = quota.remaining(&req).await;
        let mut paid = match remaining {
            Some(remaining) if remaining < cost => Some(quota.charge(&req, cost).await?),
            _ => None,
        };
        let key = req
            .extensions()
            .get::<Principal>()
            .map(|p| p.quota_id.clone())
            .unwrap_or_default();
        let thread = primes.reserve(&key).await?;
        if remaining.is_none() {
            paid = Some(quota.charge(&req, cost).await?);
        }
        let verdict = thread.test(n.clone(), rounds).await?;
        let charged = match paid {
            Some(charged) => charged,
            None => quota.charge(&req, cost).await?,
        };
        (verdict, charged)
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
        // The crate names the character; a detail never repeats what was sent.
        primality::Error::InvalidDigit {
            position, radix, ..
        } => ApiError::validation(
            "number",
            format!("invalid base-{radix} digit at position {position}"),
        ),
        e => ApiError::validation("number", e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cost_follows_the_modelled_work() {
        let cost = |bits, rounds| prime_cost(primality::work(bits, rounds));
        assert_eq!(cost(0, 0), 1);
        assert_eq!(cost(64, 64), 1);
        assert_eq!(cost(1024, 0), 1);
        assert_eq!(cost(1025, 0), 2, "1025 bits are squared in 20 words");
        assert_eq!(cost(1024, 40), 15);
        assert_eq!(cost(1024, 64), 23);
        assert_eq!(cost(2048, 0), 8);
        assert_eq!(cost(2048, 64), 179);
        assert_eq!(cost(4096, 0), 64);
        assert_eq!(cost(4096, 64), 1_430);
        // The original's 45-digit number is tested inline; a 256-bit one is not.
        assert!(primality::work(147, DEFAULT_ROUNDS) <= INLINE_MAX_WORK);
        assert!(primality::work(256, DEFAULT_ROUNDS) > INLINE_MAX_WORK);
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
        let invalid = number(r#""97\u0000""#).unwrap_err().to_string();
        assert_eq!(invalid, "number: invalid base-10 digit at position 2");
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
