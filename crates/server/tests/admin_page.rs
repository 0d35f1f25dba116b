//! `/admin/ui`, the admin page: what the server sends, checked over plain HTTP, and the
//! operator's flows clicked through in headless Chromium over the DevTools protocol: sign in,
//! the keys, a key's usage chart, create (the key shown once, with a rate limit, a monthly quota
//! and credits), edit scopes, quota and limits, rotate, revoke, the audit log, sign out.
//!
//! The browser test needs `chromium` on `PATH` (`apt-get install chromium`; `.ci/run` installs
//! it). Without it the test says so and skips, and fails under `REQUIRE_SERVICES=1`. Set
//! `ADMIN_PAGE_SCREENSHOTS=docs` to write `admin-keys.png` and `admin-audit.png` there.

mod common;

use std::path::Path;
use std::time::Duration;

use actix_web::rt::time::timeout;
use common::browser::{self, Cdp, Chromium, Socket, wait_for};
use common::{TestApp, spawn};
use secure_api::routes::admin_ui::PAGE_CSP;
use serde_json::{Value, json};

/// The whole browser session, start to finish, must take less than this.
const BROWSER_BUDGET: Duration = Duration::from_secs(120);

#[actix_web::test]
async fn the_page_and_its_assets_are_served_offline_under_a_strict_policy() {
    let app = spawn().await;
    let page = app.get("/admin/ui", &[]).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        page.header("content-security-policy").as_deref(),
        Some(PAGE_CSP)
    );
    assert!(!PAGE_CSP.contains("unsafe"), "{PAGE_CSP}");
    assert_eq!(page.header("x-frame-options").as_deref(), Some("DENY"));
    // Everything the page loads comes from this server: no CDN, nothing inline.
    for needle in ["http://", "https://", "<script>", " style=", "onclick"] {
        let html = page.text.replace("http://www.w3.org/2000/svg", "");
        assert!(!html.contains(needle), "the page holds {needle:?}");
    }
    for (path, content_type) in [
        ("/admin/ui/admin.js", "text/javascript; charset=utf-8"),
        ("/admin/ui/admin.css", "text/css; charset=utf-8"),
    ] {
        let asset = app.get(path, &[]).await;
        assert_eq!(asset.status, 200, "{path}");
        assert_eq!(asset.header("content-type").as_deref(), Some(content_type));
        let relative = path.trim_start_matches("/admin/");
        assert!(page.text.contains(relative), "the page loads {path}");
    }
    let script = app.get("/admin/ui/admin.js", &[]).await.text;
    for unsafe_sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "eval(",
        "document.cookie",
        "localStorage",
    ] {
        assert!(
            !script.contains(unsafe_sink),
            "the script uses {unsafe_sink}"
        );
    }
}

const TEST: &str = "the_operator_signs_in_and_manages_keys_in_chromium";

#[actix_web::test]
#[ignore = "needs Chromium (/usr/bin/chromium)"]
async fn the_operator_signs_in_and_manages_keys_in_chromium() {
    let Some(chromium) = browser::chromium(TEST) else {
        return;
    };
    let app = spawn().await;
    // A key with calls on two days, some refused: the chart has something to show.
    let traffic = app
        .create_key(json!({"service": "shop", "name": "Checkout", "daily_quota": 3, "scopes": ["time:read"]}))
        .await;
    let traffic_key = traffic["key"].as_str().unwrap().to_owned();
    let call = async |path: &str| {
        let auth = [("authorization", traffic_key.as_str())];
        app.post(path, &auth, "").await.status
    };
    // Two weeks before yesterday, oldest first (a daily quota never goes back to an earlier
    // day): 1 to 5 calls a day, those over 3 refused.
    let days: Vec<(u64, u64)> = (2..16)
        .zip([2, 4, 3, 5, 1, 3, 4, 2, 5, 3, 1, 4, 2, 3])
        .collect();
    for &(days_ago, calls) in days.iter().rev() {
        app.clock.set(common::NOON - days_ago * 86_400);
        for i in 0..calls {
            assert_eq!(
                call("/get-current-time").await,
                if i < 3 { 200 } else { 429 }
            );
        }
    }
    app.clock.set(common::NOON - 86_400);
    assert_eq!(call("/get-current-time").await, 200);
    app.clock.set(common::NOON);
    for expected in [200, 200, 200, 429] {
        assert_eq!(call("/get-current-time").await, expected);
    }
    assert_eq!(
        app.get("/whoami", &[("authorization", &traffic_key)])
            .await
            .status,
        403
    );

    // And limits, given after the traffic so that they spend nothing of it: the page shows them.
    let limits = app
        .patch(
            &format!("/admin/keys/{}", traffic["id"].as_str().unwrap()),
            &[(
                "authorization",
                &format!("Bearer {}", app.first.admin_token),
            )],
            r#"{"rate_limit": {"limit": 10, "per": "second", "burst": 20},
                "monthly_quota": 100000,
                "credits": {"remaining": 1000, "refill": {"amount": 100, "interval": "day"}}}"#,
        )
        .await;
    assert_eq!(limits.status, 200, "{}", limits.body);

    let browser = Chromium::launch(&chromium);
    let outcome = timeout(BROWSER_BUDGET, operate(&browser, &app, &traffic)).await;
    let stderr = browser.stderr();
    drop(browser);
    outcome.unwrap_or_else(|_| {
        panic!("the browser session took more than {BROWSER_BUDGET:?}; Chromium said:\n{stderr}")
    });
}

/// Sets the value of the input `id` as typing would, firing `input`.
fn type_into(id: &str, value: &str) -> String {
    format!(
        "(() => {{ const e = document.getElementById({id}); e.value = {value}; \
         e.dispatchEvent(new Event('input', {{bubbles: true}})); return true; }})()",
        id = json!(id),
        value = json!(value),
    )
}

fn click(id: &str) -> String {
    format!(
        "(() => {{ document.getElementById({}).click(); return true; }})()",
        json!(id)
    )
}

fn visible(id: &str) -> String {
    format!("!document.getElementById({}).hidden", json!(id))
}

/// The rows of the table `id`, as arrays of cell texts.
fn rows(id: &str) -> String {
    format!(
        "Array.from(document.getElementById({}).tBodies[0].rows).map(r => \
         Array.from(r.cells).map(c => c.textContent))",
        json!(id)
    )
}

/// Waits until `expression` is `true`.
async fn until<S: Socket>(cdp: &mut Cdp<S>, what: &str, expression: &str) {
    wait_for(cdp, what, |v| (*v == true).then_some(()), expression).await;
}

async fn operate(browser: &Chromium, app: &TestApp, traffic: &Value) {
    let mut cdp = browser::open(browser, &app.url("/admin/ui")).await;
    until(
        &mut cdp,
        "the page starts",
        "document.body !== null && document.body.dataset.ready === 'true'",
    )
    .await;
    assert_eq!(cdp.evaluate("document.title").await, "secure-api admin");
    assert_eq!(cdp.evaluate(&visible("sign-in")).await, true);

    // A wrong token is refused on the page; its 401 is the one error response expected.
    cdp.evaluate(&type_into("token", "sadm_not_a_real_token"))
        .await;
    cdp.evaluate(&click("sign-in-button")).await;
    until(
        &mut cdp,
        "the wrong token is refused",
        "document.getElementById('sign-in-error').textContent.includes('not valid')",
    )
    .await;
    assert_eq!(cdp.evaluate("sessionStorage.length").await, 0);
    cdp.events.clear();

    // Signed in: the token is in sessionStorage only, never in the URL or a cookie.
    let admin = app.first.admin_token.clone();
    cdp.evaluate(&type_into("token", &admin)).await;
    cdp.evaluate(&click("sign-in-button")).await;
    until(
        &mut cdp,
        "the keys are listed",
        &format!("{}.length === 2", rows("keys")),
    )
    .await;
    assert_eq!(
        cdp.evaluate("sessionStorage.getItem('secure-api.admin-token')")
            .await,
        admin.as_str()
    );
    assert_eq!(cdp.evaluate("document.cookie").await, "");
    assert!(
        !cdp.evaluate("location.href")
            .await
            .as_str()
            .unwrap()
            .contains(&admin)
    );
    assert_eq!(
        cdp.evaluate("document.getElementById('token').value").await,
        ""
    );
    let keys = cdp.evaluate(&rows("keys")).await;
    let shop = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row[0] == traffic["id"])
        .unwrap_or_else(|| panic!("{keys}"));
    assert_eq!(
        shop.as_array().unwrap()[1..],
        json!([
            "shop",
            "Checkout",
            "active",
            "time:read",
            "3",
            "10/second, burst 20",
            "100,000",
            "1,000 (refill 100/day)"
        ])
        .as_array()
        .unwrap()[..]
    );

    // The key's usage chart: 30 days, today 3 accepted and 2 refused, yesterday 1.
    let traffic_id = traffic["id"].as_str().unwrap();
    cdp.evaluate(&format!(
        "document.querySelector('#keys tr[data-id={}]').click()",
        json!(traffic_id)
    ))
    .await;
    until(
        &mut cdp,
        "the chart is drawn",
        "document.querySelectorAll('#chart g.day').length === 30",
    )
    .await;
    let today = cdp
        .evaluate(
            "(() => { const days = document.querySelectorAll('#chart g.day'); \
             const d = days[days.length - 1]; return [d.dataset.date, d.querySelector('title').textContent, \
             Number(d.querySelector('rect.accepted').getAttribute('height')), \
             Number(d.querySelector('rect.refused').getAttribute('height'))]; })()",
        )
        .await;
    assert_eq!(today[0], "2026-03-01");
    assert_eq!(
        today[1],
        "2026-03-01: 3 accepted, 1 over quota, 0 rate limited, 0 out of credits, 1 out of scope"
    );
    let (accepted, refused) = (today[2].as_f64().unwrap(), today[3].as_f64().unwrap());
    assert!(
        accepted > 0.0 && refused > 0.0 && (accepted / refused - 1.5).abs() < 0.01,
        "{today}"
    );
    let yesterday = cdp
        .evaluate(
            "document.querySelectorAll('#chart g.day')[28].querySelector('title').textContent",
        )
        .await;
    assert_eq!(
        yesterday,
        "2026-02-28: 1 accepted, 0 over quota, 0 rate limited, 0 out of credits, 0 out of scope"
    );
    // What is left of each limit, from the usage answer: 3 of the day's 3 calls spent, the
    // month's calls (March began today), the credits and the rate untouched.
    until(
        &mut cdp,
        "the key's limits are shown",
        "document.getElementById('detail-facts').textContent.includes('left today')",
    )
    .await;
    let facts = cdp
        .evaluate("document.getElementById('detail-facts').textContent")
        .await;
    assert!(
        facts.as_str().is_some_and(|f| f.ends_with(
            "0 of 3 left today · 99,997 of 100,000 left this month · 1,000 credits left · \
             20 of a burst of 20 free"
        )),
        "{facts}"
    );
    if let Ok(dir) = std::env::var("ADMIN_PAGE_SCREENSHOTS") {
        browser::screenshot(&mut cdp, &Path::new(&dir).join("admin-keys.png")).await;
    }

    // Create a key: shown once, and it works.
    cdp.evaluate("document.getElementById('create-panel').open = true")
        .await;
    cdp.evaluate(&type_into("create-service", "reports")).await;
    cdp.evaluate(&type_into("create-quota", "50")).await;
    cdp.evaluate(&click("create-scope-time-read")).await;
    for (id, value) in [
        ("create-rate-limit", "10"),
        ("create-rate-per", "second"),
        ("create-rate-burst", "20"),
        ("create-monthly-quota", "100000"),
        ("create-credits", "500"),
        ("create-refill-amount", "100"),
        ("create-refill-interval", "month"),
    ] {
        cdp.evaluate(&type_into(id, value)).await;
    }
    cdp.evaluate(&click("create-button")).await;
    until(&mut cdp, "the new key is shown", &visible("secret")).await;
    let created = cdp
        .evaluate("document.getElementById('secret-value').textContent")
        .await;
    let created = created.as_str().unwrap().to_owned();
    assert!(created.starts_with("sapi_"), "{created}");
    let works = app
        .post("/get-current-time", &[("authorization", &created)], "")
        .await;
    assert_eq!(works.status, 200);
    cdp.evaluate(&click("secret-dismiss")).await;
    assert_eq!(
        cdp.evaluate("document.getElementById('secret-value').textContent")
            .await,
        ""
    );
    until(
        &mut cdp,
        "three keys are listed",
        &format!("{}.length === 3", rows("keys")),
    )
    .await;
    let new_id = cdp
        .evaluate("document.querySelector('#keys tr.selected').dataset.id")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    let admin_header = format!("Bearer {admin}");
    let ah = [("authorization", admin_header.as_str())];
    let stored = app.get(&format!("/admin/keys/{new_id}"), &ah).await.body;
    assert_eq!(
        stored["rate_limit"],
        json!({"limit": 10, "per": "second", "burst": 20})
    );
    assert_eq!(stored["monthly_quota"], 100_000);
    assert_eq!(stored["credits"]["granted"], 500);
    assert_eq!(
        stored["credits"]["refill"],
        json!({"amount": 100, "interval": "month"})
    );
    let listed = cdp.evaluate(&rows("keys")).await;
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[0] == json!(new_id))
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(
        row.as_array().unwrap()[6..],
        json!(["10/second, burst 20", "100,000", "500 (refill 100/month)"])
            .as_array()
            .unwrap()[..]
    );
    // The edit form shows them; a new credits balance is sent only when one is typed.
    assert_eq!(
        cdp.evaluate(
            "['edit-rate-limit', 'edit-rate-per', 'edit-rate-burst', 'edit-monthly-quota', \
             'edit-credits', 'edit-refill-amount', 'edit-refill-interval'] \
             .map(id => document.getElementById(id).value)"
        )
        .await,
        json!(["10", "second", "20", "100000", "", "100", "month"])
    );

    // Edit its scopes, quota and limits: the server applies it.
    cdp.evaluate(&click("edit-scope-whoami-read")).await;
    cdp.evaluate(&type_into("edit-quota", "7")).await;
    for (id, value) in [
        ("edit-rate-limit", "600"),
        ("edit-rate-per", "minute"),
        ("edit-rate-burst", ""),
        ("edit-monthly-quota", ""),
        ("edit-credits", "40"),
        ("edit-refill-amount", ""),
    ] {
        cdp.evaluate(&type_into(id, value)).await;
    }
    cdp.evaluate(&click("edit-save")).await;
    until(
        &mut cdp,
        "the change is listed",
        &format!(
            "{}.some(r => r[0] === {} && r[4] === 'time:read whoami:read' && r[5] === '7')",
            rows("keys"),
            json!(new_id)
        ),
    )
    .await;
    let whoami = app.get("/whoami", &[("authorization", &created)]).await;
    assert_eq!(whoami.status, 200, "the new scope works: {}", whoami.body);
    let edited = app.get(&format!("/admin/keys/{new_id}"), &ah).await.body;
    assert_eq!(
        edited["rate_limit"],
        json!({"limit": 600, "per": "minute", "burst": 600})
    );
    assert!(edited.get("monthly_quota").is_none(), "{edited}");
    assert_eq!(edited["credits"]["granted"], 40);
    assert!(edited["credits"].get("refill").is_none(), "{edited}");

    // A save that changes only the rate limit sends only it: the audit log names it alone, and
    // the key's quota and scopes are not written again.
    cdp.evaluate(&type_into("edit-rate-limit", "601")).await;
    cdp.evaluate(&click("edit-save")).await;
    let started = std::time::Instant::now();
    while app.get(&format!("/admin/keys/{new_id}"), &ah).await.body["rate_limit"]["limit"] != 601 {
        assert!(started.elapsed() < Duration::from_secs(10), "not saved");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let audit = app.get("/admin/audit?limit=1", &ah).await.body;
    assert_eq!(audit["entries"][0]["action"], "key.update", "{audit}");
    assert_eq!(
        audit["entries"][0]["detail"],
        json!({"changed": ["rate_limit"]}),
        "{audit}"
    );
    let edited = app.get(&format!("/admin/keys/{new_id}"), &ah).await.body;
    assert_eq!(edited["daily_quota"], 7);

    // Rotate: the replacement is shown once; then revoke it.
    cdp.evaluate(&click("rotate")).await;
    until(
        &mut cdp,
        "the replacement is shown",
        "document.getElementById('secret-value').textContent.startsWith('sapi_')",
    )
    .await;
    let replacement = cdp
        .evaluate("document.getElementById('secret-value').textContent")
        .await;
    let replacement = replacement.as_str().unwrap().to_owned();
    assert_ne!(replacement, created);
    let successor = cdp
        .evaluate("document.querySelector('#keys tr.selected').dataset.id")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(successor, new_id);
    let inherited = app.get(&format!("/admin/keys/{successor}"), &ah).await.body;
    for field in ["rate_limit", "credits"] {
        assert_eq!(
            inherited[field], edited[field],
            "a rotation keeps the {field}"
        );
    }
    cdp.evaluate(&click("revoke")).await;
    until(
        &mut cdp,
        "the revocation is listed",
        &format!(
            "{}.some(r => r[0] === {} && r[3] === 'revoked')",
            rows("keys"),
            json!(successor)
        ),
    )
    .await;
    assert_eq!(
        cdp.evaluate("document.getElementById('rotate').disabled")
            .await,
        true
    );
    let refused = app
        .post("/get-current-time", &[("authorization", &replacement)], "")
        .await;
    assert_eq!(refused.status, 401);

    // The audit log shows what the page did, newest first, by this admin token.
    cdp.evaluate(&click("tab-audit")).await;
    until(
        &mut cdp,
        "the audit log is listed",
        &format!("{}.length >= 5", rows("audit")),
    )
    .await;
    let audit = cdp.evaluate(&rows("audit")).await;
    let actions: Vec<_> = audit
        .as_array()
        .unwrap()
        .iter()
        .take(5)
        .map(|r| r[2].clone())
        .collect();
    assert_eq!(
        actions,
        [
            "key.revoke",
            "key.rotate",
            "key.update",
            "key.update",
            "key.create"
        ],
        "{audit}"
    );
    let token_id = app
        .get(
            "/admin/tokens",
            &[("authorization", &format!("Bearer {admin}"))],
        )
        .await
        .body[0]["id"]
        .clone();
    assert!(
        audit[0][1] == token_id && audit[0][3] == json!(successor) && audit[0][4] == "ok",
        "{audit}"
    );
    if let Ok(dir) = std::env::var("ADMIN_PAGE_SCREENSHOTS") {
        browser::screenshot(&mut cdp, &Path::new(&dir).join("admin-audit.png")).await;
    }
    // Signing out forgets the token, and no key or token is left on the page.
    cdp.evaluate(&click("sign-out")).await;
    until(&mut cdp, "the sign-in form is back", &visible("sign-in")).await;
    assert_eq!(cdp.evaluate("sessionStorage.length").await, 0);
    let text = cdp.evaluate("document.documentElement.outerHTML").await;
    for secret in [&created, &replacement, &admin] {
        assert!(
            !text.as_str().unwrap().contains(secret.as_str()),
            "a secret is still on the page"
        );
    }

    let problems = browser::problems(&mut cdp).await;
    assert!(
        problems.is_empty(),
        "the page had problems:\n{}",
        problems.join("\n")
    );
}
