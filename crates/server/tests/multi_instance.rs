//! Two real `secure-api` processes behave as one server when they share PostgreSQL and Redis.
//!
//! The test starts its own private `redis-server` on a free port (so that it can stop it
//! mid-run without disturbing other tests) and works in a PostgreSQL schema of its own. It
//! needs `TEST_DATABASE_URL` and the `redis-server` program; without them it says so and
//! skips, and under `REQUIRE_SERVICES=1` it fails.
//!
//! Run it alone, with its figures: `cargo test -p secure-api --test multi_instance -- --nocapture`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::process::{
    Instance, Reply, admin_token, create_key, random_hex, run_cli, send, start_instance, time_call,
};
use request_signing::{Secret, Signer, sign_v0};
use serde_json::{Value, json};

/// Key lookups are cached this long on each instance; a revocation must reach the other
/// instance within it.
const KEY_CACHE_TTL_SECS: u64 = 2;

/// The body every signed call in this test sends.
const PRIME_BODY: &str = r#"{"number": 97}"#;

/// `POST /check-prime` on `at` with a fresh v1 signature, or with `headers` when given.
async fn signed_prime(
    client: &awc::Client,
    at: &Instance,
    signer: &Signer,
    headers: Option<&request_signing::SignedHeaders>,
) -> Reply {
    let fresh;
    let signed = match headers {
        Some(headers) => headers,
        None => {
            fresh = signer
                .sign("POST", &at.url("/check-prime"), PRIME_BODY.as_bytes())
                .unwrap();
            &fresh
        }
    };
    let headers: Vec<(&str, &str)> = signed.iter().collect();
    send(
        client,
        "POST",
        &at.url("/check-prime"),
        &headers,
        Some(PRIME_BODY),
    )
    .await
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

#[actix_web::test]
#[ignore = "needs PostgreSQL and Redis: set TEST_DATABASE_URL and TEST_REDIS_URL, with redis-server on PATH"]
async fn two_instances_on_postgres_and_redis_behave_as_one() {
    let test = "two_instances_on_postgres_and_redis_behave_as_one";
    test_services::clear_of_utc_midnight(test, Duration::from_secs(300));
    let Some(database) = test_services::database_url(test) else {
        return;
    };
    let Some(_redis_server) = test_services::program(
        test,
        "redis-server",
        "install Debian's redis-server package",
    ) else {
        return;
    };

    // A schema of its own on the shared PostgreSQL.
    let schema = common::PgSchema::create(&database, "secure_api_mi").await;

    let redis = test_services::RedisServer::start();
    let redis_port = redis.port();
    let dir = tempfile::tempdir().unwrap();
    let shared_secret = format!("v0 shared secret {}", random_hex(16));
    let env: Vec<(String, String)> = [
        ("SECRET_KEY", random_hex(48)),
        ("SECURE_API_ENV", "production".to_owned()),
        ("DATABASE_URL", schema.url.clone()),
        ("REDIS_URL", format!("redis://127.0.0.1:{redis_port}")),
        ("SECURE_API_REDIS_PREFIX", format!("mi-{}", random_hex(4))),
        ("SECURE_API_KEY_CACHE_TTL", KEY_CACHE_TTL_SECS.to_string()),
        ("SECURE_API_WORKERS", "2".to_owned()),
        ("API_SHARED_SECRET", shared_secret.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    let (a, banner) = start_instance("instance-a", &env, dir.path()).await;
    let admin = admin_token(&banner);
    let (b, second_banner) = start_instance("instance-b", &env, dir.path()).await;
    assert!(
        !second_banner.contains("Admin token"),
        "the second instance finds the first one's data"
    );
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(20))
        .finish();
    let both = [&a, &b];

    // 1. A daily quota of 50, 200 concurrent calls spread over both: exactly 50 succeed.
    let key = create_key(
        &client,
        &a,
        &admin,
        json!({"service": "mi", "daily_quota": 50}),
    )
    .await;
    let quota_key_id = key["id"].as_str().unwrap().to_owned();
    let key = key["key"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let calls = (0..200).map(|i| {
        let url = both[i % 2].url("/get-current-time");
        let (client, key) = (&client, &key);
        async move {
            send(client, "POST", &url, &[("authorization", key)], Some(""))
                .await
                .status
        }
    });
    let statuses = futures_util::future::join_all(calls).await;
    let elapsed = started.elapsed();
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    eprintln!(
        "figure: 200 concurrent calls over 2 instances: {ok} x 200, {limited} x 429 in {:.0} ms",
        elapsed.as_secs_f64() * 1000.0
    );
    assert_eq!((ok, limited), (50, 150), "{statuses:?}");
    assert_eq!(
        time_call(&client, &b, &key).await,
        429,
        "the quota is spent on both"
    );

    // 2. A signature used on A is refused on B: v1 and v0.
    let signing = create_key(
        &client,
        &a,
        &admin,
        json!({"service": "mi-signed", "signing": true}),
    )
    .await;
    let signer = Signer::new(
        signing["id"].as_str().unwrap(),
        Secret::from(signing["signing_secret"].as_str().unwrap()),
    )
    .unwrap();
    let signed = signer
        .sign("POST", &a.url("/check-prime"), PRIME_BODY.as_bytes())
        .unwrap();
    let first = signed_prime(&client, &a, &signer, Some(&signed)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let replay = signed_prime(&client, &b, &signer, Some(&signed)).await;
    assert_eq!(replay.status, 401, "{}", replay.body);
    assert_eq!(replay.body["detail"], "request replayed");

    let plain = create_key(&client, &a, &admin, json!({"service": "mi-v0"})).await;
    let plain = plain["key"].as_str().unwrap().to_owned();
    let v0 = sign_v0(&plain, &Secret::from(shared_secret.as_str()), unix_now()).unwrap();
    let headers: Vec<(&str, &str)> = v0.iter().collect();
    let first = send(
        &client,
        "POST",
        &a.url("/get-current-time"),
        &headers,
        Some(""),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let replay = send(
        &client,
        "POST",
        &b.url("/get-current-time"),
        &headers,
        Some(""),
    )
    .await;
    assert_eq!(replay.status, 401, "{}", replay.body);

    // 3. Five logins or registrations a minute per client address, across both.
    let credentials = json!({"username": "mi_user", "password": "correct horse battery staple"});
    let credentials = credentials.to_string();
    let register = send(
        &client,
        "POST",
        &a.url("/register"),
        &[],
        Some(&credentials),
    )
    .await;
    assert_eq!(register.status, 201, "{}", register.body);
    let mut logins = Vec::new();
    for i in 0..6 {
        let reply = send(
            &client,
            "POST",
            &both[(i + 1) % 2].url("/login"),
            &[],
            Some(&credentials),
        )
        .await;
        logins.push(reply.status);
    }
    assert_eq!(logins, [200, 200, 200, 200, 429, 429]);

    // 4. A key revoked through A is refused by B within the key cache TTL.
    let doomed = create_key(&client, &a, &admin, json!({"service": "mi-doomed"})).await;
    let (doomed_id, doomed) = (
        doomed["id"].as_str().unwrap().to_owned(),
        doomed["key"].as_str().unwrap().to_owned(),
    );
    assert_eq!(
        time_call(&client, &b, &doomed).await,
        200,
        "B has the key cached"
    );
    let auth = format!("Bearer {admin}");
    let revoke = send(
        &client,
        "DELETE",
        &a.url(&format!("/admin/keys/{doomed_id}")),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(revoke.status, 204);
    let refused_after = wait_for_status(&client, &b, &doomed, 401, "revoked through A").await;
    eprintln!(
        "figure: revocation through A refused by B after {:.0} ms (cache TTL {KEY_CACHE_TTL_SECS} s)",
        refused_after.as_secs_f64() * 1000.0
    );

    // 4b. A key's scopes changed through A hold on B within the key cache TTL.
    let scoped = create_key(&client, &a, &admin, json!({"service": "mi-scoped"})).await;
    let (scoped_id, scoped) = (
        scoped["id"].as_str().unwrap().to_owned(),
        scoped["key"].as_str().unwrap().to_owned(),
    );
    assert_eq!(
        time_call(&client, &b, &scoped).await,
        200,
        "B has it cached"
    );
    let patch = send(
        &client,
        "PATCH",
        &a.url(&format!("/admin/keys/{scoped_id}")),
        &[("authorization", &auth)],
        Some(r#"{"scopes": ["whoami:read"]}"#),
    )
    .await;
    assert_eq!(patch.status, 200, "{}", patch.body);
    assert_eq!(
        time_call(&client, &a, &scoped).await,
        403,
        "A applies it at once"
    );
    wait_for_status(&client, &b, &scoped, 403, "scopes changed through A").await;

    // 5. Redis stops: the documented outcome on both, and no request hangs.
    let fresh = create_key(
        &client,
        &a,
        &admin,
        json!({"service": "mi-outage", "daily_quota": 3}),
    )
    .await;
    let fresh = fresh["key"].as_str().unwrap().to_owned();
    drop(redis);
    let outage = Instant::now();
    for at in both {
        let ready = send(&client, "GET", &at.url("/readyz"), &[], None).await;
        assert_eq!(ready.status, 503, "{}", ready.body);
        assert_eq!(ready.body["redis"], false);
        assert_eq!(ready.body["database"], true);
        // Quotas fail open: the call is served, uncounted, without quota headers.
        for _ in 0..4 {
            let call = send(
                &client,
                "POST",
                &at.url("/get-current-time"),
                &[("authorization", &fresh)],
                Some(""),
            )
            .await;
            assert_eq!(call.status, 200, "{}", call.body);
            assert!(call.headers.get("x-ratelimit-remaining").is_none());
        }
        // Signed requests fail closed: a replay could not be told apart.
        let refused = signed_prime(&client, at, &signer, None).await;
        assert_eq!(refused.status, 503, "{}", refused.body);
        assert!(refused.headers.get("retry-after").is_some());
        // Logins fall back to this instance's own limit (the shared one is spent above).
        let login = send(&client, "POST", &at.url("/login"), &[], Some(&credentials)).await;
        assert_eq!(login.status, 200, "{}", login.body);
        let metrics = client
            .get(at.url("/metrics"))
            .send()
            .await
            .unwrap()
            .body()
            .limit(1 << 22)
            .await
            .unwrap();
        let metrics = String::from_utf8(metrics.to_vec()).unwrap();
        for concern in ["quota", "replay", "login"] {
            assert!(
                metrics
                    .lines()
                    .any(|l| l.starts_with("secure_api_redis_fallbacks_total")
                        && l.contains(&format!("concern=\"{concern}\""))),
                "no {concern} fallback counted:\n{metrics}"
            );
        }
    }
    eprintln!(
        "figure: outage checks on both instances took {:.0} ms",
        outage.elapsed().as_secs_f64() * 1000.0
    );

    // 6. Redis comes back (empty): both recover by themselves.
    let redis = test_services::RedisServer::start_on(redis_port);
    let back = Instant::now();
    for at in both {
        loop {
            let ready = send(&client, "GET", &at.url("/readyz"), &[], None).await;
            if ready.status == 200 {
                break;
            }
            assert!(
                back.elapsed() < Duration::from_secs(20),
                "{} did not recover",
                at.base
            );
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!(
        "figure: both instances ready {:.0} ms after Redis came back",
        back.elapsed().as_secs_f64() * 1000.0
    );
    let recovered = create_key(
        &client,
        &a,
        &admin,
        json!({"service": "mi-back", "daily_quota": 3}),
    )
    .await;
    let recovered = recovered["key"].as_str().unwrap().to_owned();
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.push(time_call(&client, both[i % 2], &recovered).await);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);
    for at in both {
        let accepted = signed_prime(&client, at, &signer, None).await;
        assert_eq!(accepted.status, 200, "{}", accepted.body);
    }

    // SIGTERM while A tests a 2048-bit prime with 64 extra rounds (hundreds of milliseconds,
    // costing 179): A answers it, then exits cleanly.
    let slow = create_key(
        &client,
        &a,
        &admin,
        json!({"service": "mi-slow", "daily_quota": 1000}),
    )
    .await;
    let slow = slow["key"].as_str().unwrap().to_owned();
    let prime = include_str!("../../primality/tests/data/primes-2048.txt")
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .expect("a 2048-bit prime")
        .trim();
    let body = format!(r#"{{"number": {prime}, "rounds": 64}}"#);
    let pid = a.process.pid();
    let metrics = a.url("/metrics");
    // The signal goes once A's metrics show the test running, not after a guessed delay.
    let signal = actix_web::rt::spawn(async move {
        let client = awc::Client::default();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut reply = client.get(&metrics).send().await.unwrap();
            let page = reply.body().limit(1 << 22).await.unwrap();
            let page = String::from_utf8_lossy(&page).into_owned();
            if common::sample(&page, "secure_api_prime_running", "") == Some(1.0) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the prime test never showed as running"
            );
            actix_web::rt::time::sleep(Duration::from_millis(2)).await;
        }
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        (status, Instant::now())
    });
    let in_flight = send(
        &client,
        "POST",
        &a.url("/check-prime"),
        &[("authorization", &slow)],
        Some(&body),
    )
    .await;
    let answered = Instant::now();
    let (status, signalled) = signal.await.unwrap();
    assert!(status.success());
    assert!(
        signalled < answered,
        "the signal came while the request was in flight"
    );
    assert_eq!(
        in_flight.status, 200,
        "the request in flight is answered: {}",
        in_flight.body
    );
    let (log_a, log_b) = (a.log(), b.log());
    assert!(a.process.terminate().success(), "{log_a}");
    assert!(b.process.terminate().success(), "{log_b}");
    // Each instance wrote its part of the usage history (at the latest when it stopped): the
    // sum is every call of test 1, exactly.
    let usage: Value = serde_json::from_str(&run_cli(
        &env,
        dir.path(),
        &["keys", "usage", &quota_key_id, "--days", "1", "--json"],
    ))
    .unwrap();
    let today = &usage["history"][0];
    assert_eq!(
        (today["accepted"].clone(), today["refused"]["quota"].clone()),
        (json!(50), json!(151)),
        "{usage}"
    );
    drop(redis);
    schema.drop_schema().await;
}

/// Calls `/get-current-time` on `instance` with `key` until it answers `want` instead of 200,
/// which it must within the key cache TTL (and a margin); how long that took.
async fn wait_for_status(
    client: &awc::Client,
    instance: &Instance,
    key: &str,
    want: u16,
    change: &str,
) -> Duration {
    let changed_at = Instant::now();
    loop {
        let status = time_call(client, instance, key).await;
        if status == want {
            return changed_at.elapsed();
        }
        assert_eq!(status, 200);
        assert!(
            changed_at.elapsed() < Duration::from_secs(KEY_CACHE_TTL_SECS + 2),
            "{change}: the other instance still answers 200 {:?} later",
            changed_at.elapsed()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}
