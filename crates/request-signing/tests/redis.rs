//! The Redis replay cache against a real Redis (`TEST_REDIS_URL`).
#![cfg(feature = "redis")]

mod common;

use std::time::Duration;

use request_signing::{
    Error, FakeClock, FallbackReplayCache, Insertion, MemoryReplayCache, RedisReplayCache,
    ReplayCache, ReplayEntry, ReplayKey, Request, Secret, SignatureHeaders, Signer,
    StaticSecretStore, Verifier, VerifierConfig, sign_v0,
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
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn two_verifiers_sharing_redis_reject_the_second_use() {
    let Some(url) = test_services::redis_url("two_verifiers_sharing_redis_reject_the_second_use")
    else {
        return;
    };
    let prefix = prefix("shared");
    let store = StaticSecretStore::new().with_secret("svc", Secret::from("s"));
    let both = VerifierConfig::new().accept_v0(true);
    let a = Verifier::new(store.clone(), cache(&url, &prefix).await)
        .with_clock(FakeClock::at_unix_secs(NOW))
        .with_config(both);
    let b = Verifier::new(store, cache(&url, &prefix).await)
        .with_clock(FakeClock::at_unix_secs(NOW))
        .with_config(both);
    let signer = Signer::new("svc", Secret::from("s"))
        .unwrap()
        .with_clock(FakeClock::at_unix_secs(NOW));
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
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn stored_entry_has_prefix_and_remaining_window_as_ttl() {
    let Some(url) = test_services::redis_url("stored_entry_has_prefix_and_remaining_window_as_ttl")
    else {
        return;
    };
    let prefix = prefix("ttl");
    let store = StaticSecretStore::new().with_secret("svc", Secret::from("s"));
    // Verified at age 300 of a 300 s window: the entry is kept 1 more second, plus the 30 s of
    // allowed skew between the clocks of instances sharing the cache.
    let v = Verifier::new(store, cache(&url, &prefix).await)
        .with_clock(FakeClock::at_unix_secs(NOW + 300));
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
    // The key's set of entries, named by its owner; the entry scored by its expiry.
    let key = format!("{prefix}{}", ReplayKey::owner("svc").to_hex());
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((30..=31).contains(&ttl), "ttl {ttl}");
    let member = ReplayKey::v1("svc", "0123456789abcdef").to_hex();
    let score: Option<u64> = redis::cmd("ZSCORE")
        .arg(&key)
        .arg(&member)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(score, Some(NOW + 331));
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
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
        owner: ReplayKey::owner("svc"),
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

fn entry(owner: &str, n: u64, now: u64) -> ReplayEntry {
    ReplayEntry {
        key: ReplayKey::v1(owner, &format!("nonce-{n:012}")),
        owner: ReplayKey::owner(owner),
        now,
        expires_at: now + 301,
    }
}

#[tokio::test]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn one_keys_nonce_flood_on_redis_is_refused_alone() {
    let Some(url) = test_services::redis_url("one_keys_nonce_flood_on_redis_is_refused_alone")
    else {
        return;
    };
    let prefix = prefix("budget");
    let share = std::num::NonZeroUsize::new(50).unwrap();
    let a = cache(&url, &prefix).await.with_per_key_limit(share);
    let b = cache(&url, &prefix).await.with_per_key_limit(share);
    // Two instances share the flood's count: 50 in all, then refused with the wait.
    for n in 0..50 {
        let instance = if n % 2 == 0 { &a } else { &b };
        assert_eq!(
            instance.insert_once(entry("flood", n, NOW)).await.unwrap(),
            Insertion::Fresh
        );
    }
    assert_eq!(
        a.insert_once(entry("flood", 99, NOW + 10)).await.unwrap(),
        Insertion::OverBudget {
            retry_after_secs: 291
        }
    );
    // A replay is still a replay, and the other key goes on.
    assert_eq!(
        b.insert_once(entry("flood", 3, NOW)).await.unwrap(),
        Insertion::Seen
    );
    for n in 0..10 {
        assert_eq!(
            b.insert_once(entry("calm", n, NOW)).await.unwrap(),
            Insertion::Fresh
        );
    }
    // A released entry frees its room and may come again.
    a.release(&entry("flood", 7, NOW)).await.unwrap();
    assert_eq!(
        b.insert_once(entry("flood", 7, NOW)).await.unwrap(),
        Insertion::Fresh
    );
    // Expired entries leave by themselves.
    assert_eq!(
        a.insert_once(entry("flood", 99, NOW + 301)).await.unwrap(),
        Insertion::Fresh
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn the_fallback_keeps_refusing_what_it_saw_during_an_outage() {
    if test_services::redis_url("the_fallback_keeps_refusing_what_it_saw_during_an_outage")
        .is_none()
    {
        return;
    }
    let mut server = test_services::RedisServer::start();
    let port = server.port();
    let prefix = prefix("fallback");
    let url = server.url();
    let primary = || async {
        cache(&url, &prefix)
            .await
            .with_timeout(Duration::from_secs(1))
    };
    let local = || MemoryReplayCache::new(std::num::NonZeroUsize::new(1_000).unwrap());
    let outages = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = outages.clone();
    let this = FallbackReplayCache::new(primary().await, local()).on_outage(move |_| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    assert_eq!(
        this.insert_once(entry("svc", 1, NOW)).await.unwrap(),
        Insertion::Fresh
    );

    server.stop();
    // While Redis is away, this instance records locally and still refuses replays.
    for n in 2..6 {
        assert_eq!(
            this.insert_once(entry("svc", n, NOW)).await.unwrap(),
            Insertion::Fresh
        );
    }
    assert_eq!(
        this.insert_once(entry("svc", 2, NOW)).await.unwrap(),
        Insertion::Seen
    );
    // Four outages: the replay was refused locally, without asking Redis.
    assert_eq!(outages.load(std::sync::atomic::Ordering::SeqCst), 4);
    assert_eq!(this.pending(), 4);

    let _back = test_services::RedisServer::start_on(port);
    // Wait until this instance's connection is made again.
    for _ in 0..50 {
        if this
            .primary()
            .insert_once(entry("probe", 0, NOW))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Back: the next call carries what was accepted during the outage to Redis...
    assert_eq!(
        this.insert_once(entry("svc", 100, NOW)).await.unwrap(),
        Insertion::Fresh
    );
    assert_eq!(this.pending(), 0);
    // ...it is still refused here, and another instance refuses it too.
    assert_eq!(
        this.insert_once(entry("svc", 3, NOW)).await.unwrap(),
        Insertion::Seen
    );
    let other = FallbackReplayCache::new(primary().await, local());
    for n in 2..6 {
        assert_eq!(
            other.insert_once(entry("svc", n, NOW)).await.unwrap(),
            Insertion::Seen
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn a_full_read_only_or_evicting_redis() {
    if test_services::redis_url("a_full_read_only_or_evicting_redis").is_none() {
        return;
    }
    let evicting = test_services::RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let policy = cache(&evicting.url(), "x:")
        .await
        .memory_policy()
        .await
        .unwrap();
    assert!(policy.evicts());
    assert_eq!(
        policy.to_string(),
        "maxmemory-policy allkeys-lru, no maxmemory"
    );

    let server = test_services::RedisServer::start_with(&["--maxmemory-policy", "noeviction"]);
    let full = cache(&server.url(), "x:").await;
    assert!(!full.memory_policy().await.unwrap().evicts());
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let filler = "x".repeat(64 * 1024);
    for i in 0..32 {
        let () = redis::cmd("SET")
            .arg(format!("filler:{i}"))
            .arg(&filler)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1mb")
        .query_async(&mut conn)
        .await
        .unwrap();
    // A full Redis still records entries: each insertion first drops expired ones, and Redis
    // lets a script go on once it has written. Replays stay refused.
    assert_eq!(
        full.insert_once(entry("svc", 1, NOW)).await.unwrap(),
        Insertion::Fresh
    );
    assert_eq!(
        full.insert_once(entry("svc", 1, NOW)).await.unwrap(),
        Insertion::Seen
    );

    // An error reply (a read-only replica): the plain cache fails closed...
    let () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(full.insert_once(entry("svc", 2, NOW)).await.is_err());
    // ...and the fallback goes on from memory.
    let fallback = FallbackReplayCache::new(
        full,
        MemoryReplayCache::new(std::num::NonZeroUsize::new(10).unwrap()),
    );
    assert_eq!(
        fallback.insert_once(entry("svc", 2, NOW)).await.unwrap(),
        Insertion::Fresh
    );
    assert_eq!(
        fallback.insert_once(entry("svc", 2, NOW)).await.unwrap(),
        Insertion::Seen
    );
}

/// A verifier that accepts requests of any age: the record gets an expiry Redis takes (ten
/// years), and the request is accepted once, then refused as a replay.
#[tokio::test]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn a_verifier_without_an_age_limit_keeps_records_with_an_expiry() {
    let Some(url) =
        test_services::redis_url("a_verifier_without_an_age_limit_keeps_records_with_an_expiry")
    else {
        return;
    };
    let prefix = prefix("no-age-limit");
    let store = StaticSecretStore::new().with_secret("svc", Secret::from("s"));
    let v = Verifier::new(store, cache(&url, &prefix).await)
        .with_config(VerifierConfig::new().max_age_secs(u64::MAX))
        .with_clock(FakeClock::at_unix_secs(NOW));
    let h = Signer::new("svc", Secret::from("s"))
        .unwrap()
        .sign_with("GET", "/", b"", NOW - 86_400, "0123456789abcdef")
        .unwrap();
    let (headers, request) = (
        SignatureHeaders::from_signed(&h),
        Request::new("GET", "/", b""),
    );
    assert!(v.verify(&headers, &request).await.is_ok());
    assert!(matches!(
        v.verify(&headers, &request).await,
        Err(Error::Replayed)
    ));

    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{prefix}{}", ReplayKey::owner("svc").to_hex());
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((1..=10 * 365 * 86_400).contains(&ttl), "ttl {ttl}");
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
}
