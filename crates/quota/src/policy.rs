//! Policies: calendar-aligned fixed windows and GCRA, and the arithmetic both backends share.

use core::num::NonZeroU64;
use core::time::Duration;

use serde::{Deserialize, Serialize};

use crate::decision::{Decision, Detail, Status};
use crate::error::{Error, Result};

const NANOS_PER_SEC: u64 = 1_000_000_000;
const SECS_PER_DAY: u64 = 86_400;
/// The largest GCRA tolerance (burst times emission interval) accepted: about 146 years, so that
/// `now + tolerance` can never overflow a `u64` of nanoseconds before the year 2400.
const MAX_TAU_NANOS: u64 = 1 << 62;

/// Why a GCRA period cannot be divided into emission intervals of whole time units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Inexact {
    /// `period / limit` is under one unit.
    BelowOneUnit,
    /// `period / limit` grows by more than 1% when rounded up to whole units, so that the rate
    /// enforced would be more than 1% below the one configured.
    Rounded,
}

/// The GCRA emission interval `period / limit` (`period` in nanoseconds) in whole units of
/// `unit` nanoseconds (1 in memory, 1,000 on Redis), rounded up, so that the rate enforced is
/// never above the one configured; refused when that makes it more than 1% slower.
pub(crate) fn emission_in(
    period: u64,
    limit: u64,
    unit: u64,
) -> core::result::Result<u64, Inexact> {
    let per_interval = u128::from(limit) * u128::from(unit);
    let period = u128::from(period);
    if period < per_interval {
        return Err(Inexact::BelowOneUnit);
    }
    let emission = period.div_ceil(per_interval);
    // `limit` intervals take `spent` instead of `period`: the rate is `spent / period` slower.
    let spent = emission * per_interval;
    if (spent - period) * 100 > period {
        return Err(Inexact::Rounded);
    }
    // At most `period` rounded up to a unit, so it fits.
    Ok(u64::try_from(emission).unwrap_or(u64::MAX))
}

/// A fixed window aligned to the UTC calendar.
///
/// A window starts on the boundary of its unit (second 0 of the minute, minute 0 of the hour,
/// midnight UTC, the first day of the month at midnight UTC) and ends where the next one starts.
/// Month lengths follow the Gregorian calendar, leap years included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    /// A calendar minute (60 seconds; leap seconds do not exist in Unix time).
    Minute,
    /// A calendar hour.
    Hour,
    /// A UTC calendar day, from midnight to midnight.
    Day,
    /// A calendar month in UTC: 28, 29, 30 or 31 days.
    Month,
    /// One window that never ends: a balance spent once and never renewed (credits without a
    /// refill). Its bounds are `(0, u64::MAX)`; its decisions report no reset time.
    Lifetime,
}

impl Window {
    /// The window containing `unix_secs`: `(start, end)` in seconds since the Unix epoch, start
    /// inclusive and end exclusive.
    #[must_use]
    pub fn bounds(self, unix_secs: u64) -> (u64, u64) {
        let aligned = |len: u64| {
            let start = unix_secs - unix_secs % len;
            (start, start.saturating_add(len))
        };
        match self {
            Self::Minute => aligned(60),
            Self::Hour => aligned(3_600),
            Self::Day => aligned(SECS_PER_DAY),
            Self::Lifetime => (0, u64::MAX),
            Self::Month => {
                let days = unix_secs / SECS_PER_DAY;
                let (year, month, _) = civil_from_days(days);
                let (next_year, next_month) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                let start = days_from_civil(year, month, 1) * SECS_PER_DAY;
                let end = days_from_civil(next_year, next_month, 1).saturating_mul(SECS_PER_DAY);
                (start, end)
            }
        }
    }
}

/// `(year, month 1..=12, day 1..=31)` of the day `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, restricted to dates on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Days from 1970-01-01 to `year-month-day` (Howard Hinnant's `days_from_civil`), for dates on or
/// after the epoch.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What a limiter allows: a calendar-aligned fixed window or a GCRA rate with a burst.
///
/// ```
/// use core::num::NonZeroU64;
/// use std::time::Duration;
/// use quota::{Policy, Window};
///
/// let daily = Policy::per_day(NonZeroU64::new(1_000).unwrap());
/// assert_eq!(daily.window(), Some(Window::Day));
///
/// // 5 per minute, smoothly: one call every 12 s, at most 5 at once.
/// let login = Policy::gcra(NonZeroU64::new(5).unwrap(), Duration::from_secs(60))?;
/// assert_eq!(login.limit(), 5);
/// # Ok::<(), quota::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Policy {
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Fixed {
        window: Window,
        limit: NonZeroU64,
    },
    Gcra {
        limit: NonZeroU64,
        period: u64,
        burst: NonZeroU64,
        emission: u64,
        tau: u64,
        /// The configured time to earn back a whole burst, `burst * period / limit` in
        /// nanoseconds (rounded up): what `w` reports, whatever the rounding of `emission`.
        window: u64,
    },
}

impl Policy {
    /// At most `limit` units of cost per calendar `window`.
    #[must_use]
    pub const fn fixed(window: Window, limit: NonZeroU64) -> Self {
        Self {
            kind: Kind::Fixed { window, limit },
        }
    }

    /// At most `limit` per calendar minute.
    #[must_use]
    pub const fn per_minute(limit: NonZeroU64) -> Self {
        Self::fixed(Window::Minute, limit)
    }

    /// At most `limit` per calendar hour.
    #[must_use]
    pub const fn per_hour(limit: NonZeroU64) -> Self {
        Self::fixed(Window::Hour, limit)
    }

    /// At most `limit` per UTC day (a daily quota that resets at midnight UTC).
    #[must_use]
    pub const fn per_day(limit: NonZeroU64) -> Self {
        Self::fixed(Window::Day, limit)
    }

    /// At most `limit` per calendar month in UTC.
    #[must_use]
    pub const fn per_month(limit: NonZeroU64) -> Self {
        Self::fixed(Window::Month, limit)
    }

    /// At most `limit` ever: a balance of credits that is never renewed.
    #[must_use]
    pub const fn lifetime(limit: NonZeroU64) -> Self {
        Self::fixed(Window::Lifetime, limit)
    }

    /// A GCRA rate of `limit` per `period`, with a burst of `limit`: one unit is earned back every
    /// `period / limit`, and at most `limit` can be spent at once.
    ///
    /// The emission interval is kept in whole nanoseconds, rounded up: the rate enforced is
    /// never above the one configured. A rate that rounding slows by more than 1% is refused
    /// (600,000,000 per second would be one per 2 ns, 500,000,000 per second); every rate of up
    /// to 10,000,000 per second is within it.
    ///
    /// # Errors
    /// [`Error::InvalidPolicy`] when `period / limit` is under one nanosecond, grows by more than
    /// 1% when rounded up to whole nanoseconds, or the period is longer than about 146 years.
    pub fn gcra(limit: NonZeroU64, period: Duration) -> Result<Self> {
        Self::gcra_with_burst(limit, period, limit)
    }

    fn gcra_with_burst(limit: NonZeroU64, period: Duration, burst: NonZeroU64) -> Result<Self> {
        let period = u64::try_from(period.as_nanos())
            .map_err(|_| Error::InvalidPolicy("the GCRA period is too long"))?;
        let emission = emission_in(period, limit.get(), 1).map_err(|problem| match problem {
            Inexact::BelowOneUnit => Error::InvalidPolicy(
                "the GCRA rate is above one call per nanosecond (period / limit is zero)",
            ),
            Inexact::Rounded => Error::InvalidPolicy(
                "the GCRA period / limit is not a whole number of nanoseconds to within 1%",
            ),
        })?;
        let tau = emission
            .checked_mul(burst.get())
            .filter(|&tau| tau <= MAX_TAU_NANOS)
            .ok_or(Error::InvalidPolicy(
                "the GCRA burst times the emission interval is too long",
            ))?;
        // At most `tau`, which is at most 2^62.
        let window = u128::from(burst.get()) * u128::from(period);
        let window = u64::try_from(window.div_ceil(u128::from(limit.get()))).unwrap_or(u64::MAX);
        Ok(Self {
            kind: Kind::Gcra {
                limit,
                period,
                burst,
                emission,
                tau,
                window,
            },
        })
    }

    /// This GCRA policy with a different burst (the most that can be spent at once).
    ///
    /// # Errors
    /// [`Error::InvalidPolicy`] for a fixed-window policy (its burst is its limit) or when the
    /// burst times the emission interval is longer than about 146 years.
    pub fn with_burst(self, burst: NonZeroU64) -> Result<Self> {
        match self.kind {
            Kind::Gcra { limit, period, .. } => {
                Self::gcra_with_burst(limit, Duration::from_nanos(period), burst)
            }
            Kind::Fixed { .. } => Err(Error::InvalidPolicy(
                "a burst only applies to a GCRA policy",
            )),
        }
    }

    /// This policy with its limit replaced, as a per-key override does: a fixed window allows
    /// `limit` per window; a GCRA policy becomes `limit` per the same period with a burst of
    /// `limit`.
    ///
    /// # Errors
    /// [`Error::InvalidPolicy`] when the resulting GCRA policy is invalid (see [`Policy::gcra`]).
    pub fn with_limit(self, limit: NonZeroU64) -> Result<Self> {
        match self.kind {
            Kind::Fixed { window, .. } => Ok(Self::fixed(window, limit)),
            Kind::Gcra { period, .. } => Self::gcra(limit, Duration::from_nanos(period)),
        }
    }

    /// The most that can be spent at once: the window's limit, or the GCRA burst.
    #[must_use]
    pub const fn limit(&self) -> u64 {
        match self.kind {
            Kind::Fixed { limit, .. } => limit.get(),
            Kind::Gcra { burst, .. } => burst.get(),
        }
    }

    /// The calendar window of a fixed-window policy; `None` for GCRA.
    #[must_use]
    pub const fn window(&self) -> Option<Window> {
        match self.kind {
            Kind::Fixed { window, .. } => Some(window),
            Kind::Gcra { .. } => None,
        }
    }

    /// The GCRA emission interval (time to earn back one unit); `None` for a fixed window.
    #[must_use]
    pub const fn emission_interval(&self) -> Option<Duration> {
        match self.kind {
            Kind::Fixed { .. } => None,
            Kind::Gcra { emission, .. } => Some(Duration::from_nanos(emission)),
        }
    }

    /// The GCRA period given to [`Policy::gcra`]; `None` for a fixed window.
    #[must_use]
    pub const fn period(&self) -> Option<Duration> {
        match self.kind {
            Kind::Fixed { .. } => None,
            Kind::Gcra { period, .. } => Some(Duration::from_nanos(period)),
        }
    }

    /// The GCRA burst of a GCRA policy; `None` for a fixed window (whose burst is its limit).
    #[must_use]
    pub const fn burst(&self) -> Option<NonZeroU64> {
        match self.kind {
            Kind::Fixed { .. } => None,
            Kind::Gcra { burst, .. } => Some(burst),
        }
    }

    pub(crate) const fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether `other` can replace this policy for one call on the same backend: both GCRA, or
    /// both fixed windows of the same calendar unit (a key's state means the same under both).
    pub(crate) fn same_shape(&self, other: &Self) -> bool {
        match (self.kind, other.kind) {
            (Kind::Gcra { .. }, Kind::Gcra { .. }) => true,
            (Kind::Fixed { window: a, .. }, Kind::Fixed { window: b, .. }) => a == b,
            _ => false,
        }
    }
}

/// The state of one key under a fixed window: the window it counts for and what it used there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FixedState {
    pub(crate) window_start: u64,
    pub(crate) used: u64,
}

/// Applies one call of `cost` to a fixed-window state at `now` (nanoseconds).
///
/// The state never goes back to an earlier window: a `now` read before another call's, which
/// took the lock first across a window's end (or a clock stepped back), counts in the state's
/// newer window, as if it were read at that window's start.
pub(crate) fn fixed_step(
    window: Window,
    limit: u64,
    mut now: u64,
    state: &mut FixedState,
    cost: u64,
) -> Decision {
    let (mut start, mut end) = window.bounds(now / NANOS_PER_SEC);
    if start > state.window_start {
        *state = FixedState {
            window_start: start,
            used: 0,
        };
    } else if start < state.window_start {
        (start, end) = window.bounds(state.window_start);
        now = start.saturating_mul(NANOS_PER_SEC);
    }
    let status = if cost > limit {
        Status::CostExceedsLimit
    } else {
        // A sum past `u64::MAX` is past any limit: refused, never wrapped.
        match state.used.checked_add(cost) {
            Some(used) if used <= limit => {
                state.used = used;
                Status::Allowed
            }
            _ => Status::Limited,
        }
    };
    fixed_decision(status, state.used, limit, now, start, end, cost)
}

/// The decision for a fixed window whose key has `used` of `limit` in `[start, end)` seconds,
/// on a call of `cost` (what it charged, if allowed).
pub(crate) const fn fixed_decision(
    status: Status,
    used: u64,
    limit: u64,
    now: u64,
    start: u64,
    end: u64,
    cost: u64,
) -> Decision {
    Decision {
        status,
        limit,
        detail: Detail::Fixed {
            used,
            now,
            start,
            end,
            cost,
        },
        fallback_path: 0,
    }
}

/// GCRA parameters in one unit of time (nanoseconds in memory, microseconds on Redis).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gcra {
    pub(crate) emission: u64,
    pub(crate) burst: u64,
    /// The configured time to earn back a whole burst, in nanoseconds whatever the unit (see
    /// `Kind::Gcra::window`).
    pub(crate) window: u64,
}

impl Gcra {
    pub(crate) const fn tau(self) -> u64 {
        self.emission.saturating_mul(self.burst)
    }
}

/// Applies one call of `cost` to a GCRA theoretical arrival time `tat` at `now` (nanoseconds).
pub(crate) fn gcra_step(gcra: Gcra, now: u64, tat: &mut u64, cost: u64) -> Decision {
    let current = (*tat).max(now);
    let status = if cost > gcra.burst {
        Status::CostExceedsLimit
    } else {
        let next = current.saturating_add(cost.saturating_mul(gcra.emission));
        if next - now > gcra.tau() {
            Status::Limited
        } else {
            *tat = next;
            Status::Allowed
        }
    };
    let shown = if status == Status::Allowed {
        *tat
    } else {
        current
    };
    gcra_decision(status, gcra, now, shown, cost, 1)
}

/// The decision for a GCRA key whose theoretical arrival time is `tat` at `now`. All times and
/// `gcra` are in units of `scale` nanoseconds (1 in memory, 1,000 on Redis).
pub(crate) const fn gcra_decision(
    status: Status,
    gcra: Gcra,
    now: u64,
    tat: u64,
    cost: u64,
    scale: u64,
) -> Decision {
    Decision {
        status,
        limit: gcra.burst,
        detail: Detail::Gcra {
            now,
            level: tat.saturating_sub(now),
            emission: gcra.emission,
            tau: gcra.tau(),
            window: gcra.window,
            cost,
            scale,
        },
        fallback_path: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips_every_day_for_five_centuries() {
        for days in 0..(500 * 366) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn minute_hour_day_align_to_the_calendar() {
        // 2024-03-10T13:45:30Z
        let t = 1_710_078_330;
        assert_eq!(Window::Minute.bounds(t), (1_710_078_300, 1_710_078_360));
        assert_eq!(Window::Hour.bounds(t), (1_710_075_600, 1_710_079_200));
        assert_eq!(Window::Day.bounds(t), (1_710_028_800, 1_710_115_200));
    }

    #[test]
    fn gcra_rejects_rates_below_a_nanosecond() {
        let limit = NonZeroU64::new(10).unwrap_or(NonZeroU64::MIN);
        assert!(Policy::gcra(limit, Duration::from_nanos(5)).is_err());
        assert!(Policy::gcra(limit, Duration::from_secs(1)).is_ok());
        assert!(Policy::per_day(limit).with_burst(limit).is_err());
    }

    #[test]
    fn gcra_rounds_its_interval_up_and_refuses_rates_rounding_slows_much() {
        let n = |v| NonZeroU64::new(v).unwrap_or(NonZeroU64::MIN);
        // 1 s / 600,000,000 = 1.67 ns: one per 2 ns would be 500,000,000 a second.
        assert!(matches!(
            Policy::gcra(n(600_000_000), Duration::from_secs(1)),
            Err(Error::InvalidPolicy(_))
        ));
        // 1 s / 3 gains two thirds of a nanosecond: far below 1%.
        assert!(Policy::gcra(n(3), Duration::from_secs(1)).is_ok());
        // Rounded up, never down: the rate enforced is never above the one configured.
        assert_eq!(emission_in(1_000_001, 1_000, 1), Ok(1_001));
        assert_eq!(emission_in(1_000_000, 1_000, 1), Ok(1_000));
        // The edge: 1% slower is accepted, more is not.
        assert_eq!(emission_in(100_000, 1_000, 1), Ok(100));
        assert_eq!(emission_in(99_990, 1_000, 1), Ok(100));
        assert_eq!(emission_in(99_010, 1_000, 1), Ok(100));
        assert_eq!(emission_in(99_009, 1_000, 1), Err(Inexact::Rounded));
        assert_eq!(emission_in(999, 1_000, 1), Err(Inexact::BelowOneUnit));
        // In microseconds (Redis): 60 s / 40,000,000 = 1.5 µs, rounded to 2 µs: a third slower.
        assert_eq!(
            emission_in(60_000_000_000, 40_000_000, 1_000),
            Err(Inexact::Rounded)
        );
        // 3,000 a second is 333.3 µs, enforced as 334 µs: 0.2% slower, accepted.
        assert_eq!(emission_in(1_000_000_000, 3_000, 1_000), Ok(334));
    }

    #[test]
    fn a_fixed_count_past_u64_max_is_refused() {
        let mut state = FixedState {
            window_start: 0,
            used: u64::MAX,
        };
        let d = fixed_step(Window::Day, u64::MAX, 0, &mut state, 1);
        assert_eq!(d.status(), Status::Limited);
        assert_eq!(state.used, u64::MAX);
    }
}
