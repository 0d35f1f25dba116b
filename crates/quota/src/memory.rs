//! The in-memory backend: sharded, exact under concurrency, bounded in memory.

use core::hash::BuildHasher;
use core::num::NonZeroU64;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hashbrown::HashTable;
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Usage};
use crate::clock::{Clock, FastClock};
use crate::decision::{Decision, Detail, Status};
use crate::error::{Error, Result};
use crate::policy::{FixedState, Gcra, Kind, Policy, fixed_step, gcra_step};

const NANOS_PER_SEC: u64 = 1_000_000_000;
/// Keys per shard, at least, when the number of shards is left to the builder.
const MIN_SHARD_KEYS: usize = 1_024;
/// How often, at most, a full shard sweeps out its expired keys before evicting live ones.
const SWEEP_INTERVAL_NANOS: u64 = NANOS_PER_SEC;
/// How many entries are sampled to choose a live key to evict from a full shard.
const EVICTION_SAMPLE: usize = 8;

/// Default bound on the number of keys held ([`MemoryBuilder::max_keys`]).
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;
/// Default bound on a key's length in bytes ([`MemoryBuilder::max_key_len`]).
pub const DEFAULT_MAX_KEY_LEN: usize = 512;

/// Quotas held in this process: sharded hash tables, exact under any concurrency.
///
/// Each key hashes (SipHash with a random key, so untrusted keys cannot aim at one bucket) to one
/// of a power-of-two number of shards. A decision on a known key takes its shard's lock in shared
/// mode only, so calls on different keys never wait for each other; the key's own state is then
/// updated lock-free (GCRA: one compare-and-swap, as governor does) or under the key's own
/// mutex (fixed window). Only the first call of a new key takes the shard's lock exclusively. Memory is bounded by [`MemoryBuilder::max_keys`]: a full shard first drops keys whose
/// window or GCRA bucket has expired (they hold nothing worth keeping); if every key is live, it
/// evicts the least-used of a small sample, which forgets that key's consumption. Size
/// `max_keys` above the number of keys active in one window to keep every count exact.
///
/// The methods here are synchronous; the [`Backend`] implementation wraps them in ready futures.
///
/// Per-key overrides are not counted against `max_keys` and are never evicted.
pub struct MemoryBackend<C: Clock = FastClock> {
    policy: Policy,
    shards: Box<[Padded]>,
    mask: u64,
    per_shard: usize,
    max_key_len: usize,
    hasher: RandomState,
    clock: C,
}

/// A shard on its own cache line, so two cores locking neighbours do not share one.
#[repr(align(64))]
struct Padded(RwLock<Shard>);

#[derive(Default)]
struct Shard {
    entries: HashTable<Entry>,
    overrides: HashTable<Override>,
    last_sweep: u64,
}

/// A key's state.
struct Entry {
    hash: u64,
    key: Box<str>,
    /// GCRA: the theoretical arrival time (Unix nanoseconds), updated by compare-and-swap.
    tat: AtomicU64,
    /// Fixed window: the window start (Unix seconds) and the cost used in it.
    fixed: Mutex<FixedState>,
}

impl Entry {
    fn new(hash: u64, key: Box<str>, tat: u64, fixed: FixedState) -> Self {
        Self {
            hash,
            key,
            tat: AtomicU64::new(tat),
            fixed: Mutex::new(fixed),
        }
    }

    fn fixed(&self) -> FixedState {
        *self.fixed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Override {
    hash: u64,
    key: Box<str>,
    limit: NonZeroU64,
    policy: Policy,
}

impl<C: Clock> fmt::Debug for MemoryBackend<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys may be API keys: only counts are shown.
        f.debug_struct("MemoryBackend")
            .field("policy", &self.policy)
            .field("shards", &self.shards.len())
            .field("max_keys", &(self.per_shard * self.shards.len()))
            .field("keys", &self.len())
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// Builds a [`MemoryBackend`]: the policy, then optional bounds and clock.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct MemoryBuilder<C: Clock = FastClock> {
    policy: Policy,
    max_keys: usize,
    shards: Option<usize>,
    max_key_len: usize,
    clock: C,
}

impl MemoryBackend<FastClock> {
    /// A backend applying `policy` with the default bounds and the system clock.
    #[must_use]
    pub fn new(policy: Policy) -> Self {
        Self::builder(policy).build_unchecked()
    }

    /// A builder for a backend applying `policy`.
    pub fn builder(policy: Policy) -> MemoryBuilder<FastClock> {
        MemoryBuilder {
            policy,
            max_keys: DEFAULT_MAX_KEYS,
            shards: None,
            max_key_len: DEFAULT_MAX_KEY_LEN,
            clock: FastClock::new(),
        }
    }
}

impl<C: Clock> MemoryBuilder<C> {
    /// Uses `clock` for time (a [`FakeClock`](crate::FakeClock) in tests).
    pub fn clock<D: Clock>(self, clock: D) -> MemoryBuilder<D> {
        MemoryBuilder {
            policy: self.policy,
            max_keys: self.max_keys,
            shards: self.shards,
            max_key_len: self.max_key_len,
            clock,
        }
    }

    /// The most keys held at once (default 1,000,000), rounded up to a multiple of the shards.
    pub const fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// The number of shards, rounded up to a power of two (default: 16 per CPU, at most 1,024,
    /// and at least 1,024 keys per shard, so one shard below 2,048 keys). A full shard evicts on
    /// its own, so many small shards would evict a live key while the backend holds far fewer
    /// than `max_keys`.
    pub const fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// The longest key accepted, in bytes (default 512); longer keys get [`Error::KeyTooLong`].
    pub const fn max_key_len(mut self, max_key_len: usize) -> Self {
        self.max_key_len = max_key_len;
        self
    }

    /// The backend.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `max_keys`, `shards` or `max_key_len` is zero, or `shards`
    /// is above 2^20.
    pub fn build(self) -> Result<MemoryBackend<C>> {
        if self.max_keys == 0 {
            return Err(Error::InvalidConfig("max_keys must be at least 1"));
        }
        if self.max_key_len == 0 {
            return Err(Error::InvalidConfig("max_key_len must be at least 1"));
        }
        match self.shards {
            Some(0) => return Err(Error::InvalidConfig("shards must be at least 1")),
            Some(n) if n > 1 << 20 => {
                return Err(Error::InvalidConfig("shards must be at most 2^20"));
            }
            _ => {}
        }
        Ok(self.build_unchecked())
    }

    fn build_unchecked(self) -> MemoryBackend<C> {
        let shards = match self.shards {
            Some(shards) => shards.next_power_of_two(),
            None => {
                let cpus = std::thread::available_parallelism().map_or(1, usize::from);
                let shards = cpus
                    .saturating_mul(16)
                    .min(1_024)
                    .min(self.max_keys / MIN_SHARD_KEYS)
                    .max(1);
                // Rounded down, so that every shard keeps at least `MIN_SHARD_KEYS`.
                1 << shards.ilog2()
            }
        };
        let per_shard = self.max_keys.div_ceil(shards).max(1);
        MemoryBackend {
            policy: self.policy,
            shards: (0..shards)
                .map(|_| Padded(RwLock::new(Shard::default())))
                .collect(),
            mask: shards as u64 - 1,
            per_shard,
            max_key_len: self.max_key_len,
            hasher: RandomState::new(),
            clock: self.clock,
        }
    }
}

impl<C: Clock> MemoryBackend<C> {
    /// Decides one call of `cost` units for `key`, counting it when allowed.
    ///
    /// # Errors
    /// [`Error::KeyTooLong`] for a key longer than [`MemoryBuilder::max_key_len`].
    pub fn decide(&self, key: &str, cost: u64) -> Result<Decision> {
        self.decide_as(key, cost, None)
    }

    /// Like [`decide`](Self::decide), with `limit` in place of the policy's limit and of any
    /// override (see [`Policy::with_limit`]).
    ///
    /// # Errors
    /// [`Error::KeyTooLong`]; [`Error::InvalidPolicy`] when `limit` makes an invalid GCRA policy.
    pub fn decide_with_limit(&self, key: &str, cost: u64, limit: NonZeroU64) -> Result<Decision> {
        let kind = self.policy.with_limit(limit)?.kind();
        self.decide_as(key, cost, Some(kind))
    }

    /// Like [`decide`](Self::decide), under `policy` instead of the backend's and any override
    /// (see [`Backend::decide_with_policy`]).
    ///
    /// # Errors
    /// [`Error::KeyTooLong`]; [`Error::InvalidPolicy`] for a policy of another shape.
    pub fn decide_with_policy(&self, key: &str, cost: u64, policy: Policy) -> Result<Decision> {
        if !self.policy.same_shape(&policy) {
            return Err(Error::InvalidPolicy(
                "a per-call policy must have the backend's shape (GCRA, or the same window)",
            ));
        }
        self.decide_as(key, cost, Some(policy.kind()))
    }

    /// Gives back `cost` units that `granted` counted for `key` (see [`Backend::refund`]).
    ///
    /// # Errors
    /// [`Error::KeyTooLong`] for a key longer than [`MemoryBuilder::max_key_len`].
    pub fn refund(&self, key: &str, cost: u64, granted: &Decision) -> Result<()> {
        self.check_key(key)?;
        let back = granted.refundable(cost, self.clock.now_nanos());
        if back == 0 {
            return Ok(());
        }
        let hash = self.hasher.hash_one(key);
        let shard = read(&self.shards[self.index(hash)]);
        let Some(entry) = shard.entries.find(hash, |e| &*e.key == key) else {
            return Ok(());
        };
        match granted.detail {
            Detail::Fixed { start, .. } => {
                let mut state = entry.fixed.lock().unwrap_or_else(PoisonError::into_inner);
                if state.window_start == start {
                    state.used = state.used.saturating_sub(back);
                }
            }
            Detail::Gcra { .. } => {
                let _ = entry
                    .tat
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                        Some(tat.saturating_sub(back))
                    });
            }
            Detail::Unavailable { .. } => {}
        }
        Ok(())
    }

    /// Decides with `kind` when given, else with the key's override or the policy.
    fn decide_as(&self, key: &str, cost: u64, kind: Option<Kind>) -> Result<Decision> {
        self.check_key(key)?;
        let hash = self.hasher.hash_one(key);
        let now = self.clock.now_nanos();
        let index = self.index(hash);
        {
            let shard = read(&self.shards[index]);
            let kind = kind.unwrap_or_else(|| shard.policy_for(hash, key, self.policy).kind());
            if let Some(entry) = shard.entries.find(hash, |e| &*e.key == key) {
                return Ok(step(kind, now, entry, cost));
            }
            // A new key: decide on a fresh state, and keep it only if the call counted.
            let fresh = Entry::new(hash, Box::default(), 0, FixedState::default());
            let decision = step(kind, now, &fresh, cost);
            if decision.status != Status::Allowed || cost == 0 {
                return Ok(decision);
            }
        }
        let mut shard = write(&self.shards[index]);
        let kind = kind.unwrap_or_else(|| shard.policy_for(hash, key, self.policy).kind());
        // Another thread may have inserted the key in between: decide on whatever is there now.
        if let Some(entry) = shard.entries.find(hash, |e| &*e.key == key) {
            return Ok(step(kind, now, entry, cost));
        }
        let entry = Entry::new(hash, key.into(), 0, FixedState::default());
        let decision = step(kind, now, &entry, cost);
        shard.make_room(now, self.per_shard, kind);
        shard.entries.insert_unique(hash, entry, |e| e.hash);
        Ok(decision)
    }

    /// The key's current consumption.
    ///
    /// # Errors
    /// [`Error::KeyTooLong`] for a key longer than [`MemoryBuilder::max_key_len`].
    pub fn usage(&self, key: &str) -> Result<Usage> {
        let d = self.peek(key, None)?;
        Ok(Usage::from(&d))
    }

    /// The key's current consumption under `limit` (see [`decide_with_limit`](Self::decide_with_limit)).
    ///
    /// # Errors
    /// As [`decide_with_limit`](Self::decide_with_limit).
    pub fn usage_with_limit(&self, key: &str, limit: NonZeroU64) -> Result<Usage> {
        let kind = self.policy.with_limit(limit)?.kind();
        let d = self.peek(key, Some(kind))?;
        Ok(Usage::from(&d))
    }

    /// The decision a call of cost 0 would get, without changing anything.
    fn peek(&self, key: &str, kind: Option<Kind>) -> Result<Decision> {
        self.check_key(key)?;
        let hash = self.hasher.hash_one(key);
        let now = self.clock.now_nanos();
        let shard = read(&self.shards[self.index(hash)]);
        let kind = kind.unwrap_or_else(|| shard.policy_for(hash, key, self.policy).kind());
        // A cost of 0 changes nothing a reader could notice.
        Ok(match shard.entries.find(hash, |e| &*e.key == key) {
            Some(entry) => step(kind, now, entry, 0),
            None => step(
                kind,
                now,
                &Entry::new(hash, Box::default(), 0, FixedState::default()),
                0,
            ),
        })
    }

    /// Forgets the key's consumption.
    ///
    /// # Errors
    /// [`Error::KeyTooLong`] for a key longer than [`MemoryBuilder::max_key_len`].
    pub fn reset(&self, key: &str) -> Result<()> {
        self.check_key(key)?;
        let hash = self.hasher.hash_one(key);
        let mut shard = write(&self.shards[self.index(hash)]);
        if let Ok(entry) = shard.entries.find_entry(hash, |e| &*e.key == key) {
            entry.remove();
        }
        Ok(())
    }

    /// Sets (`Some`) or removes (`None`) the key's limit override (see [`Policy::with_limit`]).
    ///
    /// # Errors
    /// [`Error::KeyTooLong`] for a key longer than [`MemoryBuilder::max_key_len`];
    /// [`Error::InvalidPolicy`] when the limit makes an invalid GCRA policy.
    pub fn set_override(&self, key: &str, limit: Option<NonZeroU64>) -> Result<()> {
        self.check_key(key)?;
        let policy = limit.map(|l| self.policy.with_limit(l)).transpose()?;
        let hash = self.hasher.hash_one(key);
        let mut shard = write(&self.shards[self.index(hash)]);
        match shard.overrides.find_entry(hash, |o| &*o.key == key) {
            Ok(mut found) => match (limit, policy) {
                (Some(limit), Some(policy)) => {
                    let o = found.get_mut();
                    o.limit = limit;
                    o.policy = policy;
                }
                _ => {
                    found.remove();
                }
            },
            Err(_) => {
                if let (Some(limit), Some(policy)) = (limit, policy) {
                    let o = Override {
                        hash,
                        key: key.into(),
                        limit,
                        policy,
                    };
                    shard.overrides.insert_unique(hash, o, |o| o.hash);
                }
            }
        }
        Ok(())
    }

    /// The key's limit override, if one is set.
    ///
    /// # Errors
    /// [`Error::KeyTooLong`] for a key longer than [`MemoryBuilder::max_key_len`].
    pub fn limit_override(&self, key: &str) -> Result<Option<NonZeroU64>> {
        self.check_key(key)?;
        let hash = self.hasher.hash_one(key);
        let shard = read(&self.shards[self.index(hash)]);
        Ok(shard
            .overrides
            .find(hash, |o| &*o.key == key)
            .map(|o| o.limit))
    }

    /// The policy applied to keys without an override.
    #[must_use]
    pub const fn policy(&self) -> Policy {
        self.policy
    }

    /// The number of keys held (including expired ones not yet swept out).
    #[must_use]
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| read(s).entries.len()).sum()
    }

    /// Whether no key is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every key whose window or GCRA bucket has expired; returns how many were dropped.
    /// Full shards do this by themselves; call it to free memory early.
    pub fn purge_expired(&self) -> usize {
        let now = self.clock.now_nanos();
        let kind = self.policy.kind();
        self.shards
            .iter()
            .map(|s| {
                let mut shard = write(s);
                let before = shard.entries.len();
                shard.entries.retain(|e| !is_idle(kind, now, e));
                before - shard.entries.len()
            })
            .sum()
    }

    /// A copy of every live key's state and every override, to persist and later
    /// [`restore`](Self::restore) (for example across a restart, to keep a day's usage).
    ///
    /// The snapshot contains the keys themselves: use key identifiers rather than secrets as
    /// quota keys, or protect the stored snapshot like the secrets.
    pub fn snapshot(&self) -> Snapshot {
        let now = self.clock.now_nanos();
        let kind = self.policy.kind();
        let mut snapshot = Snapshot::default();
        for s in &*self.shards {
            let shard = read(s);
            for e in shard.entries.iter().filter(|e| !is_idle(kind, now, e)) {
                let state = match kind {
                    Kind::Fixed { .. } => {
                        let FixedState { window_start, used } = e.fixed();
                        SavedState::Fixed { window_start, used }
                    }
                    Kind::Gcra { .. } => SavedState::Gcra {
                        tat_nanos: e.tat.load(Ordering::Acquire),
                    },
                };
                snapshot.entries.push(SavedEntry {
                    key: e.key.to_string(),
                    state,
                });
            }
            for o in shard.overrides.iter() {
                snapshot.overrides.push(SavedOverride {
                    key: o.key.to_string(),
                    limit: o.limit,
                });
            }
        }
        snapshot
    }

    /// Loads a [`snapshot`](Self::snapshot): each saved key takes the saved state, and counting
    /// continues from there. Entries for another kind of policy, entries already expired and keys
    /// too long for this backend are skipped. Returns the number of keys restored.
    ///
    /// # Errors
    /// [`Error::InvalidPolicy`] when a saved override makes an invalid policy here (the entries
    /// before it are restored).
    pub fn restore(&self, snapshot: &Snapshot) -> Result<usize> {
        let now = self.clock.now_nanos();
        let kind = self.policy.kind();
        let mut restored = 0;
        for saved in &snapshot.entries {
            if saved.key.len() > self.max_key_len {
                continue;
            }
            let (tat, fixed) = match (kind, saved.state) {
                (Kind::Fixed { .. }, SavedState::Fixed { window_start, used }) => {
                    (0, FixedState { window_start, used })
                }
                (Kind::Gcra { .. }, SavedState::Gcra { tat_nanos }) => {
                    (tat_nanos, FixedState::default())
                }
                _ => continue,
            };
            let hash = self.hasher.hash_one(saved.key.as_str());
            let entry = Entry::new(hash, saved.key.as_str().into(), tat, fixed);
            if is_idle(kind, now, &entry) {
                continue;
            }
            let mut shard = write(&self.shards[self.index(hash)]);
            match shard.entries.find_entry(hash, |e| *e.key == *saved.key) {
                Ok(mut found) => *found.get_mut() = entry,
                Err(_) => {
                    shard.make_room(now, self.per_shard, kind);
                    shard.entries.insert_unique(hash, entry, |e| e.hash);
                }
            }
            restored += 1;
        }
        for o in &snapshot.overrides {
            if o.key.len() <= self.max_key_len {
                self.set_override(&o.key, Some(o.limit))?;
            }
        }
        Ok(restored)
    }

    fn check_key(&self, key: &str) -> Result<()> {
        if key.len() > self.max_key_len {
            return Err(Error::KeyTooLong {
                len: key.len(),
                max: self.max_key_len,
            });
        }
        Ok(())
    }

    #[inline]
    fn index(&self, hash: u64) -> usize {
        // Bits 40.. pick the shard; hashbrown uses the low bits and the top 7 within a shard.
        usize::try_from((hash >> 40) & self.mask).unwrap_or(0)
    }
}

// A panic while holding a lock cannot leave a shard or an entry inconsistent (every update is a
// single store or insert), so a poisoned lock is used as is.

#[inline]
fn read(shard: &Padded) -> RwLockReadGuard<'_, Shard> {
    shard.0.read().unwrap_or_else(PoisonError::into_inner)
}

#[inline]
fn write(shard: &Padded) -> RwLockWriteGuard<'_, Shard> {
    shard.0.write().unwrap_or_else(PoisonError::into_inner)
}

impl Shard {
    #[inline]
    fn policy_for(&self, hash: u64, key: &str, default: Policy) -> Policy {
        if self.overrides.is_empty() {
            return default;
        }
        self.overrides
            .find(hash, |o| &*o.key == key)
            .map_or(default, |o| o.policy)
    }

    /// Makes room for one more key when the shard holds `cap`.
    fn make_room(&mut self, now: u64, cap: usize, kind: Kind) {
        if self.entries.len() < cap {
            return;
        }
        if self.last_sweep == 0 || now.saturating_sub(self.last_sweep) >= SWEEP_INTERVAL_NANOS {
            self.last_sweep = now;
            self.entries.retain(|e| !is_idle(kind, now, e));
        }
        while self.entries.len() >= cap {
            let Some((hash, ptr)) = self
                .entries
                .iter()
                .take(EVICTION_SAMPLE)
                .min_by_key(|e| worth(kind, now, e))
                .map(|e| (e.hash, e.key.as_ptr()))
            else {
                return;
            };
            if let Ok(victim) = self.entries.find_entry(hash, |e| e.key.as_ptr() == ptr) {
                victim.remove();
            }
        }
    }
}

#[inline]
fn step(kind: Kind, now: u64, entry: &Entry, cost: u64) -> Decision {
    match kind {
        Kind::Fixed { window, limit } => {
            let mut state = entry.fixed.lock().unwrap_or_else(PoisonError::into_inner);
            fixed_step(window, limit.get(), now, &mut state, cost)
        }
        Kind::Gcra {
            emission,
            burst,
            window,
            ..
        } => {
            let gcra = Gcra {
                emission,
                burst: burst.get(),
                window,
            };
            let mut current = entry.tat.load(Ordering::Acquire);
            loop {
                let mut tat = current;
                let decision = gcra_step(gcra, now, &mut tat, cost);
                if tat == current {
                    return decision;
                }
                match entry.tat.compare_exchange_weak(
                    current,
                    tat,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return decision,
                    Err(actual) => current = actual,
                }
            }
        }
    }
}

/// Whether a key holds nothing worth keeping: its window is over, or its bucket is full again.
fn is_idle(kind: Kind, now: u64, e: &Entry) -> bool {
    match kind {
        Kind::Fixed { window, .. } => {
            let state = e.fixed();
            state.window_start < window.bounds(now / NANOS_PER_SEC).0 || state.used == 0
        }
        Kind::Gcra { .. } => e.tat.load(Ordering::Acquire) <= now,
    }
}

/// How much is lost by evicting a key: what it used in the window, or its GCRA debt.
fn worth(kind: Kind, now: u64, e: &Entry) -> u64 {
    if is_idle(kind, now, e) {
        return 0;
    }
    match kind {
        Kind::Fixed { .. } => e.fixed().used,
        Kind::Gcra { .. } => e.tat.load(Ordering::Acquire).saturating_sub(now),
    }
}

impl<C: Clock> Backend for MemoryBackend<C> {
    fn policy(&self) -> Policy {
        self.policy
    }

    fn decide(&self, key: &str, cost: u64) -> impl Future<Output = Result<Decision>> + Send {
        core::future::ready(Self::decide(self, key, cost))
    }

    fn decide_with_limit(
        &self,
        key: &str,
        cost: u64,
        limit: NonZeroU64,
    ) -> impl Future<Output = Result<Decision>> + Send {
        core::future::ready(Self::decide_with_limit(self, key, cost, limit))
    }

    fn decide_with_policy(
        &self,
        key: &str,
        cost: u64,
        policy: Policy,
    ) -> impl Future<Output = Result<Decision>> + Send {
        core::future::ready(Self::decide_with_policy(self, key, cost, policy))
    }

    fn refund(
        &self,
        key: &str,
        cost: u64,
        granted: &Decision,
    ) -> impl Future<Output = Result<()>> + Send {
        core::future::ready(Self::refund(self, key, cost, granted))
    }

    fn decide_now(
        &self,
        key: &str,
        cost: u64,
        limit: Option<NonZeroU64>,
    ) -> Option<Result<Decision>> {
        Some(match limit {
            Some(limit) => Self::decide_with_limit(self, key, cost, limit),
            None => Self::decide(self, key, cost),
        })
    }

    fn usage(&self, key: &str) -> impl Future<Output = Result<Usage>> + Send {
        core::future::ready(Self::usage(self, key))
    }

    fn usage_with_limit(
        &self,
        key: &str,
        limit: NonZeroU64,
    ) -> impl Future<Output = Result<Usage>> + Send {
        core::future::ready(Self::usage_with_limit(self, key, limit))
    }

    fn reset(&self, key: &str) -> impl Future<Output = Result<()>> + Send {
        core::future::ready(Self::reset(self, key))
    }

    fn set_override(
        &self,
        key: &str,
        limit: Option<NonZeroU64>,
    ) -> impl Future<Output = Result<()>> + Send {
        core::future::ready(Self::set_override(self, key, limit))
    }
}

/// The saved state of a [`MemoryBackend`]: every live key's counters and every override.
///
/// Serializable with serde (JSON, bincode, ...). Its `Debug` shows only counts, since keys may be
/// secrets.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    entries: Vec<SavedEntry>,
    overrides: Vec<SavedOverride>,
}

impl Snapshot {
    /// The number of keys with saved counters.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no counters are saved.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of saved per-key overrides.
    #[must_use]
    pub fn overrides(&self) -> usize {
        self.overrides.len()
    }

    /// The saved counters of a fixed-window policy: each key, the start of its window (Unix
    /// seconds on the backend's clock) and the calls used in that window. For moving the
    /// counts into a store of their own; GCRA states are not listed.
    pub fn fixed_windows(&self) -> impl Iterator<Item = (&str, u64, u64)> + '_ {
        self.entries.iter().filter_map(|e| match e.state {
            SavedState::Fixed { window_start, used } => Some((e.key.as_str(), window_start, used)),
            SavedState::Gcra { .. } => None,
        })
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("entries", &self.entries.len())
            .field("overrides", &self.overrides.len())
            .finish()
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SavedEntry {
    key: String,
    #[serde(flatten)]
    state: SavedState,
}

#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum SavedState {
    Fixed { window_start: u64, used: u64 },
    Gcra { tat_nanos: u64 },
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SavedOverride {
    key: String,
    limit: NonZeroU64,
}
