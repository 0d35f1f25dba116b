//! Authenticating presented keys against a store, with bounded caches in front of it.

use core::fmt;
use core::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cache::{LookupCache, LookupCacheBuilder};
use crate::error::{Error, Result};
use crate::hash::{KeyHash, KeyHasher};
use crate::key::KeyConfig;

const NANOS_PER_SEC: u64 = 1_000_000_000;

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
    /// current hasher) instead, so that the fallback can be dropped once every key was used;
    /// `true` when it moved a key (an `UPDATE ... WHERE key_hash = old` that changed a row).
    /// Called after such a key authenticated; its error is not the caller's (the key
    /// authenticated either way, and a use after the cache's TTL tries again). The default
    /// moves nothing, so the key authenticates only as long as the fallback hasher is
    /// configured.
    fn rehash(
        &self,
        old: &KeyHash,
        new: &KeyHash,
    ) -> impl Future<Output = core::result::Result<bool, Self::Error>> + Send {
        let _ = (old, new);
        async { Ok(false) }
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
/// Both caches (one [`LookupCache`]) hold 100,000 entries by default, split over 16 shards.
pub struct Authenticator<S: KeyStore, C = SystemClock> {
    config: KeyConfig,
    fallbacks: Vec<KeyHasher>,
    accepted: Vec<KeyHasher>,
    store: S,
    /// Known and unknown keys by hash; its clock is the authenticator's.
    cache: LookupCache<[u8; 32], Cached<KeyRecordOf<S>>, C>,
}

type KeyRecordOf<S> = KeyRecord<<S as KeyStore>::Identity>;

/// A record as cached, with when the store was asked for it: a record found under another
/// hash is cached under the current one too, trusted no longer than it was under the first.
#[derive(Clone, Debug)]
struct Cached<R> {
    record: R,
    asked: u64,
}

/// What a lookup of one hash found, and whether the store was asked for it just now.
struct Found<R> {
    cached: Option<Cached<R>>,
    fresh: bool,
}

impl<S: KeyStore, C: fmt::Debug> fmt::Debug for Authenticator<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("config", &self.config)
            .field("fallback_hashers", &self.fallbacks.len())
            .field("accepted_hashers", &self.accepted.len())
            .field("clock", self.cache.clock())
            .field("ttl_nanos", &self.cache.ttl().as_nanos())
            .finish_non_exhaustive()
    }
}

/// Builds an [`Authenticator`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct AuthenticatorBuilder<S: KeyStore, C = SystemClock> {
    config: KeyConfig,
    fallbacks: Vec<KeyHasher>,
    accepted: Vec<KeyHasher>,
    store: S,
    /// The clock, the TTL and the capacities, with the cache's own defaults.
    cache: LookupCacheBuilder<[u8; 32], Cached<KeyRecordOf<S>>, C>,
}

impl<S: KeyStore, C: fmt::Debug> fmt::Debug for AuthenticatorBuilder<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticatorBuilder")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl<S: KeyStore> Authenticator<S, SystemClock> {
    /// A builder checking keys of `config` against `store`.
    pub fn builder(config: KeyConfig, store: S) -> AuthenticatorBuilder<S, SystemClock> {
        AuthenticatorBuilder {
            config,
            fallbacks: Vec::new(),
            accepted: Vec::new(),
            store,
            cache: LookupCache::builder(),
        }
    }
}

impl<S: KeyStore, C: Clock> AuthenticatorBuilder<S, C> {
    /// Reads time from `clock` (a [`FakeClock`] in tests).
    pub fn clock<D: Clock>(self, clock: D) -> AuthenticatorBuilder<S, D> {
        AuthenticatorBuilder {
            config: self.config,
            fallbacks: self.fallbacks,
            accepted: self.accepted,
            store: self.store,
            cache: self.cache.clock(clock),
        }
    }

    /// Hashers that stored keys may still be hashed with (an earlier pepper, after it was
    /// rotated), tried in order when the current hasher's hash is unknown. A key found under
    /// one is moved to its current hash with [`KeyStore::rehash`].
    pub fn fallback_hashers(mut self, hashers: impl IntoIterator<Item = KeyHasher>) -> Self {
        self.fallbacks = hashers.into_iter().collect();
        self
    }

    /// Hashers whose hashes are accepted but never moved from: the next pepper, while other
    /// instances start using it (the first deploy of a rotation, see the README). Tried after
    /// the [fallbacks](Self::fallback_hashers). A key another instance moved to the new
    /// pepper's hash authenticates here, and stays where it is: were it moved back to this
    /// instance's current hash, the two kinds of instance would move it back and forth.
    pub fn accepted_hashers(mut self, hashers: impl IntoIterator<Item = KeyHasher>) -> Self {
        self.accepted = hashers.into_iter().collect();
        self
    }

    /// How long a lookup is trusted (default 5 s; zero turns the caches off).
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache = self.cache.ttl(ttl);
        self
    }

    /// The most known keys cached (default 100,000).
    pub fn known_capacity(mut self, entries: usize) -> Self {
        self.cache = self.cache.known_capacity(entries);
        self
    }

    /// The most unknown keys cached (default 100,000).
    pub fn unknown_capacity(mut self, entries: usize) -> Self {
        self.cache = self.cache.unknown_capacity(entries);
        self
    }

    /// The authenticator.
    ///
    /// # Errors
    /// [`Error::InvalidCacheCapacity`] naming the cache capacity that is zero.
    pub fn build(self) -> Result<Authenticator<S, C>> {
        Ok(Authenticator {
            cache: self.cache.build()?,
            config: self.config,
            fallbacks: self.fallbacks,
            accepted: self.accepted,
            store: self.store,
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
        let record = match self.record(hash).await?.cached {
            Some(cached) => cached.record,
            None if self.fallbacks.is_empty() && self.accepted.is_empty() => {
                return Err(Error::UnknownKey);
            }
            None => Box::pin(self.record_by_fallback(presented, &hash)).await?,
        };
        let now_secs = self.cache.clock().now_nanos() / NANOS_PER_SEC;
        if record.revoked {
            return Err(Error::RevokedKey);
        }
        if record.expires_at.is_some_and(|at| at <= now_secs) {
            return Err(Error::ExpiredKey);
        }
        Ok(record.identity)
    }

    /// The record of `presented` under a fallback or accepted hasher's hash; found under a
    /// fallback's, it is moved to `current`.
    async fn record_by_fallback(
        &self,
        presented: &str,
        current: &KeyHash,
    ) -> Result<KeyRecordOf<S>> {
        let mut asked_store = false;
        let hashers = self.fallbacks.iter().map(|h| (h, true));
        let hashers = hashers.chain(self.accepted.iter().map(|h| (h, false)));
        for (hasher, move_it) in hashers {
            let other = hasher.hash(presented);
            let found = self.record(other).await?;
            asked_store |= found.fresh;
            let Some(cached) = found.cached else {
                continue;
            };
            let moved = if move_it {
                matches!(self.store.rehash(&other, current).await, Ok(true))
            } else {
                false
            };
            if moved {
                // Not cached afresh under the current hash: the record may have been read up
                // to a TTL ago, and would be trusted for another TTL (a revocation would take
                // twice as long). The next call reads it there.
                self.cache.remove(other.as_bytes());
                self.cache.remove(current.as_bytes());
            } else {
                // Where it is, it answers for the current hash too, for what is left of its
                // TTL: the next calls cost no lookup, and a failed move is tried again after.
                self.cache
                    .put_known_at(*current.as_bytes(), cached.clone(), cached.asked);
            }
            return Ok(cached.record);
        }
        if asked_store {
            // Another call or instance may have moved the key to its current hash after that
            // hash was looked up and before the store was asked for the others: ask again, so
            // that a key in the store is never refused (nor cached as unknown for a TTL).
            let again = self.fetch(*current).await?;
            if let Some(cached) = again {
                return Ok(cached.record);
            }
        }
        Err(Error::UnknownKey)
    }

    /// What the cache holds for `hash`, or else what the store holds.
    async fn record(&self, hash: KeyHash) -> Result<Found<KeyRecordOf<S>>> {
        match self.cache.get(hash.as_bytes()) {
            Some(cached) => Ok(Found {
                cached,
                fresh: false,
            }),
            None => Ok(Found {
                cached: self.fetch(hash).await?,
                fresh: true,
            }),
        }
    }

    /// What the store holds for `hash`, cached.
    async fn fetch(&self, hash: KeyHash) -> Result<Option<Cached<KeyRecordOf<S>>>> {
        // The answer is trusted from when the store was asked, not from when it answered.
        let asked = self.cache.now();
        // Boxed: a store's lookup (an SQL query, say) can hold kilobytes of state, which every
        // request's future would otherwise carry, and copy when boxed, cache hit or not.
        let found =
            Box::pin(self.store.lookup(&hash))
                .await
                .map_err(|e| Error::StoreUnavailable {
                    reason: e.to_string(),
                })?;
        match found {
            Some(record) => {
                let cached = Cached { record, asked };
                self.cache
                    .put_known_at(*hash.as_bytes(), cached.clone(), asked);
                Ok(Some(cached))
            }
            None => {
                self.cache.put_unknown_at(*hash.as_bytes(), asked);
                Ok(None)
            }
        }
    }

    /// Forgets what is cached for `hash` (after revoking or changing that key here). A key
    /// found through a fallback or accepted hasher is cached under its current hash as well,
    /// which only the key itself gives: that copy goes with [`invalidate_all`](Self::invalidate_all),
    /// or at the end of its TTL, as on every other instance.
    pub fn invalidate(&self, hash: &KeyHash) {
        self.cache.remove(hash.as_bytes());
    }

    /// Forgets everything cached.
    pub fn invalidate_all(&self) {
        self.cache.clear();
    }

    /// How many known and unknown keys are cached (expired entries included until touched).
    #[must_use]
    pub fn cached(&self) -> (usize, usize) {
        (self.cache.known_len(), self.cache.unknown_len())
    }
}
