//! Usage history: per key and UTC day, the calls accepted and the calls refused, by reason.
//!
//! A call is counted in memory on the request path (one short lock, no I/O) and the counts are
//! added to the database in batches: by the upkeep every 5 s and at a graceful stop, never one
//! write per request. Each instance adds its own counts, so the history of several instances on
//! one database is their sum. A crash loses at most the counts of the last 5 s; the history
//! only, since each quota charge is durable before its call is answered. While the database is
//! away the counts stay in memory and go with the next batch that is written (one entry per key
//! and day, so memory grows with the keys in use, not with the calls). Rows older than
//! [`KEPT_DAYS`] are deleted once a day.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use utoipa::ToSchema;

use crate::clock::Clock;
use crate::journal::today;
use crate::store::{Db, StoreError};

/// Days of history kept in the database (more than a year, so that months compare).
pub const KEPT_DAYS: i64 = 400;

/// Days one history answer covers at most.
pub const MAX_DAYS: u32 = 400;

/// Days of history an answer covers unless the caller asks for others.
pub const DEFAULT_DAYS: u32 = 30;

/// How a call ended, as the history counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered: it passed authentication, its scope and its quota.
    Accepted,
    /// Refused with 429: the daily or monthly quota was spent.
    Quota,
    /// Refused with 403: the key lacks the route's scope.
    Scope,
    /// Refused with 429: the key's rate limit was reached.
    Rate,
    /// Refused with 429: the key's credits were spent.
    Credits,
}

const OUTCOMES: [Outcome; 5] = [
    Outcome::Accepted,
    Outcome::Quota,
    Outcome::Scope,
    Outcome::Rate,
    Outcome::Credits,
];

impl Outcome {
    /// The name stored in the `outcome` column.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Quota => "quota",
            Self::Scope => "scope",
            Self::Rate => "rate",
            Self::Credits => "credits",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }

    fn from_stored(name: &str) -> Option<Self> {
        OUTCOMES.into_iter().find(|o| o.as_str() == name)
    }
}

/// Calls of one key on one day, by outcome (indexed by [`Outcome::index`]).
type Counts = [u64; OUTCOMES.len()];

/// Calls not yet in the database: by day, then by key id.
type Pending = HashMap<i64, HashMap<String, Counts>>;

/// One day of a key's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DayUsage {
    /// The UTC day, `YYYY-MM-DD`.
    #[schema(example = "2026-12-04")]
    pub date: String,
    /// Calls answered.
    pub accepted: u64,
    /// Calls refused, by reason.
    pub refused: Refused,
}

/// Refused calls of one day, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Refused {
    /// With 429, the daily or monthly quota spent.
    pub quota: u64,
    /// With 403, the key lacking the route's scope.
    pub scope: u64,
    /// With 429, the key's rate limit reached.
    pub rate: u64,
    /// With 429, the key's credits spent.
    pub credits: u64,
}

/// Why a range of days was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field} {reason}")]
pub struct RangeError {
    /// The query parameter.
    pub field: &'static str,
    /// The rule it breaks.
    pub reason: String,
}

impl From<RangeError> for crate::error::ApiError {
    fn from(error: RangeError) -> Self {
        Self::Validation {
            field: error.field,
            reason: error.reason,
        }
    }
}

/// A span of UTC days, both ends included, as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    /// The first day.
    pub first: i64,
    /// The last day.
    pub last: i64,
}

impl DayRange {
    /// The range a caller asked for: the last `days` days up to `today`, or `from` to `to`
    /// (`YYYY-MM-DD`; `to` defaults to `today`), at most [`MAX_DAYS`] long; the last
    /// [`DEFAULT_DAYS`] days when nothing is given.
    ///
    /// # Errors
    /// A [`RangeError`] naming the parameter: `days` out of range or given with `from`/`to`, a
    /// date that is not one, `from` after `to`, a span over [`MAX_DAYS`].
    pub fn parse(
        days: Option<u32>,
        from: Option<&str>,
        to: Option<&str>,
        today: i64,
    ) -> Result<Self, RangeError> {
        let invalid = |field, reason: &str| RangeError {
            field,
            reason: reason.to_owned(),
        };
        if let Some(days) = days {
            if from.is_some() || to.is_some() {
                return Err(invalid("days", "cannot be given with from or to"));
            }
            if !(1..=MAX_DAYS).contains(&days) {
                return Err(RangeError {
                    field: "days",
                    reason: format!("must be between 1 and {MAX_DAYS}"),
                });
            }
            return Ok(Self {
                first: today - i64::from(days) + 1,
                last: today,
            });
        }
        let date = |field, text: Option<&str>| {
            text.map(|text| {
                parse_date(text).ok_or_else(|| invalid(field, "must be a date, YYYY-MM-DD"))
            })
            .transpose()
        };
        let last = date("to", to)?.unwrap_or(today);
        let first = match date("from", from)? {
            Some(first) => first,
            None => last - i64::from(DEFAULT_DAYS) + 1,
        };
        if first > last {
            return Err(invalid("from", "must not be after to"));
        }
        if last - first >= i64::from(MAX_DAYS) {
            return Err(RangeError {
                field: "from",
                reason: format!("must be at most {MAX_DAYS} days before to"),
            });
        }
        Ok(Self { first, last })
    }

    /// How many days it spans.
    #[must_use]
    pub fn len(self) -> usize {
        usize::try_from(self.last - self.first + 1).unwrap_or(0)
    }

    /// Whether it spans no day (never, for a parsed range).
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// The Julian day of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

/// `YYYY-MM-DD` as days since 1970-01-01.
fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if parts.next().is_some() || !digits(year, 4) || !digits(month, 2) || !digits(day, 2) {
        return None;
    }
    let month = time::Month::try_from(month.parse::<u8>().ok()?).ok()?;
    let date = time::Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()?;
    Some(i64::from(date.to_julian_day() - UNIX_EPOCH_JULIAN_DAY))
}

/// Days since 1970-01-01 as `YYYY-MM-DD`.
fn format_day(day: i64) -> String {
    i32::try_from(day)
        .ok()
        .and_then(|day| day.checked_add(UNIX_EPOCH_JULIAN_DAY))
        .and_then(|julian| time::Date::from_julian_day(julian).ok())
        .map_or_else(
            || day.to_string(),
            |date| {
                format!(
                    "{:04}-{:02}-{:02}",
                    date.year(),
                    u8::from(date.month()),
                    date.day()
                )
            },
        )
}

/// Counts calls in memory, writes them in batches, and reads a key's history.
#[derive(Debug, Clone)]
pub struct UsageHistory {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    clock: Clock,
    pending: Mutex<Pending>,
    /// The day rows older than [`KEPT_DAYS`] were last deleted on.
    purged_on: AtomicI64,
}

impl UsageHistory {
    /// The history in `db`, days by `clock`.
    #[must_use]
    pub fn new(db: Db, clock: Clock) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                clock,
                pending: Mutex::new(Pending::new()),
                purged_on: AtomicI64::new(i64::MIN),
            }),
        }
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        // A panic while counting leaves whole numbers behind: the counts are still good.
        self.inner
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one call of the key `key_id`, today, as `outcome`.
    pub fn record(&self, key_id: &str, outcome: Outcome) {
        let day = today(&self.inner.clock);
        let mut pending = self.pending();
        let keys = pending.entry(day).or_default();
        match keys.get_mut(key_id) {
            Some(counts) => counts[outcome.index()] += 1,
            None => {
                let mut counts = Counts::default();
                counts[outcome.index()] = 1;
                keys.insert(key_id.to_owned(), counts);
            }
        }
    }

    /// Adds the counts made since the last batch to the database, in one transaction, and
    /// deletes rows older than [`KEPT_DAYS`] once a day; returns how many rows were added to.
    /// When the write fails, the counts are kept for the next batch.
    ///
    /// # Errors
    /// The store's.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        let taken = std::mem::take(&mut *self.pending());
        let rows: Vec<_> = taken
            .iter()
            .flat_map(|(&day, keys)| {
                keys.iter().flat_map(move |(key, counts)| {
                    OUTCOMES
                        .into_iter()
                        .filter(|o| counts[o.index()] > 0)
                        .map(move |o| (key.clone(), day, o.as_str(), counts[o.index()]))
                })
            })
            .collect();
        if let Err(e) = self.inner.db.add_key_usage(&rows).await {
            let mut pending = self.pending();
            for (day, keys) in taken {
                for (key, counts) in keys {
                    let kept = pending.entry(day).or_default().entry(key).or_default();
                    for (kept, taken) in kept.iter_mut().zip(counts) {
                        *kept += taken;
                    }
                }
            }
            return Err(e);
        }
        let today = today(&self.inner.clock);
        if self.inner.purged_on.swap(today, Ordering::Relaxed) != today {
            match self.inner.db.purge_key_usage(today - KEPT_DAYS).await {
                Ok(0) => {}
                Ok(purged) => {
                    tracing::info!(
                        rows = purged,
                        days = KEPT_DAYS,
                        "older usage history deleted"
                    );
                }
                // Tried again tomorrow; the rows added are in.
                Err(e) => tracing::error!(error = %e, "deleting older usage history failed"),
            }
        }
        Ok(rows.len())
    }

    /// The history of the key `key_id` over `range`, one entry per day, oldest first, days
    /// without calls included: what the database holds plus this instance's counts not yet
    /// written (another instance's reach the database within 5 s).
    ///
    /// # Errors
    /// The store's.
    pub async fn history(
        &self,
        key_id: &str,
        range: DayRange,
    ) -> Result<Vec<DayUsage>, StoreError> {
        let len = range.len();
        let mut days = vec![Counts::default(); len];
        let slot = |day: i64| usize::try_from(day - range.first).ok().filter(|&i| i < len);
        for (day, outcome, calls) in self
            .inner
            .db
            .key_usage(key_id, range.first, range.last)
            .await?
        {
            if let (Some(i), Some(outcome)) = (slot(day), Outcome::from_stored(&outcome)) {
                days[i][outcome.index()] += calls;
            }
        }
        for (&day, keys) in self.pending().iter() {
            if let (Some(i), Some(counts)) = (slot(day), keys.get(key_id)) {
                for (total, more) in days[i].iter_mut().zip(counts) {
                    *total += more;
                }
            }
        }
        Ok(days
            .into_iter()
            .zip(range.first..)
            .map(|(counts, day)| DayUsage {
                date: format_day(day),
                accepted: counts[Outcome::Accepted.index()],
                refused: Refused {
                    quota: counts[Outcome::Quota.index()],
                    scope: counts[Outcome::Scope.index()],
                    rate: counts[Outcome::Rate.index()],
                    credits: counts[Outcome::Credits.index()],
                },
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;
    /// 2026-12-04 12:00 UTC.
    const NOON: u64 = 20_791 * DAY + DAY / 2;

    #[test]
    fn dates_and_days_convert_both_ways() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-12-04"), Some(20_791));
        assert_eq!(format_day(20_791), "2026-12-04");
        assert_eq!(
            parse_date("2024-02-29").map(format_day).as_deref(),
            Some("2024-02-29")
        );
        for bad in [
            "2026-13-01",
            "2025-02-29",
            "2026-1-01",
            "26-01-01",
            "2026-01-01-",
            "x",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn ranges_are_the_last_days_or_from_to_and_bad_ones_name_their_parameter() {
        let today = 20_791;
        let range = |days, from, to| DayRange::parse(days, from, to, today);
        let span = |first, last| Ok(DayRange { first, last });
        assert_eq!(range(None, None, None), span(today - 29, today));
        assert_eq!(range(Some(1), None, None), span(today, today));
        assert_eq!(range(Some(400), None, None), span(today - 399, today));
        assert_eq!(
            range(None, Some("2026-12-01"), Some("2026-12-03")),
            span(today - 3, today - 1)
        );
        assert_eq!(
            range(None, Some("2026-12-01"), None),
            span(today - 3, today)
        );
        assert_eq!(
            range(None, None, Some("2026-12-03")),
            span(today - 30, today - 1)
        );
        let field = |r: Result<DayRange, RangeError>| r.unwrap_err().field;
        assert_eq!(field(range(Some(0), None, None)), "days");
        assert_eq!(field(range(Some(401), None, None)), "days");
        assert_eq!(field(range(Some(3), Some("2026-12-01"), None)), "days");
        assert_eq!(
            field(range(None, Some("2026-12-05"), Some("2026-12-04"))),
            "from"
        );
        assert_eq!(
            field(range(None, Some("2025-01-01"), Some("2026-12-04"))),
            "from"
        );
        assert_eq!(field(range(None, Some("yesterday"), None)), "from");
        assert_eq!(field(range(None, None, Some("2026-02-30"))), "to");
    }

    #[actix_web::test]
    async fn calls_are_counted_by_key_day_and_outcome_before_and_after_a_batch() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let clock = Clock::manual(NOON - DAY);
        let history = UsageHistory::new(db.clone(), clock.clone());
        history.record("k1", Outcome::Accepted);
        clock.set(NOON);
        for outcome in [
            Outcome::Accepted,
            Outcome::Accepted,
            Outcome::Quota,
            Outcome::Scope,
        ] {
            history.record("k1", outcome);
        }
        history.record("k2", Outcome::Scope);
        let range = DayRange::parse(Some(3), None, None, 20_791).unwrap();
        let day = |date: &str, accepted, quota, scope| DayUsage {
            date: date.to_owned(),
            accepted,
            refused: Refused {
                quota,
                scope,
                ..Refused::default()
            },
        };
        let expected = [
            day("2026-12-02", 0, 0, 0),
            day("2026-12-03", 1, 0, 0),
            day("2026-12-04", 2, 1, 1),
        ];
        // Before the batch from memory, after it from the database: the same answer.
        assert_eq!(history.history("k1", range).await.unwrap(), expected);
        assert_eq!(history.flush().await.unwrap(), 5);
        assert!(history.pending().is_empty());
        assert_eq!(history.history("k1", range).await.unwrap(), expected);
        // More calls add to the stored rows; another key stays apart.
        history.record("k1", Outcome::Accepted);
        assert_eq!(history.flush().await.unwrap(), 1);
        let k1 = history.history("k1", range).await.unwrap();
        assert_eq!(k1[2], day("2026-12-04", 3, 1, 1));
        let k2 = history.history("k2", range).await.unwrap();
        assert_eq!(k2[2], day("2026-12-04", 0, 0, 1));
        assert_eq!(history.flush().await.unwrap(), 0);
    }

    #[actix_web::test]
    async fn counts_survive_a_failed_batch_and_old_rows_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("usage.db").display());
        let db = Db::connect(&url).await.unwrap();
        let clock = Clock::manual(NOON);
        let old_day = 20_791 - KEPT_DAYS - 1;
        db.add_key_usage(&[
            ("k1".to_owned(), old_day, "accepted", 7),
            ("k1".to_owned(), old_day + 1, "accepted", 8),
        ])
        .await
        .unwrap();
        let history = UsageHistory::new(db.clone(), clock);
        history.record("k1", Outcome::Quota);
        history.flush().await.unwrap();
        let kept = db.key_usage("k1", old_day, 20_791).await.unwrap();
        assert_eq!(
            kept,
            [
                (old_day + 1, "accepted".to_owned(), 8),
                (20_791, "quota".to_owned(), 1)
            ]
        );

        history.record("k1", Outcome::Accepted);
        db.close().await;
        assert!(history.flush().await.is_err());
        history.record("k1", Outcome::Accepted);
        let pending = history.pending();
        assert_eq!(
            pending[&20_791]["k1"],
            [2, 0, 0, 0, 0],
            "kept for the next batch"
        );
    }
}
