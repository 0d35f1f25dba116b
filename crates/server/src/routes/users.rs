//! `/register`, `/login`, `/refresh`, `/logout` and `/protected`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::auth::accounts::{Accounts, TokenPair};
use crate::auth::bearer::AuthenticatedUser;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, OptionalJson};
use crate::limits::UsernameLimit;

/// Credentials for `/register` and `/login`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// 3 to 32 ASCII letters, digits, `_`, `.` or `-`.
    #[schema(example = "alice", pattern = r"^[A-Za-z0-9_.\-]{3,32}$")]
    pub username: String,
    /// At least 8 characters, at most 256 bytes.
    #[schema(
        example = "correct horse battery staple",
        min_length = 8,
        max_length = 256
    )]
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// A newly registered user.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    /// The user id.
    pub id: String,
    /// The username.
    pub username: String,
}

/// Tokens issued by `/login` and `/refresh`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <access_token>`; lives 15 minutes.
    pub access_token: String,
    /// Exchange at `/refresh` for a new pair; lives 30 days.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

impl From<TokenPair> for TokenResponse {
    fn from(pair: TokenPair) -> Self {
        Self {
            expires_in: pair.access.claims.exp - pair.access.claims.iat,
            access_token: pair.access.token,
            refresh_token: pair.refresh.token,
            token_type: "Bearer",
        }
    }
}

/// A refresh token, for `/refresh` and (optionally) `/logout`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from `/login` or a previous `/refresh`.
    pub refresh_token: String,
}

impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshRequest { refresh_token: [redacted] }")
    }
}

/// What `/protected` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProtectedResponse {
    /// The username the token was issued to (the original's field).
    pub logged_in_as: String,
    /// The user id.
    pub user_id: String,
    /// When the access token expires (unix seconds).
    pub token_expires_at: i64,
}

/// Create a user account.
#[utoipa::path(
    post, path = "/register", tag = "users",
    request_body = Credentials,
    responses(
        (status = 201, description = "Registered", body = Registered),
        (status = 400, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Username taken", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many registrations from this address", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn register(
    accounts: web::Data<Accounts>,
    body: Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let Credentials { username, password } = body.into_inner();
    let user = accounts
        .register(&username, Zeroizing::new(password))
        .await?;
    Ok(HttpResponse::Created().json(Registered {
        id: user.id,
        username: user.username,
    }))
}

/// Exchange a username and password for tokens.
#[utoipa::path(
    post, path = "/login", tag = "users",
    request_body = Credentials,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 400, description = "Malformed request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong username or password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this address, or for this username", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn login(
    accounts: web::Data<Accounts>,
    username_limit: web::Data<UsernameLimit>,
    body: Json<Credentials>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let Credentials { username, password } = body.into_inner();
    username_limit.attempt(&username).await?;
    let pair = accounts.login(&username, Zeroizing::new(password)).await?;
    Ok(web::Json(pair.into()))
}

/// Exchange a refresh token for a new token pair. A refresh token is single use: presenting a
/// spent one again revokes every token of its login (its family).
#[utoipa::path(
    post, path = "/refresh", tag = "users",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "Invalid, expired or revoked refresh token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn refresh(
    accounts: web::Data<Accounts>,
    body: Json<RefreshRequest>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let pair = accounts.refresh(&body.refresh_token).await?;
    Ok(web::Json(pair.into()))
}

/// Revoke every token of this login (its family), and the family of the refresh token given in
/// the body, if it is the same user's.
#[utoipa::path(
    post, path = "/logout", tag = "users",
    request_body(content = Option<RefreshRequest>, description = "Optional refresh token to revoke too"),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing, invalid or expired token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn logout(
    accounts: web::Data<Accounts>,
    user: AuthenticatedUser,
    body: OptionalJson<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let refresh = body.0.as_ref().map(|body| body.refresh_token.as_str());
    accounts.logout(&user.0, refresh).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A route only a logged-in user can reach.
#[utoipa::path(
    get, path = "/protected", tag = "users",
    responses(
        (status = 200, description = "The caller's identity", body = ProtectedResponse),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn protected(user: AuthenticatedUser) -> web::Json<ProtectedResponse> {
    web::Json(ProtectedResponse {
        logged_in_as: user.0.name,
        user_id: user.0.sub,
        token_expires_at: user.0.exp,
    })
}
