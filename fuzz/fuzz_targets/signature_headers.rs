//! `request-signing`: `SignatureHeaders` parsing and `Verifier::verify`, with a fixed secret
//! store, an in-memory replay cache and a fake clock.
//!
//! Input, one field per line: `X-API-Key`, `X-API-Timestamp`, `X-API-Nonce`,
//! `X-API-Signature` (an empty line is an absent header), method, request target, a mutation
//! seed; the rest of the input is the body.
//!
//! Properties:
//! - verifying the fuzzed headers never panics; when it succeeds, the signature is the one
//!   `Signer` (v1) or `sign_v0` computes for that key's secret, and a second try is `Replayed`;
//! - a request that `Signer` signs with the fuzzed method, target and body verifies, once;
//! - the same request with one byte of the body changed (or one byte added or removed), or one
//!   character of the signature changed (other than the letter case of a hex digit, which
//!   decodes to the same bytes), never verifies. (For a key in rotation, whose header carries
//!   one `v1=` value per secret, only the body changes are checked: either value is enough.)
#![no_main]

use std::num::NonZeroUsize;

use libfuzzer_sys::fuzz_target;
use request_signing::{
    Error, FakeClock, MemoryReplayCache, Request, Scheme, Secret, SignatureHeaders, Signer,
    StaticSecretStore, Verifier, sign_v0,
};
use secure_api_fuzz::{Fields, fnv1a, ready};

/// The verifier's clock: 100 s after the timestamp of the published vectors.
const NOW: u64 = 1_700_000_100;

/// Key ids and secrets the store knows: the published v1 and v0 vectors, and a key in rotation.
const KEYS: &[(&str, &[&str])] = &[
    ("svc-orders", &["s3cret-orders-0123456789abcdef"]),
    ("svc-weather", &["weather-secret"]),
    ("svc-rotating", &["old-secret", "new-secret"]),
    ("my-api-key", &["my-shared-secret"]),
];

type TestVerifier = Verifier<StaticSecretStore, MemoryReplayCache, FakeClock>;

fn verifier() -> TestVerifier {
    let mut store = StaticSecretStore::new();
    for (key, secrets) in KEYS {
        for secret in *secrets {
            store.insert(*key, Secret::from(*secret));
        }
    }
    let replay = MemoryReplayCache::new(NonZeroUsize::new(1024).expect("non-zero"));
    Verifier::new(store, replay).with_clock(FakeClock::at_unix_secs(NOW))
}

fn present(field: &[u8]) -> Option<&[u8]> {
    (!field.is_empty()).then_some(field)
}

/// The `v1=` values of a signature header, lower-cased.
fn v1_values(header: &str) -> Vec<String> {
    header
        .split(',')
        .filter_map(|e| e.trim_matches([' ', '\t']).strip_prefix("v1="))
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Verifies what the input says; a success must be a signature the key's secret makes.
fn fuzzed_headers(
    headers: &SignatureHeaders<'_>,
    request: &Request<'_>,
    parts: (&str, &str, &[u8]),
) {
    let verifier = verifier();
    let Ok(verified) = ready(verifier.verify(headers, request)) else {
        return;
    };
    let key = std::str::from_utf8(headers.key.expect("verified")).expect("verified");
    let signature = std::str::from_utf8(headers.signature.expect("verified")).expect("verified");
    let (_, secrets) = KEYS.iter().find(|(k, _)| *k == key).expect("a known key");
    let secret = Secret::from(secrets[verified.secret_index()]);
    assert_eq!(verified.key_id(), key);
    match verified.scheme() {
        Scheme::V0 => {
            let expected = sign_v0(key, &secret, verified.timestamp()).expect("a valid key id");
            assert_eq!(signature.to_ascii_lowercase(), expected.signature());
        }
        Scheme::V1 => {
            let nonce = std::str::from_utf8(headers.nonce.expect("v1 has a nonce")).expect("ASCII");
            let (method, target, body) = parts;
            let expected = Signer::new(key, secret)
                .expect("a valid key id")
                .sign_with(method, target, body, verified.timestamp(), nonce)
                .expect("a request that verified can be signed");
            let expected = expected.signature().to_ascii_lowercase();
            assert!(
                v1_values(signature)
                    .iter()
                    .any(|v| format!("v1={v}") == expected)
            );
        }
        Scheme::Rfc9421 => unreachable!("`verify` reads the X-API-* headers only"),
    }
    assert!(matches!(
        ready(verifier.verify(headers, request)),
        Err(Error::Replayed)
    ));
}

/// A different character for position `i` of a signature: never the same hex digit in
/// another letter case.
fn other_char(c: u8, seed: u64) -> u8 {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let candidate = if c.is_ascii_hexdigit() {
        let value = (c as char).to_digit(16).expect("hex") as u64;
        HEX[((value + 1 + seed % 15) % 16) as usize]
    } else {
        b"0aZ=, ,v1"[(seed % 9) as usize]
    };
    if candidate == c { b'g' } else { candidate }
}

/// Signs a request the way a client does, then checks it verifies and its tampered copies do not.
fn signed_round_trip(method: &str, target: &str, body: &[u8], seed: u64) {
    let key = KEYS[(seed % 3) as usize].0;
    let (_, secrets) = KEYS.iter().find(|(k, _)| *k == key).expect("known");
    let mut signer = Signer::new(key, Secret::from(secrets[0])).expect("a valid key id");
    for extra in &secrets[1..] {
        signer = signer.with_rotation_secret(Secret::from(*extra));
    }
    let nonce = format!("{:016x}{:016x}", seed, fnv1a(body));
    let timestamp = NOW - seed % 300;
    let Ok(signed) = signer.sign_with(method, target, body, timestamp, &nonce) else {
        // The signer refuses a method or target it cannot canonicalize; so does the verifier.
        let headers = SignatureHeaders {
            key: Some(key.as_bytes()),
            timestamp: Some(b"1700000000"),
            nonce: Some(nonce.as_bytes()),
            signature: Some(b"v1=0000000000000000000000000000000000000000000000000000000000000000"),
        };
        let result = ready(verifier().verify(&headers, &Request::new(method, target, body)));
        assert!(
            matches!(result, Err(Error::InvalidRequest { .. })),
            "{result:?}"
        );
        return;
    };
    let verifier = verifier();
    let request = Request::new(method, target, body);
    let headers = SignatureHeaders::from_signed(&signed);

    // Tampered bodies: one byte changed, one byte added, one byte removed.
    let mut bodies = Vec::new();
    if !body.is_empty() {
        let at = (seed as usize / 7) % body.len();
        let mut changed = body.to_vec();
        changed[at] ^= 1 << (seed % 8);
        bodies.push(changed);
        bodies.push(body[..body.len() - 1].to_vec());
    }
    let mut longer = body.to_vec();
    longer.push(seed as u8);
    bodies.push(longer);
    for tampered in &bodies {
        let result = ready(verifier.verify(&headers, &Request::new(method, target, tampered)));
        assert!(
            matches!(result, Err(Error::BadSignature)),
            "tampered body: {result:?}"
        );
    }

    // Tampered signatures: a few positions, each with another character. Not for the key in
    // rotation: its header carries one value per secret, and either one is enough by design.
    let signature = signed.signature().as_bytes();
    let rounds = if secrets.len() == 1 { 4 } else { 0 };
    for k in 0..rounds {
        let s = seed.rotate_left(16 * k as u32);
        let at = (s as usize) % signature.len();
        let mut changed = signature.to_vec();
        changed[at] = other_char(signature[at], s >> 8);
        let tampered = SignatureHeaders {
            signature: Some(&changed),
            ..headers
        };
        let result = ready(verifier.verify(&tampered, &request));
        assert!(
            result.is_err(),
            "signature changed at {at}: {:?} verified",
            String::from_utf8_lossy(&changed)
        );
    }

    let verified = ready(verifier.verify(&headers, &request)).expect("a signed request verifies");
    assert_eq!(verified.key_id(), key);
    assert_eq!(verified.scheme(), Scheme::V1);
    assert_eq!(verified.timestamp(), timestamp);
    assert_eq!(verified.secret_index(), 0);
    assert!(matches!(
        ready(verifier.verify(&headers, &request)),
        Err(Error::Replayed)
    ));
}

fuzz_target!(|data: &[u8]| {
    let mut fields = Fields::new(data);
    let key = fields.bytes();
    let timestamp = fields.bytes();
    let nonce = fields.bytes();
    let signature = fields.bytes();
    let method = fields.lossy();
    let target = fields.lossy();
    let seed = fields.number();
    let body = fields.rest();

    let headers = SignatureHeaders {
        key: present(key),
        timestamp: present(timestamp),
        nonce: present(nonce),
        signature: present(signature),
    };
    let request = Request::new(&method, &target, body);
    fuzzed_headers(&headers, &request, (&method, &target, body));
    signed_round_trip(&method, &target, body, seed);
});
