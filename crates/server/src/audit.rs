//! The audit log: every admin action on keys and admin tokens (create, update, revoke, rotate),
//! over HTTP or from the command line, with who did it, when, on what, in which request and how
//! it ended. Append-only: the server inserts entries and never changes or deletes one.
//!
//! An action that succeeds is recorded in the transaction that makes the change, so the log
//! never misses one, nor holds one that did not happen. A refusal (a field that breaks a rule, an
//! unknown key) changed nothing and is recorded on its own; if that write fails it is logged and
//! counted, and the answer stays the refusal. Requests without a valid admin token, and bodies
//! that are not the request's JSON shape, are refused before any action starts and are not
//! recorded: they are in the access log and metrics, and a flood of them cannot fill the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::clock::Clock;
use crate::store::{AuditRow, Db, StoreError};

/// Most entries one page holds.
pub const PAGE_MAX: u32 = 500;

/// Entries in a page unless the caller asks for another number.
pub const PAGE_DEFAULT: u32 = 50;

/// An admin action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `key.create`: a key was created.
    KeyCreate,
    /// `key.update`: scopes, quota, expiry or metadata changed.
    KeyUpdate,
    /// `key.revoke`: a key was revoked.
    KeyRevoke,
    /// `key.rotate`: a key was replaced by a new one.
    KeyRotate,
    /// `admin_token.create`: an admin token was created.
    AdminTokenCreate,
    /// `admin_token.revoke`: an admin token was revoked.
    AdminTokenRevoke,
}

impl Action {
    /// The name stored and shown, such as `key.create`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::KeyCreate => "key.create",
            Self::KeyUpdate => "key.update",
            Self::KeyRevoke => "key.revoke",
            Self::KeyRotate => "key.rotate",
            Self::AdminTokenCreate => "admin_token.create",
            Self::AdminTokenRevoke => "admin_token.revoke",
        }
    }
}

/// Who acts, and in which request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The admin token's id, `cli` for the command line, `first-start` for what the server
    /// makes on its first start.
    pub id: String,
    /// The request's id (`X-Request-Id`), for an action over HTTP.
    pub request_id: Option<String>,
}

impl Actor {
    /// The holder of the admin token `token_id`, in the request `request_id`.
    #[must_use]
    pub fn admin(token_id: impl Into<String>, request_id: Option<String>) -> Self {
        Self {
            id: token_id.into(),
            request_id,
        }
    }

    /// The `secure-api` command line.
    #[must_use]
    pub fn cli() -> Self {
        Self {
            id: "cli".to_owned(),
            request_id: None,
        }
    }

    /// The server, creating the first admin token and the demo key.
    #[must_use]
    pub fn first_start() -> Self {
        Self {
            id: "first-start".to_owned(),
            request_id: None,
        }
    }
}

/// How an action that did not succeed ended, for the errors of the services that record one.
pub trait Refusal {
    /// `true` when the request broke a rule (`refused`), `false` when the server failed
    /// (`failed`).
    fn is_refusal(&self) -> bool;
}

/// One audit entry, as listed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AuditEntry {
    /// Sortable id, the paging cursor.
    #[schema(example = "aud_00063b2f6f7c1a2b9f3e4d5c")]
    pub id: String,
    /// When (unix seconds).
    pub at: i64,
    /// Who: an admin token id, `cli` or `first-start`.
    pub actor: String,
    /// `key.create`, `key.update`, `key.revoke`, `key.rotate`, `admin_token.create` or
    /// `admin_token.revoke`.
    pub action: String,
    /// The key or admin token acted on, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The request's `X-Request-Id`, for an action over HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `ok`, `refused` (the request broke a rule) or `failed` (the server could not do it).
    pub outcome: String,
    /// Why it was refused or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// About the action: the fields a `key.update` changed, the successor of a `key.rotate`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub detail: Option<Value>,
}

impl From<AuditRow> for AuditEntry {
    fn from(row: AuditRow) -> Self {
        Self {
            detail: row.detail.and_then(|text| serde_json::from_str(&text).ok()),
            id: row.id,
            at: row.at,
            actor: row.actor,
            action: row.action,
            target: row.target,
            request_id: row.request_id,
            outcome: row.outcome,
            reason: row.reason,
        }
    }
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditEntry>,
    /// The cursor of the next (older) page: pass it as `before`; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Why a page of the audit log could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A query parameter that breaks a rule; `field` names which.
    #[error("{field} {reason}")]
    Invalid {
        /// The parameter.
        field: &'static str,
        /// The rule it breaks.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AuditError> for crate::error::ApiError {
    fn from(error: AuditError) -> Self {
        match error {
            AuditError::Invalid { field, reason } => Self::Validation { field, reason },
            AuditError::Store(e) => e.into(),
        }
    }
}

/// Makes, records and reads audit entries.
#[derive(Debug, Clone)]
pub struct AuditLog {
    db: Db,
    clock: Clock,
    /// The microsecond of the last id made here: ids made by one process strictly increase,
    /// even within one microsecond or under a clock that stands still.
    last_micros: Arc<AtomicU64>,
}

/// What a caller gave as the id of a key or admin token, sorted before it reaches the store or
/// the audit log: an operator may paste a key or token itself (a leaked one, to revoke it), and a
/// path may carry any bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GivenId<'a> {
    /// Text with an id's shape (`<prefix>_...` and 12 hex digits, or `...` and 12 for a legacy
    /// raw token): it goes to the store, and into the audit log as it is.
    Id(&'a str),
    /// A key or token of the format given. It is a secret: it is neither recorded nor shown.
    Secret,
    /// Anything else: no store is asked, and the log records [`NOT_AN_ID`]. That includes a
    /// secret of another format (an admin token where a key id goes), a mistyped key, a NUL
    /// (which PostgreSQL refuses in text) and a terminal's escape sequence.
    NotAnId,
}

/// What the audit log records as the target of an action whose id was no id.
pub const NOT_AN_ID: &str = "(not an id)";

/// What the audit log records as the target of an action whose id was a key or token itself.
pub const A_SECRET: &str = "(a key or token, not its id)";

/// The hex digits an id ends with (`apikey_gen::KeyId`).
const ID_HEX_DIGITS: usize = 12;

impl<'a> GivenId<'a> {
    /// Sorts `given` for keys or tokens of `config`'s format.
    #[must_use]
    pub fn of(config: &apikey_gen::KeyConfig, given: &'a str) -> Self {
        if is_id_shaped(given) {
            Self::Id(given)
        } else if config.parse(given).is_ok() {
            Self::Secret
        } else {
            Self::NotAnId
        }
    }

    /// What the audit log records as the target.
    #[must_use]
    pub fn target(&self) -> &'a str {
        match *self {
            Self::Id(id) => id,
            Self::Secret => A_SECRET,
            Self::NotAnId => NOT_AN_ID,
        }
    }
}

/// Whether `text` has the shape of a key or token id: an optional prefix (lowercase letters,
/// digits and `_`, at most 16) and `_`, then `...` and 12 lowercase hex digits.
fn is_id_shaped(text: &str) -> bool {
    let Some((head, hex)) = text.rsplit_once("...") else {
        return false;
    };
    let prefix_ok = head.is_empty()
        || head.strip_suffix('_').is_some_and(|prefix| {
            (1..=16).contains(&prefix.len())
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        });
    prefix_ok
        && hex.len() == ID_HEX_DIGITS
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl AuditLog {
    /// The log in `db`, timed by `clock`.
    #[must_use]
    pub fn new(db: Db, clock: Clock) -> Self {
        Self {
            db,
            clock,
            last_micros: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A new entry for `action` by `actor` on `target`, timed now, with the outcome `ok`: the
    /// service doing the action hands it to the store with the change.
    #[must_use]
    pub fn entry(&self, actor: &Actor, action: Action, target: Option<&str>) -> AuditRow {
        let now = self.clock.now_nanos() / 1_000;
        let micros = self
            .last_micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(now.max(last + 1))
            })
            .map_or(now, |last| now.max(last + 1));
        AuditRow {
            id: format!("aud_{micros:016x}{:08x}", rand::random::<u32>()),
            at: i64::try_from(micros / 1_000_000).unwrap_or(i64::MAX),
            actor: actor.id.clone(),
            action: action.as_str().to_owned(),
            target: target.map(str::to_owned),
            request_id: actor.request_id.clone(),
            outcome: "ok".to_owned(),
            reason: None,
            detail: None,
        }
    }

    /// Records `entry` as `refused` or `failed` when `result` is an error, and passes `result`
    /// on. A success was recorded by the store with its change.
    pub async fn finish<T, E>(&self, mut entry: AuditRow, result: Result<T, E>) -> Result<T, E>
    where
        E: Refusal + std::fmt::Display,
    {
        if let Err(error) = &result {
            entry.outcome = if error.is_refusal() {
                "refused"
            } else {
                "failed"
            }
            .to_owned();
            entry.reason = Some(error.to_string());
            if let Err(e) = self.db.insert_audit(&entry).await {
                crate::observe::database_error();
                metrics::counter!(crate::observe::AUDIT_WRITE_FAILURES).increment(1);
                crate::observe::throttled_error("audit entry not written", &e);
            }
        }
        result
    }

    /// Up to `limit` entries (1 to [`PAGE_MAX`]), newest first, older than the entry `before`
    /// when given, and the cursor of the next page.
    pub async fn page(&self, before: Option<&str>, limit: u32) -> Result<AuditPage, AuditError> {
        if !(1..=PAGE_MAX).contains(&limit) {
            return Err(AuditError::Invalid {
                field: "limit",
                reason: format!("must be between 1 and {PAGE_MAX}"),
            });
        }
        if let Some(cursor) = before
            && !is_entry_id(cursor)
        {
            return Err(AuditError::Invalid {
                field: "before",
                reason: "must be an audit entry id (aud_ and 24 hex digits)".to_owned(),
            });
        }
        // One more than asked: whether there is a next page.
        let mut rows = self.db.list_audit(before, i64::from(limit) + 1).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = more
            .then(|| rows.last().map(|row| row.id.clone()))
            .flatten();
        Ok(AuditPage {
            entries: rows.into_iter().map(AuditEntry::from).collect(),
            next,
        })
    }
}

/// Whether `id` has the shape of an audit entry id.
fn is_entry_id(id: &str) -> bool {
    id.strip_prefix("aud_").is_some_and(|hex| {
        hex.len() == 24 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_text_with_an_ids_shape_is_taken_for_an_id() {
        let config = apikey_gen::KeyConfig::new("sapi").unwrap();
        let generated = config.generate().unwrap();
        let (key, id) = (generated.key().expose_secret(), generated.id().as_str());
        assert_eq!(GivenId::of(&config, id), GivenId::Id(id));
        for id in [
            "sapi_...0123456789ab",
            "...0123456789ab",
            "a1_b_...0123456789ab",
        ] {
            assert_eq!(GivenId::of(&config, id), GivenId::Id(id), "{id}");
        }
        assert_eq!(GivenId::of(&config, key), GivenId::Secret);
        assert_eq!(GivenId::of(&config, key).target(), A_SECRET);
        for text in [
            "sapi_nope",
            "sapi_...0123456789AB",
            "sapi_...0123456789a",
            "sapi_...0123456789abc",
            "Sapi_...0123456789ab",
            "_...0123456789ab",
            "sapi...0123456789ab",
            "a\0b",
            "",
        ] {
            assert_eq!(GivenId::of(&config, text), GivenId::NotAnId, "{text:?}");
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("name must be short")]
    struct TooLong;

    impl Refusal for TooLong {
        fn is_refusal(&self) -> bool {
            true
        }
    }

    #[actix_web::test]
    async fn entries_page_newest_first_even_under_a_clock_that_stands_still() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let log = AuditLog::new(db.clone(), Clock::manual(1_000));
        let admin = Actor::admin("sadm_1", Some("req-7".into()));
        let mut ids = Vec::new();
        for i in 0..5 {
            let entry = log.entry(&admin, Action::KeyRevoke, Some(&format!("k{i}")));
            assert!(is_entry_id(&entry.id), "{}", entry.id);
            assert_eq!(entry.at, 1_000);
            ids.push(entry.id.clone());
            log.finish::<(), _>(entry, Err(TooLong)).await.unwrap_err();
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

        let first = log.page(None, 2).await.unwrap();
        let targets = |page: &AuditPage| {
            page.entries
                .iter()
                .map(|e| e.target.clone().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(targets(&first), ["k4", "k3"]);
        let entry = &first.entries[0];
        assert_eq!(
            (
                entry.actor.as_str(),
                entry.action.as_str(),
                entry.outcome.as_str()
            ),
            ("sadm_1", "key.revoke", "refused")
        );
        assert_eq!(entry.reason.as_deref(), Some("name must be short"));
        assert_eq!(entry.request_id.as_deref(), Some("req-7"));
        let second = log.page(first.next.as_deref(), 2).await.unwrap();
        assert_eq!(targets(&second), ["k2", "k1"]);
        let last = log.page(second.next.as_deref(), 2).await.unwrap();
        assert_eq!(targets(&last), ["k0"]);
        assert_eq!(last.next, None);
        // Exactly a page left: no next cursor pointing at an empty page.
        assert_eq!(log.page(None, 5).await.unwrap().next, None);
    }

    #[actix_web::test]
    async fn a_success_is_left_to_the_store_and_bad_paging_is_refused() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let log = AuditLog::new(db, Clock::manual(1_000));
        let entry = log.entry(&Actor::cli(), Action::KeyCreate, None);
        assert_eq!(log.finish::<_, TooLong>(entry, Ok(7)).await.unwrap(), 7);
        assert!(log.page(None, 10).await.unwrap().entries.is_empty());
        for (before, limit, field) in [
            (None, 0, "limit"),
            (None, PAGE_MAX + 1, "limit"),
            (Some("aud_123"), 10, "before"),
            (Some("aud_00000000000000000000000G"), 10, "before"),
            (Some("key_000000000000000000000000"), 10, "before"),
        ] {
            assert!(
                matches!(
                    log.page(before, limit).await,
                    Err(AuditError::Invalid { field: f, .. }) if f == field
                ),
                "{before:?} {limit}"
            );
        }
    }
}
