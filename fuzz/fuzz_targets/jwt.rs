//! JWTs: the server's `Tokens::verify` and the `Authorization: Bearer` extraction.
//!
//! The code under test is the server's own `crates/server/src/auth/jwt.rs`, compiled here by
//! path: a leaf module, so this build needs none of the server's other dependencies.
//!
//! Input, one field per line: a token, an `Authorization` value, a JWT header (JSON), JWT
//! claims (JSON, also used as a username), the seconds from issue to verification, a
//! mutation seed.
//!
//! The `Tokens` under test has a fixed key, known to this target (the seed corpus holds
//! tokens it issued), so the target can also sign tokens of its own choosing as an issuer would.
//!
//! Properties:
//! - a fuzzed token (as given, or taken from the `Authorization` header by `bearer_token`)
//!   never verifies unless it is exactly what `Tokens` issues for its claims, unexpired and of
//!   the kind asked for;
//! - `bearer_token` returns the trimmed text after a case-insensitive `Bearer `, and nothing
//!   for any other header;
//! - a token signed with the right key but any header other than `alg: HS256` never verifies,
//!   nor does one with `alg: none` and no signature, nor one MAC'd with HMAC-SHA512;
//! - an issued token verifies (same claims) until its `exp`, and with any one byte changed
//!   it never verifies.
#![no_main]

use std::time::Duration;

use actix_web::http::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;
use secure_api_fuzz::Fields;

#[path = "../../crates/server/src/auth/jwt.rs"]
#[allow(
    dead_code,
    reason = "the server's module: this target uses only part of it"
)]
mod jwt;

use jwt::{TokenKind, Tokens, bearer_token};

/// The key of the `Tokens` under test (the tokens in the seed corpus were issued with it).
const KEY: &[u8] = b"secure-api fuzz target jwt key, never used elsewhere";
/// When the target issues its tokens (and the corpus tokens were issued).
const ISSUED_AT: i64 = 1_700_000_000;
const ACCESS_TTL: Duration = Duration::from_secs(900);
const REFRESH_TTL: Duration = Duration::from_secs(30 * 86_400);

fn tokens() -> Tokens {
    Tokens::new("fuzz", KEY, ACCESS_TTL, REFRESH_TTL)
}

/// A token either verifies as one `Tokens` issued, or not at all.
fn check_token(tokens: &Tokens, token: &str, now: i64) {
    for kind in [TokenKind::Access, TokenKind::Refresh] {
        let Ok(claims) = tokens.verify(token, kind, now) else {
            continue;
        };
        assert!(claims.exp > now, "expired token verified");
        assert_eq!(claims.typ, kind);
        let issued = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(KEY),
        )
        .expect("HS256 encodes");
        assert_eq!(token, issued, "a token Tokens did not issue verified");
    }
}

fn mac<M: Mac + KeyInit>(message: &str) -> String {
    let mut mac = <M as KeyInit>::new_from_slice(KEY).expect("any key length");
    mac.update(message.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Tokens an issuer with the key could make with any header: only `alg: HS256` verifies.
fn check_forged(tokens: &Tokens, header: &str, claims: &str, now: i64) {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let hs256 = format!(
        "{signing_input}.{}",
        mac::<Hmac<sha2::Sha256>>(&signing_input)
    );
    let hs512 = format!(
        "{signing_input}.{}",
        mac::<Hmac<sha2::Sha512>>(&signing_input)
    );
    let unsigned = format!("{signing_input}.");
    for kind in [TokenKind::Access, TokenKind::Refresh] {
        assert!(
            tokens.verify(&hs512, kind, now).is_err(),
            "HS512 MAC verified"
        );
        assert!(
            tokens.verify(&unsigned, kind, now).is_err(),
            "unsigned token verified"
        );
        if let Ok(verified) = tokens.verify(&hs256, kind, now) {
            let header: serde_json::Value = serde_json::from_str(header).expect("verified");
            assert_eq!(
                header["alg"], "HS256",
                "a token with header {header} verified"
            );
            assert!(verified.exp > now);
            assert_eq!(verified.typ, kind);
        }
    }
}

/// `bearer_token` on headers carrying `value` as their `Authorization` header.
fn check_bearer(tokens: &Tokens, value: &[u8], now: i64) {
    let Ok(value) = HeaderValue::from_bytes(value) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value.clone());
    let found = bearer_token(&headers);
    let expected = value.to_str().ok().and_then(|text| {
        let (scheme, rest) = text.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    assert_eq!(found, expected);
    if let Some(token) = found {
        check_token(tokens, token, now);
    }
}

/// An issued token verifies until it expires; a changed byte never verifies.
fn check_issued(tokens: &Tokens, username: &str, after: i64, seed: u64) {
    for (kind, ttl) in [
        (TokenKind::Access, ACCESS_TTL),
        (TokenKind::Refresh, REFRESH_TTL),
    ] {
        let issued = tokens
            .issue("user-1", username, kind, "fam_fuzz", ISSUED_AT)
            .expect("HS256 issues");
        let now = ISSUED_AT + after;
        let result = tokens.verify(&issued.token, kind, now);
        if after < ttl.as_secs() as i64 {
            assert_eq!(result.as_ref(), Ok(&issued.claims));
        } else {
            assert!(result.is_err(), "verified {after} s after issue");
        }
        let bytes = issued.token.as_bytes();
        for k in 0..3u64 {
            let s = seed.rotate_left(21 * k as u32);
            let at = (s as usize) % bytes.len();
            let mut changed = bytes.to_vec();
            changed[at] = b"AQgw_-.=eyJ0"[((s >> 12) % 12) as usize];
            if changed[at] == bytes[at] {
                changed[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            }
            let changed = String::from_utf8(changed).expect("ASCII");
            for now in [ISSUED_AT, now] {
                assert!(
                    tokens.verify(&changed, kind, now).is_err(),
                    "byte {at} of an issued token changed and it still verifies: {changed}"
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut fields = Fields::new(data);
    let token = fields.lossy();
    let authorization = fields.bytes();
    let header = fields.lossy();
    let claims = fields.lossy();
    let after = (fields.number() % 4_000_000) as i64;
    let seed = fields.number();
    let now = ISSUED_AT + after;

    let tokens = tokens();
    check_token(&tokens, &token, now);
    check_bearer(&tokens, authorization, now);
    check_forged(&tokens, &header, &claims, now);
    check_issued(&tokens, &claims, after, seed);
});
