//! A replay cache in Redis, shared by several server instances (feature `redis`).

use core::fmt;
use std::future::Future;
use std::time::Duration;

use std::num::NonZeroUsize;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, Script, ServerErrorKind};

use crate::replay::{Insertion, ReplayCache, ReplayEntry};

const SCRIPT: &str = include_str!("replay.lua");

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
    /// Redis answered the script with something it never returns.
    #[error("unexpected reply from the replay script")]
    UnexpectedReply,
}

/// A replay cache in Redis, shared by every instance: one Lua script per accepted request.
///
/// Each key id has a sorted set `<prefix><64 hex>` of its unexpired entries, scored by the
/// second each may be forgotten. The script drops the expired ones, answers "seen" for a
/// stored entry, refuses a key that holds its whole share ([`Insertion::OverBudget`], 100,000
/// entries unless [`with_per_key_limit`](Self::with_per_key_limit) says otherwise), and
/// otherwise stores it: atomically, so of several verifiers sharing the Redis exactly one
/// accepts a given request, and no key's flood can crowd out another's. The set expires with
/// its last entry (a record is kept ten years at most). Every call has a timeout; a failure or
/// timeout rejects the request (or goes to the local cache of a
/// [`FallbackReplayCache`](crate::FallbackReplayCache)).
///
/// **Eviction**: only Redis's `noeviction` memory policy keeps every entry until it expires.
/// Under an evicting policy a full Redis drops entries, and a replay inside its window is
/// accepted again. [`memory_policy`](Self::memory_policy) reads the policy.
#[derive(Clone)]
pub struct RedisReplayCache {
    conn: ConnectionManager,
    script: Script,
    prefix: String,
    timeout: Duration,
    per_key: NonZeroUsize,
}

impl RedisReplayCache {
    /// Default per-call timeout.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

    /// A cache on an existing connection manager; keys are `prefix` + 64 hex digits.
    #[must_use]
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self {
            conn,
            script: Script::new(SCRIPT),
            prefix: prefix.into(),
            timeout: Self::DEFAULT_TIMEOUT,
            per_key: Self::DEFAULT_PER_KEY,
        }
    }

    /// Default share of one key id: 100,000 unexpired entries (277 requests/s for 361 s).
    pub const DEFAULT_PER_KEY: NonZeroUsize = match NonZeroUsize::new(100_000) {
        Some(n) => n,
        None => NonZeroUsize::MIN,
    };

    /// The same cache with each key id's share set to `per_key` unexpired entries.
    #[must_use]
    pub fn with_per_key_limit(mut self, per_key: NonZeroUsize) -> Self {
        self.per_key = per_key;
        self
    }

    /// What Redis does when it reaches `maxmemory`, read with `CONFIG GET`: call it once at
    /// start, and warn when [`MemoryPolicy::evicts`].
    ///
    /// # Errors
    /// [`RedisReplayError`] when Redis does not answer in time or refuses `CONFIG` (some
    /// managed services rename or disable it).
    pub async fn memory_policy(&self) -> Result<MemoryPolicy, RedisReplayError> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.cmd("CONFIG").arg("GET").arg("maxmemory-policy");
        pipe.cmd("CONFIG").arg("GET").arg("maxmemory");
        let (policy, max): (Vec<String>, Vec<String>) =
            tokio::time::timeout(self.timeout, pipe.query_async(&mut conn))
                .await
                .map_err(|_| RedisReplayError::Timeout(self.timeout))?
                .map_err(RedisReplayError::Redis)?;
        let policy = policy.into_iter().nth(1).unwrap_or_default();
        let maxmemory = max
            .into_iter()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok(MemoryPolicy { policy, maxmemory })
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
            .field("per_key", &self.per_key)
            .finish_non_exhaustive()
    }
}

/// Redis's memory limit and what it does on reaching it (`maxmemory`, `maxmemory-policy`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MemoryPolicy {
    policy: String,
    maxmemory: u64,
}

impl MemoryPolicy {
    /// The `maxmemory-policy`, e.g. `noeviction` or `allkeys-lru`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.policy
    }

    /// The `maxmemory` in bytes; 0 means no limit.
    #[must_use]
    pub const fn maxmemory(&self) -> u64 {
        self.maxmemory
    }

    /// Whether Redis may drop entries to make room: every policy but `noeviction` does once
    /// `maxmemory` is reached, and a dropped entry's request is accepted again if replayed.
    #[must_use]
    pub fn evicts(&self) -> bool {
        self.policy != "noeviction"
    }
}

impl fmt::Display for MemoryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "maxmemory-policy {}", self.policy)?;
        match self.maxmemory {
            0 => f.write_str(", no maxmemory"),
            bytes => write!(f, ", maxmemory {bytes} bytes"),
        }
    }
}

impl RedisReplayCache {
    fn owner_key(&self, entry: &ReplayEntry) -> String {
        format!("{}{}", self.prefix, entry.owner.to_hex())
    }

    /// Runs the script, loading it again if Redis lost it (restart, `SCRIPT FLUSH`).
    async fn run(&self, entry: ReplayEntry) -> redis::RedisResult<Vec<u64>> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.script.get_hash())
            .arg(1)
            .arg(self.owner_key(&entry))
            .arg(entry.key.to_hex())
            .arg(entry.now)
            .arg(entry.expires_at.clamp(
                entry.now.saturating_add(1),
                entry.now.saturating_add(MAX_RECORD_SECS),
            ))
            .arg(self.per_key.get());
        match cmd.query_async(&mut conn).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                self.script.load_async(&mut conn).await?;
                cmd.query_async(&mut conn).await
            }
            other => other,
        }
    }
}

/// The longest a record is kept, ten years: a verifier that accepts requests of any age
/// (`max_age_secs(u64::MAX)`) would otherwise ask Redis for an expiry it refuses, after the
/// record was added, and leave it without one.
const MAX_RECORD_SECS: u64 = 10 * 365 * 86_400;

impl ReplayCache for RedisReplayCache {
    type Error = RedisReplayError;

    async fn insert_once(&self, entry: ReplayEntry) -> Result<Insertion, Self::Error> {
        let reply = tokio::time::timeout(self.timeout, self.run(entry))
            .await
            .map_err(|_| RedisReplayError::Timeout(self.timeout))?
            .map_err(RedisReplayError::Redis)?;
        match reply.as_slice() {
            [1] => Ok(Insertion::Fresh),
            [0] => Ok(Insertion::Seen),
            [2, retry_after_secs] => Ok(Insertion::OverBudget {
                retry_after_secs: (*retry_after_secs).max(1),
            }),
            _ => Err(RedisReplayError::UnexpectedReply),
        }
    }

    fn release(&self, entry: &ReplayEntry) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(self.owner_key(entry)).arg(entry.key.to_hex());
        let timeout = self.timeout;
        async move {
            let _removed: i64 = tokio::time::timeout(timeout, cmd.query_async(&mut conn))
                .await
                .map_err(|_| RedisReplayError::Timeout(timeout))?
                .map_err(RedisReplayError::Redis)?;
            Ok(())
        }
    }
}
