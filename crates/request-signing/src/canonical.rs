//! Canonical forms of the signed parts and the strings that get signed.
//!
//! The exact rules are documented in the crate README ("The v1 canonical string").

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// Longest accepted `X-API-Key` value, in bytes.
pub const MAX_KEY_ID_LEN: usize = 256;
/// Shortest accepted `X-API-Nonce` value, in characters.
pub const MIN_NONCE_LEN: usize = 16;
/// Longest accepted `X-API-Nonce` value, in characters.
pub const MAX_NONCE_LEN: usize = 128;
/// Longest accepted `X-API-Timestamp` value, in digits.
pub const MAX_TIMESTAMP_LEN: usize = 16;
/// Longest accepted `X-API-Signature` value, in bytes.
pub const MAX_SIGNATURE_HEADER_LEN: usize = 1024;
/// Most `v1=` values accepted in one `X-API-Signature` header.
pub const MAX_SIGNATURES: usize = 8;
/// Longest accepted HTTP method, in bytes.
pub const MAX_METHOD_LEN: usize = 32;

/// The path and the query (without `?`) of a request target, fragment dropped.
///
/// Accepts origin form (`/path?query`) and absolute URLs (`https://host:port/path?query`).
pub(crate) fn split_target(target: &str) -> Result<(&str, &str)> {
    let target = target.split_once('#').map_or(target, |(t, _)| t);
    let rest = if target.starts_with('/') {
        target
    } else if let Some((scheme, after)) = target.split_once("://") {
        let valid_scheme = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !valid_scheme {
            return Err(invalid("path", "URL scheme is not valid"));
        }
        let start = after.find(['/', '?']).unwrap_or(after.len());
        &after[start..]
    } else {
        return Err(invalid("path", "must start with '/' or be an absolute URL"));
    };
    Ok(rest.split_once('?').unwrap_or((rest, "")))
}

/// The method in upper case; it must be an HTTP token of at most [`MAX_METHOD_LEN`] bytes.
pub(crate) fn canonical_method(method: &str) -> Result<String> {
    if method.is_empty() || method.len() > MAX_METHOD_LEN {
        return Err(invalid("method", "must be 1 to 32 bytes"));
    }
    if !method.bytes().all(is_tchar) {
        return Err(invalid("method", "must be an HTTP token"));
    }
    Ok(method.to_ascii_uppercase())
}

/// The path with every segment percent-decoded and re-encoded (unreserved characters literal,
/// every other byte `%XX` in upper case). `/` separates segments; `%2F` stays inside a segment.
pub(crate) fn canonical_path(path: &str) -> Result<String> {
    if path.is_empty() {
        return Ok("/".to_owned());
    }
    if !path.starts_with('/') {
        return Err(invalid("path", "must start with '/'"));
    }
    let mut out = String::with_capacity(path.len() + 8);
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let bytes = percent_decode(segment.as_bytes(), false)
            .ok_or_else(|| invalid("path", "'%' must be followed by two hexadecimal digits"))?;
        encode_into(&bytes, &mut out);
    }
    Ok(out)
}

/// The query decoded (`+` is a space), its `name=value` pairs sorted by name then value
/// (bytewise), re-encoded like path segments and joined with `&`. Empty pairs are dropped;
/// a pair without `=` has an empty value.
pub(crate) fn canonical_query(query: &str) -> Result<String> {
    let mut pairs = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_decode(s.as_bytes(), true)
                .ok_or_else(|| invalid("query", "'%' must be followed by two hexadecimal digits"))
        };
        pairs.push((decode(name)?, decode(value)?));
    }
    pairs.sort_unstable();
    let mut out = String::with_capacity(query.len() + 8);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_into(name, &mut out);
        out.push('=');
        encode_into(value, &mut out);
    }
    Ok(out)
}

/// Lower-case hex SHA-256 of `body`.
#[must_use]
pub fn body_sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Checks a key id: 1 to [`MAX_KEY_ID_LEN`] visible ASCII characters (`!` to `~`).
pub(crate) fn check_key_id(key_id: &[u8]) -> core::result::Result<(), &'static str> {
    if key_id.is_empty() || key_id.len() > MAX_KEY_ID_LEN {
        return Err("must be 1 to 256 bytes");
    }
    if !key_id.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err("must be visible ASCII");
    }
    Ok(())
}

/// Checks a nonce: [`MIN_NONCE_LEN`] to [`MAX_NONCE_LEN`] characters of `A-Z a-z 0-9 - _`.
pub(crate) fn check_nonce(nonce: &[u8]) -> core::result::Result<(), &'static str> {
    if nonce.len() < MIN_NONCE_LEN || nonce.len() > MAX_NONCE_LEN {
        return Err("must be 16 to 128 characters");
    }
    if !nonce
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    {
        return Err("must use only A-Z a-z 0-9 - _");
    }
    Ok(())
}

/// Parses a timestamp: decimal Unix seconds, no sign, no leading zero, at most 16 digits.
pub(crate) fn parse_timestamp(ts: &[u8]) -> core::result::Result<u64, &'static str> {
    if ts.is_empty() || ts.len() > MAX_TIMESTAMP_LEN {
        return Err("must be 1 to 16 decimal digits");
    }
    if !ts.iter().all(u8::is_ascii_digit) {
        return Err("must be decimal digits only");
    }
    if ts.len() > 1 && ts[0] == b'0' {
        return Err("must not have a leading zero");
    }
    Ok(ts
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')))
}

/// The v1 canonical string for already-validated header values.
///
/// Layout (fields joined with `\n`, no trailing newline):
/// `v1`, timestamp, nonce, method (upper case), canonical path, canonical query,
/// hex SHA-256 of the body, key id.
///
/// # Errors
/// [`Error::InvalidRequest`] when the method, path, query, key id or nonce is not valid.
pub fn canonical_string_v1(
    key_id: &str,
    timestamp: u64,
    nonce: &str,
    method: &str,
    target: &str,
    body: &[u8],
) -> Result<String> {
    check_key_id(key_id.as_bytes()).map_err(|reason| invalid("key id", reason))?;
    check_nonce(nonce.as_bytes()).map_err(|reason| invalid("nonce", reason))?;
    let (path, query) = split_target(target)?;
    Ok(canonical_v1_parts(
        key_id,
        timestamp,
        nonce,
        &canonical_method(method)?,
        &canonical_path(path)?,
        &canonical_query(query)?,
        &body_sha256_hex(body),
    ))
}

pub(crate) fn canonical_v1_parts(
    key_id: &str,
    timestamp: u64,
    nonce: &str,
    method: &str,
    path: &str,
    query: &str,
    body_hash: &str,
) -> String {
    format!("v1\n{timestamp}\n{nonce}\n{method}\n{path}\n{query}\n{body_hash}\n{key_id}")
}

/// HMAC-SHA256 of `message` under `secret`.
pub(crate) fn hmac_sha256(secret: &Secret, message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(secret.expose_secret())
        .expect("HMAC-SHA256 accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The v0 message: the key id followed directly by the timestamp digits.
pub(crate) fn v0_message(key_id: &str, timestamp: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(key_id.len() + timestamp.len());
    m.extend_from_slice(key_id.as_bytes());
    m.extend_from_slice(timestamp.as_bytes());
    m
}

fn invalid(part: &'static str, reason: &'static str) -> Error {
    Error::InvalidRequest { part, reason }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 3986 unreserved: the only bytes written literally in canonical paths and queries.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn encode_into(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// Strict percent-decoding: `None` when a `%` is not followed by two hex digits.
fn percent_decode(input: &[u8], plus_is_space: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' => {
                let hi = hex_val(*input.get(i + 1)?)?;
                let lo = hex_val(*input.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_origin_and_absolute_targets() {
        assert_eq!(split_target("/a/b?x=1#frag").unwrap(), ("/a/b", "x=1"));
        assert_eq!(split_target("https://h:8080/a?x").unwrap(), ("/a", "x"));
        assert_eq!(split_target("http://h").unwrap(), ("", ""));
        assert_eq!(split_target("http://h?q=1").unwrap(), ("", "q=1"));
        assert!(split_target("a/b").is_err());
        assert!(split_target("1http://h/").is_err());
    }

    #[test]
    fn method_is_upper_cased_and_checked() {
        assert_eq!(canonical_method("post").unwrap(), "POST");
        assert!(canonical_method("").is_err());
        assert!(canonical_method("GE T").is_err());
        assert!(canonical_method(&"A".repeat(33)).is_err());
    }

    #[test]
    fn path_encoding_is_normalized() {
        assert_eq!(canonical_path("").unwrap(), "/");
        assert_eq!(canonical_path("/a%7eb/c d").unwrap(), "/a~b/c%20d");
        assert_eq!(canonical_path("/%41%2fb").unwrap(), "/A%2Fb");
        assert_ne!(
            canonical_path("/a%2Fb").unwrap(),
            canonical_path("/a/b").unwrap()
        );
        assert_eq!(canonical_path("/caf\u{e9}+x").unwrap(), "/caf%C3%A9%2Bx");
        assert!(canonical_path("/a%zz").is_err());
        assert!(canonical_path("/a%4").is_err());
        assert!(canonical_path("a").is_err());
    }

    #[test]
    fn query_is_decoded_sorted_and_reencoded() {
        assert_eq!(canonical_query("b=2&a=1&a=0").unwrap(), "a=0&a=1&b=2");
        assert_eq!(canonical_query("q=a+b&&r").unwrap(), "q=a%20b&r=");
        assert_eq!(canonical_query("q=a%2Bb").unwrap(), "q=a%2Bb");
        assert_eq!(canonical_query("").unwrap(), "");
        assert_eq!(
            canonical_query("x=%7e&y=%e2%82%ac").unwrap(),
            "x=~&y=%E2%82%AC"
        );
        assert!(canonical_query("x=%g0").is_err());
    }

    #[test]
    fn header_value_rules() {
        assert!(check_key_id(b"svc-1").is_ok());
        assert!(check_key_id(b"").is_err());
        assert!(check_key_id(b"a b").is_err());
        assert!(check_key_id(&[b'k'; 257]).is_err());
        assert!(check_nonce(b"0123456789abcdef").is_ok());
        assert!(check_nonce(b"0123456789abcde").is_err());
        assert!(check_nonce(b"0123456789abcdef!").is_err());
        assert_eq!(parse_timestamp(b"1700000000"), Ok(1_700_000_000));
        assert_eq!(parse_timestamp(b"0"), Ok(0));
        assert!(parse_timestamp(b"01").is_err());
        assert!(parse_timestamp(b"-1").is_err());
        assert!(parse_timestamp(b"12345678901234567").is_err());
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(&Secret::from("Jefe"), b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
