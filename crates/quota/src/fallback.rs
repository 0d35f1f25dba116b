//! A primary backend with a local one for outages: "Redis, else memory, else open or closed".

use core::future::Future;
use core::num::NonZeroU64;
use core::time::Duration;
use std::fmt;
use std::sync::Arc;

use crate::backend::{Backend, Usage};
use crate::decision::{Decision, NEVER, Status};
use crate::error::{Error, Result};
use crate::policy::{Kind, Policy, Window};

/// What a decision does when its store gives no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailMode {
    /// Allow the call, reported as [`Status::FailedOpen`]: availability over enforcement.
    Open,
    /// Deny the call, reported as [`Status::FailedClosed`]: enforcement over availability.
    Closed,
    /// Return the error ([`Error::Unavailable`] or [`Error::Store`]) and let the caller choose.
    Error,
}

/// Called with the reason each time the primary backend gives no decision.
type OutageHook = Arc<dyn Fn(&Error) + Send + Sync>;

/// A primary backend shared by every instance (Redis), and what to do while it gives no
/// answer: decide on a local backend (this process's memory), or fail open or closed.
///
/// An outage is any decision the primary could not make: [`Error::Unavailable`],
/// [`Error::Store`] (an error reply such as Redis's `OOM`), or a decision the primary itself
/// degraded ([`Status::FailedOpen`], [`Status::FailedClosed`]). Give the primary
/// [`FailMode::Error`] so that the [`on_outage`](FallbackBuilder::on_outage) hook sees each
/// failure's reason. Errors that are the caller's ([`Error::KeyTooLong`], an invalid per-call
/// limit) are returned as they are. The admin operations (usage, reset, override) go to the
/// primary: a local count is a stand-in, not the record. An override is also set on the local
/// backend, so that a key's own limit holds while the primary is away; only on this instance's
/// local backend, though, and only from this call on: an override set through another instance,
/// or before this one started, is unknown locally. Give each call its limit
/// ([`Backend::decide_with_limit`]) to have it hold everywhere during an outage.
///
/// While the primary is away, each instance counts on its own: with N instances a key can get
/// up to N times its limit during the outage, and what was counted locally is not carried back.
///
/// ```
/// use core::num::NonZeroU64;
/// use quota::{Backend, FailMode, FakeClock, FallbackBackend, MemoryBackend, Policy, Status};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let daily = Policy::per_day(NonZeroU64::new(3).unwrap());
/// let clock = FakeClock::at_unix_secs(1_767_225_600);
/// // In production the primary is a RedisBackend with FailMode::Error; any Backend will do.
/// let primary = MemoryBackend::builder(daily).clock(clock.clone()).build()?;
/// let local = MemoryBackend::builder(daily).clock(clock).build()?;
/// let quota = FallbackBackend::builder(primary)
///     .local(local)
///     .fail_mode(FailMode::Closed) // used only without a local backend
///     .on_outage(|error| eprintln!("quota store: {error}"))
///     .build()?;
/// assert_eq!(quota.decide("key-42", 1).await?.status(), Status::Allowed);
/// # Ok::<(), quota::Error>(())
/// # }).unwrap();
/// ```
pub struct FallbackBackend<P, L> {
    primary: P,
    local: Option<L>,
    fail_mode: FailMode,
    on_outage: Option<OutageHook>,
}

/// Builds a [`FallbackBackend`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct FallbackBuilder<P, L> {
    primary: P,
    local: Option<L>,
    fail_mode: FailMode,
    on_outage: Option<OutageHook>,
}

impl<P: Backend> FallbackBackend<P, P> {
    /// A builder around `primary`: no local backend and [`FailMode::Closed`] until told otherwise.
    pub fn builder(primary: P) -> FallbackBuilder<P, P> {
        FallbackBuilder {
            primary,
            local: None,
            fail_mode: FailMode::Closed,
            on_outage: None,
        }
    }
}

impl<P: Backend, L: Backend> FallbackBuilder<P, L> {
    /// Decides on `local` while the primary gives no answer (the fail mode is then unused).
    pub fn local<M: Backend>(self, local: M) -> FallbackBuilder<P, M> {
        FallbackBuilder {
            primary: self.primary,
            local: Some(local),
            fail_mode: self.fail_mode,
            on_outage: self.on_outage,
        }
    }

    /// Decides on `local` while the primary gives no answer when it is `Some`, and follows the
    /// fail mode when it is `None`: for a type that is the same whichever was configured.
    pub fn maybe_local<M: Backend>(self, local: Option<M>) -> FallbackBuilder<P, M> {
        FallbackBuilder {
            primary: self.primary,
            local,
            fail_mode: self.fail_mode,
            on_outage: self.on_outage,
        }
    }

    /// What a decision does during an outage when there is no local backend (default
    /// [`FailMode::Closed`]).
    pub const fn fail_mode(mut self, fail_mode: FailMode) -> Self {
        self.fail_mode = fail_mode;
        self
    }

    /// Calls `hook` with the reason each time the primary gives no decision: to log (at a
    /// bounded rate) and count outages. It runs on the request's task, so it must be quick.
    pub fn on_outage(mut self, hook: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        self.on_outage = Some(Arc::new(hook));
        self
    }

    /// The backend.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the local backend applies another policy than the primary.
    pub fn build(self) -> Result<FallbackBackend<P, L>> {
        if let Some(local) = &self.local
            && local.policy() != self.primary.policy()
        {
            return Err(Error::InvalidConfig(
                "the local backend must apply the primary's policy",
            ));
        }
        Ok(FallbackBackend {
            primary: self.primary,
            local: self.local,
            fail_mode: self.fail_mode,
            on_outage: self.on_outage,
        })
    }
}

impl<P, L> fmt::Debug for FallbackBackend<P, L>
where
    P: fmt::Debug,
    L: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackBackend")
            .field("primary", &self.primary)
            .field("local", &self.local)
            .field("fail_mode", &self.fail_mode)
            .finish_non_exhaustive()
    }
}

impl<P, L> fmt::Debug for FallbackBuilder<P, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackBuilder")
            .field("local", &self.local.is_some())
            .field("fail_mode", &self.fail_mode)
            .finish_non_exhaustive()
    }
}

impl<P: Backend, L: Backend> FallbackBackend<P, L> {
    /// The primary backend.
    pub const fn primary(&self) -> &P {
        &self.primary
    }

    /// The local backend, if one is set.
    pub const fn local(&self) -> Option<&L> {
        self.local.as_ref()
    }

    async fn decide_limited(&self, key: &str, cost: u64, per_call: PerCall) -> Result<Decision> {
        let primary = match per_call {
            PerCall::Limit(limit) => self.primary.decide_with_limit(key, cost, limit).await,
            PerCall::Policy(policy) => self.primary.decide_with_policy(key, cost, policy).await,
            PerCall::None => self.primary.decide(key, cost).await,
        };
        let outage = match primary {
            Ok(d) if !matches!(d.status(), Status::FailedOpen | Status::FailedClosed) => {
                return Ok(through(d, false));
            }
            Ok(_) => Error::Unavailable {
                reason: "the primary backend degraded the decision".to_owned(),
            },
            Err(e @ (Error::Unavailable { .. } | Error::Store { .. })) => e,
            Err(caller) => return Err(caller),
        };
        if let Some(hook) = &self.on_outage {
            hook(&outage);
        }
        if let Some(local) = &self.local {
            let decision = match per_call {
                PerCall::Limit(limit) => local.decide_with_limit(key, cost, limit).await,
                PerCall::Policy(policy) => local.decide_with_policy(key, cost, policy).await,
                PerCall::None => local.decide(key, cost).await,
            };
            return decision.map(|d| through(d, true));
        }
        let policy = match per_call {
            PerCall::Policy(policy) => policy,
            _ => self.primary.policy(),
        };
        let limit = match per_call {
            PerCall::Limit(limit) => limit.get(),
            _ => policy.limit(),
        };
        match self.fail_mode {
            FailMode::Error => Err(outage),
            mode => Ok(through(
                Decision::unavailable(mode == FailMode::Open, limit, nominal_window(policy)),
                true,
            )),
        }
    }
}

/// `decision` as it leaves a [`FallbackBackend`]: this layer's bit in front of those of the
/// layers inside it, set when the primary did not make the decision.
fn through(mut decision: Decision, not_primary: bool) -> Decision {
    decision.fallback_path = (decision.fallback_path << 1) | u8::from(not_primary);
    decision
}

/// `decision` as the backend inside this layer made it: this layer's bit, and the decision
/// with the bits of the layers inside.
fn inside(decision: &Decision) -> (bool, Decision) {
    let mut inner = *decision;
    inner.fallback_path >>= 1;
    (decision.fallback_path & 1 == 1, inner)
}

/// What replaces the policy for one call.
#[derive(Clone, Copy)]
enum PerCall {
    None,
    Limit(NonZeroU64),
    Policy(Policy),
}

/// The length a policy's window is reported as when no store could say more: the window's
/// nominal length (a month as 30 days; [`NEVER`] for a lifetime), or the GCRA time to refill a
/// whole burst as configured (the period when the burst is the limit).
pub(crate) fn nominal_window(policy: Policy) -> Duration {
    match policy.kind() {
        Kind::Fixed { window, .. } => match window {
            Window::Minute => Duration::from_secs(60),
            Window::Hour => Duration::from_secs(3_600),
            Window::Day => Duration::from_secs(86_400),
            Window::Month => Duration::from_secs(30 * 86_400),
            Window::Lifetime => NEVER,
        },
        Kind::Gcra { window, .. } => Duration::from_nanos(window),
    }
}

impl<P: Backend, L: Backend> Backend for FallbackBackend<P, L> {
    fn policy(&self) -> Policy {
        self.primary.policy()
    }

    fn decide(&self, key: &str, cost: u64) -> impl Future<Output = Result<Decision>> + Send {
        self.decide_limited(key, cost, PerCall::None)
    }

    fn decide_with_limit(
        &self,
        key: &str,
        cost: u64,
        limit: NonZeroU64,
    ) -> impl Future<Output = Result<Decision>> + Send {
        self.decide_limited(key, cost, PerCall::Limit(limit))
    }

    fn decide_with_policy(
        &self,
        key: &str,
        cost: u64,
        policy: Policy,
    ) -> impl Future<Output = Result<Decision>> + Send {
        self.decide_limited(key, cost, PerCall::Policy(policy))
    }

    /// Refunds on the backend that counted the call: the primary, or the local backend if the
    /// call was decided during an outage. A decision this layer made itself (failing open or
    /// closed) counted nothing, and gets nothing back. A primary that cannot be reached keeps
    /// what it counted: its error is returned (and given to the outage hook).
    async fn refund(&self, key: &str, cost: u64, granted: &Decision) -> Result<()> {
        let (not_primary, granted) = inside(granted);
        if not_primary {
            return match &self.local {
                Some(local) => local.refund(key, cost, &granted).await,
                None => Ok(()),
            };
        }
        let refunded = self.primary.refund(key, cost, &granted).await;
        if let (Err(e @ (Error::Unavailable { .. } | Error::Store { .. })), Some(hook)) =
            (&refunded, &self.on_outage)
        {
            hook(e);
        }
        refunded
    }

    fn usage(&self, key: &str) -> impl Future<Output = Result<Usage>> + Send {
        self.primary.usage(key)
    }

    fn usage_with_limit(
        &self,
        key: &str,
        limit: NonZeroU64,
    ) -> impl Future<Output = Result<Usage>> + Send {
        self.primary.usage_with_limit(key, limit)
    }

    fn reset(&self, key: &str) -> impl Future<Output = Result<()>> + Send {
        self.primary.reset(key)
    }

    /// Sets the override on the primary and on the local backend, if any, so that the key's
    /// own limit holds during an outage too. The local backend is set even when the primary
    /// fails; the primary's error comes first.
    async fn set_override(&self, key: &str, limit: Option<NonZeroU64>) -> Result<()> {
        let primary = self.primary.set_override(key, limit).await;
        let local = match &self.local {
            Some(local) => local.set_override(key, limit).await,
            None => Ok(()),
        };
        primary.and(local)
    }
}
