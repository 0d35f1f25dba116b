//! The server's clock: the system clock, or a settable one for tests. The same clock drives
//! quotas, signature windows, token expiry and key expiry, in every crate the server uses.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Time since the Unix epoch: the system clock, or a settable one for tests. The same clock
/// drives quotas, signature windows, token expiry and key expiry.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<AtomicU64>>);

const NANOS: u64 = 1_000_000_000;

impl Clock {
    /// The system clock.
    #[must_use]
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock that reads `unix_secs` until moved with [`Clock::set`].
    #[must_use]
    pub fn manual(unix_secs: u64) -> Self {
        Self(Some(Arc::new(AtomicU64::new(
            unix_secs.saturating_mul(NANOS),
        ))))
    }

    /// Moves a manual clock to `unix_secs` (no effect on the system clock).
    pub fn set(&self, unix_secs: u64) {
        if let Some(t) = &self.0 {
            t.store(unix_secs.saturating_mul(NANOS), Ordering::SeqCst);
        }
    }

    /// Nanoseconds since the Unix epoch.
    #[must_use]
    pub fn now_nanos(&self) -> u64 {
        match &self.0 {
            Some(t) => t.load(Ordering::SeqCst),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        }
    }

    /// Whole seconds since the Unix epoch.
    #[must_use]
    pub fn now(&self) -> i64 {
        i64::try_from(self.now_nanos() / NANOS).unwrap_or(i64::MAX)
    }
}

impl quota::Clock for Clock {
    fn now_nanos(&self) -> u64 {
        Clock::now_nanos(self)
    }
}

impl request_signing::Clock for Clock {
    fn now_unix(&self) -> u64 {
        self.now_nanos() / NANOS
    }
}

impl apikey_gen::Clock for Clock {
    fn now_nanos(&self) -> u64 {
        Clock::now_nanos(self)
    }
}
