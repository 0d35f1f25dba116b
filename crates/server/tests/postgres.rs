//! The store on a real PostgreSQL (`TEST_DATABASE_URL`): the same migrations and queries as
//! SQLite. The test works in a schema of its own and drops it afterwards.

mod common;

use secure_api::store::{AuditRow, Db, KeyChange, KeyRow, StoreError, UserRow};

/// The audit entry of `action` at the microsecond `micros`, as the server writes ids.
fn entry(micros: u64, action: &str) -> AuditRow {
    AuditRow {
        id: format!("aud_{micros:016x}{:08x}", 0xabcd_ef01_u32),
        at: 1,
        actor: "sadm_pg".into(),
        action: action.into(),
        target: Some("sapi_...000000000001".into()),
        request_id: Some("req-pg".into()),
        outcome: "ok".into(),
        reason: None,
        detail: Some(r#"{"changed":["scopes","meta"]}"#.into()),
    }
}

#[actix_web::test]
#[ignore = "needs PostgreSQL: set TEST_DATABASE_URL"]
async fn the_store_runs_unchanged_on_postgres() {
    let Some(url) = test_services::database_url("the_store_runs_unchanged_on_postgres") else {
        return;
    };
    let schema = common::PgSchema::create(&url, "secure_api_test").await;
    let db = Db::connect(&schema.url)
        .await
        .expect("migrations apply on PostgreSQL");
    let user = UserRow {
        id: "u1".into(),
        username: "alice".into(),
        password_hash: "$argon2id$v=19$...".into(),
    };
    db.insert_user(&user, 1).await.unwrap();
    assert!(matches!(
        db.insert_user(&user, 1).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(db.find_user("alice").await.unwrap().unwrap().id, "u1");
    assert_eq!(db.find_user("ALICE").await.unwrap().unwrap().id, "u1");
    let shouting = UserRow {
        id: "u2".into(),
        username: "Alice".into(),
        ..user.clone()
    };
    assert!(matches!(
        db.insert_user(&shouting, 1).await,
        Err(StoreError::Conflict)
    ));
    assert!(db.colliding_usernames().await.unwrap().is_empty());
    let key = KeyRow {
        id: "sapi_...000000000001".into(),
        key_hash: "ab".repeat(32),
        service: "billing".into(),
        daily_quota: Some(50),
        signing_secret: Some("00ff".into()),
        created_at: 10,
        expires_at: None,
        revoked_at: None,
        quota_id: None,
        scopes: None,
        name: Some("Billing".into()),
        owner: Some("team-7".into()),
        meta: Some(r#"{"tier":"gold"}"#.into()),
        rate_limit: Some(10),
        rate_period: Some("second".into()),
        rate_burst: Some(20),
        monthly_quota: Some(100_000),
        credits: Some(1_000),
        credits_refill: Some(100),
        credits_interval: Some("month".into()),
        credits_set_at: Some(1_700_000_000),
    };
    // Ids whose hex digits sort differently as text than as letters-before-digits would.
    db.insert_key(&key, &entry(0x0a, "key.create"))
        .await
        .unwrap();
    assert_eq!(
        db.find_key_by_hash(&key.key_hash).await.unwrap(),
        Some(key.clone())
    );
    assert!(
        db.update_key(
            &key.id,
            &KeyChange {
                scopes: Some("time:read prime:check".into()),
                daily_quota: Some(None),
                meta: Some(None),
                name: Some(Some("Billing v2".into())),
                rate_limit: Some(Some(600)),
                rate_period: Some(Some("minute".into())),
                rate_burst: Some(None),
                monthly_quota: Some(None),
                credits: Some(Some(0)),
                credits_refill: Some(None),
                credits_interval: Some(None),
                credits_set_at: Some(Some(1_800_000_000)),
                ..KeyChange::default()
            },
            0,
            &entry(0x1f, "key.update"),
        )
        .await
        .unwrap()
    );
    let changed = db.find_key(&key.id).await.unwrap().unwrap();
    assert_eq!(
        changed,
        KeyRow {
            scopes: Some("time:read prime:check".into()),
            daily_quota: None,
            meta: None,
            name: Some("Billing v2".into()),
            rate_limit: Some(600),
            rate_period: Some("minute".into()),
            rate_burst: None,
            monthly_quota: None,
            credits: Some(0),
            credits_refill: None,
            credits_interval: None,
            credits_set_at: Some(1_800_000_000),
            ..key.clone()
        }
    );
    assert!(
        db.revoke_key(&key.id, 20, &entry(0xa0, "key.revoke"))
            .await
            .unwrap()
    );
    assert!(
        !db.revoke_key("sapi_nope", 20, &entry(0xa1, "key.revoke"))
            .await
            .unwrap()
    );
    let actions = |rows: Vec<AuditRow>| rows.into_iter().map(|r| r.action).collect::<Vec<_>>();
    let newest = db.list_audit(None, 2).await.unwrap();
    assert_eq!(newest[0], entry(0xa0, "key.revoke"));
    assert_eq!(actions(newest.clone()), ["key.revoke", "key.update"]);
    let older = db.list_audit(Some(&newest[1].id), 10).await.unwrap();
    assert_eq!(actions(older), ["key.create"]);
    assert_eq!(
        db.find_key(&key.id).await.unwrap().unwrap().revoked_at,
        Some(20)
    );
    // A rotation's successor carries the limit columns as they are.
    let successor = KeyRow {
        id: "sapi_...000000000002".into(),
        key_hash: "cd".repeat(32),
        quota_id: Some(key.id.clone()),
        ..changed.clone()
    };
    // A revoked key is not rotated: nothing is written.
    assert!(
        !db.rotate_key(&key.id, &successor, 30, &entry(0xaf, "key.rotate"))
            .await
            .unwrap()
    );
    assert_eq!(db.find_key(&successor.id).await.unwrap(), None);
    let live = KeyRow {
        id: "sapi_...000000000003".into(),
        key_hash: "ef".repeat(32),
        ..changed.clone()
    };
    db.insert_key(&live, &entry(0xae, "key.create"))
        .await
        .unwrap();
    let successor = KeyRow {
        quota_id: Some(live.id.clone()),
        ..successor
    };
    assert!(
        db.rotate_key(&live.id, &successor, 30, &entry(0xb0, "key.rotate"))
            .await
            .unwrap()
    );
    assert_eq!(db.find_key(&successor.id).await.unwrap(), Some(successor));
    db.save_snapshot("daily-quota", 5, "{}").await.unwrap();
    db.save_snapshot("daily-quota", 6, "{\"x\":1}")
        .await
        .unwrap();
    assert_eq!(
        db.load_snapshot("daily-quota").await.unwrap(),
        Some((6, "{\"x\":1}".into()))
    );
    // Quota usage adds up per subject and day, and a snapshot moves into it.
    let row = |s: &str, day, calls| (s.to_owned(), day, calls);
    db.add_quota_usage(&[row("a", 7, 2), row("a", 6, 1)])
        .await
        .unwrap();
    db.carry_over_snapshot("daily-quota", &[row("a", 7, 3)])
        .await
        .unwrap();
    assert!(db.load_snapshot("daily-quota").await.unwrap().is_none());
    assert_eq!(
        db.quota_usage_between(7, 7).await.unwrap(),
        [row("a", 7, 5)]
    );
    // Lifetime credit balances are added up over every day and outlive the purge.
    db.add_quota_usage(&[
        row("credits:l:100:k", 1, 4),
        row("credits:l:100:k", 2, 5),
        row("credits:d:100:k", 2, 1),
    ])
    .await
    .unwrap();
    assert_eq!(
        db.quota_usage_total("credits:l:").await.unwrap(),
        [("credits:l:100:k".to_owned(), 9)]
    );
    let mut between = db.quota_usage_between(2, 7).await.unwrap();
    between.sort();
    assert_eq!(
        between,
        [
            ("a".to_owned(), 6, 1),
            ("a".to_owned(), 7, 5),
            ("credits:d:100:k".to_owned(), 2, 1),
            ("credits:l:100:k".to_owned(), 2, 5),
        ]
    );
    assert_eq!(db.purge_quota_usage(7, "credits:l:").await.unwrap(), 2);
    assert_eq!(
        db.quota_usage_total("credits:l:").await.unwrap(),
        [("credits:l:100:k".to_owned(), 9)]
    );
    // The usage history adds up per key, day and outcome, across batches.
    let calls = |key: &str, day, outcome, n| (key.to_owned(), day, outcome, n);
    let batch = [
        calls("k", 7, "accepted", 2),
        calls("k", 7, "scope", 1),
        calls("k", 3, "quota", 4),
    ];
    db.add_key_usage(&batch).await.unwrap();
    db.add_key_usage(&[
        calls("k", 7, "accepted", 3),
        calls("other", 7, "accepted", 9),
    ])
    .await
    .unwrap();
    let history = db.key_usage("k", 5, 7).await.unwrap();
    assert_eq!(
        history,
        [(7, "accepted".to_owned(), 5), (7, "scope".to_owned(), 1)]
    );
    assert_eq!(db.purge_key_usage(5).await.unwrap(), 1);
    assert!(db.key_usage("k", 0, 4).await.unwrap().is_empty());
    assert!(db.revoke_token("j", 100).await.unwrap());
    assert!(!db.revoke_token("j", 100).await.unwrap());
    assert!(db.is_token_revoked("j", "fam").await.unwrap());
    db.close().await;

    schema.drop_schema().await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL: set TEST_DATABASE_URL"]
async fn fifty_concurrent_refreshes_on_postgres_give_exactly_one_success() {
    let Some(url) = test_services::database_url("fifty_concurrent_refreshes_on_postgres") else {
        return;
    };
    let schema = common::PgSchema::create(&url, "secure_api_refresh").await;
    let mut spawn = common::Spawn::default();
    spawn.args.database_url = Some(schema.url.clone());
    let app = common::spawn_with(spawn).await;
    for round in 0..3 {
        // A minute apart: each round registers and logs in, within the login limit.
        app.clock.set(common::NOON + 60 * round);
        app.check_refresh_race(&format!("racer_{round}"), 50).await;
    }
    app.stop().await;
    schema.drop_schema().await;
}

/// PostgreSQL refuses a NUL in text: a name or an id holding one is refused as the input it is,
/// never a 500, and a refused admin action is still in the audit log.
#[actix_web::test]
#[ignore = "needs PostgreSQL: set TEST_DATABASE_URL"]
async fn a_nul_in_a_name_or_an_id_is_refused_on_postgres() {
    let Some(url) = test_services::database_url("a_nul_in_a_name_or_an_id_is_refused") else {
        return;
    };
    let schema = common::PgSchema::create(&url, "secure_api_nul").await;
    let mut spawn = common::Spawn::default();
    spawn.args.database_url = Some(schema.url.clone());
    let app = common::spawn_with(spawn).await;
    let login = app
        .post(
            "/login",
            &[("content-type", "application/json")],
            r#"{"username": "a\u0000b", "password": "a long enough password"}"#,
        )
        .await;
    assert_eq!(login.status, 401, "{}", login.body);
    let admin = format!("Bearer {}", app.first.admin_token);
    for (method, path) in [
        ("GET", "/admin/keys/a%00b"),
        ("DELETE", "/admin/keys/a%00b"),
    ] {
        let reply = app
            .send(method, path, &[("authorization", &admin)], None)
            .await;
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.body);
    }
    let audit = app.get("/admin/audit", &[("authorization", &admin)]).await;
    assert_eq!(
        audit.body["entries"][0]["target"], "(not an id)",
        "{}",
        audit.body
    );
    assert_eq!(audit.body["entries"][0]["outcome"], "refused");
    app.stop().await;
    schema.drop_schema().await;
}
