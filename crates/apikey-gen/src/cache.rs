//! A bounded cache of what a store answered: known values and unknown names apart, each
//! trusted for a TTL.

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;
use core::num::NonZeroUsize;
use std::hash::RandomState;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use lru::LruCache;

use crate::auth::{Clock, SystemClock};
use crate::error::{Error, Result};

/// Most shards of each kind: lookups of different keys rarely wait for one another.
const SHARDS: usize = 16;
/// Entries per shard before a kind is split: a smaller one is one exact LRU. Each shard
/// evicts on its own when full, so a shard must be large for the whole to hold close to its
/// capacity (a cache of 16 in 16 shards of one would evict a key as soon as another landed in
/// its shard).
const MIN_SHARD_ENTRIES: usize = 4096;

/// What a store answered, by key: the value of each known key, and the keys it does not know,
/// each answer trusted for a TTL.
///
/// - Known and unknown keys are held apart, each kind bounded and evicting its least recently
///   used entry: a flood of unknown keys (well formed, but made up) fills only its own side
///   and never pushes a known key out.
/// - An entry older than the TTL counts as absent. Its age is read from the [`Clock`] and
///   counts from when the store was asked: read [`now`](LookupCache::now) before asking, and
///   put the answer with [`put_known_at`](LookupCache::put_known_at) or
///   [`put_unknown_at`](LookupCache::put_unknown_at), so that an answer is never trusted for
///   longer than the TTL after it was read (a revocation made during a slow lookup still
///   takes effect within the TTL). An entry from a time ahead of the clock (the wall clock
///   stepped back) counts as absent too.
/// - Below 8,192 entries a kind is one exact LRU. A larger one is split by the key's hash
///   into up to 16 shards of at least 4,096 (a lookup locks one shard only), each evicting on
///   its own; together they hold the capacity, rounded up to a multiple of the shards.
///
/// The [`Authenticator`](crate::Authenticator) keeps one in front of its
/// [`KeyStore`](crate::KeyStore). Features `actix` or `tower`.
///
/// ```
/// use std::time::Duration;
///
/// use apikey_gen::{FakeClock, LookupCache};
///
/// let clock = FakeClock::at_unix_secs(1_767_225_600);
/// let cache = LookupCache::builder()
///     .clock(clock.clone())
///     .ttl(Duration::from_secs(5))
///     .known_capacity(1_000)
///     .unknown_capacity(1_000)
///     .build()?;
/// cache.put_known("id:k1".to_owned(), "billing");
/// cache.put_unknown("id:nobody".to_owned());
///
/// assert_eq!(cache.get("id:k1"), Some(Some("billing")));
/// assert_eq!(cache.get("id:nobody"), Some(None)); // the store knows no such key
/// assert_eq!(cache.get("id:k2"), None); // ask the store
///
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(cache.get("id:k1"), None);
/// # Ok::<(), apikey_gen::Error>(())
/// ```
pub struct LookupCache<K, V, C = SystemClock> {
    known: Shards<K, V>,
    unknown: Shards<K, ()>,
    ttl_nanos: u64,
    clock: C,
}

impl<K, V, C: fmt::Debug> fmt::Debug for LookupCache<K, V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LookupCache")
            .field("ttl", &self.ttl())
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// Builds a [`LookupCache`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct LookupCacheBuilder<K, V, C = SystemClock> {
    clock: C,
    ttl: Duration,
    known: usize,
    unknown: usize,
    entries: PhantomData<fn() -> (K, V)>,
}

impl<K, V, C: fmt::Debug> fmt::Debug for LookupCacheBuilder<K, V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LookupCacheBuilder")
            .field("clock", &self.clock)
            .field("ttl", &self.ttl)
            .field("known", &self.known)
            .field("unknown", &self.unknown)
            .finish()
    }
}

impl<K, V> LookupCache<K, V, SystemClock> {
    /// A builder: answers trusted for 5 s, 100,000 entries of each kind, the system clock.
    pub const fn builder() -> LookupCacheBuilder<K, V, SystemClock> {
        LookupCacheBuilder {
            clock: SystemClock,
            ttl: Duration::from_secs(5),
            known: 100_000,
            unknown: 100_000,
            entries: PhantomData,
        }
    }
}

impl<K, V, C> LookupCacheBuilder<K, V, C> {
    /// Reads time from `clock` (a [`FakeClock`](crate::FakeClock) in tests).
    pub fn clock<D: Clock>(self, clock: D) -> LookupCacheBuilder<K, V, D> {
        LookupCacheBuilder {
            clock,
            ttl: self.ttl,
            known: self.known,
            unknown: self.unknown,
            entries: PhantomData,
        }
    }

    /// How long an answer is trusted (default 5 s; zero trusts none).
    pub const fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The most known keys held (default 100,000).
    pub const fn known_capacity(mut self, entries: usize) -> Self {
        self.known = entries;
        self
    }

    /// The most unknown keys held (default 100,000).
    pub const fn unknown_capacity(mut self, entries: usize) -> Self {
        self.unknown = entries;
        self
    }
}

impl<K: Hash + Eq, V, C: Clock> LookupCacheBuilder<K, V, C> {
    /// The cache.
    ///
    /// # Errors
    /// [`Error::InvalidCacheCapacity`] naming the capacity that is zero.
    pub fn build(self) -> Result<LookupCache<K, V, C>> {
        let capacity = |entries, setting| {
            NonZeroUsize::new(entries).ok_or(Error::InvalidCacheCapacity { setting })
        };
        Ok(LookupCache {
            known: Shards::new(capacity(self.known, "known_capacity")?),
            unknown: Shards::new(capacity(self.unknown, "unknown_capacity")?),
            ttl_nanos: u64::try_from(self.ttl.as_nanos()).unwrap_or(u64::MAX),
            clock: self.clock,
        })
    }
}

impl<K, V, C> LookupCache<K, V, C> {
    /// The clock entries are aged by.
    #[must_use]
    pub const fn clock(&self) -> &C {
        &self.clock
    }

    /// How long an answer is trusted.
    #[must_use]
    pub const fn ttl(&self) -> Duration {
        Duration::from_nanos(self.ttl_nanos)
    }
}

impl<K: Hash + Eq, V: Clone, C: Clock> LookupCache<K, V, C> {
    /// The fresh answer for `key`: `Some(Some(value))` for a known key, `Some(None)` for a key
    /// the store does not know, `None` when the store must be asked.
    #[must_use]
    pub fn get<Q>(&self, key: &Q) -> Option<Option<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = self.clock.now_nanos();
        if let Some(value) = self.known.get(key, now, self.ttl_nanos) {
            return Some(Some(value));
        }
        self.unknown.get(key, now, self.ttl_nanos).map(|()| None)
    }

    /// The clock's reading (nanoseconds): take it before asking the store, and give it to
    /// [`put_known_at`](Self::put_known_at) or [`put_unknown_at`](Self::put_unknown_at).
    #[must_use]
    pub fn now(&self) -> u64 {
        self.clock.now_nanos()
    }

    /// Records that the store holds `value` under `key` (replacing what was held for it), as
    /// read now.
    pub fn put_known(&self, key: K, value: V) {
        self.put_known_at(key, value, self.now());
    }

    /// Records that the store, asked at `asked_at` (a reading of [`now`](Self::now)), holds
    /// `value` under `key`: the answer is trusted until `asked_at` plus the TTL.
    pub fn put_known_at(&self, key: K, value: V, asked_at: u64) {
        self.unknown.remove(&key);
        self.known.put(key, asked_at, value);
    }

    /// Records that the store knows no `key` (replacing what was held for it), as read now.
    pub fn put_unknown(&self, key: K) {
        self.put_unknown_at(key, self.now());
    }

    /// Records that the store, asked at `asked_at` (a reading of [`now`](Self::now)), knows
    /// no `key`.
    pub fn put_unknown_at(&self, key: K, asked_at: u64) {
        self.known.remove(&key);
        self.unknown.put(key, asked_at, ());
    }

    /// Forgets what is held for `key`.
    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.known.remove(key);
        self.unknown.remove(key);
    }

    /// Forgets every known key whose value is `stale` (all the names of a record that changed,
    /// say); returns how many were forgotten.
    pub fn remove_where(&self, stale: impl FnMut(&V) -> bool) -> usize
    where
        K: Clone,
    {
        self.known.remove_where(stale)
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.known.clear();
        self.unknown.clear();
    }

    /// How many keys are held, known and unknown (expired ones included until touched).
    #[must_use]
    pub fn len(&self) -> usize {
        self.known_len() + self.unknown_len()
    }

    /// Whether no key is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many known keys are held (expired ones included until touched).
    #[must_use]
    pub fn known_len(&self) -> usize {
        self.known.len()
    }

    /// How many unknown keys are held (expired ones included until touched).
    #[must_use]
    pub fn unknown_len(&self) -> usize {
        self.unknown.len()
    }
}

/// One shard: values with the time they were put, in nanoseconds.
type Shard<K, V> = Mutex<LruCache<K, (u64, V)>>;

/// One kind of entry, in LRU shards.
struct Shards<K, V> {
    shards: Box<[Shard<K, V>]>,
    hasher: RandomState,
}

impl<K: Hash + Eq, V> Shards<K, V> {
    fn new(capacity: NonZeroUsize) -> Self {
        let shards = (capacity.get() / MIN_SHARD_ENTRIES).clamp(1, SHARDS);
        let per_shard =
            NonZeroUsize::new(capacity.get().div_ceil(shards)).unwrap_or(NonZeroUsize::MIN);
        Self {
            shards: (0..shards)
                .map(|_| Mutex::new(LruCache::new(per_shard)))
                .collect(),
            hasher: RandomState::new(),
        }
    }

    fn lock(shard: &Shard<K, V>) -> MutexGuard<'_, LruCache<K, (u64, V)>> {
        // The critical sections make single inserts and removes, which leave a shard consistent
        // even if a key's `Hash`, `Eq` or `Clone`, or a `remove_where` predicate, panics in
        // one: a poisoned lock is usable.
        shard.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> MutexGuard<'_, LruCache<K, (u64, V)>> {
        let index = match self.shards.len() {
            1 => 0,
            // On 32-bit targets the cast keeps the hash's low bits, as good as any.
            n => self.hasher.hash_one(key) as usize % n,
        };
        Self::lock(&self.shards[index])
    }

    fn get<Q>(&self, key: &Q, now: u64, ttl: u64) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let mut shard = self.shard(key);
        match shard.get(key) {
            // From a time ahead of `now` (the clock stepped back): not to be trusted.
            Some((at, value)) if now.checked_sub(*at).is_some_and(|age| age < ttl) => {
                Some(value.clone())
            }
            Some(_) => {
                shard.pop(key);
                None
            }
            None => None,
        }
    }

    fn put(&self, key: K, now: u64, value: V) {
        self.shard(&key).put(key, (now, value));
    }

    fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard(key).pop(key);
    }

    fn remove_where(&self, mut stale: impl FnMut(&V) -> bool) -> usize
    where
        K: Clone,
    {
        let mut removed = 0;
        for shard in &*self.shards {
            let mut shard = Self::lock(shard);
            let keys: Vec<K> = shard
                .iter()
                .filter(|(_, (_, value))| stale(value))
                .map(|(key, _)| key.clone())
                .collect();
            for key in &keys {
                shard.pop(key);
            }
            removed += keys.len();
        }
        removed
    }

    fn clear(&self) {
        for shard in &*self.shards {
            Self::lock(shard).clear();
        }
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| Self::lock(s).len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::auth::FakeClock;

    const TTL: Duration = Duration::from_secs(5);

    fn cache(
        known: usize,
        unknown: usize,
        clock: &FakeClock,
    ) -> LookupCache<String, u32, FakeClock> {
        LookupCache::builder()
            .clock(clock.clone())
            .ttl(TTL)
            .known_capacity(known)
            .unknown_capacity(unknown)
            .build()
            .unwrap()
    }

    fn hash(first: u8, n: u8) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        bytes[0] = first;
        bytes[1] = n;
        bytes
    }

    #[test]
    fn a_small_cache_holds_its_capacity_whatever_the_hashes() {
        // Sixteen keys with one first byte: a cache below `MIN_SHARD_ENTRIES` per shard is one
        // exact LRU, whatever its keys.
        let cache = LookupCache::builder()
            .clock(FakeClock::at_unix_secs(0))
            .known_capacity(16)
            .build()
            .unwrap();
        for n in 0..16 {
            cache.put_known(hash(0, n), n);
        }
        for n in 0..16 {
            assert_eq!(cache.get(&hash(0, n)), Some(Some(n)), "key {n} evicted");
        }
        assert_eq!(cache.known_len(), 16);
        // The seventeenth evicts the least recently used one only.
        cache.put_known(hash(0, 16), 16);
        assert_eq!(cache.get(&hash(0, 0)), None);
        assert_eq!(cache.known_len(), 16);
    }

    #[test]
    fn a_large_cache_is_sharded_and_holds_its_capacity_in_all() {
        let shards: Shards<[u8; 32], ()> = Shards::new(NonZeroUsize::new(100_000).unwrap());
        assert_eq!(shards.shards.len(), SHARDS);
        let capacity: usize = shards
            .shards
            .iter()
            .map(|s| s.lock().unwrap().cap().get())
            .sum();
        assert!((100_000..100_000 + SHARDS).contains(&capacity));
        let shards: Shards<[u8; 32], ()> =
            Shards::new(NonZeroUsize::new(MIN_SHARD_ENTRIES * 2).unwrap());
        assert_eq!(shards.shards.len(), 2);
        let shards: Shards<[u8; 32], ()> =
            Shards::new(NonZeroUsize::new(MIN_SHARD_ENTRIES * 2 - 1).unwrap());
        assert_eq!(shards.shards.len(), 1);
    }

    #[test]
    fn answers_are_trusted_for_the_ttl_on_the_clock() {
        let clock = FakeClock::at_unix_secs(1_000);
        let cache = cache(8, 8, &clock);
        cache.put_known("k".into(), 1);
        cache.put_unknown("u".into());
        clock.advance(TTL - Duration::from_nanos(1));
        assert_eq!(cache.get("k"), Some(Some(1)));
        assert_eq!(cache.get("u"), Some(None));
        clock.advance(Duration::from_nanos(1));
        assert_eq!(cache.get("k"), None);
        assert_eq!(cache.get("u"), None);
        assert!(cache.is_empty(), "expired entries are dropped when touched");

        let untrusting = LookupCache::builder()
            .clock(clock)
            .ttl(Duration::ZERO)
            .build()
            .unwrap();
        untrusting.put_known("k", 1);
        untrusting.put_unknown("u");
        assert_eq!((untrusting.get("k"), untrusting.get("u")), (None, None));
    }

    #[test]
    fn an_answer_is_trusted_from_when_the_store_was_asked() {
        let clock = FakeClock::at_unix_secs(1_000);
        let cache = cache(4, 4, &clock);
        let asked = cache.now();
        // The store took 3 s to answer: the answer has 2 s of the TTL left, not 5.
        clock.advance(Duration::from_secs(3));
        cache.put_known_at("k".to_owned(), 1, asked);
        cache.put_unknown_at("u".to_owned(), asked);
        clock.advance(Duration::from_secs(1));
        assert_eq!(cache.get("k"), Some(Some(1)));
        assert_eq!(cache.get("u"), Some(None));
        clock.advance(Duration::from_secs(1));
        assert_eq!(cache.get("k"), None);
        assert_eq!(cache.get("u"), None);
        // An answer from a time ahead of the clock (the wall clock stepped back) is not trusted.
        cache.put_known_at("ahead".to_owned(), 2, cache.now() + 1);
        assert_eq!(cache.get("ahead"), None);
    }

    #[test]
    fn each_kind_is_bounded_and_evicts_its_least_recently_used() {
        let clock = FakeClock::at_unix_secs(1_000);
        let cache = cache(2, 3, &clock);
        cache.put_known("a".into(), 1);
        cache.put_known("b".into(), 2);
        assert_eq!(cache.get("a"), Some(Some(1)));
        cache.put_known("c".into(), 3);
        assert_eq!(cache.get("b"), None, "b was the least recently used");
        assert_eq!(
            (cache.get("a"), cache.get("c")),
            (Some(Some(1)), Some(Some(3)))
        );
        for name in ["u1", "u2", "u3", "u4"] {
            cache.put_unknown(name.into());
        }
        assert_eq!(cache.get("u1"), None);
        assert_eq!((cache.known_len(), cache.unknown_len()), (2, 3));
        assert_eq!(cache.len(), 5);
    }

    #[test]
    fn the_latest_answer_for_a_key_wins() {
        let clock = FakeClock::at_unix_secs(1_000);
        let cache = cache(8, 8, &clock);
        cache.put_unknown("k".into());
        cache.put_known("k".into(), 1);
        assert_eq!(cache.get("k"), Some(Some(1)));
        assert_eq!((cache.known_len(), cache.unknown_len()), (1, 0));
        cache.put_unknown("k".into());
        assert_eq!(cache.get("k"), Some(None));
        assert_eq!((cache.known_len(), cache.unknown_len()), (0, 1));
        cache.remove("k");
        assert_eq!(cache.get("k"), None);
        cache.put_known("k".into(), 1);
        cache.put_unknown("u".into());
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn remove_where_forgets_every_matching_known_key_only() {
        let clock = FakeClock::at_unix_secs(1_000);
        // Large enough to be sharded: the matches are spread over several shards.
        let cache = cache(MIN_SHARD_ENTRIES * SHARDS, 8, &clock);
        for n in 0..1_000 {
            cache.put_known(format!("name-{n}"), n % 10);
        }
        cache.put_unknown("nobody".into());
        assert_eq!(cache.remove_where(|&value| value == 3), 100);
        assert_eq!(cache.known_len(), 900);
        assert_eq!(cache.get("name-3"), None);
        assert_eq!(cache.get("name-993"), None);
        assert_eq!(cache.get("name-4"), Some(Some(4)));
        assert_eq!(cache.get("nobody"), Some(None));
    }

    #[test]
    fn a_capacity_of_zero_is_refused() {
        let build = |known, unknown| {
            LookupCache::<String, u32>::builder()
                .known_capacity(known)
                .unknown_capacity(unknown)
                .build()
                .map(|_| ())
        };
        let refused = |setting| Err(Error::InvalidCacheCapacity { setting });
        assert_eq!(build(0, 1), refused("known_capacity"));
        assert_eq!(build(1, 0), refused("unknown_capacity"));
        assert_eq!(
            build(1, 0).unwrap_err().to_string(),
            "unknown_capacity must be at least 1"
        );
        assert_eq!(build(1, 1), Ok(()));
    }

    proptest! {
        #[test]
        fn a_flood_of_unknown_keys_never_evicts_a_known_one(
            known in prop::collection::hash_set(any::<u16>(), 1..=8),
            flood in prop::collection::vec(any::<u16>(), 0..2_000),
        ) {
            let clock = FakeClock::at_unix_secs(1_000);
            let cache = cache(8, 16, &clock);
            for &n in &known {
                cache.put_known(format!("key-{n}"), u32::from(n));
            }
            for n in flood {
                cache.put_unknown(format!("made-up-{n}"));
                prop_assert!(cache.unknown_len() <= 16);
            }
            prop_assert_eq!(cache.known_len(), known.len());
            for &n in &known {
                prop_assert_eq!(cache.get(&format!("key-{n}")), Some(Some(u32::from(n))));
            }
        }
    }
}
