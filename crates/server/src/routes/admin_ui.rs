//! `/admin/ui`: the admin page. An operator signs in with an admin token and sees the keys
//! (status, scopes, quota, rate limit, monthly quota, credits), a key's calls per day, and the
//! audit log; creates keys (shown once), edits their scopes, quota and limits, rotates and
//! revokes them. Everything goes through the
//! admin API: the page holds no privilege of its own and works only with a valid admin token.
//!
//! The page, its script and its stylesheet (`assets/admin/`) are compiled into the binary, so
//! it works offline. The token stays in the tab's `sessionStorage` and travels only in the
//! `Authorization` header, never in a URL or a cookie.

use actix_web::HttpResponse;

use super::docs::{JAVASCRIPT, STYLESHEET, asset, page};

/// The page's Content-Security-Policy: its own script and stylesheet and requests to this
/// server only; no inline or evaluated script, no inline style, no images, fonts, frames or
/// form submissions. `tests/admin_page.rs` fails on any violation.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const PAGE: &str = include_str!("../../assets/admin/admin.html");
const SCRIPT: &str = include_str!("../../assets/admin/admin.js");
const CSS: &str = include_str!("../../assets/admin/admin.css");

/// The admin page.
#[utoipa::path(get, path = "/admin/ui", tag = "admin",
    responses((status = 200, description = "The admin page; sign in on it with an admin token",
        content_type = "text/html", body = String)))]
pub async fn admin_page() -> HttpResponse {
    page(PAGE_CSP, PAGE)
}

/// The admin page's script.
#[utoipa::path(get, path = "/admin/ui/admin.js", tag = "admin",
    responses((status = 200, description = "The admin page's script",
        content_type = "text/javascript", body = String)))]
pub async fn admin_js() -> HttpResponse {
    asset(JAVASCRIPT, SCRIPT)
}

/// The admin page's stylesheet.
#[utoipa::path(get, path = "/admin/ui/admin.css", tag = "admin",
    responses((status = 200, description = "The admin page's stylesheet",
        content_type = "text/css", body = String)))]
pub async fn admin_css() -> HttpResponse {
    asset(STYLESHEET, CSS)
}
