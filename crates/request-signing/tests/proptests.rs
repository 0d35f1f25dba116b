//! Laws: a signature verifies iff nothing signed changed; each request is accepted once;
//! the time window is exact at both boundaries.

mod common;

use common::{block_on, verifier};
use proptest::prelude::*;
use proptest::sample::Index;
use request_signing::{
    Error, FakeClock, Request, Secret, SignatureHeaders, SignedHeaders, Signer, VerifierConfig,
};

const NOW: u64 = 1_700_000_000;
const UNRESERVED: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
const NONCE_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#[derive(Debug, Clone)]
struct Case {
    method: String,
    path: String,
    query: String,
    body: Vec<u8>,
    nonce: String,
}

impl Case {
    fn target(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }
}

fn case() -> impl Strategy<Value = Case> {
    (
        "[A-Za-z]{1,10}",
        prop::collection::vec("[A-Za-z0-9._~-]{1,8}", 0..5),
        prop::collection::vec(("[a-z0-9]{1,6}", "[A-Za-z0-9._~-]{1,8}"), 0..4),
        prop::collection::vec(any::<u8>(), 0..300),
        "[A-Za-z0-9_-]{16,40}",
    )
        .prop_map(|(method, segments, pairs, body, nonce)| Case {
            method,
            path: format!("/{}", segments.join("/")),
            query: pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&"),
            body,
            nonce,
        })
}

fn sign(case: &Case) -> SignedHeaders {
    Signer::new("svc", Secret::from("prop-secret"))
        .unwrap()
        .with_clock(FakeClock::at_unix_secs(NOW))
        .sign_with(&case.method, &case.target(), &case.body, NOW, &case.nonce)
        .unwrap()
}

fn verify(
    headers: &SignatureHeaders<'_>,
    method: &str,
    target: &str,
    body: &[u8],
) -> request_signing::Result<()> {
    let (v, _) = verifier("svc", "prop-secret", NOW);
    block_on(v.verify(headers, &Request::new(method, target, body))).map(|_| ())
}

/// `s` with the byte at `at` replaced by a different byte from `alphabet`.
fn change_byte(s: &str, at: Index, pick: Index, alphabet: &[u8]) -> String {
    let mut bytes = s.as_bytes().to_vec();
    let i = at.index(bytes.len());
    let choices: Vec<u8> = alphabet
        .iter()
        .copied()
        .filter(|&b| b != bytes[i])
        .collect();
    bytes[i] = choices[pick.index(choices.len())];
    String::from_utf8(bytes).unwrap()
}

/// Percent-encodes every byte, in upper or lower case hex as `cases` says, unreserved ones
/// sometimes left literal.
fn encode_variously(bytes: &[u8], choices: &[u8]) -> String {
    let mut out = String::new();
    for (i, &b) in bytes.iter().enumerate() {
        let c = choices.get(i).copied().unwrap_or(0);
        if UNRESERVED.contains(&b) && c % 3 == 0 {
            out.push(char::from(b));
        } else if c % 2 == 0 {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

proptest! {
    #[test]
    fn sign_then_verify_passes(c in case()) {
        let h = sign(&c);
        prop_assert!(verify(&SignatureHeaders::from_signed(&h), &c.method, &c.target(), &c.body).is_ok());
    }

    #[test]
    fn a_replay_fails(c in case()) {
        let h = sign(&c);
        let (v, _) = verifier("svc", "prop-secret", NOW);
        let target = c.target();
        let req = Request::new(&c.method, &target, &c.body);
        prop_assert!(block_on(v.verify(&SignatureHeaders::from_signed(&h), &req)).is_ok());
        prop_assert!(matches!(block_on(v.verify(&SignatureHeaders::from_signed(&h), &req)), Err(Error::Replayed)), "unexpected result");
    }

    #[test]
    fn changed_body_byte_fails(c in case(), at: Index, delta in 1u8..=255) {
        prop_assume!(!c.body.is_empty());
        let h = sign(&c);
        let mut body = c.body.clone();
        let i = at.index(body.len());
        body[i] = body[i].wrapping_add(delta);
        prop_assert!(matches!(verify(&SignatureHeaders::from_signed(&h), &c.method, &c.target(), &body), Err(Error::BadSignature)), "unexpected result");
    }

    #[test]
    fn changed_method_byte_fails(c in case(), at: Index, pick: Index) {
        let h = sign(&c);
        let upper = c.method.to_ascii_uppercase();
        let changed = change_byte(&upper, at, pick, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ");
        prop_assert!(matches!(verify(&SignatureHeaders::from_signed(&h), &changed, &c.target(), &c.body), Err(Error::BadSignature)), "unexpected result");
    }

    #[test]
    fn changed_target_byte_fails(c in case(), at: Index, pick: Index) {
        let h = sign(&c);
        let target = c.target();
        prop_assume!(target.len() > 1);
        // Any byte after the leading '/' (path, '?', '=', '&', query) becomes another unreserved one.
        let changed = format!("/{}", change_byte(&target[1..], at, pick, UNRESERVED));
        prop_assert!(verify(&SignatureHeaders::from_signed(&h), &c.method, &changed, &c.body).is_err());
    }

    #[test]
    fn changed_nonce_byte_fails(c in case(), at: Index, pick: Index) {
        let h = sign(&c);
        let nonce = change_byte(h.nonce().unwrap(), at, pick, NONCE_CHARS);
        let sig = SignatureHeaders { nonce: Some(nonce.as_bytes()), ..SignatureHeaders::from_signed(&h) };
        prop_assert!(matches!(verify(&sig, &c.method, &c.target(), &c.body), Err(Error::BadSignature)), "unexpected result");
    }

    #[test]
    fn changed_timestamp_byte_fails(c in case(), at: Index, pick: Index) {
        let h = sign(&c);
        let ts = change_byte(h.timestamp(), at, pick, b"0123456789");
        let sig = SignatureHeaders { timestamp: Some(ts.as_bytes()), ..SignatureHeaders::from_signed(&h) };
        let (v, _) = verifier("svc", "prop-secret", NOW);
        let wide = v.with_config(VerifierConfig::new().max_age_secs(u64::MAX).max_future_skew_secs(u64::MAX));
        let target = c.target();
        let r = block_on(wide.verify(&sig, &Request::new(&c.method, &target, &c.body)));
        prop_assert!(r.is_err());
    }

    #[test]
    fn changed_signature_digit_fails(c in case(), at: Index, pick: Index) {
        let h = sign(&c);
        let hexdigits = &h.signature()[3..];
        let changed = format!("v1={}", change_byte(hexdigits, at, pick, b"0123456789abcdef"));
        let sig = SignatureHeaders { signature: Some(changed.as_bytes()), ..SignatureHeaders::from_signed(&h) };
        prop_assert!(matches!(verify(&sig, &c.method, &c.target(), &c.body), Err(Error::BadSignature)), "unexpected result");
    }

    #[test]
    fn changed_key_id_byte_fails(c in case(), at: Index, pick: Index) {
        let h = sign(&c);
        let key = change_byte(h.key_id(), at, pick, UNRESERVED);
        let sig = SignatureHeaders { key: Some(key.as_bytes()), ..SignatureHeaders::from_signed(&h) };
        // Even when the changed key id exists with the same secret, the signature fails.
        let store = request_signing::StaticSecretStore::new()
            .with_secret("svc", Secret::from("prop-secret"))
            .with_secret(key.clone(), Secret::from("prop-secret"));
        let cache = request_signing::MemoryReplayCache::new(std::num::NonZeroUsize::new(4).unwrap());
        let v = request_signing::Verifier::new(store, cache).with_clock(FakeClock::at_unix_secs(NOW));
        let target = c.target();
        prop_assert!(matches!(block_on(v.verify(&sig, &Request::new(&c.method, &target, &c.body))), Err(Error::BadSignature)), "unexpected result");
    }

    #[test]
    fn equivalent_encodings_verify(
        segment in prop::collection::vec(any::<u8>(), 1..12),
        value in prop::collection::vec(any::<u8>(), 0..12),
        a in prop::collection::vec(any::<u8>(), 12),
        b in prop::collection::vec(any::<u8>(), 12),
    ) {
        let target_a = format!("/p/{}?k={}", encode_variously(&segment, &a), encode_variously(&value, &a));
        let target_b = format!("/p/{}?k={}", encode_variously(&segment, &b), encode_variously(&value, &b));
        let h = Signer::new("svc", Secret::from("prop-secret")).unwrap()
            .sign_with("GET", &target_a, b"", NOW, "0123456789abcdef").unwrap();
        prop_assert!(verify(&SignatureHeaders::from_signed(&h), "get", &target_b, b"").is_ok());
    }

    #[test]
    fn time_window_is_exact(ts in 1_000u64..4_000_000_000, max_age in 0u64..100_000, skew in 0u64..1_000) {
        let c = Case { method: "GET".into(), path: "/".into(), query: String::new(), body: vec![], nonce: "0123456789abcdef".into() };
        let h = Signer::new("svc", Secret::from("prop-secret")).unwrap()
            .sign_with(&c.method, "/", b"", ts, &c.nonce).unwrap();
        let config = VerifierConfig::new().max_age_secs(max_age).max_future_skew_secs(skew);
        let at = |now: u64| {
            let (v, _) = verifier("svc", "prop-secret", now);
            block_on(v.with_config(config).verify(&SignatureHeaders::from_signed(&h), &Request::new("GET", "/", b"")))
        };
        prop_assert!(at(ts + max_age).is_ok());
        prop_assert!(matches!(at(ts + max_age + 1), Err(Error::Expired { .. })), "unexpected result");
        prop_assert!(at(ts - skew).is_ok());
        prop_assert!(matches!(at(ts - skew - 1), Err(Error::FromFuture { .. })), "unexpected result");
    }

    #[test]
    fn no_key_ever_holds_more_than_its_share(
        ops in prop::collection::vec((0u8..4, 0u64..40, 0u64..8, any::<bool>()), 1..400),
    ) {
        use request_signing::{Insertion, MemoryReplayCache, ReplayEntry, ReplayKey};
        use std::collections::HashMap;
        // Four keys with a share of 5 in a cache of 12; time moves, some records are released.
        let share = 5;
        let cache = MemoryReplayCache::new(std::num::NonZeroUsize::new(12).unwrap())
            .with_per_key_limit(std::num::NonZeroUsize::new(share).unwrap());
        let mut model: HashMap<(u8, u64), u64> = HashMap::new(); // (owner, nonce) -> expires_at
        let mut now = NOW;
        for (owner, nonce, wait, release) in ops {
            now += wait;
            model.retain(|_, expires| *expires > now);
            let name = format!("key-{owner}");
            let entry = ReplayEntry {
                key: ReplayKey::v1(&name, &format!("nonce-{nonce:012}")),
                owner: ReplayKey::owner(&name),
                now,
                expires_at: now + 20,
            };
            let held = model.keys().filter(|(o, _)| *o == owner).count();
            let got = cache.insert_now(entry);
            match got {
                Ok(Insertion::Seen) => prop_assert!(model.contains_key(&(owner, nonce))),
                Ok(Insertion::OverBudget { retry_after_secs }) => {
                    prop_assert_eq!(held, share);
                    prop_assert!((1..=20).contains(&retry_after_secs));
                }
                Ok(Insertion::Fresh) => {
                    prop_assert!(!model.contains_key(&(owner, nonce)));
                    prop_assert!(held < share);
                    if release {
                        cache.release_now(&entry);
                    } else {
                        model.insert((owner, nonce), entry.expires_at);
                    }
                }
                Ok(_) => prop_assert!(false, "unknown insertion"),
                Err(_) => prop_assert_eq!(model.len(), 12),
            }
            prop_assert_eq!(cache.len() >= model.len(), true);
        }
    }
}
