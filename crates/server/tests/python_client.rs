//! A Python client built on `requests`, written as a user of the original service would write
//! it, passes against the server: raw `Authorization` key, big JSON numbers, v0 signing with
//! `hmac`, and the register, login and protected flow.
//!
//! Needs `python3` with `requests` (`pip install requests`; `.ci/run` installs it). Without
//! `requests` the test says so and skips, and fails under `REQUIRE_SERVICES=1`.

mod common;

use std::process::Command;

use common::{Spawn, spawn_with};
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
    let shared = "the shared secret of the original service, 2026";
    let mut options = Spawn {
        clock: Clock::system(),
        ..Spawn::default()
    };
    options
        .env
        .insert("API_SHARED_SECRET".into(), shared.into());
    let app = spawn_with(options).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/original_client.py");
    let base = app.base.clone();
    let key = app.first.demo_key.key.clone();
    let output = actix_web::web::block(move || {
        Command::new("python3")
            .args([script, &base, &key, shared])
            .output()
    })
    .await
    .unwrap()
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Python client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
