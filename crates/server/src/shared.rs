//! State shared by several instances through Redis: the connection, the replay-nonce cache
//! and the weather cache. (Quotas and login limits are in `limits`.)
//!
//! The connection is made lazily and re-made after a failure (redis' connection manager), so
//! the server starts while Redis is down and recovers by itself when it returns. Every call is
//! bounded by the Redis timeout.

use std::fmt;
use std::num::NonZeroUsize;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use request_signing::{Either, FallbackReplayCache, MemoryReplayCache, RedisReplayCache};

use weather_keypool::{Location, Units};

use crate::config::{FailPolicy, REPLAY_CAPACITY, RedisSettings};
use crate::observe;

/// How long a weather answer stays in the shared cache: as long as in each instance's own.
pub const SHARED_WEATHER_TTL: Duration = weather_keypool::WeatherCache::DEFAULT_TTL;

/// The Redis connection every shared concern uses.
#[derive(Clone)]
pub struct Redis {
    conn: ConnectionManager,
    settings: RedisSettings,
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("url", &self.settings.url)
            .field("prefix", &self.settings.prefix)
            .field("timeout", &self.settings.timeout)
            .finish_non_exhaustive()
    }
}

/// Why Redis could not be set up (never contains the URL's password).
#[derive(Debug, thiserror::Error)]
#[error("REDIS_URL: {0}")]
pub struct RedisSetupError(&'static str);

impl Redis {
    /// A lazily connecting client for `settings`; never waits for Redis.
    pub fn new(settings: &RedisSettings) -> Result<Self, RedisSetupError> {
        let client = redis::Client::open(settings.url.expose())
            .map_err(|_| RedisSetupError("not a valid Redis URL"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(1)
            .set_max_delay(settings.timeout);
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|_| RedisSetupError("the connection could not be set up"))?;
        Ok(Self {
            conn,
            settings: settings.clone(),
        })
    }

    /// The connection, shared by every concern: `/readyz` pings the one that decisions use.
    #[must_use]
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &RedisSettings {
        &self.settings
    }

    async fn bounded<T: redis::FromRedisValue>(
        &self,
        cmd: redis::Cmd,
        concern: &'static str,
    ) -> Option<T> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.settings.timeout, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                observe::redis_error(concern, "unavailable");
                tracing::debug!(concern, error = %e, "Redis call failed");
                None
            }
            Err(_) => {
                observe::redis_error(concern, "unavailable");
                None
            }
        }
    }

    /// Whether Redis answers `PING` within the timeout.
    pub async fn ping(&self) -> bool {
        self.bounded::<String>(redis::cmd("PING"), "health")
            .await
            .is_some_and(|reply| reply == "PONG")
    }

    /// Whether Redis accepts a write within the timeout: `false` when it does not answer, and
    /// also when it answers with an error such as `OOM` (full under `noeviction`) or `READONLY`.
    pub async fn accepts_writes(&self) -> bool {
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{}:readyz", self.settings.prefix))
            .arg(1)
            .arg("PX")
            .arg(5_000);
        self.bounded::<String>(cmd, "health")
            .await
            .is_some_and(|reply| reply == "OK")
    }

    /// Redis's memory policy when it evicts keys (`allkeys-lru`, ...), which makes quotas and
    /// replay refusals inexact; `None` under `noeviction`, or when Redis does not say.
    pub async fn evicting_policy(&self) -> Option<String> {
        match self.replay_cache().memory_policy().await {
            Ok(policy) if policy.evicts() => Some(policy.to_string()),
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(error = %e, "Redis did not tell its memory policy");
                None
            }
        }
    }

    fn weather_key(&self, location: &Location, units: Units) -> String {
        format!(
            "{}:weather:{}:{}",
            self.settings.prefix,
            units.as_str(),
            location.cache_key()
        )
    }

    /// The replay cache on this connection.
    #[must_use]
    pub fn replay_cache(&self) -> RedisReplayCache {
        RedisReplayCache::new(
            self.conn.clone(),
            format!("{}:replay:", self.settings.prefix),
        )
        .with_timeout(self.settings.timeout)
    }
}

/// Where signatures already seen are remembered: this process (`Left`), or Redis for all
/// instances (`Right`), refusing signed requests while it does not answer (`Left`, fail
/// closed) or going on with this process's cache (`Right`, fail open; what was accepted
/// during an outage stays refused afterwards). Each key has its own bounded share in each.
pub type Replay =
    Either<MemoryReplayCache, Either<RedisReplayCache, FallbackReplayCache<RedisReplayCache>>>;

/// The replay cache: on `redis` when it is configured, following its replay fail policy;
/// `per_key` entries for each key.
#[must_use]
pub fn replay_cache(redis: Option<&Redis>, per_key: usize) -> Replay {
    let Some(redis) = redis else {
        return Either::Left(memory_cache(per_key));
    };
    let shared = redis.replay_cache().with_per_key_limit(share(per_key));
    Either::Right(match redis.settings.fail_replay {
        FailPolicy::Closed => Either::Left(shared),
        FailPolicy::Open => Either::Right(
            FallbackReplayCache::new(shared, memory_cache(per_key)).on_outage(|e| {
                tracing::debug!(error = %e, "replay cache on Redis failed");
                observe::redis_error("replay", "unavailable");
                observe::redis_fallback("replay", FailPolicy::Open.as_str());
            }),
        ),
    })
}

fn share(per_key: usize) -> NonZeroUsize {
    NonZeroUsize::new(per_key).unwrap_or(NonZeroUsize::MIN)
}

fn memory_cache(per_key: usize) -> MemoryReplayCache {
    MemoryReplayCache::new(NonZeroUsize::new(REPLAY_CAPACITY).expect("nonzero"))
        .with_per_key_limit(share(per_key))
}

/// The weather answers every instance shares through Redis, when it is configured; without
/// Redis every lookup is a miss and nothing is stored (each instance still has its own cache).
#[derive(Debug, Clone, Default)]
pub struct SharedWeather(Option<Redis>);

impl SharedWeather {
    /// Shared through `redis`, or not shared.
    #[must_use]
    pub fn new(redis: Option<Redis>) -> Self {
        Self(redis)
    }

    /// The shared cached answer for `location` in `units`, if Redis has a readable one. A
    /// miss, an unreadable entry and an unreachable Redis all count as a miss.
    pub async fn get<T: serde::de::DeserializeOwned>(
        &self,
        location: &Location,
        units: Units,
    ) -> Option<T> {
        let redis = self.0.as_ref()?;
        let mut cmd = redis::cmd("GET");
        cmd.arg(redis.weather_key(location, units));
        let cached = redis
            .bounded::<Option<String>>(cmd, "weather")
            .await
            .flatten()
            .and_then(|text| serde_json::from_str(&text).ok());
        observe::weather_cache(if cached.is_some() { "hit" } else { "miss" });
        cached
    }

    /// Shares `answer` for `location` in `units` for [`SHARED_WEATHER_TTL`] (best effort: a
    /// failure is counted and ignored).
    pub async fn put<T: serde::Serialize>(&self, location: &Location, units: Units, answer: &T) {
        let Some(redis) = &self.0 else { return };
        let Ok(text) = serde_json::to_string(answer) else {
            return;
        };
        let mut cmd = redis::cmd("SET");
        cmd.arg(redis.weather_key(location, units))
            .arg(text)
            .arg("EX")
            .arg(SHARED_WEATHER_TTL.as_secs().max(1));
        let _: Option<()> = redis.bounded(cmd, "weather").await;
    }
}
