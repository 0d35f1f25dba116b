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
