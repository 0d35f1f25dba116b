//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::num::NonZeroUsize;

use request_signing::{
    FakeClock, MemoryReplayCache, Secret, StaticSecretStore, Verifier, VerifierConfig,
};

/// Runs a future to completion on a current-thread Tokio runtime.
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A verifier with a memory replay cache, one key and a fake clock at `now`.
pub fn verifier(
    key_id: &str,
    secret: &str,
    now: u64,
) -> (
    Verifier<StaticSecretStore, MemoryReplayCache, FakeClock>,
    FakeClock,
) {
    let clock = FakeClock::at_unix_secs(now);
    let store = StaticSecretStore::new().with_secret(key_id, Secret::from(secret));
    let cache = MemoryReplayCache::new(NonZeroUsize::new(10_000).unwrap());
    (Verifier::new(store, cache).with_clock(clock.clone()), clock)
}

/// As [`verifier`], accepting the legacy scheme v0 too (off by default).
pub fn verifier_v0(
    key_id: &str,
    secret: &str,
    now: u64,
) -> (
    Verifier<StaticSecretStore, MemoryReplayCache, FakeClock>,
    FakeClock,
) {
    let (verifier, clock) = verifier(key_id, secret, now);
    (
        verifier.with_config(VerifierConfig::new().accept_v0(true)),
        clock,
    )
}
