//! The answer to one call, and the HTTP headers that describe it.

use core::time::Duration;

/// What became of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// Granted and counted.
    Allowed,
    /// Denied: the limit is reached; try again after [`Decision::retry_after`].
    Limited,
    /// Denied: the call costs more than the limit, so it can never be granted.
    CostExceedsLimit,
    /// Granted without counting, because the store was unreachable and the limiter fails open.
    FailedOpen,
    /// Denied without counting, because the store was unreachable and the limiter fails closed.
    FailedClosed,
}

/// The answer to one call: whether it may proceed, and the numbers to tell the client.
///
/// Marked `#[must_use]`: a decision that is ignored is a limit that is not enforced.
#[must_use = "a quota decision that is ignored enforces nothing"]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decision {
    pub(crate) status: Status,
    pub(crate) limit: u64,
    pub(crate) detail: Detail,
    /// Which backend of each [`FallbackBackend`](crate::FallbackBackend) the decision passed
    /// through made it, one bit a layer, the outermost in bit 0: set when that layer's local
    /// backend (or the layer itself, failing open or closed) decided instead of its primary. A
    /// refund goes back to the backend that counted the call.
    pub(crate) fallback_path: u8,
}

/// The raw numbers behind a decision; the figures a client sees are derived on demand, so a
/// decision that is only checked for [`Decision::is_allowed`] costs no division.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Detail {
    /// A fixed window: `used` of the limit in `[start, end)` (Unix seconds) at `now`
    /// (nanoseconds), after a call of `cost` (charged if the call was allowed).
    Fixed {
        used: u64,
        now: u64,
        start: u64,
        end: u64,
        cost: u64,
    },
    /// GCRA, every time in units of `scale` nanoseconds but `window`: the bucket is `level`
    /// ahead of `now` after a call of `cost` (charged if the call was allowed). `window` is the
    /// configured time to earn back a whole burst, in nanoseconds.
    Gcra {
        now: u64,
        level: u64,
        emission: u64,
        tau: u64,
        window: u64,
        cost: u64,
        scale: u64,
    },
    /// The store was unreachable; only the policy's window is known.
    Unavailable { window: Duration },
}

const NANOS_PER_SEC: u64 = 1_000_000_000;
/// The largest integer a Structured Field may carry (RFC 9651 section 3.3.1: 15 digits).
pub(crate) const MAX_SF_INTEGER: u64 = 999_999_999_999_999;

/// `n` as the `RateLimit` and `RateLimit-Policy` fields write it: capped at 15 digits.
pub(crate) const fn sf_integer(n: u64) -> u64 {
    if n > MAX_SF_INTEGER {
        MAX_SF_INTEGER
    } else {
        n
    }
}

/// The window and reset time of a [`Window::Lifetime`](crate::Window::Lifetime) policy, which
/// never renews: [`Duration::MAX`]. Header fields leave such times out.
pub const NEVER: Duration = Duration::MAX;

impl Decision {
    /// A decision made without the store (see [`Status::FailedOpen`] and [`Status::FailedClosed`]).
    pub(crate) fn unavailable(open: bool, limit: u64, window: Duration) -> Self {
        Self {
            status: if open {
                Status::FailedOpen
            } else {
                Status::FailedClosed
            },
            limit,
            detail: Detail::Unavailable { window },
            fallback_path: 0,
        }
    }

    /// Whether the call may proceed ([`Status::Allowed`] or [`Status::FailedOpen`]).
    #[must_use]
    pub const fn is_allowed(&self) -> bool {
        matches!(self.status, Status::Allowed | Status::FailedOpen)
    }

    /// What became of the call.
    #[must_use]
    pub const fn status(&self) -> Status {
        self.status
    }

    /// The policy's limit for this key (the window's limit or the GCRA burst, after any override).
    #[must_use]
    pub const fn limit(&self) -> u64 {
        self.limit
    }

    /// How much cost can still be spent right now (0 when the store was unreachable).
    #[must_use]
    pub fn remaining(&self) -> u64 {
        match self.detail {
            Detail::Fixed { used, .. } => self.limit.saturating_sub(used),
            Detail::Gcra {
                level,
                emission,
                tau,
                ..
            } => (tau.saturating_sub(level) / emission.max(1)).min(self.limit),
            Detail::Unavailable { .. } => 0,
        }
    }

    /// Time until the quota is whole again: the end of the fixed window, or until a GCRA bucket is
    /// full. Zero when the store was unreachable.
    #[must_use]
    pub fn reset(&self) -> Duration {
        match self.detail {
            Detail::Fixed { end: u64::MAX, .. } => NEVER,
            Detail::Fixed { now, end, .. } => {
                Duration::from_nanos(end.saturating_mul(NANOS_PER_SEC).saturating_sub(now))
            }
            Detail::Gcra { level, scale, .. } => Duration::from_nanos(level.saturating_mul(scale)),
            Detail::Unavailable { .. } => Duration::ZERO,
        }
    }

    /// When the quota is whole again, in whole seconds since the Unix epoch (0 when unknown,
    /// `u64::MAX` for a lifetime that never renews).
    #[must_use]
    pub fn reset_at_unix_secs(&self) -> u64 {
        match self.detail {
            Detail::Fixed { end, .. } => end,
            Detail::Gcra {
                now, level, scale, ..
            } => now
                .saturating_add(level)
                .saturating_mul(scale)
                .div_ceil(NANOS_PER_SEC),
            Detail::Unavailable { .. } => 0,
        }
    }

    /// On [`Status::Limited`], how long until the same call would be granted; `None` otherwise,
    /// and for a spent lifetime balance, which never renews.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        if self.status != Status::Limited || self.reset() == NEVER {
            return None;
        }
        match self.detail {
            Detail::Fixed { .. } => Some(self.reset()),
            Detail::Gcra {
                level,
                emission,
                tau,
                cost,
                scale,
                ..
            } => {
                let wait = level
                    .saturating_add(cost.saturating_mul(emission))
                    .saturating_sub(tau);
                Some(Duration::from_nanos(wait.saturating_mul(scale)))
            }
            Detail::Unavailable { .. } => None,
        }
    }

    /// The policy's time window: the current calendar window's length, or the GCRA time to refill
    /// a whole burst as configured (`burst * period / limit`: the period itself when the burst is
    /// the limit) ([`NEVER`] for a lifetime).
    #[must_use]
    pub fn window(&self) -> Duration {
        match self.detail {
            Detail::Fixed { end: u64::MAX, .. } => NEVER,
            Detail::Fixed { start, end, .. } => Duration::from_secs(end - start),
            Detail::Gcra { window, .. } => Duration::from_nanos(window),
            Detail::Unavailable { window } => window,
        }
    }

    /// The IETF draft fields (draft-ietf-httpapi-ratelimit-headers-10):
    /// `RateLimit-Policy: "name";q=LIMIT;w=WINDOW` and `RateLimit: "name";r=REMAINING;t=RESET`.
    ///
    /// `name` is the policy identifier, written as a Structured Field String: `"` and `\` are
    /// escaped and characters outside printable ASCII become `_`. When the store was unreachable
    /// only `RateLimit-Policy` is given, since the current numbers are unknown. A lifetime
    /// policy, which never renews, has neither `w` nor `t`. The numbers are Structured Field
    /// Integers, of at most 15 digits: a larger `q`, `r`, `w` or `t` is written as
    /// 999,999,999,999,999 (the `X-RateLimit-*` fields carry the exact numbers).
    #[must_use]
    pub fn ietf_headers(&self, name: &str) -> Vec<(&'static str, String)> {
        let name = sf_string(name);
        let mut headers = vec![("RateLimit-Policy", self.policy_member(&name))];
        if !self.is_degraded() {
            headers.push(("RateLimit", self.current_member(&name)));
        }
        headers
    }

    /// This decision's member of `RateLimit-Policy`: `name;q=LIMIT;w=WINDOW`, with `name`
    /// already a Structured Field String.
    pub(crate) fn policy_member(&self, sf_name: &str) -> String {
        let limit = sf_integer(self.limit);
        match self.window() {
            NEVER => format!("{sf_name};q={limit}"),
            window => format!("{sf_name};q={limit};w={}", sf_integer(ceil_secs(window))),
        }
    }

    /// This decision's member of `RateLimit`: `name;r=REMAINING;t=RESET`.
    pub(crate) fn current_member(&self, sf_name: &str) -> String {
        let remaining = sf_integer(self.remaining());
        match self.reset() {
            NEVER => format!("{sf_name};r={remaining}"),
            reset => format!("{sf_name};r={remaining};t={}", sf_integer(ceil_secs(reset))),
        }
    }

    /// The widespread `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (the
    /// reset as Unix epoch seconds, as Flask-Limiter and GitHub send it). Empty when the store was
    /// unreachable.
    #[must_use]
    pub fn x_ratelimit_headers(&self) -> Vec<(&'static str, String)> {
        if self.is_degraded() {
            return Vec::new();
        }
        let mut headers = vec![
            ("X-RateLimit-Limit", self.limit.to_string()),
            ("X-RateLimit-Remaining", self.remaining().to_string()),
        ];
        if self.reset() != NEVER {
            headers.push(("X-RateLimit-Reset", self.reset_at_unix_secs().to_string()));
        }
        headers
    }

    /// `Retry-After` in whole seconds (rounded up) on [`Status::Limited`]; `None` otherwise.
    #[must_use]
    pub fn retry_after_header(&self) -> Option<(&'static str, String)> {
        self.retry_after()
            .map(|wait| ("Retry-After", ceil_secs(wait).to_string()))
    }

    /// All of the above: the IETF fields, the `X-RateLimit-*` fields and `Retry-After` when
    /// limited, as `(name, value)` pairs any HTTP framework can add to a response.
    #[must_use]
    pub fn headers(&self, name: &str) -> Vec<(&'static str, String)> {
        let mut headers = self.ietf_headers(name);
        headers.extend(self.x_ratelimit_headers());
        headers.extend(self.retry_after_header());
        headers
    }

    /// What a refund of `cost` may give back of this decision at `now` (nanoseconds): nothing
    /// unless the call was allowed; for a fixed window, at most the cost it charged (in units);
    /// for GCRA, in nanoseconds, at most the cost it charged times the emission interval, and
    /// only the part of that charge the bucket has not yet drained by `now`, so that a refund
    /// never lowers the bucket below the level it would have without the call.
    pub(crate) fn refundable(&self, cost: u64, now: u64) -> u64 {
        if self.status != Status::Allowed {
            return 0;
        }
        match self.detail {
            Detail::Fixed { cost: charged, .. } => cost.min(charged),
            Detail::Gcra {
                now: then,
                level,
                emission,
                cost: charged,
                scale,
                ..
            } => {
                let back = cost
                    .min(charged)
                    .saturating_mul(emission)
                    .saturating_mul(scale);
                // The charge ends where the bucket stood after it; what lies before `now` has
                // drained already.
                let ahead = then
                    .saturating_add(level)
                    .saturating_mul(scale)
                    .saturating_sub(now);
                back.min(ahead)
            }
            Detail::Unavailable { .. } => 0,
        }
    }

    pub(crate) const fn is_degraded(&self) -> bool {
        matches!(self.status, Status::FailedOpen | Status::FailedClosed)
    }
}

pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

/// `name` as a Structured Field String (RFC 9651 section 3.3.3).
pub(crate) fn sf_string(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('_'),
        }
    }
    out.push('"');
    out
}

impl core::fmt::Display for Status {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Allowed => "allowed",
            Self::Limited => "limited",
            Self::CostExceedsLimit => "cost exceeds limit",
            Self::FailedOpen => "store unavailable, failed open",
            Self::FailedClosed => "store unavailable, failed closed",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited() -> Decision {
        // 5 per minute; the bucket is 59.2 s full, so one more call waits 11.2 s.
        Decision {
            status: Status::Limited,
            limit: 5,
            detail: Detail::Gcra {
                now: 1_699_999_999_800_000_000,
                level: 59_200_000_000,
                emission: 12_000_000_000,
                tau: 60_000_000_000,
                window: 60_000_000_000,
                cost: 1,
                scale: 1,
            },
            fallback_path: 0,
        }
    }

    #[test]
    fn headers_render_every_field() {
        let headers = limited().headers("login");
        let expected = [
            ("RateLimit-Policy", "\"login\";q=5;w=60"),
            ("RateLimit", "\"login\";r=0;t=60"),
            ("X-RateLimit-Limit", "5"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", "1700000059"),
            ("Retry-After", "12"),
        ];
        let got: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn policy_names_are_escaped() {
        let headers = limited().ietf_headers("a\"b\\c\né");
        assert_eq!(headers[0].1, "\"a\\\"b\\\\c__\";q=5;w=60");
    }

    #[test]
    fn a_lifetime_balance_reports_no_window_and_no_reset() {
        let d = Decision {
            status: Status::Allowed,
            limit: 100,
            detail: Detail::Fixed {
                used: 40,
                now: 1_700_000_000_000_000_000,
                start: 0,
                end: u64::MAX,
                cost: 1,
            },
            fallback_path: 0,
        };
        assert_eq!((d.window(), d.reset()), (NEVER, NEVER));
        let got: Vec<(&str, String)> = d.headers("credits");
        let expected = [
            ("RateLimit-Policy", "\"credits\";q=100"),
            ("RateLimit", "\"credits\";r=60"),
            ("X-RateLimit-Limit", "100"),
            ("X-RateLimit-Remaining", "60"),
        ];
        let got: Vec<(&str, &str)> = got.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_degraded_decision_claims_no_numbers() {
        let d = Decision::unavailable(true, 5, Duration::from_secs(60));
        assert!(d.is_allowed());
        let names: Vec<&str> = d.headers("q").iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["RateLimit-Policy"]);
        assert!(!Decision::unavailable(false, 5, Duration::ZERO).is_allowed());
    }
}
