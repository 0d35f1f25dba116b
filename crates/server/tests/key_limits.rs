//! Per-key rate limits, monthly quotas and credits (#18 items 2 and 3) on the request path:
//! every policy in the headers, each refusal its own problem, refused calls cost nothing,
//! exact under concurrency, and durable across a restart on the embedded default.

mod common;

use std::rc::Rc;
use std::sync::Arc;

use common::{NOON, Spawn, TestApp, spawn, spawn_with};
use serde_json::{Value, json};

fn key_of(created: &Value) -> (String, String) {
    (
        created["id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    )
}

async fn call(app: &TestApp, key: &str) -> common::Reply {
    app.post("/get-current-time", &[("authorization", key)], "")
        .await
}

#[actix_web::test]
async fn every_policy_is_in_the_headers_and_the_rate_limit_refuses_with_its_own_problem() {
    let app = spawn().await;
    let created = app
        .create_key(json!({
            "service": "limits",
            "daily_quota": 100,
            "rate_limit": {"limit": 2, "per": "minute"},
            "monthly_quota": 1000,
            "credits": {"remaining": 50},
        }))
        .await;
    let (_, key) = key_of(&created);

    let first = call(&app, &key).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(
        first.header("ratelimit-policy").as_deref(),
        Some(
            r#""rate";q=2;w=60, "daily";q=100;w=86400, "monthly";q=1000;w=2678400, "credits";q=50"#
        ),
        "March has 31 days; credits never renew"
    );
    // The tightest is the rate: one left of its burst, whole again in 30 s.
    assert_eq!(
        first.header("ratelimit").as_deref(),
        Some(r#""rate";r=1;t=30"#)
    );
    assert_eq!(first.header("x-ratelimit-remaining").as_deref(), Some("1"));

    assert_eq!(call(&app, &key).await.status, 200);
    let refused = call(&app, &key).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.body["type"], "/problems/rate-limited");
    assert_eq!(refused.header("retry-after").as_deref(), Some("30"));
    assert_eq!(
        refused.header("content-type").as_deref(),
        Some("application/problem+json")
    );

    // The refusal cost nothing: after 30 s one call passes, and the daily, monthly and credit
    // counts hold the two answered calls and it.
    app.clock.set(NOON + 30);
    let later = call(&app, &key).await;
    assert_eq!(later.status, 200, "{}", later.body);
    let policies = later.header("ratelimit-policy").unwrap_or_default();
    assert!(policies.contains(r#""credits";q=50"#), "{policies}");
    app.clock.set(NOON + 300);
    let whole = call(&app, &key).await;
    // The rate is whole again; the credits (47 left) are now the tightest.
    assert_eq!(
        whole.header("ratelimit").as_deref(),
        Some(r#""rate";r=1;t=30"#)
    );
    app.clock.set(NOON + 600);
    let _ = call(&app, &key).await;
    let tight = call(&app, &key).await;
    assert_eq!(tight.status, 200);
    assert_eq!(
        tight.header("ratelimit").as_deref(),
        Some(r#""rate";r=0;t=60"#)
    );
    app.stop().await;
}

#[actix_web::test]
async fn spent_credits_are_a_429_of_their_own_and_refused_calls_are_free() {
    let app = spawn().await;
    let admin = format!("Bearer {}", app.first.admin_token);
    let ah = [("authorization", admin.as_str())];
    let created = app
        .create_key(json!({"service": "credits", "credits": {"remaining": 2}}))
        .await;
    let (id, key) = key_of(&created);
    assert_eq!(call(&app, &key).await.status, 200);
    let last = call(&app, &key).await;
    assert_eq!(last.status, 200);
    assert_eq!(
        last.header("ratelimit").as_deref(),
        Some(r#""credits";r=0"#)
    );
    for _ in 0..3 {
        let spent = call(&app, &key).await;
        assert_eq!(spent.status, 429, "{}", spent.body);
        assert_eq!(spent.body["type"], "/problems/credits-exhausted");
        assert_ne!(spent.body["type"], "/problems/quota-exceeded");
        assert!(spent.header("retry-after").is_none(), "no refill: never");
        assert_eq!(spent.body["detail"], "this key has no credits left");
    }
    // A spent balance costs no daily quota: the refused calls were given back.
    let usage = app.get(&format!("/admin/keys/{id}/usage"), &ah).await;
    assert_eq!(usage.status, 200, "{}", usage.body);
    assert_eq!(usage.body["used"], 2, "{}", usage.body);

    // Topped up through the admin API: a new balance, counted from zero.
    let patched = app
        .patch(
            &format!("/admin/keys/{id}"),
            &ah,
            r#"{"credits": {"remaining": 1, "refill": {"amount": 3, "interval": "day"}}}"#,
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    // Cached identities live the key cache TTL (5 s).
    app.clock.set(NOON + 6);
    app.services.api_auth.forget(&id);
    assert_eq!(call(&app, &key).await.status, 200);
    let spent = call(&app, &key).await;
    assert_eq!(spent.status, 429, "{}", spent.body);
    assert_eq!(spent.body["type"], "/problems/credits-exhausted");
    // Refilled at midnight UTC: 12 h - 6 s away.
    assert_eq!(spent.header("retry-after").as_deref(), Some("43194"));
    app.clock.set(NOON + 12 * 3_600);
    for _ in 0..3 {
        assert_eq!(call(&app, &key).await.status, 200, "refilled to 3");
    }
    assert_eq!(call(&app, &key).await.status, 429);

    // The history counts each refusal by its reason.
    let history = app
        .get(&format!("/admin/keys/{id}/usage?days=2"), &ah)
        .await;
    let day = |date: &str, accepted: u64, credits: u64| {
        json!({"date": date, "accepted": accepted,
               "refused": {"quota": 0, "scope": 0, "rate": 0, "credits": credits}})
    };
    assert_eq!(
        history.body["history"],
        json!([day("2026-03-01", 3, 4), day("2026-03-02", 3, 1)])
    );
    app.stop().await;
}

#[actix_web::test]
async fn concurrent_calls_spend_credits_exactly() {
    let app = Rc::new(spawn().await);
    let created = app
        .create_key(json!({"service": "flood", "credits": {"remaining": 40}}))
        .await;
    let (_, key) = key_of(&created);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (app, key) = (Rc::clone(&app), key.clone());
            actix_web::rt::spawn(async move {
                let mut answered = 0;
                for _ in 0..15 {
                    let reply = call(&app, &key).await;
                    match reply.status {
                        200 => answered += 1,
                        429 => assert_eq!(reply.body["type"], "/problems/credits-exhausted"),
                        other => panic!("{other}: {}", reply.body),
                    }
                }
                answered
            })
        })
        .collect();
    let mut answered = 0;
    for task in tasks {
        answered += task.await.unwrap();
    }
    assert_eq!(answered, 40, "120 calls on a balance of 40");
}

#[actix_web::test]
async fn spent_credits_and_the_monthly_quota_survive_a_restart() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let spawn_in = |dir: &Arc<tempfile::TempDir>, secret: Option<String>| {
        let mut spawn = Spawn {
            dir: Some(Arc::clone(dir)),
            ..Spawn::default()
        };
        if let Some(secret) = secret {
            spawn.env.insert("SECRET_KEY".to_owned(), secret);
        }
        spawn
    };
    let first = spawn_with(spawn_in(&dir, None)).await;
    let secret = first.env["SECRET_KEY"].clone();
    let created = first
        .create_key(json!({
            "service": "durable",
            "monthly_quota": 5,
            "credits": {"remaining": 3},
        }))
        .await;
    let (_, key) = key_of(&created);
    let monthly = first
        .create_key(json!({"service": "monthly", "monthly_quota": 3}))
        .await;
    let (_, monthly) = key_of(&monthly);
    for _ in 0..2 {
        assert_eq!(call(&first, &key).await.status, 200);
        assert_eq!(call(&first, &monthly).await.status, 200);
    }
    first.stop().await;

    // Another day of the same month: the daily quota is whole, the rest is not.
    let clock_next_day = secure_api::clock::Clock::manual(NOON + 86_400);
    let mut again = spawn_in(&dir, Some(secret.clone()));
    again.clock = clock_next_day;
    let second = spawn_with(again).await;
    let third = call(&second, &key).await;
    assert_eq!(third.status, 200, "{}", third.body);
    assert_eq!(
        third.header("ratelimit").as_deref(),
        Some(r#""credits";r=0"#)
    );
    assert!(
        third
            .header("ratelimit-policy")
            .is_some_and(|p| p.contains(r#""monthly";q=5;w=2678400"#)),
        "{:?}",
        third.header("ratelimit-policy")
    );
    let fourth = call(&second, &key).await;
    assert_eq!(fourth.status, 429);
    assert_eq!(fourth.body["type"], "/problems/credits-exhausted");
    second.stop().await;

    // A key with only a monthly quota: the month's calls of every day count after a restart.
    let mut next = spawn_in(&dir, Some(secret));
    next.clock = secure_api::clock::Clock::manual(NOON + 2 * 86_400);
    let third_start = spawn_with(next).await;
    assert_eq!(call(&third_start, &monthly).await.status, 200);
    let over = call(&third_start, &monthly).await;
    assert_eq!(over.status, 429, "{}", over.body);
    assert_eq!(over.body["type"], "/problems/quota-exceeded");
    third_start.stop().await;
}

#[actix_web::test]
async fn a_monthly_quota_set_during_the_month_counts_the_months_calls() {
    let app = spawn().await;
    let admin = format!("Bearer {}", app.first.admin_token);
    let ah = [("authorization", admin.as_str())];
    let (id, key) = key_of(&app.create_key(json!({"service": "later"})).await);
    for _ in 0..2 {
        assert_eq!(call(&app, &key).await.status, 200);
    }
    // The next day of the same month.
    app.clock.set(NOON + 86_400);
    let patched = app
        .patch(&format!("/admin/keys/{id}"), &ah, r#"{"monthly_quota": 3}"#)
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    app.services.api_auth.forget(&id);
    assert_eq!(call(&app, &key).await.status, 200);
    let over = call(&app, &key).await;
    assert_eq!(over.status, 429, "{}", over.body);
    assert_eq!(over.body["type"], "/problems/quota-exceeded");
    let usage = app.get(&format!("/admin/keys/{id}/usage"), &ah).await;
    assert_eq!(
        usage.body["monthly_quota"],
        json!({"limit": 3, "used": 3, "remaining": 0, "reset_secs": 30 * 86_400 - 12 * 3_600}),
        "{}",
        usage.body
    );
    app.stop().await;
}

/// Two instances on one PostgreSQL schema and one Redis: a flood through both gets exactly
/// a key's credits, or exactly its rate limit's burst, and the calls a later limit refused
/// cost nothing in the limits before it.
#[actix_web::test]
#[ignore = "needs PostgreSQL and Redis: set TEST_DATABASE_URL and TEST_REDIS_URL"]
async fn two_instances_share_rate_limits_and_credits_exactly() {
    let test = "two_instances_share_rate_limits_and_credits_exactly";
    let (Some(db), Some(redis)) = (
        test_services::database_url(test),
        test_services::redis_url(test),
    ) else {
        return;
    };
    let schema = common::PgSchema::create(&db, "secure_api_limits").await;
    let mut id = [0u8; 6];
    rand::fill(&mut id);
    let prefix = format!("limits-{}", hex::encode(id));
    let make = |secret: Option<String>| {
        let mut spawn = Spawn::default();
        spawn.args.database_url = Some(schema.url.clone());
        spawn.args.redis_url = Some(redis.clone());
        spawn.args.redis_prefix = Some(prefix.clone());
        if let Some(secret) = secret {
            spawn.env.insert("SECRET_KEY".to_owned(), secret);
        }
        spawn
    };
    let a = Rc::new(spawn_with(make(None)).await);
    let mut second = make(Some(a.env["SECRET_KEY"].clone()));
    second.clock = a.clock.clone();
    let b = Rc::new(spawn_with(second).await);
    let admin = format!("Bearer {}", a.first.admin_token);
    let ah = [("authorization", admin.as_str())];

    let flood = |key: String| {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let app = Rc::clone(if i % 2 == 0 { &a } else { &b });
                let key = key.clone();
                actix_web::rt::spawn(async move {
                    let mut answered = 0u64;
                    let mut kinds = Vec::new();
                    for _ in 0..10 {
                        let reply = call(&app, &key).await;
                        match reply.status {
                            200 => answered += 1,
                            429 => kinds.push(reply.body["type"].as_str().unwrap().to_owned()),
                            other => panic!("{other}: {}", reply.body),
                        }
                    }
                    (answered, kinds)
                })
            })
            .collect::<Vec<_>>();
        async move {
            let mut answered = 0;
            let mut kinds = Vec::new();
            for task in tasks {
                let (n, k) = task.await.unwrap();
                answered += n;
                kinds.extend(k);
            }
            (answered, kinds)
        }
    };

    // Credits bind: 80 calls through both instances, a balance of 25.
    let (credits_id, credits_key) = key_of(
        &a.create_key(json!({"service": "shared", "credits": {"remaining": 25},
                             "rate_limit": {"limit": 1000, "per": "hour"}}))
            .await,
    );
    let (answered, kinds) = flood(credits_key).await;
    assert_eq!(answered, 25);
    assert!(
        kinds.iter().all(|k| k == "/problems/credits-exhausted"),
        "{kinds:?}"
    );
    let usage = b.get(&format!("/admin/keys/{credits_id}/usage"), &ah).await;
    assert_eq!(usage.body["credits"]["remaining"], 0, "{}", usage.body);
    // The 55 refused calls were given back to the rate limit and the daily quota.
    assert_eq!(usage.body["used"], 25, "{}", usage.body);
    assert_eq!(usage.body["rate_limit"]["used"], 25, "{}", usage.body);

    // The rate binds: a burst of 10, and the refused calls spent no credits.
    let (rate_id, rate_key) = key_of(
        &a.create_key(json!({"service": "shared", "credits": {"remaining": 100},
                             "rate_limit": {"limit": 10, "per": "hour"}}))
            .await,
    );
    let (answered, kinds) = flood(rate_key).await;
    assert_eq!(answered, 10);
    assert!(
        kinds.iter().all(|k| k == "/problems/rate-limited"),
        "{kinds:?}"
    );
    let usage = a.get(&format!("/admin/keys/{rate_id}/usage"), &ah).await;
    assert_eq!(usage.body["credits"]["remaining"], 90, "{}", usage.body);
    assert_eq!(usage.body["used"], 10, "{}", usage.body);

    Rc::try_unwrap(a).ok().unwrap().stop().await;
    Rc::try_unwrap(b).ok().unwrap().stop().await;
    schema.drop_schema().await;
}

#[actix_web::test]
async fn a_prime_test_that_its_credits_cannot_pay_is_refused_and_costs_nothing() {
    let app = spawn().await;
    let admin = format!("Bearer {}", app.first.admin_token);
    let ah = [("authorization", admin.as_str())];
    let (id, key) = key_of(
        &app.create_key(json!({"service": "primes", "daily_quota": 100_000,
                               "credits": {"remaining": 5}}))
            .await,
    );
    let h = [("authorization", key.as_str())];
    // 2^2048 - 1 with 64 extra rounds costs 179 units: more than the credits.
    let n = format!("0x{}", "f".repeat(512));
    let reply = app
        .post(
            "/check-prime",
            &h,
            &json!({"number": n, "rounds": 64}).to_string(),
        )
        .await;
    assert_eq!(reply.status, 429, "{}", reply.body);
    assert_eq!(reply.body["type"], "/problems/credits-exhausted");
    let usage = app.get(&format!("/admin/keys/{id}/usage"), &ah).await;
    assert_eq!(usage.body["used"], 0, "{}", usage.body);
    assert_eq!(usage.body["credits"]["remaining"], 5, "{}", usage.body);
    // A u64 costs 1 credit.
    let reply = app.post("/check-prime", &h, r#"{"number": 97}"#).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.header("ratelimit").as_deref(),
        Some(r#""credits";r=4"#)
    );
    app.stop().await;
}
