//! Admin tokens have a lifecycle: created, listed and revoked from the command line and the
//! admin API, with an optional expiry; and a start makes one whenever none is active, whatever
//! else the database holds. Real processes: the CLI and the server share one SQLite file.

mod common;

use common::process::{random_hex, run_cli, run_cli_refused, send, start_instance};
use serde_json::{Value, json};

#[actix_web::test]
async fn admin_tokens_are_created_listed_and_revoked_by_cli_and_api() {
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = vec![
        ("SECRET_KEY".to_owned(), random_hex(48)),
        ("SECURE_API_WORKERS".to_owned(), "1".to_owned()),
    ];
    // A key made before the first `serve`: the start still makes an admin token.
    run_cli(&env, dir.path(), &["keys", "create", "--service", "early"]);
    let (server, banner) = start_instance("admin-tokens", &env, dir.path()).await;
    let first = common::process::admin_token(&banner);
    assert!(!banner.contains("Demo API key"), "{banner}");
    let client = awc::Client::default();
    let call = async |method: &str, path: &str, token: &str, body: Option<Value>| {
        let auth = format!("Bearer {token}");
        let body = body.map(|b| b.to_string());
        let headers = [("authorization", auth.as_str())];
        send(
            &client,
            method,
            &server.url(path),
            &headers,
            body.as_deref(),
        )
        .await
    };
    assert_eq!(call("GET", "/admin/keys", &first, None).await.status, 200);

    // Made through the API, with a label and an expiry; shown once, listed without the token.
    let made = call(
        "POST",
        "/admin/tokens",
        &first,
        Some(json!({"label": "ci deploy", "expires_in_days": 30})),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let (api_id, api_token) = (
        made.body["id"].as_str().unwrap().to_owned(),
        made.body["token"].as_str().unwrap().to_owned(),
    );
    assert!(made.body["expires_at"].is_i64());
    assert_eq!(
        call("GET", "/admin/keys", &api_token, None).await.status,
        200
    );

    // Made on the command line while the server runs: it works at once.
    let created: Value = serde_json::from_str(&run_cli(
        &env,
        dir.path(),
        &["admin-token", "create", "--label", "ops", "--json"],
    ))
    .unwrap();
    let cli_token = created["token"].as_str().unwrap().to_owned();
    assert_eq!(
        call("GET", "/admin/keys", &cli_token, None).await.status,
        200
    );

    let listed = call("GET", "/admin/tokens", &cli_token, None).await;
    let mut labels: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["label"].as_str().unwrap())
        .collect();
    labels.sort_unstable();
    assert_eq!(labels, ["ci deploy", "first start", "ops"]);
    for secret in [&first, &api_token, &cli_token] {
        assert!(!listed.body.to_string().contains(secret.as_str()));
    }

    // Revoked through the API: refused from the next request, on this instance and any other.
    let revoked = call("DELETE", &format!("/admin/tokens/{api_id}"), &first, None).await;
    assert_eq!(revoked.status, 204);
    assert_eq!(
        call("GET", "/admin/keys", &api_token, None).await.status,
        401
    );
    let again = call("DELETE", &format!("/admin/tokens/{api_id}"), &first, None).await;
    assert_eq!(again.status, 404);

    // Revoked on the command line, including the first one: the server refuses both.
    let cli_id = created["id"].as_str().unwrap();
    run_cli(&env, dir.path(), &["admin-token", "revoke", cli_id]);
    assert_eq!(
        call("GET", "/admin/keys", &cli_token, None).await.status,
        401
    );
    let list: Value = serde_json::from_str(&run_cli(
        &env,
        dir.path(),
        &["admin-token", "list", "--json"],
    ))
    .unwrap();
    let by_label = |label: &str| {
        let all = list.as_array().unwrap();
        all.iter().find(|t| t["label"] == label).unwrap().clone()
    };
    assert_eq!(by_label("first start")["status"], "active");
    assert_eq!(by_label("ci deploy")["status"], "revoked");
    assert_eq!(by_label("ops")["status"], "revoked");
    let first_id = by_label("first start")["id"].as_str().unwrap().to_owned();
    run_cli(&env, dir.path(), &["admin-token", "revoke", &first_id]);
    assert_eq!(call("GET", "/admin/keys", &first, None).await.status, 401);
    server.process.terminate();

    // No admin token is active now: the next start makes one, and no second demo key.
    let (server, banner) = start_instance("admin-tokens-again", &env, dir.path()).await;
    let fresh = common::process::admin_token(&banner);
    assert!(!banner.contains("Demo API key"), "{banner}");
    let auth = format!("Bearer {fresh}");
    let keys = send(
        &client,
        "GET",
        &server.url("/admin/keys"),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(keys.status, 200);
    assert_eq!(
        keys.body.as_array().unwrap().len(),
        1,
        "only the key made before serve"
    );
    server.process.terminate();
}

#[test]
fn key_scopes_are_set_and_changed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = vec![
        ("SECRET_KEY".to_owned(), random_hex(48)),
        (
            "SECURE_API_DEFAULT_SCOPES".to_owned(),
            "whoami:read".to_owned(),
        ),
    ];
    let json = |args: &[&str]| -> Value {
        serde_json::from_str(&run_cli(&env, dir.path(), args)).unwrap()
    };

    let defaulted = json(&["keys", "create", "--service", "a", "--json"]);
    assert_eq!(defaulted["scopes"], json!(["whoami:read"]));
    let created = json(&[
        "keys",
        "create",
        "--service",
        "b",
        "--scope",
        "time:read",
        "--scope",
        "prime:check,weather:read",
        "--json",
    ]);
    assert_eq!(
        created["scopes"],
        json!(["time:read", "prime:check", "weather:read"])
    );
    let id = created["id"].as_str().unwrap();
    let updated = json(&["keys", "update", id, "--scope", "*", "--json"]);
    assert_eq!(updated["scopes"], json!(["*"]));
    let listed = run_cli(&env, dir.path(), &["keys", "list"]);
    let line = listed.lines().find(|l| l.starts_with(id)).unwrap();
    assert!(line.ends_with(" *"), "{listed}");

    // An unknown scope fails the command, names the flag and changes nothing.
    let stderr = run_cli_refused(
        &env,
        dir.path(),
        &["keys", "update", id, "--scope", "time:write"],
    );
    assert!(
        stderr.contains("--scope: unknown scope `time:write`"),
        "{stderr}"
    );
    let mine = listed_key(&env, dir.path(), id);
    assert_eq!(mine["scopes"], json!(["*"]));
}

#[test]
fn a_keys_metadata_quota_and_expiry_are_set_and_changed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![("SECRET_KEY".to_owned(), random_hex(48))];
    let json = |args: &[&str]| -> Value {
        serde_json::from_str(&run_cli(&env, dir.path(), args)).unwrap()
    };
    let created = json(&[
        "keys",
        "create",
        "--service",
        "shop",
        "--name",
        "Checkout",
        "--owner",
        "cus_42",
        "--meta",
        r#"{"plan": "pro"}"#,
        "--json",
    ]);
    assert_eq!(created["meta"], json!({"plan": "pro"}));
    let id = created["id"].as_str().unwrap();
    let listed = run_cli(&env, dir.path(), &["keys", "list"]);
    let line = listed.lines().find(|l| l.starts_with(id)).unwrap();
    assert!(line.contains(" Checkout "), "{listed}");

    let updated = json(&[
        "keys",
        "update",
        id,
        "--daily-quota",
        "5",
        "--expires-in",
        "3",
        "--clear",
        "meta,name",
        "--json",
    ]);
    assert_eq!(updated["daily_quota"], 5);
    assert!(updated["expires_at"].as_i64().is_some());
    assert!(updated.get("meta").is_none() && updated.get("name").is_none());
    assert_eq!(updated["owner"], "cus_42");
    let text = run_cli(
        &env,
        dir.path(),
        &["keys", "update", id, "--clear", "expiry"],
    );
    assert!(text.contains("changed (expires_in_days)"), "{text}");

    // Refused: nothing to change, a contradiction, a meta that is no object. Nothing changes.
    for (args, says) in [
        (vec!["keys", "update", id], "nothing to change"),
        (
            vec!["keys", "update", id, "--name", "n", "--clear", "name"],
            "--name and --clear name contradict each other",
        ),
        (
            vec!["keys", "update", id, "--owner", "o", "--meta", "[1]"],
            "meta must be a JSON object",
        ),
        (vec!["keys", "update", id, "--meta", "{"], "--meta"),
    ] {
        let stderr = run_cli_refused(&env, dir.path(), &args);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let mine = listed_key(&env, dir.path(), id);
    assert_eq!(mine["owner"], "cus_42");
    assert_eq!(mine["daily_quota"], 5);
    assert!(mine.get("expires_at").is_none());
}

#[test]
fn a_keys_limits_are_set_changed_cleared_and_refused_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![("SECRET_KEY".to_owned(), random_hex(48))];
    let json = |args: &[&str]| -> Value {
        serde_json::from_str(&run_cli(&env, dir.path(), args)).unwrap()
    };
    let created = json(&[
        "keys",
        "create",
        "--service",
        "metered",
        "--rate-limit",
        "10/second",
        "--burst",
        "20",
        "--monthly-quota",
        "100000",
        "--credits",
        "1000",
        "--refill",
        "100/day",
        "--json",
    ]);
    assert_eq!(
        created["rate_limit"],
        json!({"limit": 10, "per": "second", "burst": 20})
    );
    assert_eq!(created["monthly_quota"], 100_000);
    assert_eq!(created["credits"]["granted"], 1_000);
    assert_eq!(
        created["credits"]["refill"],
        json!({"amount": 100, "interval": "day"})
    );
    let id = created["id"].as_str().unwrap();
    let listed = run_cli(&env, dir.path(), &["keys", "list"]);
    let line = listed.lines().find(|l| l.starts_with(id)).unwrap();
    for shown in ["10/second burst 20", "100000", "1000 refill 100/day"] {
        assert!(line.contains(shown), "{shown}: {listed}");
    }
    let text = run_cli(
        &env,
        dir.path(),
        &["keys", "create", "--service", "plain", "--credits", "0"],
    );
    assert!(text.contains("credits:      0 granted at "), "{text}");

    let updated = json(&[
        "keys",
        "update",
        id,
        "--rate-limit",
        "600/minute",
        "--credits",
        "5",
        "--clear",
        "monthly_quota",
        "--json",
    ]);
    assert_eq!(
        updated["rate_limit"],
        json!({"limit": 600, "per": "minute", "burst": 600})
    );
    assert_eq!(updated["credits"]["granted"], 5);
    assert!(updated["credits"].get("refill").is_none(), "{updated}");
    assert!(updated.get("monthly_quota").is_none(), "{updated}");

    // Refused with the admin API's words; nothing changes.
    for (args, says) in [
        (
            vec!["keys", "update", id, "--credits", "-5"],
            "credits.remaining must be 0 or more",
        ),
        (
            vec!["keys", "update", id, "--rate-limit", "0/second"],
            "rate_limit.limit must be 1 or more",
        ),
        (
            vec![
                "keys",
                "update",
                id,
                "--rate-limit",
                "10/second",
                "--burst",
                "0",
            ],
            "rate_limit.burst must be 1 or more",
        ),
        (
            vec!["keys", "update", id, "--rate-limit", "10/fortnight"],
            "rate_limit.per must be one of second, minute, hour, day",
        ),
        (
            vec!["keys", "update", id, "--credits", "1", "--refill", "0/day"],
            "credits.refill.amount must be between 1 and 9007199254740991",
        ),
        (
            vec!["keys", "update", id, "--credits", "1", "--refill", "5/week"],
            "credits.refill.interval must be one of day, month",
        ),
        (
            vec!["keys", "update", id, "--monthly-quota", "0"],
            "monthly_quota must be between 1 and 9007199254740991",
        ),
        (
            vec!["keys", "update", id, "--credits", "9007199254740992"],
            "credits.remaining must be at most 9007199254740991",
        ),
        (
            vec!["keys", "update", id, "--credits", "3", "--clear", "credits"],
            "--credits and --clear credits contradict each other",
        ),
        (vec!["keys", "update", id, "--burst", "5"], "--rate-limit"),
    ] {
        let stderr = run_cli_refused(&env, dir.path(), &args);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let mine = listed_key(&env, dir.path(), id);
    assert_eq!(mine["rate_limit"], updated["rate_limit"]);
    assert_eq!(mine["credits"], updated["credits"]);

    let cleared = json(&[
        "keys",
        "update",
        id,
        "--clear",
        "rate-limit,credits",
        "--json",
    ]);
    assert!(cleared.get("rate_limit").is_none() && cleared.get("credits").is_none());
}

/// The key `id` as `keys list --json` shows it.
fn listed_key(env: &[(String, String)], dir: &std::path::Path, id: &str) -> Value {
    let listed: Value =
        serde_json::from_str(&run_cli(env, dir, &["keys", "list", "--json"])).unwrap();
    let mine = listed.as_array().unwrap().iter().find(|k| k["id"] == id);
    mine.unwrap().clone()
}

#[test]
fn the_command_line_records_its_actions_in_the_audit_log_and_pages_it() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![("SECRET_KEY".to_owned(), random_hex(48))];
    let json = |args: &[&str]| -> Value {
        serde_json::from_str(&run_cli(&env, dir.path(), args)).unwrap()
    };
    let created = json(&["keys", "create", "--service", "shop", "--json"]);
    let id = created["id"].as_str().unwrap();
    let stderr = run_cli_refused(
        &env,
        dir.path(),
        &["keys", "update", id, "--daily-quota", "0"],
    );
    assert!(stderr.contains("daily_quota"), "{stderr}");
    run_cli(&env, dir.path(), &["keys", "revoke", id]);
    let token = json(&["admin-token", "create", "--label", "ops", "--json"]);

    let page = json(&["audit", "--json"]);
    let entries = page["entries"].as_array().unwrap();
    let summary: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    let token_id = token["id"].as_str().unwrap();
    assert_eq!(
        summary,
        [
            ("cli", "admin_token.create", token_id, "ok"),
            ("cli", "key.revoke", id, "ok"),
            ("cli", "key.update", id, "refused"),
            ("cli", "key.create", id, "ok"),
        ]
    );
    assert!(
        entries[2]["reason"]
            .as_str()
            .unwrap()
            .contains("daily_quota")
    );
    assert_eq!(entries[2]["detail"], json!({"changed": ["daily_quota"]}));
    assert!(page.get("next").is_none());
    let all = page.to_string();
    for secret in [&created["key"], &token["token"]] {
        assert!(!all.contains(secret.as_str().unwrap()), "{all}");
    }

    // Two at a time: the text ends with the command for the older ones.
    let text = run_cli(&env, dir.path(), &["audit", "--limit", "2"]);
    let older = text
        .lines()
        .find_map(|l| l.strip_prefix("older entries: secure-api audit --before "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        text.contains("admin_token.create") && !text.contains("key.create"),
        "{text}"
    );
    let rest = json(&["audit", "--before", older, "--json"]);
    assert_eq!(rest["entries"].as_array().unwrap()[..], entries[2..]);
    let stderr = run_cli_refused(&env, dir.path(), &["audit", "--limit", "0"]);
    assert!(
        stderr.contains("limit must be between 1 and 500"),
        "{stderr}"
    );
}

#[test]
fn keys_usage_shows_the_history_of_the_days_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![("SECRET_KEY".to_owned(), random_hex(48))];
    let created: Value = serde_json::from_str(&run_cli(
        &env,
        dir.path(),
        &[
            "keys",
            "create",
            "--service",
            "shop",
            "--credits",
            "40",
            "--monthly-quota",
            "900",
            "--json",
        ],
    ))
    .unwrap();
    let id = created["id"].as_str().unwrap();
    let report: Value = serde_json::from_str(&run_cli(
        &env,
        dir.path(),
        &["keys", "usage", id, "--days", "2", "--json"],
    ))
    .unwrap();
    assert_eq!(report["id"], id);
    let history = report["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    for day in history {
        assert_eq!(day["accepted"], 0);
        assert_eq!(
            day["refused"],
            json!({"quota": 0, "scope": 0, "rate": 0, "credits": 0})
        );
    }
    let text = run_cli(
        &env,
        dir.path(),
        &[
            "keys",
            "usage",
            id,
            "--from",
            "2026-01-30",
            "--to",
            "2026-02-02",
        ],
    );
    // What is left of each limit besides the daily quota, none of it spent.
    assert!(
        text.contains("monthly quota: 0 of 900 used, 900 left, whole again in "),
        "{text}"
    );
    assert!(
        text.contains("credits: 0 of 40 used, 40 left, never refilled"),
        "{text}"
    );
    assert_eq!(
        report["credits"],
        json!({"limit": 40, "used": 0, "remaining": 40})
    );
    let dates: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.starts_with("2026-"))
        .collect();
    assert_eq!(
        dates,
        ["2026-01-30", "2026-01-31", "2026-02-01", "2026-02-02"],
        "{text}"
    );
    for (args, says) in [
        (vec!["--days", "0"], "--days must be between 1 and 400"),
        (
            vec!["--from", "2026-13-01"],
            "--from must be a date, YYYY-MM-DD",
        ),
        (
            vec!["--days", "3", "--to", "2026-01-01"],
            "cannot be used with",
        ),
    ] {
        let mut all = vec!["keys", "usage", id];
        all.extend(args);
        let stderr = run_cli_refused(&env, dir.path(), &all);
        assert!(stderr.contains(says), "{all:?}: {stderr}");
    }
}

#[test]
fn a_key_pasted_where_its_id_goes_is_refused_and_never_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![("SECRET_KEY".to_owned(), random_hex(48))];
    let created: Value = serde_json::from_str(&run_cli(
        &env,
        dir.path(),
        &["keys", "create", "--service", "shop", "--json"],
    ))
    .unwrap();
    let (key, id) = (
        created["key"].as_str().unwrap(),
        created["id"].as_str().unwrap(),
    );
    let stderr = run_cli_refused(&env, dir.path(), &["keys", "revoke", key]);
    assert!(
        stderr.contains("is a key itself") && !stderr.contains(key),
        "{stderr}"
    );
    // Text that is no id, such as a terminal's escape sequence, is refused before the store.
    run_cli_refused(&env, dir.path(), &["keys", "revoke", "x\u{1b}[8m"]);
    let table = run_cli(&env, dir.path(), &["audit"]);
    assert!(!table.contains(key) && !table.contains('\u{1b}'), "{table}");
    assert!(
        table.contains("(not an id)") && table.contains("(a key or token, not its id)"),
        "{table}"
    );
    assert_eq!(table.matches("refused").count(), 2, "{table}");
    assert_eq!(listed_key(&env, dir.path(), id)["status"], "active");
}
