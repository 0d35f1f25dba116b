//! The lifecycle of API keys: create, list, revoke, rotate. Shared by the CLI and `/admin/keys`.
//!
//! Keys come from `apikey-gen` (`sapi_<time><body><checksum>`); only their peppered hash and
//! non-secret id are stored. A signing key also gets a random HMAC secret, shown once and
//! stored sealed (see [`secret_key::Sealer`]).

use serde::Serialize;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use apikey_gen::{KeyConfig, KeyHasher};
use secret_key::Sealer;

use crate::audit::{Action, Actor, AuditLog, GivenId, Refusal};
use crate::auth::scope::Scopes;
use crate::clock::Clock;
use crate::error::ApiError;
use crate::key_limits::{
    CreditsSpec, KeyLimits, LimitError, RateLimitSpec, check_monthly_quota, credits_columns,
    rate_columns, stored,
};
use crate::store::{AuditRow, Db, KeyChange, KeyRow, StoreError};

/// The prefix of every key this server issues.
pub const KEY_PREFIX: &str = "sapi";
/// Admin tokens use the API key format with this prefix.
pub const ADMIN_PREFIX: &str = "sadm";
/// Longest accepted service name.
pub const SERVICE_MAX: usize = 64;
/// Longest accepted expiry, in days (100 years).
pub const EXPIRES_MAX_DAYS: u32 = 36_500;
/// Largest accepted daily quota.
pub const DAILY_QUOTA_MAX: u64 = 1_000_000_000;
/// Bytes of a signing secret.
pub const SIGNING_SECRET_LEN: usize = 32;
/// Longest accepted key name and owner, in characters.
pub const LABEL_MAX: usize = 128;
/// Largest accepted `meta` object, in bytes of its compact JSON.
pub const META_MAX_BYTES: usize = 4_096;
/// Most hours a rotated key keeps working.
pub const MAX_GRACE_HOURS: u32 = 720;

/// What an operator records about a key, none of it secret: it is shown wherever the key is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KeyMetadata {
    /// A display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Who the key belongs to, as an id in the operator's systems (a customer or user id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Anything else, as a JSON object of at most 4 KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub meta: Option<Map<String, Value>>,
}

impl KeyMetadata {
    fn of(row: &KeyRow) -> Self {
        Self {
            name: row.name.clone(),
            owner: row.owner.clone(),
            // Only this module writes the column, always an object; anything else reads as none.
            meta: row
                .meta
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok()),
        }
    }
}

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
    /// Name, owner and meta, where given.
    #[serde(flatten)]
    pub metadata: KeyMetadata,
    /// Rate limit, monthly quota and credits, where set.
    #[serde(flatten)]
    pub limits: KeyLimits,
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
            .field("metadata", &self.metadata)
            .field("limits", &self.limits)
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
    /// Name, owner and meta, where given.
    #[serde(flatten)]
    pub metadata: KeyMetadata,
    /// Rate limit, monthly quota and credits, where set.
    #[serde(flatten)]
    pub limits: KeyLimits,
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
    /// A display name: 1 to 128 characters, no control characters.
    pub name: Option<String>,
    /// The owner's id in the operator's systems: 1 to 128 characters, no control characters.
    pub owner: Option<String>,
    /// A JSON object of at most 4 KiB (compact).
    pub meta: Option<Value>,
    /// A rate limit beside the daily quota.
    pub rate_limit: Option<RateLimitSpec>,
    /// Calls per UTC calendar month.
    pub monthly_quota: Option<u64>,
    /// A balance of uses, granted at creation, and its refill; without it, uses are
    /// unlimited.
    pub credits: Option<CreditsSpec>,
}

/// Changes to a stored key: each field that is `Some` is set, `Some(None)` clearing it, and the
/// others are left as they are. Values follow [`NewKey`]'s rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyUpdate {
    /// What the key may call.
    pub scopes: Option<Scopes>,
    /// Calls per UTC day; `Some(None)` for the server's default.
    pub daily_quota: Option<Option<u64>>,
    /// Days from now until the key expires; `Some(None)` for never.
    pub expires_in_days: Option<Option<u32>>,
    /// A display name.
    pub name: Option<Option<String>>,
    /// The owner's id.
    pub owner: Option<Option<String>>,
    /// A JSON object.
    pub meta: Option<Option<Value>>,
    /// The rate limit, replaced whole; `Some(None)` for none.
    pub rate_limit: Option<Option<RateLimitSpec>>,
    /// Calls per UTC calendar month; `Some(None)` for no monthly quota.
    pub monthly_quota: Option<Option<u64>>,
    /// A new balance of credits, granted now (what was left of the old one is forgotten), and
    /// its refill; `Some(None)` for no credits (unlimited uses).
    pub credits: Option<Option<CreditsSpec>>,
}

impl KeyUpdate {
    /// The names of the fields it changes, as in the request body; for logs (values may be
    /// personal data, so they are not logged).
    #[must_use]
    pub fn fields(&self) -> Vec<&'static str> {
        [
            ("scopes", self.scopes.is_some()),
            ("daily_quota", self.daily_quota.is_some()),
            ("expires_in_days", self.expires_in_days.is_some()),
            ("name", self.name.is_some()),
            ("owner", self.owner.is_some()),
            ("meta", self.meta.is_some()),
            ("rate_limit", self.rate_limit.is_some()),
            ("monthly_quota", self.monthly_quota.is_some()),
            ("credits", self.credits.is_some()),
        ]
        .into_iter()
        .filter_map(|(field, given)| given.then_some(field))
        .collect()
    }
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
    audit: AuditLog,
    config: KeyConfig,
    sealer: Sealer,
    default_daily_quota: u64,
    default_scopes: Scopes,
}

/// Why a key is not rotated again.
const ROTATED: &str = "this key was rotated already (or is revoked at the end of a grace period): rotate its successor";

/// The refusal of a change to a key that is unknown, revoked or expired.
fn no_active_key() -> KeyAdminError {
    KeyAdminError::invalid("id", "names no active key (unknown, revoked or expired)")
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
    /// The key was rotated already, or is being revoked: its successor is the one to rotate.
    #[error("{ROTATED}")]
    Rotated,
    /// A generated key collided with a stored one (astronomically unlikely); try again.
    #[error("key collision; try again")]
    Collision,
    /// The key format or generator failed.
    #[error(transparent)]
    Key(#[from] apikey_gen::Error),
    /// Sealing a signing secret failed (the operating system's random number generator).
    #[error("sealing the signing secret failed")]
    Seal(#[source] secret_key::Error),
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

impl From<LimitError> for KeyAdminError {
    fn from(error: LimitError) -> Self {
        Self::Invalid {
            field: error.field,
            reason: error.reason,
        }
    }
}

impl Refusal for KeyAdminError {
    fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Invalid { .. } | Self::NotFound(_) | Self::Rotated
        )
    }
}

impl From<KeyAdminError> for ApiError {
    fn from(error: KeyAdminError) -> Self {
        match error {
            KeyAdminError::Invalid { field, reason } => Self::Validation { field, reason },
            KeyAdminError::NotFound(what) => Self::NotFound(what),
            KeyAdminError::Rotated => Self::Conflict(ROTATED),
            KeyAdminError::Collision => Self::Conflict("key collision; try again"),
            KeyAdminError::Key(e) => Self::internal(e),
            KeyAdminError::Seal(e) => Self::internal(e),
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
    refuse_secret("service", service)
}

/// Refuses free text that holds a key, an admin token or a signing secret: the audit log and
/// the log lines carry names, labels and services.
fn refuse_secret(field: &'static str, text: &str) -> Result<(), KeyAdminError> {
    if holds_secret(text) {
        return Err(KeyAdminError::invalid(field, HOLDS_SECRET));
    }
    Ok(())
}

/// Why free text that holds a secret is refused.
const HOLDS_SECRET: &str =
    "holds an API key, admin token or signing secret; never put a secret here";

/// Whether `text` holds an API key, an admin token or a signing secret
/// ([`crate::observe::holds_secret_of`]).
#[must_use]
pub fn holds_secret(text: &str) -> bool {
    crate::observe::holds_secret_of(text, &[KEY_PREFIX, ADMIN_PREFIX])
}

/// What is wrong with the characters of a name, owner or label, if anything: a control,
/// invisible or direction-changing character, or a secret.
#[must_use]
pub fn label_refusal(label: &str) -> Option<&'static str> {
    if label
        .chars()
        .any(|c| c.is_control() || is_invisible_format(c))
    {
        return Some("may not contain control, invisible or direction-changing characters");
    }
    holds_secret(label).then_some(HOLDS_SECRET)
}

/// Checks a daily quota and returns its stored form.
fn stored_quota(quota: u64) -> Result<i64, KeyAdminError> {
    if !(1..=DAILY_QUOTA_MAX).contains(&quota) {
        return Err(KeyAdminError::invalid(
            "daily_quota",
            format!("must be between 1 and {DAILY_QUOTA_MAX}"),
        ));
    }
    Ok(i64::try_from(quota).unwrap_or(i64::MAX))
}

/// Checks an expiry in days and returns the time it ends, counted from `now`.
fn expiry(days: u32, now: i64) -> Result<i64, KeyAdminError> {
    if !(1..=EXPIRES_MAX_DAYS).contains(&days) {
        return Err(KeyAdminError::invalid(
            "expires_in_days",
            format!("must be between 1 and {EXPIRES_MAX_DAYS}"),
        ));
    }
    Ok(now.saturating_add(i64::from(days) * 86_400))
}

/// Checks a name or owner: 1 to [`LABEL_MAX`] characters, none of them a control, invisible or
/// direction-changing character, and no secret in them.
fn checked_label(field: &'static str, label: &str) -> Result<String, KeyAdminError> {
    if !(1..=LABEL_MAX).contains(&label.chars().count()) {
        return Err(KeyAdminError::invalid(
            field,
            format!("must be 1 to {LABEL_MAX} characters long"),
        ));
    }
    if let Some(reason) = label_refusal(label) {
        return Err(KeyAdminError::invalid(field, reason));
    }
    Ok(label.to_owned())
}

/// Zero-width and bidirectional formatting characters: invisible in a name or label, and able
/// to make one read as another (U+202E turns the rest of a line around).
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Checks `meta` and returns its stored form, its compact JSON.
fn stored_meta(meta: &Value) -> Result<String, KeyAdminError> {
    if !meta.is_object() {
        return Err(KeyAdminError::invalid("meta", "must be a JSON object"));
    }
    let text = meta.to_string();
    if text.len() > META_MAX_BYTES {
        return Err(KeyAdminError::invalid(
            "meta",
            format!(
                "must be at most {META_MAX_BYTES} bytes as compact JSON, not {}",
                text.len()
            ),
        ));
    }
    Ok(text)
}

/// Checks a rate limit, returning it as given.
fn checked_rate(spec: &RateLimitSpec) -> Result<&RateLimitSpec, KeyAdminError> {
    spec.check()?;
    Ok(spec)
}

/// Checks a monthly quota and returns its stored form.
fn stored_monthly_quota(quota: u64) -> Result<i64, KeyAdminError> {
    check_monthly_quota(quota)?;
    Ok(stored(quota))
}

/// Checks credits, returning them as given.
fn checked_credits(spec: &CreditsSpec) -> Result<&CreditsSpec, KeyAdminError> {
    spec.check()?;
    Ok(spec)
}

/// Applies `check` to the value of a field that is given (`Some`), set or cleared.
fn checked_change<T, U>(
    field: Option<&Option<T>>,
    check: impl FnOnce(&T) -> Result<U, KeyAdminError>,
) -> Result<Option<Option<U>>, KeyAdminError> {
    field
        .map(|value| value.as_ref().map(check).transpose())
        .transpose()
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
        audit: AuditLog,
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
            audit,
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
            metadata: KeyMetadata::of(row),
            limits: KeyLimits::of(row),
        }
    }

    fn prepare(&self, new: &NewKey, now: i64) -> Result<(KeyRow, CreatedKey), KeyAdminError> {
        validate_service(&new.service)?;
        let stored_daily_quota = new.daily_quota.map(stored_quota).transpose()?;
        let expires_at = new
            .expires_in_days
            .map(|days| expiry(days, now))
            .transpose()?;
        let name = new
            .name
            .as_deref()
            .map(|name| checked_label("name", name))
            .transpose()?;
        let owner = new
            .owner
            .as_deref()
            .map(|owner| checked_label("owner", owner))
            .transpose()?;
        let meta = new.meta.as_ref().map(stored_meta).transpose()?;
        let rate_limit = new.rate_limit.as_ref().map(checked_rate).transpose()?;
        let monthly_quota = new.monthly_quota.map(stored_monthly_quota).transpose()?;
        let credits = new.credits.as_ref().map(checked_credits).transpose()?;
        let (rate_limit, rate_period, rate_burst) = rate_columns(rate_limit);
        let (credits, credits_refill, credits_interval, credits_set_at) =
            credits_columns(credits, now);
        let generated = self.config.generate()?;
        let (key, hash, id) = generated.into_parts();
        let id = id.as_str().to_owned();
        let signing_secret = new.signing.then(|| {
            let mut bytes = Zeroizing::new([0u8; SIGNING_SECRET_LEN]);
            rand::fill(&mut bytes[..]);
            Zeroizing::new(hex::encode(&bytes[..]))
        });
        let daily_quota = new.daily_quota.unwrap_or(self.default_daily_quota);
        let scopes = new.scopes.unwrap_or(self.default_scopes);
        let row = KeyRow {
            id: id.clone(),
            key_hash: hash.to_hex(),
            service: new.service.clone(),
            daily_quota: stored_daily_quota,
            signing_secret: signing_secret
                .as_ref()
                .map(|s| self.sealer.seal(&id, s.as_bytes()))
                .transpose()
                .map_err(KeyAdminError::Seal)?,
            created_at: now,
            expires_at,
            revoked_at: None,
            quota_id: None,
            scopes: Some(scopes.to_stored()),
            name,
            owner,
            meta,
            rate_limit,
            rate_period,
            rate_burst,
            monthly_quota,
            credits,
            credits_refill,
            credits_interval,
            credits_set_at,
        };
        let created = CreatedKey {
            id,
            key: key.expose_secret().to_owned(),
            service: new.service.clone(),
            daily_quota,
            scopes,
            signing_secret: signing_secret.map(|s| s.to_string()),
            expires_at,
            metadata: KeyMetadata::of(&row),
            limits: KeyLimits::of(&row),
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
        let id = self.checked_id(&GivenId::of(&self.config, id))?;
        self.db
            .find_key(id)
            .await?
            .ok_or(KeyAdminError::NotFound("no key with this id"))
    }

    /// The id to look up, or why there is none: text no id has is no key, and a key given as
    /// its own id is refused (never echoed, and never sent to the store).
    fn checked_id<'a>(&self, given: &GivenId<'a>) -> Result<&'a str, KeyAdminError> {
        self.checked_id_or(given, || KeyAdminError::NotFound("no key with this id"))
    }

    /// [`checked_id`](Self::checked_id), with `unknown` for text no id has.
    fn checked_id_or<'a>(
        &self,
        given: &GivenId<'a>,
        unknown: impl FnOnce() -> KeyAdminError,
    ) -> Result<&'a str, KeyAdminError> {
        match *given {
            GivenId::Id(id) => Ok(id),
            GivenId::NotAnId => Err(unknown()),
            GivenId::Secret => Err(KeyAdminError::invalid(
                "id",
                "is a key itself, not a key id: give the key's id (`sapi_...` and 12 hex \
                 digits), as `keys list` and `GET /admin/keys` show it",
            )),
        }
    }

    /// Creates and stores a key, recorded in the audit log as done by `actor`.
    pub async fn create(&self, new: &NewKey, actor: &Actor) -> Result<CreatedKey, KeyAdminError> {
        let mut entry = self.audit.entry(actor, Action::KeyCreate, None);
        let result = self.create_recorded(new, &mut entry).await;
        self.audit.finish(entry, result).await
    }

    async fn create_recorded(
        &self,
        new: &NewKey,
        entry: &mut AuditRow,
    ) -> Result<CreatedKey, KeyAdminError> {
        let (row, created) = self.prepare(new, self.clock.now())?;
        entry.target = Some(row.id.clone());
        let detail =
            json!({ "service": row.service, "scopes": created.scopes, "signing": new.signing });
        entry.detail = Some(detail.to_string());
        match self.db.insert_key(&row, entry).await {
            Ok(()) => Ok(created),
            Err(StoreError::Conflict) => Err(KeyAdminError::Collision),
            Err(e) => Err(e.into()),
        }
    }

    /// The key `id`, active or not, as listed.
    pub async fn get(&self, id: &str) -> Result<KeyInfo, KeyAdminError> {
        let row = self.find(id).await?;
        Ok(self.info(&row, self.clock.now()))
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

    /// Revokes the key `id` now, recorded in the audit log as done by `actor`.
    pub async fn revoke(&self, id: &str, actor: &Actor) -> Result<(), KeyAdminError> {
        let given = GivenId::of(&self.config, id);
        let entry = self
            .audit
            .entry(actor, Action::KeyRevoke, Some(given.target()));
        let result = async {
            let id = self.checked_id(&given)?;
            match self.db.revoke_key(id, self.clock.now(), &entry).await? {
                true => Ok(()),
                false => Err(KeyAdminError::NotFound("no key with this id")),
            }
        }
        .await;
        self.audit.finish(entry, result).await
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
                Ok(opened) if opened.is_stale() => {
                    let again = self
                        .sealer
                        .seal(&row.id, opened.expose_secret())
                        .map_err(KeyAdminError::Seal)?;
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

    /// Changes the key `id` as `update` says, in one write after every field is checked, and
    /// returns it as it is now. An unknown, revoked or expired key is refused as the invalid
    /// `id`. Every instance applies the change within the key cache TTL. Recorded in the audit
    /// log as done by `actor`, with the names of the fields changed (never their values).
    pub async fn update(
        &self,
        id: &str,
        update: &KeyUpdate,
        actor: &Actor,
    ) -> Result<KeyInfo, KeyAdminError> {
        let given = GivenId::of(&self.config, id);
        let mut entry = self
            .audit
            .entry(actor, Action::KeyUpdate, Some(given.target()));
        entry.detail = Some(json!({ "changed": update.fields() }).to_string());
        let result = async {
            let id = self.checked_id_or(&given, no_active_key)?;
            self.update_recorded(id, update, &entry).await
        }
        .await;
        self.audit.finish(entry, result).await
    }

    async fn update_recorded(
        &self,
        id: &str,
        update: &KeyUpdate,
        entry: &AuditRow,
    ) -> Result<KeyInfo, KeyAdminError> {
        let now = self.clock.now();
        let mut change = KeyChange {
            scopes: update.scopes.map(|scopes| scopes.to_stored()),
            daily_quota: checked_change(update.daily_quota.as_ref(), |&q| stored_quota(q))?,
            expires_at: checked_change(update.expires_in_days.as_ref(), |&d| expiry(d, now))?,
            name: checked_change(update.name.as_ref(), |name| checked_label("name", name))?,
            owner: checked_change(update.owner.as_ref(), |o| checked_label("owner", o))?,
            meta: checked_change(update.meta.as_ref(), stored_meta)?,
            monthly_quota: checked_change(update.monthly_quota.as_ref(), |&q| {
                stored_monthly_quota(q)
            })?,
            ..KeyChange::default()
        };
        // A rate limit is its three columns, credits their four: set or cleared together.
        if let Some(rate_limit) = &update.rate_limit {
            let spec = rate_limit.as_ref().map(checked_rate).transpose()?;
            let (limit, period, burst) = rate_columns(spec);
            change.rate_limit = Some(limit);
            change.rate_period = Some(period);
            change.rate_burst = Some(burst);
        }
        if let Some(credits) = &update.credits {
            let spec = credits.as_ref().map(checked_credits).transpose()?;
            let (balance, refill, interval, set_at) = credits_columns(spec, now);
            change.credits = Some(balance);
            change.credits_refill = Some(refill);
            change.credits_interval = Some(interval);
            change.credits_set_at = Some(set_at);
        }
        if !self.db.update_key(id, &change, now, entry).await? {
            return Err(no_active_key());
        }
        Ok(self.info(&self.find(id).await?, now))
    }

    /// Replaces the key `id` with a new one for the same service, quota, scopes, signing, expiry,
    /// metadata and limits; the old key keeps working for `grace_hours` (at most
    /// [`MAX_GRACE_HOURS`]). Both spend one daily quota, the one the first key of the chain
    /// started, and one balance of credits (the same grant). Recorded in the audit log as done
    /// by `actor`, with the successor's id.
    pub async fn rotate(
        &self,
        id: &str,
        grace_hours: u32,
        actor: &Actor,
    ) -> Result<CreatedKey, KeyAdminError> {
        let given = GivenId::of(&self.config, id);
        let mut entry = self
            .audit
            .entry(actor, Action::KeyRotate, Some(given.target()));
        let result = async {
            let id = self.checked_id(&given)?;
            self.rotate_recorded(id, grace_hours, &mut entry).await
        }
        .await;
        self.audit.finish(entry, result).await
    }

    async fn rotate_recorded(
        &self,
        id: &str,
        grace_hours: u32,
        entry: &mut AuditRow,
    ) -> Result<CreatedKey, KeyAdminError> {
        if grace_hours > MAX_GRACE_HOURS {
            return Err(KeyAdminError::invalid(
                "grace_hours",
                format!("must be at most {MAX_GRACE_HOURS}"),
            ));
        }
        let grace_secs = i64::from(grace_hours) * 3_600;
        let now = self.clock.now();
        let old = self
            .db
            .find_key(id)
            .await?
            .filter(|row| row.is_active(now))
            .ok_or(KeyAdminError::NotFound("no active key with this id"))?;
        // A key in its grace period has its successor already: rotating it again would make a
        // second one that nobody asked for.
        if old.revoked_at.is_some() {
            return Err(KeyAdminError::Rotated);
        }
        let new = NewKey {
            service: old.service.clone(),
            daily_quota: old.daily_quota.and_then(|q| u64::try_from(q).ok()),
            scopes: Some(Scopes::from_stored(old.scopes.as_deref())),
            signing: old.signing_secret.is_some(),
            name: old.name.clone(),
            owner: old.owner.clone(),
            meta: KeyMetadata::of(&old).meta.map(Value::Object),
            ..NewKey::default()
        };
        let (mut row, mut created) = self.prepare(&new, now)?;
        // The successor expires when its predecessor would have, to the second: a rotation
        // never lengthens a key's life.
        row.expires_at = old.expires_at;
        created.expires_at = old.expires_at;
        // The successor continues its predecessor's day: one quota for the whole chain.
        row.quota_id = Some(old.quota_subject().to_owned());
        // And its limits as they are, credits included: the same balance, granted at the same
        // time, so it spends what is left of it rather than starting afresh.
        row.rate_limit = old.rate_limit;
        row.rate_period.clone_from(&old.rate_period);
        row.rate_burst = old.rate_burst;
        row.monthly_quota = old.monthly_quota;
        row.credits = old.credits;
        row.credits_refill = old.credits_refill;
        row.credits_interval.clone_from(&old.credits_interval);
        row.credits_set_at = old.credits_set_at;
        created.limits = KeyLimits::of(&row);
        entry.detail = Some(json!({ "successor": row.id, "grace_hours": grace_hours }).to_string());
        match self
            .db
            .rotate_key(&old.id, &row, now.saturating_add(grace_secs), entry)
            .await
        {
            Ok(true) => Ok(created),
            Ok(false) => {
                // No successor was stored: the refusal names none.
                entry.detail = None;
                Err(KeyAdminError::Rotated)
            }
            Err(StoreError::Conflict) => Err(KeyAdminError::Collision),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use secret_key::SecretKey;

    use super::*;
    use crate::key_limits::{CreditsInfo, RatePeriod, Refill, RefillInterval};

    async fn manager(clock: &Clock) -> (Db, KeyManager) {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let sealer = Sealer::new(&SecretKey::generate().unwrap(), "test").unwrap();
        let defaults = KeyDefaults {
            daily_quota: 1_000,
            scopes: Scopes::ANY,
        };
        let keys = KeyManager::new(
            db.clone(),
            clock.clone(),
            AuditLog::new(db.clone(), clock.clone()),
            &[9u8; 32],
            sealer,
            defaults,
        );
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
            ..NewKey::default()
        };
        let created = keys.create(&new, &Actor::cli()).await.unwrap();
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
            keys.sealer()
                .open(&row.id, &sealed)
                .unwrap()
                .expose_secret(),
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
            .create(
                &NewKey {
                    service: "svc".into(),
                    scopes: Some(time_only),
                    ..NewKey::default()
                },
                &Actor::cli(),
            )
            .await
            .unwrap();
        clock.set(100);
        let new = keys.rotate(&old.id, 1, &Actor::cli()).await.unwrap();
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
            keys.rotate("sapi_nope", 0, &Actor::cli()).await,
            Err(KeyAdminError::NotFound(_))
        ));
    }

    #[actix_web::test]
    async fn a_rotation_keeps_the_expiry_to_the_second_and_happens_once() {
        let clock = Clock::manual(0);
        let (db, keys) = manager(&clock).await;
        let new = NewKey {
            service: "svc".into(),
            expires_in_days: Some(1),
            ..NewKey::default()
        };
        let old = keys.create(&new, &Actor::cli()).await.unwrap();
        clock.set(86_000);
        let successor = keys.rotate(&old.id, 1, &Actor::cli()).await.unwrap();
        assert_eq!(successor.expires_at, Some(86_400));
        let row = db.find_key(&successor.id).await.unwrap().unwrap();
        assert_eq!(row.expires_at, Some(86_400), "not a day from the rotation");
        // The old key, in its grace period, has its successor: a second rotation (a retry, a
        // double click) makes no other.
        assert!(matches!(
            keys.rotate(&old.id, 1, &Actor::cli()).await,
            Err(KeyAdminError::Rotated)
        ));
        assert_eq!(keys.list().await.unwrap().len(), 2);
        let refused = db.list_audit(None, 1).await.unwrap().remove(0);
        assert_eq!(
            (refused.action.as_str(), refused.outcome.as_str()),
            ("key.rotate", "refused")
        );
    }

    #[actix_web::test]
    async fn a_key_given_as_an_id_is_refused_and_never_recorded() {
        let (db, keys) = manager(&Clock::manual(0)).await;
        let new = NewKey {
            service: "svc".into(),
            ..NewKey::default()
        };
        let created = keys.create(&new, &Actor::cli()).await.unwrap();
        let change = KeyUpdate {
            name: Some(Some("x".into())),
            ..KeyUpdate::default()
        };
        // An operator pastes the key itself where its id goes.
        let refusals = [
            keys.revoke(&created.key, &Actor::cli()).await.err(),
            keys.rotate(&created.key, 0, &Actor::cli()).await.err(),
            keys.update(&created.key, &change, &Actor::cli())
                .await
                .err(),
            keys.get(&created.key).await.err(),
        ];
        for refused in refusals {
            let Some(KeyAdminError::Invalid {
                field: "id",
                reason,
            }) = refused
            else {
                panic!("{refused:?}");
            };
            assert!(reason.contains("is a key itself"), "{reason}");
            assert!(!reason.contains(&created.key));
        }
        // Text no id has reaches no store (PostgreSQL refuses a NUL in text) nor the log: a
        // secret of another kind (an admin token), a mistyped key, control characters.
        let mistyped = format!("{}x", created.key);
        let token = KeyConfig::new("sadm")
            .unwrap()
            .generate()
            .unwrap()
            .key()
            .expose_secret()
            .to_owned();
        for given in [
            "a\0b",
            "x\u{1b}[8m",
            "",
            &"k".repeat(200),
            &mistyped,
            &token,
        ] {
            assert!(matches!(
                keys.revoke(given, &Actor::cli()).await,
                Err(KeyAdminError::NotFound(_))
            ));
            assert!(matches!(
                keys.get(given).await,
                Err(KeyAdminError::NotFound(_))
            ));
        }
        let entries = db.list_audit(None, 50).await.unwrap();
        assert_eq!(
            entries.len(),
            10,
            "create, 3 refused with the key, 6 refused revokes"
        );
        for entry in &entries {
            let target = entry.target.as_deref().unwrap_or_default();
            let shown = format!("{entry:?}");
            assert!(
                !shown.contains(&created.key) && !shown.contains(&token),
                "{shown}"
            );
            assert!(
                [
                    created.id.as_str(),
                    crate::audit::NOT_AN_ID,
                    crate::audit::A_SECRET
                ]
                .contains(&target),
                "{target}"
            );
        }
        // The key still works: nothing was revoked.
        assert!(keys.find(&created.id).await.unwrap().is_active(0));
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
        let sealer = Sealer::new(&SecretKey::generate().unwrap(), "test").unwrap();
        let keys = KeyManager::new(
            db.clone(),
            clock.clone(),
            AuditLog::new(db.clone(), clock),
            &[9u8; 32],
            sealer,
            defaults,
        )
        .unwrap();
        let new = NewKey {
            service: "svc".into(),
            ..NewKey::default()
        };
        let created = keys.create(&new, &Actor::cli()).await.unwrap();
        assert_eq!(created.scopes, time_only);
        let stored = db.find_key(&created.id).await.unwrap().unwrap();
        assert_eq!(stored.scopes.as_deref(), Some("time:read"));

        let any = KeyUpdate {
            scopes: Some(Scopes::ANY),
            ..KeyUpdate::default()
        };
        let changed = keys.update(&created.id, &any, &Actor::cli()).await.unwrap();
        assert_eq!(changed.scopes, Scopes::ANY);
        assert_eq!(keys.list().await.unwrap()[0].scopes, Scopes::ANY);
        let unchanged = keys
            .update(&created.id, &KeyUpdate::default(), &Actor::cli())
            .await;
        assert_eq!(unchanged.unwrap().scopes, Scopes::ANY);
        keys.revoke(&created.id, &Actor::cli()).await.unwrap();
        for id in ["sapi_nope", created.id.as_str()] {
            for update in [&any, &KeyUpdate::default()] {
                assert!(matches!(
                    keys.update(id, update, &Actor::cli()).await,
                    Err(KeyAdminError::Invalid { field: "id", .. })
                ));
            }
        }
        // The refused change stored nothing.
        let stored = db.find_key(&created.id).await.unwrap().unwrap();
        assert_eq!(stored.scopes.as_deref(), Some("*"));
    }

    #[actix_web::test]
    async fn metadata_quota_and_expiry_are_set_changed_cleared_and_kept_by_rotation() {
        let clock = Clock::manual(1_000);
        let (db, keys) = manager(&clock).await;
        let created = keys
            .create(
                &NewKey {
                    service: "shop".into(),
                    name: Some("Checkout, EU".into()),
                    owner: Some("cus_42".into()),
                    meta: Some(serde_json::json!({"plan": "pro", "seats": 3})),
                    ..NewKey::default()
                },
                &Actor::cli(),
            )
            .await
            .unwrap();
        assert_eq!(created.metadata.name.as_deref(), Some("Checkout, EU"));
        let stored = db.find_key(&created.id).await.unwrap().unwrap();
        assert_eq!(stored.meta.as_deref(), Some(r#"{"plan":"pro","seats":3}"#));

        let change = KeyUpdate {
            daily_quota: Some(Some(7)),
            expires_in_days: Some(Some(2)),
            owner: Some(Some("cus_43".into())),
            meta: Some(None),
            ..KeyUpdate::default()
        };
        let info = keys
            .update(&created.id, &change, &Actor::cli())
            .await
            .unwrap();
        assert_eq!(info.daily_quota, 7);
        assert_eq!(info.expires_at, Some(1_000 + 2 * 86_400));
        assert_eq!(info.metadata.name.as_deref(), Some("Checkout, EU"), "kept");
        assert_eq!(info.metadata.owner.as_deref(), Some("cus_43"));
        assert_eq!(info.metadata.meta, None);
        let back = KeyUpdate {
            daily_quota: Some(None),
            expires_in_days: Some(None),
            ..KeyUpdate::default()
        };
        let info = keys
            .update(&created.id, &back, &Actor::cli())
            .await
            .unwrap();
        assert_eq!((info.daily_quota, info.expires_at), (1_000, None));

        // One bad field refuses the whole change: nothing is written.
        let before = db.find_key(&created.id).await.unwrap().unwrap();
        let big = serde_json::json!({"blob": "x".repeat(META_MAX_BYTES)});
        for (bad, field) in [
            (Some(Some(serde_json::json!([1, 2]))), "meta"),
            (Some(Some(big)), "meta"),
        ] {
            let update = KeyUpdate {
                name: Some(Some("renamed".into())),
                meta: bad,
                ..KeyUpdate::default()
            };
            let refused = keys.update(&created.id, &update, &Actor::cli()).await;
            assert!(
                matches!(&refused, Err(KeyAdminError::Invalid { field: f, .. }) if *f == field),
                "{refused:?}"
            );
        }
        for (update, field) in [
            (
                KeyUpdate {
                    name: Some(Some(String::new())),
                    ..KeyUpdate::default()
                },
                "name",
            ),
            (
                KeyUpdate {
                    owner: Some(Some("a\nb".into())),
                    ..KeyUpdate::default()
                },
                "owner",
            ),
            (
                KeyUpdate {
                    scopes: Some(Scopes::ANY),
                    daily_quota: Some(Some(0)),
                    ..KeyUpdate::default()
                },
                "daily_quota",
            ),
            (
                KeyUpdate {
                    expires_in_days: Some(Some(EXPIRES_MAX_DAYS + 1)),
                    ..KeyUpdate::default()
                },
                "expires_in_days",
            ),
        ] {
            let refused = keys.update(&created.id, &update, &Actor::cli()).await;
            assert!(
                matches!(&refused, Err(KeyAdminError::Invalid { field: f, .. }) if *f == field),
                "{refused:?}"
            );
        }
        assert_eq!(db.find_key(&created.id).await.unwrap().unwrap(), before);

        let rotated = keys.rotate(&created.id, 0, &Actor::cli()).await.unwrap();
        assert_eq!(rotated.metadata, KeyMetadata::of(&before));
        assert_eq!(rotated.daily_quota, 1_000);
    }

    fn rate(limit: u64, per: RatePeriod, burst: Option<u64>) -> RateLimitSpec {
        RateLimitSpec { limit, per, burst }
    }

    fn credits(remaining: u64, refill: Option<(u64, RefillInterval)>) -> CreditsSpec {
        CreditsSpec {
            remaining,
            refill: refill.map(|(amount, interval)| Refill { amount, interval }),
        }
    }

    /// The eight limit columns of a stored key.
    type LimitColumns = (
        Option<i64>,
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<i64>,
    );

    fn limit_columns(row: &KeyRow) -> LimitColumns {
        (
            row.rate_limit,
            row.rate_period.clone(),
            row.rate_burst,
            row.monthly_quota,
            row.credits,
            row.credits_refill,
            row.credits_interval.clone(),
            row.credits_set_at,
        )
    }

    #[actix_web::test]
    async fn limits_are_set_changed_cleared_and_kept_by_rotation() {
        let clock = Clock::manual(1_000);
        let (db, keys) = manager(&clock).await;
        let created = keys
            .create(
                &NewKey {
                    service: "metered".into(),
                    rate_limit: Some(rate(10, RatePeriod::Second, None)),
                    monthly_quota: Some(100_000),
                    credits: Some(credits(500, Some((100, RefillInterval::Day)))),
                    ..NewKey::default()
                },
                &Actor::cli(),
            )
            .await
            .unwrap();
        assert_eq!(
            created.limits.rate_limit,
            Some(rate(10, RatePeriod::Second, Some(10))),
            "shown with the burst filled in"
        );
        assert_eq!(created.limits.monthly_quota, Some(100_000));
        assert_eq!(
            created.limits.credits.map(|c| (c.granted, c.granted_at)),
            Some((500, 1_000))
        );
        let stored = db.find_key(&created.id).await.unwrap().unwrap();
        assert_eq!(
            limit_columns(&stored),
            (
                Some(10),
                Some("second".into()),
                None,
                Some(100_000),
                Some(500),
                Some(100),
                Some("day".into()),
                Some(1_000)
            )
        );

        // A new rate limit replaces the old whole; the credits are left as they are.
        clock.set(2_000);
        let faster = KeyUpdate {
            rate_limit: Some(Some(rate(600, RatePeriod::Minute, Some(50)))),
            ..KeyUpdate::default()
        };
        let info = keys
            .update(&created.id, &faster, &Actor::cli())
            .await
            .unwrap();
        assert_eq!(
            info.limits.rate_limit,
            Some(rate(600, RatePeriod::Minute, Some(50)))
        );
        assert_eq!(info.limits.credits, created.limits.credits);
        // New credits are a new grant, at the time of the change; without a refill, none.
        clock.set(3_000);
        let regrant = KeyUpdate {
            credits: Some(Some(credits(0, None))),
            monthly_quota: Some(None),
            ..KeyUpdate::default()
        };
        let info = keys
            .update(&created.id, &regrant, &Actor::cli())
            .await
            .unwrap();
        assert_eq!(
            info.limits.credits,
            Some(CreditsInfo {
                granted: 0,
                granted_at: 3_000,
                refill: None
            })
        );
        assert_eq!(info.limits.monthly_quota, None);
        let stored = db.find_key(&created.id).await.unwrap().unwrap();
        let expected = (
            Some(600),
            Some("minute".into()),
            Some(50),
            None,
            Some(0),
            None,
            None,
            Some(3_000),
        );
        assert_eq!(limit_columns(&stored), expected);

        // A rotation keeps every limit, and the same grant of credits.
        clock.set(4_000);
        let rotated = keys.rotate(&created.id, 0, &Actor::cli()).await.unwrap();
        assert_eq!(rotated.limits, KeyLimits::of(&stored));
        let successor = db.find_key(&rotated.id).await.unwrap().unwrap();
        assert_eq!(limit_columns(&successor), expected);

        // Cleared, each is all NULL but the credits' generation, kept so that a grant right
        // after is a generation of its own.
        let clear = KeyUpdate {
            rate_limit: Some(None),
            credits: Some(None),
            ..KeyUpdate::default()
        };
        let info = keys
            .update(&rotated.id, &clear, &Actor::cli())
            .await
            .unwrap();
        assert_eq!(info.limits, KeyLimits::default());
        let cleared = db.find_key(&rotated.id).await.unwrap().unwrap();
        let generation = limit_columns(&successor).7;
        assert!(generation.is_some());
        assert_eq!(
            limit_columns(&cleared),
            (None, None, None, None, None, None, None, generation)
        );

        // The audit log names the fields each change touched.
        let details: Vec<_> = db
            .list_audit(None, 10)
            .await
            .unwrap()
            .into_iter()
            .filter(|row| row.action == "key.update")
            .map(|row| row.detail.unwrap_or_default())
            .collect();
        assert_eq!(
            details,
            [
                r#"{"changed":["rate_limit","credits"]}"#,
                r#"{"changed":["monthly_quota","credits"]}"#,
                r#"{"changed":["rate_limit"]}"#,
            ]
        );
    }

    #[actix_web::test]
    async fn bad_limits_are_refused_with_the_field_and_change_nothing() {
        let (db, keys) = manager(&Clock::manual(0)).await;
        let created = keys
            .create(
                &NewKey {
                    service: "s".into(),
                    credits: Some(credits(5, None)),
                    ..NewKey::default()
                },
                &Actor::cli(),
            )
            .await
            .unwrap();
        let before = db.find_key(&created.id).await.unwrap().unwrap();
        let big = 1 << 53;
        // A rate limit, a monthly quota and credits, and the field that is refused.
        type Bad = (
            Option<RateLimitSpec>,
            Option<u64>,
            Option<CreditsSpec>,
            &'static str,
        );
        let bad: [Bad; 9] = [
            (
                Some(rate(0, RatePeriod::Second, None)),
                None,
                None,
                "rate_limit.limit",
            ),
            (
                Some(rate(10, RatePeriod::Second, Some(0))),
                None,
                None,
                "rate_limit.burst",
            ),
            (
                Some(rate(1_000_001, RatePeriod::Second, Some(10))),
                None,
                None,
                "rate_limit.limit",
            ),
            (
                Some(rate(10, RatePeriod::Hour, Some(1_000_001))),
                None,
                None,
                "rate_limit.burst",
            ),
            (None, Some(0), None, "monthly_quota"),
            (None, Some(big), None, "monthly_quota"),
            (None, None, Some(credits(big, None)), "credits.remaining"),
            (
                None,
                None,
                Some(credits(1, Some((0, RefillInterval::Month)))),
                "credits.refill.amount",
            ),
            (
                None,
                None,
                Some(credits(1, Some((big, RefillInterval::Day)))),
                "credits.refill.amount",
            ),
        ];
        for (rate_limit, monthly_quota, credits, field) in bad {
            let new = NewKey {
                service: "s".into(),
                rate_limit,
                monthly_quota,
                credits,
                ..NewKey::default()
            };
            let refused = keys.create(&new, &Actor::cli()).await;
            assert!(
                matches!(&refused, Err(KeyAdminError::Invalid { field: f, .. }) if *f == field),
                "{refused:?}"
            );
            // With a good change beside it, the whole update is refused.
            let update = KeyUpdate {
                name: Some(Some("renamed".into())),
                rate_limit: rate_limit.map(Some),
                monthly_quota: monthly_quota.map(Some),
                credits: credits.map(Some),
                ..KeyUpdate::default()
            };
            let refused = keys.update(&created.id, &update, &Actor::cli()).await;
            assert!(
                matches!(&refused, Err(KeyAdminError::Invalid { field: f, .. }) if *f == field),
                "{refused:?}"
            );
        }
        assert_eq!(db.count_keys().await.unwrap(), 1);
        assert_eq!(db.find_key(&created.id).await.unwrap().unwrap(), before);
        assert_eq!(
            KeyUpdate {
                rate_limit: Some(None),
                monthly_quota: Some(Some(1)),
                credits: Some(None),
                ..KeyUpdate::default()
            }
            .fields(),
            ["rate_limit", "monthly_quota", "credits"]
        );
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
            match keys.create(&new, &Actor::cli()).await {
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
