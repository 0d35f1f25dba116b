//! The Redis backend: one atomic Lua script per decision, shared by every server instance.

use core::future::Future;
use core::num::NonZeroU64;
use core::time::Duration;
use std::fmt;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, ErrorKind, RedisError, Script, ServerErrorKind};

use crate::backend::{Backend, Usage};
use crate::clock::{Clock, SystemClock};
use crate::decision::{Decision, Detail, Status};
use crate::error::{Error, Result};
use crate::fallback::FailMode;
use crate::memory::DEFAULT_MAX_KEY_LEN;
use crate::policy::{
    Gcra, Inexact, Kind, Policy, Window, emission_in, fixed_decision, gcra_decision,
};

const NANOS_PER_SEC: u64 = 1_000_000_000;
const NANOS_PER_MICRO: u64 = 1_000;
/// Extra life given to Redis keys past the end of their window, so that a modest skew between
/// the injected clock and the Redis server's clock never drops a live count.
const GRACE_MS: u64 = 1_000;
const SCRIPT: &str = include_str!("quota.lua");
const REFUND_SCRIPT: &str = include_str!("refund.lua");
/// Limits stay below this and costs are clamped to it: Lua numbers are doubles, exact below 2^53.
const MAX_EXACT: u64 = 1 << 53;

/// Quotas kept in Redis: exact across any number of server instances.
///
/// Every decision is one round trip running one Lua script (EVALSHA, loaded on first use and
/// again after a `SCRIPT FLUSH` or a restart), so concurrent calls from any instances are
/// serialized by Redis. Keys expire by themselves: a fixed window's counter at the end of its
/// window, a GCRA key when its bucket is full again (plus one second of grace).
///
/// **Time**: the script uses the time of the injected [`Clock`], passed as an argument, not the
/// Redis server's time, so tests with a [`FakeClock`](crate::FakeClock) are deterministic and all
/// instances agree on window boundaries as far as their clocks agree (run NTP). Key expiry uses
/// the Redis server's clock, with the TTL computed from the injected time.
///
/// **Failures**: every call is bounded by the builder's timeout (`tokio::time::timeout`, so it
/// must run inside a tokio runtime with the time driver, as actix-web's is). Whatever keeps a
/// decision from being made follows the [`FailMode`]: Redis unreachable or slow, and also an
/// error reply (`OOM` when `maxmemory` is reached under `noeviction`, `READONLY` on a replica,
/// `LOADING`, a key of the wrong type) or an unreadable reply. With [`FailMode::Error`] the
/// decision returns [`Error::Unavailable`] or [`Error::Store`]; so do the admin operations.
///
/// **Eviction**: only Redis's `noeviction` memory policy keeps quotas exact. Under an evicting
/// policy (`allkeys-lru`, `volatile-ttl`, ...) a full Redis silently drops counters, and a spent
/// quota is whole again. [`RedisBackend::memory_policy`] reads the policy, so a server can warn
/// at start and report it in its readiness check.
///
/// Key names: `{prefix}:f:{window start}:{key}` (fixed window), `{prefix}:g:{key}` (GCRA),
/// `{prefix}:o:{key}` (limit override, never expires). Each limiter needs a prefix of its own
/// (see [`RedisBuilder::prefix`]); the default one is derived from the policy. A
/// [`Window::Lifetime`] count (`{prefix}:f:0:{key}`) never expires either. Refunds
/// ([`Backend::refund`]) need Redis 6.0 or later (`SET ... KEEPTTL`).
pub struct RedisBackend<C: Clock = SystemClock> {
    conn: ConnectionManager,
    script: Script,
    refund_script: Script,
    policy: Policy,
    gcra: Option<(Gcra, u64)>,
    prefix: String,
    timeout: Duration,
    fail_mode: FailMode,
    max_key_len: usize,
    clock: C,
}

impl<C: Clock> fmt::Debug for RedisBackend<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("policy", &self.policy)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("fail_mode", &self.fail_mode)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RedisBackend`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `connect` is called"]
pub struct RedisBuilder<C: Clock = SystemClock> {
    policy: Policy,
    /// `None`: the default, derived from the policy.
    prefix: Option<String>,
    timeout: Duration,
    fail_mode: FailMode,
    max_key_len: usize,
    clock: C,
}

impl RedisBackend<SystemClock> {
    /// A builder for a backend applying `policy` (a prefix derived from the policy, see
    /// [`RedisBuilder::prefix`]; timeout 250 ms, fail closed).
    pub fn builder(policy: Policy) -> RedisBuilder<SystemClock> {
        RedisBuilder {
            policy,
            prefix: None,
            timeout: Duration::from_millis(250),
            fail_mode: FailMode::Closed,
            max_key_len: DEFAULT_MAX_KEY_LEN,
            clock: SystemClock,
        }
    }
}

impl RedisBackend {
    /// Whether a Redis backend can enforce `policy`, as a per-call policy or a builder's: its
    /// limit (or burst) below 2^53, and a GCRA rate with `period / limit` in whole
    /// microseconds, rounded up, to within 1% (the rate enforced is never above the one
    /// configured). Every rate of up to 10,000 calls a
    /// second passes. Check a rate a user sets before storing it, so that its calls are never
    /// refused for it later.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] saying what is wrong.
    pub fn check_policy(policy: Policy) -> Result<()> {
        check_exact(policy.limit())?;
        gcra_micros(policy).map(drop)
    }
}

impl<C: Clock> RedisBuilder<C> {
    /// Uses `clock` for time (see [`RedisBackend`] on time).
    pub fn clock<D: Clock>(self, clock: D) -> RedisBuilder<D> {
        RedisBuilder {
            policy: self.policy,
            prefix: self.prefix,
            timeout: self.timeout,
            fail_mode: self.fail_mode,
            max_key_len: self.max_key_len,
            clock,
        }
    }

    /// The prefix of every Redis key this backend uses.
    ///
    /// Two limiters must never share a prefix: keys are named by the prefix and the quota key
    /// only, so limiters on one prefix count into the same keys. A per-minute and a per-day
    /// limiter would both use `{prefix}:f:{start}:{key}` in the first minute of each UTC day
    /// (both windows start at midnight): the minute's calls would count against the day, and
    /// the minute's key expiry would cut the daily count's life to about a minute, after which
    /// the daily quota is whole again. Two GCRA limiters would share one arrival time.
    ///
    /// The default is derived from the policy, so that limiters of different windows or rates
    /// never share keys: `quota:{window}` for a fixed window (`quota:day`), and
    /// `quota:gcra:{period in ns}:{limit}:{burst}` for GCRA. Two fixed-window limiters of the
    /// same window on the default count together, and a GCRA limiter whose rate changes starts
    /// afresh (its stored overrides are not read either). Set a prefix of your own, one per
    /// limiter, for anything else.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// The most any call may take, connecting included (default 250 ms).
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What a decision does when Redis is unreachable (default [`FailMode::Closed`]).
    pub const fn fail_mode(mut self, fail_mode: FailMode) -> Self {
        self.fail_mode = fail_mode;
        self
    }

    /// The longest key accepted, in bytes (default 512).
    pub const fn max_key_len(mut self, max_key_len: usize) -> Self {
        self.max_key_len = max_key_len;
        self
    }

    /// The backend, connecting lazily: this never waits for Redis, so a server can start while
    /// Redis is down and its decisions follow the fail mode until Redis is back.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unparsable URL, a zero timeout or key length, a limit
    /// of 2^53 or more (the script counts in Lua's doubles), or a GCRA policy faster than one call
    /// per microsecond or whose `period / limit`, rounded up to whole microseconds (Redis works
    /// in microseconds), grows by more than 1% (see [`RedisBackend::check_policy`]).
    pub async fn connect(self, url: &str) -> Result<RedisBackend<C>> {
        let client =
            redis::Client::open(url).map_err(|_| Error::InvalidConfig("invalid Redis URL"))?;
        self.with_client(client).await
    }

    /// Like [`connect`](Self::connect), with a client built by the caller (TLS, credentials...).
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn with_client(self, client: redis::Client) -> Result<RedisBackend<C>> {
        if self.timeout.is_zero() {
            return Err(Error::InvalidConfig("the timeout must be above zero"));
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(2)
            .set_max_delay(self.timeout);
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(|_| {
            Error::InvalidConfig("the Redis connection manager could not be set up")
        })?;
        self.with_connection(conn)
    }

    /// Like [`connect`](Self::connect), on a connection manager the caller shares with its
    /// other Redis work: one multiplexed connection for everything, so that a health check on
    /// it also tells whether quota decisions reach Redis. The builder's timeout still bounds
    /// each call.
    ///
    /// # Errors
    /// As [`connect`](Self::connect), except for the URL.
    pub fn with_connection(self, conn: ConnectionManager) -> Result<RedisBackend<C>> {
        if self.timeout.is_zero() {
            return Err(Error::InvalidConfig("the timeout must be above zero"));
        }
        if self.max_key_len == 0 {
            return Err(Error::InvalidConfig("max_key_len must be at least 1"));
        }
        check_exact(self.policy.limit())?;
        let gcra = gcra_micros(self.policy)?;
        let prefix = self.prefix.unwrap_or_else(|| default_prefix(self.policy));
        Ok(RedisBackend {
            conn,
            script: Script::new(SCRIPT),
            refund_script: Script::new(REFUND_SCRIPT),
            policy: self.policy,
            gcra,
            prefix,
            timeout: self.timeout,
            fail_mode: self.fail_mode,
            max_key_len: self.max_key_len,
            clock: self.clock,
        })
    }
}

/// Refuses a limit the script cannot count exactly.
fn check_exact(limit: u64) -> Result<()> {
    if limit >= MAX_EXACT {
        return Err(Error::InvalidConfig(
            "on Redis a limit must be below 2^53 (Lua counts in doubles)",
        ));
    }
    Ok(())
}

/// The key prefix of a limiter that sets none: one per policy, so that limiters of different
/// policies never count into the same keys (see [`RedisBuilder::prefix`]).
fn default_prefix(policy: Policy) -> String {
    match policy.kind() {
        Kind::Fixed { window, .. } => {
            let window = match window {
                Window::Minute => "minute",
                Window::Hour => "hour",
                Window::Day => "day",
                Window::Month => "month",
                Window::Lifetime => "lifetime",
            };
            // Not the limit: a limit raised or lowered keeps the day's count.
            format!("quota:{window}")
        }
        Kind::Gcra {
            period,
            limit,
            burst,
            ..
        } => format!("quota:gcra:{period}:{limit}:{burst}"),
    }
}

/// The GCRA parameters in microseconds and the period in microseconds, or `None` for a window.
fn gcra_micros(policy: Policy) -> Result<Option<(Gcra, u64)>> {
    match policy.kind() {
        Kind::Fixed { .. } => Ok(None),
        Kind::Gcra {
            period,
            limit,
            burst,
            window,
            ..
        } => {
            // One unit is earned back every period / limit, whatever the burst.
            let emission =
                emission_in(period, limit.get(), NANOS_PER_MICRO).map_err(|problem| {
                    Error::InvalidConfig(match problem {
                        Inexact::BelowOneUnit => {
                            "on Redis a GCRA policy needs at least one microsecond per call"
                        }
                        Inexact::Rounded => {
                            "on Redis a GCRA period / limit must be a whole number of microseconds \
                             to within 1%"
                        }
                    })
                })?;
            Ok(Some((
                Gcra {
                    emission,
                    burst: burst.get(),
                    window,
                },
                period / NANOS_PER_MICRO,
            )))
        }
    }
}

/// What replaces the policy for one call.
#[derive(Clone, Copy)]
enum PerCall {
    None,
    Limit(NonZeroU64),
    Policy(Policy),
}

impl PerCall {
    /// The limit a degraded decision reports.
    fn limit(self) -> Option<NonZeroU64> {
        match self {
            Self::None => None,
            Self::Limit(limit) => Some(limit),
            Self::Policy(policy) => NonZeroU64::new(policy.limit()),
        }
    }
}

/// What one call will ask the script, and how to read its answer.
enum Plan {
    Fixed {
        start: u64,
        end: u64,
    },
    /// `window`: the policy's time to refill a whole burst, and `period` that of a stored
    /// override (whose burst is its limit), both in nanoseconds.
    Gcra {
        now_us: u64,
        window: u64,
        period: u64,
    },
}

/// A failure to get an answer from Redis.
enum Failure {
    Unavailable(String),
    Store(String),
}

impl From<RedisError> for Failure {
    fn from(e: RedisError) -> Self {
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_unrecoverable_error()
        {
            Self::Unavailable(e.to_string())
        } else {
            Self::Store(e.to_string())
        }
    }
}

impl<C: Clock> RedisBackend<C> {
    /// Decides one call of `cost` units for `key` in one round trip.
    ///
    /// # Errors
    /// [`Error::KeyTooLong`]; [`Error::Store`] when Redis answers with an error;
    /// [`Error::Unavailable`] when Redis is unreachable and the fail mode is [`FailMode::Error`].
    pub async fn decide(&self, key: &str, cost: u64) -> Result<Decision> {
        self.decide_limited(key, cost, PerCall::None).await
    }

    /// Like [`decide`](Self::decide), with `limit` in place of the policy's limit and of any
    /// stored override, still in one round trip. For callers that know each key's limit (from
    /// their own database, say): nothing per key has to be stored in Redis beforehand, so a
    /// Redis that restarted empty applies the right limit from the first call.
    ///
    /// # Errors
    /// As [`decide`](Self::decide); [`Error::InvalidPolicy`] or [`Error::InvalidConfig`] when
    /// `limit` makes a GCRA policy Redis cannot count (see [`RedisBackend::check_policy`]).
    pub async fn decide_with_limit(
        &self,
        key: &str,
        cost: u64,
        limit: NonZeroU64,
    ) -> Result<Decision> {
        self.decide_limited(key, cost, PerCall::Limit(limit)).await
    }

    /// Like [`decide`](Self::decide), under `policy` instead of the backend's policy and any
    /// stored override, in one round trip (see [`Backend::decide_with_policy`]).
    ///
    /// # Errors
    /// As [`decide`](Self::decide); [`Error::InvalidPolicy`] for a policy of another shape;
    /// [`Error::InvalidConfig`] for a limit of 2^53 or more, or a GCRA policy Redis cannot
    /// count (see [`RedisBackend::check_policy`]).
    pub async fn decide_with_policy(
        &self,
        key: &str,
        cost: u64,
        policy: Policy,
    ) -> Result<Decision> {
        self.decide_limited(key, cost, PerCall::Policy(policy))
            .await
    }

    /// Gives back `cost` units that `granted` counted for `key`, in one round trip (see
    /// [`Backend::refund`]).
    ///
    /// # Errors
    /// [`Error::KeyTooLong`], [`Error::Store`], or [`Error::Unavailable`] whatever the fail mode.
    pub async fn refund(&self, key: &str, cost: u64, granted: &Decision) -> Result<()> {
        self.check_key(key)?;
        // In microseconds for GCRA, whatever backend's units the decision came in.
        let back = granted.refundable(cost, self.clock.now_nanos());
        let prefix = &self.prefix;
        let (state, back) = match granted.detail {
            Detail::Fixed { start, .. } => (format!("{prefix}:f:{start}:{key}"), back),
            Detail::Gcra { .. } => (format!("{prefix}:g:{key}"), back / NANOS_PER_MICRO),
            Detail::Unavailable { .. } => return Ok(()),
        };
        if back == 0 {
            return Ok(());
        }
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.refund_script.get_hash())
            .arg(1)
            .arg(state)
            .arg(back.min(MAX_EXACT));
        let mut conn = self.conn.clone();
        let script = &self.refund_script;
        let call = async move {
            match cmd.query_async::<i64>(&mut conn).await {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    script.load_async(&mut conn).await?;
                    Ok(cmd.query_async::<i64>(&mut conn).await?)
                }
                other => Ok(other?),
            }
        };
        self.bounded(call).await.map(drop).map_err(into_error)
    }

    async fn decide_limited(&self, key: &str, cost: u64, per_call: PerCall) -> Result<Decision> {
        self.check_key(key)?;
        let now = self.clock.now_nanos();
        let (cmd, plan) = self.command(key, cost, now, per_call)?;
        let limit = per_call.limit();
        let decided = match self.bounded(self.run(std::slice::from_ref(&cmd))).await {
            Ok(replies) => replies.first().map_or_else(
                || Err(Failure::Store("empty reply".to_owned())),
                |reply| self.read(reply, &plan, now, cost).map_err(Failure::from),
            ),
            Err(failure) => Err(failure),
        };
        decided.or_else(|failure| self.degrade(failure, limit))
    }

    /// Decides many calls in one pipeline (one round trip for all of them), in order.
    ///
    /// # Errors
    /// As [`decide`](Self::decide); when Redis is unreachable every call gets the fail mode.
    pub async fn decide_batch(&self, calls: &[(&str, u64)]) -> Result<Vec<Decision>> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        for (key, _) in calls {
            self.check_key(key)?;
        }
        let now = self.clock.now_nanos();
        let (cmds, plans): (Vec<Cmd>, Vec<Plan>) = calls
            .iter()
            .map(|(key, cost)| self.command(key, *cost, now, PerCall::None))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .unzip();
        match self.bounded(self.run(&cmds)).await {
            Ok(replies) if replies.len() == calls.len() => replies
                .iter()
                .zip(&plans)
                .zip(calls)
                .map(|((reply, plan), (_, cost))| {
                    self.read(reply, plan, now, *cost)
                        .or_else(|e| self.degrade(Failure::from(e), None))
                })
                .collect(),
            Ok(_) => calls
                .iter()
                .map(|_| self.degrade(Failure::Store("wrong number of replies".to_owned()), None))
                .collect(),
            Err(failure) => calls
                .iter()
                .map(|_| self.degrade(failure.clone_reason(), None))
                .collect(),
        }
    }

    /// The key's current consumption.
    ///
    /// # Errors
    /// [`Error::KeyTooLong`], [`Error::Store`], or [`Error::Unavailable`] whatever the fail mode.
    pub async fn usage(&self, key: &str) -> Result<Usage> {
        self.usage_limited(key, None).await
    }

    /// Like [`usage`](Self::usage), with `limit` in place of the policy's limit and of any
    /// stored override (see [`decide_with_limit`](Self::decide_with_limit)).
    ///
    /// # Errors
    /// As [`usage`](Self::usage) and [`decide_with_limit`](Self::decide_with_limit).
    pub async fn usage_with_limit(&self, key: &str, limit: NonZeroU64) -> Result<Usage> {
        self.usage_limited(key, Some(limit)).await
    }

    async fn usage_limited(&self, key: &str, limit: Option<NonZeroU64>) -> Result<Usage> {
        self.check_key(key)?;
        let now = self.clock.now_nanos();
        let per_call = limit.map_or(PerCall::None, PerCall::Limit);
        let (cmd, plan) = self.command(key, 0, now, per_call)?;
        let replies = self
            .bounded(self.run(std::slice::from_ref(&cmd)))
            .await
            .map_err(into_error)?;
        let reply = replies.first().ok_or_else(|| Error::Store {
            reason: "empty reply".to_owned(),
        })?;
        let d = self.read(reply, &plan, now, 0)?;
        Ok(Usage::from(&d))
    }

    /// Forgets the key's consumption (in the current window for a fixed-window policy).
    ///
    /// # Errors
    /// [`Error::KeyTooLong`], [`Error::Store`], or [`Error::Unavailable`] whatever the fail mode.
    pub async fn reset(&self, key: &str) -> Result<()> {
        self.check_key(key)?;
        let now = self.clock.now_nanos();
        let state = match self.policy.kind() {
            Kind::Fixed { window, .. } => {
                let start = window.bounds(now / NANOS_PER_SEC).0;
                format!("{}:f:{start}:{key}", self.prefix)
            }
            Kind::Gcra { .. } => format!("{}:g:{key}", self.prefix),
        };
        self.simple(redis::cmd("DEL").arg(state)).await
    }

    /// Sets (`Some`) or removes (`None`) the key's limit override, for every instance at once.
    ///
    /// # Errors
    /// [`Error::KeyTooLong`]; [`Error::InvalidPolicy`] or [`Error::InvalidConfig`] when the limit
    /// makes a GCRA policy Redis cannot count (see [`RedisBackend::check_policy`]);
    /// [`Error::Store`] or
    /// [`Error::Unavailable`].
    pub async fn set_override(&self, key: &str, limit: Option<NonZeroU64>) -> Result<()> {
        self.check_key(key)?;
        let name = format!("{}:o:{key}", self.prefix);
        match limit {
            Some(limit) => {
                check_exact(limit.get())?;
                gcra_micros(self.policy.with_limit(limit)?)?;
                self.simple(redis::cmd("SET").arg(name).arg(limit.get()))
                    .await
            }
            None => self.simple(redis::cmd("DEL").arg(name)).await,
        }
    }

    /// The policy applied to keys without an override.
    #[must_use]
    pub const fn policy(&self) -> Policy {
        self.policy
    }

    /// What Redis does when it reaches `maxmemory`, read with `CONFIG GET`. Call it once at
    /// start: an evicting policy makes quotas inexact (see [`MemoryPolicy::evicts`]).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when Redis does not answer; [`Error::Store`] when it refuses
    /// `CONFIG` (some managed services rename or disable it).
    pub async fn memory_policy(&self) -> Result<MemoryPolicy> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.cmd("CONFIG").arg("GET").arg("maxmemory-policy");
        pipe.cmd("CONFIG").arg("GET").arg("maxmemory");
        let call = async move {
            let (policy, max): (Vec<String>, Vec<String>) = pipe.query_async(&mut conn).await?;
            Ok((policy, max))
        };
        let (policy, max) = self.bounded(call).await.map_err(into_error)?;
        let value = |pair: Vec<String>| pair.into_iter().nth(1);
        let policy = value(policy).ok_or_else(|| Error::Store {
            reason: "CONFIG GET maxmemory-policy gave no value".to_owned(),
        })?;
        let maxmemory = value(max).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(MemoryPolicy { policy, maxmemory })
    }

    fn check_key(&self, key: &str) -> Result<()> {
        if key.len() > self.max_key_len {
            return Err(Error::KeyTooLong {
                len: key.len(),
                max: self.max_key_len,
            });
        }
        Ok(())
    }

    /// The script call for one decision; a per-call limit or policy replaces the policy and any
    /// stored override.
    fn command(&self, key: &str, cost: u64, now: u64, per_call: PerCall) -> Result<(Cmd, Plan)> {
        let prefix = &self.prefix;
        // Every limit is below 2^53, so a clamped cost is still more than any limit.
        let cost = cost.min(MAX_EXACT);
        let (policy, gcra) = match per_call {
            PerCall::Limit(limit) => {
                check_exact(limit.get())?;
                let policy = self.policy.with_limit(limit)?;
                (policy, gcra_micros(policy)?)
            }
            PerCall::Policy(policy) => {
                if !self.policy.same_shape(&policy) {
                    return Err(Error::InvalidPolicy(
                        "a per-call policy must have the backend's shape (GCRA, or the same window)",
                    ));
                }
                check_exact(policy.limit())?;
                (policy, gcra_micros(policy)?)
            }
            PerCall::None => (self.policy, self.gcra),
        };
        let callers = !matches!(per_call, PerCall::None);
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.script.get_hash()).arg(2);
        let plan = if let Some((gcra, period)) = gcra {
            let now_us = now / NANOS_PER_MICRO;
            cmd.arg(format!("{prefix}:g:{key}"))
                .arg(format!("{prefix}:o:{key}"))
                .arg(if callers { "G" } else { "g" })
                .arg(cost)
                .arg(now_us)
                .arg(gcra.emission)
                .arg(gcra.burst)
                .arg(period);
            Plan::Gcra {
                now_us,
                window: gcra.window,
                period: period.saturating_mul(NANOS_PER_MICRO),
            }
        } else {
            // Without GCRA parameters the policy is a fixed window.
            let window = policy.window().unwrap_or(Window::Day);
            let (start, end) = window.bounds(now / NANOS_PER_SEC);
            // 0: a lifetime count, which never expires.
            let ttl_ms = if end == u64::MAX {
                0
            } else {
                end.saturating_mul(1_000)
                    .saturating_sub(now / 1_000_000)
                    .saturating_add(GRACE_MS)
            };
            cmd.arg(format!("{prefix}:f:{start}:{key}"))
                .arg(format!("{prefix}:o:{key}"))
                .arg(if callers { "F" } else { "f" })
                .arg(cost)
                .arg(policy.limit())
                .arg(ttl_ms);
            Plan::Fixed { start, end }
        };
        Ok((cmd, plan))
    }

    /// Sends `cmds` in one pipeline; loads the script and retries once if Redis lost it.
    async fn run(&self, cmds: &[Cmd]) -> core::result::Result<Vec<Vec<i64>>, Failure> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for cmd in cmds {
            pipe.add_command(cmd.clone());
        }
        match pipe.query_async::<Vec<Vec<i64>>>(&mut conn).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                self.script.load_async(&mut conn).await?;
                Ok(pipe.query_async::<Vec<Vec<i64>>>(&mut conn).await?)
            }
            other => Ok(other?),
        }
    }

    async fn simple(&self, cmd: &Cmd) -> Result<()> {
        let mut conn = self.conn.clone();
        let call = async move { Ok(cmd.query_async::<()>(&mut conn).await?) };
        self.bounded(call).await.map_err(into_error)
    }

    async fn bounded<T>(
        &self,
        call: impl Future<Output = core::result::Result<T, Failure>>,
    ) -> core::result::Result<T, Failure> {
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or_else(|_| {
                Err(Failure::Unavailable(format!(
                    "no answer within {:?}",
                    self.timeout
                )))
            })
    }

    fn read(&self, reply: &[i64], plan: &Plan, now: u64, cost: u64) -> Result<Decision> {
        let bad = || Error::Store {
            reason: "unexpected script reply".to_owned(),
        };
        let num = |i: usize| {
            reply
                .get(i)
                .and_then(|&v| u64::try_from(v).ok())
                .ok_or_else(bad)
        };
        let status = match num(0)? {
            1 => Status::Allowed,
            0 => Status::Limited,
            2 => Status::CostExceedsLimit,
            _ => return Err(bad()),
        };
        match *plan {
            Plan::Fixed { start, end } => Ok(fixed_decision(
                status,
                num(1)?,
                num(2)?,
                now,
                start,
                end,
                cost,
            )),
            Plan::Gcra {
                now_us,
                window,
                period,
            } => {
                let gcra = Gcra {
                    emission: num(3)?.max(1),
                    burst: num(2)?,
                    // A stored override makes its limit the burst: a burst per period.
                    window: if num(4)? == 1 { period } else { window },
                };
                Ok(gcra_decision(
                    status,
                    gcra,
                    now_us,
                    num(1)?,
                    cost,
                    NANOS_PER_MICRO,
                ))
            }
        }
    }

    /// The decision the fail mode gives when Redis gave none; `limit` is the caller's.
    fn degrade(&self, failure: Failure, limit: Option<NonZeroU64>) -> Result<Decision> {
        match self.fail_mode {
            FailMode::Error => Err(into_error(failure)),
            mode => {
                let window = match self.policy.kind() {
                    Kind::Fixed {
                        window: Window::Lifetime,
                        ..
                    } => crate::decision::NEVER,
                    Kind::Fixed { window, .. } => {
                        let (start, end) = window.bounds(self.clock.now_nanos() / NANOS_PER_SEC);
                        Duration::from_secs(end - start)
                    }
                    Kind::Gcra { .. } => crate::fallback::nominal_window(self.policy),
                };
                Ok(Decision::unavailable(
                    mode == FailMode::Open,
                    limit.map_or(self.policy.limit(), NonZeroU64::get),
                    window,
                ))
            }
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::Unavailable { reason } => Self::Unavailable(reason),
            other => Self::Store(other.to_string()),
        }
    }
}

impl Failure {
    fn clone_reason(&self) -> Self {
        match self {
            Self::Unavailable(r) => Self::Unavailable(r.clone()),
            Self::Store(r) => Self::Store(r.clone()),
        }
    }
}

fn into_error(failure: Failure) -> Error {
    match failure {
        Failure::Unavailable(reason) => Error::Unavailable { reason },
        Failure::Store(reason) => Error::Store { reason },
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

    /// The `maxmemory` in bytes; 0 means no limit (Redis grows until the system stops it).
    #[must_use]
    pub const fn maxmemory(&self) -> u64 {
        self.maxmemory
    }

    /// Whether Redis may drop keys to make room: every policy but `noeviction` does once
    /// `maxmemory` is reached (or set later). Under such a policy a full Redis forgets counters,
    /// so a spent quota becomes whole again; only `noeviction` keeps every count.
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

impl<C: Clock> Backend for RedisBackend<C> {
    fn policy(&self) -> Policy {
        self.policy
    }

    fn decide(&self, key: &str, cost: u64) -> impl Future<Output = Result<Decision>> + Send {
        Self::decide(self, key, cost)
    }

    fn decide_with_limit(
        &self,
        key: &str,
        cost: u64,
        limit: NonZeroU64,
    ) -> impl Future<Output = Result<Decision>> + Send {
        Self::decide_with_limit(self, key, cost, limit)
    }

    fn decide_with_policy(
        &self,
        key: &str,
        cost: u64,
        policy: Policy,
    ) -> impl Future<Output = Result<Decision>> + Send {
        Self::decide_with_policy(self, key, cost, policy)
    }

    fn refund(
        &self,
        key: &str,
        cost: u64,
        granted: &Decision,
    ) -> impl Future<Output = Result<()>> + Send {
        Self::refund(self, key, cost, granted)
    }

    fn usage(&self, key: &str) -> impl Future<Output = Result<Usage>> + Send {
        Self::usage(self, key)
    }

    fn usage_with_limit(
        &self,
        key: &str,
        limit: NonZeroU64,
    ) -> impl Future<Output = Result<Usage>> + Send {
        Self::usage_with_limit(self, key, limit)
    }

    fn reset(&self, key: &str) -> impl Future<Output = Result<()>> + Send {
        Self::reset(self, key)
    }

    fn set_override(
        &self,
        key: &str,
        limit: Option<NonZeroU64>,
    ) -> impl Future<Output = Result<()>> + Send {
        Self::set_override(self, key, limit)
    }
}
