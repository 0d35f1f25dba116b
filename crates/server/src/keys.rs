//! The lifecycle of API keys: create, list, revoke, rotate. Shared by the CLI and `/admin/keys`.
//!
//! Keys come from `apikey-gen` (`sapi_<time><body><checksum>`); only their peppered hash and
//! non-secret id are stored. A signing key also gets a random HMAC secret, shown once and
//! stored sealed (see [`crate::sealing`]).

use serde::Serialize;
use zeroize::Zeroizing;

use apikey_gen::{KeyConfig, KeyHasher};

use crate::auth::scope::Scopes;
use crate::clock::Clock;
use crate::error::ApiError;
use crate::sealing::Sealer;
use crate::store::{Db, KeyRow, StoreError};

/// The prefix of every key this server issues.
pub const KEY_PREFIX: &str = "sapi";
/// Longest accepted service name.
pub const SERVICE_MAX: usize = 64;
/// Longest accepted expiry, in days (100 years).
pub const EXPIRES_MAX_DAYS: u32 = 36_500;
/// Largest accepted daily quota.
pub const DAILY_QUOTA_MAX: u64 = 1_000_000_000;
/// Bytes of a signing secret.
pub const SIGNING_SECRET_LEN: usize = 32;

/// A key just created: the only moment the key (and signing secret) exist in clear. It is the
/// body of `POST /admin/keys` and the output of `keys create --json`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    /// Non-secret key id.
    pub id: String,
    /// The API key. Shown once; only its hash is stored.
    pub key: String,
    /// The owning service.
    pub service: String,
    /// Calls per UTC day.
    pub daily_quota: u64,
    /// What the key may call.
    pub scopes: Scopes,
    /// For signing keys, the HMAC secret (hex). Shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
    /// Expiry (unix seconds), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey")
            .field("id", &self.id)
            .field("key", &"[redacted]")
            .field("service", &self.service)
            .field("daily_quota", &self.daily_quota)
            .field("scopes", &self.scopes)
            .field(
                "signing_secret",
                &self.signing_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Drop for CreatedKey {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.key.zeroize();
        if let Some(secret) = &mut self.signing_secret {
            secret.zeroize();
        }
    }
}

/// A key as listed: never the key, never the secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    /// Non-secret key id.
    pub id: String,
    /// The owning service.
    pub service: String,
    /// Calls per UTC day.
    pub daily_quota: u64,
    /// What the key may call.
    pub scopes: Scopes,
    /// Whether requests with this key must be signed.
    pub signing: bool,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// Expiry (unix seconds), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Revocation time (unix seconds), if revoked or scheduled for revocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    /// `active`, `expired` or `revoked` at the time of listing.
    pub status: &'static str,
}

/// Options for a new key.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    /// The owning service.
    pub service: String,
    /// Calls per UTC day, or the default.
    pub daily_quota: Option<u64>,
    /// What the key may call, or the default.
    pub scopes: Option<Scopes>,
    /// Whether to create a signing secret.
    pub signing: bool,
    /// Days until expiry.
    pub expires_in_days: Option<u32>,
}

/// Changes to a stored key: each field that is `Some` is set, the others are left as they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyUpdate {
    /// What the key may call.
    pub scopes: Option<Scopes>,
}

/// What a key created without its own gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyDefaults {
    /// Calls per UTC day.
    pub daily_quota: u64,
    /// Scopes (`*` unless the server is configured otherwise).
    pub scopes: Scopes,
}

/// Creates and manages the keys in the database.
#[derive(Debug, Clone)]
pub struct KeyManager {
    db: Db,
    clock: Clock,
    config: KeyConfig,
    sealer: Sealer,
    default_daily_quota: u64,
    default_scopes: Scopes,
}

/// Why creating, listing, revoking or rotating a key failed. (Not `KeyError`: that would read
/// as `apikey_gen::Error`, for a presented key that does not authenticate.)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyAdminError {
    /// A request field that breaks a rule; `field` names which.
    #[error("{field} {reason}")]
    Invalid {
        /// The field, as named in the request body.
        field: &'static str,
        /// The rule it breaks.
        reason: String,
    },
    /// No key, or no active key, with this id.
    #[error("{0}")]
    NotFound(&'static str),
    /// A generated key collided with a stored one (astronomically unlikely); try again.
    #[error("key collision; try again")]
    Collision,
    /// The key format or generator failed.
    #[error(transparent)]
    Key(#[from] apikey_gen::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl KeyAdminError {
    fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

impl From<KeyAdminError> for ApiError {
    fn from(error: KeyAdminError) -> Self {
        match error {
            KeyAdminError::Invalid { field, reason } => Self::Validation { field, reason },
            KeyAdminError::NotFound(what) => Self::NotFound(what),
            KeyAdminError::Collision => Self::Conflict("key collision; try again"),
            KeyAdminError::Key(e) => Self::internal(e),
            KeyAdminError::Store(e) => e.into(),
        }
    }
}

/// Checks a service name: 1 to 64 of ASCII letters, digits, `_`, `.` and `-`.
pub fn validate_service(service: &str) -> Result<(), KeyAdminError> {
    if service.is_empty() || service.len() > SERVICE_MAX {
        return Err(KeyAdminError::invalid(
            "service",
            format!("must be 1 to {SERVICE_MAX} characters long"),
        ));
    }
    if !service
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(KeyAdminError::invalid(
            "service",
            "may contain only ASCII letters, digits, '_', '.' and '-'",
        ));
    }
    Ok(())
}

impl KeyManager {
    /// The keys in `db`, hashed with `pepper`, signing secrets sealed with `sealer`, times
    /// read from `clock`. A key created without a quota or scopes of its own gets the defaults.
    ///
    /// # Errors
    /// `apikey-gen`'s, for a pepper it does not accept.
    pub fn new(
        db: Db,
        clock: Clock,
        pepper: &[u8],
        sealer: Sealer,
        defaults: KeyDefaults,
    ) -> Result<Self, KeyAdminError> {
        let config = KeyConfig::new(KEY_PREFIX)?
            .with_timestamp(true)
            .with_hasher(KeyHasher::hmac_sha256(pepper)?);
        Ok(Self {
            db,
            clock,
            config,
            sealer,
            default_daily_quota: defaults.daily_quota,
            default_scopes: defaults.scopes,
        })
    }

    /// The key format and hasher.
    #[must_use]
    pub fn config(&self) -> &KeyConfig {
        &self.config
    }

    /// The sealer for signing secrets.
    #[must_use]
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The quota of a stored key.
    #[must_use]
    pub fn daily_quota(&self, row: &KeyRow) -> u64 {
        row.daily_quota
            .and_then(|q| u64::try_from(q).ok())
            .unwrap_or(self.default_daily_quota)
    }

    /// What a listing shows of a stored key.
    #[must_use]
    pub fn info(&self, row: &KeyRow, now: i64) -> KeyInfo {
        let status = if row.revoked_at.is_some_and(|t| t <= now) {
            "revoked"
        } else if row.expires_at.is_some_and(|t| t <= now) {
            "expired"
        } else {
            "active"
        };
        KeyInfo {
            id: row.id.clone(),
            service: row.service.clone(),
            daily_quota: self.daily_quota(row),
            scopes: Scopes::from_stored(row.scopes.as_deref()),
            signing: row.signing_secret.is_some(),
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            status,
        }
    }

    fn prepare(&self, new: &NewKey, now: i64) -> Result<(KeyRow, CreatedKey), KeyAdminError> {
        validate_service(&new.service)?;
        if let Some(q) = new.daily_quota
            && !(1..=DAILY_QUOTA_MAX).contains(&q)
        {
            return Err(KeyAdminError::invalid(
                "daily_quota",
                format!("must be between 1 and {DAILY_QUOTA_MAX}"),
            ));
        }
        if let Some(days) = new.expires_in_days
            && !(1..=EXPIRES_MAX_DAYS).contains(&days)
        {
            return Err(KeyAdminError::invalid(
                "expires_in_days",
                format!("must be between 1 and {EXPIRES_MAX_DAYS}"),
            ));
        }
        let generated = self.config.generate()?;
        let (key, hash, id) = generated.into_parts();
        let id = id.as_str().to_owned();
        let signing_secret = new.signing.then(|| {
            let mut bytes = Zeroizing::new([0u8; SIGNING_SECRET_LEN]);
            rand::fill(&mut bytes[..]);
            Zeroizing::new(hex::encode(&bytes[..]))
        });
        let expires_at = new
            .expires_in_days
            .map(|days| now.saturating_add(i64::from(days) * 86_400));
        let daily_quota = new.daily_quota.unwrap_or(self.default_daily_quota);
        let scopes = new.scopes.unwrap_or(self.default_scopes);
        let row = KeyRow {
            id: id.clone(),
            key_hash: hash.to_hex(),
            service: new.service.clone(),
            daily_quota: new
                .daily_quota
                .map(|q| i64::try_from(q).unwrap_or(i64::MAX)),
            signing_secret: signing_secret
                .as_ref()
                .map(|s| self.sealer.seal(&id, s.as_bytes())),
            created_at: now,
            expires_at,
            revoked_at: None,
            quota_id: None,
            scopes: Some(scopes.to_stored()),
        };
        let created = CreatedKey {
            id,
            key: key.expose_secret().to_owned(),
            service: new.service.clone(),
            daily_quota,
            scopes,
            signing_secret: signing_secret.map(|s| s.to_string()),
            expires_at,
        };
        Ok((row, created))
    }

    /// The quota every key without its own gets.
    #[must_use]
    pub fn default_daily_quota(&self) -> u64 {
        self.default_daily_quota
    }

    /// The database the keys live in.
    #[must_use]
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The stored key `id`, active or not.
    pub async fn find(&self, id: &str) -> Result<KeyRow, KeyAdminError> {
        self.db
            .find_key(id)
            .await?
            .ok_or(KeyAdminError::NotFound("no key with this id"))
    }

    /// Creates and stores a key.
    pub async fn create(&self, new: &NewKey) -> Result<CreatedKey, KeyAdminError> {
        let (row, created) = self.prepare(new, self.clock.now())?;
        match self.db.insert_key(&row).await {
            Ok(()) => Ok(created),
            Err(StoreError::Conflict) => Err(KeyAdminError::Collision),
            Err(e) => Err(e.into()),
        }
    }

    /// Every key, as listed.
    pub async fn list(&self) -> Result<Vec<KeyInfo>, KeyAdminError> {
        let now = self.clock.now();
        Ok(self
            .db
            .list_keys()
            .await?
            .iter()
            .map(|row| self.info(row, now))
            .collect())
    }

    /// Revokes the key `id` now.
    pub async fn revoke(&self, id: &str) -> Result<(), KeyAdminError> {
        if self.db.revoke_key(id, self.clock.now()).await? {
            Ok(())
        } else {
            Err(KeyAdminError::NotFound("no key with this id"))
        }
    }

    /// Seals every stored signing secret that is sealed under a fallback server secret again
    /// under the current one (`secure-api secrets rotate`); returns how many were sealed again,
    /// and how many opened with no key the server has (and were left as they are).
    pub async fn reseal_all(&self) -> Result<(usize, usize), KeyAdminError> {
        let (mut resealed, mut unopenable) = (0, 0);
        for row in self.db.list_keys().await? {
            let Some(sealed) = &row.signing_secret else {
                continue;
            };
            match self.sealer.open(&row.id, sealed) {
                Ok(opened) if opened.stale => {
                    let again = self.sealer.seal(&row.id, &opened.secret);
                    if self.db.reseal_signing_secret(&row.id, &again).await? {
                        resealed += 1;
                    }
                }
                Ok(_) => {}
                Err(_) => unopenable += 1,
            }
        }
        Ok((resealed, unopenable))
    }

    /// Changes the key `id` as `update` says, and returns it as it is now. Every instance
    /// applies the change within the key cache TTL.
    pub async fn update(&self, id: &str, update: KeyUpdate) -> Result<KeyInfo, KeyAdminError> {
        let now = self.clock.now();
        let active = match update.scopes {
            Some(scopes) => self.db.set_key_scopes(id, &scopes.to_stored(), now).await?,
            None => self
                .db
                .find_key(id)
                .await?
                .is_some_and(|row| row.is_active(now)),
        };
        if !active {
            return Err(KeyAdminError::invalid(
                "id",
                "names no active key (unknown, revoked or expired)",
            ));
        }
        Ok(self.info(&self.find(id).await?, now))
    }

    /// Replaces the key `id` with a new one for the same service, quota, scopes, signing and expiry;
    /// the old key keeps working for `grace_secs`. Both spend one daily quota, the one the
    /// first key of the chain started.
    pub async fn rotate(&self, id: &str, grace_secs: i64) -> Result<CreatedKey, KeyAdminError> {
        let now = self.clock.now();
        let old = self
            .db
            .find_key(id)
            .await?
            .filter(|row| row.is_active(now))
            .ok_or(KeyAdminError::NotFound("no active key with this id"))?;
        let remaining_days = old.expires_at.map(|t| {
            u32::try_from(((t - now) + 86_399) / 86_400)
                .unwrap_or(EXPIRES_MAX_DAYS)
                .clamp(1, EXPIRES_MAX_DAYS)
        });
        let new = NewKey {
            service: old.service.clone(),
            daily_quota: old.daily_quota.and_then(|q| u64::try_from(q).ok()),
            scopes: Some(Scopes::from_stored(old.scopes.as_deref())),
            signing: old.signing_secret.is_some(),
            expires_in_days: remaining_days,
        };
        let (mut row, created) = self.prepare(&new, now)?;
        // The successor continues its predecessor's day: one quota for the whole chain.
        row.quota_id = Some(old.quota_subject().to_owned());
        match self
            .db
            .rotate_key(&old.id, &row, now.saturating_add(grace_secs.max(0)))
            .await
        {
            Ok(()) => Ok(created),
            Err(StoreError::Conflict) => Err(KeyAdminError::Collision),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn manager(clock: &Clock) -> (Db, KeyManager) {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let sealer = Sealer::new(&[3u8; 32]).unwrap();
        let defaults = KeyDefaults {
            daily_quota: 1_000,
            scopes: Scopes::ANY,
        };
        let keys = KeyManager::new(db.clone(), clock.clone(), &[9u8; 32], sealer, defaults);
        (db, keys.unwrap())
    }

    #[actix_web::test]
    async fn created_keys_are_stored_only_as_hashes_and_parse_back() {
        let (db, keys) = manager(&Clock::manual(1_000)).await;
        let new = NewKey {
            service: "billing".into(),
            daily_quota: Some(50),
            scopes: None,
            signing: true,
            expires_in_days: Some(30),
        };
        let created = keys.create(&new).await.unwrap();
        assert_eq!(created.scopes, Scopes::ANY);
        assert!(created.key.starts_with("sapi_"));
        assert!(keys.config().parse(&created.key).is_ok());
        let secret = created.signing_secret.clone().unwrap();
        assert_eq!(secret.len(), 2 * SIGNING_SECRET_LEN);

        let row = db.find_key(&created.id).await.unwrap().unwrap();
        assert_ne!(row.key_hash, created.key);
        assert!(!row.key_hash.contains(&created.key));
        let sealed = row.signing_secret.clone().unwrap();
        assert!(!sealed.contains(&secret));
        assert_eq!(
            &keys.sealer().open(&row.id, &sealed).unwrap().secret[..],
            secret.as_bytes()
        );
        assert_eq!(row.expires_at, Some(1_000 + 30 * 86_400));
        assert_eq!(
            db.find_key_by_hash(&keys.config().hash(&created.key).to_hex())
                .await
                .unwrap()
                .unwrap()
                .id,
            created.id
        );
        assert!(!format!("{created:?}").contains(&created.key));
    }

    #[actix_web::test]
    async fn rotation_keeps_the_old_key_for_the_grace_period() {
        let clock = Clock::manual(0);
        let (db, keys) = manager(&clock).await;
        let time_only = Scopes::parse(["time:read"]).unwrap();
        let old = keys
            .create(&NewKey {
                service: "svc".into(),
                scopes: Some(time_only),
                ..NewKey::default()
            })
            .await
            .unwrap();
        clock.set(100);
        let new = keys.rotate(&old.id, 3_600).await.unwrap();
        assert_ne!(new.key, old.key);
        assert_eq!(new.scopes, time_only, "a rotation keeps the scopes");
        let old_row = db.find_key(&old.id).await.unwrap().unwrap();
        assert!(old_row.is_active(3_699));
        assert!(!old_row.is_active(3_700));
        assert!(
            db.find_key(&new.id)
                .await
                .unwrap()
                .unwrap()
                .is_active(10_000)
        );
        assert!(matches!(
            keys.rotate("sapi_nope", 0).await,
            Err(KeyAdminError::NotFound(_))
        ));
    }

    #[actix_web::test]
    async fn scopes_default_to_the_servers_and_change_later() {
        let clock = Clock::manual(0);
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let time_only = Scopes::parse(["time:read"]).unwrap();
        let defaults = KeyDefaults {
            daily_quota: 10,
            scopes: time_only,
        };
        let sealer = Sealer::new(&[3u8; 32]).unwrap();
        let keys = KeyManager::new(db.clone(), clock, &[9u8; 32], sealer, defaults).unwrap();
        let new = NewKey {
            service: "svc".into(),
            ..NewKey::default()
        };
        let created = keys.create(&new).await.unwrap();
        assert_eq!(created.scopes, time_only);
        let stored = db.find_key(&created.id).await.unwrap().unwrap();
        assert_eq!(stored.scopes.as_deref(), Some("time:read"));

        let any = KeyUpdate {
            scopes: Some(Scopes::ANY),
        };
        let changed = keys.update(&created.id, any).await.unwrap();
        assert_eq!(changed.scopes, Scopes::ANY);
        assert_eq!(keys.list().await.unwrap()[0].scopes, Scopes::ANY);
        let unchanged = keys.update(&created.id, KeyUpdate::default()).await;
        assert_eq!(unchanged.unwrap().scopes, Scopes::ANY);
        keys.revoke(&created.id).await.unwrap();
        for id in ["sapi_nope", created.id.as_str()] {
            for update in [any, KeyUpdate::default()] {
                assert!(matches!(
                    keys.update(id, update).await,
                    Err(KeyAdminError::Invalid { field: "id", .. })
                ));
            }
        }
        // The refused change stored nothing.
        let stored = db.find_key(&created.id).await.unwrap().unwrap();
        assert_eq!(stored.scopes.as_deref(), Some("*"));
    }

    #[actix_web::test]
    async fn bad_options_are_refused_with_the_field() {
        let (db, keys) = manager(&Clock::manual(0)).await;
        for (new, field) in [
            (
                NewKey {
                    service: "".into(),
                    ..NewKey::default()
                },
                "service",
            ),
            (
                NewKey {
                    service: "a b".into(),
                    ..NewKey::default()
                },
                "service",
            ),
            (
                NewKey {
                    service: "s".into(),
                    daily_quota: Some(0),
                    ..NewKey::default()
                },
                "daily_quota",
            ),
            (
                NewKey {
                    service: "s".into(),
                    expires_in_days: Some(0),
                    ..NewKey::default()
                },
                "expires_in_days",
            ),
        ] {
            match keys.create(&new).await {
                Err(KeyAdminError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!(
                    "expected a validation error on {field}, got {:?}",
                    other.err()
                ),
            }
        }
        assert_eq!(db.count_keys().await.unwrap(), 0);
    }
}
