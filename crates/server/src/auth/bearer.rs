//! The `Authorization: Bearer <jwt>` extractor for user endpoints.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use crate::auth::jwt::{Claims, TokenKind, bearer_token};
use crate::error::ApiError;
use crate::state::AppState;

/// A user authenticated by a valid, unrevoked access token.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser(pub Claims);

impl FromRequest for AuthenticatedUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req.headers()).map(str::to_owned);
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
