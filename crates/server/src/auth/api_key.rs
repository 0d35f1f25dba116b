//! API-key authentication and the per-key daily quota.
//!
//! A key is accepted as `Authorization: <key>` (the original's raw form),
//! `Authorization: Bearer <key>`, or `X-API-Key: <key>`. A request carrying `X-API-Signature`
//! is a signed service-to-service call instead (see [`crate::auth::signed`]).
//!
//! The key's format and checksum are checked offline first (`apikey-gen`), so garbage never
//! reaches the database. Then its peppered hash is looked up in a small in-memory cache and,
//! on a miss, in the database. A cached answer lives `key_cache_ttl` (5 s by default): a
//! revocation takes effect on every instance within that time.

use std::num::{NonZeroU64, NonZeroUsize};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use apikey_gen::{KeyError, KeySource};
use lru::LruCache;
use quota::Status;
use serde::Serialize;

use crate::error::{ApiError, QUOTA_EXCEEDED_MESSAGE};
use crate::state::AppState;
use crate::store::KeyRow;

/// Longest header value considered as a key; anything longer is refused unread.
pub const MAX_KEY_LEN: usize = apikey_gen::MAX_PRESENTED_LEN;

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
}

/// The authenticated key behind a request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key's non-secret id.
    pub key_id: String,
    /// The service that owns the key.
    pub service: String,
    /// The key's daily quota.
    pub daily_quota: u64,
    /// How the request authenticated.
    pub method: AuthMethod,
}

/// Cached key lookups by hash: `Some(row)` for a known key, `None` for an unknown one.
///
/// Known and unknown keys live in two separate caches, each bounded and evicting the least
/// recently used entry: a flood of well-formed unknown keys (the checksum is public) fills only
/// the unknown cache and can never push a known key out. Each answer is trusted for `ttl`.
#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    known: Mutex<LruCache<String, (Instant, KeyRow)>>,
    unknown: Mutex<LruCache<String, Instant>>,
}

impl KeyCache {
    /// A cache keeping answers for `ttl`, at most `capacity` known and `capacity` unknown keys.
    #[must_use]
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            ttl,
            known: Mutex::new(LruCache::new(capacity)),
            unknown: Mutex::new(LruCache::new(capacity)),
        }
    }

    fn lock<T>(cache: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        // A panic while holding this lock cannot leave the cache inconsistent (single inserts
        // and removes), so a poisoned lock is still usable.
        cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached answer for `hash`, if fresh.
    pub fn get(&self, hash: &str) -> Option<Option<KeyRow>> {
        let ttl = self.ttl;
        {
            let mut known = Self::lock(&self.known);
            match known.get(hash) {
                Some((at, row)) if at.elapsed() < ttl => return Some(Some(row.clone())),
                Some(_) => {
                    known.pop(hash);
                }
                None => {}
            }
        }
        let mut unknown = Self::lock(&self.unknown);
        match unknown.get(hash) {
            Some(at) if at.elapsed() < ttl => Some(None),
            Some(_) => {
                unknown.pop(hash);
                None
            }
            None => None,
        }
    }

    /// Remembers the answer for `hash`.
    pub fn put(&self, hash: String, row: Option<KeyRow>) {
        match row {
            Some(row) => {
                Self::lock(&self.unknown).pop(&hash);
                Self::lock(&self.known).put(hash, (Instant::now(), row));
            }
            None => {
                Self::lock(&self.unknown).put(hash, Instant::now());
            }
        }
    }

    /// Forgets every cached answer for the key `id` (after a revocation on this instance).
    pub fn forget_id(&self, id: &str) {
        let mut known = Self::lock(&self.known);
        let stale: Vec<String> = known
            .iter()
            .filter(|(_, (_, row))| row.id == id)
            .map(|(hash, _)| hash.clone())
            .collect();
        for hash in stale {
            known.pop(&hash);
        }
    }

    /// How many known and unknown answers are held.
    #[must_use]
    pub fn len(&self) -> (usize, usize) {
        (
            Self::lock(&self.known).len(),
            Self::lock(&self.unknown).len(),
        )
    }
}

/// The presented key and how it was presented, from the request headers, by `apikey-gen`'s
/// rules (`X-API-Key` first, then `Authorization: <key>` or `Authorization: Bearer <key>`).
pub fn presented_key(headers: &HeaderMap) -> Result<(String, AuthMethod), ApiError> {
    match apikey_gen::presented_key(|name| headers.get(name).map(HeaderValue::as_bytes)) {
        Ok(presented) => {
            let method = match presented.source() {
                KeySource::XApiKey => AuthMethod::XApiKey,
                KeySource::Bearer => AuthMethod::Bearer,
                KeySource::RawAuthorization => AuthMethod::RawAuthorization,
            };
            Ok((presented.expose_secret().to_owned(), method))
        }
        Err(KeyError::MissingKey) => Err(ApiError::unauthorized(
            "missing_key",
            "missing API key: send Authorization: <key>, Authorization: Bearer <key> or X-API-Key",
        )),
        Err(_) => Err(ApiError::unauthorized("malformed_key", "invalid API key")),
    }
}

impl AppState {
    /// The stored key for `presented`, if it is a well-formed, known key (active or not).
    pub async fn lookup_key(&self, presented: &str) -> Result<Option<KeyRow>, ApiError> {
        let config = self.keys.config();
        if config.parse(presented).is_err() {
            return Ok(None);
        }
        let hash = config.hash(presented).to_hex();
        if let Some(cached) = self.key_cache.get(&hash) {
            return Ok(cached);
        }
        let row = self.db.find_key_by_hash(&hash).await?;
        self.key_cache.put(hash, row.clone());
        Ok(row)
    }

    /// The principal for an active key row.
    pub fn principal(&self, row: &KeyRow, method: AuthMethod) -> Result<Principal, ApiError> {
        if !row.is_active(self.clock.now()) {
            return Err(ApiError::unauthorized(
                "revoked_key",
                "API key revoked or expired",
            ));
        }
        Ok(Principal {
            key_id: row.id.clone(),
            service: row.service.clone(),
            daily_quota: self.keys.daily_quota(row),
            method,
        })
    }

    /// Authenticates an unsigned request by its API key.
    pub async fn authenticate_key(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let (presented, method) = presented_key(headers)?;
        let row = self
            .lookup_key(&presented)
            .await?
            .ok_or(ApiError::unauthorized("unknown_key", "unknown API key"))?;
        if row.signing_secret.is_some() {
            return Err(ApiError::unauthorized(
                "signature_required",
                "this key must sign its requests (X-API-Timestamp, X-API-Signature)",
            ));
        }
        self.principal(&row, method)
    }
}

/// Middleware for API-key routes: authenticates the request (key or signature) and stores
/// the [`Principal`] for the handler. Failures answer 401 before the handler runs.
pub async fn require_api_key(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("application state missing"))?;
    let (principal, verified) = if crate::auth::signed::is_signed(req.headers()) {
        let (principal, verified) = crate::auth::signed::authenticate(&state, &mut req).await?;
        (principal, Some(verified))
    } else {
        (state.authenticate_key(req.headers()).await?, None)
    };
    crate::observe::record_key(&principal.key_id);
    tracing::debug!(key = %principal.key_id, method = ?principal.method, "authenticated");
    req.extensions_mut().insert(principal);
    let response = next.call(req).await;
    if let Some(verified) = verified {
        // A signed request refused after its signature verified (a spent quota, an overloaded
        // dependency) did nothing: its nonce is released, so it uses none of the key's replay
        // share and may be sent again as it is.
        let status = match &response {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        if matches!(status.as_u16(), 429 | 503) {
            state.signing.release(&verified).await;
        }
    }
    response
}

/// A handler's view of the authenticated caller; charge the quota before doing the work.
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

/// Rate-limit headers of a granted call, added to the success response.
#[derive(Debug)]
#[must_use = "the charge's headers belong on the response"]
pub struct Charged(Vec<(&'static str, String)>);

impl Charged {
    /// A 200 response with `body` and the quota headers.
    pub fn respond(self, body: impl Serialize) -> HttpResponse {
        let mut response = HttpResponse::Ok();
        for (name, value) in self.0 {
            response.insert_header((name, value));
        }
        response.json(body)
    }
}

impl ApiCaller {
    /// Charges `cost` calls to the key's daily quota; 429 with the original's message once spent.
    pub async fn charge(&self, state: &AppState, cost: u64) -> Result<Charged, ApiError> {
        let limit = NonZeroU64::new(self.0.daily_quota);
        let decision = state.quota.decide(&self.0.key_id, cost, limit).await?;
        match decision.status() {
            // Allowed uncounted while Redis is away (fail open): no quota headers to give.
            Status::FailedOpen => Ok(Charged(Vec::new())),
            Status::FailedClosed => {
                crate::observe::quota_denied("store_unavailable");
                Err(crate::limits::redis_unavailable())
            }
            _ if decision.is_allowed() => Ok(Charged(decision.headers("daily"))),
            status => {
                crate::observe::quota_denied(if status == Status::CostExceedsLimit {
                    "cost_exceeds_limit"
                } else {
                    "spent"
                });
                tracing::info!(key = %self.0.key_id, cost, "{QUOTA_EXCEEDED_MESSAGE}");
                Err(ApiError::QuotaExceeded {
                    headers: decision.headers("daily"),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn keys_are_read_from_all_three_forms() {
        let raw = presented_key(&headers(&[("authorization", "sapi_abc")])).unwrap();
        assert_eq!(raw, ("sapi_abc".into(), AuthMethod::RawAuthorization));
        let bearer = presented_key(&headers(&[("authorization", "Bearer sapi_abc")])).unwrap();
        assert_eq!(bearer, ("sapi_abc".into(), AuthMethod::Bearer));
        let x = presented_key(&headers(&[("x-api-key", "sapi_abc")])).unwrap();
        assert_eq!(x, ("sapi_abc".into(), AuthMethod::XApiKey));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for pairs in [
            vec![],
            vec![("authorization", "")],
            vec![("authorization", "Basic dXNlcjpwYXNz")],
            vec![("authorization", "Bearer ")],
        ] {
            assert!(matches!(
                presented_key(&headers(&pairs)),
                Err(ApiError::Unauthorized(..))
            ));
        }
        let long = "a".repeat(MAX_KEY_LEN + 1);
        assert!(presented_key(&headers(&[("authorization", &long)])).is_err());
    }

    #[test]
    fn the_cache_expires_bounds_itself_and_forgets_revoked_ids() {
        let cache = KeyCache::new(Duration::from_secs(60), 2);
        let row = KeyRow {
            id: "k1".into(),
            key_hash: "h1".into(),
            service: "s".into(),
            daily_quota: None,
            signing_secret: None,
            created_at: 0,
            expires_at: None,
            revoked_at: None,
        };
        cache.put("h1".into(), Some(row));
        cache.put("h2".into(), None);
        assert_eq!(cache.get("h2"), Some(None));
        // A flood of unknown keys fills only the unknown cache: the known key stays.
        for i in 0..1_000 {
            cache.put(format!("unknown-{i}"), None);
        }
        assert_eq!(cache.len(), (1, 2));
        assert!(cache.get("h1").is_some_and(|row| row.is_some()));
        cache.put("h1b".into(), cache.get("h1").flatten());
        cache.forget_id("k1");
        assert_eq!(cache.get("h1"), None);
        assert_eq!(cache.get("h1b"), None);

        let expired = KeyCache::new(Duration::ZERO, 8);
        expired.put("h".into(), None);
        assert_eq!(expired.get("h"), None);
    }
}
