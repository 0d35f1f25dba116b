//! Admin tokens for `/admin/keys...`: the API key format with the prefix `sadm`, hashed with
//! the same pepper, stored only as hashes, presented as `Authorization: Bearer <token>`.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use apikey_gen::KeyConfig;

use crate::auth::jwt::bearer_token;
use crate::clock::Clock;
use crate::error::ApiError;
use crate::store::{Db, StoreError};

/// Admin tokens use the API key format with this prefix.
pub const ADMIN_PREFIX: &str = "sadm";

/// Creates and checks admin tokens.
#[derive(Debug, Clone)]
pub struct AdminTokens {
    db: Db,
    config: KeyConfig,
    clock: Clock,
}

/// Why an admin token could not be made or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminTokenError {
    /// The token format or generator failed.
    #[error(transparent)]
    Key(#[from] apikey_gen::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AdminTokenError> for ApiError {
    fn from(error: AdminTokenError) -> Self {
        match error {
            AdminTokenError::Key(e) => Self::internal(e),
            AdminTokenError::Store(e) => e.into(),
        }
    }
}

impl AdminTokens {
    /// Tokens in `db`, hashed like the API keys `keys` (same hasher and pepper).
    ///
    /// # Errors
    /// `apikey-gen`'s, for a format it does not accept.
    pub fn new(db: Db, keys: &KeyConfig, clock: Clock) -> Result<Self, AdminTokenError> {
        let config = KeyConfig::new(ADMIN_PREFIX)?.with_hasher(keys.hasher().clone());
        Ok(Self { db, config, clock })
    }

    /// Creates an admin token; returns it (shown once).
    pub async fn create(&self) -> Result<String, AdminTokenError> {
        let generated = self.config.generate()?;
        self.db
            .insert_admin_token(
                generated.id().as_str(),
                &generated.hash().to_hex(),
                self.clock.now(),
            )
            .await?;
        Ok(generated.key().expose_secret().to_owned())
    }

    /// The id of the admin token `token`, if it is valid.
    pub async fn find(&self, token: &str) -> Result<Option<String>, AdminTokenError> {
        if self.config.parse(token).is_err() {
            return Ok(None);
        }
        Ok(self
            .db
            .find_admin_token(&self.config.hash(token).to_hex())
            .await?)
    }
}

/// A caller holding a valid admin token.
#[derive(Debug)]
pub struct Admin {
    /// The admin token's id.
    pub token_id: String,
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let tokens = req.app_data::<web::Data<AdminTokens>>().cloned();
        let token = bearer_token(req.headers()).map(str::to_owned);
        Box::pin(async move {
            let tokens = tokens.ok_or_else(|| ApiError::internal("admin tokens not registered"))?;
            let token = token.ok_or_else(|| {
                ApiError::unauthorized(
                    "missing_admin_token",
                    "admin token required: Authorization: Bearer <admin token>",
                )
            })?;
            let token_id = tokens
                .find(&token)
                .await?
                .ok_or_else(|| ApiError::unauthorized("bad_admin_token", "invalid admin token"))?;
            Ok(Self { token_id })
        })
    }
}
