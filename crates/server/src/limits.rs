//! The two limiters the server applies, each in this process's memory or on Redis.
//!
//! - the per-key daily quota (a UTC-day fixed window; a key's own quota is an override in
//!   memory, and travels with each call on Redis);
//! - the per-client limit on `/login` and `/register` (GCRA, 5 per minute).
//!
//! On Redis every instance sees the same counters, so N instances behind a load balancer grant
//! a key its quota once, not N times. While Redis does not answer (every call is bounded by the
//! Redis timeout), each limiter follows its [`FailPolicy`]: the quota fails open (the call is
//! allowed and not counted) or closed (503); the login limit falls back to this instance's own
//! limiter (open) or answers 503 (closed). Either way the outage is logged and counted in
//! `secure_api_redis_errors_total` and `secure_api_redis_fallbacks_total`.

use std::fmt;
use std::num::NonZeroU64;

use quota::{Decision, FailMode, MemoryBackend, Policy, RedisBackend, Snapshot, Status, Usage};

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
    /// Redis, shared by every instance.
    Redis {
        /// The shared counters.
        redis: RedisBackend<Clock>,
        /// This instance's own limiter, used while Redis does not answer (login, fail open).
        fallback: Option<MemoryBackend<Clock>>,
        /// What happens while Redis does not answer.
        policy: FailPolicy,
        /// What the limiter is for.
        concern: Concern,
    },
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory(memory) => f.debug_tuple("Limiter::Memory").field(memory).finish(),
            Self::Redis {
                redis,
                policy,
                concern,
                ..
            } => f
                .debug_struct("Limiter::Redis")
                .field("redis", redis)
                .field("policy", policy)
                .field("concern", concern)
                .finish_non_exhaustive(),
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
        let mode = match (concern, fail) {
            // The quota crate decides open or closed itself, and says so in the decision.
            (Concern::Quota, FailPolicy::Open) => FailMode::Open,
            (Concern::Quota, FailPolicy::Closed) => FailMode::Closed,
            // The login limit falls back to this instance, or refuses: the server chooses.
            (Concern::Login, _) => FailMode::Error,
        };
        let redis = RedisBackend::builder(policy)
            .clock(clock.clone())
            .prefix(format!("{}:{}", settings.prefix, concern.as_str()))
            .timeout(settings.timeout)
            .fail_mode(mode)
            .with_connection(conn)
            .map_err(build_error)?;
        let fallback = match (concern, fail) {
            (Concern::Login, FailPolicy::Open) => Some(memory_backend(policy, clock)?),
            _ => None,
        };
        Ok(Self::Redis {
            redis,
            fallback,
            policy: fail,
            concern,
        })
    }

    /// Whether the counters live on Redis.
    #[must_use]
    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Redis { .. })
    }

    /// Decides one call of `cost` units for `key`, whose own limit is `limit` (`None`: the
    /// policy's). In memory the key's limit is the override set by [`Limiter::set_override`];
    /// on Redis it travels with each call, so a Redis that restarted empty still applies it.
    ///
    /// A decision the limiter made without its store is logged and counted here; the caller
    /// still reads [`Decision::status`] for [`Status::FailedClosed`].
    pub async fn decide(
        &self,
        key: &str,
        cost: u64,
        limit: Option<NonZeroU64>,
    ) -> Result<Decision, ApiError> {
        match self {
            Self::Memory(memory) => memory.decide(key, cost).map_err(ApiError::internal),
            Self::Redis {
                redis,
                fallback,
                policy,
                concern,
            } => match redis_decide(redis, key, cost, limit).await {
                Ok(decision) => {
                    if matches!(decision.status(), Status::FailedOpen | Status::FailedClosed) {
                        unavailable(*concern, *policy);
                    }
                    Ok(decision)
                }
                Err(quota::Error::Unavailable { .. }) => {
                    unavailable(*concern, *policy);
                    match fallback {
                        Some(local) => local.decide(key, cost).map_err(ApiError::internal),
                        None => Err(redis_unavailable()),
                    }
                }
                Err(e) => {
                    observe::redis_error(concern.as_str(), "store");
                    Err(ApiError::internal(e))
                }
            },
        }
    }

    /// The key's current consumption, with its own `limit` as in [`Limiter::decide`].
    pub async fn usage(&self, key: &str, limit: Option<NonZeroU64>) -> Result<Usage, ApiError> {
        match self {
            Self::Memory(memory) => memory.usage(key).map_err(ApiError::internal),
            Self::Redis { redis, concern, .. } => match limit {
                Some(limit) => redis.usage_with_limit(key, limit).await,
                None => redis.usage(key).await,
            }
            .map_err(|e| redis_call_error(*concern, e)),
        }
    }

    /// Sets or removes the key's own limit in memory. Nothing to do on Redis, where the limit
    /// comes with each call.
    pub fn set_override(&self, key: &str, limit: Option<NonZeroU64>) -> Result<(), ApiError> {
        match self {
            Self::Memory(memory) => memory.set_override(key, limit).map_err(ApiError::internal),
            Self::Redis { .. } => Ok(()),
        }
    }

    /// The in-memory counters, for saving to the database; `None` on Redis (Redis keeps them).
    #[must_use]
    pub fn snapshot(&self) -> Option<Snapshot> {
        match self {
            Self::Memory(memory) => Some(memory.snapshot()),
            Self::Redis { .. } => None,
        }
    }

    /// Restores saved in-memory counters; returns how many keys. Nothing to do on Redis.
    pub fn restore(&self, snapshot: &Snapshot) -> Result<usize, ApiError> {
        match self {
            Self::Memory(memory) => memory.restore(snapshot).map_err(ApiError::internal),
            Self::Redis { .. } => Ok(0),
        }
    }
}

async fn redis_decide(
    redis: &RedisBackend<Clock>,
    key: &str,
    cost: u64,
    limit: Option<NonZeroU64>,
) -> quota::Result<Decision> {
    match limit {
        Some(limit) => redis.decide_with_limit(key, cost, limit).await,
        None => redis.decide(key, cost).await,
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

fn redis_call_error(concern: Concern, error: quota::Error) -> ApiError {
    match error {
        quota::Error::Unavailable { .. } => {
            observe::redis_error(concern.as_str(), "unavailable");
            redis_unavailable()
        }
        other => {
            observe::redis_error(concern.as_str(), "store");
            ApiError::internal(other)
        }
    }
}

fn unavailable(concern: Concern, policy: FailPolicy) {
    observe::redis_error(concern.as_str(), "unavailable");
    observe::redis_fallback(concern.as_str(), policy.as_str());
}
