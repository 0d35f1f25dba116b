//! Interoperability with a third-party RFC 9421 implementation: the Python package
//! `http-message-signatures` signs and we verify, we sign and it verifies, for
//! `hmac-sha256` and `ed25519`.

mod common;

use std::io::Write as _;
use std::num::NonZeroUsize;
use std::process::{Command, Stdio};

use common::block_on;
use request_signing::rfc9421::{Message, MessagePolicy, MessageSigner, SigningKey};
use request_signing::{Error, MemoryReplayCache, Scheme, Secret, StaticSecretStore, Verifier};
use serde_json::{Value, json};

const PEER: &str = include_str!("data/rfc9421_peer.py");
const KEY_ID: &str = "svc-python";
/// A signing secret as `keys create --signing` shows it: its hex text is the secret.
const SECRET: &str = "6f1c0d2e9a8b7c6d5e4f30211203f4e5d6c7b8a9f0e1d2c3b4a5968778695a4b";
const SEED: [u8; 32] = [7; 32];
const URL: &str = "http://api.example:8080/check-prime?verbose=1";
const BODY: &str = r#"{"number": 172983479832623897492387592384682937659382477}"#;

/// Whether python3 with `http-message-signatures` and `requests` is here; under
/// `REQUIRE_SERVICES=1` its absence fails the test.
fn peer_available() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import http_message_signatures, requests"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        let install = "pip install http-message-signatures requests";
        assert!(
            !test_services::services_required(),
            "REQUIRE_SERVICES=1 but python3 lacks http-message-signatures: {install}"
        );
        eprintln!("skipped: python3 with http-message-signatures not found; {install}");
    }
    found
}

fn peer(mode: &str, job: &Value) -> Result<String, String> {
    let mut child = Command::new("python3")
        .args(["-c", PEER, mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(job.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap().trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn ed25519_public() -> [u8; 32] {
    SigningKey::ed25519_from_seed(&SEED)
        .ed25519_public_key()
        .unwrap()
}

fn verifier() -> Verifier<StaticSecretStore, MemoryReplayCache> {
    let store = StaticSecretStore::new()
        .with_secret(KEY_ID, Secret::from(SECRET))
        .with_ed25519_key(KEY_ID, ed25519_public());
    Verifier::new(
        store,
        MemoryReplayCache::new(NonZeroUsize::new(100).unwrap()),
    )
    .with_message_policy(MessagePolicy::default())
}

fn job(alg: &str, key: String) -> Value {
    json!({
        "alg": alg, "key_id": KEY_ID, "key": key, "method": "POST", "url": URL, "body": BODY,
        "nonce": "python-nonce-0001",
    })
}

/// The request as our server receives it: origin-form target, `Host`, the peer's headers.
fn verify_received(
    verifier: &Verifier<StaticSecretStore, MemoryReplayCache>,
    signed: &Value,
    body: &str,
) -> Result<request_signing::Verified, Error> {
    let mut headers: Vec<(String, Vec<u8>)> = vec![
        ("host".into(), b"api.example:8080".to_vec()),
        ("content-type".into(), b"application/json".to_vec()),
    ];
    for (name, value) in signed.as_object().unwrap() {
        headers.push((name.clone(), value.as_str().unwrap().as_bytes().to_vec()));
    }
    let refs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let message = Message::new("POST", "/check-prime?verbose=1", &refs, body.as_bytes()).unwrap();
    block_on(verifier.verify_message(&message))
}

#[test]
#[ignore = "needs python3 with http-message-signatures"]
fn python_signs_and_we_verify_refusing_replays_and_other_bodies() {
    if !peer_available() {
        return;
    }
    for (alg, key) in [
        ("hmac-sha256", hex::encode(SECRET)),
        ("ed25519", hex::encode(SEED)),
    ] {
        let signed: Value = serde_json::from_str(&peer("sign", &job(alg, key)).unwrap()).unwrap();
        assert!(signed["Content-Digest"].is_string(), "{signed}");
        let v = verifier();
        let ok = verify_received(&v, &signed, BODY).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(ok.scheme(), Scheme::Rfc9421);
        assert_eq!(ok.key_id(), KEY_ID);
        assert_eq!(ok.label(), Some("py"));
        assert!(matches!(
            verify_received(&v, &signed, BODY),
            Err(Error::Replayed)
        ));
        assert!(matches!(
            verify_received(&verifier(), &signed, r#"{"number": 7}"#),
            Err(Error::DigestMismatch)
        ));
    }
}

#[test]
#[ignore = "needs python3 with http-message-signatures"]
fn we_sign_and_python_verifies() {
    if !peer_available() {
        return;
    }
    let hmac = SigningKey::hmac_sha256(Secret::from(SECRET));
    let ed25519 = SigningKey::ed25519_from_seed(&SEED);
    for (alg, key, peer_key) in [
        ("hmac-sha256", hmac, hex::encode(SECRET)),
        ("ed25519", ed25519, hex::encode(ed25519_public())),
    ] {
        let signer = MessageSigner::builder(KEY_ID, key).build().unwrap();
        let headers: &[(&str, &[u8])] = &[("content-type", b"application/json")];
        let message = Message::new("POST", URL, headers, BODY.as_bytes()).unwrap();
        let signed = signer.sign(&message).unwrap();
        let fields: serde_json::Map<String, Value> = signed
            .iter()
            .map(|(n, v)| (n.to_owned(), Value::from(v)))
            .collect();
        let mut job = job(alg, peer_key);
        job["headers"] = Value::Object(fields.clone());
        assert_eq!(peer("verify", &job).as_deref(), Ok("sig1"), "{alg}");

        // The same headers on another body: the package refuses them too.
        job["body"] = Value::from(r#"{"number": 8}"#);
        assert!(peer("verify", &job).is_err(), "{alg}");
    }
}
