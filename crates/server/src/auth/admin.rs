//! Admin tokens for `/admin/...`: the API key format with the prefix `sadm`, hashed with the
//! same pepper, stored only as hashes, presented as `Authorization: Bearer <token>`. Each has
//! an optional label and expiry, and is revoked by id.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use apikey_gen::{Authenticator, KeyConfig, KeyHash, KeyHasher, KeyRecord, KeyStore};
use serde::{Deserialize, Serialize};

use crate::audit::{Action, Actor, AuditLog, GivenId, Refusal};
use crate::auth::jwt::bearer_token;
use crate::clock::Clock;
use crate::error::ApiError;
use crate::keys::EXPIRES_MAX_DAYS;
use crate::store::{AdminTokenRow, AuditRow, Db, StoreError};

pub use crate::keys::ADMIN_PREFIX;

/// Creates, lists, revokes and checks admin tokens.
#[derive(Debug, Clone)]
pub struct AdminTokens {
    db: Db,
    config: KeyConfig,
    /// `apikey-gen`'s check over the admin token table, without a cache (a revocation counts
    /// from the next request), with the fallback peppers of a rotated server secret.
    auth: Arc<Authenticator<AdminTable, Clock>>,
    clock: Clock,
    audit: AuditLog,
}

/// The admin token table as `apikey-gen` reads it: the active token with a hash.
#[derive(Debug, Clone)]
struct AdminTable {
    db: Db,
    clock: Clock,
}

impl KeyStore for AdminTable {
    type Identity = String;
    type Error = StoreError;

    async fn lookup(&self, hash: &KeyHash) -> Result<Option<KeyRecord<String>>, StoreError> {
        let id = self
            .db
            .find_admin_token(&hash.to_hex(), self.clock.now())
            .await?;
        Ok(id.map(KeyRecord::active))
    }

    async fn rehash(&self, old: &KeyHash, new: &KeyHash) -> Result<bool, StoreError> {
        let moved = self
            .db
            .rehash_admin_token(&old.to_hex(), &new.to_hex())
            .await?;
        if moved {
            tracing::info!("admin token re-hashed under the current server secret");
        }
        Ok(moved)
    }
}

/// Why an admin token could not be made, found or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminTokenError {
    /// A request field that breaks a rule; `field` names which.
    #[error("{field} {reason}")]
    Invalid {
        /// The field, as named in the request body.
        field: &'static str,
        /// The rule it breaks.
        reason: String,
    },
    /// No admin token, or no unrevoked one, with this id.
    #[error("no active admin token with this id")]
    NotFound,
    /// The token format or generator failed.
    #[error(transparent)]
    Key(#[from] apikey_gen::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store failed while a token was checked.
    #[error("admin token lookup failed: {0}")]
    Unavailable(String),
}

impl Refusal for AdminTokenError {
    fn is_refusal(&self) -> bool {
        matches!(self, Self::Invalid { .. } | Self::NotFound)
    }
}

impl From<AdminTokenError> for ApiError {
    fn from(error: AdminTokenError) -> Self {
        match error {
            AdminTokenError::Invalid { field, reason } => Self::Validation { field, reason },
            AdminTokenError::NotFound => Self::NotFound("no active admin token with this id"),
            AdminTokenError::Key(e) => Self::internal(e),
            AdminTokenError::Store(e) => e.into(),
            AdminTokenError::Unavailable(reason) => {
                crate::observe::database_error();
                crate::observe::throttled_error("admin token lookup failed", &reason);
                Self::Unavailable {
                    detail: "the database is unavailable; try again shortly",
                    retry_after: Some(1),
                }
            }
        }
    }
}

/// Longest accepted label, in bytes.
pub const LABEL_MAX: usize = 64;

/// Options for a new admin token.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdminToken {
    /// Who or what holds it, shown in listings: 1 to 64 bytes; no control, invisible or
    /// direction-changing characters, and no secret.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64, example = "ci deploy")]
    pub label: Option<String>,
    /// Days until it expires (1 to 36,500); without it, it lasts until revoked.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 36_500)]
    pub expires_in_days: Option<u32>,
}

/// An admin token just created: the only moment it exists in clear.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedAdminToken {
    /// Non-secret token id, for listing and revoking.
    pub id: String,
    /// The admin token. Shown once; only its hash is stored.
    pub token: String,
    /// Its label, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Expiry (unix seconds), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl fmt::Debug for CreatedAdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedAdminToken")
            .field("id", &self.id)
            .field("token", &"[redacted]")
            .field("label", &self.label)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Drop for CreatedAdminToken {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.token.zeroize();
    }
}

/// An admin token as listed: never the token.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AdminTokenInfo {
    /// Non-secret token id.
    pub id: String,
    /// Its label, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// Expiry (unix seconds), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Revocation time (unix seconds), if revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    /// `active`, `expired` or `revoked` at the time of listing.
    pub status: &'static str,
}

impl AdminTokens {
    /// Tokens in `db`, hashed like the API keys `keys` (same hasher and pepper), and found
    /// under the `fallbacks` peppers too; their creation and revocation recorded in `audit`.
    ///
    /// # Errors
    /// `apikey-gen`'s, for a format it does not accept.
    pub fn new(
        db: Db,
        keys: &KeyConfig,
        fallbacks: Vec<KeyHasher>,
        clock: Clock,
        audit: AuditLog,
    ) -> Result<Self, AdminTokenError> {
        let config = KeyConfig::new(ADMIN_PREFIX)?.with_hasher(keys.hasher().clone());
        let table = AdminTable {
            db: db.clone(),
            clock: clock.clone(),
        };
        let auth = Authenticator::builder(config.clone(), table)
            .fallback_hashers(fallbacks)
            .clock(clock.clone())
            .cache_ttl(Duration::ZERO)
            .build()?;
        Ok(Self {
            db,
            config,
            auth: Arc::new(auth),
            clock,
            audit,
        })
    }

    /// Creates an admin token; returns it (shown once). Recorded in the audit log as done by
    /// `actor`.
    pub async fn create(
        &self,
        new: &NewAdminToken,
        actor: &Actor,
    ) -> Result<CreatedAdminToken, AdminTokenError> {
        let mut entry = self.audit.entry(actor, Action::AdminTokenCreate, None);
        let result = self.create_recorded(new, &mut entry).await;
        self.audit.finish(entry, result).await
    }

    async fn create_recorded(
        &self,
        new: &NewAdminToken,
        entry: &mut AuditRow,
    ) -> Result<CreatedAdminToken, AdminTokenError> {
        let invalid = |field, reason: String| AdminTokenError::Invalid { field, reason };
        if let Some(label) = &new.label {
            if label.is_empty() || label.len() > LABEL_MAX {
                return Err(invalid(
                    "label",
                    format!("must be 1 to {LABEL_MAX} bytes long"),
                ));
            }
            if let Some(reason) = crate::keys::label_refusal(label) {
                return Err(invalid("label", reason.to_owned()));
            }
        }
        if let Some(days) = new.expires_in_days
            && !(1..=EXPIRES_MAX_DAYS).contains(&days)
        {
            return Err(invalid(
                "expires_in_days",
                format!("must be between 1 and {EXPIRES_MAX_DAYS}"),
            ));
        }
        let now = self.clock.now();
        let (token, hash, id) = self.config.generate()?.into_parts();
        let row = AdminTokenRow {
            id: id.as_str().to_owned(),
            token_hash: hash.to_hex(),
            label: new.label.clone(),
            created_at: now,
            expires_at: new
                .expires_in_days
                .map(|days| now.saturating_add(i64::from(days) * 86_400)),
            revoked_at: None,
        };
        entry.target = Some(row.id.clone());
        entry.detail = Some(
            serde_json::json!({ "label": row.label, "expires_at": row.expires_at }).to_string(),
        );
        self.db.insert_admin_token(&row, entry).await?;
        Ok(CreatedAdminToken {
            id: row.id,
            token: token.expose_secret().to_owned(),
            label: row.label,
            expires_at: row.expires_at,
        })
    }

    /// Every admin token, oldest first.
    pub async fn list(&self) -> Result<Vec<AdminTokenInfo>, AdminTokenError> {
        let now = self.clock.now();
        let rows = self.db.list_admin_tokens().await?;
        Ok(rows
            .into_iter()
            .map(|row| AdminTokenInfo {
                status: if row.revoked_at.is_some() {
                    "revoked"
                } else if row.expires_at.is_some_and(|t| t <= now) {
                    "expired"
                } else {
                    "active"
                },
                id: row.id,
                label: row.label,
                created_at: row.created_at,
                expires_at: row.expires_at,
                revoked_at: row.revoked_at,
            })
            .collect())
    }

    /// Revokes the admin token `id` now. Every instance refuses it from its next request: admin
    /// tokens are looked up in the database on every call. Recorded in the audit log as done by
    /// `actor`.
    pub async fn revoke(&self, id: &str, actor: &Actor) -> Result<(), AdminTokenError> {
        let given = GivenId::of(&self.config, id);
        let entry = self
            .audit
            .entry(actor, Action::AdminTokenRevoke, Some(given.target()));
        let result = match given {
            GivenId::Id(id) => match self
                .db
                .revoke_admin_token(id, self.clock.now(), &entry)
                .await
            {
                Ok(true) => Ok(()),
                Ok(false) => Err(AdminTokenError::NotFound),
                Err(e) => Err(e.into()),
            },
            GivenId::NotAnId => Err(AdminTokenError::NotFound),
            GivenId::Secret => Err(AdminTokenError::Invalid {
                field: "id",
                reason: "is an admin token itself, not its id: give the token's id \
                         (`sadm_...` and 12 hex digits), as `GET /admin/tokens` shows it"
                    .to_owned(),
            }),
        };
        self.audit.finish(entry, result).await
    }

    /// Whether any admin token is active.
    pub async fn any_active(&self) -> Result<bool, AdminTokenError> {
        Ok(self.db.count_active_admin_tokens(self.clock.now()).await? > 0)
    }

    /// The id of the admin token `token`, if it is active. One hashed under a fallback pepper
    /// (a rotated-out server secret) is re-hashed under the current one.
    pub async fn find(&self, token: &str) -> Result<Option<String>, AdminTokenError> {
        match self.auth.authenticate(token).await {
            Ok(id) => Ok(Some(id)),
            Err(apikey_gen::Error::StoreUnavailable { reason }) => {
                Err(AdminTokenError::Unavailable(reason))
            }
            Err(_) => Ok(None),
        }
    }
}

/// A caller holding a valid admin token.
#[derive(Debug)]
pub struct Admin {
    /// The admin token's id.
    pub token_id: String,
    /// Who acts, for the audit log: the token id and the request's id.
    pub actor: Actor,
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let tokens = req.app_data::<web::Data<AdminTokens>>().cloned();
        let token = bearer_token(req.headers()).map(str::to_owned);
        let request_id = crate::observe::request_id(req);
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
            Ok(Self {
                actor: Actor::admin(token_id.clone(), request_id),
                token_id,
            })
        })
    }
}
