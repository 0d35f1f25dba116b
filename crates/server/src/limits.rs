//! The two limiters the server applies, each in this process's memory or on Redis.
//!
//! - the per-key daily quota (a UTC-day fixed window; each key's own quota travels with each
//!   call, so nothing is synchronised into the store beforehand);
//! - the per-client limit on `/login` and `/register` (GCRA, 5 per minute).
//!
//! On Redis every instance sees the same counters, so N instances behind a load balancer grant
//! a key its quota once, not N times. Whenever Redis gives no decision (it does not answer
//! within the Redis timeout, or answers with an error such as `OOM` or `READONLY`), each
//! limiter follows its [`FailPolicy`] through `quota`'s [`FallbackBackend`]: the quota fails
//! open (the call is allowed and not counted) or closed (503); the login limit falls back to
//! this instance's own limiter (open) or answers 503 (closed). Never a 500. Each outage is
//! counted in `secure_api_redis_errors_total` and `secure_api_redis_fallbacks_total`.

use std::fmt;
use std::num::NonZeroU64;

use quota::{
    Backend as _, Decision, FailMode, FallbackBackend, MemoryBackend, Policy, RedisBackend,
    Snapshot, Usage,
};

use crate::config::{FailPolicy, RedisSettings};
use crate::error::ApiError;
use crate::observe;
use crate::state::Clock;

/// What a limiter is for: names its Redis keys, its log lines and its metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concern {
    /// Per-key daily quotas.
    Quota,
    /// Per-client login and registration attempts.
    Login,
}

impl Concern {
    /// The label: `quota` or `login`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quota => "quota",
            Self::Login => "login",
        }
    }
}

/// A limiter in memory or on Redis.
pub enum Limiter {
    /// This process's memory (a single instance; the quota is saved to the database).
    Memory(MemoryBackend<Clock>),
    /// Redis, shared by every instance, with what to do when it gives no decision.
    Redis(Box<FallbackBackend<RedisBackend<Clock>, MemoryBackend<Clock>>>),
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory(memory) => f.debug_tuple("Limiter::Memory").field(memory).finish(),
            Self::Redis(redis) => f.debug_tuple("Limiter::Redis").field(redis).finish(),
        }
    }
}

fn build_error(error: quota::Error) -> ApiError {
    ApiError::internal(error)
}

impl Limiter {
    /// A limiter in this process's memory.
    pub fn memory(policy: Policy, clock: &Clock) -> Result<Self, ApiError> {
        Ok(Self::Memory(memory_backend(policy, clock)?))
    }

    /// A limiter on Redis. It connects lazily, so the server starts while Redis is down.
    pub fn redis(
        policy: Policy,
        clock: &Clock,
        conn: redis::aio::ConnectionManager,
        settings: &RedisSettings,
        concern: Concern,
    ) -> Result<Self, ApiError> {
        let fail = match concern {
            Concern::Quota => settings.fail_quota,
            Concern::Login => settings.fail_login,
        };
        // Redis reports every failure, so that the fallback sees (and counts) each one.
        let redis = RedisBackend::builder(policy)
            .clock(clock.clone())
            .prefix(format!("{}:{}", settings.prefix, concern.as_str()))
            .timeout(settings.timeout)
            .fail_mode(FailMode::Error)
            .with_connection(conn)
            .map_err(build_error)?;
        let label = concern.as_str();
        let builder = FallbackBackend::builder(redis).on_outage(move |error| {
            let kind = match error {
                quota::Error::Unavailable { .. } => "unavailable",
                _ => "store",
            };
            tracing::debug!(concern = label, %error, "Redis gave no decision");
            observe::redis_error(label, kind);
            observe::redis_fallback(label, fail.as_str());
        });
        let builder = match (concern, fail) {
            // The login limit goes on with this instance's own counts.
            (Concern::Login, FailPolicy::Open) => {
                builder.maybe_local(Some(memory_backend(policy, clock)?))
            }
            // The quota allows the call uncounted.
            (Concern::Quota, FailPolicy::Open) => {
                builder.fail_mode(FailMode::Open).maybe_local(None)
            }
            (_, FailPolicy::Closed) => builder.fail_mode(FailMode::Closed).maybe_local(None),
        };
        Ok(Self::Redis(Box::new(builder.build().map_err(build_error)?)))
    }

    /// Whether the counters live on Redis.
    #[must_use]
    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Redis(_))
    }

    /// Decides one call of `cost` units for `key`, whose own limit is `limit` (`None`: the
    /// policy's). The limit travels with the call, so a Redis that restarted empty still
    /// applies it. A decision made without Redis says so in [`Decision::status`]
    /// (`FailedOpen`, `FailedClosed`); the outage was already counted.
    pub async fn decide(
        &self,
        key: &str,
        cost: u64,
        limit: Option<NonZeroU64>,
    ) -> Result<Decision, ApiError> {
        match self {
            Self::Memory(memory) => match limit {
                Some(limit) => memory.decide_with_limit(key, cost, limit),
                None => memory.decide(key, cost),
            },
            Self::Redis(redis) => match limit {
                Some(limit) => redis.decide_with_limit(key, cost, limit).await,
                None => redis.decide(key, cost).await,
            },
        }
        .map_err(ApiError::internal)
    }

    /// The key's current consumption, with its own `limit` as in [`Limiter::decide`].
    pub async fn usage(&self, key: &str, limit: Option<NonZeroU64>) -> Result<Usage, ApiError> {
        match self {
            Self::Memory(memory) => match limit {
                Some(limit) => memory.usage_with_limit(key, limit),
                None => memory.usage(key),
            }
            .map_err(ApiError::internal),
            Self::Redis(redis) => match limit {
                Some(limit) => redis.usage_with_limit(key, limit).await,
                None => redis.usage(key).await,
            }
            .map_err(redis_call_error),
        }
    }

    /// The in-memory counters, for saving to the database; `None` on Redis (Redis keeps them).
    #[must_use]
    pub fn snapshot(&self) -> Option<Snapshot> {
        match self {
            Self::Memory(memory) => Some(memory.snapshot()),
            Self::Redis(_) => None,
        }
    }

    /// Restores saved in-memory counters; returns how many keys. Nothing to do on Redis.
    pub fn restore(&self, snapshot: &Snapshot) -> Result<usize, ApiError> {
        match self {
            Self::Memory(memory) => memory.restore(snapshot).map_err(ApiError::internal),
            Self::Redis(_) => Ok(0),
        }
    }
}

fn memory_backend(policy: Policy, clock: &Clock) -> Result<MemoryBackend<Clock>, ApiError> {
    MemoryBackend::builder(policy)
        .clock(clock.clone())
        .build()
        .map_err(build_error)
}

/// The 503 a caller gets when a shared store it needs does not answer.
#[must_use]
pub fn redis_unavailable() -> ApiError {
    ApiError::Unavailable {
        detail: "a shared store is unavailable; try again shortly",
        retry_after: Some(1),
    }
}

fn redis_call_error(error: quota::Error) -> ApiError {
    // Usage is an admin read: any failure of Redis is "unavailable" to the caller, never a 500.
    match error {
        quota::Error::Unavailable { .. } | quota::Error::Store { .. } => {
            observe::redis_error("quota", "unavailable");
            redis_unavailable()
        }
        other => ApiError::internal(other),
    }
}
