//! `/docs`: the interactive API reference, Swagger UI rendering `/openapi.json`.
//!
//! The page, its start-up script and the vendored Swagger UI (`assets/swagger-ui/`, see the
//! README there) are compiled into the binary, so the page works on a server without internet.

use actix_web::HttpResponse;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, ContentType};

/// The page's Content-Security-Policy, the least under which Swagger UI works: scripts, styles
/// and requests (the document, "Try it out") only from this server, no inline or evaluated
/// script, images only as `data:` URLs (Swagger UI's icons, inlined in its stylesheet). Inline
/// styles need no `'unsafe-inline'`: Swagger UI sets them through the DOM, which CSP allows.
/// It replaces the server-wide `default-src 'none'`, which would block everything the page loads;
/// the browser test in `tests/docs_page.rs` fails on any violation.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'none'";

/// How long a browser may keep the assets. They change only with the binary, so a day is safe.
const ASSET_CACHE: &str = "public, max-age=86400";

const PAGE: &str = include_str!("../../assets/docs.html");
const INIT_JS: &str = include_str!("../../assets/docs-init.js");
const BUNDLE_JS: &str = include_str!("../../assets/swagger-ui/swagger-ui-bundle.js");
const CSS: &str = include_str!("../../assets/swagger-ui/swagger-ui.css");

/// The content type of a script.
pub(super) const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
/// The content type of a stylesheet.
pub(super) const STYLESHEET: &str = "text/css; charset=utf-8";

/// The interactive API reference.
#[utoipa::path(get, path = "/docs", tag = "operations",
    responses((status = 200, description = "The API reference page (Swagger UI)",
        content_type = "text/html", body = String)))]
pub async fn docs_page() -> HttpResponse {
    page(PAGE_CSP, PAGE)
}

/// An HTML page compiled into the binary, under its own Content-Security-Policy `csp`.
pub(super) fn page(csp: &'static str, html: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header((CONTENT_SECURITY_POLICY, csp))
        .body(html)
}

/// The script that starts Swagger UI on the reference page.
#[utoipa::path(get, path = "/docs/docs-init.js", tag = "operations",
    responses((status = 200, description = "The reference page's start-up script",
        content_type = "text/javascript", body = String)))]
pub async fn docs_init_js() -> HttpResponse {
    asset(JAVASCRIPT, INIT_JS)
}

/// Swagger UI's script, vendored.
#[utoipa::path(get, path = "/docs/swagger-ui-bundle.js", tag = "operations",
    responses((status = 200, description = "Swagger UI's script",
        content_type = "text/javascript", body = String)))]
pub async fn swagger_ui_bundle_js() -> HttpResponse {
    asset(JAVASCRIPT, BUNDLE_JS)
}

/// Swagger UI's stylesheet, vendored.
#[utoipa::path(get, path = "/docs/swagger-ui.css", tag = "operations",
    responses((status = 200, description = "Swagger UI's stylesheet",
        content_type = "text/css", body = String)))]
pub async fn swagger_ui_css() -> HttpResponse {
    asset(STYLESHEET, CSS)
}

/// A static asset compiled into the binary, cacheable for a day.
pub(super) fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((CACHE_CONTROL, ASSET_CACHE))
        .body(body)
}
