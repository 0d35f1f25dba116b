//! Start-up and the server secret: production refuses to run without a good secret; development
//! generates one into a 0600 file and keeps it across restarts.

mod common;

use std::collections::HashMap;
use std::ffi::OsString;

use common::{Spawn, spawn_with};
use secure_api::cli::SettingsArgs;
use secure_api::clock::Clock;
use secure_api::config::{Mode, Settings};
use secure_api::startup::{Application, Env};

fn settings(dir: &std::path::Path, mode: Mode) -> Settings {
    SettingsArgs {
        bind: Some("127.0.0.1:0".parse().unwrap()),
        database_url: Some(format!("sqlite://{}", dir.join("db.sqlite").display())),
        secret_key_file: Some(dir.join("secret")),
        mode: Some(mode),
        ..SettingsArgs::default()
    }
    .resolve()
    .unwrap()
}

async fn start_error(mode: Mode, env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::from_map(
        env.iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(*v)))
            .collect::<HashMap<_, _>>(),
    );
    match Application::build_with(settings(dir.path(), mode), env, Clock::system()).await {
        Ok(_) => panic!("the server started"),
        Err(e) => e.to_string(),
    }
}

#[actix_web::test]
async fn production_refuses_a_missing_or_weak_secret_naming_what_to_set() {
    let missing = start_error(Mode::Production, &[]).await;
    assert!(missing.contains("SECRET_KEY"), "{missing}");
    for placeholder in ["changeme", "your_jwt_secret_key", "default_fallback_key"] {
        let error = start_error(Mode::Production, &[("SECRET_KEY", placeholder)]).await;
        assert!(
            error.starts_with("server secret:"),
            "{placeholder}: {error}"
        );
        assert!(!error.contains(placeholder), "{error}");
    }
    // Weak values, and the placeholder a longer one holds, are never echoed.
    for weak in [
        "short-but-private",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "q7Vd2Lx9-changeme-Rk4Tz8Mw1Hc6Np3Bf5Gj0Ys2Ue7",
    ] {
        let error = start_error(Mode::Production, &[("SECRET_KEY", weak)]).await;
        assert!(error.starts_with("server secret:"), "{weak}: {error}");
        assert!(
            !error.contains(weak) && !error.contains("changeme"),
            "the error must not echo the secret: {error}"
        );
    }
    // Development does not accept a weak secret either: it only generates a missing one.
    let weak_dev = start_error(Mode::Development, &[("SECRET_KEY", "changeme")]).await;
    assert!(weak_dev.starts_with("server secret:"), "{weak_dev}");
    let mut strong = [0u8; 48];
    rand::fill(&mut strong);
    let strong = hex::encode(strong);
    let weak_shared = start_error(
        Mode::Production,
        &[("SECRET_KEY", &strong), ("API_SHARED_SECRET", "secret")],
    )
    .await;
    assert!(
        weak_shared.starts_with("API_SHARED_SECRET:"),
        "{weak_shared}"
    );
    let good_shared = "the shared secret of the original service, 2026";
    let weak_fallback = start_error(
        Mode::Production,
        &[
            ("SECRET_KEY", &strong),
            ("API_SHARED_SECRET", good_shared),
            (
                "API_SHARED_SECRET_FALLBACKS",
                "the one from 2025 and a lot more, ok, secret",
            ),
        ],
    )
    .await;
    assert!(
        weak_fallback.starts_with("API_SHARED_SECRET_FALLBACKS:"),
        "{weak_fallback}"
    );
    let orphan = start_error(
        Mode::Production,
        &[
            ("SECRET_KEY", &strong),
            ("API_SHARED_SECRET_FALLBACKS", good_shared),
        ],
    )
    .await;
    assert!(orphan.contains("without API_SHARED_SECRET"), "{orphan}");
    // A weak fallback for the server secret stops start-up too, naming it, never echoing it.
    let weak_fallback = start_error(
        Mode::Production,
        &[
            ("SECRET_KEY", &strong),
            ("SECRET_KEY_FALLBACKS", "short-but-private"),
        ],
    )
    .await;
    assert!(
        weak_fallback.contains("SECRET_KEY_FALLBACKS"),
        "{weak_fallback}"
    );
    assert!(
        !weak_fallback.contains("short-but-private"),
        "{weak_fallback}"
    );
    assert!(!orphan.contains(good_shared), "{orphan}");
}

#[actix_web::test]
async fn development_generates_a_private_secret_and_keeps_it_across_restarts() {
    let mut options = Spawn::default();
    options.env.remove("SECRET_KEY");
    let first = spawn_with(options).await;
    let dir = first.dir.clone();
    let secret_file = dir.path().join("secure-api.secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let saved = std::fs::read(&secret_file).unwrap();
    let creds = r#"{"username": "erin", "password": "restart-proof password"}"#;
    assert_eq!(first.post("/register", &[], creds).await.status, 201);
    let login = first.post("/login", &[], creds).await;
    let token = format!("Bearer {}", login.body["access_token"].as_str().unwrap());
    first.stop().await;

    let mut options = Spawn {
        dir: Some(dir),
        ..Spawn::default()
    };
    options.env.remove("SECRET_KEY");
    let second = spawn_with(options).await;
    assert_eq!(
        std::fs::read(&secret_file).unwrap(),
        saved,
        "the same secret is reused"
    );
    let me = second.get("/protected", &[("authorization", &token)]).await;
    assert_eq!(
        me.status, 200,
        "a token from before the restart still verifies"
    );
}
