//! The service on actix-web: every piece is actix-web middleware from the crates.
//!
//! The same three routes as `axum_service`: `GET /hello` (API key and daily quota), `POST
//! /login` (5 a minute per client address) and `POST /orders` (signed, with a daily quota).

use actix_web::dev::{Server, ServiceRequest};
use actix_web::{App, HttpMessage as _, HttpServer, web};
use apikey_gen::{ApiKeyAuth, Authenticator};
use quota::{Backend, FromExtension, PeerIp, RateLimit};
use request_signing::{ReplayCache, Verified, Verifier, VerifySignature};
use std::net::TcpListener;

use crate::{Demo, Identity, MemoryKeys};

/// The server on `listener`: `daily` counts the API keys' daily quotas, `signed_daily` the signing keys', `login` the login limit,
/// `replay` the signed requests' nonces.
///
/// # Errors
/// When a layer's configuration is invalid or the listener cannot be used.
pub fn server<B, R>(
    listener: TcpListener,
    demo: Demo,
    daily: B,
    signed_daily: B,
    login: B,
    replay: R,
) -> Result<Server, Box<dyn std::error::Error>>
where
    B: Backend + 'static,
    R: ReplayCache + 'static,
{
    let auth =
        ApiKeyAuth::new(Authenticator::<MemoryKeys>::builder(demo.config, demo.keys).build()?);
    let key_quota =
        RateLimit::builder(daily, FromExtension::new(|id: &Identity| id.key_id.clone()))
            .name("daily")
            .limit(|req: &ServiceRequest| {
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
    let server = HttpServer::new(move || {
        App::new()
            // The last `wrap` runs first: authentication, then the quota.
            .service(
                web::resource("/hello")
                    .wrap(key_quota.clone())
                    .wrap(auth.clone())
                    .get(hello),
            )
            .service(
                web::resource("/login")
                    .wrap(login_limit.clone())
                    .post(|| async { "welcome" }),
            )
            .service(
                web::resource("/orders")
                    .wrap(signed_quota.clone())
                    .wrap(verify.clone())
                    .post(orders),
            )
    })
    .listen(listener)?
    .run();
    Ok(server)
}

async fn hello(id: web::ReqData<Identity>) -> String {
    format!("hello, {}", id.key_id)
}

async fn orders(signed: web::ReqData<Verified>, body: web::Bytes) -> String {
    format!(
        "order from {}: {}",
        signed.key_id(),
        String::from_utf8_lossy(&body)
    )
}
