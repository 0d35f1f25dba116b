//! Remembering which signed requests were already accepted.

use core::fmt;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest, Sha256};

/// The identity of one accepted request, as stored in a replay cache.
///
/// A SHA-256 over the scheme, the key id and the nonce (v1) or the timestamp and signature (v0),
/// so stored keys have a fixed size and never contain the raw key id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplayKey([u8; 32]);

impl ReplayKey {
    /// The key of a v1 request: key id and nonce.
    #[must_use]
    pub fn v1(key_id: &str, nonce: &str) -> Self {
        Self::from_parts(&[b"v1", key_id.as_bytes(), nonce.as_bytes()])
    }

    /// The key of a v0 request: key id, timestamp and the 32 signature bytes.
    #[must_use]
    pub fn v0(key_id: &str, timestamp: u64, signature: &[u8]) -> Self {
        Self::from_parts(&[
            b"v0",
            key_id.as_bytes(),
            timestamp.to_string().as_bytes(),
            signature,
        ])
    }

    fn from_parts(parts: &[&[u8]]) -> Self {
        let mut h = Sha256::new();
        for part in parts {
            // Length-prefixed, so no two different part lists hash the same input.
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        Self(h.finalize().into())
    }

    /// The key as 64 lower-case hex characters (what the Redis cache stores after its prefix).
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for ReplayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplayKey({})", self.to_hex())
    }
}

/// One request to remember: its key, the verifier's current time and when it may be forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayEntry {
    /// The request's identity.
    pub key: ReplayKey,
    /// The verifier's clock, Unix seconds.
    pub now: u64,
    /// Unix second from which the entry may be forgotten: the first second at which the
    /// verifier would reject the request as expired anyway. Always later than `now`.
    pub expires_at: u64,
}

impl ReplayEntry {
    /// Seconds from `now` until the entry may be forgotten (at least 1).
    #[must_use]
    pub fn ttl_secs(&self) -> u64 {
        self.expires_at.saturating_sub(self.now).max(1)
    }
}

/// Whether a request is seen for the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Insertion {
    /// First use: the entry is now stored.
    Fresh,
    /// Already stored and not expired: a replay.
    Seen,
}

/// Stores each accepted request once, atomically, until it expires.
///
/// `insert_once` must be atomic: of two concurrent calls with the same key, exactly one
/// returns [`Insertion::Fresh`]. An error makes the verifier reject the request.
pub trait ReplayCache: Send + Sync {
    /// The backend's error; the verifier reports it as [`Error::ReplayStoreUnavailable`](crate::Error::ReplayStoreUnavailable).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Stores `entry` if its key is not stored yet, and says which it was.
    fn insert_once(
        &self,
        entry: ReplayEntry,
    ) -> impl Future<Output = Result<Insertion, Self::Error>> + Send;
}

impl<R: ReplayCache + ?Sized> ReplayCache for Arc<R> {
    type Error = R::Error;

    fn insert_once(
        &self,
        entry: ReplayEntry,
    ) -> impl Future<Output = Result<Insertion, Self::Error>> + Send {
        (**self).insert_once(entry)
    }
}

impl<R: ReplayCache + ?Sized> ReplayCache for &R {
    type Error = R::Error;

    fn insert_once(
        &self,
        entry: ReplayEntry,
    ) -> impl Future<Output = Result<Insertion, Self::Error>> + Send {
        (**self).insert_once(entry)
    }
}

/// The in-memory cache is full of unexpired entries; the request is refused (fail closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("replay cache full ({capacity} unexpired entries)")]
pub struct ReplayCacheFull {
    /// The configured capacity.
    pub capacity: usize,
}

/// A bounded in-memory replay cache for one process.
///
/// Holds at most `capacity` unexpired entries. Expired entries are dropped on every insert
/// (oldest expiry first, `O(log n)` each). When the cache is full of unexpired entries it
/// **refuses** new ones with [`ReplayCacheFull`] (the verifier answers
/// [`Error::ReplayStoreUnavailable`](crate::Error::ReplayStoreUnavailable)) instead of
/// evicting an unexpired entry, which would reopen a replay window. Only requests with a
/// valid signature reach the cache, so only a holder of a secret can fill it.
///
/// An entry takes roughly 100 to 200 bytes (hash map slot plus expiry heap slot, with their
/// growth slack): budget 200 MB per million of capacity. Clones share the same entries.
/// Use `RedisReplayCache` (feature `redis`) when several server instances must share one cache.
#[derive(Clone)]
pub struct MemoryReplayCache {
    inner: Arc<Mutex<Inner>>,
    capacity: NonZeroUsize,
}

#[derive(Default)]
struct Inner {
    expiry: HashMap<ReplayKey, u64>,
    by_expiry: BinaryHeap<Reverse<(u64, ReplayKey)>>,
}

impl MemoryReplayCache {
    /// A cache holding at most `capacity` unexpired entries.
    #[must_use]
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner::default())),
            capacity,
        }
    }

    /// The number of entries held (expired ones are only dropped on the next insert).
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().expiry.len()
    }

    /// Whether no entry is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The maximum number of unexpired entries.
    #[must_use]
    pub fn capacity(&self) -> NonZeroUsize {
        self.capacity
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The critical sections never leave the maps inconsistent, so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn insert_now(&self, entry: ReplayEntry) -> Result<Insertion, ReplayCacheFull> {
        let mut inner = self.lock();
        while let Some(&Reverse((at, key))) = inner.by_expiry.peek() {
            if at > entry.now {
                break;
            }
            inner.by_expiry.pop();
            if inner.expiry.get(&key) == Some(&at) {
                inner.expiry.remove(&key);
            }
        }
        if inner.expiry.contains_key(&entry.key) {
            return Ok(Insertion::Seen);
        }
        if inner.expiry.len() >= self.capacity.get() {
            return Err(ReplayCacheFull {
                capacity: self.capacity.get(),
            });
        }
        let expires_at = entry.expires_at.max(entry.now.saturating_add(1));
        inner.expiry.insert(entry.key, expires_at);
        inner.by_expiry.push(Reverse((expires_at, entry.key)));
        Ok(Insertion::Fresh)
    }
}

impl fmt::Debug for MemoryReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

impl ReplayCache for MemoryReplayCache {
    type Error = ReplayCacheFull;

    fn insert_once(
        &self,
        entry: ReplayEntry,
    ) -> impl Future<Output = Result<Insertion, Self::Error>> + Send {
        core::future::ready(self.insert_now(entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8, now: u64, expires_at: u64) -> ReplayEntry {
        ReplayEntry {
            key: ReplayKey::v1("k", &format!("nonce-nonce-nonce-{n}")),
            now,
            expires_at,
        }
    }

    fn cache(cap: usize) -> MemoryReplayCache {
        MemoryReplayCache::new(NonZeroUsize::new(cap).unwrap())
    }

    #[test]
    fn second_insert_is_seen_until_expiry() {
        let c = cache(4);
        assert_eq!(c.insert_now(entry(1, 100, 110)), Ok(Insertion::Fresh));
        assert_eq!(c.insert_now(entry(1, 109, 120)), Ok(Insertion::Seen));
        assert_eq!(c.insert_now(entry(1, 110, 120)), Ok(Insertion::Fresh));
    }

    #[test]
    fn full_cache_refuses_instead_of_evicting() {
        let c = cache(2);
        assert_eq!(c.insert_now(entry(1, 100, 200)), Ok(Insertion::Fresh));
        assert_eq!(c.insert_now(entry(2, 100, 150)), Ok(Insertion::Fresh));
        assert_eq!(
            c.insert_now(entry(3, 100, 200)),
            Err(ReplayCacheFull { capacity: 2 })
        );
        // The stored entries are still remembered.
        assert_eq!(c.insert_now(entry(1, 101, 200)), Ok(Insertion::Seen));
        assert_eq!(c.insert_now(entry(2, 101, 200)), Ok(Insertion::Seen));
        // Once one expires there is room again.
        assert_eq!(c.insert_now(entry(3, 150, 200)), Ok(Insertion::Fresh));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn flood_of_unique_keys_stays_bounded() {
        let c = cache(100);
        for i in 0..10_000u64 {
            let e = ReplayEntry {
                key: ReplayKey::v1("k", &format!("nonce-{i:016}")),
                now: i / 10,
                expires_at: i / 10 + 5,
            };
            let _ = c.insert_now(e);
            assert!(c.len() <= 100);
            assert!(c.lock().by_expiry.len() <= 100);
        }
    }

    #[test]
    fn keys_are_domain_separated() {
        assert_ne!(ReplayKey::v1("ab", "c"), ReplayKey::v1("a", "bc"));
        assert_ne!(ReplayKey::v0("k", 1, b"x"), ReplayKey::v0("k", 1, b"y"));
        assert_eq!(
            ReplayEntry {
                key: ReplayKey::v1("a", "b"),
                now: 10,
                expires_at: 5
            }
            .ttl_secs(),
            1
        );
    }
}
