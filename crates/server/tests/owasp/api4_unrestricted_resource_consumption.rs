//! API4:2023 Unrestricted Resource Consumption: the body size, the number size, the request
//! rate and the concurrency of argon2 are all bounded.

use serde_json::json;

use crate::common::{Spawn, sample, spawn, spawn_with};
use secure_api::cli::SettingsArgs;

#[actix_web::test]
async fn bodies_and_numbers_over_their_limits_are_refused_unread() {
    let app = spawn().await;
    let key = app.first.demo_key.key.clone();
    let h = [("authorization", key.as_str())];
    let big_body = format!(r#"{{"number": 7, "pad": "{}"}}"#, "x".repeat(17 * 1024));
    let reply = app.post("/check-prime", &h, &big_body).await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    let reply = app.post("/register", &[], &big_body).await;
    assert_eq!(reply.status, 413);
    // 4,097 bits as hex, and as a bare decimal over the limit.
    let hex = format!(r#"{{"number": "0x1{}"}}"#, "0".repeat(1024));
    let reply = app.post("/check-prime", &h, &hex).await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert!(reply.body["detail"].as_str().unwrap().contains("4096"));
    let decimal = format!(r#"{{"number": 1{}}}"#, "0".repeat(1300));
    let reply = app.post("/check-prime", &h, &decimal).await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    // Rounds are bounded too.
    let reply = app
        .post("/check-prime", &h, r#"{"number": 97, "rounds": 100000}"#)
        .await;
    assert_eq!(reply.status, 400);
}

#[actix_web::test]
async fn the_request_rate_is_bounded_per_key() {
    let app = spawn().await;
    let created = app
        .create_key(json!({"service": "rate", "daily_quota": 3}))
        .await;
    let key = created["key"].as_str().unwrap();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            app.post("/get-current-time", &[("authorization", key)], "")
                .await
                .status,
        );
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    // A big number costs more of the quota than a small one: 3 calls buy no 3,000-bit test.
    let created = app
        .create_key(json!({"service": "rate2", "daily_quota": 2}))
        .await;
    let key = created["key"].as_str().unwrap();
    let big = format!(r#"{{"number": "0x1{}"}}"#, "0".repeat(750));
    let reply = app
        .post("/check-prime", &[("authorization", key)], &big)
        .await;
    assert_eq!(reply.status, 429, "{}", reply.body);
}

#[actix_web::test]
async fn password_hashing_never_runs_more_than_its_concurrency() {
    let app = spawn_with(Spawn {
        args: SettingsArgs {
            hash_concurrency: Some(1),
            // Each attempt comes "from" another client, so the login limit stays out of the way.
            trusted_proxies: Some(vec!["127.0.0.1".to_owned()]),
            ..SettingsArgs::default()
        },
        ..Spawn::default()
    })
    .await;
    let logins = futures_util::future::join_all((0..6).map(|i| {
        let app = &app;
        async move {
            let from = format!("198.51.100.{i}");
            app.post(
                "/login",
                &[("x-forwarded-for", from.as_str())],
                &json!({"username": format!("flood{i}"), "password": "wrong password here"})
                    .to_string(),
            )
            .await
            .status
        }
    }));
    let sampler = async {
        let mut running = Vec::new();
        for _ in 0..20 {
            let page = app.metrics_page().await;
            running.push(sample(&page, "secure_api_argon2_running", "").unwrap());
            actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        running
    };
    let (statuses, running) = tokio::join!(logins, sampler);
    assert!(statuses.iter().all(|&s| s == 401), "{statuses:?}");
    assert!(running.iter().all(|&r| r <= 1.0), "{running:?}");
}
