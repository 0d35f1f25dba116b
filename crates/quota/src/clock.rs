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

/// The system's real-time clock read through the CPU's time-stamp counter: the default clock of
/// [`MemoryBackend`](crate::MemoryBackend), several times cheaper to read than [`SystemClock`].
///
/// It counts with [`quanta`] (the TSC where it is reliable, the OS monotonic clock otherwise)
/// from an anchor on [`SystemTime`], and re-anchors at most one second later, so it follows the
/// system clock (NTP adjustments included) within a second's drift of the counter: microseconds.
/// Clones share one anchor.
#[derive(Debug, Clone)]
pub struct FastClock {
    inner: Arc<FastInner>,
}

#[derive(Debug)]
struct FastInner {
    counter: quanta::Clock,
    base: quanta::Instant,
    /// Wall-clock nanoseconds minus counter nanoseconds, as of the last anchor (wrapping).
    offset: AtomicU64,
    /// Counter nanoseconds after which the next read re-anchors.
    next_anchor: AtomicU64,
}

const REANCHOR_NANOS: u64 = 1_000_000_000;

impl FastClock {
    /// A clock anchored on the system clock now.
    #[must_use]
    pub fn new() -> Self {
        let counter = quanta::Clock::new();
        let base = counter.now();
        let inner = FastInner {
            counter,
            base,
            offset: AtomicU64::new(SystemClock.now_nanos()),
            next_anchor: AtomicU64::new(REANCHOR_NANOS),
        };
        Self {
            inner: Arc::new(inner),
        }
    }
}

impl Default for FastClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for FastClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        let inner = &*self.inner;
        let elapsed = inner.counter.now().saturating_duration_since(inner.base);
        let elapsed = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        if elapsed >= inner.next_anchor.load(Ordering::Relaxed) {
            // One atomic holds the whole anchor, so a racing reader sees the old or the new one.
            let offset = SystemClock.now_nanos().wrapping_sub(elapsed);
            inner.offset.store(offset, Ordering::Relaxed);
            inner
                .next_anchor
                .store(elapsed.saturating_add(REANCHOR_NANOS), Ordering::Relaxed);
            return elapsed.wrapping_add(offset);
        }
        elapsed.wrapping_add(inner.offset.load(Ordering::Relaxed))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_clock_follows_the_system_clock() {
        let fast = FastClock::new();
        let before = SystemClock.now_nanos();
        let read = fast.now_nanos();
        let after = SystemClock.now_nanos();
        // Within a millisecond of the system clock (the counter's drift is microseconds).
        assert!(
            read + 1_000_000 >= before && read <= after + 1_000_000,
            "{before} {read} {after}"
        );
    }
}
