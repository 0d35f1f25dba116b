//! Verifier behaviour: rotation, limits, stores failing, errors that never leak secrets.

mod common;

use std::num::NonZeroUsize;

use common::{block_on, verifier, verifier_v0};
use request_signing::{
    Error, FakeClock, MemoryReplayCache, Request, Secret, SecretStore, SignatureHeaders, Signer,
    StaticSecretStore, Verifier, VerifierConfig, sign_v0,
};

const NOW: u64 = 1_700_000_000;

fn signer(secret: &str) -> Signer<FakeClock> {
    Signer::new("svc", Secret::from(secret))
        .unwrap()
        .with_clock(FakeClock::at_unix_secs(NOW))
}

#[test]
fn rotation_any_active_secret_and_any_sent_value_passes() {
    let store = StaticSecretStore::new()
        .with_secret("svc", Secret::from("new"))
        .with_secret("svc", Secret::from("old"));
    let cache = MemoryReplayCache::new(NonZeroUsize::new(16).unwrap())
        .with_per_key_limit(NonZeroUsize::new(16).unwrap());
    let v = Verifier::new(store, cache).with_clock(FakeClock::at_unix_secs(NOW));
    let req = Request::new("GET", "/r", b"");

    let old_only = signer("old").sign("GET", "/r", b"").unwrap();
    let ok = block_on(v.verify(&SignatureHeaders::from_signed(&old_only), &req)).unwrap();
    assert_eq!(ok.secret_index(), 1);

    let both = signer("retired")
        .with_rotation_secret(Secret::from("new"))
        .sign("GET", "/r", b"")
        .unwrap();
    let ok = block_on(v.verify(&SignatureHeaders::from_signed(&both), &req)).unwrap();
    assert_eq!(ok.secret_index(), 0);

    let neither = signer("retired").sign("GET", "/r", b"").unwrap();
    assert!(matches!(
        block_on(v.verify(&SignatureHeaders::from_signed(&neither), &req)),
        Err(Error::BadSignature)
    ));
}

#[test]
fn unknown_key_bad_signature_and_replay() {
    let (v, _) = verifier("svc", "right", NOW);
    let req = Request::new("POST", "/x?a=1", b"data");
    let wrong = signer("wrong").sign("POST", "/x?a=1", b"data").unwrap();
    assert!(matches!(
        block_on(v.verify(&SignatureHeaders::from_signed(&wrong), &req)),
        Err(Error::BadSignature)
    ));
    let other_key = Signer::new("svc2", Secret::from("right"))
        .unwrap()
        .with_clock(FakeClock::at_unix_secs(NOW));
    let h = other_key.sign("POST", "/x?a=1", b"data").unwrap();
    assert!(matches!(
        block_on(v.verify(&SignatureHeaders::from_signed(&h), &req)),
        Err(Error::UnknownKey)
    ));

    let good = signer("right").sign("POST", "/x?a=1", b"data").unwrap();
    assert!(block_on(v.verify(&SignatureHeaders::from_signed(&good), &req)).is_ok());
    assert!(matches!(
        block_on(v.verify(&SignatureHeaders::from_signed(&good), &req)),
        Err(Error::Replayed)
    ));
    // A bad signature does not consume the nonce: the cache only sees authentic requests.
    let fresh = signer("right").sign("POST", "/x?a=1", b"data").unwrap();
    assert!(
        block_on(v.verify(
            &SignatureHeaders::from_signed(&fresh),
            &Request::new("POST", "/x?a=2", b"data")
        ))
        .is_err()
    );
    assert!(block_on(v.verify(&SignatureHeaders::from_signed(&fresh), &req)).is_ok());
}

#[test]
fn replay_is_rejected_until_the_request_would_expire_anyway() {
    let (v, clock) = verifier("svc", "s", NOW);
    let h = signer("s").sign("GET", "/", b"").unwrap();
    let sig = SignatureHeaders::from_signed(&h);
    let req = Request::new("GET", "/", b"");
    assert!(block_on(v.verify(&sig, &req)).is_ok());
    clock.set_unix_secs(NOW + 300);
    assert!(matches!(
        block_on(v.verify(&sig, &req)),
        Err(Error::Replayed)
    ));
    clock.set_unix_secs(NOW + 301);
    assert!(matches!(
        block_on(v.verify(&sig, &req)),
        Err(Error::Expired { .. })
    ));
}

/// Two instances share one replay cache, one clock 10 s ahead of the other. A request accepted
/// by the slow one stays refused there, although the fast one prunes the cache by its own clock
/// and would have forgotten it at the end of the slow one's window.
#[test]
fn a_shared_cache_pruned_by_a_faster_clock_keeps_refusing_a_replay() {
    let store = || StaticSecretStore::new().with_secret("svc", Secret::from("s"));
    let shared = MemoryReplayCache::new(NonZeroUsize::new(16).unwrap())
        .with_per_key_limit(NonZeroUsize::new(16).unwrap());
    let slow_clock = FakeClock::at_unix_secs(NOW + 300);
    let fast_clock = FakeClock::at_unix_secs(NOW + 310);
    let slow = Verifier::new(store(), shared.clone()).with_clock(slow_clock);
    let fast = Verifier::new(store(), shared).with_clock(fast_clock);
    let req = Request::new("GET", "/", b"");
    // Signed at NOW, accepted by the slow instance at the end of its window.
    let old = signer("s").sign("GET", "/", b"").unwrap();
    let old = SignatureHeaders::from_signed(&old);
    assert!(block_on(slow.verify(&old, &req)).is_ok());
    // A new request of the same key on the fast instance prunes the cache at NOW + 310.
    let new = Signer::new("svc", Secret::from("s"))
        .unwrap()
        .with_clock(FakeClock::at_unix_secs(NOW + 310))
        .sign("GET", "/", b"")
        .unwrap();
    assert!(block_on(fast.verify(&SignatureHeaders::from_signed(&new), &req)).is_ok());
    assert!(matches!(
        block_on(slow.verify(&old, &req)),
        Err(Error::Replayed)
    ));
}

/// A store that hands out an empty secret (an unset variable, a blank column) lets nobody in:
/// anybody could compute the MAC under it.
#[test]
fn an_empty_secret_verifies_nothing() {
    let (v, _) = verifier("svc", "", NOW);
    let forged = signer("").sign("GET", "/", b"").unwrap();
    assert!(matches!(
        block_on(v.verify(
            &SignatureHeaders::from_signed(&forged),
            &Request::new("GET", "/", b"")
        )),
        Err(Error::BadSignature)
    ));
}

#[test]
fn v0_uses_the_replay_cache_and_is_refused_unless_enabled() {
    let (v, _) = verifier_v0("raw-key", "s", NOW);
    let h = sign_v0("raw-key", &Secret::from("s"), NOW).unwrap();
    let sig = SignatureHeaders::from_signed(&h);
    let req = Request::new("GET", "/", b"");
    assert!(block_on(v.verify(&sig, &req)).is_ok());
    assert!(matches!(
        block_on(v.verify(&sig, &req)),
        Err(Error::Replayed)
    ));
    // Upper-case hex is the same signature: still a replay.
    let upper = h.signature().to_ascii_uppercase();
    let sig_upper = SignatureHeaders {
        signature: Some(upper.as_bytes()),
        ..sig
    };
    assert!(matches!(
        block_on(v.verify(&sig_upper, &req)),
        Err(Error::Replayed)
    ));

    // Off by default.
    let (strict, _) = verifier("raw-key", "s", NOW);
    assert!(matches!(
        block_on(strict.verify(&sig, &req)),
        Err(Error::V0NotAccepted)
    ));
}

#[test]
fn body_size_limit() {
    let (v, _) = verifier("svc", "s", NOW);
    let v = v.with_config(VerifierConfig::new().max_body_bytes(8));
    let h = signer("s").sign("PUT", "/", b"123456789").unwrap();
    let err = block_on(v.verify(
        &SignatureHeaders::from_signed(&h),
        &Request::new("PUT", "/", b"123456789"),
    ))
    .unwrap_err();
    assert!(matches!(err, Error::BodyTooLarge { len: 9, max: 8 }));
    let h = signer("s").sign("PUT", "/", b"12345678").unwrap();
    assert!(
        block_on(v.verify(
            &SignatureHeaders::from_signed(&h),
            &Request::new("PUT", "/", b"12345678")
        ))
        .is_ok()
    );
}

#[test]
fn full_memory_cache_fails_closed() {
    let store = StaticSecretStore::new().with_secret("svc", Secret::from("s"));
    // The key's share is larger than the cache, so that the cache itself is what fills up.
    let cache = MemoryReplayCache::new(NonZeroUsize::new(2).unwrap())
        .with_per_key_limit(NonZeroUsize::new(3).unwrap());
    let v = Verifier::new(store, cache.clone()).with_clock(FakeClock::at_unix_secs(NOW));
    let req = Request::new("GET", "/", b"");
    for _ in 0..2 {
        let h = signer("s").sign("GET", "/", b"").unwrap();
        assert!(block_on(v.verify(&SignatureHeaders::from_signed(&h), &req)).is_ok());
    }
    let h = signer("s").sign("GET", "/", b"").unwrap();
    let err = block_on(v.verify(&SignatureHeaders::from_signed(&h), &req)).unwrap_err();
    assert!(matches!(err, Error::ReplayStoreUnavailable(_)));
    assert_eq!(cache.len(), 2);
}

#[derive(Debug)]
struct DownStore;

#[derive(Debug, thiserror::Error)]
#[error("database down")]
struct DbDown;

impl SecretStore for DownStore {
    type Error = DbDown;
    // Implementations may use `async fn`; the future must be `Send`.
    async fn secrets(&self, _: &str, _: request_signing::Scheme) -> Result<Vec<Secret>, DbDown> {
        Err(DbDown)
    }
}

#[test]
fn failing_secret_store_rejects() {
    let v = Verifier::new(
        DownStore,
        MemoryReplayCache::new(NonZeroUsize::new(4).unwrap()),
    )
    .with_clock(FakeClock::at_unix_secs(NOW));
    let h = signer("s").sign("GET", "/", b"").unwrap();
    let err = block_on(v.verify(
        &SignatureHeaders::from_signed(&h),
        &Request::new("GET", "/", b""),
    ))
    .unwrap_err();
    assert!(matches!(err, Error::SecretStoreUnavailable(_)));
}

#[test]
fn errors_and_debug_never_show_the_secret_key_or_expected_signature() {
    let secret = "super-secret-value-XYZ";
    let (v, _) = verifier("raw-api-key-ABC", secret, NOW);
    let good = Signer::new("raw-api-key-ABC", Secret::from(secret))
        .unwrap()
        .with_clock(FakeClock::at_unix_secs(NOW))
        .sign("GET", "/p", b"")
        .unwrap();
    let expected = good.signature().trim_start_matches("v1=").to_owned();
    let req = Request::new("GET", "/other", b"");
    let err = block_on(v.verify(&SignatureHeaders::from_signed(&good), &req)).unwrap_err();
    let ok = block_on(v.verify(
        &SignatureHeaders::from_signed(&good),
        &Request::new("GET", "/p", b""),
    ))
    .unwrap();
    for shown in [
        format!("{err}"),
        format!("{err:?}"),
        format!("{ok:?}"),
        format!("{v:?}"),
    ] {
        assert!(!shown.contains(secret), "{shown}");
        assert!(!shown.contains("raw-api-key-ABC"), "{shown}");
        assert!(!shown.contains(&expected), "{shown}");
    }
}

#[test]
fn verify_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let (v, _) = verifier("svc", "s", NOW);
    let h = signer("s").sign("GET", "/", b"").unwrap();
    let sig = SignatureHeaders::from_signed(&h);
    let req = Request::new("GET", "/", b"");
    let fut = v.verify(&sig, &req);
    assert_send(&fut);
    assert!(block_on(fut).is_ok());
}
