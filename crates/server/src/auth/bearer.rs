//! The `Authorization: Bearer <jwt>` extractor for user endpoints.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use crate::auth::accounts::Accounts;
use crate::auth::jwt::{Claims, bearer_token};
use crate::error::ApiError;

/// A user authenticated by a valid, unrevoked access token.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser(pub Claims);

impl FromRequest for AuthenticatedUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let accounts = req.app_data::<web::Data<Accounts>>().cloned();
        let token = bearer_token(req.headers()).map(str::to_owned);
        Box::pin(async move {
            let accounts = accounts.ok_or_else(|| ApiError::internal("accounts not registered"))?;
            let token = token.ok_or(ApiError::unauthorized(
                "missing_token",
                "missing bearer token: send Authorization: Bearer <access_token>",
            ))?;
            Ok(Self(accounts.authenticate(&token).await?))
        })
    }
}
