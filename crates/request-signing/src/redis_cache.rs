//! A replay cache in Redis, shared by several server instances (feature `redis`).

use core::fmt;
use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::replay::{Insertion, ReplayCache, ReplayEntry};

/// Why a Redis replay-cache call failed; the verifier then rejects the request (fail closed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisReplayError {
    /// Redis answered with an error or the connection failed.
    #[error("redis error")]
    Redis(#[source] redis::RedisError),
    /// Redis did not answer within the configured timeout.
    #[error("redis call timed out after {0:?}")]
    Timeout(Duration),
}

/// A replay cache in Redis: one `SET <prefix><hex key> 1 NX EX <ttl>` per accepted request.
///
/// `SET NX` is atomic, so of several verifiers sharing the Redis, exactly one accepts a given
/// request. Redis expires the keys, so memory is bounded by the request rate times the age
/// window. Every call has a timeout; a failure or timeout rejects the request.
#[derive(Clone)]
pub struct RedisReplayCache {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
}

impl RedisReplayCache {
    /// Default per-call timeout.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

    /// A cache on an existing connection manager; keys are `prefix` + 64 hex digits.
    #[must_use]
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// Connects to `url` (e.g. `redis://127.0.0.1:6379`) with a connection manager that
    /// reconnects on failure, using [`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT) for connecting and for each call.
    ///
    /// # Errors
    /// [`RedisReplayError`] when the URL is invalid or Redis cannot be reached in time.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, RedisReplayError> {
        let client = redis::Client::open(url).map_err(RedisReplayError::Redis)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Self::DEFAULT_TIMEOUT))
            .set_response_timeout(Some(Self::DEFAULT_TIMEOUT));
        let conn = tokio::time::timeout(
            Self::DEFAULT_TIMEOUT,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| RedisReplayError::Timeout(Self::DEFAULT_TIMEOUT))?
        .map_err(RedisReplayError::Redis)?;
        Ok(Self::new(conn, prefix))
    }

    /// The same cache with a different per-call timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl fmt::Debug for RedisReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisReplayCache")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ReplayCache for RedisReplayCache {
    type Error = RedisReplayError;

    fn insert_once(
        &self,
        entry: ReplayEntry,
    ) -> impl Future<Output = Result<Insertion, Self::Error>> + Send {
        let mut conn = self.conn.clone();
        let key = format!("{}{}", self.prefix, entry.key.to_hex());
        let timeout = self.timeout;
        async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key)
                .arg(1)
                .arg("NX")
                .arg("EX")
                .arg(entry.ttl_secs());
            let reply: Option<String> = tokio::time::timeout(timeout, cmd.query_async(&mut conn))
                .await
                .map_err(|_| RedisReplayError::Timeout(timeout))?
                .map_err(RedisReplayError::Redis)?;
            Ok(if reply.is_some() {
                Insertion::Fresh
            } else {
                Insertion::Seen
            })
        }
    }
}
