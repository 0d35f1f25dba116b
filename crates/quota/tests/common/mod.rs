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
