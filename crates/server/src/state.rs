//! The one state every handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::auth::jwt::Tokens;
use crate::auth::password::Passwords;
use crate::config::Settings;
use crate::store::Db;

/// Unix time in seconds: the system clock, or a settable one for tests.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl Clock {
    /// The system clock.
    #[must_use]
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock that reads `at` until set otherwise with [`Clock::set`].
    #[must_use]
    pub fn manual(at: i64) -> Self {
        Self(Some(Arc::new(AtomicI64::new(at))))
    }

    /// Moves a manual clock to `at` (no effect on the system clock).
    pub fn set(&self, at: i64) {
        if let Some(t) = &self.0 {
            t.store(at, Ordering::SeqCst);
        }
    }

    /// Seconds since the Unix epoch.
    #[must_use]
    pub fn now(&self) -> i64 {
        match &self.0 {
            Some(t) => t.load(Ordering::SeqCst),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        }
    }
}

/// Everything the handlers need.
#[derive(Debug)]
pub struct AppState {
    /// Resolved settings.
    pub settings: Settings,
    /// The database.
    pub db: Db,
    /// The argon2 hasher.
    pub passwords: Passwords,
    /// The JWT issuer.
    pub tokens: Tokens,
    /// The clock.
    pub clock: Clock,
}
