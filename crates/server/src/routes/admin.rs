//! `/admin/keys...` and `/admin/tokens...`: key and admin token management with an admin
//! token (`Authorization: Bearer <token>`).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::audit::{AuditLog, AuditPage, PAGE_DEFAULT};
use crate::auth::admin::{Admin, AdminTokenInfo, AdminTokens, CreatedAdminToken, NewAdminToken};
use crate::auth::chain::ApiAuth;
use crate::auth::principal::CallLimits;
use crate::auth::scope::Scopes;
use crate::clock::Clock;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, OptionalJson, Query};
use crate::key_limits::{CreditsSpec, RateLimitSpec, given_positive, optional_positive};
use crate::keys::{CreatedKey, KeyInfo, KeyManager, KeyUpdate, NewKey};
use crate::limits::{KeyQuota, LimitsUsage};
use crate::usage::{DayRange, DayUsage, UsageHistory};

/// A key to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// The owning service: 1 to 64 ASCII letters, digits, `_`, `.` or `-`.
    #[schema(pattern = r"^[A-Za-z0-9_.\-]{1,64}$", example = "billing")]
    pub service: String,
    /// Calls per UTC day (default: the server's default).
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub daily_quota: Option<u64>,
    /// What the key may call (default: the server's default scopes, `*` unless configured
    /// otherwise).
    pub scopes: Option<Scopes>,
    /// Also create a signing secret; requests must then be signed.
    #[serde(default)]
    pub signing: bool,
    /// Days until expiry.
    #[schema(minimum = 1, maximum = 36_500)]
    pub expires_in_days: Option<u32>,
    /// A display name: 1 to 128 characters; no control, invisible or direction-changing
    /// characters, and no secret.
    #[schema(min_length = 1, max_length = 128, example = "Checkout, EU")]
    pub name: Option<String>,
    /// Who the key belongs to, as an id in your systems (a customer or user id): 1 to 128
    /// characters; no control, invisible or direction-changing characters, and no secret.
    #[schema(min_length = 1, max_length = 128, example = "cus_42")]
    pub owner: Option<String>,
    /// Anything else: a JSON object of at most 4 KiB as compact JSON.
    #[schema(value_type = Option<Object>)]
    pub meta: Option<Value>,
    /// A rate limit beside the daily quota: `limit` calls per `per`, spread evenly, with up to
    /// `burst` at once (default: `limit`). At most one call per microsecond; a burst of at most
    /// 1,000,000, which a limit over 1,000,000 must give.
    pub rate_limit: Option<RateLimitSpec>,
    /// Calls per UTC calendar month (1 to 2^53 - 1; default: none).
    #[serde(default, deserialize_with = "optional_positive")]
    #[schema(minimum = 1, maximum = 9_007_199_254_740_991_u64, example = 100_000)]
    pub monthly_quota: Option<u64>,
    /// A balance of uses that every call spends (default: unlimited uses), and its refill: the
    /// balance is set to `amount` at the start of each UTC day or month.
    pub credits: Option<CreditsSpec>,
}

/// Changes to a key: each field given is changed, `null` clearing it (the server's default
/// quota, no expiry, no name, owner or meta), and the others are left as they are. Values
/// follow the rules of [`CreateKeyRequest`].
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyRequest {
    /// What the key may call from now on (`null` is refused: a key keeps a list of scopes).
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = Scopes)]
    pub scopes: Option<Option<Scopes>>,
    /// Calls per UTC day; `null` for the server's default.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 1_000_000_000)]
    pub daily_quota: Option<Option<u64>>,
    /// Days from now until the key expires; `null` for never.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 36_500)]
    pub expires_in_days: Option<Option<u32>>,
    /// A display name; `null` for none.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128)]
    pub name: Option<Option<String>>,
    /// The owner's id; `null` for none.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128)]
    pub owner: Option<Option<String>>,
    /// A JSON object of at most 4 KiB; `null` for none.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = Option<Object>)]
    pub meta: Option<Option<Value>>,
    /// The rate limit, replaced whole; `null` for none.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = Option<RateLimitSpec>)]
    pub rate_limit: Option<Option<RateLimitSpec>>,
    /// Calls per UTC calendar month; `null` for none.
    #[serde(default, deserialize_with = "given_positive")]
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 9_007_199_254_740_991_u64)]
    pub monthly_quota: Option<Option<u64>>,
    /// A new balance of credits, granted now (what was left of the old one is forgotten), and
    /// its refill; `null` for no credits (unlimited uses).
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = Option<CreditsSpec>)]
    pub credits: Option<Option<CreditsSpec>>,
}

/// Reads a field that is present, `null` included: absent stays `None` (by `default`), `null`
/// is `Some(None)`.
fn given<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Rotation options.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// Hours the old key keeps working (default 24, at most 720).
    pub grace_hours: Option<u32>,
}

/// The days `GET /admin/keys/{id}/usage` covers: the last `days`, or `from` to `to`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// The last N UTC days, today included (1 to 400; default 30). Not with `from` or `to`.
    #[param(minimum = 1, maximum = 400)]
    pub days: Option<u32>,
    /// The first day, `YYYY-MM-DD` (default: 30 days up to `to`).
    #[param(example = "2026-11-01")]
    pub from: Option<String>,
    /// The last day, `YYYY-MM-DD`, at most 400 days after `from` (default: today).
    #[param(example = "2026-11-30")]
    pub to: Option<String>,
}

/// A key's usage: today's quota, and its calls per day.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageResponse {
    /// The key id.
    pub id: String,
    /// Calls per UTC day.
    pub limit: u64,
    /// Calls spent today.
    pub used: u64,
    /// Calls left today.
    pub remaining: u64,
    /// Seconds until the quota resets (00:00 UTC).
    pub reset_secs: u64,
    /// This key's calls per UTC day over the days asked for, oldest first, days without calls
    /// included: accepted, and refused by reason. Another instance's calls show within 5 s.
    pub history: Vec<DayUsage>,
    /// What it has left of its rate limit, monthly quota and credits, where it has them.
    #[serde(flatten)]
    pub limits: LimitsUsage,
}

/// Paging of `GET /admin/audit`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries per page (default 50, at most 500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next` cursor of the page before: only older entries.
    #[param(pattern = "^aud_[0-9a-f]{24}$")]
    pub before: Option<String>,
}

/// List keys (never the keys themselves).
#[utoipa::path(
    get, path = "/admin/keys", tag = "admin",
    responses(
        (status = 200, description = "Every key", body = Vec<KeyInfo>),
        (status = 401, description = "Missing or invalid admin token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin" = []))
)]
pub async fn list_keys(
    keys: web::Data<KeyManager>,
    _admin: Admin,
) -> Result<web::Json<Vec<KeyInfo>>, ApiError> {
    Ok(web::Json(keys.list().await?))
}

/// One key, active or not (never the key itself).
#[utoipa::path(
    get, path = "/admin/keys/{id}", tag = "admin",
    params(("id" = String, Path, description = "The key id")),
    responses(
        (status = 200, description = "The key", body = KeyInfo),
        (status = 400, description = "The key itself given for its id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin" = []))
)]
pub async fn get_key(
    keys: web::Data<KeyManager>,
    _admin: Admin,
    id: web::Path<String>,
) -> Result<web::Json<KeyInfo>, ApiError> {
    Ok(web::Json(keys.get(&id).await?))
}

/// Create a key; the response is the only time the key is shown.
#[utoipa::path(
    post, path = "/admin/keys", tag = "admin",
    request_body = CreateKeyRequest,
    responses(
        (status = 201, description = "Created", body = CreatedKey),
        (status = 400, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid admin token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin" = []))
)]
pub async fn create_key(
    keys: web::Data<KeyManager>,
    admin: Admin,
    body: Json<CreateKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let new = NewKey {
        service: body.service,
        daily_quota: body.daily_quota,
        scopes: body.scopes,
        signing: body.signing,
        expires_in_days: body.expires_in_days,
        name: body.name,
        owner: body.owner,
        meta: body.meta,
        rate_limit: body.rate_limit,
        monthly_quota: body.monthly_quota,
        credits: body.credits,
    };
    let created = keys.create(&new, &admin.actor).await?;
    tracing::info!(key = %created.id, service = %created.service, "key created");
    Ok(HttpResponse::Created().json(&created))
}

/// Revoke a key now. Every instance refuses it within the key cache TTL.
#[utoipa::path(
    delete, path = "/admin/keys/{id}", tag = "admin",
    params(("id" = String, Path, description = "The key id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "The key itself given for its id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin" = []))
)]
pub async fn revoke_key(
    keys: web::Data<KeyManager>,
    auth: web::Data<ApiAuth>,
    admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    keys.revoke(&id, &admin.actor).await?;
    auth.forget(&id);
    tracing::info!(key = %id, "key revoked");
    Ok(HttpResponse::NoContent().finish())
}

/// Change a key's scopes, quota, expiry, name, owner, meta, rate limit, monthly quota or credits.
/// This instance applies the change at once, every other instance within the key cache TTL. The
/// change is checked whole and written in one statement: a bad field, or an unknown, revoked or
/// expired key, is refused with 400 and nothing is changed.
#[utoipa::path(
    patch, path = "/admin/keys/{id}", tag = "admin",
    params(("id" = String, Path, description = "The key id")),
    request_body = UpdateKeyRequest,
    responses(
        (status = 200, description = "The key as it is now", body = KeyInfo),
        (status = 400, description = "Invalid input, or no active key with this id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid admin token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin" = []))
)]
pub async fn update_key(
    keys: web::Data<KeyManager>,
    auth: web::Data<ApiAuth>,
    admin: Admin,
    id: web::Path<String>,
    body: Json<UpdateKeyRequest>,
) -> Result<web::Json<KeyInfo>, ApiError> {
    let body = body.into_inner();
    let update = KeyUpdate {
        scopes: body
            .scopes
            .map(|scopes| {
                scopes.ok_or_else(|| {
                    ApiError::validation(
                        "scopes",
                        "may not be null: send a list of scopes ([\"*\"] for all of them)",
                    )
                })
            })
            .transpose()?,
        daily_quota: body.daily_quota,
        expires_in_days: body.expires_in_days,
        name: body.name,
        owner: body.owner,
        meta: body.meta,
        rate_limit: body.rate_limit,
        monthly_quota: body.monthly_quota,
        credits: body.credits,
    };
    let info = keys.update(&id, &update, &admin.actor).await?;
    auth.forget(&id);
    tracing::info!(key = %id, changed = ?update.fields(), by = %admin.token_id, "key changed");
    Ok(web::Json(info))
}

/// Replace a key; the old one keeps working for the grace period.
#[utoipa::path(
    post, path = "/admin/keys/{id}/rotate", tag = "admin",
    params(("id" = String, Path, description = "The key id")),
    request_body(content = Option<RotateRequest>, description = "Optional grace period"),
    responses(
        (status = 201, description = "The new key", body = CreatedKey),
        (status = 400, description = "Invalid input, or the key itself given for its id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such active key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Rotated already: rotate its successor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin" = []))
)]
pub async fn rotate_key(
    keys: web::Data<KeyManager>,
    auth: web::Data<ApiAuth>,
    admin: Admin,
    id: web::Path<String>,
    body: OptionalJson<RotateRequest>,
) -> Result<HttpResponse, ApiError> {
    let grace_hours = body.0.and_then(|b| b.grace_hours).unwrap_or(24);
    let created = keys.rotate(&id, grace_hours, &admin.actor).await?;
    auth.forget(&id);
    tracing::info!(old = %id, new = %created.id, grace_hours, "key rotated");
    Ok(HttpResponse::Created().json(&created))
}

/// A key's usage: today's daily quota, which it shares with the keys it was rotated from or
/// into, and its own calls per day (30 days unless `days` or `from`/`to` say otherwise).
#[utoipa::path(
    get, path = "/admin/keys/{id}/usage", tag = "admin",
    params(("id" = String, Path, description = "The key id"), UsageQuery),
    responses(
        (status = 200, description = "Usage", body = UsageResponse),
        (status = 400, description = "Invalid days, from or to, or the key itself given for its id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin" = []))
)]
pub async fn key_usage(
    keys: web::Data<KeyManager>,
    quota: web::Data<KeyQuota>,
    history: web::Data<UsageHistory>,
    clock: web::Data<Clock>,
    _admin: Admin,
    id: web::Path<String>,
    query: Query<UsageQuery>,
) -> Result<web::Json<UsageResponse>, ApiError> {
    let query = query.into_inner();
    let range = DayRange::parse(
        query.days,
        query.from.as_deref(),
        query.to.as_deref(),
        crate::journal::today(&clock),
    )?;
    Ok(web::Json(
        usage_report(&keys, &quota, &history, &id, range).await?,
    ))
}

/// The usage of the key `id`: today's quota (shared along its rotation chain) and its own calls
/// per day over `range`; for `GET /admin/keys/{id}/usage` and `secure-api keys usage`.
///
/// # Errors
/// 404 for no such key; 503 when the quota or the database cannot be read.
pub async fn usage_report(
    keys: &KeyManager,
    quota: &KeyQuota,
    history: &UsageHistory,
    id: &str,
    range: DayRange,
) -> Result<UsageResponse, ApiError> {
    let row = keys.find(id).await?;
    let limit = std::num::NonZeroU64::new(keys.daily_quota(&row));
    let usage = quota.usage(row.quota_subject(), limit).await?;
    let limits = quota
        .limits_usage(row.quota_subject(), &CallLimits::of(&row))
        .await?;
    let history = history.history(&row.id, range).await?;
    Ok(UsageResponse {
        history,
        limits,
        id: row.id,
        limit: usage.limit,
        used: usage.used,
        remaining: usage.remaining,
        reset_secs: usage.reset.as_secs(),
    })
}

/// List admin tokens (never the tokens themselves).
#[utoipa::path(
    get, path = "/admin/tokens", tag = "admin",
    responses(
        (status = 200, description = "Every admin token", body = Vec<AdminTokenInfo>),
        (status = 401, description = "Missing or invalid admin token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin" = []))
)]
pub async fn list_admin_tokens(
    tokens: web::Data<AdminTokens>,
    _admin: Admin,
) -> Result<web::Json<Vec<AdminTokenInfo>>, ApiError> {
    Ok(web::Json(tokens.list().await?))
}

/// Create an admin token; the response is the only time it is shown.
#[utoipa::path(
    post, path = "/admin/tokens", tag = "admin",
    request_body(content = Option<NewAdminToken>, description = "Optional label and expiry"),
    responses(
        (status = 201, description = "Created", body = CreatedAdminToken),
        (status = 400, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid admin token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin" = []))
)]
pub async fn create_admin_token(
    tokens: web::Data<AdminTokens>,
    admin: Admin,
    body: OptionalJson<NewAdminToken>,
) -> Result<HttpResponse, ApiError> {
    let created = tokens
        .create(&body.0.unwrap_or_default(), &admin.actor)
        .await?;
    tracing::info!(token = %created.id, by = %admin.token_id, "admin token created");
    Ok(HttpResponse::Created().json(&created))
}

/// Revoke an admin token now; every instance refuses it from its next request.
#[utoipa::path(
    delete, path = "/admin/tokens/{id}", tag = "admin",
    params(("id" = String, Path, description = "The admin token id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "The admin token itself given for its id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such active admin token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin" = []))
)]
pub async fn revoke_admin_token(
    tokens: web::Data<AdminTokens>,
    admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    tokens.revoke(&id, &admin.actor).await?;
    tracing::info!(token = %id, by = %admin.token_id, "admin token revoked");
    Ok(HttpResponse::NoContent().finish())
}

/// The audit log, newest first: every admin action on keys and admin tokens, over HTTP or from
/// the command line, with who did it (the admin token id, `cli` or `first-start`), the target,
/// the time, the request id and the outcome (`ok`, `refused` or `failed`).
#[utoipa::path(
    get, path = "/admin/audit", tag = "admin",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries and the cursor of the next", body = AuditPage),
        (status = 400, description = "Invalid paging", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid admin token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin" = []))
)]
pub async fn audit_log(
    audit: web::Data<AuditLog>,
    _admin: Admin,
    query: Query<AuditQuery>,
) -> Result<web::Json<AuditPage>, ApiError> {
    let query = query.into_inner();
    let limit = query.limit.unwrap_or(PAGE_DEFAULT);
    Ok(web::Json(audit.page(query.before.as_deref(), limit).await?))
}
