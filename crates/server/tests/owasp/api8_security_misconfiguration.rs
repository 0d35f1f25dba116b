//! API8:2023 Security Misconfiguration: no placeholder or default secret runs, no answer shows
//! debug output, and every answer carries the security headers.

use std::collections::HashMap;
use std::ffi::OsString;

use crate::common::spawn;
use secure_api::cli::SettingsArgs;
use secure_api::clock::Clock;
use secure_api::config::Mode;
use secure_api::startup::{Application, Env};

#[actix_web::test]
async fn placeholder_secrets_are_refused_in_production() {
    for placeholder in [
        "changeme",
        "secret",
        "your_jwt_secret_key",
        "supersecretkey",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let settings = SettingsArgs {
            bind: Some("127.0.0.1:0".parse().unwrap()),
            database_url: Some(format!("sqlite://{}", dir.path().join("db").display())),
            secret_key_file: Some(dir.path().join("secret")),
            mode: Some(Mode::Production),
            ..SettingsArgs::default()
        }
        .resolve()
        .unwrap();
        let env = Env::from_map(HashMap::from([(
            "SECRET_KEY".to_owned(),
            OsString::from(placeholder),
        )]));
        let refused = Application::build_with(settings, env, Clock::system()).await;
        let error = refused
            .expect_err("a placeholder secret must not start")
            .to_string();
        assert!(
            error.starts_with("server secret:"),
            "{placeholder}: {error}"
        );
    }
}

#[actix_web::test]
async fn errors_show_no_debug_output_and_every_answer_has_the_security_headers() {
    let app = spawn().await;
    let key = app.first.demo_key.key.clone();
    let h = [("authorization", key.as_str())];
    let answers = [
        app.post("/get-current-time", &h, "").await,
        app.post("/get-current-time", &[], "").await,
        app.post("/check-prime", &h, "{not json").await,
        app.post("/check-prime", &h, r#"{"number": -1}"#).await,
        app.get("/get-current-time", &h).await,
        app.get("/no-such-path", &[]).await,
        app.get("/weather?city=London", &h).await, // 500: no upstream key configured
        app.send("TRACE", "/get-current-time", &[], None).await,
        app.send(
            "OPTIONS",
            "/login",
            &[("origin", "https://evil.example")],
            None,
        )
        .await,
        app.get("/healthz", &[]).await,
        app.get("/docs", &[]).await,
    ];
    for reply in &answers {
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
        ] {
            assert_eq!(
                reply.header(name).as_deref(),
                Some(value),
                "{name} on a {}: {}",
                reply.status,
                reply.text
            );
        }
        assert!(reply.header("content-security-policy").is_some());
        assert!(reply.header("cache-control").is_some());
        assert!(reply.header("x-request-id").is_some());
        assert!(
            reply.header("access-control-allow-origin").is_none(),
            "no CORS"
        );
        assert!(reply.header("server").is_none(), "no server banner");
        if reply.status >= 400 {
            let text = reply.text.to_lowercase();
            for debug in [
                "panicked",
                "backtrace",
                ".rs:",
                "sqlx",
                "actix",
                "at src/",
                "thread '",
            ] {
                assert!(!text.contains(debug), "{debug} in {}", reply.text);
            }
            assert_eq!(
                reply.header("content-type").as_deref(),
                Some("application/problem+json")
            );
        }
    }
}
