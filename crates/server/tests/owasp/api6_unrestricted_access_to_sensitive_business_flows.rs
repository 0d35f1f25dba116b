//! API6:2023 Unrestricted Access to Sensitive Business Flows: mass registration is limited per
//! client, without locking other clients out.

use serde_json::json;

use crate::common::{Spawn, spawn_with};
use secure_api::cli::SettingsArgs;

#[actix_web::test]
async fn one_client_registers_at_most_five_accounts_a_minute() {
    let app = spawn_with(Spawn {
        args: SettingsArgs {
            trusted_proxies: Some(vec!["127.0.0.1".to_owned()]),
            ..SettingsArgs::default()
        },
        ..Spawn::default()
    })
    .await;
    let register = |name: String, from: &'static str| {
        let app = &app;
        async move {
            app.post(
                "/register",
                &[("x-forwarded-for", from)],
                &json!({"username": name, "password": "a long enough password 6"}).to_string(),
            )
            .await
            .status
        }
    };
    let mut statuses = Vec::new();
    for i in 0..8 {
        statuses.push(register(format!("bot{i}"), "203.0.113.66").await);
    }
    assert_eq!(statuses, [201, 201, 201, 201, 201, 429, 429, 429]);
    // The accounts refused were not created: another client can take those names.
    assert_eq!(register("bot5".to_owned(), "203.0.113.67").await, 201);
    assert_eq!(register("bot0".to_owned(), "203.0.113.67").await, 409);
}
