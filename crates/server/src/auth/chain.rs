//! The authentication chain of the API routes, outermost first:
//!
//! 1. `request-signing`'s middleware verifies a request that carries `X-API-Signature` (see
//!    [`crate::auth::signed`]) and lets the others through;
//! 2. `apikey-gen`'s middleware authenticates the others by their key (see
//!    [`crate::auth::api_key`]);
//! 3. [`require_principal`] turns what either found into the [`Principal`](crate::auth::principal::Principal) the handler reads,
//!    and refuses a key without the route's [`Scope`] with 403.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, web};
use apikey_gen::KeySource;

use crate::auth::api_key::KeyAuth;
use crate::auth::principal::{AuthMethod, KeyIdentity};
use crate::auth::scope::Scope;
use crate::auth::signed::{SignatureAuth, SigningKeys};
use crate::error::ApiError;
use crate::usage::{Outcome, UsageHistory};

/// The key and signature middleware of the API routes, and the caches behind them.
#[derive(Debug, Clone)]
pub struct ApiAuth {
    /// `request-signing`'s middleware.
    pub signature: SignatureAuth,
    /// `apikey-gen`'s middleware.
    pub key: KeyAuth,
    /// The signing keys the signature middleware reads.
    pub signing_keys: SigningKeys,
}

impl ApiAuth {
    /// Forgets what this instance cached of the key `id`, after revoking or rotating it here:
    /// every instance refuses a revoked key within the cache TTL, this one at once.
    pub fn forget(&self, id: &str) {
        self.key.authenticator().invalidate_all();
        self.signing_keys.forget(id);
    }
}

/// How the key was presented, as the API-key middleware found it.
fn presented_by(source: Option<KeySource>) -> AuthMethod {
    // `ApiKeyAuth` puts the source beside every identity it puts in.
    debug_assert!(
        source.is_some(),
        "an API-key identity without its KeySource"
    );
    match source {
        Some(KeySource::XApiKey) => AuthMethod::XApiKey,
        Some(KeySource::Bearer) => AuthMethod::Bearer,
        Some(KeySource::RawAuthorization) | None => AuthMethod::RawAuthorization,
    }
}

/// The last step of authentication, inside the key and signature middleware: turns what they
/// found into the [`Principal`](crate::auth::principal::Principal) the handler reads. A key that
/// must sign is refused unsigned (401), and a key without `scope`, the route's, with 403.
pub async fn require_principal(
    scope: Scope,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let verified = req.extensions().get::<request_signing::Verified>().cloned();
    let principal = match verified {
        Some(verified) => {
            let auth = req
                .app_data::<web::Data<ApiAuth>>()
                .cloned()
                .ok_or_else(|| ApiError::internal("authentication not registered"))?;
            // Boxed, as the rarer path: its lookups would otherwise size (and be copied with)
            // every request's future.
            Box::pin(auth.signing_keys.principal(&verified)).await?
        }
        None => {
            // Taken out: the principal takes their place, and the request's extensions (a new
            // map for each request in actix-web) then stay small enough not to grow.
            let (identity, source) = {
                let mut extensions = req.extensions_mut();
                let source = extensions.remove::<KeySource>();
                let identity = extensions
                    .remove::<KeyIdentity>()
                    .ok_or_else(|| ApiError::internal("the API-key middleware is missing"))?;
                (identity, source)
            };
            if identity.must_sign() {
                return Err(ApiError::unauthorized(
                    "signature_required",
                    "this key must sign its requests (X-API-Timestamp, X-API-Signature)",
                )
                .into());
            }
            identity.principal(presented_by(source))
        }
    };
    crate::observe::record_key(&principal.key_id);
    tracing::debug!(key = %principal.key_id, method = ?principal.method, "authenticated");
    if let Err(refused) = principal.require(scope) {
        if let Some(history) = req.app_data::<web::Data<UsageHistory>>() {
            history.record(&principal.key_id, Outcome::Scope);
        }
        return Err(refused.into());
    }
    req.extensions_mut().insert(principal);
    next.call(req).await
}
