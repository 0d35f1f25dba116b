use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use crate::clock::{Clock, SystemClock, later};
use crate::env::keys_from_vars;
use crate::error::{Error, Result};
use crate::key::{KeyFingerprint, UpstreamKey};

/// How the pool chooses among the keys that are in rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Selection {
    /// Uniformly at random, independently on every pick (the default).
    #[default]
    Random,
    /// In turn, skipping keys that are out of rotation.
    RoundRobin,
}

/// What the upstream said about a key, reported back with [`KeyPool::report`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The upstream accepted the key (any answer other than those below, including 404).
    Accepted,
    /// The upstream refused the key (401 or 403): out of rotation until a reload or the
    /// rejected-key cooldown ends.
    Rejected,
    /// The upstream throttled the key (429): cooled down for `retry_after`, or the pool's
    /// default when the upstream sent none.
    Throttled {
        /// The upstream's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The upstream failed (5xx, timeout, connection error): not the key's fault, no penalty.
    UpstreamFailure,
}

impl Outcome {
    /// A short name for logs and metric labels: `accepted`, `rejected`, `throttled` or
    /// `upstream_failure`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Throttled { .. } => "throttled",
            Self::UpstreamFailure => "upstream_failure",
        }
    }

    /// Classifies an HTTP answer: `status` and the raw `Retry-After` header value, if any.
    ///
    /// `Retry-After` is read as delta-seconds; an HTTP-date or garbage counts as absent, so the
    /// pool's default cooldown applies, and more digits than delta-seconds hold count as
    /// `Duration::MAX`, which the pool caps.
    #[must_use]
    pub fn from_status(status: u16, retry_after: Option<&str>) -> Self {
        match status {
            401 | 403 => Self::Rejected,
            429 => Self::Throttled {
                // More digits than a delta-seconds holds: as long as the pool allows.
                retry_after: retry_after.and_then(|value| {
                    parse_retry_after(value)
                        .or_else(|| all_digits(value.trim()).then_some(Duration::MAX))
                }),
            },
            500..=599 => Self::UpstreamFailure,
            _ => Self::Accepted,
        }
    }
}

/// Parses a `Retry-After` header given in delta-seconds (`"120"`). Returns `None` otherwise.
#[must_use]
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if !all_digits(value) {
        return None;
    }
    // Leading zeros say nothing: `0030` is 30 s.
    let value = value.trim_start_matches('0');
    if value.len() > 10 {
        return None;
    }
    Some(Duration::from_secs(value.parse::<u64>().unwrap_or(0)))
}

/// Whether `value` is one or more ASCII digits.
fn all_digits(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())
}

/// The shortest rest of a throttled (429) key, whatever its `Retry-After` says.
const MIN_THROTTLED_COOLDOWN: Duration = Duration::from_secs(1);

/// Identifies a key of a pool in [`KeyPool::report`] without exposing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpstreamKeyId {
    generation: u64,
    index: usize,
}

/// A key handed out by [`KeyPool::pick`]: use it for one request, then report the outcome.
#[derive(Debug, Clone)]
pub struct PickedKey {
    id: UpstreamKeyId,
    fingerprint: KeyFingerprint,
    key: Arc<UpstreamKey>,
}

impl PickedKey {
    /// The id to report the outcome with.
    #[must_use]
    pub fn id(&self) -> UpstreamKeyId {
        self.id
    }

    /// The key's non-secret fingerprint, for logs.
    #[must_use]
    pub fn fingerprint(&self) -> KeyFingerprint {
        self.fingerprint
    }

    /// The key, for the outgoing request.
    #[must_use]
    pub fn key(&self) -> &UpstreamKey {
        &self.key
    }
}

/// Whether a key is in rotation, as seen in [`KeyStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyHealth {
    /// In rotation.
    Healthy,
    /// Throttled by the upstream; back after `remaining`.
    Throttled {
        /// Time left in the cooldown.
        remaining: Duration,
    },
    /// Refused by the upstream; back after `remaining` or at the next reload.
    Rejected {
        /// Time left in the cooldown.
        remaining: Duration,
    },
}

/// Per-key counters and health, identified by fingerprint only.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyStats {
    /// The key's fingerprint.
    pub fingerprint: KeyFingerprint,
    /// Whether the key is in rotation right now.
    pub health: KeyHealth,
    /// How many times the key was handed out.
    pub picks: u64,
    /// Reported [`Outcome::Accepted`].
    pub accepted: u64,
    /// Reported [`Outcome::Rejected`].
    pub rejected: u64,
    /// Reported [`Outcome::Throttled`].
    pub throttled: u64,
    /// Reported [`Outcome::UpstreamFailure`].
    pub upstream_failures: u64,
}

#[derive(Debug, Clone, Copy)]
enum Health {
    Healthy,
    Throttled(Instant),
    Rejected(Instant),
}

#[derive(Debug)]
struct Slot {
    key: Arc<UpstreamKey>,
    fingerprint: KeyFingerprint,
    health: Health,
    picks: u64,
    accepted: u64,
    rejected: u64,
    throttled: u64,
    upstream_failures: u64,
    /// Refusals (401/403) since the key was last accepted: each doubles the next rest.
    refused_in_a_row: u32,
}

impl Slot {
    fn new(key: UpstreamKey) -> Self {
        Self {
            fingerprint: key.fingerprint(),
            key: Arc::new(key),
            health: Health::Healthy,
            picks: 0,
            accepted: 0,
            rejected: 0,
            throttled: 0,
            upstream_failures: 0,
            refused_in_a_row: 0,
        }
    }

    /// Brings the key back into rotation if its cooldown is over; tells whether it is in rotation.
    fn refresh(&mut self, now: Instant) -> bool {
        match self.health {
            Health::Healthy => true,
            Health::Throttled(until) | Health::Rejected(until) if until <= now => {
                self.health = Health::Healthy;
                true
            }
            Health::Throttled(_) | Health::Rejected(_) => false,
        }
    }
}

struct Inner {
    slots: Vec<Slot>,
    generation: u64,
    cursor: usize,
    rng: SmallRng,
}

/// Builder for a [`KeyPool`]: selection, cooldowns, clock and random seed.
#[derive(Debug, Clone)]
#[must_use]
pub struct KeyPoolBuilder {
    selection: Selection,
    first_rejected_cooldown: Duration,
    rejected_cooldown: Duration,
    throttled_cooldown: Duration,
    max_throttled_cooldown: Duration,
    clock: Arc<dyn Clock>,
    seed: Option<u64>,
}

impl Default for KeyPoolBuilder {
    fn default() -> Self {
        Self {
            selection: Selection::Random,
            first_rejected_cooldown: KeyPool::DEFAULT_FIRST_REJECTED_COOLDOWN,
            rejected_cooldown: KeyPool::DEFAULT_REJECTED_COOLDOWN,
            throttled_cooldown: KeyPool::DEFAULT_THROTTLED_COOLDOWN,
            max_throttled_cooldown: KeyPool::DEFAULT_MAX_THROTTLED_COOLDOWN,
            clock: Arc::new(SystemClock),
            seed: None,
        }
    }
}

impl KeyPoolBuilder {
    /// How keys are chosen (default [`Selection::Random`]).
    pub fn selection(mut self, selection: Selection) -> Self {
        self.selection = selection;
        self
    }

    /// How long a key refused with 401/403 stays out of rotation the first time (default 60 s).
    /// Each refusal in a row doubles it, up to [`rejected_cooldown`](Self::rejected_cooldown);
    /// an accepted call starts over. A key that is really invalid is thus tried a dozen times
    /// on its first day and once a day after, while keys refused by something on the way (a
    /// proxy's 403, an upstream outage) are back within minutes.
    pub fn first_rejected_cooldown(mut self, cooldown: Duration) -> Self {
        self.first_rejected_cooldown = cooldown;
        self
    }

    /// The longest a key refused with 401/403 stays out of rotation, after refusals in a row
    /// (default 24 hours), unless the pool is reloaded first.
    pub fn rejected_cooldown(mut self, cooldown: Duration) -> Self {
        self.rejected_cooldown = cooldown;
        self
    }

    /// How long a key throttled with 429 rests when the upstream sent no `Retry-After` (default 60 s).
    pub fn throttled_cooldown(mut self, cooldown: Duration) -> Self {
        self.throttled_cooldown = cooldown;
        self
    }

    /// The longest `Retry-After` the pool honours (default 1 hour); longer values are cut to it,
    /// so an upstream cannot bench a key for days.
    pub fn max_throttled_cooldown(mut self, cooldown: Duration) -> Self {
        self.max_throttled_cooldown = cooldown;
        self
    }

    /// The clock for cooldowns (default [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Seeds the random selection, for reproducible tests. By default the seed comes from the
    /// operating system.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Builds a pool from these keys. Duplicates are dropped; no key at all is
    /// [`Error::NoKeysConfigured`].
    pub fn build(self, keys: impl IntoIterator<Item = UpstreamKey>) -> Result<KeyPool> {
        let slots = dedup(keys).into_iter().map(Slot::new).collect::<Vec<_>>();
        if slots.is_empty() {
            return Err(Error::NoKeysConfigured);
        }
        let rng = match self.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => rand::make_rng(),
        };
        Ok(KeyPool {
            inner: Mutex::new(Inner {
                slots,
                generation: 0,
                cursor: 0,
                rng,
            }),
            config: self,
        })
    }

    /// Builds a pool from the process environment; see [`keys_from_vars`] for the variables read.
    pub fn build_from_env(self) -> Result<KeyPool> {
        self.build_from_vars(std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        }))
    }

    /// Builds a pool from `(name, value)` pairs read like the environment (see [`keys_from_vars`]),
    /// so tests and other configuration sources need not touch the process environment.
    pub fn build_from_vars<I, N, V>(self, vars: I) -> Result<KeyPool>
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<str>,
    {
        self.build(keys_from_vars(vars))
    }
}

/// A pool of upstream API keys that hands out healthy keys and benches the ones the upstream
/// refuses or throttles.
///
/// It makes no HTTP calls itself: pick a key, make the call with any client, report the
/// [`Outcome`]. It is `Send + Sync`; share it in an [`Arc`].
pub struct KeyPool {
    inner: Mutex<Inner>,
    config: KeyPoolBuilder,
}

impl fmt::Debug for KeyPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPool")
            .field("keys", &self.len())
            .field("selection", &self.config.selection)
            .field("rejected_cooldown", &self.config.rejected_cooldown)
            .field("throttled_cooldown", &self.config.throttled_cooldown)
            .finish_non_exhaustive()
    }
}

impl KeyPool {
    /// Default time a rejected (401/403) key stays out of rotation: 24 hours.
    pub const DEFAULT_REJECTED_COOLDOWN: Duration = Duration::from_secs(24 * 60 * 60);
    /// Default rest of a key after its first refusal (401/403) in a row: 60 seconds.
    pub const DEFAULT_FIRST_REJECTED_COOLDOWN: Duration = Duration::from_secs(60);
    /// Default cooldown of a throttled (429) key without `Retry-After`: 60 seconds.
    pub const DEFAULT_THROTTLED_COOLDOWN: Duration = Duration::from_secs(60);
    /// Default cap on an upstream's `Retry-After`: 1 hour.
    pub const DEFAULT_MAX_THROTTLED_COOLDOWN: Duration = Duration::from_secs(60 * 60);

    /// A builder with the defaults: random selection, the system clock, 24 h / 60 s cooldowns.
    pub fn builder() -> KeyPoolBuilder {
        KeyPoolBuilder::default()
    }

    /// A pool of these keys with the default settings.
    ///
    /// # Errors
    /// [`Error::NoKeysConfigured`] when no key is given.
    pub fn new(keys: impl IntoIterator<Item = UpstreamKey>) -> Result<Self> {
        Self::builder().build(keys)
    }

    /// A pool of the keys in the process environment with the default settings
    /// (see [`keys_from_vars`] for the variables read).
    ///
    /// # Errors
    /// [`Error::NoKeysConfigured`] when none is set.
    pub fn from_env() -> Result<Self> {
        Self::builder().build_from_env()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent even if a holder panicked: every update is a single store.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The number of distinct keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    /// Always `false`: a pool holds at least one key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lock().slots.is_empty()
    }

    /// Hands out a key that is in rotation.
    ///
    /// # Errors
    /// [`Error::AllKeysUnavailable`] with the time until the first key comes back.
    pub fn pick(&self) -> Result<PickedKey> {
        self.pick_excluding(&[])
    }

    /// Hands out a key in rotation other than `exclude` (e.g. the keys a request already tried).
    ///
    /// # Errors
    /// [`Error::AllKeysUnavailable`] when no key outside `exclude` is in rotation; `retry_after`
    /// is the time until the first cooling key comes back (zero when none is cooling, i.e. every
    /// key in rotation was excluded).
    pub fn pick_excluding(&self, exclude: &[UpstreamKeyId]) -> Result<PickedKey> {
        let now = self.config.clock.now();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let generation = inner.generation;
        let excluded = |index: usize| exclude.contains(&UpstreamKeyId { generation, index });
        let len = inner.slots.len();
        let chosen = match self.config.selection {
            Selection::Random => {
                // Two passes instead of a candidate list: no allocation per pick.
                let count = (0..len)
                    .filter(|&i| inner.slots[i].refresh(now) && !excluded(i))
                    .count();
                if count == 0 {
                    None
                } else {
                    let nth = inner.rng.random_range(0..count);
                    (0..len)
                        .filter(|&i| inner.slots[i].refresh(now) && !excluded(i))
                        .nth(nth)
                }
            }
            Selection::RoundRobin => {
                let start = inner.cursor;
                let found = (0..len)
                    .map(|step| (start + step) % len)
                    .find(|&i| inner.slots[i].refresh(now) && !excluded(i));
                if let Some(i) = found {
                    inner.cursor = (i + 1) % len;
                }
                found
            }
        };
        let Some(index) = chosen else {
            return Err(unavailable(&inner.slots, now));
        };
        let slot = &mut inner.slots[index];
        slot.picks += 1;
        Ok(PickedKey {
            id: UpstreamKeyId { generation, index },
            fingerprint: slot.fingerprint,
            key: Arc::clone(&slot.key),
        })
    }

    /// Records what the upstream said about a picked key. Reports for keys of an earlier
    /// generation (before a [`reload`](Self::reload)) are ignored.
    pub fn report(&self, id: UpstreamKeyId, outcome: Outcome) {
        let now = self.config.clock.now();
        let mut inner = self.lock();
        if id.generation != inner.generation {
            return;
        }
        let Some(slot) = inner.slots.get_mut(id.index) else {
            return;
        };
        match outcome {
            Outcome::Accepted => {
                slot.accepted += 1;
                slot.refused_in_a_row = 0;
            }
            Outcome::Rejected => {
                slot.rejected += 1;
                // The refusals of calls made before the key was benched (concurrent requests)
                // are one refusal, not several in a row: only one after the rest counts again.
                if matches!(slot.health, Health::Rejected(until) if until > now) {
                    return;
                }
                slot.refused_in_a_row = slot.refused_in_a_row.saturating_add(1);
                // A first refusal may be the way to the upstream's (a proxy's 403), not the
                // key's: one request that tried every key must not bench them all for a day.
                let rest = self
                    .config
                    .first_rejected_cooldown
                    .saturating_mul(1 << (slot.refused_in_a_row - 1).min(20))
                    .min(self.config.rejected_cooldown);
                slot.health = Health::Rejected(later(now, rest));
            }
            Outcome::Throttled { retry_after } => {
                slot.throttled += 1;
                // At least a second: `Retry-After: 0` would leave the key in rotation, to be
                // throttled again by every request.
                let rest = retry_after
                    .unwrap_or(self.config.throttled_cooldown)
                    .max(MIN_THROTTLED_COOLDOWN)
                    .min(self.config.max_throttled_cooldown);
                let until = later(now, rest);
                // A throttle never shortens a rejection, nor an earlier, longer throttle.
                slot.health = match slot.health {
                    Health::Rejected(r) if r > until => Health::Rejected(r),
                    Health::Throttled(t) if t > until => Health::Throttled(t),
                    _ => Health::Throttled(until),
                };
            }
            Outcome::UpstreamFailure => slot.upstream_failures += 1,
        }
    }

    /// Replaces the keys: all new keys start in rotation (this is how a rejected key comes back
    /// early). Counters of keys present before and after are kept. Outstanding [`UpstreamKeyId`]s become stale.
    ///
    /// # Errors
    /// [`Error::NoKeysConfigured`] when no key is given; the pool is then left unchanged.
    pub fn reload(&self, keys: impl IntoIterator<Item = UpstreamKey>) -> Result<()> {
        let keys = dedup(keys);
        if keys.is_empty() {
            return Err(Error::NoKeysConfigured);
        }
        let mut inner = self.lock();
        let slots = keys
            .into_iter()
            .map(|key| {
                let mut slot = Slot::new(key);
                if let Some(old) = inner.slots.iter().find(|old| old.key.ct_eq(&slot.key)) {
                    slot.picks = old.picks;
                    slot.accepted = old.accepted;
                    slot.rejected = old.rejected;
                    slot.throttled = old.throttled;
                    slot.upstream_failures = old.upstream_failures;
                }
                slot
            })
            .collect();
        inner.slots = slots;
        inner.generation += 1;
        inner.cursor = 0;
        Ok(())
    }

    /// Health and counters of every key, in pool order, identified by fingerprint.
    #[must_use]
    pub fn stats(&self) -> Vec<KeyStats> {
        let now = self.config.clock.now();
        let mut inner = self.lock();
        inner
            .slots
            .iter_mut()
            .map(|slot| {
                slot.refresh(now);
                KeyStats {
                    fingerprint: slot.fingerprint,
                    health: match slot.health {
                        Health::Healthy => KeyHealth::Healthy,
                        Health::Throttled(until) => KeyHealth::Throttled {
                            remaining: until - now,
                        },
                        Health::Rejected(until) => KeyHealth::Rejected {
                            remaining: until - now,
                        },
                    },
                    picks: slot.picks,
                    accepted: slot.accepted,
                    rejected: slot.rejected,
                    throttled: slot.throttled,
                    upstream_failures: slot.upstream_failures,
                }
            })
            .collect()
    }
}

fn unavailable(slots: &[Slot], now: Instant) -> Error {
    let mut rejected = 0;
    let mut throttled = 0;
    let mut earliest: Option<Instant> = None;
    for slot in slots {
        let until = match slot.health {
            Health::Healthy => continue,
            Health::Rejected(until) => {
                rejected += 1;
                until
            }
            Health::Throttled(until) => {
                throttled += 1;
                until
            }
        };
        earliest = Some(earliest.map_or(until, |e| e.min(until)));
    }
    Error::AllKeysUnavailable {
        retry_after: earliest.map_or(Duration::ZERO, |e| e.saturating_duration_since(now)),
        rejected,
        throttled,
    }
}

fn dedup(keys: impl IntoIterator<Item = UpstreamKey>) -> Vec<UpstreamKey> {
    let mut out: Vec<UpstreamKey> = Vec::new();
    for key in keys {
        if !out.iter().any(|k| k.ct_eq(&key)) {
            out.push(key);
        }
    }
    out
}
