//! The Redis replay cache against a real Redis (`TEST_REDIS_URL`).
#![cfg(feature = "redis")]

mod common;

use std::time::Duration;

use request_signing::{
    Error, FakeClock, Insertion, RedisReplayCache, ReplayCache, ReplayEntry, ReplayKey, Request,
    Secret, SignatureHeaders, Signer, StaticSecretStore, Verifier, sign_v0,
};

const NOW: u64 = 1_700_000_000;

fn prefix(test: &str) -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    format!("test:request-signing:{test}:{}:", hex::encode(bytes))
}

async fn cache(url: &str, prefix: &str) -> RedisReplayCache {
    RedisReplayCache::connect(url, prefix).await.unwrap()
}

#[tokio::test]
async fn two_verifiers_sharing_redis_reject_the_second_use() {
    let Some(url) = test_services::redis_url("two_verifiers_sharing_redis_reject_the_second_use")
    else {
        return;
    };
    let prefix = prefix("shared");
    let store = StaticSecretStore::new().with_secret("svc", Secret::from("s"));
    let a =
        Verifier::new(store.clone(), cache(&url, &prefix).await).with_clock(FakeClock::new(NOW));
    let b = Verifier::new(store, cache(&url, &prefix).await).with_clock(FakeClock::new(NOW));
    let signer = Signer::new("svc", Secret::from("s"))
        .unwrap()
        .with_clock(FakeClock::new(NOW));
    let req = Request::new("POST", "/transfer", b"{}");

    let h = signer.sign("POST", "/transfer", b"{}").unwrap();
    let sig = SignatureHeaders::from_signed(&h);
    assert!(a.verify(&sig, &req).await.is_ok());
    assert!(matches!(b.verify(&sig, &req).await, Err(Error::Replayed)));
    assert!(matches!(a.verify(&sig, &req).await, Err(Error::Replayed)));

    // v0 goes through the same shared cache.
    let v0 = sign_v0("svc", &Secret::from("s"), NOW).unwrap();
    let sig0 = SignatureHeaders::from_signed(&v0);
    assert!(b.verify(&sig0, &req).await.is_ok());
    assert!(matches!(a.verify(&sig0, &req).await, Err(Error::Replayed)));
}

#[tokio::test]
async fn stored_key_has_prefix_and_remaining_window_as_ttl() {
    let Some(url) = test_services::redis_url("stored_key_has_prefix_and_remaining_window_as_ttl")
    else {
        return;
    };
    let prefix = prefix("ttl");
    let store = StaticSecretStore::new().with_secret("svc", Secret::from("s"));
    // Verified at age 300 of a 300 s window: the entry is only needed for 1 more second.
    let v = Verifier::new(store, cache(&url, &prefix).await).with_clock(FakeClock::new(NOW + 300));
    let h = Signer::new("svc", Secret::from("s"))
        .unwrap()
        .sign_with("GET", "/", b"", NOW, "0123456789abcdef")
        .unwrap();
    assert!(
        v.verify(
            &SignatureHeaders::from_signed(&h),
            &Request::new("GET", "/", b"")
        )
        .await
        .is_ok()
    );

    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!(
        "{prefix}{}",
        ReplayKey::v1("svc", "0123456789abcdef").to_hex()
    );
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((0..=1).contains(&ttl), "ttl {ttl}");
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn insert_once_and_prefixes_are_separate_namespaces() {
    let Some(url) = test_services::redis_url("insert_once_and_prefixes_are_separate_namespaces")
    else {
        return;
    };
    let prefix = prefix("ns");
    let a = cache(&url, &prefix).await;
    let b = cache(&url, &format!("{prefix}b:"))
        .await
        .with_timeout(Duration::from_millis(500));
    let entry = ReplayEntry {
        key: ReplayKey::v1("svc", "nonce-nonce-nonce"),
        now: NOW,
        expires_at: NOW + 5,
    };
    assert_eq!(a.insert_once(entry).await.unwrap(), Insertion::Fresh);
    assert_eq!(a.insert_once(entry).await.unwrap(), Insertion::Seen);
    assert_eq!(b.insert_once(entry).await.unwrap(), Insertion::Fresh);
    assert_eq!(b.insert_once(entry).await.unwrap(), Insertion::Seen);
}

#[tokio::test]
async fn unreachable_redis_fails_closed_within_the_timeout() {
    // Nothing listens on port 1 of localhost: connecting must fail, not hang.
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        RedisReplayCache::connect("redis://127.0.0.1:1", "x:"),
    )
    .await;
    assert!(matches!(r, Ok(Err(_))));
}
