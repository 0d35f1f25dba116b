//! The server under the floods and Redis states that broke it when tried as an attacker would:
//! one signing key's nonce flood next to another key, a signed request refused by its quota, a
//! full Redis, and an evicting Redis.

mod common;

use common::{NOON, Spawn, TestApp, spawn_with};
use request_signing::{FakeClock, Secret, Signer};
use serde_json::json;

/// A signing key: its id and a signer at the test clock's time.
async fn signing_key(app: &TestApp, daily_quota: u64) -> Signer<FakeClock> {
    let created = app
        .create_key(json!({"service": "orders", "signing": true, "daily_quota": daily_quota}))
        .await;
    let id = created["id"].as_str().unwrap();
    let secret = created["signing_secret"].as_str().unwrap();
    Signer::new(id, Secret::from(secret))
        .unwrap()
        .with_clock(FakeClock::at_unix_secs(NOON))
}

async fn signed(app: &TestApp, signer: &Signer<FakeClock>, method: &str, path: &str) -> u16 {
    let headers = signer.sign(method, &app.url(path), b"").unwrap();
    let pairs: Vec<(&str, &str)> = headers.iter().collect();
    app.send(method, path, &pairs, None).await.status
}

/// Spawns the server with a replay share of `per_key`, on `redis_url` when given.
async fn spawn_app(per_key: usize, redis_url: Option<String>) -> TestApp {
    let mut spawn = Spawn::default();
    spawn.args.replay_per_key = Some(per_key);
    if let Some(url) = redis_url {
        spawn.args.redis_url = Some(url);
        let mut id = [0u8; 6];
        rand::fill(&mut id);
        spawn.args.redis_prefix = Some(format!("floods-{}", hex::encode(id)));
    }
    spawn_with(spawn).await
}

async fn nonce_flood_next_to_another_key(app: &TestApp) {
    let flood = signing_key(app, 1_000).await;
    let calm = signing_key(app, 1_000).await;
    // /whoami is never charged: only the key's replay share bounds its flood.
    for _ in 0..5 {
        assert_eq!(signed(app, &flood, "GET", "/whoami").await, 200);
    }
    let headers = flood.sign("GET", &app.url("/whoami"), b"").unwrap();
    let pairs: Vec<(&str, &str)> = headers.iter().collect();
    let refused = app.get("/whoami", &pairs).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.header("retry-after").as_deref(), Some("331"));
    assert_eq!(
        refused.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    // Every other key goes on.
    for _ in 0..5 {
        assert_eq!(signed(app, &calm, "GET", "/whoami").await, 200);
    }
}

#[actix_web::test]
async fn one_keys_nonce_flood_leaves_other_keys_alone_in_memory() {
    let app = spawn_app(5, None).await;
    nonce_flood_next_to_another_key(&app).await;
}

#[actix_web::test]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn one_keys_nonce_flood_leaves_other_keys_alone_on_redis() {
    let Some(url) =
        test_services::redis_url("one_keys_nonce_flood_leaves_other_keys_alone_on_redis")
    else {
        return;
    };
    let app = spawn_app(5, Some(url)).await;
    nonce_flood_next_to_another_key(&app).await;
}

#[actix_web::test]
async fn a_signed_request_refused_by_its_quota_keeps_no_nonce() {
    let app = spawn_app(3, None).await;
    let signer = signing_key(&app, 1).await;
    assert_eq!(
        signed(&app, &signer, "POST", "/get-current-time").await,
        200
    );
    // Spent: the same signed request may come again (tomorrow) and is not a replay.
    let headers = signer
        .sign("POST", &app.url("/get-current-time"), b"")
        .unwrap();
    let pairs: Vec<(&str, &str)> = headers.iter().collect();
    for _ in 0..10 {
        let refused = app.send("POST", "/get-current-time", &pairs, None).await;
        assert_eq!(refused.status, 429, "{}", refused.body);
    }
    // The ten refusals used none of the key's share of 3.
    for _ in 0..2 {
        assert_eq!(signed(&app, &signer, "GET", "/whoami").await, 200);
    }
}

/// Fills the Redis at `url` past a `maxmemory` of 1 MiB under `noeviction`: every write
/// is then refused with OOM.
async fn fill(url: &str) {
    let client = redis::Client::open(url).unwrap();
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
}

#[actix_web::test]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn a_full_redis_follows_the_fail_policies_and_never_answers_500() {
    if test_services::redis_url("a_full_redis_follows_the_fail_policies_and_never_answers_500")
        .is_none()
    {
        return;
    }
    let redis = test_services::RedisServer::start_with(&["--maxmemory-policy", "noeviction"]);
    let app = spawn_app(100, Some(redis.url())).await;
    let key = app.first.demo_key.key.clone();
    let ready = app.get("/readyz", &[]).await;
    assert_eq!(
        (ready.status, ready.body["redis"].clone()),
        (200, json!(true))
    );

    fill(&redis.url()).await;
    // Quotas fail open (the default): the call is served, uncounted.
    for _ in 0..3 {
        let reply = app
            .post("/get-current-time", &[("authorization", &key)], "")
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("ratelimit"), None);
    }
    // Logins fall back to this instance's own limit.
    let login = app
        .post(
            "/login",
            &[],
            r#"{"username": "nobody", "password": "wrong-password-1"}"#,
        )
        .await;
    assert_eq!(login.status, 401, "{}", login.body);
    // Readiness says Redis refuses writes.
    let ready = app.get("/readyz", &[]).await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body["redis"], false);
    let page = app.metrics_page().await;
    assert!(
        page.lines()
            .any(|l| l
                .starts_with("secure_api_redis_errors_total{concern=\"quota\",kind=\"store\"}")),
        "{page}"
    );

    // With quotas failing closed, the same Redis gives 503 with Retry-After, still never 500.
    let mut spawn = Spawn::default();
    spawn.args.redis_url = Some(redis.url());
    spawn.args.redis_fail_quota = Some(secure_api::config::FailPolicy::Closed);
    let closed = spawn_with(spawn).await;
    let key = closed.first.demo_key.key.clone();
    let reply = closed
        .post("/get-current-time", &[("authorization", &key)], "")
        .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.header("retry-after").as_deref(), Some("1"));
}

#[actix_web::test]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn an_evicting_redis_is_named_in_readiness() {
    if test_services::redis_url("an_evicting_redis_is_named_in_readiness").is_none() {
        return;
    }
    let redis = test_services::RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let app = spawn_app(100, Some(redis.url())).await;
    let ready = app.get("/readyz", &[]).await;
    assert_eq!(ready.status, 200);
    let eviction = ready.body["redis_eviction"].as_str().unwrap_or_default();
    assert!(eviction.contains("allkeys-lru"), "{}", ready.body);
    assert!(eviction.contains("use noeviction"), "{}", ready.body);
}
