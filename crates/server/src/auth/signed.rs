//! Signed service-to-service requests (`request-signing`), v1 and the original v0.
//!
//! - v1: `X-API-Key` is the key id (or the key itself), the signature covers the canonical
//!   request (method, path, query, body hash, timestamp, nonce), and the secret is the key's
//!   own signing secret, created with `keys create --signing`.
//! - v0 (the original's): `X-API-Key` is the key itself and the signature is
//!   `HMAC-SHA256(secret, key + timestamp)`. The secret is `API_SHARED_SECRET` when set (as the
//!   original used one secret for every service), and the key's own signing secret otherwise.
//!
//! Both schemes are replay-proof: a signature is accepted once (the replay cache), and only
//! within 5 minutes of its timestamp (30 s of future skew).

use std::sync::Arc;

use actix_web::HttpMessage as _;
use actix_web::dev::ServiceRequest;
use actix_web::http::header::HeaderMap;
use request_signing::{
    Error as SignError, Request, Scheme, Secret, SecretStore, SignatureHeaders, Verifier,
    VerifierConfig,
};

use crate::auth::api_key::{AuthMethod, KeyCache, Principal};
use crate::error::ApiError;
use crate::keys::KeyManager;
use crate::shared::ReplayStore;
use crate::state::{AppState, Clock};
use crate::store::{Db, KeyRow};

/// Whether the request carries a signature (and so must verify as one).
pub fn is_signed(headers: &HeaderMap) -> bool {
    headers.contains_key(request_signing::HEADER_SIGNATURE)
}

/// Where signing secrets come from: the database (through the key cache) and, for v0,
/// the optional shared secret.
#[derive(Debug, Clone)]
pub struct KeySecrets {
    db: Db,
    cache: Arc<KeyCache>,
    keys: KeyManager,
    clock: Clock,
    /// `Some` for the v0 verifier when `API_SHARED_SECRET` is set.
    shared: Option<Arc<Secret>>,
    scheme: Scheme,
}

impl KeySecrets {
    /// The stored key a signed request names in `X-API-Key`: the key itself, or (v1) its id.
    async fn row(&self, named: &str) -> Result<Option<KeyRow>, crate::store::StoreError> {
        let config = self.keys.config();
        let cache_key = if config.parse(named).is_ok() {
            config.hash(named).to_hex()
        } else if self.scheme == Scheme::V1 {
            format!("id:{named}")
        } else {
            return Ok(None);
        };
        if let Some(cached) = self.cache.get(&cache_key) {
            return Ok(cached);
        }
        let row = match cache_key.strip_prefix("id:") {
            Some(id) => self.db.find_key(id).await?,
            None => self.db.find_key_by_hash(&cache_key).await?,
        };
        self.cache.put(cache_key, row.clone());
        Ok(row)
    }
}

impl SecretStore for KeySecrets {
    type Error = crate::store::StoreError;

    async fn secrets(&self, key_id: &str, _scheme: Scheme) -> Result<Vec<Secret>, Self::Error> {
        let Some(row) = self
            .row(key_id)
            .await?
            .filter(|r| r.is_active(self.clock.now()))
        else {
            return Ok(Vec::new());
        };
        let mut secrets = Vec::new();
        if let Some(sealed) = &row.signing_secret {
            match self.keys.sealer().open(&row.id, sealed) {
                // Clients hold the hex text of the secret, as shown at creation.
                Ok(secret) => secrets.push(Secret::new(secret.to_vec())),
                Err(e) => {
                    tracing::error!(key = %row.id, error = %e, "stored signing secret does not open")
                }
            }
        }
        if let Some(shared) = &self.shared {
            secrets.push(Secret::new(shared.expose().to_vec()));
        }
        Ok(secrets)
    }
}

/// The two verifiers: v1 with per-key secrets, v0 with the shared or per-key secret.
#[derive(Debug)]
pub struct Signing {
    v1: Verifier<KeySecrets, Arc<ReplayStore>, Clock>,
    v0: Verifier<KeySecrets, Arc<ReplayStore>, Clock>,
    v1_keys: KeySecrets,
    v0_keys: KeySecrets,
    shared_v0: bool,
}

impl Signing {
    /// Verifiers over the given key store and replay store, accepting bodies up to
    /// `max_body_bytes`. v0 and v1 share the replay store.
    #[must_use]
    pub fn new(
        db: Db,
        cache: Arc<KeyCache>,
        keys: KeyManager,
        clock: Clock,
        shared_secret: Option<Secret>,
        max_body_bytes: usize,
        replay: ReplayStore,
    ) -> Self {
        let replay = Arc::new(replay);
        let shared_v0 = shared_secret.is_some();
        let store = |scheme, shared: Option<Arc<Secret>>| KeySecrets {
            db: db.clone(),
            cache: cache.clone(),
            keys: keys.clone(),
            clock: clock.clone(),
            shared,
            scheme,
        };
        let config = VerifierConfig::default().max_body_bytes(max_body_bytes);
        let v1_keys = store(Scheme::V1, None);
        let v0_keys = store(Scheme::V0, shared_secret.map(Arc::new));
        let v1 = Verifier::new(v1_keys.clone(), replay.clone())
            .with_clock(clock.clone())
            .with_config(config.accept_v0(false));
        let v0 = Verifier::new(v0_keys.clone(), replay)
            .with_clock(clock.clone())
            .with_config(config.accept_v0(true));
        Self {
            v1,
            v0,
            v1_keys,
            v0_keys,
            shared_v0,
        }
    }

    /// Whether v0 requests are checked against `API_SHARED_SECRET`.
    #[must_use]
    pub fn has_shared_secret(&self) -> bool {
        self.shared_v0
    }

    /// Forgets a verified request's replay record, because the server refused it afterwards.
    /// Best effort: a record that stays only delays a retry with the same nonce.
    pub async fn release(&self, verified: &request_signing::Verified) {
        let verifier = match verified.scheme() {
            Scheme::V0 => &self.v0,
            _ => &self.v1,
        };
        if let Err(e) = verifier.release(verified).await {
            tracing::debug!(error = %e, "releasing a replay record failed");
        }
    }
}

fn sign_error(error: SignError) -> ApiError {
    match error {
        SignError::BodyTooLarge { max, .. } => {
            ApiError::PayloadTooLarge(format!("the body is larger than the {max}-byte limit"))
        }
        SignError::SecretStoreUnavailable(e) | SignError::ReplayStoreUnavailable(e) => {
            tracing::error!(error = %e, "signature verification store unavailable");
            ApiError::Unavailable {
                detail: "signature verification is unavailable; try again shortly",
                retry_after: Some(1),
            }
        }
        SignError::UnknownKey => {
            ApiError::unauthorized("unknown_key", "unknown API key or no signing secret")
        }
        SignError::Replayed => ApiError::unauthorized("replayed_signature", "request replayed"),
        SignError::ReplayBudgetExceeded { retry_after_secs } => ApiError::RateLimited {
            retry_after: retry_after_secs,
            headers: Vec::new(),
        },
        SignError::BadSignature => ApiError::unauthorized("bad_signature", "bad signature"),
        e @ (SignError::Expired { .. } | SignError::FromFuture { .. }) => {
            ApiError::unauthorized("stale_signature", e.to_string())
        }
        other => ApiError::unauthorized("malformed_signature", other.to_string()),
    }
}

/// Reads the whole body (bounded), verifies the signature, and puts the body back for the
/// handler. The principal is the key the signature names; the verification is returned too,
/// so that its replay record can be released if the request is refused afterwards.
pub async fn authenticate(
    state: &AppState,
    req: &mut ServiceRequest,
) -> Result<(Principal, request_signing::Verified), ApiError> {
    let limit = state.settings.json_limit;
    let body = crate::extract::read_body(&mut req.take_payload(), limit).await?;
    req.set_payload(actix_web::dev::Payload::from(body.clone()));

    let headers = req.headers();
    let signatures = SignatureHeaders::from_fn(|name| headers.get(name).map(|v| v.as_bytes()));
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path(), |pq| pq.as_str());
    let request = Request::new(req.method().as_str(), target, &body);
    let is_v1 = headers.contains_key(request_signing::HEADER_NONCE)
        || headers
            .get(request_signing::HEADER_SIGNATURE)
            .is_some_and(|v| v.as_bytes().starts_with(b"v1="));
    let signing = &state.signing;
    let verified = if is_v1 {
        signing.v1.verify(&signatures, &request).await
    } else {
        signing.v0.verify(&signatures, &request).await
    }
    .map_err(sign_error)?;

    let store = if is_v1 {
        &signing.v1_keys
    } else {
        &signing.v0_keys
    };
    let method = match verified.scheme() {
        Scheme::V0 => AuthMethod::SignedV0,
        _ => AuthMethod::SignedV1,
    };
    let principal = match store.row(verified.key_id()).await {
        Ok(Some(row)) => state.principal(&row, method),
        Ok(None) => Err(ApiError::unauthorized("unknown_key", "unknown API key")),
        Err(e) => Err(e.into()),
    };
    // A request refused here did nothing: its replay record goes.
    match principal {
        Ok(principal) => Ok((principal, verified)),
        Err(refused) => {
            signing.release(&verified).await;
            Err(refused)
        }
    }
}
