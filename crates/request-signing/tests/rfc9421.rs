//! RFC 9421: the RFC's own examples byte for byte, and the verifier's policy, window, digest
//! and replay rules.

use std::num::NonZeroUsize;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use request_signing::rfc9421::{
    Message, MessagePolicy, MessageSigner, SigningKey, parse_signatures, signature_base,
};
use request_signing::{
    Error, FakeClock, MemoryReplayCache, Scheme, Secret, StaticSecretStore, Verifier,
};

const CREATED: u64 = 1_618_884_473;

fn data(name: &str) -> String {
    let path = format!("{}/tests/data/rfc9421/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The Appendix B.2 test request: method, target, header lines and body.
struct Raw {
    method: String,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Raw {
    fn b2() -> Self {
        let text = data("request-b2.http");
        let (head, body) = text.split_once("\n\n").unwrap();
        let mut lines = head.lines();
        let mut request_line = lines.next().unwrap().split(' ');
        let method = request_line.next().unwrap().to_owned();
        let target = request_line.next().unwrap().to_owned();
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(": ").unwrap();
                (name.to_owned(), value.as_bytes().to_vec())
            })
            .collect();
        Self {
            method,
            target,
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    /// The request with the `Signature-Input` and `Signature` lines of `fields` added.
    fn with_fields(mut self, fields: &str) -> Self {
        for line in fields.lines() {
            let (name, value) = line.split_once(": ").unwrap();
            self.headers
                .push((name.to_owned(), value.as_bytes().to_vec()));
        }
        self
    }

    fn header_refs(&self) -> Vec<(&str, &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect()
    }
}

fn shared_secret() -> Secret {
    Secret::new(
        STANDARD
            .decode(data("test-shared-secret.b64").trim())
            .unwrap(),
    )
}

/// The last 32 bytes of a PEM key's DER: the raw Ed25519 public key or private seed.
fn ed25519_raw(name: &str) -> [u8; 32] {
    let pem = data(name);
    let der = STANDARD.decode(pem.lines().nth(1).unwrap()).unwrap();
    der[der.len() - 32..].try_into().unwrap()
}

fn field<'a>(fields: &'a str, name: &str) -> &'a str {
    fields
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .unwrap()
}

fn verifier(
    store: StaticSecretStore,
    policy: MessagePolicy,
    now: u64,
) -> Verifier<StaticSecretStore, MemoryReplayCache, FakeClock> {
    Verifier::new(
        store,
        MemoryReplayCache::new(NonZeroUsize::new(1000).unwrap()),
    )
    .with_clock(FakeClock::at_unix_secs(now))
    .with_message_policy(policy)
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn b25_hmac_sha256_verifies_and_signs_byte_for_byte() {
    let fields = data("b25-fields.txt");
    let raw = Raw::b2().with_fields(&fields);
    let headers = raw.header_refs();
    let message = Message::new(&raw.method, &raw.target, &headers, &raw.body).unwrap();

    let params = parse_signatures(
        field(&fields, "Signature-Input").as_bytes(),
        field(&fields, "Signature").as_bytes(),
    )
    .unwrap()
    .remove(0);
    assert_eq!(
        signature_base(&message, &params).unwrap(),
        data("b25-base.txt").as_bytes()
    );

    let store = StaticSecretStore::new().with_secret("test-shared-secret", shared_secret());
    let v = verifier(store, MessagePolicy::permissive(), CREATED + 10);
    let verified = block_on(v.verify_message(&message)).unwrap();
    assert_eq!(verified.key_id(), "test-shared-secret");
    assert_eq!(verified.scheme(), Scheme::Rfc9421);
    assert_eq!(verified.label(), Some("sig-b25"));
    assert_eq!(verified.timestamp(), CREATED);
    // The same request again: a replay, kept by its signature bytes (it has no nonce).
    assert!(matches!(
        block_on(v.verify_message(&message)),
        Err(Error::Replayed)
    ));

    // Our signer makes the same two fields from the request without them.
    let unsigned = Raw::b2();
    let headers = unsigned.header_refs();
    let message = Message::new(&unsigned.method, &unsigned.target, &headers, &[]).unwrap();
    let signer = MessageSigner::builder(
        "test-shared-secret",
        SigningKey::hmac_sha256(shared_secret()),
    )
    .components(["date", "@authority", "content-type"])
    .label("sig-b25")
    .include_alg(false)
    .nonce(false)
    .build()
    .unwrap();
    let signed = signer.sign_with(&message, CREATED, None).unwrap();
    assert_eq!(signed.signature_input(), field(&fields, "Signature-Input"));
    assert_eq!(signed.signature(), field(&fields, "Signature"));
}

#[test]
fn b26_ed25519_verifies_and_signs_byte_for_byte() {
    let fields = data("b26-fields.txt");
    let raw = Raw::b2().with_fields(&fields);
    let headers = raw.header_refs();
    let message = Message::new(&raw.method, &raw.target, &headers, &raw.body).unwrap();
    let params = parse_signatures(
        field(&fields, "Signature-Input").as_bytes(),
        field(&fields, "Signature").as_bytes(),
    )
    .unwrap()
    .remove(0);
    assert_eq!(
        signature_base(&message, &params).unwrap(),
        data("b26-base.txt").as_bytes()
    );

    let public = ed25519_raw("test-key-ed25519.pem");
    let store = StaticSecretStore::new().with_ed25519_key("test-key-ed25519", public);
    let v = verifier(store, MessagePolicy::permissive(), CREATED);
    let verified = block_on(v.verify_message(&message)).unwrap();
    assert_eq!(verified.label(), Some("sig-b26"));

    let key = SigningKey::ed25519_from_seed(&ed25519_raw("test-key-ed25519.key"));
    assert_eq!(key.ed25519_public_key(), Some(public));
    let unsigned = Raw::b2();
    let headers = unsigned.header_refs();
    // The body is left out so that the signer adds no content-digest: B.2.6 covers none.
    let message = Message::new(&unsigned.method, &unsigned.target, &headers, &[]).unwrap();
    let signer = MessageSigner::builder("test-key-ed25519", key)
        .components([
            "date",
            "@method",
            "@path",
            "@authority",
            "content-type",
            "content-length",
        ])
        .label("sig-b26")
        .include_alg(false)
        .nonce(false)
        .build()
        .unwrap();
    let signed = signer.sign_with(&message, CREATED, None).unwrap();
    assert_eq!(signed.signature_input(), field(&fields, "Signature-Input"));
    assert_eq!(signed.signature(), field(&fields, "Signature"));
}

#[test]
fn a_tampered_rfc_example_is_refused() {
    let fields = data("b25-fields.txt");
    let mut raw = Raw::b2().with_fields(&fields);
    raw.headers[2].1 = b"text/plain".to_vec(); // Content-Type, which sig-b25 covers.
    let headers = raw.header_refs();
    let message = Message::new(&raw.method, &raw.target, &headers, &raw.body).unwrap();
    let store = StaticSecretStore::new().with_secret("test-shared-secret", shared_secret());
    let v = verifier(store, MessagePolicy::permissive(), CREATED);
    assert!(matches!(
        block_on(v.verify_message(&message)),
        Err(Error::BadSignature)
    ));
    // A body that is not the one Content-Digest names.
    let mut raw = Raw::b2().with_fields(&fields);
    raw.body = br#"{"hello": "moon!"}"#.to_vec();
    let headers = raw.header_refs();
    let message = Message::new(&raw.method, &raw.target, &headers, &raw.body).unwrap();
    assert!(matches!(
        block_on(v.verify_message(&message)),
        Err(Error::DigestMismatch)
    ));
}

/// A signed POST the way a client of ours sends it: the signer's defaults.
fn signed_post(
    signer: &MessageSigner<FakeClock>,
    body: &[u8],
) -> (Vec<(String, Vec<u8>)>, &'static str) {
    let target = "/check-prime?x=1";
    let base = vec![
        ("host".to_owned(), b"api.example".to_vec()),
        ("content-type".to_owned(), b"application/json".to_vec()),
    ];
    let refs: Vec<(&str, &[u8])> = base
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let message = Message::new("POST", target, &refs, body).unwrap();
    let signed = signer.sign(&message).unwrap();
    let mut headers = base.clone();
    headers.extend(
        signed
            .iter()
            .map(|(n, v)| (n.to_owned(), v.as_bytes().to_vec())),
    );
    (headers, target)
}

fn hmac_signer(clock: &FakeClock) -> MessageSigner<FakeClock> {
    MessageSigner::builder(
        "svc",
        SigningKey::hmac_sha256(Secret::from("svc-secret-0123456789")),
    )
    .clock(clock.clone())
    .build()
    .unwrap()
}

fn check(
    v: &Verifier<StaticSecretStore, MemoryReplayCache, FakeClock>,
    headers: &[(String, Vec<u8>)],
    target: &str,
    body: &[u8],
) -> Result<request_signing::Verified, Error> {
    let refs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let message = Message::new("POST", target, &refs, body).unwrap();
    block_on(v.verify_message(&message))
}

#[test]
fn the_default_policy_window_and_replay_cache() {
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let store = StaticSecretStore::new().with_secret("svc", Secret::from("svc-secret-0123456789"));
    let v = verifier(store, MessagePolicy::default(), 1_700_000_000).with_clock(clock.clone());
    let body = br#"{"number": 7}"#;
    let (headers, target) = signed_post(&hmac_signer(&clock), body);
    assert!(headers.iter().any(|(n, _)| n == "Content-Digest"));
    let ok = check(&v, &headers, target, body).unwrap();
    assert_eq!(ok.key_id(), "svc");
    assert!(matches!(
        check(&v, &headers, target, body),
        Err(Error::Replayed)
    ));

    // Another path under the same signature.
    let (headers, _) = signed_post(&hmac_signer(&clock), body);
    assert!(matches!(
        check(&v, &headers, "/check-prime?x=2", body),
        Err(Error::BadSignature)
    ));

    // Five minutes and one second later.
    let (headers, target) = signed_post(&hmac_signer(&clock), body);
    clock.advance(std::time::Duration::from_secs(301));
    assert!(matches!(
        check(&v, &headers, target, body),
        Err(Error::Expired { .. })
    ));
}

#[test]
fn signatures_that_cover_too_little_are_refused_naming_what_is_missing() {
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let store = StaticSecretStore::new().with_secret("svc", Secret::from("svc-secret-0123456789"));
    let v = verifier(store, MessagePolicy::default(), 1_700_000_000).with_clock(clock.clone());
    let body = br#"{"number": 7}"#;
    for (components, missing) in [
        (&["@authority", "@path", "@query"][..], "@method"),
        (&["@method", "@path"][..], "@target-uri"),
    ] {
        let signer = MessageSigner::builder(
            "svc",
            SigningKey::hmac_sha256(Secret::from("svc-secret-0123456789")),
        )
        .components(components.iter().copied())
        .clock(clock.clone())
        .build()
        .unwrap();
        let (headers, target) = signed_post(&signer, body);
        match check(&v, &headers, target, body) {
            Err(Error::CoverageTooNarrow { missing: m }) => assert!(m.starts_with(missing)),
            other => panic!("{components:?}: {other:?}"),
        }
    }
    // A body whose digest is not covered: the signature is made over a message without the
    // body, then sent with one.
    let signer = hmac_signer(&clock);
    let (headers, target) = signed_post(&signer, b"");
    match check(&v, &headers, target, body) {
        Err(Error::CoverageTooNarrow { missing }) => assert_eq!(missing, "content-digest"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn expires_is_honoured_and_several_labels_are_tried() {
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let store = StaticSecretStore::new().with_secret("svc", Secret::from("svc-secret-0123456789"));
    let v = verifier(store, MessagePolicy::default(), 0).with_clock(clock.clone());
    let short = MessageSigner::builder(
        "svc",
        SigningKey::hmac_sha256(Secret::from("svc-secret-0123456789")),
    )
    .expires_in_secs(10)
    .clock(clock.clone())
    .build()
    .unwrap();
    let (headers, target) = signed_post(&short, b"");
    clock.advance(std::time::Duration::from_secs(11));
    assert!(matches!(
        check(&v, &headers, target, b""),
        Err(Error::PastExpiry { secs_ago: 1 })
    ));

    // A proxy's signature under an unknown key first, ours second: ours verifies.
    let (mut headers, target) = signed_post(&hmac_signer(&clock), b"");
    let theirs = MessageSigner::builder("proxy", SigningKey::hmac_sha256(Secret::from("p")))
        .label("proxy")
        .clock(clock.clone())
        .build()
        .unwrap();
    let (proxy_headers, _) = signed_post(&theirs, b"");
    for name in ["Signature-Input", "Signature"] {
        let ours = headers.iter().position(|(n, _)| n == name).unwrap();
        let proxy = proxy_headers.iter().find(|(n, _)| n == name).unwrap();
        let mut joined = proxy.1.clone();
        joined.extend_from_slice(b", ");
        joined.extend_from_slice(&headers[ours].1);
        headers[ours].1 = joined;
    }
    let ok = check(&v, &headers, target, b"").unwrap();
    assert_eq!(ok.label(), Some("sig1"));
}

/// A message signed by two keys the server knows passes once: neither reordering its signatures
/// nor taking one out makes it new, and releasing it frees both records.
#[test]
fn a_message_with_two_valid_signatures_passes_once_in_any_form() {
    type Headers = Vec<(String, Vec<u8>)>;
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let store = StaticSecretStore::new()
        .with_secret("svc", Secret::from("svc-secret-0123456789"))
        .with_secret("proxy", Secret::from("proxy-secret-0123456789"));
    let v = verifier(store, MessagePolicy::default(), 0).with_clock(clock.clone());
    let proxy = MessageSigner::builder(
        "proxy",
        SigningKey::hmac_sha256(Secret::from("proxy-secret-0123456789")),
    )
    .label("proxy")
    .clock(clock.clone())
    .build()
    .unwrap();
    let (ours, target) = signed_post(&hmac_signer(&clock), b"");
    let (theirs, _) = signed_post(&proxy, b"");
    let field =
        |headers: &Headers, name: &str| headers.iter().find(|(n, _)| n == name).unwrap().1.clone();
    // Our request, with the signature fields of `first` and then those of `second`, if any.
    let joined = |first: &Headers, second: Option<&Headers>| {
        let mut headers = ours.clone();
        for (name, value) in &mut headers {
            if name == "Signature-Input" || name == "Signature" {
                let mut members = field(first, name);
                if let Some(second) = second {
                    members.extend_from_slice(b", ");
                    members.extend(field(second, name));
                }
                *value = members;
            }
        }
        headers
    };
    let accepted = check(&v, &joined(&theirs, Some(&ours)), target, b"").unwrap();
    assert_eq!(accepted.label(), Some("proxy"));
    for replay in [
        joined(&ours, Some(&theirs)),
        joined(&ours, None),
        joined(&theirs, None),
    ] {
        assert!(matches!(
            check(&v, &replay, target, b""),
            Err(Error::Replayed)
        ));
    }
    // Released (the caller refused it for a reason of its own): sent again, it passes.
    block_on(v.release(&accepted)).unwrap();
    let again = check(&v, &joined(&ours, None), target, b"").unwrap();
    assert_eq!(again.label(), Some("sig1"));
}

#[test]
fn unknown_keys_algorithms_and_missing_fields() {
    let clock = FakeClock::at_unix_secs(1_700_000_000);
    let v = verifier(
        StaticSecretStore::new(),
        MessagePolicy::default(),
        1_700_000_000,
    );
    let (headers, target) = signed_post(&hmac_signer(&clock), b"");
    assert!(matches!(
        check(&v, &headers, target, b""),
        Err(Error::UnknownKey)
    ));
    let unsigned: Vec<(String, Vec<u8>)> = vec![("host".into(), b"h".to_vec())];
    assert!(matches!(
        check(&v, &unsigned, "/", b""),
        Err(Error::MissingHeader { .. })
    ));
    let mut odd = headers.clone();
    for (name, value) in &mut odd {
        if name == "Signature-Input" {
            *value = String::from_utf8(value.clone())
                .unwrap()
                .replace("hmac-sha256", "rsa-v1_5-sha256")
                .into_bytes();
        }
    }
    assert!(matches!(
        check(&v, &odd, target, b""),
        Err(Error::UnsupportedAlgorithm)
    ));
}
