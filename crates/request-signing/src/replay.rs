//! Remembering which signed requests were already accepted.

use core::fmt;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
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

    /// The key of an RFC 9421 request: key id and nonce.
    #[must_use]
    pub fn rfc9421(key_id: &str, nonce: &str) -> Self {
        Self::from_parts(&[b"rfc9421", key_id.as_bytes(), nonce.as_bytes()])
    }

    /// The key of an RFC 9421 request without a nonce: key id and the signature bytes.
    pub(crate) fn rfc9421_signature(key_id: &str, signature: &[u8]) -> Self {
        Self::from_parts(&[b"rfc9421-signature", key_id.as_bytes(), signature])
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

    /// The owner of every request signed for `key_id`: whose share of the cache they use.
    #[must_use]
    pub fn owner(key_id: &str) -> Self {
        Self::from_parts(&[b"owner", key_id.as_bytes()])
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

/// One request to remember: its key, whose it is, the verifier's current time and when it may
/// be forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayEntry {
    /// The request's identity.
    pub key: ReplayKey,
    /// Whose request it is ([`ReplayKey::owner`] of the key id): each owner has its own bounded
    /// share of the cache.
    pub owner: ReplayKey,
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
#[non_exhaustive]
pub enum Insertion {
    /// First use: the entry is now stored.
    Fresh,
    /// Already stored and not expired: a replay.
    Seen,
    /// The owner already holds its whole share of unexpired entries: refused, and nothing is
    /// stored. Its oldest entry expires in `retry_after_secs`; every other owner is unaffected.
    OverBudget {
        /// Seconds until the owner's oldest entry expires (at least 1).
        retry_after_secs: u64,
    },
}

/// Stores each accepted request once, atomically, until it expires.
///
/// `insert_once` must be atomic: of two concurrent calls with the same key, exactly one
/// returns [`Insertion::Fresh`]. It must bound each owner's share of unexpired entries and
/// answer [`Insertion::OverBudget`] past it, so that one key's flood of fresh nonces never
/// fills the cache for the others. An error makes the verifier reject the request.
pub trait ReplayCache: Send + Sync {
    /// The backend's error; the verifier reports it as [`Error::ReplayStoreUnavailable`](crate::Error::ReplayStoreUnavailable).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Stores `entry` if its key is not stored yet and its owner has room, and says which it was.
    fn insert_once(
        &self,
        entry: ReplayEntry,
    ) -> impl Future<Output = Result<Insertion, Self::Error>> + Send;

    /// Forgets `entry`, stored by a call to [`insert_once`](Self::insert_once) that answered
    /// [`Insertion::Fresh`]: the request was refused by a later check (a spent quota, say), so
    /// its nonce may be used again and its room goes back to its owner.
    fn release(&self, entry: &ReplayEntry) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

impl<R: ReplayCache + ?Sized> ReplayCache for Arc<R> {
    type Error = R::Error;

    fn insert_once(
        &self,
        entry: ReplayEntry,
    ) -> impl Future<Output = Result<Insertion, Self::Error>> + Send {
        (**self).insert_once(entry)
    }

    fn release(&self, entry: &ReplayEntry) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).release(entry)
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

    fn release(&self, entry: &ReplayEntry) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).release(entry)
    }
}

/// One of two caches, chosen at start-up: memory for a single instance, Redis for several,
/// say. Every call goes to the one held; its error is that cache's.
impl<L: ReplayCache, R: ReplayCache> ReplayCache for either::Either<L, R> {
    type Error = either::Either<L::Error, R::Error>;

    async fn insert_once(&self, entry: ReplayEntry) -> Result<Insertion, Self::Error> {
        match self {
            Self::Left(cache) => cache.insert_once(entry).await.map_err(either::Either::Left),
            Self::Right(cache) => cache
                .insert_once(entry)
                .await
                .map_err(either::Either::Right),
        }
    }

    async fn release(&self, entry: &ReplayEntry) -> Result<(), Self::Error> {
        match self {
            Self::Left(cache) => cache.release(entry).await.map_err(either::Either::Left),
            Self::Right(cache) => cache.release(entry).await.map_err(either::Either::Right),
        }
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
/// Holds at most `capacity` unexpired entries, and at most the per-key share (a tenth of the
/// capacity unless [`with_per_key_limit`](Self::with_per_key_limit) says otherwise) for any one
/// owner. Expired entries are dropped on every insert (oldest expiry first, `O(log n)` each).
///
/// - A key that holds its whole share gets [`Insertion::OverBudget`] (the verifier answers
///   [`Error::ReplayBudgetExceeded`](crate::Error::ReplayBudgetExceeded), 429 over HTTP) until its
///   oldest entry expires; every other key goes on as before.
/// - When the whole cache is full of unexpired entries it **refuses** new ones with
///   [`ReplayCacheFull`] rather than evicting one, which would reopen a replay window. Size the
///   capacity above the per-key share times the number of keys that may flood at once.
///
/// Only requests with a valid signature reach the cache, so only a holder of a secret can fill
/// its share. An entry takes roughly 150 to 250 bytes with its indexes: budget 250 MB per
/// million of capacity. Clones share the same entries. Use `RedisReplayCache` (feature
/// `redis`) when several server instances must share one cache.
#[derive(Clone)]
pub struct MemoryReplayCache {
    inner: Arc<Mutex<Inner>>,
    capacity: NonZeroUsize,
    per_key: NonZeroUsize,
}

#[derive(Debug, Clone, Copy)]
struct Stored {
    expires_at: u64,
    owner: ReplayKey,
}

/// One owner's unexpired entries: how many, and how many expire at each second.
#[derive(Default)]
struct Share {
    live: usize,
    by_expiry: BTreeMap<u64, u32>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<ReplayKey, Stored>,
    by_expiry: BinaryHeap<Reverse<(u64, ReplayKey)>>,
    owners: HashMap<ReplayKey, Share>,
}

impl Inner {
    /// Drops `key` and gives its room back to its owner.
    fn forget(&mut self, key: &ReplayKey) {
        let Some(stored) = self.entries.remove(key) else {
            return;
        };
        if let Some(share) = self.owners.get_mut(&stored.owner) {
            share.live -= 1;
            if let Some(count) = share.by_expiry.get_mut(&stored.expires_at) {
                *count -= 1;
                if *count == 0 {
                    share.by_expiry.remove(&stored.expires_at);
                }
            }
            if share.live == 0 {
                self.owners.remove(&stored.owner);
            }
        }
    }

    fn expire(&mut self, now: u64) {
        while let Some(&Reverse((at, key))) = self.by_expiry.peek() {
            if at > now {
                break;
            }
            self.by_expiry.pop();
            if self.entries.get(&key).is_some_and(|s| s.expires_at == at) {
                self.forget(&key);
            }
        }
        // Released entries leave their heap slot behind: rebuild the heap before those
        // outnumber the live ones, so it stays bounded by the capacity.
        if self.by_expiry.len() > 2 * self.entries.len() + 1_024 {
            self.by_expiry = self
                .entries
                .iter()
                .map(|(key, stored)| Reverse((stored.expires_at, *key)))
                .collect();
        }
    }
}

impl MemoryReplayCache {
    /// A cache holding at most `capacity` unexpired entries, a tenth of them (at least one)
    /// for any one key.
    #[must_use]
    pub fn new(capacity: NonZeroUsize) -> Self {
        let per_key = NonZeroUsize::new(capacity.get() / 10).unwrap_or(NonZeroUsize::MIN);
        Self {
            inner: Arc::new(Mutex::new(Inner::default())),
            capacity,
            per_key,
        }
    }

    /// The same cache with each key's share set to `per_key` unexpired entries. A key signing
    /// `r` requests per second needs `r` times the verifier's maximum age plus twice its future
    /// skew plus one second (361 s by default): 100 requests/s need a share of 36,100.
    #[must_use]
    pub fn with_per_key_limit(mut self, per_key: NonZeroUsize) -> Self {
        self.per_key = per_key;
        self
    }

    /// The number of entries held (expired ones are only dropped on the next insert).
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().entries.len()
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

    /// The maximum number of unexpired entries of one key.
    #[must_use]
    pub fn per_key_limit(&self) -> NonZeroUsize {
        self.per_key
    }

    /// Whether `key` is stored and unexpired at `now`.
    #[must_use]
    pub fn contains(&self, key: &ReplayKey, now: u64) -> bool {
        self.lock()
            .entries
            .get(key)
            .is_some_and(|s| s.expires_at > now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The critical sections never leave the maps inconsistent, so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// [`ReplayCache::insert_once`], synchronously.
    ///
    /// # Errors
    /// [`ReplayCacheFull`] when the whole cache is full of unexpired entries.
    pub fn insert_now(&self, entry: ReplayEntry) -> Result<Insertion, ReplayCacheFull> {
        let mut inner = self.lock();
        inner.expire(entry.now);
        if inner.entries.contains_key(&entry.key) {
            return Ok(Insertion::Seen);
        }
        if let Some(share) = inner.owners.get(&entry.owner)
            && share.live >= self.per_key.get()
        {
            let oldest = share.by_expiry.keys().next().copied().unwrap_or(entry.now);
            return Ok(Insertion::OverBudget {
                retry_after_secs: oldest.saturating_sub(entry.now).max(1),
            });
        }
        if inner.entries.len() >= self.capacity.get() {
            return Err(ReplayCacheFull {
                capacity: self.capacity.get(),
            });
        }
        let expires_at = entry.expires_at.max(entry.now.saturating_add(1));
        let stored = Stored {
            expires_at,
            owner: entry.owner,
        };
        inner.entries.insert(entry.key, stored);
        inner.by_expiry.push(Reverse((expires_at, entry.key)));
        let share = inner.owners.entry(entry.owner).or_default();
        share.live += 1;
        *share.by_expiry.entry(expires_at).or_default() += 1;
        Ok(Insertion::Fresh)
    }

    /// [`ReplayCache::release`], synchronously.
    pub fn release_now(&self, entry: &ReplayEntry) {
        let mut inner = self.lock();
        if inner
            .entries
            .get(&entry.key)
            .is_some_and(|s| s.owner == entry.owner)
        {
            inner.forget(&entry.key);
        }
    }
}

impl fmt::Debug for MemoryReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayCache")
            .field("capacity", &self.capacity)
            .field("per_key", &self.per_key)
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

    fn release(&self, entry: &ReplayEntry) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.release_now(entry);
        core::future::ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_of(owner: &str, n: u64, now: u64, expires_at: u64) -> ReplayEntry {
        ReplayEntry {
            key: ReplayKey::v1(owner, &format!("nonce-nonce-nonce-{n}")),
            owner: ReplayKey::owner(owner),
            now,
            expires_at,
        }
    }

    fn entry(n: u64, now: u64, expires_at: u64) -> ReplayEntry {
        entry_of("k", n, now, expires_at)
    }

    fn cache(cap: usize) -> MemoryReplayCache {
        MemoryReplayCache::new(NonZeroUsize::new(cap).unwrap())
            .with_per_key_limit(NonZeroUsize::new(cap).unwrap())
    }

    #[tokio::test]
    async fn either_cache_is_the_one_it_holds() {
        for either in [
            either::Either::Left(cache(1)),
            either::Either::Right(cache(1)),
        ] {
            assert_eq!(
                either.insert_once(entry(1, 100, 200)).await,
                Ok(Insertion::Fresh)
            );
            assert_eq!(
                either.insert_once(entry(1, 101, 200)).await,
                Ok(Insertion::Seen)
            );
            let full = either.insert_once(entry_of("other", 2, 101, 200)).await;
            let held = either.as_ref().either(|c| c.len(), |c| c.len());
            assert!(full.is_err(), "the one cache it holds is full: {full:?}");
            assert_eq!(held, 1);
            either.release(&entry(1, 102, 200)).await.unwrap();
            assert_eq!(
                either.insert_once(entry(1, 103, 200)).await,
                Ok(Insertion::Fresh)
            );
        }
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
            c.insert_now(entry_of("other", 3, 100, 200)),
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
    fn a_key_over_its_share_is_refused_alone() {
        let c = MemoryReplayCache::new(NonZeroUsize::new(100).unwrap())
            .with_per_key_limit(NonZeroUsize::new(3).unwrap());
        for n in 0..3 {
            assert_eq!(
                c.insert_now(entry_of("flood", n, 100, 130 + n)),
                Ok(Insertion::Fresh)
            );
        }
        assert_eq!(
            c.insert_now(entry_of("flood", 9, 110, 140)),
            Ok(Insertion::OverBudget {
                retry_after_secs: 20
            })
        );
        // A replay is still a replay, and other keys are untouched.
        assert_eq!(
            c.insert_now(entry_of("flood", 0, 110, 140)),
            Ok(Insertion::Seen)
        );
        assert_eq!(
            c.insert_now(entry_of("calm", 1, 110, 140)),
            Ok(Insertion::Fresh)
        );
        // Once its oldest entry expires, the key has room again.
        assert_eq!(
            c.insert_now(entry_of("flood", 9, 130, 160)),
            Ok(Insertion::Fresh)
        );
        assert_eq!(c.len(), 4);
    }

    #[test]
    fn a_released_entry_can_be_used_again_and_frees_its_room() {
        let c = MemoryReplayCache::new(NonZeroUsize::new(100).unwrap())
            .with_per_key_limit(NonZeroUsize::new(1).unwrap());
        let e = entry(1, 100, 200);
        assert_eq!(c.insert_now(e), Ok(Insertion::Fresh));
        assert!(matches!(
            c.insert_now(entry(2, 100, 200)),
            Ok(Insertion::OverBudget { .. })
        ));
        c.release_now(&e);
        assert!(!c.contains(&e.key, 100));
        assert_eq!(c.insert_now(entry(2, 100, 200)), Ok(Insertion::Fresh));
        // Releasing an entry of another owner, or one never stored, changes nothing.
        c.release_now(&entry_of("other", 2, 100, 200));
        c.release_now(&entry(7, 100, 200));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn releases_never_grow_the_index_without_bound() {
        let c = cache(10);
        for n in 0..50_000 {
            let e = entry(n, 100, 400);
            assert_eq!(c.insert_now(e), Ok(Insertion::Fresh));
            c.release_now(&e);
        }
        let inner = c.lock();
        assert!(
            inner.by_expiry.len() <= 1_024 + 2,
            "{}",
            inner.by_expiry.len()
        );
        assert!(inner.owners.is_empty());
    }

    #[test]
    fn flood_of_unique_keys_stays_bounded() {
        let c = cache(100);
        for i in 0..10_000u64 {
            let _ = c.insert_now(entry(i, i / 10, i / 10 + 5));
            assert!(c.len() <= 100);
            assert!(c.lock().by_expiry.len() <= 100 + 1_024);
        }
    }

    #[test]
    fn keys_are_domain_separated() {
        assert_ne!(ReplayKey::v1("ab", "c"), ReplayKey::v1("a", "bc"));
        assert_ne!(ReplayKey::v0("k", 1, b"x"), ReplayKey::v0("k", 1, b"y"));
        assert_ne!(ReplayKey::owner("k"), ReplayKey::v1("k", ""));
        assert_eq!(
            ReplayEntry {
                key: ReplayKey::v1("a", "b"),
                owner: ReplayKey::owner("a"),
                now: 10,
                expires_at: 5
            }
            .ttl_secs(),
            1
        );
    }
}
