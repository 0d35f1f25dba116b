use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A source of monotonic time, injected so that cooldowns and cache expiry can be tested
/// without sleeping.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock ([`Instant::now`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that only moves when told to, for tests; clones share the same time.
#[derive(Debug, Clone)]
pub struct FakeClock {
    now: Arc<Mutex<Instant>>,
}

impl FakeClock {
    /// A fake clock starting at the current real instant.
    #[must_use]
    pub fn new() -> Self {
        Self {
            now: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `now + by`, or a hundred years from `now` where the sum does not fit (a cooldown or time to
/// live of `Duration::MAX`, meaning "for good").
pub(crate) fn later(now: Instant, by: Duration) -> Instant {
    const FOR_GOOD: Duration = Duration::from_secs(100 * 365 * 86_400);
    now.checked_add(by)
        .or_else(|| now.checked_add(FOR_GOOD))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_time() {
        let a = FakeClock::new();
        let b = a.clone();
        let start = b.now();
        a.advance(Duration::from_secs(3));
        assert_eq!(b.now() - start, Duration::from_secs(3));
    }
}
