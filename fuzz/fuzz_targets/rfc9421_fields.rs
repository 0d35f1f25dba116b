//! `request-signing`'s RFC 9421 fields: `parse_signatures` (`Signature-Input` and
//! `Signature`), `verify_content_digest`, and `Verifier::verify_message` with a fixed store,
//! an in-memory replay cache and a fake clock.
//!
//! Input, one field per line: `Signature-Input`, `Signature`, `Content-Digest` (an empty line
//! is an absent field), method, request target, a mutation seed; the rest of the input is the
//! body.
//!
//! Properties:
//! - parsing never panics; what it accepts holds at most 8 signatures, each of at most 32
//!   distinct components, and each signature's serialized parameters parse back to the same
//!   signature;
//! - a `Content-Digest` this crate computes for the body (`sha-256` or `sha-512`) matches it,
//!   and never matches the body with one byte changed, added or removed;
//! - verifying the fuzzed fields never panics; when it succeeds, a second try is `Replayed`;
//! - a request that `MessageSigner` signs with the fuzzed method, target and body verifies,
//!   once; with one byte of the body changed it fails the digest, and with another method or
//!   one bit of the signature changed it never verifies.
#![no_main]

use std::num::NonZeroUsize;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use request_signing::rfc9421::{
    DigestAlgorithm, Message, MessageSigner, SigningKey, content_digest, parse_signatures,
    verify_content_digest,
};
use request_signing::{
    Error, FakeClock, MemoryReplayCache, Scheme, Secret, StaticSecretStore, Verifier,
};
use secure_api_fuzz::{Fields, ready};

/// The verifier's clock.
const NOW: u64 = 1_700_000_100;

/// Key ids and secrets the store knows: one key, and one in rotation.
const KEYS: &[(&str, &[&str])] = &[
    ("svc-orders", &["s3cret-orders-0123456789abcdef"]),
    ("svc-rotating", &["old-secret", "new-secret"]),
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

/// What the parser accepts is bounded and survives its own serialization.
fn parsed(input: &[u8], signature: &[u8]) {
    let Ok(signatures) = parse_signatures(input, signature) else {
        return;
    };
    assert!(!signatures.is_empty() && signatures.len() <= 8);
    for params in &signatures {
        let components = params.components();
        assert!(components.len() <= 32);
        for (i, c) in components.iter().enumerate() {
            assert!(!components[..i].contains(c), "{c} twice");
        }
        let again = parse_signatures(
            format!("{}={}", params.label(), params.serialized()).as_bytes(),
            format!(
                "{}=:{}:",
                params.label(),
                STANDARD.encode(params.signature())
            )
            .as_bytes(),
        )
        .expect("a signature's own serialization parses");
        assert_eq!(again.as_slice(), std::slice::from_ref(params));
    }
}

/// Computed digests match their body and no other.
fn digests(body: &[u8], seed: u64) {
    for algorithm in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
        let value = content_digest(body, algorithm);
        verify_content_digest(value.as_bytes(), body).expect("its own body");
        let mut longer = body.to_vec();
        longer.push(seed as u8);
        assert!(verify_content_digest(value.as_bytes(), &longer).is_err());
        if !body.is_empty() {
            let mut changed = body.to_vec();
            let at = (seed as usize / 7) % body.len();
            changed[at] ^= 1 << (seed % 8);
            assert!(verify_content_digest(value.as_bytes(), &changed).is_err());
            assert!(verify_content_digest(value.as_bytes(), &body[..body.len() - 1]).is_err());
        }
    }
}

/// Verifies the fuzzed fields; a success is never accepted twice.
fn fuzzed_fields(message: &Message<'_>) {
    let verifier = verifier();
    if ready(verifier.verify_message(message)).is_ok() {
        assert!(matches!(
            ready(verifier.verify_message(message)),
            Err(Error::Replayed)
        ));
    }
}

/// Signs a request as a client does, then checks it verifies once and its tampered copies
/// do not.
fn signed_round_trip(method: &str, target: &str, body: &[u8], seed: u64) {
    let (key, secrets) = KEYS[(seed % 2) as usize];
    let digest = if seed & 4 == 0 {
        DigestAlgorithm::Sha256
    } else {
        DigestAlgorithm::Sha512
    };
    let signer = MessageSigner::builder(key, SigningKey::hmac_sha256(Secret::from(secrets[0])))
        .content_digest(digest)
        .clock(FakeClock::at_unix_secs(NOW - seed % 300))
        .build()
        .expect("the default components");
    let host: &[(&str, &[u8])] = &[("Host", b"api.example.com")];
    let Ok(unsigned) = Message::new(method, target, host, body) else {
        return;
    };
    let nonce = format!("{seed:016x}");
    let signed = signer
        .sign_with(&unsigned, NOW - seed % 300, Some(&nonce))
        .expect("a message that parsed can be signed");
    let mut headers: Vec<(&str, &[u8])> = host.to_vec();
    headers.extend(signed.iter().map(|(name, value)| (name, value.as_bytes())));
    let verifier = verifier();
    let with = |method, headers, body| Message::new(method, target, headers, body).expect("parsed");

    let mut changed = body.to_vec();
    if body.is_empty() {
        changed.push(seed as u8);
    } else {
        let at = (seed as usize / 7) % body.len();
        changed[at] ^= 1 << (seed % 8);
    }
    let result = ready(verifier.verify_message(&with(method, &headers, &changed)));
    assert!(
        matches!(
            result,
            Err(Error::DigestMismatch | Error::CoverageTooNarrow { .. })
        ),
        "tampered body: {result:?}"
    );

    let other = if method == "GET" { "PUT" } else { "GET" };
    let result = ready(verifier.verify_message(&with(other, &headers, body)));
    assert!(
        matches!(result, Err(Error::BadSignature)),
        "other method: {result:?}"
    );

    // One bit of the signature's bytes flipped. (A change to the last base64 character's
    // padding bits alone decodes to the same bytes, as RFC 8941 lets it, so it is the same
    // signature and not a tampered one.)
    let (label, encoded) = signed.signature().split_once('=').expect("label=:base64:");
    let mut bytes = STANDARD
        .decode(encoded.trim_matches(':'))
        .expect("the signer's base64");
    let at = (seed as usize >> 3) % bytes.len();
    bytes[at] ^= 1 << (seed % 8);
    let tampered = format!("{label}=:{}:", STANDARD.encode(&bytes)).into_bytes();
    let mut tampered_headers = headers.clone();
    for (name, value) in &mut tampered_headers {
        if *name == "Signature" {
            *value = &tampered;
        }
    }
    let result = ready(verifier.verify_message(&with(method, &tampered_headers, body)));
    assert!(
        result.is_err(),
        "signature changed at {at}: {:?} verified",
        String::from_utf8_lossy(&tampered)
    );

    let verified = ready(verifier.verify_message(&with(method, &headers, body)))
        .expect("a signed request verifies");
    assert_eq!(verified.key_id(), key);
    assert_eq!(verified.scheme(), Scheme::Rfc9421);
    assert_eq!(verified.label(), Some("sig1"));
    assert!(matches!(
        ready(verifier.verify_message(&with(method, &headers, body))),
        Err(Error::Replayed)
    ));
}

fuzz_target!(|data: &[u8]| {
    let mut fields = Fields::new(data);
    let input = fields.bytes();
    let signature = fields.bytes();
    let digest = fields.bytes();
    let method = fields.lossy();
    let target = fields.lossy();
    let seed = fields.number();
    let body = fields.rest();

    parsed(input, signature);
    digests(body, seed);

    let mut headers: Vec<(&str, &[u8])> = vec![("Host", b"api.example.com")];
    for (name, value) in [
        ("Signature-Input", input),
        ("Signature", signature),
        ("Content-Digest", digest),
    ] {
        if !value.is_empty() {
            headers.push((name, value));
        }
    }
    if let Ok(message) = Message::new(&method, &target, &headers, body) {
        fuzzed_fields(&message);
    }
    signed_round_trip(&method, &target, body, seed);
});
