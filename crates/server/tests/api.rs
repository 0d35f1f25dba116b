//! The documented API, end to end over HTTP against the real application.

mod common;

use common::{NOON, Spawn, TestApp, spawn, spawn_with};
use request_signing::rfc9421::{Message, MessageSigner, SigningKey};
use request_signing::{FakeClock, Secret, Signer, sign_v0};
use serde_json::{Value, json};

const BIG: &str = "172983479832623897492387592384682937659382477";

fn auth(key: &str) -> (&'static str, String) {
    ("authorization", key.to_owned())
}

#[actix_web::test]
async fn get_current_time_accepts_the_key_in_all_three_forms() {
    let app = spawn().await;
    let key = app.first.demo_key.key.clone();
    for (name, value) in [
        ("authorization", key.clone()),
        ("authorization", format!("Bearer {key}")),
        ("x-api-key", key.clone()),
    ] {
        let reply = app.post("/get-current-time", &[(name, &value)], "").await;
        assert_eq!(reply.status, 200, "{name}: {}", reply.body);
        assert_eq!(reply.body["currentTime"], "2026-03-01 12:00:00");
        assert_eq!(reply.body["utc"], "2026-03-01T12:00:00Z");
        assert_eq!(reply.body["unix"], NOON);
        assert!(reply.header("x-ratelimit-remaining").is_some());
    }
    let who = app.get("/whoami", &[("x-api-key", &key)]).await;
    assert_eq!(who.status, 200);
    assert_eq!(who.body["service"], "demo");
    assert_eq!(who.body["auth_method"], "x_api_key");
    assert_eq!(who.body["key_id"], app.first.demo_key.id);
    // `X-API-Key` wins over an `Authorization` that carries something else.
    let bearer = format!("Bearer {key}");
    for (headers, method) in [
        (vec![("authorization", key.as_str())], "raw_authorization"),
        (vec![("authorization", bearer.as_str())], "bearer"),
        (
            vec![("x-api-key", key.as_str()), ("authorization", "Bearer b")],
            "x_api_key",
        ),
    ] {
        let who = app.get("/whoami", &headers).await;
        assert_eq!(who.body["auth_method"], method, "{headers:?}");
    }
}

#[actix_web::test]
async fn missing_unknown_and_malformed_keys_get_401_problems() {
    let app = spawn().await;
    let mut forged = app.first.demo_key.key.clone();
    forged.replace_range(10..11, if &forged[10..11] == "a" { "b" } else { "a" });
    for headers in [
        vec![],
        vec![auth("")],
        vec![auth("not-a-key")],
        vec![auth(&forged)],
        vec![auth("Basic dXNlcjpwYXNz")],
        vec![auth(&"x".repeat(10_000))],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let reply = app.post("/get-current-time", &headers, "").await;
        assert_eq!(reply.status, 401, "{headers:?}");
        assert_eq!(
            reply.header("content-type").unwrap(),
            "application/problem+json"
        );
        assert_eq!(reply.body["status"], 401);
        assert!(reply.body["title"].is_string() && reply.body["detail"].is_string());
        assert!(!reply.body.to_string().contains(&forged));
    }
}

#[actix_web::test]
async fn unknown_paths_and_methods_are_json_problems_with_security_headers() {
    let app = spawn().await;
    let reply = app.get("/nope", &[]).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body["type"], "/problems/not-found");
    let reply = app.get("/get-current-time", &[]).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.body["type"], "/problems/method-not-allowed");
    assert_eq!(reply.header("x-content-type-options").unwrap(), "nosniff");
    assert_eq!(reply.header("cache-control").unwrap(), "no-store");
}

#[actix_web::test]
async fn every_get_route_answers_head_with_its_status_and_headers_and_no_body() {
    let app = spawn().await;
    let document: Value = serde_json::from_str(&secure_api::routes::openapi_json()).unwrap();
    let key = app.first.demo_key.key.clone();
    let admin = format!("Bearer {}", app.first.admin_token);
    let mut ok = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        if item.get("get").is_none() {
            continue;
        }
        let path = path.replace("{id}", &app.first.demo_key.id);
        let headers = if path.starts_with("/admin") {
            [("authorization", admin.as_str())]
        } else {
            [("authorization", key.as_str())]
        };
        let get = app.get(&path, &headers).await;
        let head = app.send("HEAD", &path, &headers, None).await;
        assert_eq!(head.status, get.status, "HEAD {path}");
        for name in ["content-type", "cache-control", "x-content-type-options"] {
            assert_eq!(head.header(name), get.header(name), "HEAD {path}: {name}");
        }
        assert!(
            head.text.is_empty(),
            "HEAD {path} has a body: {}",
            head.text
        );
        if get.status == 200 {
            ok.push(path);
        }
    }
    for path in [
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/docs",
        "/whoami",
        "/admin/keys",
    ] {
        assert!(
            ok.iter().any(|p| p == path),
            "GET and HEAD {path} answer 200"
        );
    }
    // A route without GET still refuses HEAD.
    let reply = app.send("HEAD", "/get-current-time", &[], None).await;
    assert_eq!(reply.status, 405);
}

#[actix_web::test]
async fn the_daily_quota_answers_429_with_the_original_message_until_midnight_utc() {
    let app = spawn().await;
    let key = app
        .create_key(json!({"service": "billing", "daily_quota": 3}))
        .await;
    let key = key["key"].as_str().unwrap();
    for remaining in ["2", "1", "0"] {
        let reply = app
            .post("/get-current-time", &[("authorization", key)], "")
            .await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-ratelimit-remaining").unwrap(), remaining);
    }
    let reply = app
        .post("/get-current-time", &[("authorization", key)], "")
        .await;
    assert_eq!(reply.status, 429);
    assert_eq!(
        reply.body["error"],
        "Request limit exceeded. Please try again later."
    );
    assert_eq!(reply.header("retry-after").unwrap(), "43200");
    assert_eq!(reply.header("x-ratelimit-limit").unwrap(), "3");
    assert!(reply.header("ratelimit-policy").is_some());

    app.clock.set(NOON + 12 * 3_600); // 00:00 UTC the next day
    let reply = app
        .post("/get-current-time", &[("authorization", key)], "")
        .await;
    assert_eq!(reply.status, 200);
}

#[actix_web::test]
async fn check_prime_reads_big_numbers_exactly() {
    let app = spawn().await;
    let key = app.first.demo_key.key.clone();
    let h = [("authorization", key.as_str())];

    let reply = app
        .post("/check-prime", &h, &format!(r#"{{"number": {BIG}}}"#))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["isPrime"], false);
    assert_eq!(reply.body["verdict"], "composite");
    // Digit for digit, as a JSON number.
    assert_eq!(reply.raw_number(), BIG);

    let m127 = "170141183460469231731687303715884105727";
    let reply = app
        .post(
            "/check-prime",
            &h,
            &format!(r#"{{"number": "{m127}", "rounds": 5}}"#),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["isPrime"], true);
    assert_eq!(reply.body["verdict"], "probable_prime");
    assert_eq!(reply.raw_number(), m127);

    let reply = app.post("/check-prime", &h, r#"{"number": "0x61"}"#).await;
    assert_eq!(
        (reply.status, &reply.body["verdict"]),
        (200, &json!("prime"))
    );
    assert_eq!(reply.body["number"], 97);

    let reply = app.post("/check-prime", &h, r#"{"number": 91}"#).await;
    assert_eq!(reply.body["factor"], 7);
    let reply = app.post("/check-prime", &h, r#"{"number": 1}"#).await;
    assert_eq!(
        (reply.body["isPrime"].clone(), reply.body["verdict"].clone()),
        (json!(false), json!("neither"))
    );
}

#[actix_web::test]
async fn check_prime_refuses_bad_input_with_precise_4xx() {
    let app = spawn().await;
    let key = app.first.demo_key.key.clone();
    let h = [("authorization", key.as_str())];
    let cases: Vec<(String, u16, &str)> = vec![
        (r#"{"number": -7}"#.into(), 400, "negative"),
        (r#"{"number": 1.5}"#.into(), 400, "integer"),
        (r#"{"number": 1e10}"#.into(), 400, "integer"),
        (r#"{"number": true}"#.into(), 400, "number"),
        (r#"{"number": "12a"}"#.into(), 400, "digit"),
        (r#"{"number": " 12"}"#.into(), 400, "whitespace"),
        (r#"{"number": "+12"}"#.into(), 400, "sign"),
        (r#"{"number": ""}"#.into(), 400, "empty"),
        (r#"{"numbr": 7}"#.into(), 400, "unknown field"),
        (r#"{"number": 7, "rounds": 65}"#.into(), 400, "rounds"),
        (r#"{"number": 7"#.into(), 400, "JSON"),
        ("".into(), 400, "empty"),
        (
            format!(r#"{{"number": "0x1{}"}}"#, "0".repeat(1024)),
            413,
            "4096 bits",
        ),
        (
            format!(r#"{{"number": {}}}"#, "9".repeat(17_000)),
            413,
            "16384-byte",
        ),
    ];
    for (body, status, needle) in cases {
        let reply = app.post("/check-prime", &h, &body).await;
        assert_eq!(reply.status, status, "{body:.60}: {}", reply.body);
        let detail = reply.body["detail"].as_str().unwrap();
        assert!(detail.contains(needle), "{body:.60}: {detail}");
    }
    let reply = app
        .post(
            "/check-prime",
            &[h[0], ("content-type", "text/plain")],
            r#"{"number": 7}"#,
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("Content-Type")
    );
}

#[actix_web::test]
async fn a_big_number_costs_more_quota() {
    let app = spawn().await;
    let key = app
        .create_key(json!({"service": "math", "daily_quota": 20}))
        .await;
    let key = key["key"].as_str().unwrap();
    let h = [("authorization", key)];
    // 2^2048 - 1 has 2048 bits: BPSW at 2048 bits costs 8 of the 20 calls (docs/api.md).
    let n = format!("0x{}", "f".repeat(512));
    let reply = app
        .post("/check-prime", &h, &json!({ "number": n }).to_string())
        .await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.text.contains(r#""verdict":"composite""#),
        "{}",
        reply.text
    );
    assert_eq!(reply.raw_number().len(), 617, "2^2048 - 1 has 617 digits");
    assert_eq!(reply.header("x-ratelimit-remaining").unwrap(), "12");
    // 64 extra rounds cost 179: more than the whole quota, refused before any work and
    // charged nothing (the next call leaves 4).
    let reply = app
        .post(
            "/check-prime",
            &h,
            &json!({ "number": n, "rounds": 64 }).to_string(),
        )
        .await;
    assert_eq!(reply.status, 429, "{}", reply.body);
    let reply = app
        .post("/check-prime", &h, &json!({ "number": n }).to_string())
        .await;
    assert_eq!(reply.header("x-ratelimit-remaining").unwrap(), "4");
    let reply = app
        .post("/check-prime", &h, &json!({ "number": n }).to_string())
        .await;
    assert_eq!(reply.status, 429);
    // A u64 still costs 1.
    let reply = app.post("/check-prime", &h, r#"{"number": 97}"#).await;
    assert_eq!(reply.header("x-ratelimit-remaining").unwrap(), "3");
}

#[actix_web::test]
async fn register_login_protected_refresh_logout() {
    let app = spawn().await;
    let creds = r#"{"username": "alice", "password": "correct horse battery"}"#;
    let reply = app.post("/register", &[], creds).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["username"], "alice");
    assert_eq!(app.post("/register", &[], creds).await.status, 409);
    let bad = app
        .post(
            "/register",
            &[],
            r#"{"username": "b", "password": "correct horse"}"#,
        )
        .await;
    assert_eq!(
        (bad.status, bad.body["field"].clone()),
        (400, json!("username"))
    );

    app.clock.set(NOON + 60);
    let login = app.post("/login", &[], creds).await;
    assert_eq!(login.status, 200);
    let access = login.body["access_token"].as_str().unwrap().to_owned();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(login.body["token_type"], "Bearer");
    assert_eq!(login.body["expires_in"], 900);

    let wrong = app
        .post(
            "/login",
            &[],
            r#"{"username": "alice", "password": "wrong password"}"#,
        )
        .await;
    let nobody = app
        .post(
            "/login",
            &[],
            r#"{"username": "nobody", "password": "wrong password"}"#,
        )
        .await;
    assert_eq!((wrong.status, nobody.status), (401, 401));
    assert_eq!(wrong.body["detail"], nobody.body["detail"]);

    let bearer = format!("Bearer {access}");
    let me = app.get("/protected", &[("authorization", &bearer)]).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["logged_in_as"], "alice");
    assert_eq!(app.get("/protected", &[]).await.status, 401);
    let mut tampered = access.clone();
    tampered.pop();
    let tampered = format!("Bearer {tampered}x");
    assert_eq!(
        app.get("/protected", &[("authorization", &tampered)])
            .await
            .status,
        401
    );
    // An API key is not a user token.
    let key = format!("Bearer {}", app.first.demo_key.key);
    assert_eq!(
        app.get("/protected", &[("authorization", &key)])
            .await
            .status,
        401
    );

    // Refresh rotates: the new pair works, the old refresh token is spent.
    let renewed = app.refresh(&refresh).await;
    assert_eq!(renewed.status, 200);
    let renewed_access = format!("Bearer {}", renewed.body["access_token"].as_str().unwrap());
    let renewed_refresh = renewed.body["refresh_token"].as_str().unwrap().to_owned();
    let me = app
        .get("/protected", &[("authorization", &renewed_access)])
        .await;
    assert_eq!(me.status, 200);
    // Presenting the spent token again revokes the whole family: the pair it was exchanged
    // for stops working too.
    assert_eq!(app.refresh(&refresh).await.status, 401);
    let me = app
        .get("/protected", &[("authorization", &renewed_access)])
        .await;
    assert_eq!(me.status, 401);
    assert_eq!(app.refresh(&renewed_refresh).await.status, 401);
    let me = app.get("/protected", &[("authorization", &bearer)]).await;
    assert_eq!(me.status, 401);

    // Logout revokes the family: the access token, and the refresh token though the client
    // did not send it. Another login's tokens are untouched.
    let first = app.post("/login", &[], creds).await;
    let second = app.post("/login", &[], creds).await;
    let bearer = format!("Bearer {}", first.body["access_token"].as_str().unwrap());
    let out = app.post("/logout", &[("authorization", &bearer)], "").await;
    assert_eq!(out.status, 204);
    assert_eq!(
        app.get("/protected", &[("authorization", &bearer)])
            .await
            .status,
        401
    );
    let spent = first.body["refresh_token"].as_str().unwrap();
    assert_eq!(app.refresh(spent).await.status, 401);

    // Access tokens expire after 15 minutes.
    let fresh = format!("Bearer {}", second.body["access_token"].as_str().unwrap());
    assert_eq!(
        app.get("/protected", &[("authorization", &fresh)])
            .await
            .status,
        200
    );
    app.clock.set(NOON + 60 + 900);
    assert_eq!(
        app.get("/protected", &[("authorization", &fresh)])
            .await
            .status,
        401
    );
    // The refresh token of that login still works after its access token expired.
    let second_refresh = second.body["refresh_token"].as_str().unwrap();
    assert_eq!(app.refresh(second_refresh).await.status, 200);
}

#[actix_web::test]
async fn usernames_are_one_account_in_any_case_and_keep_their_spelling() {
    let app = spawn().await;
    let creds = |name: &str| json!({"username": name, "password": "correct horse battery"});
    let reply = app.post("/register", &[], &creds("Dave").to_string()).await;
    assert_eq!(
        (reply.status, reply.body["username"].clone()),
        (201, json!("Dave"))
    );
    let again = app.post("/register", &[], &creds("dAVE").to_string()).await;
    assert_eq!(again.status, 409, "{}", again.body);
    let login = app.post("/login", &[], &creds("DAVE").to_string()).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let bearer = format!("Bearer {}", login.body["access_token"].as_str().unwrap());
    let me = app.get("/protected", &[("authorization", &bearer)]).await;
    assert_eq!(me.body["logged_in_as"], "Dave");
}

#[actix_web::test]
async fn fifty_concurrent_refreshes_of_one_token_give_exactly_one_success() {
    let app = spawn().await;
    for round in 0..3 {
        // A minute apart: each round registers and logs in, within the login limit.
        app.clock.set(NOON + 60 * round);
        app.check_refresh_race(&format!("racer_{round}"), 50).await;
    }
}

#[actix_web::test]
async fn login_and_register_are_limited_to_5_per_minute_per_address() {
    let app = spawn().await;
    let body = r#"{"username": "mallory", "password": "guess number one"}"#;
    for _ in 0..5 {
        assert_eq!(app.post("/login", &[], body).await.status, 401);
    }
    let limited = app.post("/login", &[], body).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after").unwrap(), "12");
    let register = app
        .post(
            "/register",
            &[],
            r#"{"username": "mallory", "password": "long enough"}"#,
        )
        .await;
    assert_eq!(register.status, 429);
    app.clock.set(NOON + 60);
    assert_eq!(app.post("/login", &[], body).await.status, 401);
}

#[actix_web::test]
async fn signed_v1_requests_verify_once_and_signing_keys_must_sign() {
    let app = spawn().await;
    let created = app
        .create_key(json!({"service": "orders", "signing": true}))
        .await;
    let (id, key) = (
        created["id"].as_str().unwrap(),
        created["key"].as_str().unwrap(),
    );
    let secret = created["signing_secret"].as_str().unwrap();

    let unsigned = app
        .post("/get-current-time", &[("authorization", key)], "")
        .await;
    assert_eq!(unsigned.status, 401);
    assert!(
        unsigned.body["detail"]
            .as_str()
            .unwrap()
            .contains("must sign")
    );

    let signer = Signer::new(id, Secret::from(secret))
        .unwrap()
        .with_clock(FakeClock::at_unix_secs(NOON));
    let body = r#"{"number": 97}"#;
    let headers = signer
        .sign("POST", &app.url("/check-prime"), body.as_bytes())
        .unwrap();
    let pairs: Vec<(&str, &str)> = headers.iter().collect();
    let reply = app.post("/check-prime", &pairs, body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["isPrime"], true);

    let replay = app.post("/check-prime", &pairs, body).await;
    assert_eq!(replay.status, 401);
    assert!(replay.body["detail"].as_str().unwrap().contains("replayed"));

    let headers = signer
        .sign("POST", &app.url("/check-prime"), body.as_bytes())
        .unwrap();
    let pairs: Vec<(&str, &str)> = headers.iter().collect();
    let changed = app.post("/check-prime", &pairs, r#"{"number": 98}"#).await;
    assert_eq!(changed.status, 401);
    assert!(
        changed.body["detail"]
            .as_str()
            .unwrap()
            .contains("bad signature")
    );

    let who = signer.sign("GET", &app.url("/whoami"), b"").unwrap();
    let pairs: Vec<(&str, &str)> = who.iter().collect();
    let reply = app.get("/whoami", &pairs).await;
    assert_eq!(reply.body["auth_method"], "signed_v1");

    // Six minutes later the same kind of signature is too old.
    let old = signer.sign("GET", &app.url("/whoami"), b"").unwrap();
    app.clock.set(NOON + 301);
    let pairs: Vec<(&str, &str)> = old.iter().collect();
    let reply = app.get("/whoami", &pairs).await;
    assert_eq!(reply.status, 401);
    assert!(reply.body["detail"].as_str().unwrap().contains("expired"));
}

/// The three fields an RFC 9421 signer adds for `method` `path` with `body`, as header pairs.
fn rfc9421_headers(
    signer: &MessageSigner<FakeClock>,
    app: &TestApp,
    method: &str,
    path: &str,
    body: &str,
) -> Vec<(&'static str, String)> {
    let url = app.url(path);
    let message = Message::new(method, &url, &[], body.as_bytes()).unwrap();
    let signed = signer.sign(&message).unwrap();
    signed.iter().map(|(n, v)| (n, v.to_owned())).collect()
}

#[actix_web::test]
async fn rfc9421_signatures_verify_once_must_cover_enough_and_report_their_method() {
    let app = spawn().await;
    let created = app
        .create_key(json!({"service": "orders", "signing": true}))
        .await;
    let id = created["id"].as_str().unwrap();
    let secret = created["signing_secret"].as_str().unwrap();
    let clock = FakeClock::at_unix_secs(NOON);
    let key = || SigningKey::hmac_sha256(Secret::from(secret));
    let signer = MessageSigner::builder(id, key())
        .clock(clock.clone())
        .build()
        .unwrap();
    let body = r#"{"number": 97}"#;

    let headers = rfc9421_headers(&signer, &app, "POST", "/check-prime", body);
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let reply = app.post("/check-prime", &pairs, body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["isPrime"], true);
    let replay = app.post("/check-prime", &pairs, body).await;
    assert_eq!(replay.status, 401);
    assert_eq!(replay.body["detail"], "request replayed");

    let headers = rfc9421_headers(&signer, &app, "POST", "/check-prime", body);
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let changed = app.post("/check-prime", &pairs, r#"{"number": 98}"#).await;
    assert_eq!(changed.status, 401);
    assert_eq!(
        changed.body["detail"],
        "Content-Digest does not match the body"
    );

    // A signature over the method and the body alone could be sent to any route.
    let narrow = MessageSigner::builder(id, key())
        .components(["@method"])
        .clock(clock.clone())
        .build()
        .unwrap();
    let headers = rfc9421_headers(&narrow, &app, "POST", "/check-prime", body);
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let reply = app.post("/check-prime", &pairs, body).await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.body["detail"],
        "the signature does not cover @target-uri (or @authority, @path and @query)"
    );

    let who = rfc9421_headers(&signer, &app, "GET", "/whoami", "");
    let pairs: Vec<(&str, &str)> = who.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let reply = app.get("/whoami", &pairs).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["auth_method"], "signed_rfc9421");
    assert_eq!(reply.body["key_id"], id);

    // Another key's secret under this key id; then five minutes and a second later.
    let other = MessageSigner::builder(id, SigningKey::hmac_sha256(Secret::from("not it")))
        .clock(clock.clone())
        .build()
        .unwrap();
    let headers = rfc9421_headers(&other, &app, "GET", "/whoami", "");
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    assert_eq!(
        app.get("/whoami", &pairs).await.body["detail"],
        "bad signature"
    );
    let old = rfc9421_headers(&signer, &app, "GET", "/whoami", "");
    app.clock.set(NOON + 301);
    let pairs: Vec<(&str, &str)> = old.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let reply = app.get("/whoami", &pairs).await;
    assert_eq!(reply.status, 401);
    assert!(reply.body["detail"].as_str().unwrap().contains("expired"));
}

#[actix_web::test]
async fn the_original_v0_scheme_works_with_the_shared_secret() {
    let mut spawn_opts = Spawn::default();
    let shared = "v0 shared secret of the original service, 2026";
    spawn_opts
        .env
        .insert("API_SHARED_SECRET".into(), shared.into());
    let app = spawn_with(spawn_opts).await;
    let key = app.first.demo_key.key.clone();
    let headers = sign_v0(&key, &Secret::from(shared), NOON).unwrap();
    let pairs: Vec<(&str, &str)> = headers.iter().collect();
    let reply = app.post("/get-current-time", &pairs, "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let again = app.post("/get-current-time", &pairs, "").await;
    assert_eq!(again.status, 401, "a v0 signature is accepted once");
    let wrong = sign_v0(&key, &Secret::from("another secret entirely, 2026!!"), NOON).unwrap();
    let pairs: Vec<(&str, &str)> = wrong.iter().collect();
    assert_eq!(app.post("/get-current-time", &pairs, "").await.status, 401);
}

#[actix_web::test]
async fn admin_routes_create_revoke_rotate_and_report_usage() {
    let app = spawn().await;
    let admin = format!("Bearer {}", app.first.admin_token);
    let ah = [("authorization", admin.as_str())];
    assert_eq!(app.get("/admin/keys", &[]).await.status, 401);
    let user_key = format!("Bearer {}", app.first.demo_key.key);
    assert_eq!(
        app.get("/admin/keys", &[("authorization", &user_key)])
            .await
            .status,
        401
    );

    let created = app
        .create_key(json!({"service": "reports", "daily_quota": 10}))
        .await;
    let (id, key) = (
        created["id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    );
    let list = app.get("/admin/keys", &ah).await;
    assert_eq!(list.status, 200);
    let listed = list.body.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        !list.body.to_string().contains(&key),
        "listings never show keys"
    );

    assert_eq!(
        app.post("/get-current-time", &[("authorization", &key)], "")
            .await
            .status,
        200
    );
    let usage = app.get(&format!("/admin/keys/{id}/usage"), &ah).await;
    assert_eq!(
        (usage.body["used"].clone(), usage.body["limit"].clone()),
        (json!(1), json!(10))
    );

    let rotated = app
        .post(
            &format!("/admin/keys/{id}/rotate"),
            &ah,
            r#"{"grace_hours": 1}"#,
        )
        .await;
    assert_eq!(rotated.status, 201);
    let new_key = rotated.body["key"].as_str().unwrap().to_owned();
    for k in [&key, &new_key] {
        assert_eq!(
            app.post("/get-current-time", &[("authorization", k)], "")
                .await
                .status,
            200
        );
    }
    app.clock.set(NOON + 3_600);
    assert_eq!(
        app.post("/get-current-time", &[("authorization", &key)], "")
            .await
            .status,
        401
    );

    let new_id = rotated.body["id"].as_str().unwrap();
    let revoke = app
        .send("DELETE", &format!("/admin/keys/{new_id}"), &ah, None)
        .await;
    assert_eq!(revoke.status, 204);
    assert_eq!(
        app.post("/get-current-time", &[("authorization", &new_key)], "")
            .await
            .status,
        401
    );
    let missing = app
        .send("DELETE", "/admin/keys/sapi_...000000000000", &ah, None)
        .await;
    assert_eq!(missing.status, 404);
    let bad = app
        .post("/admin/keys", &ah, r#"{"service": "bad name"}"#)
        .await;
    assert_eq!(
        (bad.status, bad.body["field"].clone()),
        (400, json!("service"))
    );
}

#[actix_web::test]
async fn a_key_and_its_rotations_share_one_daily_quota() {
    let app = spawn().await;
    let admin = format!("Bearer {}", app.first.admin_token);
    let ah = [("authorization", admin.as_str())];
    let created = app
        .create_key(json!({"service": "rotating", "daily_quota": 3}))
        .await;
    let call = async |key: &str| {
        let headers = [("authorization", key)];
        app.post("/get-current-time", &headers, "").await.status
    };
    let first = created["key"].as_str().unwrap().to_owned();
    assert_eq!(call(&first).await, 200);
    let mut keys = vec![(created["id"].as_str().unwrap().to_owned(), first)];
    for _ in 0..2 {
        let (id, _) = keys.last().unwrap();
        let rotated = app
            .post(
                &format!("/admin/keys/{id}/rotate"),
                &ah,
                r#"{"grace_hours": 1}"#,
            )
            .await;
        assert_eq!(rotated.status, 201, "{}", rotated.body);
        let key = rotated.body["key"].as_str().unwrap().to_owned();
        assert_eq!(call(&key).await, 200);
        keys.push((rotated.body["id"].as_str().unwrap().to_owned(), key));
    }
    // Three calls in all spent the day: every key of the chain is refused, and each reports
    // the same usage.
    for (id, key) in &keys {
        assert_eq!(call(key).await, 429);
        let usage = app.get(&format!("/admin/keys/{id}/usage"), &ah).await;
        assert_eq!(
            (usage.body["used"].clone(), usage.body["remaining"].clone()),
            (json!(3), json!(0))
        );
    }
    // The next UTC day is a fresh quota for the chain.
    app.clock.set(NOON + 43_200);
    assert_eq!(call(&keys[2].1).await, 200);
}

#[actix_web::test]
async fn admin_tokens_expire_and_refuse_bad_options() {
    let app = spawn().await;
    let admin = format!("Bearer {}", app.first.admin_token);
    let ah = [("authorization", admin.as_str())];
    let made = app
        .post(
            "/admin/tokens",
            &ah,
            r#"{"label": "one day", "expires_in_days": 1}"#,
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.body["expires_at"], NOON + 86_400);
    let short = format!("Bearer {}", made.body["token"].as_str().unwrap());
    let sh = [("authorization", short.as_str())];
    assert_eq!(app.get("/admin/keys", &sh).await.status, 200);
    // Without a body: no label, no expiry.
    let plain = app.send("POST", "/admin/tokens", &ah, None).await;
    assert_eq!(plain.status, 201, "{}", plain.body);
    assert!(plain.body.get("expires_at").is_none());

    app.clock.set(NOON + 86_400);
    assert_eq!(app.get("/admin/keys", &sh).await.status, 401);
    let listed = app.get("/admin/tokens", &ah).await;
    let status_of = |id: &Value| {
        let all = listed.body.as_array().unwrap();
        all.iter().find(|t| &t["id"] == id).unwrap()["status"].clone()
    };
    assert_eq!(status_of(&made.body["id"]), "expired");
    assert_eq!(status_of(&plain.body["id"]), "active");
    assert_eq!(listed.body.as_array().unwrap().len(), 3);

    for (body, field) in [
        (r#"{"label": ""}"#, "label"),
        (r#"{"label": "tab\there"}"#, "label"),
        (r#"{"expires_in_days": 0}"#, "expires_in_days"),
        (r#"{"expires_in_days": 40000}"#, "expires_in_days"),
    ] {
        let reply = app.post("/admin/tokens", &ah, body).await;
        assert_eq!(
            (reply.status, reply.body["field"].clone()),
            (400, json!(field)),
            "{body}"
        );
    }
    let user_key = format!("Bearer {}", app.first.demo_key.key);
    let refused = app
        .get("/admin/tokens", &[("authorization", &user_key)])
        .await;
    assert_eq!(refused.status, 401);
}

#[actix_web::test]
async fn keys_users_and_quota_usage_survive_a_restart() {
    let first = spawn().await;
    let dir = first.dir.clone();
    let env = first.env.clone();
    let key = first
        .create_key(json!({"service": "durable", "daily_quota": 5}))
        .await;
    let key = key["key"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(
            first
                .post("/get-current-time", &[("authorization", &key)], "")
                .await
                .status,
            200
        );
    }
    let creds = r#"{"username": "carol", "password": "persistent password"}"#;
    assert_eq!(first.post("/register", &[], creds).await.status, 201);
    let admin = format!("Bearer {}", first.first.admin_token);
    let keys = first.get("/admin/keys", &[("authorization", &admin)]).await;
    let durable = keys
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["service"] == "durable");
    let id = durable.unwrap()["id"].as_str().unwrap().to_owned();
    first.stop().await;

    let second = spawn_with(Spawn {
        env,
        dir: Some(dir),
        ..Spawn::default()
    })
    .await;
    assert!(second.first.admin_token.is_empty(), "no second bootstrap");
    let reply = second
        .post("/get-current-time", &[("authorization", &key)], "")
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("x-ratelimit-remaining").unwrap(),
        "1",
        "3 of 5 used before the restart"
    );
    assert_eq!(second.post("/login", &[], creds).await.status, 200);
    // The history of the calls before the stop was written by it; today's call is counted too.
    let usage = second
        .get(
            &format!("/admin/keys/{id}/usage?days=1"),
            &[("authorization", &admin)],
        )
        .await;
    assert_eq!(usage.body["history"][0]["accepted"], 4, "{}", usage.body);
}

#[actix_web::test]
async fn quota_usage_saved_by_an_older_server_is_carried_over_once() {
    let first = spawn().await;
    let (dir, env) = (first.dir.clone(), first.env.clone());
    let key = first
        .create_key(json!({"service": "upgraded", "daily_quota": 6}))
        .await;
    let (id, key) = (key["id"].as_str().unwrap(), key["key"].as_str().unwrap());
    first.stop().await;
    // What servers before the usage table saved every 5 s: 4 calls today.
    let url = format!("sqlite://{}", dir.path().join("secure-api.db").display());
    let db = secure_api::store::Db::connect(&url).await.unwrap();
    let day_start = NOON / 86_400 * 86_400;
    let snapshot = json!({
        "entries": [{"key": id, "kind": "fixed", "window_start": day_start, "used": 4}],
        "overrides": [],
    });
    db.save_snapshot("daily-quota", 1, &snapshot.to_string())
        .await
        .unwrap();
    db.close().await;

    let restart = || {
        spawn_with(Spawn {
            env: env.clone(),
            dir: Some(dir.clone()),
            ..Spawn::default()
        })
    };
    let second = restart().await;
    let reply = second
        .post("/get-current-time", &[("authorization", key)], "")
        .await;
    assert_eq!(reply.header("x-ratelimit-remaining").unwrap(), "1");
    second.stop().await;
    // Moved, not copied: a second restart counts the 4 once.
    let third = restart().await;
    let reply = third
        .post("/get-current-time", &[("authorization", key)], "")
        .await;
    assert_eq!(reply.header("x-ratelimit-remaining").unwrap(), "0");
}

#[actix_web::test]
async fn health_and_openapi_are_served() {
    let app = spawn().await;
    assert_eq!(app.get("/healthz", &[]).await.body["status"], "ok");
    let ready = app.get("/readyz", &[]).await;
    assert_eq!(
        (ready.status, ready.body["database"].clone()),
        (200, json!(true))
    );
    let doc = app.get("/openapi.json", &[]).await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths: Vec<&String> = doc.body["paths"].as_object().unwrap().keys().collect();
    for path in [
        "/get-current-time",
        "/check-prime",
        "/register",
        "/login",
        "/protected",
        "/admin/keys",
    ] {
        assert!(
            paths.iter().any(|p| *p == path),
            "{path} missing from {paths:?}"
        );
    }
    let _: Value = doc.body;
}

#[actix_web::test]
async fn optional_bodies_may_be_left_out_but_never_be_malformed() {
    let app = spawn().await;
    let admin = format!("Bearer {}", app.first.admin_token);
    let h = [("authorization", admin.as_str())];
    let id = app.create_key(json!({"service": "optional"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for bad in [
        "{not json",
        r#"{"grace_hours": "soon"}"#,
        r#"{"grace_hours": 1, "unknown": true}"#,
        "[]",
    ] {
        let reply = app.post(&format!("/admin/keys/{id}/rotate"), &h, bad).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
        assert_eq!(reply.body["type"], "/problems/bad-request");
    }
    let too_big = format!(r#"{{"grace_hours": 1, "x": "{}"}}"#, "y".repeat(20_000));
    let reply = app
        .post(&format!("/admin/keys/{id}/rotate"), &h, &too_big)
        .await;
    assert_eq!(reply.status, 413);
    // Nothing was rotated by the refused calls; no body at all is the default grace.
    let reply = app.post(&format!("/admin/keys/{id}/rotate"), &h, "").await;
    assert_eq!(reply.status, 201, "{}", reply.body);

    let login = app
        .post(
            "/register",
            &[],
            r#"{"username": "optional_user", "password": "a long enough password 7"}"#,
        )
        .await;
    assert_eq!(login.status, 201);
    let tokens = app
        .post(
            "/login",
            &[],
            r#"{"username": "optional_user", "password": "a long enough password 7"}"#,
        )
        .await;
    let access = format!("Bearer {}", tokens.body["access_token"].as_str().unwrap());
    let reply = app
        .post(
            "/logout",
            &[("authorization", &access)],
            r#"{"refresh_token": 5}"#,
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    let reply = app.post("/logout", &[("authorization", &access)], "").await;
    assert_eq!(reply.status, 204);
}

#[actix_web::test]
async fn an_encoded_or_non_utf8_body_is_refused_as_such_and_costs_nothing() {
    let app = spawn().await;
    let key = app.first.demo_key.key.clone();
    let body = r#"{"number": 97}"#;
    for (headers, says) in [
        (
            [
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            "Content-Encoding",
        ),
        (
            [
                ("content-type", "application/json; charset=utf-16"),
                ("x-note", "utf-16"),
            ],
            "UTF-8",
        ),
    ] {
        let mut sent = vec![("authorization", key.as_str())];
        sent.extend(headers);
        let refused = app.send("POST", "/check-prime", &sent, Some(body)).await;
        assert_eq!(refused.status, 400, "{headers:?}: {}", refused.body);
        assert!(
            refused.body["detail"].as_str().unwrap().contains(says),
            "{}",
            refused.body
        );
    }
    // UTF-8 named in any case, and the identity coding, are fine.
    let sent = [
        ("authorization", key.as_str()),
        ("content-type", "application/json; charset=UTF-8"),
        ("content-encoding", "identity"),
    ];
    let answered = app.send("POST", "/check-prime", &sent, Some(body)).await;
    assert_eq!(answered.status, 200, "{}", answered.body);
    assert_eq!(
        answered.header("x-ratelimit-remaining").as_deref(),
        Some("999")
    );
}

#[actix_web::test]
async fn a_key_over_its_share_of_the_prime_threads_gets_503_and_pays_nothing() {
    let mut spawn = Spawn::default();
    spawn.args.prime_threads = Some(1);
    let app = std::rc::Rc::new(spawn_with(spawn).await);
    let key = app
        .create_key(json!({"service": "math", "daily_quota": 100_000}))
        .await;
    let key = key["key"].as_str().unwrap().to_owned();
    // 2^3217 - 1 is a Mersenne prime: with 64 extra rounds it holds the only thread for about
    // a second, and costs 1,123 (3,217 bits are squared in 64 words).
    let long = json!({"number": format!("0x1{}", "f".repeat(804)), "rounds": 64}).to_string();
    let first = {
        let (app, key, long) = (app.clone(), key.clone(), long.clone());
        actix_web::rt::spawn(async move {
            app.post("/check-prime", &[("authorization", &key)], &long)
                .await
        })
    };
    loop {
        let page = app.metrics_page().await;
        if common::sample(&page, "secure_api_prime_running", "") == Some(1.0) {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let second = app
        .post("/check-prime", &[("authorization", &key)], &long)
        .await;
    assert_eq!(second.status, 503, "{}", second.body);
    assert_eq!(second.header("retry-after").as_deref(), Some("1"));
    assert!(second.body["detail"].as_str().unwrap().contains("this key"));
    let first = first.await.unwrap();
    assert_eq!(first.status, 200, "{}", first.text);
    assert!(
        first.text.contains(r#""verdict":"probable_prime""#),
        "{}",
        first.text
    );
    assert_eq!(
        first.header("x-ratelimit-remaining").as_deref(),
        Some("98877"),
        "only the answered test was charged"
    );
}

/// Every path's 405 lists in `Allow` exactly the methods its routes take: each one listed is
/// routed (never 405), and the OpenAPI document lists the same ones (with `HEAD` beside `GET`).
#[actix_web::test]
async fn a_405_says_in_allow_which_methods_the_path_takes() {
    let app = spawn().await;
    let doc = app.get("/openapi.json", &[]).await;
    let mut paths: Vec<(String, Vec<String>)> = doc.body["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            let mut methods: Vec<String> = item
                .as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "post", "patch", "delete", "put"].contains(&m.as_str()))
                .map(|m| m.to_uppercase())
                .collect();
            if methods.iter().any(|m| m == "GET") {
                methods.push("HEAD".to_owned());
            }
            (path.clone(), methods)
        })
        .collect();
    // The pages and their files, which the document leaves out.
    for path in [
        "/admin/ui",
        "/admin/ui/admin.js",
        "/docs",
        "/docs/swagger-ui.css",
    ] {
        paths.push((path.to_owned(), vec!["GET".to_owned(), "HEAD".to_owned()]));
    }
    assert!(paths.len() > 20, "{paths:?}");
    for (path, mut documented) in paths {
        let path = path.replace("{id}", "sapi_...000000000000");
        let refused = app.send("PUT", &path, &[], Some("{}")).await;
        assert_eq!(refused.status, 405, "PUT {path}: {}", refused.body);
        assert_eq!(refused.body["type"], "/problems/method-not-allowed");
        let allow = refused.header("allow").unwrap_or_default();
        let mut allowed: Vec<String> = allow.split(", ").map(str::to_owned).collect();
        allowed.sort();
        documented.sort();
        assert_eq!(allowed, documented, "{path}: Allow: {allow}");
        for method in &allowed {
            let routed = app.send(method, &path, &[], None).await;
            assert_ne!(routed.status, 405, "{method} {path}");
        }
    }
}

/// A credential sent twice is refused, whichever of its values is the right one: a key in
/// `Authorization` or `X-API-Key`, and an admin token.
#[actix_web::test]
async fn a_credential_sent_twice_is_a_401() {
    let app = spawn().await;
    let key = app.first.demo_key.key.clone();
    let admin = format!("Bearer {}", app.first.admin_token);
    for (method, path, name, value) in [
        ("POST", "/get-current-time", "authorization", key.as_str()),
        ("POST", "/get-current-time", "x-api-key", key.as_str()),
        ("GET", "/admin/keys", "authorization", admin.as_str()),
    ] {
        for values in [[value, "other"], ["other", value]] {
            let mut sent = app
                .client
                .request(method.parse().unwrap(), app.url(path))
                .append_header((name, values[0]))
                .append_header((name, values[1]))
                .send()
                .await
                .unwrap();
            assert_eq!(sent.status(), 401, "{path} {name}: {values:?}");
            let body: Value = serde_json::from_slice(&sent.body().await.unwrap()).unwrap();
            assert!(!body.to_string().contains(value), "{body}");
        }
        let once = app.send(method, path, &[(name, value)], None).await;
        assert_eq!(once.status, 200, "{path} {name}: {}", once.body);
    }
}

#[actix_web::test]
async fn a_secret_pasted_into_a_name_label_or_service_is_refused_and_never_stored() {
    let app = spawn().await;
    let admin = format!("Bearer {}", app.first.admin_token);
    let h = [("authorization", admin.as_str())];
    let (key, token) = (&app.first.demo_key.key, &app.first.admin_token);
    let signing = app
        .create_key(json!({"service": "signer", "signing": true}))
        .await;
    let signing_secret = signing["signing_secret"].as_str().unwrap();
    let id = signing["id"].as_str().unwrap();
    for (path, method, body, field) in [
        ("/admin/keys", "POST", json!({"service": key}), "service"),
        (
            "/admin/keys",
            "POST",
            json!({"service": "ok", "name": format!("mine: {key}")}),
            "name",
        ),
        (
            "/admin/keys",
            "POST",
            json!({"service": "ok", "owner": token}),
            "owner",
        ),
        ("/admin/tokens", "POST", json!({"label": token}), "label"),
        (
            "/admin/tokens",
            "POST",
            json!({"label": signing_secret}),
            "label",
        ),
        (
            &format!("/admin/keys/{id}"),
            "PATCH",
            json!({"name": signing_secret}),
            "name",
        ),
    ] {
        let refused = app.send(method, path, &h, Some(&body.to_string())).await;
        assert_eq!(refused.status, 400, "{body}: {}", refused.body);
        assert_eq!(refused.body["field"], field, "{}", refused.body);
        assert!(!refused.text.contains(key.as_str()) && !refused.text.contains(token.as_str()));
    }
    // Invisible and direction-changing characters are refused in names and labels.
    for name in ["evil\u{202e}cod.exe", "zero\u{200b}width"] {
        let refused = app
            .send(
                "POST",
                "/admin/keys",
                &h,
                Some(&json!({"service": "ok", "name": name}).to_string()),
            )
            .await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        let refused = app
            .send(
                "POST",
                "/admin/tokens",
                &h,
                Some(&json!({"label": name}).to_string()),
            )
            .await;
        assert_eq!(refused.status, 400, "{}", refused.body);
    }
    // A name that merely starts like one is fine.
    let named = app
        .create_key(json!({"service": "sapi_billing", "name": "sapi_team"}))
        .await;
    assert_eq!(named["service"], "sapi_billing");
    let audit = app.get("/admin/audit?limit=500", &h).await;
    for secret in [key.as_str(), token.as_str(), signing_secret] {
        assert!(!audit.text.contains(secret), "the audit log holds a secret");
    }
}

#[actix_web::test]
async fn a_key_calls_only_the_routes_of_its_scopes_and_a_refusal_is_a_free_403() {
    let app = spawn().await;
    let admin = format!("Bearer {}", app.first.admin_token);
    let ah = [("authorization", admin.as_str())];
    assert_eq!(app.first.demo_key.scopes.names(), ["*"]);
    let created = app
        .create_key(json!({"service": "clock", "daily_quota": 5, "scopes": ["time:read"]}))
        .await;
    assert_eq!(created["scopes"], json!(["time:read"]));
    let (id, key) = (
        created["id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    );
    let kh = [("authorization", key.as_str())];
    let before = app.metrics_page().await;
    let denials = |page: &str| {
        common::sample(
            page,
            "secure_api_scope_denials_total",
            r#"scope="prime:check""#,
        )
        .unwrap_or(0.0)
    };

    let time = app.post("/get-current-time", &kh, "").await;
    assert_eq!(time.status, 200, "{}", time.body);
    let prime = app.post("/check-prime", &kh, r#"{"number": 97}"#).await;
    assert_eq!(prime.status, 403, "{}", prime.body);
    assert_eq!(
        prime.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(prime.body["type"], "/problems/insufficient-scope");
    assert_eq!(prime.body["required_scope"], "prime:check");
    assert!(prime.header("www-authenticate").is_none(), "not a 401");
    assert!(!prime.text.contains(&key));
    // Refused before its body is read: a malformed body gets the same 403.
    let bad_body = app.post("/check-prime", &kh, "{").await;
    assert_eq!(bad_body.status, 403, "{}", bad_body.body);
    for (method, path, scope) in [
        ("GET", "/whoami", "whoami:read"),
        ("GET", "/weather?q=Oslo", "weather:read"),
    ] {
        let reply = app.send(method, path, &kh, None).await;
        assert_eq!(reply.status, 403, "{path}: {}", reply.body);
        assert_eq!(reply.body["required_scope"], scope);
    }
    let usage = app.get(&format!("/admin/keys/{id}/usage"), &ah).await;
    assert_eq!(
        usage.body["used"], 1,
        "refusals cost nothing: {}",
        usage.body
    );
    let after = app.metrics_page().await;
    assert!(denials(&after) >= denials(&before) + 2.0);

    // Scopes change later, and this instance applies the change at once.
    let patched = app
        .patch(
            &format!("/admin/keys/{id}"),
            &ah,
            r#"{"scopes": ["time:read", "prime:check"]}"#,
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["scopes"], json!(["time:read", "prime:check"]));
    assert_eq!(patched.body["id"], id.as_str());
    let prime = app.post("/check-prime", &kh, r#"{"number": 97}"#).await;
    assert_eq!(prime.status, 200, "{}", prime.body);
    let listed = app.get("/admin/keys", &ah).await;
    let listed = listed.body.as_array().unwrap();
    let mine = listed.iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert_eq!(mine["scopes"], json!(["time:read", "prime:check"]));
    let demo = listed
        .iter()
        .find(|k| k["id"] == app.first.demo_key.id.as_str())
        .unwrap();
    assert_eq!(demo["scopes"], json!(["*"]));

    // An empty change leaves the key as it is; bad scopes are refused and change nothing.
    let same = app.patch(&format!("/admin/keys/{id}"), &ah, "{}").await;
    assert_eq!(same.body["scopes"], json!(["time:read", "prime:check"]));
    for body in [
        r#"{"scopes": []}"#,
        r#"{"scopes": ["time:write"]}"#,
        r#"{"scopes": "time:read"}"#,
        r#"{"scopes": ["time:read"], "daily": 3}"#,
    ] {
        let reply = app.patch(&format!("/admin/keys/{id}"), &ah, body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert!(
            !reply.text.contains("Scopes") && !reply.text.contains("Vec"),
            "no Rust type in {}",
            reply.text
        );
    }
    let unknown = app
        .post(
            "/admin/keys",
            &ah,
            r#"{"service": "s", "scopes": ["admin"]}"#,
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("scopes: unknown scope `admin`"),
        "{}",
        unknown.body
    );
    let missing = app
        .patch(
            "/admin/keys/sapi_...000000000000",
            &ah,
            r#"{"scopes": ["*"]}"#,
        )
        .await;
    assert_eq!(missing.status, 400, "{}", missing.body);
    assert_eq!(missing.body["field"], "id");
    let unauthorized = app
        .patch(&format!("/admin/keys/{id}"), &kh, r#"{"scopes": ["*"]}"#)
        .await;
    assert_eq!(unauthorized.status, 401);
    assert_eq!(
        app.post("/check-prime", &kh, r#"{"number": 97}"#)
            .await
            .status,
        200
    );

    // A rotation keeps the scopes.
    let rotated = app.post(&format!("/admin/keys/{id}/rotate"), &ah, "").await;
    assert_eq!(rotated.body["scopes"], json!(["time:read", "prime:check"]));
    let who = app
        .get(
            "/whoami",
            &[("authorization", rotated.body["key"].as_str().unwrap())],
        )
        .await;
    assert_eq!(who.status, 403);

    // A revoked key cannot be changed: 400, and it stays as it was.
    let new_id = rotated.body["id"].as_str().unwrap();
    let revoked = app
        .send("DELETE", &format!("/admin/keys/{new_id}"), &ah, None)
        .await;
    assert_eq!(revoked.status, 204);
    let refused = app
        .patch(
            &format!("/admin/keys/{new_id}"),
            &ah,
            r#"{"scopes": ["*"]}"#,
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let listed = app.get("/admin/keys", &ah).await;
    let after = listed.body.as_array().unwrap();
    let after = after.iter().find(|k| k["id"] == new_id).unwrap();
    assert_eq!(after["scopes"], json!(["time:read", "prime:check"]));
}

#[actix_web::test]
async fn signed_requests_are_held_to_the_scopes_of_their_key() {
    let app = spawn().await;
    let created = app
        .create_key(json!({"service": "orders", "signing": true, "scopes": ["whoami:read"]}))
        .await;
    let id = created["id"].as_str().unwrap();
    let secret = created["signing_secret"].as_str().unwrap();
    let signer = Signer::new(id, Secret::from(secret))
        .unwrap()
        .with_clock(FakeClock::at_unix_secs(NOON));
    let who = signer.sign("GET", &app.url("/whoami"), b"").unwrap();
    let pairs: Vec<(&str, &str)> = who.iter().collect();
    let reply = app.get("/whoami", &pairs).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["scopes"], json!(["whoami:read"]));
    let body = r#"{"number": 97}"#;
    let headers = signer
        .sign("POST", &app.url("/check-prime"), body.as_bytes())
        .unwrap();
    let pairs: Vec<(&str, &str)> = headers.iter().collect();
    let reply = app.post("/check-prime", &pairs, body).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(reply.body["required_scope"], "prime:check");
}

#[actix_web::test]
async fn new_keys_get_the_configured_default_scopes() {
    let mut spawn = Spawn::default();
    spawn.args.default_scopes = Some("time:read,whoami:read".parse().unwrap());
    let app = spawn_with(spawn).await;
    let demo = app.first.demo_key.key.clone();
    let who = app.get("/whoami", &[("authorization", &demo)]).await;
    assert_eq!(who.status, 200, "{}", who.body);
    assert_eq!(who.body["scopes"], json!(["time:read", "whoami:read"]));
    let prime = app
        .post(
            "/check-prime",
            &[("authorization", &demo)],
            r#"{"number": 7}"#,
        )
        .await;
    assert_eq!(prime.status, 403);
    let all = app
        .create_key(json!({"service": "full", "scopes": ["*"]}))
        .await;
    let prime = app
        .post(
            "/check-prime",
            &[("authorization", all["key"].as_str().unwrap())],
            r#"{"number": 7}"#,
        )
        .await;
    assert_eq!(prime.status, 200, "{}", prime.body);
}

/// The OpenAPI document names each API route's scope, and it is the scope the server enforces:
/// a key with every other scope is refused with exactly that one, and a key with only it passes.
#[actix_web::test]
async fn each_api_route_requires_the_scope_its_openapi_operation_names() {
    use utoipa::OpenApi as _;
    let document = serde_json::to_value(secure_api::routes::ApiDoc::openapi()).unwrap();
    let app = spawn().await;
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Some(requirements) = operation["security"].as_array() else {
                continue;
            };
            let scopes: Vec<&str> = requirements
                .iter()
                .filter_map(|r| r.get("api_key"))
                .flat_map(|s| s.as_array().unwrap())
                .map(|s| s.as_str().unwrap())
                .collect();
            if requirements.iter().all(|r| r.get("api_key").is_none()) {
                continue;
            }
            assert_eq!(scopes.len(), 1, "{method} {path} names one scope");
            let scope = scopes[0];
            let responses = &operation["responses"];
            assert!(
                responses.get("403").is_some(),
                "{method} {path} documents 403"
            );
            let others: Vec<&str> = secure_api::auth::scope::Scope::ALL
                .iter()
                .map(|s| s.name())
                .filter(|s| *s != scope)
                .collect();
            let without = app
                .create_key(json!({"service": "s", "scopes": others}))
                .await;
            let with = app
                .create_key(json!({"service": "s", "scopes": [scope]}))
                .await;
            let body = (method == "post").then_some(r#"{"number": 7}"#);
            let call = async |key: &Value| {
                let key = key["key"].as_str().unwrap();
                app.send(
                    &method.to_uppercase(),
                    &format!("{path}?q=Oslo"),
                    &[("authorization", key)],
                    body,
                )
                .await
            };
            let refused = call(&without).await;
            assert_eq!(refused.status, 403, "{method} {path}: {}", refused.body);
            if method != "head" {
                assert_eq!(refused.body["required_scope"], scope, "{method} {path}");
            }
            let passed = call(&with).await;
            assert!(
                ![401, 403].contains(&passed.status),
                "{method} {path} with {scope}: {} {}",
                passed.status,
                passed.body
            );
            checked += 1;
        }
    }
    // get and head of /whoami and /weather, and the two POST routes.
    assert_eq!(checked, 6);
}

#[actix_web::test]
async fn a_keys_name_owner_meta_quota_and_expiry_change_with_patch_and_bad_input_changes_nothing() {
    let app = spawn().await;
    let admin = format!("Bearer {}", app.first.admin_token);
    let ah = [("authorization", admin.as_str())];
    let created = app
        .create_key(json!({
            "service": "shop",
            "daily_quota": 3,
            "name": "Checkout, EU",
            "owner": "cus_42",
            "meta": {"plan": "pro", "seats": 3}
        }))
        .await;
    assert_eq!(created["name"], "Checkout, EU");
    assert_eq!(created["meta"], json!({"plan": "pro", "seats": 3}));
    let (id, key) = (
        created["id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    );
    let path = format!("/admin/keys/{id}");
    let listed = |body: &Value| {
        body.as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id.as_str())
            .cloned()
            .unwrap()
    };
    let before = listed(&app.get("/admin/keys", &ah).await.body);
    assert_eq!(before["owner"], "cus_42");
    assert!(
        listed(&app.get("/admin/keys", &ah).await.body)
            .get("expires_at")
            .is_none()
    );

    // The quota and expiry change for this key at once; the metadata is kept unless named.
    let patched = app
        .patch(
            &path,
            &ah,
            r#"{"daily_quota": 10, "expires_in_days": 7, "owner": "cus_43", "meta": null}"#,
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["daily_quota"], 10);
    assert!(patched.body["expires_at"].as_i64().is_some());
    assert_eq!(patched.body["name"], "Checkout, EU");
    assert_eq!(patched.body["owner"], "cus_43");
    assert!(patched.body.get("meta").is_none(), "{}", patched.body);
    let call = app
        .post("/get-current-time", &[("authorization", &key)], "")
        .await;
    assert_eq!(call.status, 200);
    assert_eq!(call.header("x-ratelimit-limit").as_deref(), Some("10"));
    let now = listed(&app.get("/admin/keys", &ah).await.body);

    // Each of these is refused whole with a 400 naming the field, and the key stays as it is.
    let big_meta = json!({"name": "Renamed", "meta": {"blob": "x".repeat(4_096)}}).to_string();
    for (body, field) in [
        (r#"{"name": "Renamed", "meta": [1, 2]}"#, Some("meta")),
        (r#"{"name": "Renamed", "meta": "plan=pro"}"#, Some("meta")),
        (big_meta.as_str(), Some("meta")),
        (r#"{"name": "", "owner": "cus_44"}"#, Some("name")),
        (r#"{"owner": "cus\u000a44"}"#, Some("owner")),
        (
            r#"{"name": "Renamed", "daily_quota": 0}"#,
            Some("daily_quota"),
        ),
        (r#"{"expires_in_days": 0}"#, Some("expires_in_days")),
        (r#"{"expires_in_days": -1}"#, None),
        (r#"{"daily_quota": "ten"}"#, None),
    ] {
        let reply = app.patch(&path, &ah, body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert_eq!(
            reply.header("content-type").as_deref(),
            Some("application/problem+json")
        );
        if let Some(field) = field {
            assert_eq!(reply.body["field"], field, "{body}: {}", reply.body);
        }
        assert!(
            !reply.text.contains("Option"),
            "no Rust type in {}",
            reply.text
        );
    }
    let refused_create = app
        .post(
            "/admin/keys",
            &ah,
            r#"{"service": "shop", "meta": {"blob": 1}, "name": "x\u0007"}"#,
        )
        .await;
    assert_eq!(refused_create.status, 400, "{}", refused_create.body);
    assert_eq!(listed(&app.get("/admin/keys", &ah).await.body), now);
    assert_eq!(
        app.get("/admin/keys", &ah)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // null clears: the server's default quota, no expiry, no name.
    let cleared = app
        .patch(
            &path,
            &ah,
            r#"{"daily_quota": null, "expires_in_days": null, "name": null}"#,
        )
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    assert!(cleared.body.get("expires_at").is_none());
    assert!(cleared.body.get("name").is_none());
    assert_eq!(cleared.body["owner"], "cus_43");
    assert_eq!(
        cleared.body["daily_quota"], app.first.demo_key.daily_quota,
        "the server's default"
    );

    // A rotation carries the metadata over.
    let rotated = app.post(&format!("{path}/rotate"), &ah, "").await;
    assert_eq!(rotated.body["owner"], "cus_43");
}

#[actix_web::test]
async fn a_keys_rate_limit_monthly_quota_and_credits_are_set_shown_changed_and_cleared() {
    let app = spawn().await;
    let admin = format!("Bearer {}", app.first.admin_token);
    let ah = [("authorization", admin.as_str())];
    let created = app
        .create_key(json!({
            "service": "metered",
            "rate_limit": {"limit": 10, "per": "second"},
            "monthly_quota": 100_000,
            "credits": {"remaining": 1_000, "refill": {"amount": 100, "interval": "day"}}
        }))
        .await;
    // Shown with the burst filled in, and the time the credits were granted.
    assert_eq!(
        created["rate_limit"],
        json!({"limit": 10, "per": "second", "burst": 10})
    );
    assert_eq!(created["monthly_quota"], 100_000);
    assert_eq!(
        created["credits"],
        json!({"granted": 1_000, "granted_at": NOON, "refill": {"amount": 100, "interval": "day"}})
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/admin/keys/{id}");
    let shown = app.get(&path, &ah).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    for field in ["rate_limit", "monthly_quota", "credits"] {
        assert_eq!(shown.body[field], created[field], "{field}");
    }
    let unknown = app.get("/admin/keys/sapi_nope", &ah).await;
    assert_eq!(unknown.status, 404);

    // A rate limit is replaced whole; new credits are a new grant, at the time of the change.
    app.clock.set(NOON + 60);
    let patched = app
        .patch(
            &path,
            &ah,
            r#"{"rate_limit": {"limit": 600, "per": "minute", "burst": 50},
                "credits": {"remaining": 0}}"#,
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        patched.body["rate_limit"],
        json!({"limit": 600, "per": "minute", "burst": 50})
    );
    assert_eq!(patched.body["monthly_quota"], 100_000, "left as it was");
    assert_eq!(
        patched.body["credits"],
        json!({"granted": 0, "granted_at": NOON + 60})
    );
    let listed = app.get("/admin/keys", &ah).await.body;
    let mine = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(mine["credits"], patched.body["credits"]);

    // Each of these is refused whole with a 400 naming the field, and nothing is stored.
    let before = app.get("/admin/keys", &ah).await.body;
    let refusals = [
        (
            json!({"rate_limit": {"limit": 0, "per": "second"}}),
            "rate_limit.limit",
        ),
        (
            json!({"rate_limit": {"limit": 10, "per": "second", "burst": 0}}),
            "rate_limit.burst",
        ),
        (
            json!({"rate_limit": {"limit": 1_000_001, "per": "second", "burst": 5}}),
            "rate_limit.limit",
        ),
        (
            json!({"rate_limit": {"limit": 10, "per": "hour", "burst": 1_000_001}}),
            "rate_limit.burst",
        ),
        (
            json!({"rate_limit": {"limit": 2_000_000, "per": "day"}}),
            "rate_limit.burst",
        ),
        (json!({"monthly_quota": 0}), "monthly_quota"),
        (json!({"monthly_quota": 1_u64 << 53}), "monthly_quota"),
        (
            json!({"credits": {"remaining": 1_u64 << 53}}),
            "credits.remaining",
        ),
        (
            json!({"credits": {"remaining": 5, "refill": {"amount": 0, "interval": "day"}}}),
            "credits.refill.amount",
        ),
        (
            json!({"credits": {"remaining": 5, "refill": {"amount": 1_u64 << 53, "interval": "month"}}}),
            "credits.refill.amount",
        ),
    ];
    // Refused as the body is read: the detail names the field, in the API's terms.
    let unreadable = [
        (
            json!({"credits": {"remaining": -5}}),
            "credits.remaining: must be 0 or more",
        ),
        (
            json!({"credits": {"remaining": 1.5}}),
            "credits.remaining: must be a whole number",
        ),
        (
            json!({"rate_limit": {"limit": -1, "per": "second"}}),
            "rate_limit.limit: must be 1 or more",
        ),
        (
            json!({"monthly_quota": -3}),
            "monthly_quota: must be 1 or more",
        ),
        (
            json!({"rate_limit": {"limit": 10, "per": "fortnight"}}),
            "rate_limit.per: unknown variant `fortnight`",
        ),
        (
            json!({"credits": {"remaining": 5, "refill": {"amount": 5, "interval": "week"}}}),
            "credits.refill.interval: unknown variant `week`",
        ),
        (
            json!({"rate_limit": {"per": "second"}}),
            "rate_limit: missing field `limit`",
        ),
        (
            json!({"credits": {"remaining": 5, "left": 3}}),
            "credits: unknown field `left`",
        ),
    ];
    let with = |body: &Value, extra: Value| {
        let mut body = body.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body.to_string()
    };
    for (body, field) in &refusals {
        let create = with(body, json!({"service": "refused"}));
        let update = with(body, json!({"name": "Renamed"}));
        for reply in [
            app.post("/admin/keys", &ah, &create).await,
            app.patch(&path, &ah, &update).await,
        ] {
            assert_eq!(reply.status, 400, "{body}: {}", reply.body);
            assert_eq!(reply.body["field"], *field, "{body}: {}", reply.body);
            assert!(
                reply.body["detail"].as_str().unwrap().starts_with(field),
                "{}",
                reply.body
            );
        }
    }
    for (body, detail) in &unreadable {
        let create = with(body, json!({"service": "refused"}));
        for reply in [
            app.post("/admin/keys", &ah, &create).await,
            app.patch(&path, &ah, &body.to_string()).await,
        ] {
            assert_eq!(reply.status, 400, "{body}: {}", reply.body);
            let said = reply.body["detail"].as_str().unwrap();
            assert!(said.starts_with(detail), "{body}: {said}");
            for rust in ["u64", "i64", "Option", "struct"] {
                assert!(!said.contains(rust), "{body}: {said}");
            }
        }
    }
    assert_eq!(app.get("/admin/keys", &ah).await.body, before);

    // null clears each: no rate limit, monthly quota or credits.
    let cleared = app
        .patch(
            &path,
            &ah,
            r#"{"rate_limit": null, "monthly_quota": null, "credits": null}"#,
        )
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    for field in ["rate_limit", "monthly_quota", "credits"] {
        assert!(cleared.body.get(field).is_none(), "{}", cleared.body);
    }

    // The audit log names the fields each change touched, never their values.
    let log = app.get("/admin/audit?limit=100", &ah).await.body;
    let changes: Vec<_> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "key.update" && e["outcome"] == "ok")
        .map(|e| e["detail"]["changed"].clone())
        .collect();
    assert_eq!(
        changes,
        [
            json!(["rate_limit", "monthly_quota", "credits"]),
            json!(["rate_limit", "credits"]),
        ]
    );

    // A PATCH of an unknown or revoked key is refused, and changes nothing.
    let revoked = app
        .create_key(json!({"service": "gone", "credits": {"remaining": 3}}))
        .await;
    let revoked_id = revoked["id"].as_str().unwrap();
    let gone = app
        .send("DELETE", &format!("/admin/keys/{revoked_id}"), &ah, None)
        .await;
    assert_eq!(gone.status, 204);
    for target in ["sapi_nope", revoked_id] {
        let reply = app
            .patch(
                &format!("/admin/keys/{target}"),
                &ah,
                r#"{"credits": {"remaining": 100}, "monthly_quota": 5}"#,
            )
            .await;
        assert_eq!(
            (reply.status, reply.body["field"].clone()),
            (400, json!("id")),
            "{target}: {}",
            reply.body
        );
    }
    let still = app
        .get(&format!("/admin/keys/{revoked_id}"), &ah)
        .await
        .body;
    assert_eq!(still["credits"], revoked["credits"]);
    assert!(still.get("monthly_quota").is_none());
}

#[actix_web::test]
async fn every_admin_action_is_in_the_audit_log_with_its_token_request_and_outcome() {
    let app = spawn().await;
    let admin = format!("Bearer {}", app.first.admin_token);
    let ah = [("authorization", admin.as_str())];
    let tokens = app.get("/admin/tokens", &ah).await;
    let token_id = tokens.body[0]["id"].as_str().unwrap().to_owned();
    // Refused before any action: no admin token, a body of the wrong shape. Not recorded.
    assert_eq!(app.get("/admin/audit", &[]).await.status, 401);
    let anonymous = app.post("/admin/keys", &[], r#"{"service": "x"}"#).await;
    assert_eq!(anonymous.status, 401);
    let misshaped = app.post("/admin/keys", &ah, r#"{"service": 7}"#).await;
    assert_eq!(misshaped.status, 400);

    let with_id = |id: &'static str| [("authorization", admin.as_str()), ("x-request-id", id)];
    let created = app
        .post(
            "/admin/keys",
            &with_id("req-create"),
            r#"{"service": "shop"}"#,
        )
        .await;
    assert_eq!(created.status, 201);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let key_path = format!("/admin/keys/{id}");
    let patch = |body: &'static str| app.send("PATCH", &key_path, &ah, Some(body));
    assert_eq!(
        patch(r#"{"meta": {"plan": "secret-plan"}, "name": "Shop"}"#)
            .await
            .status,
        200
    );
    let zero = patch(r#"{"daily_quota": 0}"#).await;
    assert_eq!(
        (zero.status, zero.body["field"].clone()),
        (400, json!("daily_quota"))
    );
    // A key keeps a list of scopes: null does not clear them, nor pass as "no change".
    let no_scopes = patch(r#"{"scopes": null}"#).await;
    assert_eq!(
        (no_scopes.status, no_scopes.body["field"].clone()),
        (400, json!("scopes"))
    );
    let rotate = format!("{key_path}/rotate");
    let long = app.post(&rotate, &ah, r#"{"grace_hours": 721}"#).await;
    assert_eq!(
        (long.status, long.body["field"].clone()),
        (400, json!("grace_hours"))
    );
    let rotated = app
        .post(&rotate, &with_id("req-rotate"), r#"{"grace_hours": 0}"#)
        .await;
    assert_eq!(rotated.status, 201);
    let successor = rotated.body["id"].as_str().unwrap().to_owned();
    let revoked = app
        .send("DELETE", &format!("/admin/keys/{successor}"), &ah, None)
        .await;
    assert_eq!(revoked.status, 204);
    let unknown = app
        .send("DELETE", "/admin/keys/sapi_...000000000000", &ah, None)
        .await;
    assert_eq!(unknown.status, 404);
    let made = app.post("/admin/tokens", &ah, r#"{"label": "ci"}"#).await;
    let made_id = made.body["id"].as_str().unwrap().to_owned();
    let gone = app
        .send("DELETE", &format!("/admin/tokens/{made_id}"), &ah, None)
        .await;
    assert_eq!(gone.status, 204);

    let log = app.get("/admin/audit?limit=100", &ah).await;
    assert_eq!(log.status, 200, "{}", log.body);
    let entries = log.body["entries"].as_array().unwrap().clone();
    let summary: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap_or("-").to_owned(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    let by = |actor: &str, action, target: &str, outcome| {
        (actor.to_owned(), action, target.to_owned(), outcome)
    };
    let first = "first-start";
    assert_eq!(
        summary,
        [
            by(&token_id, "admin_token.revoke", &made_id, "ok"),
            by(&token_id, "admin_token.create", &made_id, "ok"),
            by(&token_id, "key.revoke", "sapi_...000000000000", "refused"),
            by(&token_id, "key.revoke", &successor, "ok"),
            by(&token_id, "key.rotate", &id, "ok"),
            by(&token_id, "key.rotate", &id, "refused"),
            by(&token_id, "key.update", &id, "refused"),
            by(&token_id, "key.update", &id, "ok"),
            by(&token_id, "key.create", &id, "ok"),
            by(first, "key.create", &app.first.demo_key.id, "ok"),
            by(first, "admin_token.create", &token_id, "ok"),
        ]
    );
    // The request ids are the callers' own, or the ones the server answered with.
    assert_eq!(entries[4]["request_id"], "req-rotate");
    assert_eq!(entries[8]["request_id"], "req-create");
    assert_eq!(
        entries[0]["request_id"].as_str(),
        gone.header("x-request-id").as_deref()
    );
    assert!(entries[9].get("request_id").is_none());
    assert_eq!(
        entries[4]["detail"],
        json!({"successor": successor, "grace_hours": 0})
    );
    assert_eq!(entries[7]["detail"], json!({"changed": ["name", "meta"]}));
    assert_eq!(
        entries[6]["reason"],
        "daily_quota must be between 1 and 1000000000"
    );
    assert_eq!(entries[2]["reason"], "no key with this id");
    let text = log.body.to_string();
    for secret in [
        created.body["key"].as_str().unwrap(),
        rotated.body["key"].as_str().unwrap(),
        made.body["token"].as_str().unwrap(),
        &app.first.admin_token,
        "secret-plan",
    ] {
        assert!(
            !text.contains(secret),
            "the audit log shows no secret or value: {text}"
        );
    }
    let at = entries[0]["at"].as_i64().unwrap();
    assert_eq!(
        u64::try_from(at).unwrap(),
        app.clock.now_nanos() / 1_000_000_000
    );

    // Page by page, newest first, the same entries.
    let mut paged = Vec::new();
    let mut path = "/admin/audit?limit=4".to_owned();
    loop {
        let page = app.get(&path, &ah).await;
        assert_eq!(page.status, 200);
        paged.extend(page.body["entries"].as_array().unwrap().iter().cloned());
        let Some(next) = page.body["next"].as_str() else {
            break;
        };
        path = format!("/admin/audit?limit=4&before={next}");
    }
    assert_eq!(paged, entries);
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("before=k1", "before"),
    ] {
        let bad = app.get(&format!("/admin/audit?{query}"), &ah).await;
        assert_eq!(
            (bad.status, bad.body["field"].clone()),
            (400, json!(field)),
            "{query}"
        );
    }
    let extra = app.get("/admin/audit?offset=3", &ah).await;
    assert_eq!(extra.status, 400);
}

#[actix_web::test]
async fn a_keys_usage_history_counts_its_calls_per_day_accepted_and_refused_by_reason() {
    let app = spawn().await;
    let admin = format!("Bearer {}", app.first.admin_token);
    let ah = [("authorization", admin.as_str())];
    let created = app
        .create_key(json!({"service": "hist", "daily_quota": 2, "scopes": ["time:read"]}))
        .await;
    let (id, key) = (
        created["id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    );
    let call = async |path: &str| {
        let reply = app.post(path, &[("authorization", &key)], "").await;
        reply.status
    };
    // 2026-03-01: two answered, one over the quota, one outside the key's scopes.
    assert_eq!(call("/get-current-time").await, 200);
    assert_eq!(call("/get-current-time").await, 200);
    assert_eq!(call("/get-current-time").await, 429);
    let whoami = app.get("/whoami", &[("authorization", &key)]).await;
    assert_eq!(whoami.status, 403);
    // A call of another key, and a failed authentication, are not this key's.
    let demo = app.first.demo_key.key.clone();
    let other = app
        .post("/get-current-time", &[("authorization", &demo)], "")
        .await;
    assert_eq!(other.status, 200);
    assert_eq!(call_with_bad_key(&app).await, 401);
    // 2026-03-02: one more.
    app.clock.set(NOON + 86_400);
    assert_eq!(call("/get-current-time").await, 200);

    let usage = app
        .get(&format!("/admin/keys/{id}/usage?days=3"), &ah)
        .await;
    assert_eq!(usage.status, 200, "{}", usage.body);
    let day = |date: &str, accepted: u64, quota: u64, scope: u64| json!({"date": date, "accepted": accepted, "refused": {"quota": quota, "scope": scope, "rate": 0, "credits": 0}});
    let three_days = json!([
        day("2026-02-28", 0, 0, 0),
        day("2026-03-01", 2, 1, 1),
        day("2026-03-02", 1, 0, 0),
    ]);
    assert_eq!(usage.body["history"], three_days);
    assert_eq!(
        (usage.body["used"].clone(), usage.body["limit"].clone()),
        (json!(1), json!(2))
    );
    // Thirty days by default, ending today; or the days between two dates.
    let default = app.get(&format!("/admin/keys/{id}/usage"), &ah).await;
    let history = default.body["history"].as_array().unwrap();
    assert_eq!(history.len(), 30);
    assert_eq!(history[29], three_days[2]);
    assert_eq!(history[0]["date"], "2026-02-01");
    let between = app
        .get(
            &format!("/admin/keys/{id}/usage?from=2026-03-01&to=2026-03-01"),
            &ah,
        )
        .await;
    assert_eq!(between.body["history"], json!([three_days[1]]));

    for (query, field) in [
        ("days=0", "days"),
        ("days=401", "days"),
        ("days=3&from=2026-03-01", "days"),
        ("from=2026-03-02&to=2026-03-01", "from"),
        ("from=2025-01-01", "from"),
        ("from=2026-02-30", "from"),
        ("to=tomorrow", "to"),
    ] {
        let bad = app
            .get(&format!("/admin/keys/{id}/usage?{query}"), &ah)
            .await;
        assert_eq!(
            (bad.status, bad.body["field"].clone()),
            (400, json!(field)),
            "{query}"
        );
    }
    let unknown = app.get("/admin/keys/sapi_nope/usage", &ah).await;
    assert_eq!(unknown.status, 404);
}

/// A call with a key that does not exist: 401, counted for no key.
async fn call_with_bad_key(app: &TestApp) -> u16 {
    let bad = "sapi_00000000000000000000000000000000000000000000";
    app.post("/get-current-time", &[("authorization", bad)], "")
        .await
        .status
}
