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
    /// # Errors
    /// [`Error::InvalidPolicy`] when `period / limit` is under one nanosecond or the period is
    /// longer than about 146 years.
    pub fn gcra(limit: NonZeroU64, period: Duration) -> Result<Self> {
        Self::gcra_with_burst(limit, period, limit)
    }

    fn gcra_with_burst(limit: NonZeroU64, period: Duration, burst: NonZeroU64) -> Result<Self> {
        let period = u64::try_from(period.as_nanos())
            .map_err(|_| Error::InvalidPolicy("the GCRA period is too long"))?;
        let emission = period / limit.get();
        if emission == 0 {
            return Err(Error::InvalidPolicy(
                "the GCRA rate is above one call per nanosecond (period / limit is zero)",
            ));
        }
        let tau = emission
            .checked_mul(burst.get())
            .filter(|&tau| tau <= MAX_TAU_NANOS)
            .ok_or(Error::InvalidPolicy(
                "the GCRA burst times the emission interval is too long",
            ))?;
        Ok(Self {
            kind: Kind::Gcra {
                limit,
                period,
                burst,
                emission,
                tau,
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
    } else if state.used.saturating_add(cost) > limit {
        Status::Limited
    } else {
        state.used += cost;
        Status::Allowed
    };
    fixed_decision(status, state.used, limit, now, start, end)
}

/// The decision for a fixed window whose key has `used` of `limit` in `[start, end)` seconds.
pub(crate) const fn fixed_decision(
    status: Status,
    used: u64,
    limit: u64,
    now: u64,
    start: u64,
    end: u64,
) -> Decision {
    Decision {
        status,
        limit,
        detail: Detail::Fixed {
            used,
            now,
            start,
            end,
        },
        fallback_path: 0,
    }
}

/// GCRA parameters in one unit of time (nanoseconds in memory, microseconds on Redis).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gcra {
    pub(crate) emission: u64,
    pub(crate) burst: u64,
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
}
