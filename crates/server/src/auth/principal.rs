//! Who an API request is: the [`Principal`] the authentication chain leaves for the handler.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest};
use serde::Serialize;

use std::num::NonZeroU64;
use std::sync::Arc;

use crate::auth::scope::{Scope, Scopes};
use crate::error::ApiError;
use crate::key_limits::{CreditsInfo, RateLimitSpec};
use crate::store::KeyRow;

/// What a key's calls are charged against besides its daily quota; each only when set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallLimits {
    /// The rate limit (GCRA: a rate and a burst).
    pub rate: Option<quota::Policy>,
    /// Calls per UTC calendar month.
    pub monthly: Option<NonZeroU64>,
    /// The credits granted, when, and their refill.
    pub credits: Option<CreditsInfo>,
}

impl CallLimits {
    /// The limits of a stored key. A stored rate that cannot be applied (the key manager
    /// checks every rate it writes, so only a hand-edited row has one) is logged and counts as
    /// none. A rate stored before the whole-microsecond rule is applied a little slower than
    /// written ([`RateLimitSpec::policy`]).
    #[must_use]
    pub fn of(row: &KeyRow) -> Self {
        let rate = RateLimitSpec::of(row).and_then(|spec| match spec.policy() {
            Ok(policy) => Some(policy),
            Err(error) => {
                tracing::error!(key = %row.id, %error, "a stored rate limit cannot be applied");
                None
            }
        });
        Self {
            rate,
            monthly: row
                .monthly_quota
                .and_then(|q| u64::try_from(q).ok())
                .and_then(NonZeroU64::new),
            credits: CreditsInfo::of(row),
        }
    }

    /// Whether the key has none: its calls pay the daily quota only.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rate.is_none() && self.monthly.is_none() && self.credits.is_none()
    }
}

/// How a caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// `Authorization: <key>`, as the original clients send it.
    RawAuthorization,
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// `X-API-Key: <key>`.
    XApiKey,
    /// A v0 signature (HMAC of key and timestamp).
    SignedV0,
    /// A v1 signature (HMAC of the canonical request).
    SignedV1,
    /// An RFC 9421 HTTP Message Signature (`Signature-Input`, `Signature`).
    SignedRfc9421,
}

/// The authenticated key behind a request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key's non-secret id.
    pub key_id: Arc<str>,
    /// The id its daily quota is counted under: shared by a key and its rotations.
    pub quota_id: Arc<str>,
    /// The service that owns the key.
    pub service: Arc<str>,
    /// The key's daily quota.
    pub daily_quota: u64,
    /// What the key may call.
    pub scopes: Scopes,
    /// Its rate limit, monthly quota and credits.
    pub limits: CallLimits,
    /// How the request authenticated.
    pub method: AuthMethod,
}

impl Principal {
    /// Refuses a key without `scope` with 403: it is authenticated, but may not call this.
    ///
    /// # Errors
    /// [`ApiError::InsufficientScope`].
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.allows(scope) {
            Ok(())
        } else {
            Err(ApiError::InsufficientScope(scope))
        }
    }
}

/// What the key table says of an active key: who it is, and whether it must sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIdentity {
    // Shared, not owned: the key cache hands out a copy of the identity on every call, and
    // each copy's principal takes another, so owned strings cost six allocations a call.
    key_id: Arc<str>,
    quota_id: Arc<str>,
    service: Arc<str>,
    daily_quota: u64,
    scopes: Scopes,
    limits: CallLimits,
    must_sign: bool,
}

impl KeyIdentity {
    /// The identity of a stored key, with `default_quota` for keys without their own.
    #[must_use]
    pub fn of(row: &KeyRow, default_quota: u64) -> Self {
        Self {
            key_id: row.id.as_str().into(),
            quota_id: row.quota_subject().into(),
            service: row.service.as_str().into(),
            daily_quota: row
                .daily_quota
                .and_then(|q| u64::try_from(q).ok())
                .unwrap_or(default_quota),
            scopes: Scopes::from_stored(row.scopes.as_deref()),
            limits: CallLimits::of(row),
            must_sign: row.signing_secret.is_some(),
        }
    }

    /// Whether requests with this key must be signed.
    #[must_use]
    pub fn must_sign(&self) -> bool {
        self.must_sign
    }

    /// The key's daily quota.
    #[must_use]
    pub fn daily_quota(&self) -> u64 {
        self.daily_quota
    }

    /// The principal of a request that authenticated with `method`.
    #[must_use]
    pub fn principal(&self, method: AuthMethod) -> Principal {
        Principal {
            key_id: self.key_id.clone(),
            quota_id: self.quota_id.clone(),
            service: self.service.clone(),
            daily_quota: self.daily_quota,
            scopes: self.scopes,
            limits: self.limits,
            method,
        }
    }
}

/// A handler's view of the authenticated caller.
#[derive(Debug, Clone)]
pub struct ApiCaller(pub Principal);

impl FromRequest for ApiCaller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            req.extensions()
                .get::<Principal>()
                .cloned()
                .map(Self)
                .ok_or(ApiError::unauthorized("missing_key", "missing API key")),
        )
    }
}
