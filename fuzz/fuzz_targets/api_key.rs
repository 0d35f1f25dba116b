//! API keys: `apikey-gen`'s `presented_key`, as the server calls it on actix-web headers, and
//! its `KeyConfig::parse`.
//!
//! Input, one field per line: the `X-API-Key` value, the `Authorization` value (an empty line
//! is an absent header), a key prefix, a body length, a creation time (Unix seconds; 0 means
//! no time part), a mutation seed, and text that becomes the body of a hand-built key.
//!
//! Properties:
//! - `presented_key` never panics, refuses only with `MissingKey` or `MalformedHeader`, and
//!   returns exactly the key the headers carry (`X-API-Key` first; `Authorization: <key>` or
//!   `Bearer <key>`), trimmed, non-empty and at most `MAX_PRESENTED_LEN` bytes; the server's key
//!   format parses it without panicking;
//! - a key `KeyConfig` generates always parses, with its prefix and creation time, and so
//!   does a key built by hand from the documented format (CRC32 of the rest in 6 base62
//!   digits); `presented_key` finds it in each of the three header forms;
//! - the same key with any one character changed never parses (wrong prefix, length,
//!   character or checksum).
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use actix_web::http::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use apikey_gen::{CHECKSUM_LEN, Error, KeyConfig, KeySource, MAX_PRESENTED_LEN};
use libfuzzer_sys::fuzz_target;
use secure_api_fuzz::Fields;

/// The server's key prefix (`KEY_PREFIX` in `crates/server/src/keys.rs`).
const KEY_PREFIX: &str = "sapi";

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

fn base62_fixed(mut value: u64, width: usize) -> String {
    let mut digits = vec![b'0'; width];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(digits).expect("ASCII")
}

/// The key the headers present, read as the server reads actix-web's headers.
fn presented_key(headers: &HeaderMap) -> Result<(String, KeySource), Error> {
    let presented = apikey_gen::presented_key(|name| headers.get(name).map(HeaderValue::as_bytes))?;
    Ok((presented.expose_secret().to_owned(), presented.source()))
}

fn headers(pairs: &[(HeaderName, &[u8])]) -> Option<HeaderMap> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(name.clone(), HeaderValue::from_bytes(value).ok()?);
    }
    Some(map)
}

/// `presented_key` on fuzzed headers: the key it returns is the one the headers carry.
fn check_presented(x_api_key: &[u8], authorization: &[u8]) {
    let mut pairs = Vec::new();
    if !x_api_key.is_empty() {
        pairs.push((X_API_KEY, x_api_key));
    }
    if !authorization.is_empty() {
        pairs.push((AUTHORIZATION, authorization));
    }
    let Some(map) = headers(&pairs) else {
        return;
    };
    let (key, method) = match presented_key(&map) {
        Ok(found) => found,
        Err(Error::MissingKey | Error::MalformedHeader { .. }) => return,
        Err(other) => panic!("an unexpected refusal: {other:?}"),
    };
    assert!(!key.is_empty() && key.len() <= MAX_PRESENTED_LEN);
    assert_eq!(key.trim(), key);
    let text = |v: &[u8]| {
        std::str::from_utf8(v)
            .expect("accepted, so ASCII")
            .trim()
            .to_owned()
    };
    match method {
        KeySource::XApiKey => assert_eq!(key, text(x_api_key)),
        KeySource::RawAuthorization => {
            assert!(x_api_key.is_empty());
            assert_eq!(key, text(authorization));
            assert!(!key.contains([' ', '\t']));
        }
        KeySource::Bearer => {
            assert!(x_api_key.is_empty());
            let value = text(authorization);
            let (scheme, rest) = value.split_once([' ', '\t']).expect("a scheme and a key");
            assert!(scheme.eq_ignore_ascii_case("bearer"));
            assert_eq!(key, rest.trim());
        }
    }
    let server = KeyConfig::new(KEY_PREFIX)
        .expect("valid")
        .with_timestamp(true);
    let _ = server.parse(&key);
}

/// A valid key parses and is found in every header form; any one changed character fails.
fn check_valid_key(config: &KeyConfig, key: &str, created: Option<u64>, seed: u64) {
    let parsed = config
        .parse(key)
        .unwrap_or_else(|e| panic!("a well-formed key fails: {e}"));
    assert_eq!(parsed.prefix(), config.prefix());
    assert_eq!(parsed.expose_secret(), key);
    assert_eq!(key.len(), config.key_len());
    assert_eq!(
        parsed.created(),
        created.map(|s| UNIX_EPOCH + Duration::from_secs(s))
    );

    let forms: [(HeaderName, String, KeySource); 3] = [
        (X_API_KEY, key.to_owned(), KeySource::XApiKey),
        (AUTHORIZATION, key.to_owned(), KeySource::RawAuthorization),
        (AUTHORIZATION, format!("Bearer {key}"), KeySource::Bearer),
    ];
    for (name, value, method) in forms {
        let map = headers(&[(name, value.as_bytes())]).expect("a key is a valid header value");
        let found = presented_key(&map).expect("a valid key is presented");
        assert_eq!(found, (key.to_owned(), method));
    }

    let bytes = key.as_bytes();
    for k in 0..3u64 {
        let s = seed.rotate_left(21 * k as u32);
        let at = (s as usize) % bytes.len();
        let pool = b"0aZz9_-.+ A";
        let mut replacement = if s & 0x100 == 0 {
            BASE62[((s >> 9) % 62) as usize]
        } else {
            pool[((s >> 9) % pool.len() as u64) as usize]
        };
        if replacement == bytes[at] {
            replacement = if bytes[at] == b'0' { b'1' } else { b'0' };
        }
        let mut changed = bytes.to_vec();
        changed[at] = replacement;
        let changed = String::from_utf8(changed).expect("ASCII");
        assert!(
            config.parse(&changed).is_err(),
            "a key with byte {at} changed still parses"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let mut fields = Fields::new(data);
    let x_api_key = fields.bytes();
    let authorization = fields.bytes();
    check_presented(x_api_key, authorization);

    let prefix = fields.lossy();
    let body_len = fields.number() % 160;
    // Up to a little past the largest encodable time (62^6 - 1 s), so both sides are reached.
    let created = fields.number() % (62_u64.pow(6) + 100);
    let seed = fields.number();
    let body_text = fields.rest();

    let Ok(config) = KeyConfig::builder(&prefix)
        .body_len(body_len as usize)
        .timestamp(created != 0)
        .build()
    else {
        return;
    };
    let created = (created != 0).then_some(created);

    // Generated by the crate, from the OS random generator.
    let at = UNIX_EPOCH + Duration::from_secs(created.unwrap_or(1_700_000_000));
    if let Ok(generated) = config.generate_at(at) {
        check_valid_key(&config, generated.key().expose_secret(), created, seed);
    } else {
        assert!(
            created.is_some_and(|s| s >= 62_u64.pow(6)),
            "generation failed"
        );
    }

    // Built by hand from the documented format.
    if created.is_some_and(|s| s >= 62_u64.pow(6)) {
        return;
    }
    let mut key = format!("{prefix}_");
    if let Some(secs) = created {
        key.push_str(&base62_fixed(secs, 6));
    }
    for i in 0..body_len as usize {
        let b = body_text.get(i).copied().unwrap_or(i as u8);
        key.push(BASE62[usize::from(b) % 62] as char);
    }
    let crc = crc32fast::hash(key.as_bytes());
    key.push_str(&base62_fixed(u64::from(crc), CHECKSUM_LEN));
    check_valid_key(&config, &key, created, seed);
});
