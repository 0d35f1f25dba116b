//! Authenticating presented keys against a store, with bounded caches in front of it.

use core::fmt;
use core::future::Future;
use core::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lru::LruCache;

use crate::error::{Error, Result};
use crate::hash::{KeyHash, KeyHasher};
use crate::key::KeyConfig;

const NANOS_PER_SEC: u64 = 1_000_000_000;
/// Most shards of each cache: lookups on different keys rarely wait for one another.
const SHARDS: usize = 16;
/// Entries per shard before a cache is split: a smaller cache is one exact LRU. Each shard
/// evicts on its own when full, so a shard must be large for the cache as a whole to hold
/// close to its capacity (a cache of 16 in 16 shards of one would evict a key as soon as
/// another landed in its shard).
const MIN_SHARD_ENTRIES: usize = 4096;

/// A source of wall-clock time: key expiry and cache ages are read from it.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    fn now_nanos(&self) -> u64;
}

/// The system's real-time clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_nanos(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct FakeClock {
    nanos: Arc<AtomicU64>,
}

impl FakeClock {
    /// A fake clock reading `secs` seconds since the Unix epoch.
    #[must_use]
    pub fn at_unix_secs(secs: u64) -> Self {
        Self {
            nanos: Arc::new(AtomicU64::new(secs.saturating_mul(NANOS_PER_SEC))),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::SeqCst)
    }
}

/// What the store holds for a key: who it is, and whether it may still be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord<I> {
    identity: I,
    expires_at: Option<u64>,
    revoked: bool,
}

impl<I> KeyRecord<I> {
    /// An active key of `identity` that does not expire.
    pub const fn active(identity: I) -> Self {
        Self {
            identity,
            expires_at: None,
            revoked: false,
        }
    }

    /// The same record, expiring at `unix_secs` (refused from that second on).
    #[must_use]
    pub const fn expires_at(mut self, unix_secs: u64) -> Self {
        self.expires_at = Some(unix_secs);
        self
    }

    /// The same record, revoked when `revoked`.
    #[must_use]
    pub const fn revoked(mut self, revoked: bool) -> Self {
        self.revoked = revoked;
        self
    }

    /// The identity the key stands for.
    pub const fn identity(&self) -> &I {
        &self.identity
    }
}

/// Where keys are looked up: by the stored hash, never by the key itself.
///
/// Returns `Send` futures, so a database-backed store plugs into any multi-threaded runtime.
pub trait KeyStore: Send + Sync {
    /// What an authenticated request carries on: a key id, its owner, its limits.
    type Identity: Clone + Send + Sync + 'static;
    /// The store's error; authentication reports it as [`Error::StoreUnavailable`].
    type Error: std::error::Error + Send + Sync + 'static;

    /// The record stored under `hash`, active or not; `None` for an unknown key.
    fn lookup(
        &self,
        hash: &KeyHash,
    ) -> impl Future<Output = core::result::Result<Option<KeyRecord<Self::Identity>>, Self::Error>> + Send;

    /// Stores the key found under `old` (a hash by a
    /// [fallback hasher](AuthenticatorBuilder::fallback_hashers)) under `new` (its hash by the
    /// current hasher) instead, so that the fallback can be dropped once every key was used.
    /// Called after such a key authenticated; its error is not the caller's (the key
    /// authenticated either way, and the next use tries again). The default keeps the old hash,
    /// so the key authenticates only as long as the fallback hasher is configured.
    fn rehash(
        &self,
        old: &KeyHash,
        new: &KeyHash,
    ) -> impl Future<Output = core::result::Result<(), Self::Error>> + Send {
        let _ = (old, new);
        async { Ok(()) }
    }
}

/// One shard of a cache: entries with the time they were fetched.
type Shard<V> = Mutex<LruCache<[u8; 32], (u64, V)>>;

/// An LRU cache of fresh entries, sharded when large: at most `capacity` in all (rounded up
/// to a multiple of the shards), evicting the least recently used of a shard, and an entry
/// older than the TTL counts as absent. Below `MIN_SHARD_ENTRIES` entries per shard it is one
/// shard, so it holds exactly `capacity` entries before evicting.
struct Cache<V> {
    shards: Box<[Shard<V>]>,
}

impl<V: Clone> Cache<V> {
    fn new(capacity: NonZeroUsize) -> Self {
        let shards = (capacity.get() / MIN_SHARD_ENTRIES).clamp(1, SHARDS);
        let per_shard =
            NonZeroUsize::new(capacity.get().div_ceil(shards)).unwrap_or(NonZeroUsize::MIN);
        Self {
            shards: (0..shards)
                .map(|_| Mutex::new(LruCache::new(per_shard)))
                .collect(),
        }
    }

    fn shard(&self, hash: &KeyHash) -> std::sync::MutexGuard<'_, LruCache<[u8; 32], (u64, V)>> {
        let index = usize::from(hash.as_bytes()[0]) % self.shards.len();
        // The critical sections never leave a shard inconsistent: a poisoned lock is usable.
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, hash: &KeyHash, now: u64, ttl: u64) -> Option<V> {
        let mut shard = self.shard(hash);
        match shard.get(hash.as_bytes()) {
            Some((at, value)) if now.saturating_sub(*at) < ttl => Some(value.clone()),
            Some(_) => {
                shard.pop(hash.as_bytes());
                None
            }
            None => None,
        }
    }

    fn put(&self, hash: KeyHash, now: u64, value: V) {
        self.shard(&hash).put(*hash.as_bytes(), (now, value));
    }

    fn remove(&self, hash: &KeyHash) {
        self.shard(hash).pop(hash.as_bytes());
    }

    fn clear(&self) {
        for shard in &*self.shards {
            shard.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

/// Checks presented keys: the format and checksum offline (garbage never reaches the store),
/// then the peppered hash against the [`KeyStore`], through two caches.
///
/// - **Known keys** are cached for the TTL (5 s by default): a revocation or an expiry change
///   in the store takes effect within it, on every instance. Expiry itself is checked on every
///   call, against the clock.
/// - **Unknown keys** go into a cache of their own, bounded and evicting the least recently
///   used, so that a flood of well-formed unknown keys (the checksum is public) is answered
///   without reaching the store and can never evict a known key.
///
/// Both caches hold 100,000 entries by default, split over 16 shards.
pub struct Authenticator<S: KeyStore, C = SystemClock> {
    config: KeyConfig,
    fallbacks: Vec<KeyHasher>,
    store: S,
    clock: C,
    ttl: u64,
    known: Cache<KeyRecordOf<S>>,
    unknown: Cache<()>,
}

type KeyRecordOf<S> = KeyRecord<<S as KeyStore>::Identity>;

impl<S: KeyStore, C: fmt::Debug> fmt::Debug for Authenticator<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("config", &self.config)
            .field("fallback_hashers", &self.fallbacks.len())
            .field("clock", &self.clock)
            .field("ttl_nanos", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Authenticator`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct AuthenticatorBuilder<S, C = SystemClock> {
    config: KeyConfig,
    fallbacks: Vec<KeyHasher>,
    store: S,
    clock: C,
    ttl: Duration,
    known: usize,
    unknown: usize,
}

impl<S, C: fmt::Debug> fmt::Debug for AuthenticatorBuilder<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticatorBuilder")
            .field("ttl", &self.ttl)
            .field("known", &self.known)
            .field("unknown", &self.unknown)
            .finish_non_exhaustive()
    }
}

impl<S: KeyStore> Authenticator<S, SystemClock> {
    /// A builder checking keys of `config` against `store`.
    pub fn builder(config: KeyConfig, store: S) -> AuthenticatorBuilder<S, SystemClock> {
        AuthenticatorBuilder {
            config,
            fallbacks: Vec::new(),
            store,
            clock: SystemClock,
            ttl: Duration::from_secs(5),
            known: 100_000,
            unknown: 100_000,
        }
    }
}

impl<S: KeyStore, C: Clock> AuthenticatorBuilder<S, C> {
    /// Reads time from `clock` (a [`FakeClock`] in tests).
    pub fn clock<D: Clock>(self, clock: D) -> AuthenticatorBuilder<S, D> {
        AuthenticatorBuilder {
            config: self.config,
            fallbacks: self.fallbacks,
            store: self.store,
            clock,
            ttl: self.ttl,
            known: self.known,
            unknown: self.unknown,
        }
    }

    /// Hashers that stored keys may still be hashed with (an earlier pepper, after it was
    /// rotated), tried in order when the current hasher's hash is unknown. A key found under
    /// one is moved to its current hash with [`KeyStore::rehash`].
    pub fn fallback_hashers(mut self, hashers: impl IntoIterator<Item = KeyHasher>) -> Self {
        self.fallbacks = hashers.into_iter().collect();
        self
    }

    /// How long a lookup is trusted (default 5 s; zero turns the caches off).
    pub const fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The most known keys cached (default 100,000).
    pub const fn known_capacity(mut self, entries: usize) -> Self {
        self.known = entries;
        self
    }

    /// The most unknown keys cached (default 100,000).
    pub const fn unknown_capacity(mut self, entries: usize) -> Self {
        self.unknown = entries;
        self
    }

    /// The authenticator.
    ///
    /// # Errors
    /// [`Error::InvalidCacheCapacity`] when a cache capacity is zero.
    pub fn build(self) -> Result<Authenticator<S, C>> {
        let capacity = |entries| NonZeroUsize::new(entries).ok_or(Error::InvalidCacheCapacity);
        Ok(Authenticator {
            known: Cache::new(capacity(self.known)?),
            unknown: Cache::new(capacity(self.unknown)?),
            config: self.config,
            fallbacks: self.fallbacks,
            store: self.store,
            clock: self.clock,
            ttl: u64::try_from(self.ttl.as_nanos()).unwrap_or(u64::MAX),
        })
    }
}

impl<S: KeyStore, C: Clock> Authenticator<S, C> {
    /// The key format checked.
    pub const fn config(&self) -> &KeyConfig {
        &self.config
    }

    /// The store.
    pub const fn store(&self) -> &S {
        &self.store
    }

    /// The identity of the active key `presented`.
    ///
    /// # Errors
    /// The format's errors ([`Error::WrongPrefix`], [`Error::ChecksumMismatch`], ...);
    /// [`Error::UnknownKey`], [`Error::RevokedKey`], [`Error::ExpiredKey`];
    /// [`Error::StoreUnavailable`] when the store fails.
    pub async fn authenticate(&self, presented: &str) -> Result<S::Identity> {
        self.config.parse(presented)?;
        let hash = self.config.hash(presented);
        let record = match self.record(hash).await {
            Err(Error::UnknownKey) if !self.fallbacks.is_empty() => {
                self.record_by_fallback(presented, &hash).await?
            }
            other => other?,
        };
        let now_secs = self.clock.now_nanos() / NANOS_PER_SEC;
        if record.revoked {
            return Err(Error::RevokedKey);
        }
        if record.expires_at.is_some_and(|at| at <= now_secs) {
            return Err(Error::ExpiredKey);
        }
        Ok(record.identity)
    }

    /// The record of `presented` under a fallback hasher's hash, moved to `current`.
    async fn record_by_fallback(
        &self,
        presented: &str,
        current: &KeyHash,
    ) -> Result<KeyRecordOf<S>> {
        for hasher in &self.fallbacks {
            let old = hasher.hash(presented);
            match self.record(old).await {
                Ok(record) => {
                    if self.store.rehash(&old, current).await.is_ok() {
                        self.known.remove(&old);
                        self.unknown.remove(current);
                        self.known
                            .put(*current, self.clock.now_nanos(), record.clone());
                    }
                    return Ok(record);
                }
                Err(Error::UnknownKey) => {}
                Err(other) => return Err(other),
            }
        }
        Err(Error::UnknownKey)
    }

    async fn record(&self, hash: KeyHash) -> Result<KeyRecordOf<S>> {
        let now = self.clock.now_nanos();
        if let Some(record) = self.known.get(&hash, now, self.ttl) {
            return Ok(record);
        }
        if self.unknown.get(&hash, now, self.ttl).is_some() {
            return Err(Error::UnknownKey);
        }
        let found = self
            .store
            .lookup(&hash)
            .await
            .map_err(|e| Error::StoreUnavailable {
                reason: e.to_string(),
            })?;
        match found {
            Some(record) => {
                self.known.put(hash, now, record.clone());
                Ok(record)
            }
            None => {
                self.unknown.put(hash, now, ());
                Err(Error::UnknownKey)
            }
        }
    }

    /// Forgets what is cached for `hash` (after revoking or changing that key here).
    pub fn invalidate(&self, hash: &KeyHash) {
        self.known.remove(hash);
        self.unknown.remove(hash);
    }

    /// Forgets everything cached.
    pub fn invalidate_all(&self) {
        self.known.clear();
        self.unknown.clear();
    }

    /// How many known and unknown keys are cached (expired entries included until touched).
    #[must_use]
    pub fn cached(&self) -> (usize, usize) {
        (self.known.len(), self.unknown.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(first: u8, n: u8) -> KeyHash {
        let mut bytes = [0u8; 32];
        bytes[0] = first;
        bytes[1] = n;
        KeyHash::from_bytes(bytes)
    }

    #[test]
    fn a_small_cache_holds_its_capacity_whatever_the_hashes() {
        // Sixteen keys whose hashes would all fall in one shard of a sharded cache.
        let cache = Cache::new(NonZeroUsize::new(16).unwrap());
        for n in 0..16 {
            cache.put(hash(0, n), 0, n);
        }
        for n in 0..16 {
            assert_eq!(cache.get(&hash(0, n), 1, 10), Some(n), "key {n} evicted");
        }
        assert_eq!(cache.len(), 16);
        // The seventeenth evicts the least recently used one only.
        cache.put(hash(0, 16), 0, 16);
        assert_eq!(cache.get(&hash(0, 0), 1, 10), None);
        assert_eq!(cache.len(), 16);
    }

    #[test]
    fn a_large_cache_is_sharded_and_holds_its_capacity_in_all() {
        let cache: Cache<()> = Cache::new(NonZeroUsize::new(100_000).unwrap());
        assert_eq!(cache.shards.len(), SHARDS);
        let per_shard: usize = cache
            .shards
            .iter()
            .map(|s| s.lock().unwrap().cap().get())
            .sum();
        assert!((100_000..100_000 + SHARDS).contains(&per_shard));
        let cache: Cache<()> = Cache::new(NonZeroUsize::new(MIN_SHARD_ENTRIES * 2).unwrap());
        assert_eq!(cache.shards.len(), 2);
    }
}
