//! A backend whose store can be made to fail, for the fallback and middleware tests.
#![allow(dead_code)] // each test binary uses its own part

use core::future::Future;
use core::num::NonZeroU64;
use std::sync::Mutex;

use quota::{Backend, Decision, Error, FakeClock, MemoryBackend, Policy, Result, Usage};

/// How the store fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answers normally.
    None,
    /// `Error::Unavailable`, as an unreachable Redis.
    Unavailable,
    /// `Error::Store`, as an error reply (`OOM`).
    Store,
}

/// A memory backend behind a switch.
#[derive(Debug)]
pub struct Flaky {
    inner: MemoryBackend<FakeClock>,
    fault: Mutex<Fault>,
}

impl Flaky {
    pub fn new(policy: Policy, clock: &FakeClock) -> Self {
        Self {
            inner: MemoryBackend::builder(policy)
                .clock(clock.clone())
                .build()
                .expect("valid"),
            fault: Mutex::new(Fault::None),
        }
    }

    pub fn set(&self, fault: Fault) {
        *self.fault.lock().expect("lock") = fault;
    }

    fn check(&self) -> Result<()> {
        match *self.fault.lock().expect("lock") {
            Fault::None => Ok(()),
            Fault::Unavailable => Err(Error::Unavailable {
                reason: "connection refused".to_owned(),
            }),
            Fault::Store => Err(Error::Store {
                reason: "OOM command not allowed when used memory > 'maxmemory'".to_owned(),
            }),
        }
    }
}

impl Backend for Flaky {
    fn policy(&self) -> Policy {
        self.inner.policy()
    }

    fn decide(&self, key: &str, cost: u64) -> impl Future<Output = Result<Decision>> + Send {
        core::future::ready(self.check().and_then(|()| self.inner.decide(key, cost)))
    }

    fn decide_with_limit(
        &self,
        key: &str,
        cost: u64,
        limit: NonZeroU64,
    ) -> impl Future<Output = Result<Decision>> + Send {
        core::future::ready(
            self.check()
                .and_then(|()| self.inner.decide_with_limit(key, cost, limit)),
        )
    }

    fn decide_with_policy(
        &self,
        key: &str,
        cost: u64,
        policy: Policy,
    ) -> impl Future<Output = Result<Decision>> + Send {
        core::future::ready(
            self.check()
                .and_then(|()| self.inner.decide_with_policy(key, cost, policy)),
        )
    }

    fn refund(
        &self,
        key: &str,
        cost: u64,
        granted: &Decision,
    ) -> impl Future<Output = Result<()>> + Send {
        core::future::ready(
            self.check()
                .and_then(|()| self.inner.refund(key, cost, granted)),
        )
    }

    fn usage(&self, key: &str) -> impl Future<Output = Result<Usage>> + Send {
        core::future::ready(self.check().and_then(|()| self.inner.usage(key)))
    }

    fn usage_with_limit(
        &self,
        key: &str,
        limit: NonZeroU64,
    ) -> impl Future<Output = Result<Usage>> + Send {
        core::future::ready(
            self.check()
                .and_then(|()| self.inner.usage_with_limit(key, limit)),
        )
    }

    fn reset(&self, key: &str) -> impl Future<Output = Result<()>> + Send {
        core::future::ready(self.check().and_then(|()| self.inner.reset(key)))
    }

    fn set_override(
        &self,
        key: &str,
        limit: Option<NonZeroU64>,
    ) -> impl Future<Output = Result<()>> + Send {
        core::future::ready(
            self.check()
                .and_then(|()| self.inner.set_override(key, limit)),
        )
    }
}

pub fn n(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).expect("non-zero")
}

/// The per-call policy, refund and lifetime laws every backend keeps; `make` builds a backend
/// of the given policy over shared state (each call with the same `name` sees the same keys).
pub async fn per_call_policies_refunds_and_lifetimes<B, F, Fut>(clock: &FakeClock, make: F)
where
    B: Backend,
    F: Fn(Policy, &'static str) -> Fut,
    Fut: Future<Output = B>,
{
    use quota::{NEVER, Status, Window};
    use std::time::Duration;

    // A GCRA backend decides each call under the caller's rate and burst.
    let rate = make(
        Policy::gcra(n(5), Duration::from_secs(60)).expect("valid"),
        "rate",
    )
    .await;
    let ten_per_second = Policy::gcra(n(10), Duration::from_secs(1))
        .expect("valid")
        .with_burst(n(3))
        .expect("valid");
    let mut decisions = Vec::new();
    for _ in 0..4 {
        decisions.push(
            rate.decide_with_policy("k", 1, ten_per_second)
                .await
                .expect("ok"),
        );
    }
    let statuses: Vec<Status> = decisions.iter().map(Decision::status).collect();
    assert_eq!(
        statuses,
        [
            Status::Allowed,
            Status::Allowed,
            Status::Allowed,
            Status::Limited
        ],
        "a burst of 3"
    );
    assert_eq!(decisions[3].limit(), 3);
    assert_eq!(decisions[3].retry_after(), Some(Duration::from_millis(100)));
    // Refunding one granted call makes room for exactly one more.
    rate.refund("k", 1, &decisions[2]).await.expect("ok");
    assert!(
        rate.decide_with_policy("k", 1, ten_per_second)
            .await
            .expect("ok")
            .is_allowed()
    );
    assert!(
        !rate
            .decide_with_policy("k", 1, ten_per_second)
            .await
            .expect("ok")
            .is_allowed()
    );
    // A refused decision gives nothing back.
    rate.refund("k", 1, &decisions[3]).await.expect("ok");
    assert!(
        !rate
            .decide_with_policy("k", 1, ten_per_second)
            .await
            .expect("ok")
            .is_allowed()
    );
    // A policy of another shape is the caller's error.
    assert!(matches!(
        rate.decide_with_policy("k", 1, Policy::per_day(n(5))).await,
        Err(Error::InvalidPolicy(_))
    ));

    // A fixed window: a refund gives back within the window, never into the next one.
    let daily = make(Policy::per_day(n(3)), "daily").await;
    let first = daily.decide("d", 2).await.expect("ok");
    assert!(first.is_allowed());
    daily.refund("d", 2, &first).await.expect("ok");
    assert_eq!(daily.usage("d").await.expect("ok").used, 0);
    let spent = daily.decide("d", 3).await.expect("ok");
    assert!(spent.is_allowed());
    assert!(!daily.decide("d", 1).await.expect("ok").is_allowed());
    clock.advance(Duration::from_secs(86_400));
    assert!(daily.decide("d", 1).await.expect("ok").is_allowed());
    daily.refund("d", 3, &spent).await.expect("ok");
    assert_eq!(
        daily.usage("d").await.expect("ok").used,
        1,
        "yesterday's refund is void"
    );

    // A lifetime balance never renews, and its decisions report no reset.
    let credits = make(Policy::lifetime(n(100)), "credits").await;
    assert_eq!(credits.policy().window(), Some(Window::Lifetime));
    let d = credits
        .decide_with_limit("c", 60, n(100))
        .await
        .expect("ok");
    assert!(d.is_allowed());
    assert_eq!((d.remaining(), d.reset(), d.window()), (40, NEVER, NEVER));
    clock.advance(Duration::from_secs(400 * 86_400));
    let d = credits
        .decide_with_limit("c", 41, n(100))
        .await
        .expect("ok");
    assert_eq!(d.status(), Status::Limited);
    assert_eq!(d.retry_after(), None, "a spent balance never comes back");
    assert_eq!(
        credits
            .usage_with_limit("c", n(100))
            .await
            .expect("ok")
            .remaining,
        40
    );
    // Topped up: the same count under a larger balance.
    assert!(
        credits
            .decide_with_limit("c", 41, n(200))
            .await
            .expect("ok")
            .is_allowed()
    );
}

/// The chain laws every backend keeps: a call passes every step or costs nothing, and each
/// step decides under its own rule. `make` is as in [`per_call_policies_refunds_and_lifetimes`].
pub async fn chain_charges_all_or_nothing<B, F, Fut>(make: F)
where
    B: Backend,
    F: Fn(Policy, &'static str) -> Fut,
    Fut: Future<Output = B>,
{
    use quota::{Cause, Chain, Rule, Status};
    use std::time::Duration;

    let rate = make(
        Policy::gcra(n(1), Duration::from_secs(1)).expect("valid"),
        "chain-rate",
    )
    .await;
    let daily = make(Policy::per_day(n(1_000)), "chain-daily").await;
    let credits = make(Policy::lifetime(n(1)), "chain-credits").await;
    let burst_of_4 = Policy::gcra(n(1), Duration::from_secs(3_600))
        .expect("valid")
        .with_burst(n(4))
        .expect("valid");
    let charge = |key: &'static str, cost: u64, balance: u64| {
        let (rate, daily, credits) = (&rate, &daily, &credits);
        async move {
            let mut chain = Chain::new(cost);
            chain
                .charge("rate", rate, key, Rule::Policy(burst_of_4))
                .await?;
            chain.charge("daily", daily, key, Rule::Backend).await?;
            chain
                .charge("credits", credits, key, Rule::Limit(n(balance)))
                .await?;
            let names: Vec<&str> = chain.decisions().iter().map(|(name, _)| *name).collect();
            assert_eq!(names, ["rate", "daily", "credits"]);
            assert_eq!(chain.cost(), cost);
            Ok::<_, quota::Stop>(*chain.decision("credits").expect("made"))
        }
    };

    // Three credits: three calls pass, the fourth is refused by the credits, and the rate and
    // the daily quota it passed are given back.
    for left in [2, 1, 0] {
        let decision = charge("a", 1, 3).await.expect("allowed");
        assert_eq!(decision.remaining(), left);
    }
    let stop = charge("a", 1, 3).await.expect_err("no credits left");
    assert_eq!(stop.name, "credits");
    assert_eq!(stop.to_string(), "limit `credits` is reached");
    assert!(stop.unrefunded.is_empty());
    assert!(matches!(stop.cause, Cause::Refused(d) if d.status() == Status::Limited));
    assert_eq!(daily.usage("a").await.expect("ok").used, 3, "refunded");
    let level = rate
        .decide_with_policy("a", 0, burst_of_4)
        .await
        .expect("ok");
    assert_eq!(level.remaining(), 1, "3 of the burst of 4 spent, not 4");

    // The rate refuses the fifth call in its burst before anything else is counted.
    let stop = charge("b", 5, 100).await.expect_err("above the burst");
    assert_eq!(stop.name, "rate");
    assert!(matches!(stop.cause, Cause::Refused(d) if d.status() == Status::CostExceedsLimit));
    assert_eq!(daily.usage("b").await.expect("ok").used, 0);

    // A step with no decision stops the call too, and gives back what was counted.
    let invalid = Policy::per_day(n(5));
    let mut chain = Chain::new(2);
    chain
        .charge("daily", &daily, "c", Rule::Backend)
        .await
        .expect("allowed");
    let stop = chain
        .charge("rate", &rate, "c", Rule::Policy(invalid))
        .await
        .expect_err("a fixed window on a GCRA backend");
    assert!(matches!(stop.cause, Cause::Failed(Error::InvalidPolicy(_))));
    assert_eq!(daily.usage("c").await.expect("ok").used, 0);

    // The caller can refuse a call itself, after the steps: `refund` gives everything back.
    let mut chain = Chain::new(7);
    chain
        .charge("daily", &daily, "d", Rule::Limit(n(10)))
        .await
        .expect("allowed");
    assert!(chain.refund().await.is_empty());
    assert!(chain.refund().await.is_empty(), "nothing twice");
    assert_eq!(
        daily.usage_with_limit("d", n(10)).await.expect("ok").used,
        0
    );
}

/// A chain whose earlier step's store fails during the refund reports the refund it could not
/// make, and a step failing open lets the call through uncounted.
pub async fn chain_reports_failed_refunds(clock: &FakeClock) {
    use quota::{Cause, Chain, FailMode, FallbackBackend, Rule};

    let first = Flaky::new(Policy::per_day(n(10)), clock);
    let second = Flaky::new(Policy::per_day(n(1)), clock);
    let mut chain = Chain::new(1);
    chain
        .charge("first", &first, "k", Rule::Backend)
        .await
        .expect("allowed");
    assert!(second.decide("k", 1).await.expect("ok").is_allowed());
    first.set(Fault::Unavailable);
    let stop = chain
        .charge("second", &second, "k", Rule::Backend)
        .await
        .expect_err("spent");
    assert!(matches!(stop.cause, Cause::Refused(_)));
    assert!(matches!(
        stop.unrefunded.as_slice(),
        [Error::Unavailable { .. }]
    ));
    first.set(Fault::None);
    assert_eq!(first.usage("k").await.expect("ok").used, 1, "left counted");

    let away = Flaky::new(Policy::per_day(n(1)), clock);
    away.set(Fault::Unavailable);
    let open = FallbackBackend::builder(away)
        .fail_mode(FailMode::Open)
        .build()
        .expect("valid");
    let mut chain = Chain::new(1);
    let decision = chain
        .charge("open", &open, "k", Rule::Backend)
        .await
        .expect("failed open");
    assert_eq!(decision.status(), quota::Status::FailedOpen);
    assert_eq!(chain.decisions().len(), 1);
    assert!(chain.refund().await.is_empty(), "nothing was counted");
}

/// A refund gives back at most what its decision charged, and of a GCRA charge only the part
/// the bucket has not drained yet, on every backend. `make` is as in
/// [`per_call_policies_refunds_and_lifetimes`].
pub async fn refunds_give_back_no_more_than_was_charged<B, F, Fut>(clock: &FakeClock, make: F)
where
    B: Backend,
    F: Fn(Policy, &'static str) -> Fut,
    Fut: Future<Output = B>,
{
    use quota::Status;
    use std::time::Duration;

    // 10 per 10 s. A charge whose units the bucket has earned back since has nothing left to
    // give: refunding it must not make room for a third burst within 10 s.
    let rate = make(
        Policy::gcra(n(10), Duration::from_secs(10)).expect("valid"),
        "refund-rate",
    )
    .await;
    let a = rate.decide("a", 10).await.expect("ok");
    assert!(a.is_allowed());
    clock.advance(Duration::from_secs(10));
    assert!(rate.decide("a", 10).await.expect("ok").is_allowed());
    rate.refund("a", 10, &a).await.expect("ok");
    let third = rate.decide("a", 10).await.expect("ok");
    assert_eq!(third.status(), Status::Limited, "30 units in 10 s");

    // A refund larger than its decision's cost gives back that cost only, not the calls' before.
    assert!(rate.decide("b", 5).await.expect("ok").is_allowed());
    let small = rate.decide("b", 2).await.expect("ok");
    rate.refund("b", 10, &small).await.expect("ok");
    assert_eq!(rate.usage("b").await.expect("ok").remaining, 5);

    let daily = make(Policy::per_day(n(10)), "refund-daily").await;
    let small = daily.decide("c", 2).await.expect("ok");
    assert!(daily.decide("c", 5).await.expect("ok").is_allowed());
    daily.refund("c", 7, &small).await.expect("ok");
    assert_eq!(daily.usage("c").await.expect("ok").used, 5);
}
