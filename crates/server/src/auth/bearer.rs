//! The `Authorization: Bearer <jwt>` extractor for user endpoints.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use crate::auth::jwt::{Claims, TokenKind};
use crate::error::ApiError;
use crate::state::AppState;

/// A user authenticated by a valid, unrevoked access token.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser(pub Claims);

/// The token part of `Authorization: Bearer <token>`, if the header has that form.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequest for AuthenticatedUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req).map(str::to_owned);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let token = token.ok_or(ApiError::unauthorized(
                "missing_token",
                "missing bearer token: send Authorization: Bearer <access_token>",
            ))?;
            let claims = state
                .tokens
                .verify(&token, TokenKind::Access, state.clock.now())
                .map_err(|_| ApiError::unauthorized("bad_token", "invalid or expired token"))?;
            if state.db.is_token_revoked(&claims.jti).await? {
                return Err(ApiError::unauthorized(
                    "bad_token",
                    "invalid or expired token",
                ));
            }
            Ok(Self(claims))
        })
    }
}
