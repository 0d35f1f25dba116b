//! One call charged against several limits in turn, all or nothing.

use core::fmt;
use core::num::NonZeroU64;

use crate::backend::Backend;
use crate::decision::{Decision, Status};
use crate::error::Error;
use crate::policy::Policy;

/// What a step of a [`Chain`] decides under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// The backend's policy, or the key's stored override ([`Backend::decide`]).
    Backend,
    /// The backend's policy with this limit ([`Backend::decide_with_limit`]).
    Limit(NonZeroU64),
    /// A policy of the backend's shape ([`Backend::decide_with_policy`]).
    Policy(Policy),
}

/// Why a [`Chain`] stopped a call. What the steps before it had counted was given back, but for
/// the refunds in `unrefunded`.
#[derive(Debug)]
#[non_exhaustive]
pub struct Stop {
    /// The step that stopped the call.
    pub name: &'static str,
    /// What it said.
    pub cause: Cause,
    /// The refunds that failed (a store that went away, say): those units stay counted.
    pub unrefunded: Vec<Error>,
}

/// What the step that stopped a [`Chain`] said.
#[derive(Debug)]
#[non_exhaustive]
pub enum Cause {
    /// It refused the call: [`Status::Limited`], [`Status::CostExceedsLimit`] or
    /// [`Status::FailedClosed`].
    Refused(Decision),
    /// It gave no decision: an invalid rule, a key too long, or a store that failed with no
    /// fail mode to apply.
    Failed(Error),
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Cause::Refused(decision) => match decision.status() {
                Status::FailedClosed => write!(f, "limit `{}` is unavailable", self.name),
                Status::CostExceedsLimit => {
                    write!(f, "the call costs more than limit `{}`", self.name)
                }
                _ => write!(f, "limit `{}` is reached", self.name),
            },
            Cause::Failed(_) => write!(f, "limit `{}` gave no decision", self.name),
        }
    }
}

impl std::error::Error for Stop {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Cause::Failed(error) => Some(error),
            Cause::Refused(_) => None,
        }
    }
}

/// A charge a step counted, kept to be given back.
struct Granted<'a, B> {
    backend: &'a B,
    key: &'a str,
    decision: Decision,
}

/// The key is a client's identity (an API key's id, an address): only its length is shown, as
/// everywhere in this crate.
impl<B: fmt::Debug> fmt::Debug for Granted<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Granted")
            .field("backend", self.backend)
            .field("key_len", &self.key.len())
            .field("decision", &self.decision)
            .finish()
    }
}

/// Charges one call of `cost` units against several limits in turn (a rate, a daily quota, a
/// monthly quota, a balance of credits), so that the call passes all or costs nothing: the
/// first limit to refuse it stops it, and what the limits before it counted is given back with
/// [`Backend::refund`].
///
/// Each [`charge`](Chain::charge) is one decision on its own backend. The backends of one chain
/// have one type: make backends of different types one with [`Either`](crate::Either). A limit that
/// fails open ([`Status::FailedOpen`]) lets the call through uncounted. Between a charge and its
/// refund another call may see a limit fuller than it ends up: a chain can refuse a concurrent
/// call near a limit, never grant one too many.
///
/// ```
/// use core::num::NonZeroU64;
/// use quota::{Chain, FakeClock, MemoryBackend, Policy, Rule};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let n = |v| NonZeroU64::new(v).unwrap();
/// let clock = FakeClock::at_unix_secs(1_767_225_600);
/// let daily = MemoryBackend::builder(Policy::per_day(n(1_000))).clock(clock.clone()).build()?;
/// let monthly = MemoryBackend::builder(Policy::per_month(n(1))).clock(clock).build()?;
///
/// let mut chain = Chain::new(1);
/// chain.charge("daily", &daily, "key-7", Rule::Backend).await?;
/// // The caller refuses the call for a reason of its own: nothing stays counted.
/// assert!(chain.refund().await.is_empty());
/// assert_eq!(daily.usage("key-7")?.used, 0);
///
/// // A month of 3 calls for this key, whatever the backend's policy says.
/// for _ in 0..3 {
///     let mut chain = Chain::new(1);
///     chain.charge("daily", &daily, "key-7", Rule::Backend).await?;
///     chain.charge("monthly", &monthly, "key-7", Rule::Limit(n(3))).await?;
/// }
/// let mut chain = Chain::new(1);
/// chain.charge("daily", &daily, "key-7", Rule::Backend).await?;
/// let stop = chain.charge("monthly", &monthly, "key-7", Rule::Limit(n(3))).await.unwrap_err();
/// assert_eq!(stop.name, "monthly");
/// assert_eq!(daily.usage("key-7")?.used, 3, "the refused call was given back");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
#[must_use = "a chain that is dropped half-way keeps what it counted"]
pub struct Chain<'a, B> {
    cost: u64,
    granted: Vec<Granted<'a, B>>,
    decided: Vec<(&'static str, Decision)>,
}

impl<'a, B: Backend> Chain<'a, B> {
    /// A chain for one call of `cost` units.
    pub fn new(cost: u64) -> Self {
        Self {
            cost,
            granted: Vec::new(),
            decided: Vec::new(),
        }
    }

    /// The call's cost.
    #[must_use]
    pub const fn cost(&self) -> u64 {
        self.cost
    }

    /// Charges the call to `key` on `backend` under `rule`, as the step `name`, and returns
    /// its decision when it lets the call through ([`Status::Allowed`], or
    /// [`Status::FailedOpen`], which counted nothing).
    ///
    /// A chain is meant to stop at its first [`Stop`]: a step charged after one is decided on
    /// its own, with nothing before it left to give back.
    ///
    /// # Errors
    /// [`Stop`] when the step refuses the call or gives no decision. What the steps before
    /// counted has been given back by then.
    pub async fn charge(
        &mut self,
        name: &'static str,
        backend: &'a B,
        key: &'a str,
        rule: Rule,
    ) -> Result<&Decision, Stop> {
        let decided = match rule {
            Rule::Backend => backend.decide(key, self.cost).await,
            Rule::Limit(limit) => backend.decide_with_limit(key, self.cost, limit).await,
            Rule::Policy(policy) => backend.decide_with_policy(key, self.cost, policy).await,
        };
        let decision = match decided {
            Ok(decision) => decision,
            Err(error) => {
                return Err(Stop {
                    name,
                    cause: Cause::Failed(error),
                    unrefunded: self.refund().await,
                });
            }
        };
        self.decided.push((name, decision));
        match decision.status() {
            Status::Allowed => self.granted.push(Granted {
                backend,
                key,
                decision,
            }),
            Status::FailedOpen => {}
            _ => {
                return Err(Stop {
                    name,
                    cause: Cause::Refused(decision),
                    unrefunded: self.refund().await,
                });
            }
        }
        let last = self.decided.len() - 1;
        Ok(&self.decided[last].1)
    }

    /// Gives back everything the chain counted so far, for a call refused by something other
    /// than a step (a check of the caller's own, say), and returns the refunds that failed
    /// (those units stay counted).
    #[must_use = "a refund that failed leaves its units counted"]
    pub async fn refund(&mut self) -> Vec<Error> {
        let mut failed = Vec::new();
        for granted in self.granted.drain(..) {
            let refunded = granted
                .backend
                .refund(granted.key, self.cost, &granted.decision)
                .await;
            if let Err(error) = refunded {
                failed.push(error);
            }
        }
        failed
    }

    /// Every decision made so far, with its step's name, in order: the ones that let the call
    /// through and, when a step refused the call, its refusal (for `HeaderFields::combined`,
    /// say). A step that gave no decision ([`Cause::Failed`]) is not among them.
    pub fn decisions(&self) -> &[(&'static str, Decision)] {
        &self.decided
    }

    /// The decision of the step `name`, if it was made.
    #[must_use]
    pub fn decision(&self, name: &str) -> Option<&Decision> {
        self.decided
            .iter()
            .find(|(step, _)| *step == name)
            .map(|(_, decision)| decision)
    }
}
