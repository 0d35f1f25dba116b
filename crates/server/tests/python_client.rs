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
    if !python_has(&["requests"]) {
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
    if !python_has(&["requests", "http_message_signatures"]) {
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
    run_script("rfc9421_client.py", &[&app.base, &id, &secret]).await;
}

/// Runs `tests/data/original_client.py` against `base` with `key` and `args` (the shared
/// secret, then options).
async fn run_client(base: &str, key: &str, args: &[&str]) {
    let mut all = vec![base, key];
    all.extend_from_slice(args);
    run_script("original_client.py", &all).await;
}

/// Whether python3 can import every one of `modules`; when it cannot, says so (and fails under
/// `REQUIRE_SERVICES=1`).
fn python_has(modules: &[&str]) -> bool {
    let found = Command::new("python3")
        .args(["-c", &format!("import {}", modules.join(", "))])
        .status()
        .is_ok_and(|s| s.success());
    let install = format!("pip install {}", modules.join(" ").replace('_', "-"));
    assert!(
        found || !test_services::services_required(),
        "REQUIRE_SERVICES=1 but python3 lacks {modules:?}: {install}"
    );
    if !found {
        eprintln!("skipped: python3 lacks {modules:?}; {install}");
    }
    found
}

/// Runs `tests/data/<script>` with `args` and checks that it printed "all checks passed".
async fn run_script(script: &str, args: &[&str]) {
    let path = format!("{}/tests/data/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut command = Command::new("python3");
    command.arg(path).args(args);
    let output = actix_web::web::block(move || command.output())
        .await
        .unwrap()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed ({args:?}):\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("all checks passed"), "{script}: {stdout}");
}
