//! API-key authentication: `apikey-gen`'s middleware over the key table.
//!
//! A key is accepted as `Authorization: <key>` (the original's raw form),
//! `Authorization: Bearer <key>`, or `X-API-Key: <key>`. A request carrying `X-API-Signature`
//! is a signed service-to-service call instead (see [`crate::auth::signed`]).
//!
//! The key's format and checksum are checked offline first, so garbage never reaches the
//! database. Then its peppered hash is looked up in `apikey-gen`'s caches and, on a miss, in the
//! database. A cached answer lives `key_cache_ttl` (5 s by default): a revocation takes effect
//! on every instance within that time.

use std::future::Future;
use std::time::Duration;

use apikey_gen::{
    ApiKeyAuth, Authenticator, Error as KeyError, KeyConfig, KeyHash, KeyHasher, KeyRecord,
    KeyStore, Refusal, Rejection,
};

use crate::auth::principal::KeyIdentity;
use crate::clock::Clock;
use crate::error::ApiError;
use crate::store::{Db, StoreError};

/// Longest header value considered as a key; anything longer is refused unread.
pub const MAX_KEY_LEN: usize = apikey_gen::MAX_PRESENTED_LEN;
/// Keys of each kind (known, unknown) the authentication cache holds at most.
pub const KEY_CACHE_CAPACITY: usize = 100_000;

/// The key table as `apikey-gen` reads it: by hash, with expiry and revocation. A key being
/// rotated out (revoked at a time still to come) expires then.
#[derive(Debug, Clone)]
pub struct KeyTable {
    db: Db,
    default_quota: u64,
}

impl KeyTable {
    /// The keys in `db`; keys without a quota of their own get `default_quota`.
    #[must_use]
    pub fn new(db: Db, default_quota: u64) -> Self {
        Self { db, default_quota }
    }
}

impl KeyStore for KeyTable {
    type Identity = KeyIdentity;
    type Error = StoreError;

    fn lookup(
        &self,
        hash: &KeyHash,
    ) -> impl Future<Output = Result<Option<KeyRecord<KeyIdentity>>, StoreError>> + Send {
        let hash = hash.to_hex();
        async move {
            let Some(row) = self.db.find_key_by_hash(&hash).await? else {
                return Ok(None);
            };
            let unix = |t: i64| u64::try_from(t).unwrap_or(0);
            let ends = match (row.expires_at, row.revoked_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let record = KeyRecord::active(KeyIdentity::of(&row, self.default_quota));
            Ok(Some(match ends {
                Some(at) => record.expires_at(unix(at)),
                None => record,
            }))
        }
    }

    fn rehash(
        &self,
        old: &KeyHash,
        new: &KeyHash,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let (old, new) = (old.to_hex(), new.to_hex());
        async move {
            let moved = self.db.rehash_key(&old, &new).await?;
            if moved {
                tracing::info!("API key re-hashed under the current server secret");
            }
            Ok(moved)
        }
    }
}

/// The API-key middleware as the server uses it.
pub type KeyAuth = ApiKeyAuth<KeyTable, Clock>;

/// `apikey-gen`'s middleware over `table`: requests that carry `X-API-Signature`, or RFC
/// 9421's `Signature-Input` or `Signature`, go on to the signature check instead. Keys hashed
/// under a `fallbacks` pepper (a rotated-out server secret) authenticate and are re-hashed
/// under the current one. Refusals answer in the server's problem shape.
///
/// # Errors
/// `apikey-gen`'s, for an invalid cache capacity.
pub fn key_auth(
    config: KeyConfig,
    fallbacks: Vec<KeyHasher>,
    table: KeyTable,
    clock: Clock,
    ttl: Duration,
) -> Result<KeyAuth, KeyError> {
    let authenticator = Authenticator::builder(config, table)
        .fallback_hashers(fallbacks)
        .clock(clock)
        .cache_ttl(ttl)
        .known_capacity(KEY_CACHE_CAPACITY)
        .unknown_capacity(KEY_CACHE_CAPACITY)
        .build()?;
    Ok(ApiKeyAuth::builder(authenticator)
        .skip_when_header(request_signing::HEADER_SIGNATURE)
        .skip_when_header(request_signing::rfc9421::HEADER_SIGNATURE_INPUT)
        .skip_when_header(request_signing::rfc9421::HEADER_SIGNATURE)
        .on_refusal(|refusal: Refusal<'_>| Rejection::from(key_error(refusal.error)))
        .build())
}

/// The server's answer to a key that does not authenticate.
fn key_error(error: &KeyError) -> ApiError {
    match error {
        KeyError::MissingKey => ApiError::unauthorized(
            "missing_key",
            "missing API key: send Authorization: <key>, Authorization: Bearer <key> or X-API-Key",
        ),
        KeyError::MalformedHeader { .. } => {
            ApiError::unauthorized("malformed_key", "invalid API key")
        }
        KeyError::RevokedKey | KeyError::ExpiredKey => {
            ApiError::unauthorized("revoked_key", "API key revoked or expired")
        }
        KeyError::StoreUnavailable { .. } => {
            crate::observe::database_error();
            crate::observe::throttled_error("key lookup failed", &error);
            ApiError::Unavailable {
                detail: "the database is unavailable; try again shortly",
                retry_after: Some(1),
            }
        }
        // A wrong prefix, length, character or checksum: no such key was ever issued.
        _ => ApiError::unauthorized("unknown_key", "unknown API key"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Action, Actor, AuditLog};
    use crate::store::KeyRow;
    #[test]
    fn refusals_name_the_reason_and_never_the_key() {
        let reason = |error: KeyError| match key_error(&error) {
            ApiError::Unauthorized(reason, detail) => {
                assert!(!detail.contains("sapi_"), "{detail}");
                reason
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(reason(KeyError::MissingKey), "missing_key");
        assert_eq!(reason(KeyError::ChecksumMismatch), "unknown_key");
        assert_eq!(reason(KeyError::UnknownKey), "unknown_key");
        assert_eq!(reason(KeyError::ExpiredKey), "revoked_key");
        let outage = key_error(&KeyError::StoreUnavailable {
            reason: "pool timed out".into(),
        });
        assert!(matches!(outage, ApiError::Unavailable { .. }), "{outage:?}");
    }

    #[actix_web::test]
    async fn a_key_being_rotated_out_expires_at_its_revocation() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let row = |id: &str, expires_at, revoked_at| KeyRow {
            id: id.into(),
            key_hash: format!("{:0>64}", id.len()),
            service: "s".into(),
            daily_quota: None,
            signing_secret: Some("sealed".into()),
            created_at: 0,
            expires_at,
            revoked_at,
            quota_id: None,
            scopes: None,
            name: None,
            owner: None,
            meta: None,
            ..KeyRow::default()
        };
        let table = KeyTable::new(db.clone(), 7);
        for (stored, ends) in [
            (row("k", None, None), None),
            (row("kk", Some(500), Some(300)), Some(300)),
            (row("kkk", None, Some(900)), Some(900)),
        ] {
            let audit = AuditLog::new(db.clone(), Clock::manual(0));
            let entry = audit.entry(&Actor::cli(), Action::KeyCreate, Some(&stored.id));
            db.insert_key(&stored, &entry).await.unwrap();
            let hash = KeyHash::from_hex(&stored.key_hash).unwrap();
            let found = table.lookup(&hash).await.unwrap().unwrap();
            let identity = KeyIdentity::of(&stored, 7);
            assert_eq!(identity.daily_quota(), 7);
            assert!(identity.must_sign());
            let expected = KeyRecord::active(identity);
            let expected = match ends {
                Some(at) => expected.expires_at(at),
                None => expected,
            };
            assert_eq!(found, expected, "{}", stored.id);
        }
        let unknown = KeyHash::from_hex(&"f".repeat(64)).unwrap();
        assert_eq!(table.lookup(&unknown).await.unwrap(), None);
    }
}
