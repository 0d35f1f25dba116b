//! The service on axum: every piece is a tower layer from the crates.
//!
//! - `GET /hello`: an API key (`Authorization`, `Bearer` or `X-API-Key`), and the key's own
//!   daily quota.
//! - `POST /login`: 5 a minute per client address (IPv6 by /64).
//! - `POST /orders`: a signed request (`request-signing` v1); its key id has a daily quota too.

use apikey_gen::{ApiKeyAuth, Authenticator};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Extension;
use axum::http::Request;
use axum::routing::{get, post};
use quota::{Backend, FromExtension, PeerIp, RateLimit};
use request_signing::{ReplayCache, Verified, Verifier, VerifySignature};

use crate::{Demo, Identity, MemoryKeys};

/// The application: `daily` counts the API keys' daily quotas, `signed_daily` the signing keys', `login` the login limit, `replay` the
/// signed requests' nonces.
///
/// # Errors
/// When a layer's configuration is invalid.
pub fn router<B, R>(
    demo: Demo,
    daily: B,
    signed_daily: B,
    login: B,
    replay: R,
) -> Result<Router, Box<dyn std::error::Error>>
where
    B: Backend + 'static,
    R: ReplayCache + 'static,
{
    let auth =
        ApiKeyAuth::new(Authenticator::<MemoryKeys>::builder(demo.config, demo.keys).build()?);
    let key_quota =
        RateLimit::builder(daily, FromExtension::new(|id: &Identity| id.key_id.clone()))
            .name("daily")
            .limit(|req: &Request<Body>| {
                req.extensions().get::<Identity>().map(|id| id.daily_quota)
            })
            .build()?;
    let signed_quota = RateLimit::builder(
        signed_daily,
        FromExtension::new(|v: &Verified| v.key_id().to_owned()),
    )
    .name("daily")
    .build()?;
    let login_limit = RateLimit::builder(login, PeerIp::new())
        .name("login")
        .build()?;
    let verify = VerifySignature::builder(Verifier::new(demo.secrets, replay))
        .max_body_bytes(16 * 1024)
        .build()?;
    let hello = Router::new()
        .route("/hello", get(hello))
        .layer(key_quota)
        .layer(auth);
    let login = Router::new()
        .route("/login", post(|| async { "welcome" }))
        .layer(login_limit);
    let orders = Router::new()
        .route("/orders", post(orders))
        .layer(signed_quota)
        .layer(verify);
    Ok(hello.merge(login).merge(orders))
}

async fn hello(Extension(id): Extension<Identity>) -> String {
    format!("hello, {}", id.key_id)
}

async fn orders(Extension(signed): Extension<Verified>, body: Bytes) -> String {
    format!(
        "order from {}: {}",
        signed.key_id(),
        String::from_utf8_lossy(&body)
    )
}
