//! `GET /whoami`: who the server thinks the caller is.

use actix_web::web;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::principal::{ApiCaller, AuthMethod};
use crate::auth::scope::Scopes;
use crate::error::{ApiError, Problem};

/// The authenticated principal.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    /// The key's non-secret id.
    pub key_id: String,
    /// The service that owns the key.
    pub service: String,
    /// How the request authenticated.
    pub auth_method: AuthMethod,
    /// The key's daily quota.
    pub daily_quota: u64,
    /// What the key may call.
    pub scopes: Scopes,
}

/// The authenticated key, its service, its scopes and how it authenticated. Costs no quota.
#[utoipa::path(
    get, path = "/whoami", tag = "api",
    responses(
        (status = 200, description = "The caller", body = WhoAmI),
        (status = 401, description = "Missing, unknown, revoked or expired API key, or a bad signature", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["whoami:read"]), ("api_key_header" = ["whoami:read"]), ("signed" = ["whoami:read"]), ("signed_rfc9421" = ["whoami:read"]))
)]
pub async fn whoami(caller: ApiCaller) -> Result<web::Json<WhoAmI>, ApiError> {
    let p = caller.0;
    Ok(web::Json(WhoAmI {
        key_id: p.key_id.to_string(),
        service: p.service.to_string(),
        auth_method: p.method,
        daily_quota: p.daily_quota,
        scopes: p.scopes,
    }))
}
