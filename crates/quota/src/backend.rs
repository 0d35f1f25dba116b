//! The trait every backend implements.

use core::future::Future;
use core::num::NonZeroU64;
use core::time::Duration;

use crate::decision::Decision;
use crate::error::Result;
use crate::policy::Policy;

/// A key's current consumption, as the admin operations report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Usage {
    /// The key's limit (after any override).
    pub limit: u64,
    /// How much of the limit is spent now (for GCRA: rounded up to whole units).
    pub used: u64,
    /// How much can still be spent now.
    pub remaining: u64,
    /// Time until the quota is whole again.
    pub reset: Duration,
}

impl From<&Decision> for Usage {
    /// What a decision says is used and left: a decision of cost 0 (which counts nothing) is
    /// how to read the usage under a per-call policy, which [`Backend::usage`] cannot take.
    fn from(d: &Decision) -> Self {
        let remaining = d.remaining();
        Self {
            limit: d.limit(),
            used: d.limit().saturating_sub(remaining),
            remaining,
            reset: d.reset(),
        }
    }
}

/// A quota store: decides calls and offers the admin operations.
///
/// Methods return `Send` futures so a backend can be used from any multi-threaded async runtime
/// (actix-web, axum, ...). The in-memory backend answers at once (and also has synchronous
/// methods); the Redis backend makes one round trip. The trait uses `async fn` syntax, so it is
/// not object safe: hold a concrete backend or make your handler generic over `B: Backend`.
///
/// Every backend takes a per-call limit ([`decide_with_limit`](Backend::decide_with_limit)):
/// a caller that knows each key's own limit (from its database, say) passes it with each call,
/// and nothing has to be synchronised into the backend beforehand.
pub trait Backend: Send + Sync {
    /// The policy applied to keys without an override.
    fn policy(&self) -> Policy;

    /// Decides one call of `cost` units for `key`, counting it when it is allowed.
    ///
    /// A cost of 0 counts nothing and reports the key's state; a cost above the limit is denied
    /// with [`Status::CostExceedsLimit`](crate::Status::CostExceedsLimit).
    fn decide(&self, key: &str, cost: u64) -> impl Future<Output = Result<Decision>> + Send;

    /// Like [`decide`](Backend::decide), with `limit` in place of the policy's limit and of any
    /// stored override (see [`Policy::with_limit`]).
    ///
    /// # Errors
    /// As [`decide`](Backend::decide); [`Error::InvalidPolicy`](crate::Error::InvalidPolicy)
    /// when `limit` makes an invalid GCRA policy.
    fn decide_with_limit(
        &self,
        key: &str,
        cost: u64,
        limit: NonZeroU64,
    ) -> impl Future<Output = Result<Decision>> + Send;

    /// Like [`decide`](Backend::decide), under `policy` instead of the backend's policy and any
    /// stored override: for callers whose keys each have a rate of their own (a GCRA rate,
    /// period and burst per API key, say). `policy` must have the backend's shape: GCRA for a
    /// GCRA backend, a fixed window of the same calendar unit for a fixed-window one.
    ///
    /// # Errors
    /// As [`decide`](Backend::decide); [`Error::InvalidPolicy`](crate::Error::InvalidPolicy) for a
    /// policy of another shape, or one the backend cannot count (Redis: faster than one call per
    /// microsecond or slowed by more than 1% when rounded up to whole microseconds, or a limit
    /// of 2^53 or more).
    fn decide_with_policy(
        &self,
        key: &str,
        cost: u64,
        policy: Policy,
    ) -> impl Future<Output = Result<Decision>> + Send;

    /// Gives back `cost` units that `granted`, an [`Allowed`](crate::Status::Allowed) decision
    /// of this backend for `key`, counted: for a call refused later by another limit, so that
    /// a refused call costs nothing. `cost` is capped at what `granted` charged. A fixed
    /// window's count falls by `cost` if its window is still current (a refund never reaches
    /// into the next window); a GCRA bucket's level falls by `cost` emission intervals, but
    /// only by the part of the charge the bucket has not drained yet, so that a bucket which
    /// refilled since the charge is not lowered below the level it would have without the call.
    /// Anything but an allowed decision is left alone.
    ///
    /// Refund a decision once. A [`Decision`] is a plain value that cannot record that it was
    /// refunded, so a second refund of the same decision gives back again (each at most what the
    /// decision charged); [`Chain`](crate::Chain) refunds each of its charges once.
    ///
    /// Between the charge and its refund another call may see the key fuller than it ends up:
    /// a refund can refuse a concurrent call near the limit, never grant one too many.
    ///
    /// # Errors
    /// [`Error::KeyTooLong`](crate::Error::KeyTooLong); a store's errors (Redis).
    fn refund(
        &self,
        key: &str,
        cost: u64,
        granted: &Decision,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The decision of [`decide_with_limit`](Backend::decide_with_limit) (`limit: None`: of
    /// [`decide`](Backend::decide)) when the backend can give it without waiting, as the memory
    /// backend can; `None` otherwise, with nothing counted. Middleware uses it to skip the
    /// asynchronous path; the default is `None`.
    fn decide_now(
        &self,
        key: &str,
        cost: u64,
        limit: Option<NonZeroU64>,
    ) -> Option<Result<Decision>> {
        let _ = (key, cost, limit);
        None
    }

    /// The key's current consumption.
    fn usage(&self, key: &str) -> impl Future<Output = Result<Usage>> + Send;

    /// The key's current consumption under `limit` (see
    /// [`decide_with_limit`](Backend::decide_with_limit)).
    fn usage_with_limit(
        &self,
        key: &str,
        limit: NonZeroU64,
    ) -> impl Future<Output = Result<Usage>> + Send;

    /// Forgets the key's consumption, so its quota is whole again.
    fn reset(&self, key: &str) -> impl Future<Output = Result<()>> + Send;

    /// Sets (`Some`) or removes (`None`) a per-key limit that replaces the policy's limit (see
    /// [`Policy::with_limit`]).
    fn set_override(
        &self,
        key: &str,
        limit: Option<NonZeroU64>,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// One of two backends, chosen at start-up: memory for a single instance, Redis behind a
/// [`FallbackBackend`](crate::FallbackBackend) for several, say. Every call goes to the one held.
impl<L: Backend, R: Backend> Backend for either::Either<L, R> {
    fn policy(&self) -> Policy {
        either::for_both!(self, b => b.policy())
    }

    async fn decide(&self, key: &str, cost: u64) -> Result<Decision> {
        either::for_both!(self, b => b.decide(key, cost).await)
    }

    async fn decide_with_limit(&self, key: &str, cost: u64, limit: NonZeroU64) -> Result<Decision> {
        either::for_both!(self, b => b.decide_with_limit(key, cost, limit).await)
    }

    async fn decide_with_policy(&self, key: &str, cost: u64, policy: Policy) -> Result<Decision> {
        either::for_both!(self, b => b.decide_with_policy(key, cost, policy).await)
    }

    async fn refund(&self, key: &str, cost: u64, granted: &Decision) -> Result<()> {
        either::for_both!(self, b => b.refund(key, cost, granted).await)
    }

    fn decide_now(
        &self,
        key: &str,
        cost: u64,
        limit: Option<NonZeroU64>,
    ) -> Option<Result<Decision>> {
        either::for_both!(self, b => b.decide_now(key, cost, limit))
    }

    async fn usage(&self, key: &str) -> Result<Usage> {
        either::for_both!(self, b => b.usage(key).await)
    }

    async fn usage_with_limit(&self, key: &str, limit: NonZeroU64) -> Result<Usage> {
        either::for_both!(self, b => b.usage_with_limit(key, limit).await)
    }

    async fn reset(&self, key: &str) -> Result<()> {
        either::for_both!(self, b => b.reset(key).await)
    }

    async fn set_override(&self, key: &str, limit: Option<NonZeroU64>) -> Result<()> {
        either::for_both!(self, b => b.set_override(key, limit).await)
    }
}
