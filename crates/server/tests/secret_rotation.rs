//! Rotating the server secret with `SECRET_KEY_FALLBACKS`, on real processes sharing one SQLite
//! file: keys, signing keys, users, JWTs and admin tokens made under the old secret keep
//! working under the new one while the old one is a fallback, and are moved to the new one
//! (re-hashed on use, re-sealed on use or by `secure-api secrets rotate`). Once the fallback is
//! dropped, old JWTs are refused and everything that was moved still works.

mod common;

use common::process::{Instance, admin_token, random_hex, run_cli, send, start_instance};
use request_signing::{Secret, Signer};
use serde_json::{Value, json};

fn env(secret: &str, fallbacks: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![
        ("SECRET_KEY".to_owned(), secret.to_owned()),
        ("SECURE_API_WORKERS".to_owned(), "1".to_owned()),
    ];
    if let Some(fallbacks) = fallbacks {
        env.push(("SECRET_KEY_FALLBACKS".to_owned(), fallbacks.to_owned()));
    }
    env
}

async fn call(at: &Instance, method: &str, path: &str, auth: &str, body: Option<Value>) -> u16 {
    let client = awc::Client::default();
    let body = body.map(|b| b.to_string());
    let headers = [("authorization", auth)];
    send(&client, method, &at.url(path), &headers, body.as_deref())
        .await
        .status
}

/// A v1-signed `POST /check-prime` with the signing key `id`; the status.
async fn signed_call(at: &Instance, id: &str, secret: &str) -> u16 {
    let signer = Signer::new(id, Secret::from(secret)).unwrap();
    let body = r#"{"number": 97}"#;
    let url = at.url("/check-prime");
    let headers = signer.sign("POST", &url, body.as_bytes()).unwrap();
    let pairs: Vec<(&str, &str)> = headers.iter().collect();
    send(&awc::Client::default(), "POST", &url, &pairs, Some(body))
        .await
        .status
}

#[actix_web::test]
async fn everything_made_under_the_old_secret_survives_its_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (random_hex(48), random_hex(48));

    // Under the old secret: an admin token, keys (two plain, two signing), a user and tokens.
    let (server, banner) = start_instance("before-rotation", &env(&old, None), dir.path()).await;
    let admin = format!("Bearer {}", admin_token(&banner));
    let client = awc::Client::default();
    let mut made = Vec::new();
    for signing in [false, false, true, true] {
        let reply = send(
            &client,
            "POST",
            &server.url("/admin/keys"),
            &[("authorization", &admin)],
            Some(&json!({"service": "rotation", "signing": signing}).to_string()),
        )
        .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        made.push(reply.body);
    }
    let text = |v: &Value, field: &str| v[field].as_str().unwrap().to_owned();
    let (used_key, idle_key) = (text(&made[0], "key"), text(&made[1], "key"));
    let (signed_id, signed_secret) = (text(&made[2], "id"), text(&made[2], "signing_secret"));
    let (idle_signed_id, idle_signed_secret) =
        (text(&made[3], "id"), text(&made[3], "signing_secret"));
    let creds = json!({"username": "rotating_user", "password": "a long enough password 1"});
    assert_eq!(
        call(&server, "POST", "/register", "", Some(creds.clone())).await,
        201
    );
    let login = send(
        &client,
        "POST",
        &server.url("/login"),
        &[],
        Some(&creds.to_string()),
    )
    .await;
    let old_access = format!("Bearer {}", text(&login.body, "access_token"));
    assert_eq!(
        call(&server, "GET", "/protected", &old_access, None).await,
        200
    );
    server.process.terminate();

    // The new secret, the old one as a fallback: all of it works, and what is used moves.
    let rotating = env(&new, Some(&old));
    let (server, banner) = start_instance("during-rotation", &rotating, dir.path()).await;
    assert!(
        !banner.contains("Admin token"),
        "the admin token still counts: {banner}"
    );
    assert_eq!(call(&server, "GET", "/admin/keys", &admin, None).await, 200);
    assert_eq!(
        call(&server, "POST", "/get-current-time", &used_key, None).await,
        200
    );
    assert_eq!(signed_call(&server, &signed_id, &signed_secret).await, 200);
    assert_eq!(
        call(&server, "GET", "/protected", &old_access, None).await,
        200
    );
    let login = send(
        &client,
        "POST",
        &server.url("/login"),
        &[],
        Some(&creds.to_string()),
    )
    .await;
    assert_eq!(login.status, 200);
    let new_access = format!("Bearer {}", text(&login.body, "access_token"));
    server.process.terminate();
    // The signing secret nobody used is sealed again by the command.
    let out = run_cli(&rotating, dir.path(), &["secrets", "rotate"]);
    assert!(out.contains("1 signing secrets sealed again"), "{out}");

    // The fallback dropped: old JWTs are refused; keys, tokens and secrets that moved work.
    let (server, _) = start_instance("after-rotation", &env(&new, None), dir.path()).await;
    assert_eq!(
        call(&server, "GET", "/protected", &old_access, None).await,
        401
    );
    assert_eq!(
        call(&server, "GET", "/protected", &new_access, None).await,
        200
    );
    assert_eq!(call(&server, "GET", "/admin/keys", &admin, None).await, 200);
    assert_eq!(
        call(&server, "POST", "/get-current-time", &used_key, None).await,
        200
    );
    assert_eq!(signed_call(&server, &signed_id, &signed_secret).await, 200);
    assert_eq!(
        signed_call(&server, &idle_signed_id, &idle_signed_secret).await,
        200
    );
    // A key nobody used while the fallback was set stayed under the old pepper.
    assert_eq!(
        call(&server, "POST", "/get-current-time", &idle_key, None).await,
        401
    );
    assert_eq!(call(&server, "POST", "/login", "", Some(creds)).await, 200);
    server.process.terminate();
}

/// A rolling rotation, as `docs/operations.md` gives it for several instances on one
/// PostgreSQL: while instances of two stages run side by side, none refuses what another made
/// or moved. An instance with the old secret and the new one as a fallback serves beside one with
/// the new secret and the old one as a fallback: a key, an admin token and a signing secret that
/// the second moved to the new secret, and a JWT it signed with it, all work on the first.
#[actix_web::test]
#[ignore = "needs PostgreSQL: set TEST_DATABASE_URL"]
async fn a_rolling_rotation_on_postgres_refuses_nothing_between_stages() {
    let test = "a_rolling_rotation_on_postgres_refuses_nothing_between_stages";
    let Some(database) = test_services::database_url(test) else {
        return;
    };
    let schema = common::PgSchema::create(&database, "secure_api_rot").await;
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (random_hex(48), random_hex(48));
    let on_postgres = |secret: &str, fallbacks: Option<&str>| {
        let mut env = env(secret, fallbacks);
        env.push(("DATABASE_URL".to_owned(), schema.url.clone()));
        // No lookup cache: each call reads where the other instance moved the key.
        env.push(("SECURE_API_KEY_CACHE_TTL".to_owned(), "0".to_owned()));
        env
    };

    // Everything made under the old secret alone.
    let (before, banner) =
        start_instance("rolling-before", &on_postgres(&old, None), dir.path()).await;
    let admin = format!("Bearer {}", admin_token(&banner));
    let client = awc::Client::default();
    let mut made = Vec::new();
    for signing in [false, true] {
        let reply = send(
            &client,
            "POST",
            &before.url("/admin/keys"),
            &[("authorization", &admin)],
            Some(&json!({"service": "rolling", "signing": signing}).to_string()),
        )
        .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        made.push(reply.body);
    }
    let text = |v: &Value, field: &str| v[field].as_str().unwrap().to_owned();
    let key = text(&made[0], "key");
    let (signed_id, signed_secret) = (text(&made[1], "id"), text(&made[1], "signing_secret"));
    let creds = json!({"username": "rolling_user", "password": "a long enough password 2"});
    assert_eq!(
        call(&before, "POST", "/register", "", Some(creds.clone())).await,
        201
    );
    before.process.terminate();

    // Stage 1 (the old secret, the new one as a fallback) beside stage 2 (the reverse).
    let (first, _) = start_instance(
        "rolling-stage-1",
        &on_postgres(&old, Some(&new)),
        dir.path(),
    )
    .await;
    let (second, _) = start_instance(
        "rolling-stage-2",
        &on_postgres(&new, Some(&old)),
        dir.path(),
    )
    .await;
    // Used on the second instance first, which moves each to the new secret; then on the first,
    // which finds it under its fallback (and moves it back); then on the second again.
    for at in [&second, &first, &second] {
        assert_eq!(
            call(at, "POST", "/get-current-time", &key, None).await,
            200,
            "{}",
            at.log()
        );
        assert_eq!(call(at, "GET", "/admin/keys", &admin, None).await, 200);
        assert_eq!(signed_call(at, &signed_id, &signed_secret).await, 200);
    }
    // A JWT signed with the new secret is verified by the instance that signs with the old one.
    let login = send(
        &client,
        "POST",
        &second.url("/login"),
        &[],
        Some(&creds.to_string()),
    )
    .await;
    assert_eq!(login.status, 200);
    let access = format!("Bearer {}", text(&login.body, "access_token"));
    for at in [&first, &second] {
        assert_eq!(call(at, "GET", "/protected", &access, None).await, 200);
    }
    first.process.terminate();
    second.process.terminate();
    schema.drop_schema().await;
}
