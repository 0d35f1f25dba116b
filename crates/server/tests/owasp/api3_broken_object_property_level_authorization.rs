//! API3:2023 Broken Object Property Level Authorization: no response carries a hash, a stored
//! secret or an internal property, and no request may set a property a client does not own.

use serde_json::json;

use crate::common::spawn;
use crate::{admin, strings, user_tokens};

/// Whether `text` holds a run of 32 or more hex digits (a hash or a raw secret).
fn has_long_hex(text: &str) -> bool {
    let mut run = 0;
    for b in text.bytes() {
        run = if b.is_ascii_hexdigit() { run + 1 } else { 0 };
        if run >= 32 {
            return true;
        }
    }
    false
}

#[actix_web::test]
async fn no_response_carries_a_hash_or_a_stored_secret() {
    let app = spawn().await;
    let auth = admin(&app);
    let h = [("authorization", auth.as_str())];
    let created = app
        .create_key(json!({"service": "props", "signing": true}))
        .await;
    let plain = app.create_key(json!({"service": "props2"})).await;
    let (access, _) = user_tokens(&app, "erin_api3").await;
    let bearer = format!("Bearer {access}");
    let plain_key = plain["key"].as_str().unwrap();

    let replies = [
        app.get("/admin/keys", &h).await,
        app.get(
            &format!("/admin/keys/{}/usage", created["id"].as_str().unwrap()),
            &h,
        )
        .await,
        app.post(
            &format!("/admin/keys/{}/rotate", plain["id"].as_str().unwrap()),
            &h,
            "{}",
        )
        .await,
        app.get("/whoami", &[("authorization", plain_key)]).await,
        app.get("/protected", &[("authorization", bearer.as_str())])
            .await,
        app.post(
            "/register",
            &[],
            &json!({"username": "frank_api3", "password": "a long enough password 2"}).to_string(),
        )
        .await,
    ];
    for reply in &replies {
        assert!(reply.status < 300, "{}", reply.text);
        for word in strings(&reply.body) {
            let lower = word.to_lowercase();
            assert!(
                !lower.contains("hash") && !lower.contains("password") && !lower.contains("pepper"),
                "a hash or password property: {}",
                reply.text
            );
            assert!(!word.starts_with("$argon2"), "{}", reply.text);
        }
        // The rotate answer shows the new key once; nothing else shows secrets.
        if !reply.text.contains("\"key\":") {
            assert!(!has_long_hex(&reply.text), "{}", reply.text);
        }
    }
    let listing = replies[0].text.clone();
    assert!(!listing.contains(plain_key), "a key in the listing");
    assert!(
        !listing.contains(created["signing_secret"].as_str().unwrap()),
        "a signing secret in the listing"
    );
    assert!(!listing.contains("signing_secret"));
}

#[actix_web::test]
async fn properties_a_client_does_not_own_are_refused() {
    let app = spawn().await;
    let auth = admin(&app);
    let h = [("authorization", auth.as_str())];
    for body in [
        json!({"username": "gina_api3", "password": "a long enough password 3", "is_admin": true}),
        json!({"username": "gina_api3", "password": "a long enough password 3", "id": "u-admin"}),
        json!({"username": "gina_api3", "password": "a long enough password 3", "password_hash": "$argon2id$"}),
    ] {
        let reply = app.post("/register", &[], &body.to_string()).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
    }
    for body in [
        json!({"service": "x", "key_hash": "00"}),
        json!({"service": "x", "id": "sapi_chosen"}),
        json!({"service": "x", "revoked_at": null, "created_at": 0}),
        json!({"service": "x", "signing_secret": "mine"}),
    ] {
        let reply = app.post("/admin/keys", &h, &body.to_string()).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
    }
    let reply = app
        .post(
            "/check-prime",
            &[("authorization", &app.first.demo_key.key)],
            r#"{"number": 7, "cost": 0}"#,
        )
        .await;
    assert_eq!(
        reply.status, 400,
        "the quota cost is not the client's to set"
    );
}
