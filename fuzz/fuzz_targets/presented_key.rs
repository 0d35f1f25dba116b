//! `apikey_gen::presented_key` on raw header bytes, as any framework may hand them over.
//!
//! Input, one field per line: the `X-API-Key` value and the `Authorization` value (an empty
//! field is an absent header), any bytes at all.
//!
//! Properties:
//! - it never panics, and refuses only with `MissingKey` or `MalformedHeader`;
//! - a key it returns is 1 to 256 bytes of visible ASCII with no space, and is exactly what
//!   the headers carry: `X-API-Key` when present, otherwise the raw `Authorization` value or the
//!   part after `Bearer` (any case), trimmed of spaces and tabs;
//! - a value over 256 bytes is never read as a key.
#![no_main]

use apikey_gen::{Error, KeySource, MAX_PRESENTED_LEN, presented_key};
use libfuzzer_sys::fuzz_target;
use secure_api_fuzz::Fields;

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = bytes.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(start), Some(end)) => &bytes[start..=end],
        _ => &[],
    }
}

fuzz_target!(|data: &[u8]| {
    let mut fields = Fields::new(data);
    let x_api_key = fields.bytes();
    let authorization = fields.bytes();
    let header = |name: &str| match name {
        "x-api-key" if !x_api_key.is_empty() => Some(x_api_key),
        "authorization" if !authorization.is_empty() => Some(authorization),
        _ => None,
    };
    let presented = match presented_key(header) {
        Ok(presented) => presented,
        Err(Error::MissingKey | Error::MalformedHeader { .. }) => return,
        Err(other) => panic!("an unexpected refusal: {other:?}"),
    };
    let key = presented.expose_secret().as_bytes();
    assert!(!key.is_empty() && key.len() <= MAX_PRESENTED_LEN);
    assert!(key.iter().all(u8::is_ascii_graphic), "{key:?}");
    match presented.source() {
        KeySource::XApiKey => {
            assert!(x_api_key.len() <= MAX_PRESENTED_LEN);
            assert_eq!(key, trim(x_api_key));
        }
        KeySource::RawAuthorization => {
            assert!(x_api_key.is_empty() && authorization.len() <= MAX_PRESENTED_LEN);
            assert_eq!(key, trim(authorization));
        }
        KeySource::Bearer => {
            assert!(x_api_key.is_empty() && authorization.len() <= MAX_PRESENTED_LEN);
            let value = trim(authorization);
            assert!(value[..6].eq_ignore_ascii_case(b"bearer"));
            assert!(matches!(value[6], b' ' | b'\t'));
            assert_eq!(key, trim(&value[7..]));
        }
    }
});
