//! No log line the server writes contains a key, a signing secret, a password or a token.
//!
//! This binary installs a subscriber that records every event at DEBUG and above from every
//! crate, drives the API through each credential path, and searches the output. It also reads
//! the bundled binary's own log, where every line of a request names the request.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::process::{admin_token, create_key, random_hex, send, start_instance};
use common::{NOON, spawn};
use request_signing::{FakeClock, Secret, Signer};
use serde_json::json;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[actix_web::test]
async fn no_log_line_contains_a_secret() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let app = spawn().await;
    let app_demo_id = app.first.demo_key.id.clone();
    let mut secrets = vec![
        app.first.admin_token.clone(),
        app.first.demo_key.key.clone(),
        app.env["SECRET_KEY"].clone(),
    ];
    let signing = app
        .create_key(json!({"service": "audit", "signing": true, "daily_quota": 2}))
        .await;
    let (id, key, secret) = (
        signing["id"].as_str().unwrap(),
        signing["key"].as_str().unwrap(),
        signing["signing_secret"].as_str().unwrap(),
    );
    secrets.extend([key.to_owned(), secret.to_owned()]);

    let demo = app.first.demo_key.key.clone();
    let traced = app
        .post(
            "/get-current-time",
            &[("authorization", &demo), ("x-request-id", "trace-logs-1")],
            "",
        )
        .await;
    assert_eq!(
        traced.header("x-request-id").as_deref(),
        Some("trace-logs-1")
    );
    app.post("/check-prime", &[("x-api-key", &demo)], r#"{"number": 97}"#)
        .await;
    app.post(
        "/get-current-time",
        &[("authorization", &format!("{demo}x"))],
        "",
    )
    .await;
    app.post("/get-current-time", &[("authorization", key)], "")
        .await;
    let signer = Signer::new(id, Secret::from(secret))
        .unwrap()
        .with_clock(FakeClock::at_unix_secs(NOON));
    for _ in 0..3 {
        let headers = signer
            .sign("POST", &app.url("/get-current-time"), b"")
            .unwrap();
        let pairs: Vec<(&str, &str)> = headers.iter().collect();
        app.post("/get-current-time", &pairs, "").await;
        secrets.push(headers.signature().trim_start_matches("v1=").to_owned());
    }

    let password = "a password that must not be logged";
    secrets.push(password.to_owned());
    let creds = json!({"username": "dave", "password": password}).to_string();
    app.post("/register", &[], &creds).await;
    let login = app.post("/login", &[], &creds).await;
    let access = login.body["access_token"].as_str().unwrap().to_owned();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    app.get(
        "/protected",
        &[("authorization", &format!("Bearer {access}"))],
    )
    .await;
    app.post(
        "/refresh",
        &[],
        &json!({"refresh_token": refresh}).to_string(),
    )
    .await;
    app.post(
        "/login",
        &[],
        &json!({"username": "dave", "password": "wrong guess"}).to_string(),
    )
    .await;
    secrets.extend([access, refresh]);

    let admin = format!("Bearer {}", app.first.admin_token);
    app.get("/admin/keys", &[("authorization", &admin)]).await;
    app.post(
        &format!("/admin/keys/{id}/rotate"),
        &[("authorization", &admin)],
        "{}",
    )
    .await;
    // A key and an admin token pasted where an id goes: refused, and neither is logged with
    // the path.
    for path in [
        format!("/admin/keys/{demo}"),
        format!("/admin/tokens/{}", app.first.admin_token),
    ] {
        let refused = app
            .send("DELETE", &path, &[("authorization", &admin)], None)
            .await;
        assert_eq!(refused.status, 400, "{}", refused.body);
    }
    // The same percent-encoded or after other text: the key after its first byte must not show.
    secrets.push(demo[1..].to_owned());
    for path in [
        format!("/admin/keys/%73{}", &demo[1..]),
        format!("/admin/keys/x{demo}"),
        format!("/admin/keys/%20{demo}/rotate"),
    ] {
        let refused = app
            .send("DELETE", &path, &[("authorization", &admin)], None)
            .await;
        assert!(
            (400..500).contains(&refused.status),
            "{path}: {}",
            refused.body
        );
    }
    // A key or token sent as the request id is replaced, so neither the log nor the audit log
    // gets it.
    for (sent_as_id, authorization) in [
        (&demo, demo.clone()),
        (&app.first.admin_token, admin.clone()),
    ] {
        let answered = app
            .send(
                "GET",
                "/whoami",
                &[
                    ("authorization", &authorization),
                    ("x-request-id", sent_as_id),
                ],
                None,
            )
            .await;
        let id = answered.header("x-request-id").unwrap();
        assert_ne!(&id, sent_as_id);
        assert_eq!(id.len(), 16, "{id}");
    }
    app.stop().await;

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("request"),
        "the subscriber recorded the access log:\n{logs}"
    );
    // Every line written while serving a request names it, and the key by its id.
    let traced: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("id=trace-logs-1"))
        .collect();
    assert!(
        traced.iter().any(|l| l.contains("authenticated")),
        "the authentication line carries the request id:\n{logs}"
    );
    let access = traced
        .iter()
        .find(|l| l.contains("status=200"))
        .unwrap_or_else(|| panic!("the access line carries the request id:\n{logs}"));
    assert!(
        access.contains(&format!("key={}", app_demo_id)),
        "the access line names the key's id: {access}"
    );
    for secret in &secrets {
        assert!(!secret.is_empty());
        assert!(
            !logs.contains(secret.as_str()),
            "a secret was logged:\n{logs}"
        );
    }
}

/// The binary's text log names the request on each line written while serving it, and ends the
/// request with its access line: with the default filter, where requests carry their fields
/// without a `tracing` span, and with a span directive in `RUST_LOG`, which needs the span. An
/// empty `RUST_LOG` is the default filter.
#[actix_web::test]
async fn the_binary_names_the_request_on_its_lines() {
    for (rust_log, debug_lines) in [("info", false), ("info,[request]=debug", true), ("", false)] {
        let dir = tempfile::tempdir().unwrap();
        let (server, made) = start_with_a_key(rust_log, dir.path()).await;
        let client = awc::Client::default();
        let (key, key_id) = (made["key"].as_str().unwrap(), made["id"].as_str().unwrap());
        let answered = send(
            &client,
            "POST",
            &server.url("/get-current-time?trace=1"),
            &[("authorization", key), ("x-request-id", "trace-bin-1")],
            Some(""),
        )
        .await;
        assert_eq!(answered.status, 200, "{rust_log}: {}", answered.body);
        let request =
            format!("request{{id=trace-bin-1 method=POST path=/get-current-time key={key_id}}}: ");
        let access = format!("  INFO {request}secure_api::observe: request status=200 micros=");
        // Lines reach the log within about 10 ms of being written.
        let mut log = server.log();
        for _ in 0..100 {
            if log.contains(&access) {
                break;
            }
            actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
            log = server.log();
        }
        assert!(
            log.contains(&access),
            "{rust_log}: no access line {access:?}:\n{log}"
        );
        let authenticated = format!(" DEBUG {request}secure_api::auth::chain: authenticated");
        assert_eq!(
            log.contains(&authenticated),
            debug_lines,
            "{rust_log}:\n{log}"
        );
        assert!(
            !log.contains(key) && !log.contains("trace=1"),
            "{rust_log}:\n{log}"
        );
        drop(server);
    }
}

/// The binary, started in `dir` with one worker and `rust_log`, and a key made on it.
async fn start_with_a_key(
    rust_log: &str,
    dir: &std::path::Path,
) -> (common::process::Instance, serde_json::Value) {
    let env: Vec<(String, String)> = vec![
        ("SECRET_KEY".to_owned(), random_hex(48)),
        ("SECURE_API_WORKERS".to_owned(), "1".to_owned()),
        ("RUST_LOG".to_owned(), rust_log.to_owned()),
    ];
    let (server, banner) = start_instance("logs", &env, dir).await;
    let made = create_key(
        &awc::Client::default(),
        &server,
        &admin_token(&banner),
        json!({"service": "logs"}),
    )
    .await;
    (server, made)
}

/// `--help` shows each setting's variable, and the value where it is one: never the value of a
/// URL that may hold a password.
#[test]
fn help_never_shows_a_connection_password() {
    for flag in ["--help", "-h"] {
        let out = std::process::Command::new(common::process::binary())
            .arg(flag)
            .env("DATABASE_URL", "postgres://app:hunter2-db@db.internal/keys")
            .env("REDIS_URL", "redis://:hunter2-redis@cache:6379")
            .env("SECURE_API_WORKERS", "3")
            .output()
            .expect("the binary runs");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{flag}: {help}");
        assert!(
            help.contains("DATABASE_URL") && help.contains("REDIS_URL"),
            "{help}"
        );
        assert!(!help.contains("hunter2"), "{flag} shows a password: {help}");
        // Other settings still show where their value comes from.
        assert!(help.contains("SECURE_API_WORKERS=3"), "{help}");
    }
}

/// An error repeated on every call until an operator acts (no OpenWeather key configured) is
/// logged at most once a second, and names its request also when the access lines are filtered
/// out. A malformed request writes no ERROR line under the default filter.
#[actix_web::test]
async fn repeated_errors_are_throttled_and_name_their_request() {
    use std::io::{Read as _, Write as _};
    for rust_log in ["info,secure_api::observe=warn", ""] {
        let dir = tempfile::tempdir().unwrap();
        let (server, made) = start_with_a_key(rust_log, dir.path()).await;
        let client = awc::Client::default();
        let key = made["key"].as_str().unwrap();
        let started = std::time::Instant::now();
        for i in 0..40 {
            let id = format!("weather-{i}");
            let reply = send(
                &client,
                "GET",
                &server.url("/weather?city=Paris"),
                &[("authorization", key), ("x-request-id", &id)],
                None,
            )
            .await;
            assert_eq!(reply.status, 500, "{rust_log}: {}", reply.body);
        }
        let seconds = started.elapsed().as_secs() + 1;
        let address = server.base.trim_start_matches("http://").to_owned();
        let answer = actix_web::rt::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(address).unwrap();
            stream
                .write_all(b"GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            String::from_utf8_lossy(&answer).into_owned()
        })
        .await
        .unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        // Lines reach the log within about 10 ms of being written.
        actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
        let log = server.log();
        let errors: Vec<&str> = log
            .lines()
            .filter(|line| line.contains("server configuration error"))
            .collect();
        assert!(
            !errors.is_empty() && errors.len() as u64 <= seconds,
            "{rust_log}: {} lines in {seconds} s:\n{log}",
            errors.len()
        );
        for line in &errors {
            assert!(line.contains("request{id=weather-"), "{rust_log}: {line}");
        }
        if rust_log.is_empty() {
            assert!(!log.contains("stream error"), "{log}");
        }
        drop(server);
    }
}
