//! A `SIGKILL` in the middle of load loses nothing that was acknowledged.
//!
//! Each test starts the server on a temporary SQLite file, calls it concurrently, kills the
//! process with `SIGKILL` while that traffic runs, and starts it again on the same file.
//! - Every key and user whose creation was answered is there, and the database passes
//!   `PRAGMA integrity_check`.
//! - Every call answered 200 is still counted in the key's daily quota. Calls in flight at the
//!   kill, which got no answer, may be counted too: their charge may have been written just
//!   before the kill.
//!
//! They run the binary named by `SECURE_API_TEST_BIN` (`.ci/run` builds the release server and
//! sets it), else the test build.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::{
    Instance, admin_token, create_key, random_hex, send, start_instance, try_send,
};
use serde_json::json;
use sqlx::Row;

/// How long the load runs before the kill.
const LOAD_BEFORE_KILL: Duration = Duration::from_secs(4);

#[derive(Default)]
struct Acknowledged {
    keys: Vec<String>,
    users: Vec<String>,
    /// The calls on the metered key answered 200.
    calls: u64,
}

#[actix_web::test]
async fn a_sigkill_under_load_loses_nothing_acknowledged() {
    test_services::clear_of_utc_midnight(
        "a_sigkill_under_load_loses_nothing_acknowledged",
        Duration::from_secs(120),
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let Victim {
        server,
        env,
        admin,
        client,
    } = start_victim(
        dir.path(),
        &db,
        "crash-victim",
        // Registrations come "from" many clients, so the login limit stays out of the way.
        &[
            ("SECURE_API_TRUSTED_PROXIES", "127.0.0.1"),
            ("SECURE_API_HASH_CONCURRENCY", "2"),
        ],
    )
    .await;
    let metered = create_key(
        &client,
        &server,
        &admin,
        json!({"service": "metered", "daily_quota": 1_000_000}),
    )
    .await;
    let (metered_id, metered) = (
        metered["id"].as_str().unwrap().to_owned(),
        metered["key"].as_str().unwrap().to_owned(),
    );

    let Instance {
        base,
        process: victim,
        ..
    } = server;
    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));
    let started = Instant::now();
    let until = started + LOAD_BEFORE_KILL;
    let auth = format!("Bearer {admin}");
    let key_maker = async {
        let mut i = 0;
        while Instant::now() < until {
            i += 1;
            let Ok(reply) = try_send(
                &client,
                "POST",
                &format!("{base}/admin/keys"),
                &[("authorization", &auth)],
                Some(&json!({"service": format!("svc{i}")}).to_string()),
            )
            .await
            else {
                continue;
            };
            if reply.status == 201 {
                let id = reply.body["id"].as_str().unwrap().to_owned();
                acknowledged.lock().unwrap().keys.push(id);
            }
        }
    };
    let registrar = async {
        let mut i = 0;
        while Instant::now() < until {
            i += 1;
            let from = format!("198.51.{}.{}", i / 250, i % 250);
            let name = format!("crash_user_{i}");
            let Ok(reply) = try_send(
                &client,
                "POST",
                &format!("{base}/register"),
                &[("x-forwarded-for", from.as_str())],
                Some(
                    &json!({"username": name, "password": "a long enough password 9"}).to_string(),
                ),
            )
            .await
            else {
                continue;
            };
            if reply.status == 201 {
                acknowledged.lock().unwrap().users.push(name);
            }
        }
    };
    let caller = |_: usize| async {
        while Instant::now() < until {
            let Ok(reply) = try_send(
                &client,
                "POST",
                &format!("{base}/get-current-time"),
                &[("authorization", &metered)],
                Some(""),
            )
            .await
            else {
                continue;
            };
            if reply.status == 200 {
                acknowledged.lock().unwrap().calls += 1;
            }
        }
    };
    let killer = async {
        actix_web::rt::time::sleep_until(until.into()).await;
        // SIGKILL, mid-load: the load loops are still sending.
        let mut victim = victim;
        victim.child.kill().expect("SIGKILL");
        victim.child.wait().expect("reaped");
    };
    // Requests in flight at the kill fail on the client side; that is expected.
    {
        let load = async {
            tokio::join!(
                key_maker,
                registrar,
                caller(0),
                caller(1),
                caller(2),
                caller(3)
            );
        };
        tokio::join!(
            async {
                // The loops may still be waiting on a dead server: bound them.
                let _ =
                    actix_web::rt::time::timeout(LOAD_BEFORE_KILL + Duration::from_secs(15), load)
                        .await;
            },
            killer
        );
    }
    let acknowledged = Arc::try_unwrap(acknowledged)
        .ok()
        .expect("the load is over")
        .into_inner()
        .unwrap();
    assert!(
        acknowledged.keys.len() >= 5,
        "keys made: {}",
        acknowledged.keys.len()
    );
    assert!(
        acknowledged.users.len() >= 2,
        "users made: {}",
        acknowledged.users.len()
    );
    assert!(acknowledged.calls >= 50, "calls: {}", acknowledged.calls);

    // The file as the kill left it (WAL included) opens and checks out.
    let url = format!("sqlite://{}", db.display());
    {
        let pool = open_checked(&url).await;
        let stored = column(&pool, "SELECT id FROM api_keys").await;
        for id in &acknowledged.keys {
            assert!(stored.contains(id), "acknowledged key {id} is lost");
        }
        let stored = column(&pool, "SELECT username FROM users").await;
        for name in &acknowledged.users {
            assert!(stored.contains(name), "acknowledged user {name} is lost");
        }
        pool.close().await;
    }

    // Restarted on the same file: it serves, and the day's usage is what was saved.
    let (server, second_banner) = start_instance("crash-restarted", &env, dir.path()).await;
    assert!(!second_banner.contains("Admin token"), "not a first start");
    let usage = send(
        &client,
        "GET",
        &server.url(&format!("/admin/keys/{metered_id}/usage")),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(usage.status, 200, "{}", usage.body);
    let restored = usage.body["used"].as_u64().unwrap();
    let answered = acknowledged.calls;
    eprintln!(
        "figure: {} keys and {} users acknowledged, all present; {answered} calls answered, \
         {restored} counted after the restart",
        acknowledged.keys.len(),
        acknowledged.users.len(),
    );
    assert!(
        restored >= answered,
        "{restored} < {answered}: answered calls were lost"
    );
    // Counted but unanswered calls (in flight at the kill) may add a few, never more than the
    // four callers had in flight.
    assert!(restored <= answered + 4, "{restored} > {answered} + 4");
    let key_works = send(
        &client,
        "POST",
        &server.url("/get-current-time"),
        &[("authorization", &metered)],
        Some(""),
    )
    .await;
    assert_eq!(key_works.status, 200);
    assert!(server.process.terminate().success());

    // And after a graceful stop the check still passes.
    open_checked(&url).await.close().await;
}

/// The quota of the burst key.
const BURST_QUOTA: u64 = 3_000;
/// Concurrent callers in the burst.
const BURST_CALLERS: usize = 16;

#[actix_web::test]
async fn a_sigkill_mid_burst_forgets_no_answered_call() {
    test_services::clear_of_utc_midnight(
        "a_sigkill_mid_burst_forgets_no_answered_call",
        Duration::from_secs(120),
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("burst.db");
    let Victim {
        server,
        env,
        admin,
        client,
    } = start_victim(dir.path(), &db, "burst-victim", &[]).await;
    let key = create_key(
        &client,
        &server,
        &admin,
        json!({"service": "burst", "daily_quota": BURST_QUOTA}),
    )
    .await;
    let key = key["key"].as_str().unwrap().to_owned();
    let call = |base: String| {
        let (client, key) = (client.clone(), key.clone());
        async move {
            try_send(
                &client,
                "POST",
                &format!("{base}/get-current-time"),
                &[("authorization", &key)],
                Some(""),
            )
            .await
            .map(|reply| reply.status)
        }
    };

    let Instance {
        base,
        process: victim,
        ..
    } = server;
    // The kill comes once a third of the quota is answered, while every caller is sending.
    let answered = AtomicU64::new(0);
    let unanswered = AtomicU64::new(0);
    let caller = || async {
        loop {
            match call(base.clone()).await {
                Ok(200) => answered.fetch_add(1, Ordering::SeqCst),
                Ok(429) => break,
                Ok(status) => panic!("status {status} before the kill"),
                // In flight at the kill: charged or not, nobody knows.
                Err(_) => {
                    unanswered.fetch_add(1, Ordering::SeqCst);
                    break;
                }
            };
        }
    };
    let killer = async {
        while answered.load(Ordering::SeqCst) < BURST_QUOTA / 3 {
            actix_web::rt::time::sleep(Duration::from_millis(1)).await;
        }
        let mut victim = victim;
        victim.child.kill().expect("SIGKILL");
        victim.child.wait().expect("reaped");
    };
    let callers = futures_util::future::join_all((0..BURST_CALLERS).map(|_| caller()));
    tokio::join!(callers, killer);
    let (answered, unanswered) = (answered.into_inner(), unanswered.into_inner());
    assert!(
        answered < BURST_QUOTA,
        "the kill came before the quota was spent"
    );
    open_checked(&format!("sqlite://{}", db.display()))
        .await
        .close()
        .await;

    // Restarted, the key has what the answered calls left, less the unanswered ones that were
    // charged.
    let (server, _) = start_instance("burst-restarted", &env, dir.path()).await;
    let mut after = 0;
    loop {
        match call(server.base.clone())
            .await
            .expect("the restarted server answers")
        {
            200 => after += 1,
            429 => break,
            status => panic!("status {status} while draining"),
        }
    }
    assert!(server.process.terminate().success());
    eprintln!(
        "figure: {answered} answered before the kill, {unanswered} in flight, {after} after the \
         restart: {} of {BURST_QUOTA}",
        answered + after
    );
    assert!(
        answered + after <= BURST_QUOTA,
        "{answered} + {after} > {BURST_QUOTA}: an answered call was forgotten"
    );
    assert!(
        answered + after + unanswered >= BURST_QUOTA,
        "{answered} + {after} + {unanswered} < {BURST_QUOTA}: more was charged than was called"
    );
}

/// A server started on a SQLite file, with what the test needs to call and restart it.
struct Victim {
    server: Instance,
    /// Its environment, to restart it with.
    env: Vec<(String, String)>,
    admin: String,
    client: awc::Client,
}

/// The server `name` on the SQLite file `db` in `dir`, 2 workers, with `extra` settings.
async fn start_victim(
    dir: &std::path::Path,
    db: &std::path::Path,
    name: &'static str,
    extra: &[(&str, &str)],
) -> Victim {
    let mut env = vec![
        ("SECRET_KEY".to_owned(), random_hex(48)),
        (
            "DATABASE_URL".to_owned(),
            format!("sqlite://{}", db.display()),
        ),
        ("SECURE_API_WORKERS".to_owned(), "2".to_owned()),
    ];
    env.extend(extra.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())));
    let (server, banner) = start_instance(name, &env, dir).await;
    Victim {
        server,
        env,
        admin: admin_token(&banner),
        client: awc::Client::builder()
            .timeout(Duration::from_secs(10))
            .finish(),
    }
}

/// The database at `url`, after `PRAGMA integrity_check` answered `ok`.
async fn open_checked(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.expect("the file opens");
    let check: String = sqlx::query("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(check, "ok");
    pool
}

/// The first column of every row `query` returns.
async fn column(pool: &sqlx::AnyPool, query: &'static str) -> std::collections::HashSet<String> {
    let rows = sqlx::query(query).fetch_all(pool).await.unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}
