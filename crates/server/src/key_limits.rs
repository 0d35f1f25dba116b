//! Per-key limits beside the daily quota: a rate limit (GCRA: a rate and a burst), a monthly
//! quota, and credits (a balance of uses, optionally refilled each UTC day or month).
//!
//! What each is, which values are allowed, and how they are stored in a key's row. Spending
//! them on each call is the request path's work (`limits`). Counts stay below 2^53: a shared
//! deployment counts them in Redis, in doubles, which are exact only that far.
//!
//! A leaf module but for the row it reads ([`KeyRow`]).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::store::KeyRow;

/// The largest count (a limit, a quota, a balance) a key may have: 2^53 - 1.
pub const COUNT_MAX: u64 = (1 << 53) - 1;
/// The fastest rate limit, in calls per second: one call per microsecond.
pub const RATE_MAX_PER_SECOND: u64 = 1_000_000;
/// The largest burst.
pub const BURST_MAX: u64 = 1_000_000;

/// A value that breaks a rule: `field` names it as the request body does
/// (`rate_limit.burst`, `credits.refill.amount`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct LimitError {
    /// The field, as named in the request body.
    pub field: &'static str,
    /// The rule it breaks.
    pub reason: String,
}

impl LimitError {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// The period a rate limit counts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RatePeriod {
    /// One second.
    Second,
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One day (86,400 s, not a UTC calendar day: the rate is a rate).
    Day,
}

impl RatePeriod {
    /// Every period, shortest first.
    pub const ALL: [Self; 4] = [Self::Second, Self::Minute, Self::Hour, Self::Day];

    /// Its length in seconds.
    #[must_use]
    pub const fn secs(self) -> u64 {
        match self {
            Self::Second => 1,
            Self::Minute => 60,
            Self::Hour => 3_600,
            Self::Day => 86_400,
        }
    }

    /// Its name, as the API and the database write it.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Second => "second",
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }
}

impl fmt::Display for RatePeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RatePeriod {
    type Err = ();

    fn from_str(name: &str) -> Result<Self, ()> {
        Self::ALL
            .into_iter()
            .find(|period| period.name() == name)
            .ok_or(())
    }
}

/// How often credits are refilled: at 00:00 UTC each day, or on the first of each month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefillInterval {
    /// Each UTC day.
    Day,
    /// Each UTC calendar month.
    Month,
}

impl RefillInterval {
    /// Every interval.
    pub const ALL: [Self; 2] = [Self::Day, Self::Month];

    /// Its name, as the API and the database write it.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Month => "month",
        }
    }
}

impl fmt::Display for RefillInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RefillInterval {
    type Err = ();

    fn from_str(name: &str) -> Result<Self, ()> {
        Self::ALL
            .into_iter()
            .find(|interval| interval.name() == name)
            .ok_or(())
    }
}

/// A key's rate limit: `limit` calls per `per`, spread evenly (GCRA), with up to `burst` at
/// once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Calls per period: at least 1, and at most one call per microsecond. Above 10,000 calls
    /// a second, the time per call must be a whole number of microseconds to within 1%.
    #[serde(deserialize_with = "positive")]
    #[schema(minimum = 1, example = 10)]
    pub limit: u64,
    /// The period: `second`, `minute`, `hour` or `day`.
    pub per: RatePeriod,
    /// The most calls at once (1 to 1,000,000); default: `limit`.
    #[serde(
        default,
        deserialize_with = "optional_positive",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(minimum = 1, maximum = 1_000_000, example = 20)]
    pub burst: Option<u64>,
}

impl RateLimitSpec {
    /// The most calls at once: `burst`, or else `limit`.
    #[must_use]
    pub fn burst_or_limit(&self) -> u64 {
        self.burst.unwrap_or(self.limit)
    }

    /// Checks the rules: a limit and a burst of at least 1, at most one call per microsecond,
    /// a burst of at most [`BURST_MAX`]; a limit over [`BURST_MAX`] must name its burst, which
    /// would be the limit otherwise.
    ///
    /// # Errors
    /// [`LimitError`] naming `rate_limit.limit` or `rate_limit.burst`.
    pub fn check(&self) -> Result<(), LimitError> {
        let fastest = RATE_MAX_PER_SECOND * self.per.secs();
        if self.limit == 0 {
            return Err(LimitError::new("rate_limit.limit", "must be 1 or more"));
        }
        if self.limit > fastest {
            return Err(LimitError::new(
                "rate_limit.limit",
                format!(
                    "must be at most {fastest} per {} (one call per microsecond)",
                    self.per
                ),
            ));
        }
        match self.burst {
            Some(0) => Err(LimitError::new("rate_limit.burst", "must be 1 or more")),
            Some(burst) if burst > BURST_MAX => Err(LimitError::new(
                "rate_limit.burst",
                format!("must be at most {BURST_MAX}"),
            )),
            None if self.limit > BURST_MAX => Err(LimitError::new(
                "rate_limit.burst",
                format!("must be given, at most {BURST_MAX}, with a limit over {BURST_MAX}"),
            )),
            _ => self.check_exact().and_then(|()| self.policy().map(drop)),
        }
    }

    /// The GCRA policy the calls are decided under: `limit` per period, with each call's
    /// interval in whole microseconds, rounded up (the counters on Redis keep microseconds, and
    /// never allow more than the limit). [`check`](Self::check) refuses a rate that this
    /// slows by more than 1%; a row stored before that rule is enforced this way, a little
    /// slower than written, rather than not at all.
    ///
    /// # Errors
    /// [`LimitError`] naming `rate_limit.burst` when the burst takes longer than about 146
    /// years to earn back (the most the counters hold), `rate_limit.limit` for a zero limit or
    /// one faster than a call per microsecond.
    pub fn policy(&self) -> Result<quota::Policy, LimitError> {
        let (limit, burst) = self.nonzero()?;
        // As written when the counters can keep it (they round the interval up themselves, and
        // report the period written); else with the period stretched to whole microseconds.
        let period = if self.check_exact().is_ok() {
            std::time::Duration::from_secs(self.per.secs())
        } else {
            let interval_micros = (self.per.secs() * 1_000_000).div_ceil(limit.get());
            std::time::Duration::from_micros(interval_micros.saturating_mul(limit.get()))
        };
        quota::Policy::gcra(limit, period)
            .map_err(|_| {
                LimitError::new(
                    "rate_limit.limit",
                    "must be at most one call per microsecond",
                )
            })?
            .with_burst(burst)
            .map_err(|_| {
                LimitError::new(
                    "rate_limit.burst",
                    "must take at most about 146 years to earn back at the rate",
                )
            })
    }

    /// The limit and the burst, refused when zero.
    fn nonzero(&self) -> Result<(std::num::NonZeroU64, std::num::NonZeroU64), LimitError> {
        let limit = std::num::NonZeroU64::new(self.limit)
            .ok_or_else(|| LimitError::new("rate_limit.limit", "must be 1 or more"))?;
        let burst = std::num::NonZeroU64::new(self.burst_or_limit())
            .ok_or_else(|| LimitError::new("rate_limit.burst", "must be 1 or more"))?;
        Ok((limit, burst))
    }

    /// Whether the rate as written can be counted in whole microseconds per call to within
    /// 1%, as the counters on Redis keep them.
    fn check_exact(&self) -> Result<(), LimitError> {
        let (limit, _) = self.nonzero()?;
        let written = quota::Policy::gcra(limit, std::time::Duration::from_secs(self.per.secs()));
        match written.map(quota::RedisBackend::check_policy) {
            Ok(Ok(())) => Ok(()),
            _ => Err(LimitError::new(
                "rate_limit.limit",
                format!(
                    "must give each call a whole number of microseconds, to within 1%, of a {} \
                     (every limit up to {} per {} does)",
                    self.per,
                    10_000 * self.per.secs(),
                    self.per
                ),
            )),
        }
    }

    /// As shown: the burst filled in (the limit, when none is set).
    #[must_use]
    pub fn filled(self) -> Self {
        Self {
            burst: Some(self.burst_or_limit()),
            ..self
        }
    }

    /// The rate limit of a stored key, if it has one.
    #[must_use]
    pub fn of(row: &KeyRow) -> Option<Self> {
        Some(Self {
            limit: row.rate_limit.and_then(|n| u64::try_from(n).ok())?,
            per: row.rate_period.as_deref()?.parse().ok()?,
            burst: row.rate_burst.and_then(|n| u64::try_from(n).ok()),
        })
    }
}

/// A rate as the command line writes it: `10/second` (or `minute`, `hour`, `day`).
///
/// # Errors
/// [`LimitError`] naming `rate_limit.limit` or `rate_limit.per`.
pub fn parse_rate(text: &str) -> Result<(u64, RatePeriod), LimitError> {
    let (count, per) = text.split_once('/').ok_or_else(|| {
        LimitError::new(
            "rate_limit",
            "must be CALLS/PERIOD, such as 10/second (second, minute, hour or day)",
        )
    })?;
    let limit = parse_count("rate_limit.limit", count, 1)?;
    let per = per
        .parse()
        .map_err(|()| LimitError::new("rate_limit.per", unknown(per, &RatePeriod::ALL)))?;
    Ok((limit, per))
}

/// A refill as the command line writes it: `100/day` or `100/month`.
///
/// # Errors
/// [`LimitError`] naming `credits.refill.amount` or `credits.refill.interval`.
pub fn parse_refill(text: &str) -> Result<Refill, LimitError> {
    let (count, interval) = text.split_once('/').ok_or_else(|| {
        LimitError::new(
            "credits.refill",
            "must be AMOUNT/INTERVAL, such as 100/day (day or month)",
        )
    })?;
    Ok(Refill {
        amount: parse_count("credits.refill.amount", count, 1)?,
        interval: interval.parse().map_err(|()| {
            LimitError::new(
                "credits.refill.interval",
                unknown(interval, &RefillInterval::ALL),
            )
        })?,
    })
}

/// A whole number as the command line writes it, refused in the words the API uses for the
/// same JSON number: `min` is the least the field takes (only for the message on a negative
/// number; the range is checked with the rest).
///
/// # Errors
/// [`LimitError`] naming `field`.
pub fn parse_count(field: &'static str, text: &str, min: u64) -> Result<u64, LimitError> {
    let text = text.trim();
    if let Ok(n) = text.parse::<u64>() {
        return Ok(n);
    }
    if let Some(digits) = text.strip_prefix('-')
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(LimitError::new(field, format!("must be {min} or more")));
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LimitError::new(
            field,
            format!("must be at most {COUNT_MAX}"),
        ));
    }
    Err(LimitError::new(field, "must be a whole number"))
}

fn unknown<T: fmt::Display>(given: &str, known: &[T]) -> String {
    let names: Vec<String> = known.iter().map(ToString::to_string).collect();
    format!(
        "must be one of {}, not `{}`",
        names.join(", "),
        given.escape_debug()
    )
}

/// How a key's credits are refilled: the balance is set to `amount` at the start of each
/// `interval` (not added to: unspent credits do not pile up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Refill {
    /// The balance each refill sets: at least 1.
    #[serde(deserialize_with = "positive")]
    #[schema(minimum = 1, example = 100)]
    pub amount: u64,
    /// `day` or `month` (UTC).
    pub interval: RefillInterval,
}

/// A key's credits: a balance of uses that every call spends, and an optional refill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditsSpec {
    /// The balance to grant now (0 for a key with no uses left until its refill).
    #[serde(deserialize_with = "count")]
    #[schema(minimum = 0, example = 1000)]
    pub remaining: u64,
    /// The refill, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refill: Option<Refill>,
}

impl CreditsSpec {
    /// Checks the rules: counts below 2^53, a refill amount of at least 1.
    ///
    /// # Errors
    /// [`LimitError`] naming `credits.remaining` or `credits.refill.amount`.
    pub fn check(&self) -> Result<(), LimitError> {
        if self.remaining > COUNT_MAX {
            return Err(LimitError::new(
                "credits.remaining",
                format!("must be at most {COUNT_MAX}"),
            ));
        }
        match self.refill {
            Some(refill) if !(1..=COUNT_MAX).contains(&refill.amount) => Err(LimitError::new(
                "credits.refill.amount",
                format!("must be between 1 and {COUNT_MAX}"),
            )),
            _ => Ok(()),
        }
    }
}

/// Checks a monthly quota: 1 to [`COUNT_MAX`] calls per UTC calendar month.
///
/// # Errors
/// [`LimitError`] naming `monthly_quota`.
pub fn check_monthly_quota(quota: u64) -> Result<(), LimitError> {
    if (1..=COUNT_MAX).contains(&quota) {
        Ok(())
    } else {
        Err(LimitError::new(
            "monthly_quota",
            format!("must be between 1 and {COUNT_MAX}"),
        ))
    }
}

/// A key's credits as shown: the balance granted, when, and the refill. (What is left of it
/// is in the key's usage.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CreditsInfo {
    /// The balance granted at `granted_at`.
    pub granted: u64,
    /// When it was granted (unix seconds): set by creating the key or changing its credits.
    pub granted_at: i64,
    /// The refill, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refill: Option<Refill>,
}

impl CreditsInfo {
    /// The credits of a stored key, if it has them.
    #[must_use]
    pub fn of(row: &KeyRow) -> Option<Self> {
        let refill = match (row.credits_refill, row.credits_interval.as_deref()) {
            (Some(amount), Some(interval)) => Some(Refill {
                amount: u64::try_from(amount).ok()?,
                interval: interval.parse().ok()?,
            }),
            _ => None,
        };
        Some(Self {
            granted: row.credits.and_then(|n| u64::try_from(n).ok())?,
            granted_at: row.credits_set_at.unwrap_or_default(),
            refill,
        })
    }
}

/// A key's limits beside its daily quota, as listings show them; each only when set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct KeyLimits {
    /// The rate limit, its burst filled in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitSpec>,
    /// Calls per UTC calendar month.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_quota: Option<u64>,
    /// The credits granted, when, and their refill.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credits: Option<CreditsInfo>,
}

impl KeyLimits {
    /// The limits of a stored key.
    #[must_use]
    pub fn of(row: &KeyRow) -> Self {
        Self {
            rate_limit: RateLimitSpec::of(row).map(RateLimitSpec::filled),
            monthly_quota: row.monthly_quota.and_then(|n| u64::try_from(n).ok()),
            credits: CreditsInfo::of(row),
        }
    }
}

/// The columns of a rate limit: `rate_limit`, `rate_period`, `rate_burst` (all `None` for
/// none). The spec must have been checked.
#[must_use]
pub fn rate_columns(spec: Option<&RateLimitSpec>) -> (Option<i64>, Option<String>, Option<i64>) {
    match spec {
        Some(spec) => (
            Some(stored(spec.limit)),
            Some(spec.per.name().to_owned()),
            spec.burst.map(stored),
        ),
        None => (None, None, None),
    }
}

/// The columns of credits granted at `now`: `credits`, `credits_refill`, `credits_interval`,
/// `credits_set_at` (all `None` for none). The spec must have been checked.
#[must_use]
pub fn credits_columns(
    spec: Option<&CreditsSpec>,
    now: i64,
) -> (Option<i64>, Option<i64>, Option<String>, Option<i64>) {
    match spec {
        Some(spec) => (
            Some(stored(spec.remaining)),
            spec.refill.map(|refill| stored(refill.amount)),
            spec.refill.map(|refill| refill.interval.name().to_owned()),
            Some(now),
        ),
        None => (None, None, None, None),
    }
}

/// A checked count as a `BIGINT`: below 2^53, it always fits.
#[must_use]
pub fn stored(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

// ---- reading counts from JSON ----

/// A whole number of JSON, refused in the caller's terms: a negative one as "must be `MIN` or
/// more" (`MIN` is the least the field takes; zero and too-large values are left to the
/// field's check, which names the field and its range).
struct Whole<const MIN: u64>(u64);

impl<'de, const MIN: u64> Deserialize<'de> for Whole<MIN> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct WholeVisitor<const MIN: u64>;

        impl<const MIN: u64> Visitor<'_> for WholeVisitor<MIN> {
            type Value = Whole<MIN>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a whole number, {MIN} or more")
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(Whole(n))
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                u64::try_from(n)
                    .map(Whole)
                    .map_err(|_| E::custom(format_args!("must be {MIN} or more")))
            }

            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
                if n < 0.0 {
                    Err(E::custom(format_args!("must be {MIN} or more")))
                } else if n.fract() != 0.0 || !n.is_finite() {
                    Err(E::custom("must be a whole number"))
                } else if n <= COUNT_MAX as f64 {
                    // A whole number written as a double (`5.0`, `1e3`, `-0`): its value.
                    self.visit_u64(n as u64)
                } else {
                    // Past 2^53, or an integer too large for 64 bits, which serde_json reads
                    // as a double.
                    Err(E::custom(format_args!("must be at most {COUNT_MAX}")))
                }
            }
        }

        deserializer.deserialize_any(WholeVisitor::<MIN>)
    }
}

fn count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    Whole::<0>::deserialize(deserializer).map(|n| n.0)
}

fn positive<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    Whole::<1>::deserialize(deserializer).map(|n| n.0)
}

/// A whole number of at least 1, if given: for `#[serde(default, deserialize_with)]`.
///
/// # Errors
/// The deserializer's, for a value that is not a whole number or is negative.
pub fn optional_positive<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    Option::<Whole<1>>::deserialize(deserializer).map(|n| n.map(|n| n.0))
}

/// A whole number of at least 1, or `null`, when present: `Some(None)` for `null`; with
/// `#[serde(default)]`, `None` when absent.
///
/// # Errors
/// The deserializer's, for a value that is not a whole number or is negative.
pub fn given_positive<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<u64>>, D::Error> {
    optional_positive(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(limit: u64, per: RatePeriod, burst: Option<u64>) -> RateLimitSpec {
        RateLimitSpec { limit, per, burst }
    }

    #[test]
    fn rates_up_to_one_call_per_microsecond_and_bursts_up_to_a_million_pass() {
        use RatePeriod::*;
        for ok in [
            spec(1, Day, None),
            spec(1_000_000, Second, None),
            spec(60_000_000, Minute, Some(1_000_000)),
            spec(86_400_000_000, Day, Some(1)),
            spec(1, Day, Some(53_000)),
            // 333.3 µs a call, counted as 334 µs: 0.2% slower.
            spec(3_000, Second, None),
            spec(7, Minute, None),
        ] {
            assert_eq!(ok.check(), Ok(()), "{ok:?}");
        }
        for (bad, field) in [
            (spec(0, Second, None), "rate_limit.limit"),
            (spec(1_000_001, Second, None), "rate_limit.limit"),
            (spec(86_400_000_001, Day, None), "rate_limit.limit"),
            (spec(u64::MAX, Hour, None), "rate_limit.limit"),
            (spec(10, Second, Some(0)), "rate_limit.burst"),
            (spec(10, Second, Some(1_000_001)), "rate_limit.burst"),
            (spec(1_000_001, Minute, None), "rate_limit.burst"),
            // A burst that takes over 146 years to earn back: the counters cannot hold it.
            (spec(1, Day, Some(100_000)), "rate_limit.burst"),
            // 1.43 µs a call, which whole microseconds would make 2 µs: 29% slower.
            (spec(700_000, Second, None), "rate_limit.limit"),
        ] {
            assert_eq!(bad.check().map_err(|e| e.field), Err(field), "{bad:?}");
        }
        assert_eq!(spec(10, Second, None).filled().burst, Some(10));
        // A rate stored before the whole-microsecond rule is enforced a little slower than
        // written, never faster, rather than dropped: 700,000 a second as one call per 2 µs.
        let legacy = spec(700_000, Second, None).policy().unwrap();
        assert_eq!(
            legacy.emission_interval(),
            Some(std::time::Duration::from_micros(2))
        );
        // A rate the counters keep to within 1% is taken as written: its window is its period.
        let exact = spec(3_000, Second, None).policy().unwrap();
        assert_eq!(
            exact,
            quota::Policy::gcra(
                std::num::NonZeroU64::new(3_000).unwrap(),
                std::time::Duration::from_secs(1)
            )
            .unwrap()
        );
    }

    #[test]
    fn credits_and_monthly_quotas_stay_below_two_to_the_53() {
        let credits = |remaining, refill: Option<(u64, RefillInterval)>| CreditsSpec {
            remaining,
            refill: refill.map(|(amount, interval)| Refill { amount, interval }),
        };
        assert_eq!(credits(0, None).check(), Ok(()), "no uses left is allowed");
        assert_eq!(
            credits(COUNT_MAX, Some((COUNT_MAX, RefillInterval::Month))).check(),
            Ok(())
        );
        for (bad, field) in [
            (credits(COUNT_MAX + 1, None), "credits.remaining"),
            (
                credits(5, Some((0, RefillInterval::Day))),
                "credits.refill.amount",
            ),
            (
                credits(5, Some((1 << 53, RefillInterval::Day))),
                "credits.refill.amount",
            ),
        ] {
            assert_eq!(bad.check().map_err(|e| e.field), Err(field), "{bad:?}");
        }
        assert!(check_monthly_quota(1).is_ok());
        assert!(check_monthly_quota(0).is_err());
        assert!(check_monthly_quota(1 << 53).is_err());
    }

    #[test]
    fn json_numbers_are_refused_in_the_fields_terms() {
        let credits =
            |json: &str| serde_json::from_str::<CreditsSpec>(json).map_err(|e| e.to_string());
        assert_eq!(
            credits(r#"{"remaining": 0, "refill": {"amount": 5, "interval": "month"}}"#).unwrap(),
            CreditsSpec {
                remaining: 0,
                refill: Some(Refill {
                    amount: 5,
                    interval: RefillInterval::Month
                })
            }
        );
        let refused = |json: &str| credits(json).unwrap_err();
        assert!(refused(r#"{"remaining": -1}"#).starts_with("must be 0 or more"));
        assert!(refused(r#"{"remaining": 1.5}"#).starts_with("must be a whole number"));
        assert!(refused(r#"{"remaining": 1e300}"#).starts_with("must be at most"));
        for (whole, value) in [
            ("-0", 0),
            ("-0.0", 0),
            ("0.0", 0),
            ("5.0", 5),
            ("1e3", 1_000),
        ] {
            let json = format!(r#"{{"remaining": {whole}}}"#);
            assert_eq!(credits(&json).unwrap().remaining, value, "{whole}");
        }
        assert!(refused(r#"{"remaining": "many"}"#).contains("a whole number, 0 or more"));
        assert!(
            refused(r#"{"remaining": 1, "refill": {"amount": -3, "interval": "day"}}"#)
                .starts_with("must be 1 or more")
        );
        assert!(
            refused(r#"{"remaining": 1, "refill": {"amount": 3, "interval": "week"}}"#)
                .starts_with("unknown variant `week`")
        );
        assert!(refused(r#"{"remaining": 1, "extra": 2}"#).starts_with("unknown field `extra`"));
        let rate: RateLimitSpec =
            serde_json::from_str(r#"{"limit": 10, "per": "second"}"#).unwrap();
        assert_eq!(rate, spec(10, RatePeriod::Second, None));
        assert_eq!(
            serde_json::to_value(rate.filled()).unwrap(),
            serde_json::json!({"limit": 10, "per": "second", "burst": 10})
        );
    }

    #[test]
    fn the_command_line_forms_parse_and_are_refused_as_the_api_refuses_them() {
        assert_eq!(parse_rate("10/second"), Ok((10, RatePeriod::Second)));
        assert_eq!(parse_rate("5/day"), Ok((5, RatePeriod::Day)));
        assert_eq!(
            parse_refill("100/month"),
            Ok(Refill {
                amount: 100,
                interval: RefillInterval::Month
            })
        );
        let field = |result: Result<(u64, RatePeriod), LimitError>| result.unwrap_err().field;
        assert_eq!(field(parse_rate("10")), "rate_limit");
        assert_eq!(field(parse_rate("ten/second")), "rate_limit.limit");
        assert_eq!(field(parse_rate("10/fortnight")), "rate_limit.per");
        assert_eq!(
            parse_refill("5/week").unwrap_err().field,
            "credits.refill.interval"
        );
        let negative = parse_count("credits.remaining", "-5", 0).unwrap_err();
        assert_eq!(negative.to_string(), "credits.remaining must be 0 or more");
        assert_eq!(
            parse_count("monthly_quota", "99999999999999999999", 1)
                .unwrap_err()
                .reason,
            format!("must be at most {COUNT_MAX}")
        );
        assert_eq!(
            parse_count("monthly_quota", "1.5", 1).unwrap_err().reason,
            "must be a whole number"
        );
    }

    #[test]
    fn a_rows_limits_read_back_and_unset_columns_are_none() {
        let row = KeyRow {
            rate_limit: Some(10),
            rate_period: Some("minute".into()),
            monthly_quota: Some(1_000),
            credits: Some(50),
            credits_refill: Some(20),
            credits_interval: Some("day".into()),
            credits_set_at: Some(1_700),
            ..KeyRow::default()
        };
        let limits = KeyLimits::of(&row);
        assert_eq!(
            limits.rate_limit,
            Some(spec(10, RatePeriod::Minute, Some(10)))
        );
        assert_eq!(limits.monthly_quota, Some(1_000));
        assert_eq!(
            limits.credits,
            Some(CreditsInfo {
                granted: 50,
                granted_at: 1_700,
                refill: Some(Refill {
                    amount: 20,
                    interval: RefillInterval::Day
                })
            })
        );
        assert_eq!(KeyLimits::of(&KeyRow::default()), KeyLimits::default());
        let (credits, refill, interval, at) = credits_columns(
            Some(&CreditsSpec {
                remaining: 7,
                refill: None,
            }),
            99,
        );
        assert_eq!(
            (credits, refill, interval, at),
            (Some(7), None, None, Some(99))
        );
    }
}
