//! API5:2023 Broken Function Level Authorization: the admin functions refuse ordinary API keys
//! and user tokens in every form, and a refused call changes nothing.

use serde_json::json;

use crate::common::spawn;
use crate::{admin, user_tokens};

#[actix_web::test]
async fn admin_routes_refuse_keys_and_user_tokens() {
    let app = spawn().await;
    let key = app.first.demo_key.key.clone();
    let id = app.first.demo_key.id.clone();
    let (access, refresh) = user_tokens(&app, "henry_api5").await;
    let credentials: Vec<(&str, String)> = vec![
        ("authorization", key.clone()),
        ("authorization", format!("Bearer {key}")),
        ("x-api-key", key.clone()),
        ("authorization", format!("Bearer {access}")),
        ("authorization", format!("Bearer {refresh}")),
        ("authorization", format!("Basic {}", app.first.admin_token)),
        ("authorization", app.first.admin_token.clone()),
    ];
    let create = json!({"service": "escalated"}).to_string();
    for (name, value) in &credentials {
        let h = [(*name, value.as_str())];
        let replies = [
            app.get("/admin/keys", &h).await,
            app.post("/admin/keys", &h, &create).await,
            app.send("DELETE", &format!("/admin/keys/{id}"), &h, None)
                .await,
            app.post(&format!("/admin/keys/{id}/rotate"), &h, "{}")
                .await,
            app.get(&format!("/admin/keys/{id}/usage"), &h).await,
        ];
        for reply in replies {
            assert_eq!(reply.status, 401, "{name}: {value}: {}", reply.body);
        }
    }
    // Nothing was created, revoked or rotated.
    let listing = app
        .get("/admin/keys", &[("authorization", &admin(&app))])
        .await;
    assert_eq!(listing.status, 200);
    let keys = listing.body.as_array().unwrap();
    assert_eq!(keys.len(), 1, "{}", listing.body);
    assert_eq!(keys[0]["status"], "active");
    let still = app
        .post("/get-current-time", &[("authorization", &key)], "")
        .await;
    assert_eq!(still.status, 200);
}
