//! What operators rely on: request ids, `/readyz`, fail policies, and HTTPS with `--tls-cert`.
//! (`/metrics` has a test binary of its own, `tests/metrics.rs`, so that its counts are exact.)

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{NOON, Spawn, spawn, spawn_with};
use secure_api::cli::SettingsArgs;
use serde_json::json;

#[actix_web::test]
async fn every_response_carries_a_request_id_and_a_safe_inbound_one_is_kept() {
    let app = spawn().await;
    let first = app.get("/healthz", &[]).await;
    let second = app.get("/healthz", &[]).await;
    let id = first.header("x-request-id").expect("a request id");
    assert_eq!(id.len(), 16);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(Some(id), second.header("x-request-id"));

    let kept = app
        .get("/healthz", &[("x-request-id", "trace-42.abc_DEF")])
        .await;
    assert_eq!(
        kept.header("x-request-id").as_deref(),
        Some("trace-42.abc_DEF")
    );
    for hostile in ["a b", "<script>", &"x".repeat(65), "a/../b"] {
        let replaced = app.get("/healthz", &[("x-request-id", hostile)]).await;
        let id = replaced.header("x-request-id").expect("a request id");
        assert_ne!(id, hostile);
        assert_eq!(id.len(), 16, "{hostile:?} was replaced by a fresh id");
    }
    // Errors too: the id is added after the problem body is built.
    let missing = app.post("/get-current-time", &[], "").await;
    assert_eq!(missing.status, 401);
    assert!(missing.header("x-request-id").is_some());
}

#[actix_web::test]
async fn readiness_reports_the_database_and_omits_redis_when_unused() {
    let app = spawn().await;
    let ready = app.get("/readyz", &[]).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["database"], true);
    assert!(ready.body.get("redis").is_none(), "{}", ready.body);
    let alive = app.get("/healthz", &[]).await;
    assert_eq!(alive.body["status"], "ok");
}

/// `args` with a Redis URL on a free port where nothing listens.
fn unreachable_redis(args: SettingsArgs) -> SettingsArgs {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    SettingsArgs {
        redis_url: Some(format!("redis://127.0.0.1:{port}")),
        redis_timeout_ms: Some(200),
        ..args
    }
}

#[actix_web::test]
async fn readiness_fails_while_redis_does_not_answer() {
    // Redis is "down" from the start, and start-up still works.
    let app = spawn_with(Spawn {
        args: unreachable_redis(SettingsArgs::default()),
        ..Spawn::default()
    })
    .await;
    let ready = app.get("/readyz", &[]).await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.body["redis"], false);
    assert_eq!(ready.body["database"], true);
    // The default fail policy for quotas is open: calls are served, uncounted.
    let key = app.first.demo_key.key.clone();
    let call = app
        .post("/get-current-time", &[("authorization", &key)], "")
        .await;
    assert_eq!(call.status, 200, "{}", call.body);
    assert!(call.header("x-ratelimit-remaining").is_none());
    // The admin usage of a key needs Redis: 503, not 500.
    let auth = format!("Bearer {}", app.first.admin_token);
    let usage = app
        .get(
            &format!("/admin/keys/{}/usage", app.first.demo_key.id),
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(usage.status, 503, "{}", usage.body);
    let page = app.metrics_page().await;
    assert!(
        common::sample(
            &page,
            "secure_api_redis_fallbacks_total",
            "concern=\"quota\",policy=\"open\""
        )
        .is_some_and(|n| n >= 1.0),
        "{page}"
    );
}

#[actix_web::test]
async fn quotas_fail_closed_when_configured() {
    let app = spawn_with(Spawn {
        args: unreachable_redis(SettingsArgs {
            redis_fail_quota: Some(secure_api::config::FailPolicy::Closed),
            redis_fail_login: Some(secure_api::config::FailPolicy::Closed),
            ..SettingsArgs::default()
        }),
        ..Spawn::default()
    })
    .await;
    let key = app.first.demo_key.key.clone();
    let call = app
        .post("/get-current-time", &[("authorization", &key)], "")
        .await;
    assert_eq!(call.status, 503, "{}", call.body);
    assert_eq!(call.header("retry-after").as_deref(), Some("1"));
    assert_eq!(call.body["type"], "/problems/unavailable");
    let login = app
        .post(
            "/login",
            &[],
            r#"{"username": "nobody", "password": "not a real password"}"#,
        )
        .await;
    assert_eq!(login.status, 503, "{}", login.body);
}

fn https_client(cert_pem: &str) -> awc::Client {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(config)))
        .timeout(Duration::from_secs(30))
        .finish()
}

#[actix_web::test]
async fn https_with_a_certificate_made_in_the_test() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert_pem = certified.cert.pem();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();

    let app = spawn_with(Spawn {
        args: SettingsArgs {
            tls_cert: Some(cert),
            tls_key: Some(key),
            ..SettingsArgs::default()
        },
        dir: Some(dir),
        ..Spawn::default()
    })
    .await;
    let port = app.base.rsplit(':').next().unwrap().to_owned();
    let client = https_client(&cert_pem);
    let demo = app.first.demo_key.key.clone();
    for host in ["localhost", "127.0.0.1"] {
        let mut res = client
            .post(format!("https://{host}:{port}/get-current-time"))
            .insert_header(("authorization", demo.as_str()))
            .send()
            .await
            .expect("an HTTPS answer");
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(body["currentTime"].is_string(), "{body}");
    }
    // Plain HTTP on the TLS port gets no answer in clear.
    let plain = app.client.get(format!("{}/healthz", app.base)).send().await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    // A client that does not trust the certificate is refused.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let untrusting = https_client(&other.cert.pem());
    assert!(
        untrusting
            .get(format!("https://localhost:{port}/healthz"))
            .send()
            .await
            .is_err()
    );
}

#[actix_web::test]
async fn unusable_tls_files_stop_start_up_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, "not a certificate").unwrap();
    std::fs::write(&key, "not a key either").unwrap();
    let mut args = SettingsArgs {
        bind: Some("127.0.0.1:0".parse().unwrap()),
        database_url: Some("sqlite::memory:".to_owned()),
        tls_cert: Some(cert.clone()),
        tls_key: Some(key),
        ..SettingsArgs::default()
    };
    args.secret_key_file = Some(dir.path().join("secret"));
    let settings = args.resolve().unwrap();
    let error = secure_api::startup::Application::build_with(
        settings,
        secure_api::startup::Env::from_map(Default::default()),
        secure_api::clock::Clock::system(),
    )
    .await
    .expect_err("an unusable certificate stops start-up");
    let message = error.to_string();
    assert!(message.contains("TLS"), "{message}");
    assert!(message.contains("cert.pem"), "{message}");

    // A key that is not the certificate's: both files named.
    let made = |name: &str| rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    let (one, other) = (made("localhost"), made("example.test"));
    let mismatched = dir.path().join("other-key.pem");
    std::fs::write(&cert, one.cert.pem()).unwrap();
    std::fs::write(&mismatched, other.signing_key.serialize_pem()).unwrap();
    args.tls_key = Some(mismatched);
    let error = secure_api::startup::Application::build_with(
        args.resolve().unwrap(),
        secure_api::startup::Env::from_map(Default::default()),
        secure_api::clock::Clock::system(),
    )
    .await
    .expect_err("a key that does not fit stops start-up");
    let message = error.to_string();
    assert!(message.contains("other-key.pem"), "{message}");
    assert!(message.contains("cert.pem"), "{message}");
    assert!(!message.contains("PRIVATE KEY"), "{message}");
}

#[actix_web::test]
async fn a_database_that_cannot_be_reached_is_a_503_not_a_500() {
    let app = spawn().await;
    app.services.db.close().await;
    let key = app.first.demo_key.key.clone();
    let call = app
        .post("/get-current-time", &[("authorization", &key)], "")
        .await;
    assert_eq!(call.status, 503, "{}", call.body);
    assert_eq!(call.header("retry-after").as_deref(), Some("1"));
    assert_eq!(
        call.body["detail"],
        "the database is unavailable; try again shortly"
    );
    let ready = app.get("/readyz", &[]).await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body["database"], false);
    assert_eq!(
        app.get("/healthz", &[]).await.status,
        200,
        "the process lives"
    );
}

#[actix_web::test]
async fn behind_a_trusted_proxy_the_login_limit_is_per_forwarded_client() {
    // A new name for every attempt, so that only the per-address limit is in play.
    let names = std::cell::Cell::new(0);
    let login = || {
        names.set(names.get() + 1);
        json!({"username": format!("nobody_{}", names.get()), "password": "not the password at all"})
            .to_string()
    };
    let proxied = spawn_with(Spawn {
        args: SettingsArgs {
            trusted_proxies: Some(vec!["127.0.0.0/8".to_owned()]),
            ..SettingsArgs::default()
        },
        ..Spawn::default()
    })
    .await;
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            proxied
                .post("/login", &from("203.0.113.1"), &login())
                .await
                .status,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
    // Another client behind the same proxy has its own limit; a forged left-most entry
    // does not move a client to another bucket.
    assert_eq!(
        proxied
            .post("/login", &from("203.0.113.2"), &login())
            .await
            .status,
        401
    );
    assert_eq!(
        proxied
            .post("/login", &from("198.51.100.9, 203.0.113.1"), &login())
            .await
            .status,
        429
    );
    // An unreadable entry left of the client is the client's own forgery and is skipped. One
    // where the client should be is refused with 400 and counted nowhere: never against the
    // proxy's own address, which every client behind it shares.
    assert_eq!(
        proxied
            .post("/login", &from("junk, 203.0.113.3"), &login())
            .await
            .status,
        401
    );
    for _ in 0..6 {
        let reply = proxied
            .post("/login", &from("203.0.113.4, junk"), &login())
            .await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.body["type"], "/problems/bad-request");
    }
    assert_eq!(
        proxied
            .post("/login", &from("203.0.113.5"), &login())
            .await
            .status,
        401,
        "the refused chains were counted against the proxy"
    );

    // Without trusted proxies the header is ignored: every attempt is the peer's.
    let direct = spawn().await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let ip = ["203.0.113.1", "203.0.113.2", "203.0.113.3"][i % 3];
        statuses.push(direct.post("/login", &from(ip), &login()).await.status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
}

/// Spawns the app behind a trusted proxy on 127.0.0.0/8, so each request names its client in
/// `X-Forwarded-For`.
async fn behind_proxy() -> common::TestApp {
    spawn_with(Spawn {
        args: SettingsArgs {
            trusted_proxies: Some(vec!["127.0.0.0/8".to_owned()]),
            ..SettingsArgs::default()
        },
        ..Spawn::default()
    })
    .await
}

#[actix_web::test]
async fn one_username_is_limited_whatever_the_addresses_and_alike_for_unknown_names() {
    let app = behind_proxy().await;
    let creds = json!({"username": "Victim", "password": "a long enough password 1"});
    let register = app
        .post(
            "/register",
            &[("x-forwarded-for", "198.51.100.1")],
            &creds.to_string(),
        )
        .await;
    assert_eq!(register.status, 201, "{}", register.body);
    let guess =
        |name: &str| json!({"username": name, "password": "a wrong guess, again"}).to_string();
    // Five guesses in a minute per name, each from another address.
    let mut address = 0;
    let mut from = || {
        address += 1;
        format!("203.0.113.{address}")
    };
    for name in ["victim", "ghost_user"] {
        for _ in 0..5 {
            let ip = from();
            let reply = app
                .post("/login", &[("x-forwarded-for", &ip)], &guess(name))
                .await;
            assert_eq!(reply.status, 401, "{name}: {}", reply.body);
        }
    }
    let ip = from();
    let locked = app
        .post("/login", &[("x-forwarded-for", &ip)], &guess("VICTIM"))
        .await;
    let ip = from();
    let unknown = app
        .post("/login", &[("x-forwarded-for", &ip)], &guess("ghost_user"))
        .await;
    for reply in [&locked, &unknown] {
        assert_eq!(reply.status, 429, "{}", reply.body);
        assert_eq!(reply.body["type"], "/problems/rate-limited");
        assert!(reply.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    }
    assert_eq!(locked.body["detail"], unknown.body["detail"]);
    // Even the right password waits: the name is locked, not the guesser.
    let ip = from();
    let right = app
        .post("/login", &[("x-forwarded-for", &ip)], &creds.to_string())
        .await;
    assert_eq!(right.status, 429);
    // Another name is not affected.
    let ip = from();
    let other = app
        .post(
            "/login",
            &[("x-forwarded-for", &ip)],
            &guess("someone_else"),
        )
        .await;
    assert_eq!(other.status, 401);

    // The backoff grows: a minute later five more, but past 20 in the hour the wait is long.
    let mut now = NOON;
    for _ in 0..5 {
        now += 61;
        app.clock.set(now);
        let ip = from();
        let reply = app
            .post("/login", &[("x-forwarded-for", &ip)], &creds.to_string())
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    // Ten attempts on "victim" passed the minute tier so far (the refused ones count nowhere
    // further); the hour allows 20.
    let mut statuses = Vec::new();
    for _ in 0..20 {
        now += 13;
        app.clock.set(now);
        let ip = from();
        statuses.push(
            app.post("/login", &[("x-forwarded-for", &ip)], &guess("victim"))
                .await,
        );
    }
    let refused = statuses
        .iter()
        .find(|r| r.status == 429)
        .expect("the hour tier refuses");
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!(
        wait > 60,
        "the hourly tier waits longer than the minute: {wait} s"
    );
}

#[actix_web::test]
async fn an_ipv6_48_shares_a_budget_across_its_64s() {
    let app = behind_proxy().await;
    let names = std::cell::Cell::new(0);
    let attempt = async |ip: String| {
        names.set(names.get() + 1);
        let body =
            json!({"username": format!("user_{}", names.get()), "password": "no such password"});
        app.post("/login", &[("x-forwarded-for", &ip)], &body.to_string())
            .await
            .status
    };
    // 5 per /64, 50 per /48: ten /64s spend the /48's budget, the eleventh is refused.
    for net in 0..10 {
        for host in 1..=5 {
            let status = attempt(format!("2001:db8:1:{net:x}::{host}")).await;
            assert_eq!(status, 401, "2001:db8:1:{net:x}::{host}");
        }
    }
    assert_eq!(attempt("2001:db8:1:a::1".to_owned()).await, 429);
    // Within one /64 every address shares the 5.
    assert_eq!(attempt("2001:db8:2:0::1".to_owned()).await, 401);
    for host in 2..=5 {
        assert_eq!(attempt(format!("2001:db8:2:0::{host}")).await, 401);
    }
    assert_eq!(attempt("2001:db8:2:0:ffff::9".to_owned()).await, 429);
    // Another /48 has its own budget.
    assert_eq!(attempt("2001:db8:3::1".to_owned()).await, 401);
}
