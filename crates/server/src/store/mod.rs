//! Durable state: users, API keys (as hashes), revoked tokens, admin tokens and quota usage.
//!
//! One schema and one set of queries serve SQLite (the embedded default) and PostgreSQL, chosen
//! by the scheme of `DATABASE_URL`: sqlx's `Any` driver, `$n` placeholders, and only the SQL
//! both accept. Times are unix seconds in `BIGINT` columns.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rusqlite::OptionalExtension as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, Executor, Row, SqlSafeStr};

/// The schema's migrations, embedded in the binary.
///
/// Built here rather than by `sqlx::migrate!`, which would compile all of sqlx a second time as
/// a procedural macro's dependency. Each entry is what the macro makes of its file: the version
/// and description from the file name, the SQL as is, and sqlx's checksum of it (SHA-384), so a
/// database migrated by either keeps working.
fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Each migration's version, description (as in its file name) and SQL, in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/0001_init.sql")),
    (
        2,
        "case insensitive usernames",
        include_str!("../../migrations/0002_case_insensitive_usernames.sql"),
    ),
    (
        3,
        "key quota id",
        include_str!("../../migrations/0003_key_quota_id.sql"),
    ),
    (
        4,
        "admin token lifecycle",
        include_str!("../../migrations/0004_admin_token_lifecycle.sql"),
    ),
    (
        5,
        "quota usage",
        include_str!("../../migrations/0005_quota_usage.sql"),
    ),
    (
        6,
        "key scopes",
        include_str!("../../migrations/0006_key_scopes.sql"),
    ),
    (
        7,
        "key metadata",
        include_str!("../../migrations/0007_key_metadata.sql"),
    ),
    (
        8,
        "audit log",
        include_str!("../../migrations/0008_audit_log.sql"),
    ),
    (
        9,
        "key usage",
        include_str!("../../migrations/0009_key_usage.sql"),
    ),
    (
        10,
        "key limits",
        include_str!("../../migrations/0010_key_limits.sql"),
    ),
];

/// A failure of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The row would violate a uniqueness rule (a taken username, a duplicate key hash).
    #[error("already exists")]
    Conflict,
    /// The database URL has a scheme this server does not support.
    #[error("unsupported database URL scheme `{0}` (use sqlite:// or postgres://)")]
    UnsupportedScheme(String),
    /// The database failed or could not be reached.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// Applying the migrations failed.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Which database engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A user as stored.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Stable user id (the JWT `sub`).
    pub id: String,
    /// The unique login name.
    pub username: String,
    /// The argon2 PHC string.
    pub password_hash: String,
}

/// An API key as stored: never the key itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRow {
    /// Non-secret key id, shown in logs and listings.
    pub id: String,
    /// Hex hash of the key.
    pub key_hash: String,
    /// The service that owns the key.
    pub service: String,
    /// Calls per UTC day, or `None` for the server default.
    pub daily_quota: Option<i64>,
    /// The signing secret, encrypted (hex), for signing keys.
    pub signing_secret: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Expiry time, if any.
    pub expires_at: Option<i64>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
    /// The key whose daily quota this one spends, when it was rotated from it; `None` for
    /// its own.
    pub quota_id: Option<String>,
    /// What the key may call: `*`, or scope names separated by spaces; `None` (a key from
    /// before scopes) for every scope. See [`crate::auth::scope::Scopes::from_stored`].
    pub scopes: Option<String>,
    /// A display name, if given.
    pub name: Option<String>,
    /// Who the key belongs to, as an id in the operator's systems, if given.
    pub owner: Option<String>,
    /// A JSON object (compact text), if given.
    pub meta: Option<String>,
    /// Calls per [`Self::rate_period`]; `None` for no rate limit.
    pub rate_limit: Option<i64>,
    /// `second`, `minute`, `hour` or `day`, with [`Self::rate_limit`].
    pub rate_period: Option<String>,
    /// The most calls at once; `None` for [`Self::rate_limit`].
    pub rate_burst: Option<i64>,
    /// Calls per UTC calendar month; `None` for no monthly quota.
    pub monthly_quota: Option<i64>,
    /// The balance of credits granted at [`Self::credits_set_at`]; `None` for no credits
    /// (unlimited uses).
    pub credits: Option<i64>,
    /// The balance each refill sets; `None` for no refill.
    pub credits_refill: Option<i64>,
    /// `day` or `month` (UTC), with [`Self::credits_refill`].
    pub credits_interval: Option<String>,
    /// When the balance was granted (unix seconds): the generation its spending is counted
    /// under, so a new grant starts afresh.
    pub credits_set_at: Option<i64>,
}

/// A change to a stored key: each field that is `Some` is written, `Some(None)` clearing a
/// column, and the others are left as they are. Values are in [`KeyRow`]'s form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyChange {
    /// [`KeyRow::scopes`].
    pub scopes: Option<String>,
    /// [`KeyRow::daily_quota`].
    pub daily_quota: Option<Option<i64>>,
    /// [`KeyRow::expires_at`].
    pub expires_at: Option<Option<i64>>,
    /// [`KeyRow::name`].
    pub name: Option<Option<String>>,
    /// [`KeyRow::owner`].
    pub owner: Option<Option<String>>,
    /// [`KeyRow::meta`].
    pub meta: Option<Option<String>>,
    /// [`KeyRow::rate_limit`].
    pub rate_limit: Option<Option<i64>>,
    /// [`KeyRow::rate_period`].
    pub rate_period: Option<Option<String>>,
    /// [`KeyRow::rate_burst`].
    pub rate_burst: Option<Option<i64>>,
    /// [`KeyRow::monthly_quota`].
    pub monthly_quota: Option<Option<i64>>,
    /// [`KeyRow::credits`].
    pub credits: Option<Option<i64>>,
    /// [`KeyRow::credits_refill`].
    pub credits_refill: Option<Option<i64>>,
    /// [`KeyRow::credits_interval`].
    pub credits_interval: Option<Option<String>>,
    /// [`KeyRow::credits_set_at`]. A time no later than the one stored is written as the
    /// stored one plus a second: each grant of credits is a generation of its own, even two in
    /// one second. Clearing (`Some(None)`) keeps the stored generation for the next grant.
    pub credits_set_at: Option<Option<i64>>,
}

impl KeyRow {
    /// The id the daily quota is counted under: the first key of this key's rotation chain.
    #[must_use]
    pub fn quota_subject(&self) -> &str {
        self.quota_id.as_deref().unwrap_or(&self.id)
    }

    /// Whether the key may be used at `now`.
    #[must_use]
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none_or(|t| t > now) && self.expires_at.is_none_or(|t| t > now)
    }
}

/// An admin token as stored: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTokenRow {
    /// Non-secret token id.
    pub id: String,
    /// Hex hash of the token.
    pub token_hash: String,
    /// Who or what holds it, if given.
    pub label: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Expiry time, if any.
    pub expires_at: Option<i64>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
}

/// One audit log entry as stored: who did which admin action, on what, how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Sortable id: `aud_`, 16 hex digits of microseconds, 8 random hex digits.
    pub id: String,
    /// When (unix seconds).
    pub at: i64,
    /// Who: an admin token id, `cli` or `first-start`.
    pub actor: String,
    /// What, such as `key.create`.
    pub action: String,
    /// The key or admin token acted on, when known.
    pub target: Option<String>,
    /// The request's id (`X-Request-Id`), for an action over HTTP.
    pub request_id: Option<String>,
    /// `ok`, `refused` or `failed`.
    pub outcome: String,
    /// Why it was refused or failed.
    pub reason: Option<String>,
    /// A small JSON object about the action, as compact text.
    pub detail: Option<String>,
}

/// The database pool and the queries the server runs.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    /// The SQLite file, when the database is one (not in memory).
    file: Option<PathBuf>,
    engine: Engine,
}

/// `SELECT` of every audit log column, then `$rest`: a fixed statement, as sqlx wants.
macro_rules! select_audit {
    ($rest:literal) => {
        concat!(
            "SELECT id, at, actor, action, target, request_id, outcome, reason, detail \
             FROM audit_log ",
            $rest
        )
    };
}

/// `SELECT` of every key column, in the order `key_row` reads them, then `$rest`.
macro_rules! select_keys {
    ($rest:literal) => {
        concat!(
            "SELECT id, key_hash, service, daily_quota, signing_secret, created_at, expires_at, \
             revoked_at, quota_id, scopes, name, owner, meta, rate_limit, rate_period, \
             rate_burst, monthly_quota, credits, credits_refill, credits_interval, \
             credits_set_at FROM api_keys ",
            $rest
        )
    };
}

impl Db {
    /// Connects to `url` (`sqlite://path`, `sqlite::memory:` or `postgres://...`) and applies
    /// the migrations. A SQLite file is created if missing.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let (engine, url) = normalize_url(url)?;
        let options = AnyConnectOptions::from_str(&url)?;
        let mut pool = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(5));
        let file =
            engine == Engine::Sqlite && !url.contains(":memory:") && !url.contains("mode=memory");
        if engine == Engine::Sqlite {
            // An in-memory database exists per connection: keep exactly one.
            let max = if url.contains(":memory:") { 1 } else { 8 };
            pool = pool
                .max_connections(max)
                .min_connections(1)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // WAL lets readers run beside the writer; FULL makes every
                        // acknowledged write survive a crash of the process or the machine.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                        Ok(())
                    })
                });
        } else {
            pool = pool.max_connections(16);
        }
        let pool = pool.connect_with(options.clone()).await?;
        migrator().run(&pool).await?;
        let file = if file {
            Some(
                SqliteConnectOptions::from_str(&url)?
                    .get_filename()
                    .to_owned(),
            )
        } else {
            None
        };
        Ok(Self { pool, file, engine })
    }

    /// The engine behind this store.
    #[must_use]
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection, waiting for queries in flight.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- users ----

    /// Stores a new user; `Conflict` if the username is taken in any case.
    pub async fn insert_user(&self, user: &UserRow, now: i64) -> StoreResult<()> {
        // The unique index on the canonical form settles races; the `NOT EXISTS` also refuses
        // the spellings of names that collided before usernames were case-insensitive.
        let done = sqlx::query(
            "INSERT INTO users (id, username, username_canonical, password_hash, created_at) \
             SELECT $1, $2, $3, $4, $5 \
             WHERE NOT EXISTS (SELECT 1 FROM users WHERE LOWER(username) = $3)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(canonical_username(&user.username))
        .bind(&user.password_hash)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(conflict_or_database)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    /// The user with this username in any case; or, for names that collided before usernames
    /// were case-insensitive, with exactly this username.
    pub async fn find_user(&self, username: &str) -> StoreResult<Option<UserRow>> {
        let row = sqlx::query(
            "SELECT id, username, password_hash FROM users \
             WHERE username_canonical = $1 OR (username_canonical IS NULL AND username = $2)",
        )
        .bind(canonical_username(username))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| UserRow {
            id: row.get(0),
            username: row.get(1),
            password_hash: row.get(2),
        }))
    }

    /// The usernames that collided, ignoring case, when usernames became case-insensitive.
    /// Each logs in with its exact name until an operator renames or deletes all but one.
    pub async fn colliding_usernames(&self) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT username FROM users WHERE username_canonical IS NULL ORDER BY username",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|row| row.get(0)).collect())
    }

    /// The user with this id, if any.
    pub async fn find_user_by_id(&self, id: &str) -> StoreResult<Option<UserRow>> {
        let row = sqlx::query("SELECT id, username, password_hash FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| UserRow {
            id: row.get(0),
            username: row.get(1),
            password_hash: row.get(2),
        }))
    }

    // ---- revoked tokens ----

    /// Records that the token or token family `jti` is revoked until `expires_at`. True for
    /// the one call that revoked it, false if it already was: a refresh token is spent by the
    /// call that gets true, however many race for it.
    pub async fn revoke_token(&self, jti: &str, expires_at: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether the token `jti` or its `family` was revoked.
    pub async fn is_token_revoked(&self, jti: &str, family: &str) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 FROM revoked_tokens WHERE jti = $1 OR jti = $2 LIMIT 1")
            .bind(jti)
            .bind(family)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Forgets revocations of tokens that have expired anyway; returns how many.
    pub async fn purge_revoked_tokens(&self, now: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM revoked_tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    // ---- API keys ----

    /// Stores a new key and the audit entry `audit`, in one transaction; `Conflict` if its id
    /// or hash exists.
    pub async fn insert_key(&self, key: &KeyRow, audit: &AuditRow) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        insert_key_query(key)
            .execute(&mut *tx)
            .await
            .map_err(conflict_or_database)?;
        insert_audit_query(audit).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The key whose hash is `key_hash`, active or not.
    pub async fn find_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<KeyRow>> {
        let row = sqlx::query(select_keys!("WHERE key_hash = $1"))
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(key_row))
    }

    /// The key with this id, active or not.
    pub async fn find_key(&self, id: &str) -> StoreResult<Option<KeyRow>> {
        let row = sqlx::query(select_keys!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(key_row))
    }

    /// Every key, oldest first.
    pub async fn list_keys(&self) -> StoreResult<Vec<KeyRow>> {
        let rows = sqlx::query(select_keys!("ORDER BY created_at, id"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(key_row).collect())
    }

    /// Revokes the key `id` at `at`, unless it was revoked earlier, and records `audit`, in one
    /// transaction. Returns whether the key exists (nothing is written when it does not).
    pub async fn revoke_key(&self, id: &str, at: i64, audit: &AuditRow) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $2 \
             WHERE id = $1 AND (revoked_at IS NULL OR revoked_at > $2)",
        )
        .bind(id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            insert_audit_query(audit).execute(&mut *tx).await?;
            tx.commit().await?;
            return Ok(true);
        }
        // Nothing changed: the key does not exist, or was revoked earlier. Revoking it again
        // succeeds, and its entry says that it changed nothing.
        let exists = sqlx::query("SELECT 1 FROM api_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if exists {
            let unchanged = AuditRow {
                detail: Some(r#"{"already_revoked":true}"#.to_owned()),
                ..audit.clone()
            };
            insert_audit_query(&unchanged).execute(&mut *tx).await?;
            tx.commit().await?;
        }
        Ok(exists)
    }

    /// Stores `new`, schedules the revocation of `old_id` at `old_until` and records `audit`, in
    /// one transaction, and returns whether it did: a key whose revocation is scheduled already
    /// (rotated, or revoked) is left as it is and nothing is written, also when two rotations of
    /// one key race.
    pub async fn rotate_key(
        &self,
        old_id: &str,
        new: &KeyRow,
        old_until: i64,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let scheduled =
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(old_id)
                .bind(old_until)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if scheduled != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_key_query(new)
            .execute(&mut *tx)
            .await
            .map_err(conflict_or_database)?;
        insert_audit_query(audit).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Applies `change` to the key `id` in one statement if the key is active at `now`, with the
    /// audit entry `audit` in the same transaction, and returns whether it was: an unknown,
    /// revoked or expired key is left as it is, and nothing is recorded. An empty change of an
    /// active key writes only its audit entry.
    pub async fn update_key(
        &self,
        id: &str,
        change: &KeyChange,
        now: i64,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        if *change == KeyChange::default() {
            let active = self
                .find_key(id)
                .await?
                .is_some_and(|row| row.is_active(now));
            if active {
                self.insert_audit(audit).await?;
            }
            return Ok(active);
        }
        let mut tx = self.pool.begin().await?;
        // One fixed statement: each column takes its new value where its flag is set.
        let done = sqlx::query(
            "UPDATE api_keys SET \
             scopes = CASE WHEN $3 THEN $4 ELSE scopes END, \
             daily_quota = CASE WHEN $5 THEN $6 ELSE daily_quota END, \
             expires_at = CASE WHEN $7 THEN $8 ELSE expires_at END, \
             name = CASE WHEN $9 THEN $10 ELSE name END, \
             owner = CASE WHEN $11 THEN $12 ELSE owner END, \
             meta = CASE WHEN $13 THEN $14 ELSE meta END, \
             rate_limit = CASE WHEN $15 THEN $16 ELSE rate_limit END, \
             rate_period = CASE WHEN $17 THEN $18 ELSE rate_period END, \
             rate_burst = CASE WHEN $19 THEN $20 ELSE rate_burst END, \
             monthly_quota = CASE WHEN $21 THEN $22 ELSE monthly_quota END, \
             credits = CASE WHEN $23 THEN $24 ELSE credits END, \
             credits_refill = CASE WHEN $25 THEN $26 ELSE credits_refill END, \
             credits_interval = CASE WHEN $27 THEN $28 ELSE credits_interval END, \
             credits_set_at = CASE WHEN NOT $29 THEN credits_set_at \
                 WHEN $30 IS NULL THEN credits_set_at \
                 WHEN credits_set_at IS NOT NULL AND credits_set_at >= $30 \
                 THEN credits_set_at + 1 ELSE $30 END \
             WHERE id = $1 \
             AND (revoked_at IS NULL OR revoked_at > $2) \
             AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(id)
        .bind(now)
        .bind(change.scopes.is_some())
        .bind(change.scopes.clone())
        .bind(change.daily_quota.is_some())
        .bind(change.daily_quota.flatten())
        .bind(change.expires_at.is_some())
        .bind(change.expires_at.flatten())
        .bind(change.name.is_some())
        .bind(change.name.clone().flatten())
        .bind(change.owner.is_some())
        .bind(change.owner.clone().flatten())
        .bind(change.meta.is_some())
        .bind(change.meta.clone().flatten())
        .bind(change.rate_limit.is_some())
        .bind(change.rate_limit.flatten())
        .bind(change.rate_period.is_some())
        .bind(change.rate_period.clone().flatten())
        .bind(change.rate_burst.is_some())
        .bind(change.rate_burst.flatten())
        .bind(change.monthly_quota.is_some())
        .bind(change.monthly_quota.flatten())
        .bind(change.credits.is_some())
        .bind(change.credits.flatten())
        .bind(change.credits_refill.is_some())
        .bind(change.credits_refill.flatten())
        .bind(change.credits_interval.is_some())
        .bind(change.credits_interval.clone().flatten())
        .bind(change.credits_set_at.is_some())
        .bind(change.credits_set_at.flatten())
        .execute(&mut *tx)
        .await?;
        let changed = done.rows_affected() > 0;
        if changed {
            insert_audit_query(audit).execute(&mut *tx).await?;
            tx.commit().await?;
        }
        Ok(changed)
    }

    /// How many keys exist (any state).
    pub async fn count_keys(&self) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM api_keys")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get(0))
    }

    /// Moves the key stored under `old_hash` to `new_hash` (after the server secret was
    /// rotated: the key hashed under a fallback pepper, re-hashed under the current one).
    pub async fn rehash_key(&self, old_hash: &str, new_hash: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE api_keys SET key_hash = $2 WHERE key_hash = $1")
            .bind(old_hash)
            .bind(new_hash)
            .execute(&self.pool)
            .await
            .map_err(conflict_or_database)?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces the sealed signing secret of the key `id` (sealed again under the current
    /// server secret).
    pub async fn reseal_signing_secret(&self, id: &str, sealed: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE api_keys SET signing_secret = $2 WHERE id = $1 AND signing_secret IS NOT NULL",
        )
        .bind(id)
        .bind(sealed)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---- admin tokens ----

    /// Stores an admin token (its hash, never the token) and the audit entry `audit`, in one
    /// transaction.
    pub async fn insert_admin_token(
        &self,
        token: &AdminTokenRow,
        audit: &AuditRow,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO admin_tokens (id, token_hash, label, created_at, expires_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&token.id)
        .bind(&token.token_hash)
        .bind(&token.label)
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(token.revoked_at)
        .execute(&mut *tx)
        .await
        .map_err(conflict_or_database)?;
        insert_audit_query(audit).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The id of the admin token with this hash if it is active at `now`.
    pub async fn find_admin_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<String>> {
        let row = sqlx::query(
            "SELECT id FROM admin_tokens WHERE token_hash = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// Moves the admin token stored under `old_hash` to `new_hash` (see [`Self::rehash_key`]).
    pub async fn rehash_admin_token(&self, old_hash: &str, new_hash: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE admin_tokens SET token_hash = $2 WHERE token_hash = $1")
            .bind(old_hash)
            .bind(new_hash)
            .execute(&self.pool)
            .await
            .map_err(conflict_or_database)?;
        Ok(done.rows_affected() == 1)
    }

    /// Every admin token, oldest first.
    pub async fn list_admin_tokens(&self) -> StoreResult<Vec<AdminTokenRow>> {
        let rows = sqlx::query(
            "SELECT id, token_hash, label, created_at, expires_at, revoked_at FROM admin_tokens \
             ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| AdminTokenRow {
                id: row.get(0),
                token_hash: row.get(1),
                label: row.get(2),
                created_at: row.get(3),
                expires_at: row.get(4),
                revoked_at: row.get(5),
            })
            .collect())
    }

    /// Revokes the admin token `id` at `at` and records `audit`, in one transaction; false (and
    /// nothing written) if there is none, or it already was.
    pub async fn revoke_admin_token(
        &self,
        id: &str,
        at: i64,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE admin_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        let revoked = done.rows_affected() == 1;
        if revoked {
            insert_audit_query(audit).execute(&mut *tx).await?;
            tx.commit().await?;
        }
        Ok(revoked)
    }

    // ---- usage history ----

    /// Adds each row's calls to the history of its key, day and outcome, in one transaction.
    pub async fn add_key_usage(&self, rows: &[KeyUsageRow]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for chunk in rows.chunks(KEY_USAGE_ROWS_PER_STATEMENT) {
            add_key_usage_query(chunk).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The history of the key `key_id` from day `first` to day `last` (both included):
    /// `(day, outcome, calls)`, by day then outcome.
    pub async fn key_usage(
        &self,
        key_id: &str,
        first: i64,
        last: i64,
    ) -> StoreResult<Vec<(i64, String, u64)>> {
        let rows = sqlx::query(
            "SELECT day, outcome, calls FROM key_usage \
             WHERE key_id = $1 AND day >= $2 AND day <= $3 ORDER BY day, outcome",
        )
        .bind(key_id)
        .bind(first)
        .bind(last)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let calls: i64 = row.get(2);
                (row.get(0), row.get(1), u64::try_from(calls).unwrap_or(0))
            })
            .collect())
    }

    /// Deletes the history of days before `before_day`; returns how many rows went.
    pub async fn purge_key_usage(&self, before_day: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM key_usage WHERE day < $1")
            .bind(before_day)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    // ---- audit log ----

    /// Appends one audit entry on its own (a refusal, which changed nothing).
    pub async fn insert_audit(&self, audit: &AuditRow) -> StoreResult<()> {
        insert_audit_query(audit)
            .execute(&self.pool)
            .await
            .map_err(conflict_or_database)?;
        Ok(())
    }

    /// Up to `limit` audit entries, newest first; only those older than the entry `before` when
    /// it is given.
    pub async fn list_audit(&self, before: Option<&str>, limit: i64) -> StoreResult<Vec<AuditRow>> {
        let rows = match before {
            Some(before) => {
                sqlx::query(select_audit!("WHERE id < $1 ORDER BY id DESC LIMIT $2"))
                    .bind(before)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(select_audit!("ORDER BY id DESC LIMIT $1"))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|row| AuditRow {
                id: row.get(0),
                at: row.get(1),
                actor: row.get(2),
                action: row.get(3),
                target: row.get(4),
                request_id: row.get(5),
                outcome: row.get(6),
                reason: row.get(7),
                detail: row.get(8),
            })
            .collect())
    }

    /// How many admin tokens are active at `now`.
    pub async fn count_active_admin_tokens(&self, now: i64) -> StoreResult<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM admin_tokens WHERE revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $1)",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get(0))
    }

    // ---- quota usage ----

    /// The SQLite file behind this store; `None` for PostgreSQL and in-memory SQLite.
    #[must_use]
    pub fn sqlite_file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Adds each `(subject, day, calls)` to the usage stored for that subject on that day (days
    /// since the Unix epoch), in one transaction: all of them or, on an error, none.
    ///
    /// Up to [`USAGE_ROWS_PER_STATEMENT`] rows are one statement, which is its own transaction:
    /// one round trip to the database. More take a transaction of several statements. Each
    /// `(subject, day)` may appear once.
    pub async fn add_quota_usage(&self, rows: &[UsageRow]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        if rows.len() <= USAGE_ROWS_PER_STATEMENT {
            add_usage_query(rows).execute(&self.pool).await?;
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for chunk in rows.chunks(USAGE_ROWS_PER_STATEMENT) {
            add_usage_query(chunk).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Writes the committed transactions of the SQLite WAL into the file and syncs it to the
    /// disk (nothing to do on PostgreSQL, whose commits are on disk already).
    pub async fn checkpoint(&self) -> StoreResult<()> {
        if self.engine == Engine::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// The stored usage of `subject` on `day`: 0 when nothing was charged.
    pub async fn quota_used(&self, subject: &str, day: i64) -> StoreResult<u64> {
        let row = sqlx::query("SELECT used FROM quota_usage WHERE subject = $1 AND day = $2")
            .bind(subject)
            .bind(day)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map_or(0, |row| u64::try_from(row.get::<i64, _>(0)).unwrap_or(0)))
    }

    /// Every stored usage on the days `first..=last`: `(subject, day, calls)`.
    pub async fn quota_usage_between(
        &self,
        first: i64,
        last: i64,
    ) -> StoreResult<Vec<(String, i64, u64)>> {
        let rows =
            sqlx::query("SELECT subject, day, used FROM quota_usage WHERE day >= $1 AND day <= $2")
                .bind(first)
                .bind(last)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let used = u64::try_from(row.get::<i64, _>(2)).unwrap_or(0);
                (row.get(0), row.get(1), used)
            })
            .collect())
    }

    /// The usage of every subject starting with `prefix`, all days added up (lifetime credit
    /// balances, which [`purge_quota_usage`](Self::purge_quota_usage) keeps).
    pub async fn quota_usage_total(&self, prefix: &str) -> StoreResult<Vec<(String, u64)>> {
        let rows = sqlx::query(
            // A sum of BIGINT is NUMERIC on PostgreSQL, which the Any driver cannot read.
            "SELECT subject, CAST(SUM(used) AS BIGINT) FROM quota_usage \
             WHERE substr(subject, 1, $1) = $2 GROUP BY subject",
        )
        .bind(i32::try_from(prefix.len()).unwrap_or(i32::MAX))
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| (row.get(0), u64::try_from(row.get::<i64, _>(1)).unwrap_or(0)))
            .collect())
    }

    /// Deletes the usage of the days before `day`, except the subjects starting with `keep`
    /// (balances that never renew); returns how many rows.
    pub async fn purge_quota_usage(&self, before_day: i64, keep: &str) -> StoreResult<u64> {
        let done =
            sqlx::query("DELETE FROM quota_usage WHERE day < $1 AND substr(subject, 1, $2) <> $3")
                .bind(before_day)
                .bind(i32::try_from(keep.len()).unwrap_or(i32::MAX))
                .bind(keep)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    /// Moves the snapshot `name` into the usage table, in one transaction: adds each
    /// `(subject, day, calls)` of it and deletes the snapshot.
    pub async fn carry_over_snapshot(&self, name: &str, rows: &[UsageRow]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for chunk in rows.chunks(USAGE_ROWS_PER_STATEMENT) {
            add_usage_query(chunk).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM quota_snapshots WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- quota snapshots (before the usage table) ----

    /// Saves the snapshot `name` (replacing the previous one).
    pub async fn save_snapshot(&self, name: &str, taken_at: i64, data: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO quota_snapshots (name, taken_at, data) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET taken_at = excluded.taken_at, data = excluded.data",
        )
        .bind(name)
        .bind(taken_at)
        .bind(data)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The snapshot `name` and when it was taken, if one was saved.
    pub async fn load_snapshot(&self, name: &str) -> StoreResult<Option<(i64, String)>> {
        let row = sqlx::query("SELECT taken_at, data FROM quota_snapshots WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| (row.get(0), row.get(1))))
    }
}

/// Calls charged to a subject on a day: `(subject, day since the Unix epoch, calls)`.
pub type UsageRow = (String, i64, u64);

/// A connection of its own to a SQLite file, for the quota journal's thread, which folds the
/// charge logs into `quota_usage`. Blocking: use it off the async workers.
#[derive(Debug)]
pub struct UsageFile(rusqlite::Connection);

impl UsageFile {
    /// Opens `path`, whose schema [`Db::connect`] has migrated.
    ///
    /// # Errors
    /// SQLite's, when the file cannot be opened or configured.
    pub fn open(path: &Path) -> Result<Self, rusqlite::Error> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
        Ok(Self(conn))
    }

    /// The sequence number of the last charge log folded (0 before the first).
    ///
    /// # Errors
    /// SQLite's.
    pub fn folded(&self) -> Result<u64, rusqlite::Error> {
        let folded: Option<i64> = self
            .0
            .query_row("SELECT folded FROM quota_log WHERE id = 1", [], |row| {
                row.get(0)
            })
            .optional()?;
        Ok(folded.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    /// Adds the charges of the log `seq` (each `(subject, day)` once) and records `seq` as
    /// folded, in one transaction, synced to the disk before it returns. Returns `false`, adding
    /// nothing, when `seq` was folded already (by another connection).
    ///
    /// # Errors
    /// SQLite's; nothing is added then.
    pub fn fold(&mut self, seq: u64, rows: &[UsageRow]) -> Result<bool, rusqlite::Error> {
        // IMMEDIATE takes the write lock first: the check and the writes see the same state.
        let tx = self
            .0
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let folded: Option<i64> = tx
            .query_row("SELECT folded FROM quota_log WHERE id = 1", [], |row| {
                row.get(0)
            })
            .optional()?;
        if folded.is_some_and(|folded| u64::try_from(folded).is_ok_and(|f| f >= seq)) {
            return Ok(false);
        }
        {
            let mut add = tx.prepare(
                "INSERT INTO quota_usage (subject, day, used) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (subject, day) DO UPDATE SET used = quota_usage.used + excluded.used",
            )?;
            for (subject, day, calls) in rows {
                add.execute((subject, day, i64::try_from(*calls).unwrap_or(i64::MAX)))?;
            }
        }
        tx.execute(
            "INSERT INTO quota_log (id, folded) VALUES (1, ?1) \
             ON CONFLICT (id) DO UPDATE SET folded = excluded.folded",
            [i64::try_from(seq).unwrap_or(i64::MAX)],
        )?;
        tx.commit()?;
        Ok(true)
    }
}

/// `(key id, day, outcome, calls)`: calls of one key on one day with one outcome.
pub type KeyUsageRow = (String, i64, &'static str, u64);

/// The most `(subject, day, calls)` rows one statement of [`Db::add_quota_usage`] adds.
pub const USAGE_ROWS_PER_STATEMENT: usize = 64;

/// Appends `rows` tuples of `columns` numbered placeholders: `($1, $2), ($3, $4)`.
fn push_placeholders(sql: &mut String, rows: usize, columns: usize) {
    use std::fmt::Write as _;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            let separator = if column == 0 { "" } else { ", " };
            let _ = write!(sql, "{separator}${}", row * columns + column + 1);
        }
        sql.push(')');
    }
}

/// Adds each row's `calls` to the usage of its `subject` on its `day`: one statement, with
/// each `(subject, day)` at most once (PostgreSQL refuses a statement updating a row twice).
fn add_usage_query(
    rows: &[UsageRow],
) -> sqlx::query::Query<'_, sqlx::Any, <sqlx::Any as sqlx::Database>::Arguments> {
    let mut sql = String::from("INSERT INTO quota_usage (subject, day, used) VALUES ");
    push_placeholders(&mut sql, rows.len(), 3);
    sql.push_str(
        " ON CONFLICT (subject, day) DO UPDATE SET used = quota_usage.used + excluded.used",
    );
    rows.iter().fold(
        sqlx::query(sqlx::AssertSqlSafe(sql)),
        |query, (subject, day, calls)| {
            query
                .bind(subject.as_str())
                .bind(*day)
                .bind(i64::try_from(*calls).unwrap_or(i64::MAX))
        },
    )
}

/// The most `(key, day, outcome, calls)` rows one statement of [`Db::add_key_usage`] adds.
const KEY_USAGE_ROWS_PER_STATEMENT: usize = 64;

/// Adds each row's calls to the usage history of its key, day and outcome: one statement, each
/// `(key, day, outcome)` at most once.
fn add_key_usage_query(
    rows: &[KeyUsageRow],
) -> sqlx::query::Query<'_, sqlx::Any, <sqlx::Any as sqlx::Database>::Arguments> {
    let mut sql = String::from("INSERT INTO key_usage (key_id, day, outcome, calls) VALUES ");
    push_placeholders(&mut sql, rows.len(), 4);
    sql.push_str(
        " ON CONFLICT (key_id, day, outcome) DO UPDATE SET calls = key_usage.calls + excluded.calls",
    );
    rows.iter().fold(
        sqlx::query(sqlx::AssertSqlSafe(sql)),
        |query, (key, day, outcome, calls)| {
            query
                .bind(key.as_str())
                .bind(*day)
                .bind(*outcome)
                .bind(i64::try_from(*calls).unwrap_or(i64::MAX))
        },
    )
}

/// The `INSERT` of one audit entry, for the pool or a transaction.
fn insert_audit_query(
    row: &AuditRow,
) -> sqlx::query::Query<'_, sqlx::Any, <sqlx::Any as sqlx::Database>::Arguments> {
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, action, target, request_id, outcome, reason, \
         detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&row.id)
    .bind(row.at)
    .bind(&row.actor)
    .bind(&row.action)
    .bind(&row.target)
    .bind(&row.request_id)
    .bind(&row.outcome)
    .bind(&row.reason)
    .bind(&row.detail)
}

/// The `INSERT` of one key row, for the pool or a transaction.
fn insert_key_query(
    key: &KeyRow,
) -> sqlx::query::Query<'_, sqlx::Any, <sqlx::Any as sqlx::Database>::Arguments> {
    sqlx::query(
        "INSERT INTO api_keys (id, key_hash, service, daily_quota, signing_secret, \
         created_at, expires_at, revoked_at, quota_id, scopes, name, owner, meta, rate_limit, \
         rate_period, rate_burst, monthly_quota, credits, credits_refill, credits_interval, \
         credits_set_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20, $21)",
    )
    .bind(&key.id)
    .bind(&key.key_hash)
    .bind(&key.service)
    .bind(key.daily_quota)
    .bind(&key.signing_secret)
    .bind(key.created_at)
    .bind(key.expires_at)
    .bind(key.revoked_at)
    .bind(&key.quota_id)
    .bind(&key.scopes)
    .bind(&key.name)
    .bind(&key.owner)
    .bind(&key.meta)
    .bind(key.rate_limit)
    .bind(&key.rate_period)
    .bind(key.rate_burst)
    .bind(key.monthly_quota)
    .bind(key.credits)
    .bind(key.credits_refill)
    .bind(&key.credits_interval)
    .bind(key.credits_set_at)
}

fn key_row(row: sqlx::any::AnyRow) -> KeyRow {
    KeyRow {
        id: row.get(0),
        key_hash: row.get(1),
        service: row.get(2),
        daily_quota: row.get(3),
        signing_secret: row.get(4),
        created_at: row.get(5),
        expires_at: row.get(6),
        revoked_at: row.get(7),
        quota_id: row.get(8),
        scopes: row.get(9),
        name: row.get(10),
        owner: row.get(11),
        meta: row.get(12),
        rate_limit: row.get(13),
        rate_period: row.get(14),
        rate_burst: row.get(15),
        monthly_quota: row.get(16),
        credits: row.get(17),
        credits_refill: row.get(18),
        credits_interval: row.get(19),
        credits_set_at: row.get(20),
    }
}

/// The form of a username that is unique and looked up: usernames are ASCII, compared without
/// case.
#[must_use]
pub fn canonical_username(username: &str) -> String {
    username.to_ascii_lowercase()
}

fn conflict_or_database(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::Database(error),
    }
}

/// Checks the scheme and makes a SQLite URL create its file when missing.
fn normalize_url(url: &str) -> StoreResult<(Engine, String)> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => {
            let url = if url.contains(":memory:") || url.contains("mode=") {
                url.to_owned()
            } else if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            Ok((Engine::Sqlite, url))
        }
        "postgres" | "postgresql" => Ok((Engine::Postgres, url.to_owned())),
        other => Err(StoreError::UnsupportedScheme(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The audit entry numbered `n` (ids sort by `n`), for `action`.
    fn entry(n: u32, action: &str) -> AuditRow {
        AuditRow {
            id: format!("aud_{n:024x}"),
            at: i64::from(n),
            actor: "sadm_test".into(),
            action: action.into(),
            target: None,
            request_id: Some(format!("req-{n}")),
            outcome: "ok".into(),
            reason: None,
            detail: Some(r#"{"changed":["scopes"]}"#.into()),
        }
    }

    /// The actions of the audit log, newest first.
    async fn audited(db: &Db) -> Vec<String> {
        let rows = db.list_audit(None, 100).await.unwrap();
        rows.into_iter().map(|row| row.action).collect()
    }

    fn key(id: &str, hash: &str) -> KeyRow {
        KeyRow {
            id: id.into(),
            key_hash: hash.into(),
            service: "billing".into(),
            daily_quota: Some(5),
            signing_secret: None,
            created_at: 100,
            expires_at: None,
            revoked_at: None,
            quota_id: None,
            scopes: None,
            name: None,
            owner: None,
            meta: None,
            ..KeyRow::default()
        }
    }

    /// Changes every settable column of the active key `id` (with no expiry), clears some,
    /// then finds it refused once it has expired; an unknown key is refused too.
    async fn key_changes_apply_to_active_keys_only(db: &Db, id: &str) {
        let every = KeyChange {
            scopes: Some("time:read".into()),
            daily_quota: Some(Some(9)),
            expires_at: Some(Some(5_000)),
            name: Some(Some("Checkout".into())),
            owner: Some(Some("cus_42".into())),
            meta: Some(Some(r#"{"plan":"pro"}"#.into())),
            rate_limit: Some(Some(10)),
            rate_period: Some(Some("second".into())),
            rate_burst: Some(Some(20)),
            monthly_quota: Some(Some(100_000)),
            credits: Some(Some(1_000)),
            credits_refill: Some(Some(100)),
            credits_interval: Some(Some("day".into())),
            credits_set_at: Some(Some(1_700_000_000)),
        };
        assert!(
            db.update_key(id, &every, 0, &entry(10, "u1"))
                .await
                .unwrap()
        );
        let row = db.find_key(id).await.unwrap().unwrap();
        let columns = |row: &KeyRow| {
            (
                row.scopes.clone(),
                row.daily_quota,
                row.expires_at,
                row.name.clone(),
                row.owner.clone(),
                row.meta.clone(),
            )
        };
        let changed = (
            Some("time:read".to_owned()),
            Some(9),
            Some(5_000),
            Some("Checkout".to_owned()),
            Some("cus_42".to_owned()),
            Some(r#"{"plan":"pro"}"#.to_owned()),
        );
        assert_eq!(columns(&row), changed);
        let limits = |row: &KeyRow| {
            (
                (row.rate_limit, row.rate_period.clone(), row.rate_burst),
                row.monthly_quota,
                (
                    row.credits,
                    row.credits_refill,
                    row.credits_interval.clone(),
                ),
                row.credits_set_at,
            )
        };
        let rate = (Some(10), Some("second".to_owned()), Some(20));
        let credits = (Some(1_000), Some(100), Some("day".to_owned()));
        assert_eq!(
            limits(&row),
            (rate.clone(), Some(100_000), credits, Some(1_700_000_000))
        );
        let clear = KeyChange {
            daily_quota: Some(None),
            name: Some(None),
            meta: Some(None),
            monthly_quota: Some(None),
            credits: Some(None),
            credits_refill: Some(None),
            credits_interval: Some(None),
            credits_set_at: Some(None),
            ..KeyChange::default()
        };
        assert!(
            db.update_key(id, &clear, 0, &entry(11, "u2"))
                .await
                .unwrap()
        );
        let row = db.find_key(id).await.unwrap().unwrap();
        let cleared = (changed.0, None, changed.2, None, changed.4, None);
        assert_eq!(columns(&row), cleared);
        // A clear keeps the generation, so that a grant right after it is a new one.
        assert_eq!(
            limits(&row),
            (rate, None, (None, None, None), Some(1_700_000_000))
        );
        // Two grants in one second are two generations.
        let grant = KeyChange {
            credits: Some(Some(5)),
            credits_set_at: Some(Some(1_800_000_000)),
            ..KeyChange::default()
        };
        for (n, expected) in [(16, 1_800_000_000), (17, 1_800_000_001)] {
            assert!(db.update_key(id, &grant, 0, &entry(n, "g")).await.unwrap());
            let row = db.find_key(id).await.unwrap().unwrap();
            assert_eq!(row.credits_set_at, Some(expected));
        }
        // Cleared and granted again in that second: a third generation.
        let clear_credits = KeyChange {
            credits: Some(None),
            credits_set_at: Some(None),
            ..KeyChange::default()
        };
        assert!(
            db.update_key(id, &clear_credits, 0, &entry(18, "c"))
                .await
                .unwrap()
        );
        assert!(db.update_key(id, &grant, 0, &entry(19, "g")).await.unwrap());
        let row = db.find_key(id).await.unwrap().unwrap();
        assert_eq!(
            (row.credits, row.credits_set_at),
            (Some(5), Some(1_800_000_002))
        );
        assert!(
            db.update_key(id, &KeyChange::default(), 0, &entry(12, "u3"))
                .await
                .unwrap()
        );
        // Expired at 5000: nothing is written, and the empty change says so too.
        assert!(
            !db.update_key(id, &every, 5_000, &entry(13, "u4"))
                .await
                .unwrap()
        );
        assert!(
            !db.update_key(id, &KeyChange::default(), 5_000, &entry(14, "u5"))
                .await
                .unwrap()
        );
        assert_eq!(columns(&db.find_key(id).await.unwrap().unwrap()), cleared);
        assert!(
            !db.update_key("nope", &every, 0, &entry(15, "u6"))
                .await
                .unwrap()
        );
        // Only the changes made are on record, an empty one included.
        assert_eq!(
            audited(db).await[..7],
            ["g", "c", "g", "g", "u3", "u2", "u1"]
        );
        assert!(
            !audited(db)
                .await
                .iter()
                .any(|a| ["u4", "u5", "u6"].contains(&a.as_str()))
        );
    }

    #[test]
    fn placeholders_number_every_column_of_every_row() {
        let mut sql = String::new();
        push_placeholders(&mut sql, 2, 3);
        assert_eq!(sql, "($1, $2, $3), ($4, $5, $6)");
    }

    #[test]
    fn sqlite_urls_create_their_file_and_other_schemes_are_refused() {
        assert_eq!(
            normalize_url("sqlite://secure-api.db").unwrap().1,
            "sqlite://secure-api.db?mode=rwc"
        );
        assert_eq!(
            normalize_url("sqlite::memory:").unwrap().1,
            "sqlite::memory:"
        );
        assert_eq!(
            normalize_url("postgres://h/db").unwrap().0,
            Engine::Postgres
        );
        assert!(matches!(
            normalize_url("mysql://h/db"),
            Err(StoreError::UnsupportedScheme(s)) if s == "mysql"
        ));
    }

    /// The embedded list is what sqlx reads from `migrations/`, file for file and checksum for
    /// checksum: a new migration file must be listed, and a database migrated by
    /// `sqlx::migrate!` (before the list) or by `sqlx migrate run` matches.
    #[actix_web::test]
    async fn the_embedded_migrations_are_the_migration_files() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let from_files = Migrator::new(dir).await.unwrap();
        let embedded = migrator();
        let summary = |m: &Migrator| {
            m.iter()
                .map(|m| {
                    (
                        m.version,
                        m.description.to_string(),
                        m.migration_type,
                        m.checksum.to_vec(),
                        m.no_tx,
                    )
                })
                .collect::<Vec<_>>()
        };
        assert!(!summary(&embedded).is_empty());
        assert_eq!(summary(&embedded), summary(&from_files));
    }

    #[test]
    fn a_key_is_active_until_revoked_or_expired() {
        let mut k = key("k1", "h1");
        assert!(k.is_active(1_000));
        k.revoked_at = Some(2_000);
        assert!(
            k.is_active(1_999),
            "a scheduled revocation leaves a grace period"
        );
        assert!(!k.is_active(2_000));
        k.revoked_at = None;
        k.expires_at = Some(500);
        assert!(!k.is_active(500));
    }

    /// Users registered before usernames were case-insensitive: names that collide keep both
    /// rows, each logging in with its exact name; the others become case-insensitive.
    #[actix_web::test]
    async fn the_username_migration_keeps_colliding_rows_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
        sqlx::any::install_default_drivers();
        let pool = AnyPool::connect(&url).await.unwrap();
        let mut first = migrator();
        first.migrations = vec![first.migrations[0].clone()].into();
        first.run(&pool).await.unwrap();
        for (id, name) in [("u1", "alice"), ("u2", "Alice"), ("u3", "Bob")] {
            sqlx::query(
                "INSERT INTO users (id, username, password_hash, created_at) \
                 VALUES ($1, $2, 'h', 1)",
            )
            .bind(id)
            .bind(name)
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;

        let db = Db::connect(&url).await.unwrap();
        assert_eq!(db.colliding_usernames().await.unwrap(), ["Alice", "alice"]);
        let found = async |name: &str| db.find_user(name).await.unwrap().map(|u| u.id);
        assert_eq!(found("alice").await.as_deref(), Some("u1"));
        assert_eq!(found("Alice").await.as_deref(), Some("u2"));
        assert_eq!(found("ALICE").await, None);
        assert_eq!(found("bob").await.as_deref(), Some("u3"));
        assert_eq!(found("BOB").await.as_deref(), Some("u3"));
        let user = |id: &str, name: &str| UserRow {
            id: id.into(),
            username: name.into(),
            password_hash: "h".into(),
        };
        for taken in ["ALICE", "bob"] {
            assert!(matches!(
                db.insert_user(&user("u9", taken), 2).await,
                Err(StoreError::Conflict)
            ));
        }
        db.insert_user(&user("u4", "Carol"), 2).await.unwrap();
        assert_eq!(found("cAROL").await.as_deref(), Some("u4"));
        let carol = db.find_user("carol").await.unwrap().unwrap();
        assert_eq!(carol.username, "Carol");
    }

    #[actix_web::test]
    async fn users_keys_and_usage_round_trip_on_sqlite() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let user = UserRow {
            id: "u1".into(),
            username: "alice".into(),
            password_hash: "$argon2id$...".into(),
        };
        db.insert_user(&user, 1).await.unwrap();
        assert!(matches!(
            db.insert_user(
                &UserRow {
                    id: "u2".into(),
                    ..user.clone()
                },
                1
            )
            .await,
            Err(StoreError::Conflict)
        ));
        assert_eq!(db.find_user("alice").await.unwrap().unwrap().id, "u1");
        assert!(db.find_user("bob").await.unwrap().is_none());

        db.insert_key(&key("k1", "h1"), &entry(1, "create k1"))
            .await
            .unwrap();
        assert!(matches!(
            db.insert_key(&key("k2", "h1"), &entry(2, "create k2"))
                .await,
            Err(StoreError::Conflict)
        ));
        assert_eq!(db.find_key_by_hash("h1").await.unwrap().unwrap().id, "k1");
        assert!(
            db.rotate_key("k1", &key("k3", "h3"), 500, &entry(3, "rotate k1"))
                .await
                .unwrap()
        );
        // Once rotated, never again: the second successor is not written.
        assert!(
            !db.rotate_key("k1", &key("k9", "h9"), 600, &entry(30, "rotate k1"))
                .await
                .unwrap()
        );
        assert!(db.find_key("k9").await.unwrap().is_none());
        assert_eq!(
            db.find_key("k1").await.unwrap().unwrap().revoked_at,
            Some(500)
        );
        assert!(
            db.revoke_key("k1", 400, &entry(4, "revoke k1"))
                .await
                .unwrap()
        );
        assert_eq!(
            db.find_key("k1").await.unwrap().unwrap().revoked_at,
            Some(400)
        );
        assert!(
            !db.revoke_key("nope", 400, &entry(5, "revoke nope"))
                .await
                .unwrap()
        );
        // Revoking again succeeds, keeps the first revocation, and says it changed nothing.
        assert!(
            db.revoke_key("k1", 450, &entry(6, "revoke k1 again"))
                .await
                .unwrap()
        );
        assert_eq!(
            db.find_key("k1").await.unwrap().unwrap().revoked_at,
            Some(400)
        );
        let again = db.list_audit(None, 1).await.unwrap().remove(0);
        assert_eq!(again.action, "revoke k1 again");
        assert_eq!(again.detail.as_deref(), Some(r#"{"already_revoked":true}"#));
        // A change and its audit entry are one transaction: a refused one leaves neither.
        assert_eq!(
            audited(&db).await,
            ["revoke k1 again", "revoke k1", "rotate k1", "create k1"]
        );
        assert_eq!(db.list_keys().await.unwrap().len(), 2);
        assert_eq!(db.find_key("k3").await.unwrap().unwrap().scopes, None);
        key_changes_apply_to_active_keys_only(&db, "k3").await;
        audit_entries_page_and_round_trip(&db).await;

        assert!(db.load_snapshot("quota").await.unwrap().is_none());
        db.save_snapshot("quota", 10, "{\"a\":1}").await.unwrap();
        db.save_snapshot("quota", 20, "{\"a\":2}").await.unwrap();
        assert_eq!(
            db.load_snapshot("quota").await.unwrap(),
            Some((20, "{\"a\":2}".to_owned()))
        );
        quota_usage_adds_up_and_carries_a_snapshot_over(&db).await;

        assert!(db.revoke_token("j1", 50).await.unwrap());
        assert!(!db.revoke_token("j1", 50).await.unwrap());
        assert!(db.is_token_revoked("j1", "fam_a").await.unwrap());
        assert!(db.is_token_revoked("j2", "j1").await.unwrap());
        assert!(!db.is_token_revoked("j2", "fam_a").await.unwrap());
        assert_eq!(db.purge_revoked_tokens(60).await.unwrap(), 1);
        assert!(!db.is_token_revoked("j1", "fam_a").await.unwrap());
    }
    /// The quota usage queries, on either engine: `db` holds the snapshot `quota`.
    async fn quota_usage_adds_up_and_carries_a_snapshot_over(db: &Db) {
        let row = |s: &str, day, calls| (s.to_owned(), day, calls);
        assert_eq!(db.quota_used("a", 7).await.unwrap(), 0);
        db.add_quota_usage(&[row("a", 7, 2), row("b", 7, 1), row("a", 6, 9)])
            .await
            .unwrap();
        db.add_quota_usage(&[row("a", 7, 3)]).await.unwrap();
        assert_eq!(db.quota_used("a", 7).await.unwrap(), 5);
        let mut day = db.quota_usage_between(7, 7).await.unwrap();
        day.sort();
        assert_eq!(day, [row("a", 7, 5), row("b", 7, 1)]);
        db.checkpoint().await.unwrap();
        // More rows than one statement takes: one transaction of several.
        let many: Vec<_> = (0..150).map(|i| row(&format!("m{i}"), 9, i)).collect();
        db.add_quota_usage(&many).await.unwrap();
        db.add_quota_usage(&many).await.unwrap();
        db.add_quota_usage(&[]).await.unwrap();
        let day = db.quota_usage_between(9, 9).await.unwrap();
        assert_eq!(day.len(), 150);
        assert!(
            day.iter()
                .all(|(s, _, used)| *s == format!("m{}", used / 2))
        );

        db.carry_over_snapshot("quota", &[row("a", 7, 10), row("c", 7, 4)])
            .await
            .unwrap();
        assert!(db.load_snapshot("quota").await.unwrap().is_none());
        assert_eq!(db.quota_used("a", 7).await.unwrap(), 15);
        assert_eq!(db.quota_used("c", 7).await.unwrap(), 4);

        assert_eq!(db.purge_quota_usage(7, "credits:l:").await.unwrap(), 1);
        assert_eq!(db.quota_used("a", 6).await.unwrap(), 0);
        assert_eq!(db.quota_used("a", 7).await.unwrap(), 15);
    }

    /// Admin token changes are on record with their change, and the log reads back page by
    /// page, newest first, every column as written.
    async fn audit_entries_page_and_round_trip(db: &Db) {
        let token = AdminTokenRow {
            id: "sadm_1".into(),
            token_hash: "th".into(),
            label: None,
            created_at: 1,
            expires_at: None,
            revoked_at: None,
        };
        db.insert_admin_token(&token, &entry(20, "token create"))
            .await
            .unwrap();
        assert!(
            db.revoke_admin_token("sadm_1", 2, &entry(21, "token revoke"))
                .await
                .unwrap()
        );
        assert!(
            !db.revoke_admin_token("sadm_1", 3, &entry(22, "again"))
                .await
                .unwrap()
        );
        let mut refusal = entry(23, "key.update");
        refusal.outcome = "refused".into();
        refusal.reason = Some("id names no active key".into());
        refusal.target = Some("k9".into());
        refusal.detail = None;
        db.insert_audit(&refusal).await.unwrap();
        assert!(matches!(
            db.insert_audit(&refusal).await,
            Err(StoreError::Conflict)
        ));
        let newest = db.list_audit(None, 2).await.unwrap();
        assert_eq!(newest, [refusal, entry(21, "token revoke")]);
        let older = db.list_audit(Some(&newest[1].id), 1).await.unwrap();
        assert_eq!(older, [entry(20, "token create")]);
    }
}
