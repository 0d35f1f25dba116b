//! A Python client built on `requests`, written as a user of the original service would write
//! it, passes against the server: raw `Authorization` key, big JSON numbers, v0 signing with
//! `hmac`, and the register, login and protected flow; and, after the shared secret was
//! rotated, a client still on the previous one (`API_SHARED_SECRET_FALLBACKS`).
//!
//! A second client signs with RFC 9421 through the PyPI package `http-message-signatures`, as
//! `docs/api.md` shows.
//!
//! Needs `python3` with `requests` and `http-message-signatures` (`pip install requests
//! http-message-signatures`; `.ci/run` installs them). Without them a test says so and skips,
//! and fails under `REQUIRE_SERVICES=1`.

mod common;

use std::process::Command;

use common::{Spawn, spawn_with};
use request_signing::{Secret, sign_v0};
use secure_api::clock::Clock;

#[actix_web::test]
#[ignore = "needs python3 with requests"]
async fn a_client_of_the_original_service_keeps_working() {
    let has_requests = Command::new("python3")
        .args(["-c", "import requests"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_requests {
        assert!(
            !test_services::services_required(),
            "python3 with `requests` is required (REQUIRE_SERVICES=1): pip install requests"
        );
        eprintln!(
            "skipped a_client_of_the_original_service_keeps_working: needs python3 with requests"
        );
        return;
    }
    // The shared secret was rotated: clients on the old one keep working until they move.
    let shared = "the shared secret of the original service, 2026";
    let previous = "the shared secret the original service used in 2025";
    let mut options = Spawn {
        clock: Clock::system(),
        ..Spawn::default()
    };
    options
        .env
        .insert("API_SHARED_SECRET".into(), shared.into());
    options
        .env
        .insert("API_SHARED_SECRET_FALLBACKS".into(), previous.into());
    let app = spawn_with(options).await;
    let key = app.first.demo_key.key.clone();
    run_client(&app.base, &key, &[shared]).await;
    run_client(&app.base, &key, &[previous, "--signing-only"]).await;

    // A secret that is neither is refused.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let other = Secret::from("a shared secret this server never had, 2026");
    let headers = sign_v0(&key, &other, now).unwrap();
    let pairs: Vec<(&str, &str)> = headers.iter().collect();
    assert_eq!(app.post("/get-current-time", &pairs, "").await.status, 401);
}

#[actix_web::test]
#[ignore = "needs python3 with requests and http-message-signatures"]
async fn a_client_signing_with_a_third_party_rfc9421_library_is_served() {
    let found = Command::new("python3")
        .args(["-c", "import requests, http_message_signatures"])
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            !test_services::services_required(),
            "REQUIRE_SERVICES=1: pip install requests http-message-signatures"
        );
        eprintln!("skipped: needs python3 with requests and http-message-signatures");
        return;
    }
    let app = spawn_with(Spawn {
        clock: Clock::system(),
        ..Spawn::default()
    })
    .await;
    let created = app
        .create_key(serde_json::json!({"service": "orders", "signing": true}))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["signing_secret"].as_str().unwrap().to_owned();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rfc9421_client.py");
    let mut command = Command::new("python3");
    command.arg(script).arg(&app.base).arg(&id).arg(&secret);
    let output = actix_web::web::block(move || command.output())
        .await
        .unwrap()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the RFC 9421 client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

/// Runs `tests/data/original_client.py` against `base` with `key` and `args` (the shared
/// secret, then options), and checks that every check passed.
async fn run_client(base: &str, key: &str, args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/original_client.py");
    let mut command = Command::new("python3");
    command.arg(script).arg(base).arg(key).args(args);
    let output = actix_web::web::block(move || command.output())
        .await
        .unwrap()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Python client failed ({args:?}):\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
