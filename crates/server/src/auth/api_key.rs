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

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use quota::Status;
use serde::Serialize;

use crate::error::{ApiError, QUOTA_EXCEEDED_MESSAGE};
use crate::state::AppState;
use crate::store::KeyRow;

/// Longest header value considered as a key; anything longer is refused unread.
pub const MAX_KEY_LEN: usize = 256;

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
#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, (Instant, Option<KeyRow>)>>,
}

impl KeyCache {
    /// A cache keeping answers for `ttl`, at most `capacity` of them.
    #[must_use]
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Option<KeyRow>)>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts
        // and removes), so a poisoned lock is still usable.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached answer for `hash`, if fresh.
    pub fn get(&self, hash: &str) -> Option<Option<KeyRow>> {
        let mut entries = self.lock();
        match entries.get(hash) {
            Some((at, row)) if at.elapsed() < self.ttl => Some(row.clone()),
            Some(_) => {
                entries.remove(hash);
                None
            }
            None => None,
        }
    }

    /// Remembers the answer for `hash`.
    pub fn put(&self, hash: String, row: Option<KeyRow>) {
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= self.capacity {
                // Still full of fresh entries (a flood of distinct keys): start over rather
                // than grow. The cost is a database lookup per key, never a wrong answer.
                entries.clear();
            }
        }
        entries.insert(hash, (Instant::now(), row));
    }

    /// Forgets every cached answer for the key `id` (after a revocation on this instance).
    pub fn forget_id(&self, id: &str) {
        self.lock()
            .retain(|_, (_, row)| row.as_ref().is_none_or(|r| r.id != id));
    }
}

/// The presented key and how it was presented, from the request headers.
pub fn presented_key(headers: &HeaderMap) -> Result<(String, AuthMethod), ApiError> {
    let missing = ApiError::unauthorized(
        "missing_key",
        "missing API key: send Authorization: <key>, Authorization: Bearer <key> or X-API-Key",
    );
    let (value, method) = if let Some(value) = headers.get("x-api-key") {
        (value, AuthMethod::XApiKey)
    } else if let Some(value) = headers.get(header::AUTHORIZATION) {
        (value, AuthMethod::RawAuthorization)
    } else {
        return Err(missing);
    };
    if value.len() > MAX_KEY_LEN {
        return Err(ApiError::unauthorized("malformed_key", "invalid API key"));
    }
    let text = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed_key", "invalid API key"))?
        .trim();
    // `Bearer` with nothing after it (the header value is trimmed) names no key.
    if method == AuthMethod::RawAuthorization && text.eq_ignore_ascii_case("bearer") {
        return Err(missing);
    }
    let (key, method) = match text.split_once(' ') {
        Some((scheme, rest)) if method == AuthMethod::RawAuthorization => {
            if scheme.eq_ignore_ascii_case("bearer") {
                (rest.trim(), AuthMethod::Bearer)
            } else {
                return Err(ApiError::unauthorized("malformed_key", "invalid API key"));
            }
        }
        _ => (text, method),
    };
    if key.is_empty() {
        return Err(missing);
    }
    Ok((key.to_owned(), method))
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
        if let Some(row) = &row {
            self.sync_quota_override(row)?;
        }
        self.key_cache.put(hash, row.clone());
        Ok(row)
    }

    /// Makes the quota backend use this key's own daily limit.
    pub fn sync_quota_override(&self, row: &KeyRow) -> Result<(), ApiError> {
        let quota = self.keys.daily_quota(row);
        let limit = (quota != self.settings.default_daily_quota)
            .then(|| NonZeroU64::new(quota))
            .flatten();
        self.quota.set_override(&row.id, limit)
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
    let principal = if crate::auth::signed::is_signed(req.headers()) {
        crate::auth::signed::authenticate(&state, &mut req).await?
    } else {
        state.authenticate_key(req.headers()).await?
    };
    crate::observe::record_key(&principal.key_id);
    tracing::debug!(key = %principal.key_id, method = ?principal.method, "authenticated");
    req.extensions_mut().insert(principal);
    next.call(req).await
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
        cache.put("h3".into(), None);
        assert!(cache.lock().len() <= 2);
        cache.put("h1b".into(), cache.get("h1").flatten());
        cache.forget_id("k1");
        assert_eq!(cache.get("h1"), None);

        let expired = KeyCache::new(Duration::ZERO, 8);
        expired.put("h".into(), None);
        assert_eq!(expired.get("h"), None);
    }
}
