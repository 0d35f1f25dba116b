//! API2:2023 Broken Authentication: brute force is limited, credentials are strong, forged or
//! confused tokens fail, and the answers do not tell a wrong username from a wrong password.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::common::spawn;
use crate::user_tokens;

#[actix_web::test]
async fn password_guessing_is_limited_to_five_a_minute() {
    let app = spawn().await;
    let mut statuses = Vec::new();
    for guess in 0..8 {
        let body = json!({"username": "victim_api2", "password": format!("guess number {guess}")});
        statuses.push(app.post("/login", &[], &body.to_string()).await.status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
}

#[actix_web::test]
async fn keys_and_admin_tokens_are_long_random_and_checksummed() {
    let app = spawn().await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let created = app.create_key(json!({"service": "strength"})).await;
        let key = created["key"].as_str().unwrap().to_owned();
        let body = key.strip_prefix("sapi_").expect("the key prefix");
        // 6 timestamp characters, 32 random ones (190 bits from the OS CSPRNG), 6 of checksum.
        assert_eq!(body.len(), 44, "{key}");
        assert!(body.bytes().all(|b| b.is_ascii_alphanumeric()), "{key}");
        assert!(seen.insert(key.clone()), "a repeated key");
        // One changed character: refused offline, before any lookup.
        let mut typo = key.into_bytes();
        let last = typo.len() - 1;
        typo[last] = if typo[last] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        let reply = app
            .post("/get-current-time", &[("authorization", &typo)], "")
            .await;
        assert_eq!(reply.status, 401);
    }
    // 32 random characters and 6 of checksum.
    let admin = &app.first.admin_token;
    let body = admin.strip_prefix("sadm_").expect("the admin prefix");
    assert_eq!(body.len(), 38, "{admin}");
    assert!(body.bytes().all(|b| b.is_ascii_alphanumeric()), "{admin}");
}

fn jwt(header: serde_json::Value, claims: &serde_json::Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

#[actix_web::test]
async fn alg_confusion_kind_confusion_and_forgeries_fail() {
    let app = spawn().await;
    let (access, refresh) = user_tokens(&app, "carol_api2").await;
    let claims: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(access.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let signature = URL_SAFE_NO_PAD
        .decode(access.split('.').nth(2).unwrap())
        .unwrap();
    let mut longer = claims.clone();
    longer["exp"] = json!(4_102_444_800_i64);
    let forged = [
        // No signature at all.
        jwt(json!({"alg": "none", "typ": "JWT"}), &claims, b""),
        jwt(json!({"alg": "None", "typ": "JWT"}), &claims, b""),
        // The real signature under another algorithm's name.
        jwt(json!({"alg": "HS512", "typ": "JWT"}), &claims, &signature),
        jwt(json!({"alg": "RS256", "typ": "JWT"}), &claims, &signature),
        // A longer life with the old signature.
        jwt(json!({"alg": "HS256", "typ": "JWT"}), &longer, &signature),
        // The refresh token where an access token belongs.
        refresh.clone(),
        // An API key where a token belongs.
        app.first.demo_key.key.clone(),
        "".to_owned(),
        "a.b".to_owned(),
        "a.b.c.d".to_owned(),
    ];
    for token in forged {
        let reply = app
            .get(
                "/protected",
                &[("authorization", &format!("Bearer {token}"))],
            )
            .await;
        assert_eq!(reply.status, 401, "{token}: {}", reply.body);
    }
    // And the access token where a refresh token belongs.
    let reply = app
        .post(
            "/refresh",
            &[],
            &json!({"refresh_token": access}).to_string(),
        )
        .await;
    assert_eq!(reply.status, 401);
}

#[actix_web::test]
async fn a_wrong_username_answers_exactly_like_a_wrong_password() {
    let app = spawn().await;
    user_tokens(&app, "dave_api2").await;
    let wrong_password = app
        .post(
            "/login",
            &[],
            &json!({"username": "dave_api2", "password": "not dave's password"}).to_string(),
        )
        .await;
    let no_such_user = app
        .post(
            "/login",
            &[],
            &json!({"username": "nobody_api2", "password": "not dave's password"}).to_string(),
        )
        .await;
    assert_eq!(wrong_password.status, 401);
    assert_eq!(wrong_password.status, no_such_user.status);
    assert_eq!(wrong_password.text, no_such_user.text);
    // Both verified a hash (a dummy one for the unknown user), so both took an argon2 run:
    // the time does not tell them apart either (the dummy path is unit-tested in
    // `auth::password`).
}
