//! Injected time: the real clock and a fake one for tests.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time, in nanoseconds since the Unix epoch (UTC).
///
/// Fixed windows are aligned to the UTC calendar, so the clock must tell calendar time, not just
/// elapsed time. Implement it to control time (see [`FakeClock`]).
pub trait Clock: Send + Sync + Debug {
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    fn now_nanos(&self) -> u64;
}

/// The system's real-time clock ([`SystemTime::now`]).
///
/// A time before 1970 reads as the epoch itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

/// A clock that only moves when told to; clones share the same time.
///
/// ```
/// use quota::{Clock, FakeClock};
/// use std::time::Duration;
///
/// let clock = FakeClock::at_unix_secs(1_700_000_000);
/// let shared = clock.clone();
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(shared.now_nanos(), 1_700_000_001_000_000_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct FakeClock {
    nanos: Arc<AtomicU64>,
}

impl FakeClock {
    /// A fake clock reading `nanos` nanoseconds since the Unix epoch.
    #[must_use]
    pub fn at_unix_nanos(nanos: u64) -> Self {
        Self {
            nanos: Arc::new(AtomicU64::new(nanos)),
        }
    }

    /// A fake clock reading `secs` seconds since the Unix epoch.
    #[must_use]
    pub fn at_unix_secs(secs: u64) -> Self {
        Self::at_unix_nanos(secs.saturating_mul(1_000_000_000))
    }

    /// Moves the clock forward by `by` (saturating at the end of `u64` nanoseconds).
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // fetch_update cannot fail with a closure that always returns Some.
        let _ = self
            .nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_add(by))
            });
    }

    /// Sets the clock to `nanos` nanoseconds since the Unix epoch (it may go backwards).
    pub fn set_unix_nanos(&self, nanos: u64) {
        self.nanos.store(nanos, Ordering::SeqCst);
    }

    /// Sets the clock to `secs` seconds since the Unix epoch (it may go backwards).
    pub fn set_unix_secs(&self, secs: u64) {
        self.set_unix_nanos(secs.saturating_mul(1_000_000_000));
    }
}

impl Clock for FakeClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::SeqCst)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    #[inline]
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    #[inline]
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}
