//! `/docs`, the interactive API reference: what the server sends, checked over plain HTTP, and
//! what a browser makes of it, checked in headless Chromium driven over the DevTools protocol.
//!
//! The browser test needs `chromium` on `PATH` (`apt-get install chromium`; `.ci/run` installs
//! it). Without it the test says so and skips, and fails under `REQUIRE_SERVICES=1`. Set
//! `DOCS_PAGE_SCREENSHOT=/tmp/docs.png` to keep a screenshot of the rendered page.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use actix_web::rt::time::timeout;
use actix_web::web::Bytes;
use common::browser::{self, Chromium, wait_for};
use common::{TestApp, spawn};
use secure_api::routes::docs::PAGE_CSP;
use serde_json::{Value, json};

/// The whole browser session, start to finish, must take less than this.
const BROWSER_BUDGET: Duration = Duration::from_secs(120);

const ASSETS: [(&str, &str, &str); 3] = [
    (
        "/docs/docs-init.js",
        "text/javascript; charset=utf-8",
        "assets/docs-init.js",
    ),
    (
        "/docs/swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        "assets/swagger-ui/swagger-ui-bundle.js",
    ),
    (
        "/docs/swagger-ui.css",
        "text/css; charset=utf-8",
        "assets/swagger-ui/swagger-ui.css",
    ),
];

/// A response with a body of any type.
struct Raw {
    status: u16,
    headers: actix_web::http::header::HeaderMap,
    body: Bytes,
}

impl Raw {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .expect("an ASCII header")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

async fn fetch(app: &TestApp, method: &str, path: &str) -> Raw {
    let mut res = app
        .client
        .request(method.parse().expect("a method"), app.url(path))
        .send()
        .await
        .expect("the request is answered");
    let body = res.body().limit(8 << 20).await.expect("a body");
    Raw {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body,
    }
}

/// Every `(METHOD, path)` the OpenAPI document describes.
fn operations(openapi: &Value) -> BTreeSet<(String, String)> {
    let paths = openapi["paths"].as_object().expect("paths in the document");
    let mut operations = BTreeSet::new();
    for (path, item) in paths {
        for method in [
            "get", "put", "post", "delete", "options", "head", "patch", "trace",
        ] {
            if item.get(method).is_some() {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    operations
}

#[actix_web::test]
async fn the_page_and_its_assets_are_served_with_their_types_and_policies() {
    let app = spawn().await;

    let page = fetch(&app, "GET", "/docs").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    // The page's own policy replaces the server-wide `default-src 'none'`, and allows no
    // inline or evaluated script.
    let csp = page.header("content-security-policy");
    assert_eq!(csp, PAGE_CSP);
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    assert!(directives.contains(&"default-src 'none'"), "{csp}");
    assert!(directives.contains(&"script-src 'self'"), "{csp}");
    assert!(directives.contains(&"frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-eval"), "{csp}");
    // The other server-wide headers are still there.
    assert_eq!(page.header("x-frame-options"), "DENY");
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    assert_eq!(page.header("cache-control"), "no-store");

    // The page has no inline script, and every file it loads is served.
    let html = std::str::from_utf8(&page.body).expect("UTF-8 HTML");
    assert_eq!(
        html.matches("<script").count(),
        html.matches("<script src=\"").count(),
        "{html}"
    );
    for (path, _, _) in ASSETS {
        let relative = format!("\"{}\"", path.trim_start_matches('/'));
        assert!(html.contains(&relative), "the page loads {path}");
    }

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (path, content_type, file) in ASSETS {
        let asset = fetch(&app, "GET", path).await;
        assert_eq!(asset.status, 200, "{path}");
        assert_eq!(asset.header("content-type"), content_type, "{path}");
        assert_eq!(asset.header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(
            asset.header("cache-control"),
            "public, max-age=86400",
            "{path}"
        );
        let on_disk = std::fs::read(root.join(file)).expect("the asset file");
        assert!(asset.body == on_disk, "{path} is served as committed");
        // No source map is vendored, so none may be referred to.
        let text = std::str::from_utf8(&asset.body).expect("UTF-8 asset");
        assert!(!text.contains("sourceMappingURL="), "{path}");
    }

    // Unknown paths under /docs/ get the same problem as any unknown path.
    let unknown = fetch(&app, "GET", "/no-such-endpoint").await;
    assert_eq!(unknown.status, 404);
    for path in [
        "/docs/",
        "/docs/index.html",
        "/docs/swagger-ui.css.map",
        "/docs/swagger-ui-bundle.js.map",
        "/docs/favicon-32x32.png",
        "/docs/../Cargo.toml",
    ] {
        let reply = fetch(&app, "GET", path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(
            reply.header("content-type"),
            "application/problem+json",
            "{path}"
        );
        assert_eq!(reply.body, unknown.body, "{path}");
    }

    // Other methods get 405, as on every resource (`HEAD` is `GET` without the body, see
    // api.rs).
    for (method, path) in [
        ("POST", "/docs"),
        ("DELETE", "/docs"),
        ("PUT", "/docs"),
        ("PUT", "/docs/docs-init.js"),
        ("POST", "/docs/swagger-ui-bundle.js"),
        ("PATCH", "/docs/swagger-ui.css"),
    ] {
        let reply = fetch(&app, method, path).await;
        assert_eq!(reply.status, 405, "{method} {path}");
        assert_eq!(
            reply.json()["type"],
            "/problems/method-not-allowed",
            "{method} {path}"
        );
    }

    // The page and its assets are in the OpenAPI document, as HTML, script and stylesheet.
    let openapi = fetch(&app, "GET", "/openapi.json").await.json();
    for (path, content_type) in [
        ("/docs", "text/html"),
        ("/docs/docs-init.js", "text/javascript"),
        ("/docs/swagger-ui-bundle.js", "text/javascript"),
        ("/docs/swagger-ui.css", "text/css"),
    ] {
        let get = &openapi["paths"][path]["get"];
        assert_eq!(get["tags"], json!(["operations"]), "{path}");
        assert!(
            get["responses"]["200"]["content"][content_type].is_object(),
            "{path}: {get}"
        );
    }
}

const TEST: &str = "the_page_renders_every_operation_without_errors_in_chromium";

#[actix_web::test]
#[ignore = "needs Chromium (/usr/bin/chromium)"]
async fn the_page_renders_every_operation_without_errors_in_chromium() {
    let Some(chromium) = browser::chromium(TEST) else {
        return;
    };
    let app = spawn().await;
    let expected = operations(&fetch(&app, "GET", "/openapi.json").await.json());
    assert!(expected.contains(&("GET".to_owned(), "/docs".to_owned())));

    let browser = Chromium::launch(&chromium);
    let report = timeout(BROWSER_BUDGET, load_the_page(&browser, &app, &expected))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the browser session took more than {BROWSER_BUDGET:?}; Chromium said:\n{}",
                browser.stderr()
            )
        });
    drop(browser);

    assert_eq!(report.status, Some(200), "the page's HTTP status");
    assert_eq!(report.title, "secure-api API reference");
    assert!(report.try_it_out, "try-it-out is on");
    assert_eq!(report.rendered, expected, "the rendered operations");
    assert_eq!(report.healthz_status, "200", "Try it out on GET /healthz");
    assert!(
        report.problems.is_empty(),
        "the page had problems:\n{}",
        report.problems.join("\n")
    );
}

/// What the browser saw.
#[derive(Debug)]
struct Report {
    status: Option<u64>,
    title: String,
    try_it_out: bool,
    rendered: BTreeSet<(String, String)>,
    /// The status Swagger UI shows after executing `GET /healthz` from the page.
    healthz_status: String,
    /// Console errors, exceptions, failed or refused requests and CSP violations.
    problems: Vec<String>,
}

/// The `[METHOD, path]` of every operation Swagger UI rendered.
const RENDERED: &str = "Array.from(document.querySelectorAll('.opblock')).map(o => [\
      (o.querySelector('.opblock-summary-method') || {}).textContent, \
      (o.querySelector('.opblock-summary-path') || {dataset: {}}).dataset.path])";

/// Opens `GET /healthz` (once), then presses Execute: try-it-out is on, so there is no other
/// button to press first.
const EXECUTE_HEALTHZ: &str = "(() => { \
      const op = Array.from(document.querySelectorAll('.opblock.opblock-get')).find(o => \
        o.querySelector('.opblock-summary-path').dataset.path === '/healthz'); \
      if (!op) return 'no operation'; \
      if (!window.__opened) { window.__opened = true; \
        op.querySelector('button.opblock-summary-control').click(); return 'opening'; } \
      const execute = op.querySelector('button.execute'); \
      if (!execute) return 'no execute button'; \
      execute.click(); return 'executed'; })()";

/// The status of the live response shown under `GET /healthz`, or `""` while there is none.
const HEALTHZ_STATUS: &str = "(() => { \
      const op = Array.from(document.querySelectorAll('.opblock.opblock-get')).find(o => \
        o.querySelector('.opblock-summary-path').dataset.path === '/healthz'); \
      const cell = op && op.querySelector('.live-responses-table .response .response-col_status'); \
      return cell ? cell.textContent.trim() : ''; })()";

async fn load_the_page(
    browser: &Chromium,
    app: &TestApp,
    expected: &BTreeSet<(String, String)>,
) -> Report {
    let url = app.url("/docs");
    let mut cdp = browser::open(browser, &url).await;

    let rendered = wait_for(
        &mut cdp,
        "Swagger UI renders the operations",
        |value| {
            let rendered: BTreeSet<(String, String)> =
                serde_json::from_value(value.clone()).ok()?;
            // Then the test compares the two sets: nothing may be rendered that is not documented.
            rendered.is_superset(expected).then_some(rendered)
        },
        RENDERED,
    )
    .await;

    // Try it out, for real: the request goes from the page to the server under the page's CSP.
    wait_for(
        &mut cdp,
        "GET /healthz is executed from the page",
        |value| (*value == "executed").then_some(()),
        EXECUTE_HEALTHZ,
    )
    .await;
    let healthz_status = wait_for(
        &mut cdp,
        "the /healthz response is shown",
        |value| value.as_str().filter(|s| !s.is_empty()).map(str::to_owned),
        HEALTHZ_STATUS,
    )
    .await;

    let title = cdp.evaluate("document.title").await;
    let try_it_out = cdp
        .evaluate("window.ui.getConfigs().tryItOutEnabled === true")
        .await;
    if let Ok(path) = std::env::var("DOCS_PAGE_SCREENSHOT") {
        browser::screenshot(&mut cdp, Path::new(&path)).await;
    }
    let problems = browser::problems(&mut cdp).await;
    let status = cdp
        .events
        .iter()
        .filter(|e| e["method"] == "Network.responseReceived")
        .map(|e| &e["params"])
        .find(|p| p["type"] == "Document" && p["response"]["url"] == url.as_str())
        .and_then(|p| p["response"]["status"].as_u64());
    Report {
        status,
        title: title.as_str().unwrap_or_default().to_owned(),
        try_it_out: try_it_out == true,
        rendered,
        healthz_status,
        problems,
    }
}
