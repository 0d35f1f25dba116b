//! A shared replay cache with a local one for outages, which keeps refusing what it saw.

use core::fmt;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use crate::replay::{Insertion, MemoryReplayCache, ReplayCache, ReplayCacheFull, ReplayEntry};

/// Called with the reason each time the primary cache gives no answer.
type OutageHook = Arc<dyn Fn(&(dyn std::error::Error + 'static)) + Send + Sync>;

/// How many outage entries one successful call carries to the primary.
const UPLOAD_BATCH: usize = 32;

/// A primary replay cache shared by every instance (Redis), and this process's
/// [`MemoryReplayCache`] while the primary does not answer.
///
/// - While the primary fails, requests are checked and recorded locally (with the local
///   cache's per-key shares), so signed traffic goes on instead of failing closed.
/// - After the primary is back, every entry recorded during the outage is still refused here
///   until it expires (the local cache is asked first), and the entries are carried to the
///   primary, a few with each successful call, so that the other instances refuse them too.
/// - While the primary answers, what it accepts is also remembered here, best effort (within
///   the same capacity and per-key shares as the local cache, in a cache of its own, so that
///   it never takes the room an outage needs): a request this instance accepted before an
///   outage is still refused here during it.
/// - While the primary is away, each instance knows only its own entries: a request replayed
///   to another instance during the outage is accepted there once. Choose this over a plain
///   `RedisReplayCache` (feature `redis`, which fails closed) only where availability
///   matters more than that window.
///
/// It holds up to twice the local cache's capacity in entries: budget the memory for both.
pub struct FallbackReplayCache<P> {
    primary: P,
    local: MemoryReplayCache,
    /// What the primary accepted, to refuse it here during an outage.
    seen: MemoryReplayCache,
    /// Entries recorded locally during an outage, not yet stored in the primary.
    /// Each with the second before which the primary is not asked again (0: at once).
    pending: Mutex<VecDeque<(ReplayEntry, u64)>>,
    on_outage: Option<OutageHook>,
}

impl<P> fmt::Debug for FallbackReplayCache<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackReplayCache")
            .field("local", &self.local)
            .field("seen", &self.seen)
            .field(
                "pending",
                &self
                    .pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len(),
            )
            .finish_non_exhaustive()
    }
}

impl<P: ReplayCache> FallbackReplayCache<P> {
    /// `primary`, with `local` while it gives no answer.
    #[must_use]
    pub fn new(primary: P, local: MemoryReplayCache) -> Self {
        Self {
            primary,
            seen: MemoryReplayCache::new(local.capacity())
                .with_per_key_limit(local.per_key_limit()),
            local,
            pending: Mutex::new(VecDeque::new()),
            on_outage: None,
        }
    }

    /// Calls `hook` with the reason each time the primary gives no answer (to log at a bounded
    /// rate and count). It runs on the request's task, so it must be quick.
    #[must_use]
    pub fn on_outage(
        mut self,
        hook: impl Fn(&(dyn std::error::Error + 'static)) + Send + Sync + 'static,
    ) -> Self {
        self.on_outage = Some(Arc::new(hook));
        self
    }

    /// The primary cache.
    pub fn primary(&self) -> &P {
        &self.primary
    }

    /// The local cache.
    pub fn local(&self) -> &MemoryReplayCache {
        &self.local
    }

    /// How many entries recorded during an outage the primary does not hold yet.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(ReplayEntry, u64)>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Carries up to [`UPLOAD_BATCH`] outage entries to the primary; stops at its first error.
    /// An entry whose owner holds its whole share there waits until the primary says the
    /// share has room, and is then asked again: dropped, it would be refused here (the local
    /// cache holds it) but accepted by other instances; asked again at every call, it would
    /// cost every signed request a round trip until then.
    async fn upload(&self, now: u64) {
        let mut later = Vec::new();
        for _ in 0..UPLOAD_BATCH {
            let Some((entry, not_before)) = self.lock().pop_front() else {
                break;
            };
            if entry.expires_at <= now {
                continue;
            }
            if not_before > now {
                later.push((entry, not_before));
                continue;
            }
            // Fresh or seen, the entry is now held by the primary.
            let carried = ReplayEntry { now, ..entry };
            match self.primary.insert_once(carried).await {
                Ok(Insertion::OverBudget { retry_after_secs }) => {
                    later.push((entry, now.saturating_add(retry_after_secs)));
                }
                Ok(_) => {}
                Err(_) => {
                    self.lock().push_front((entry, not_before));
                    break;
                }
            }
        }
        // An entry released while its upload was under way stays released.
        later.retain(|(entry, _)| self.local.contains(&entry.key, now));
        self.lock().extend(later);
    }
}

impl<P: ReplayCache> ReplayCache for FallbackReplayCache<P> {
    type Error = ReplayCacheFull;

    async fn insert_once(&self, entry: ReplayEntry) -> Result<Insertion, Self::Error> {
        // What was accepted during an outage stays refused after it.
        if !self.local.is_empty() && self.local.contains(&entry.key, entry.now) {
            return Ok(Insertion::Seen);
        }
        match self.primary.insert_once(entry).await {
            Ok(insertion) => {
                if insertion == Insertion::Fresh {
                    // Best effort: a full share only leaves this entry to the primary.
                    let _ = self.seen.insert_now(entry);
                }
                if !self.lock().is_empty() {
                    self.upload(entry.now).await;
                }
                Ok(insertion)
            }
            Err(e) => {
                if let Some(hook) = &self.on_outage {
                    hook(&e);
                }
                if self.seen.contains(&entry.key, entry.now) {
                    return Ok(Insertion::Seen);
                }
                let insertion = self.local.insert_now(entry)?;
                if insertion == Insertion::Fresh {
                    let mut pending = self.lock();
                    if pending.len() >= self.local.capacity().get() {
                        pending.pop_front();
                    }
                    pending.push_back((entry, 0));
                }
                Ok(insertion)
            }
        }
    }

    fn release(&self, entry: &ReplayEntry) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let entry = *entry;
        async move {
            self.local.release_now(&entry);
            self.seen.release_now(&entry);
            self.lock().retain(|(pending, _)| pending.key != entry.key);
            // Best effort: an entry the primary keeps only delays a retry with the same nonce.
            let _ = self.primary.release(&entry).await;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use core::num::NonZeroUsize;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;
    use crate::replay::ReplayKey;

    /// A memory cache standing in for Redis, which can be taken down; counts what it is asked.
    struct Toggle {
        cache: MemoryReplayCache,
        down: AtomicBool,
        asked: AtomicUsize,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("connection refused")]
    struct Down;

    impl ReplayCache for Toggle {
        type Error = Down;

        async fn insert_once(&self, entry: ReplayEntry) -> Result<Insertion, Down> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err(Down);
            }
            self.cache.insert_now(entry).map_err(|_| Down)
        }

        async fn release(&self, entry: &ReplayEntry) -> Result<(), Down> {
            self.cache.release_now(entry);
            Ok(())
        }
    }

    fn entry(n: u64) -> ReplayEntry {
        ReplayEntry {
            key: ReplayKey::v1("svc", &format!("nonce-nonce-nonce-{n}")),
            owner: ReplayKey::owner("svc"),
            now: 1_000,
            expires_at: 1_301,
        }
    }

    #[tokio::test]
    async fn what_the_primary_accepted_is_refused_here_during_an_outage() {
        let room = NonZeroUsize::new(100).unwrap();
        let cache = FallbackReplayCache::new(
            Toggle {
                cache: MemoryReplayCache::new(room),
                down: AtomicBool::new(false),
                asked: AtomicUsize::new(0),
            },
            MemoryReplayCache::new(room),
        );
        assert_eq!(cache.insert_once(entry(1)).await.unwrap(), Insertion::Fresh);
        assert_eq!(cache.insert_once(entry(2)).await.unwrap(), Insertion::Fresh);
        cache.release(&entry(2)).await.unwrap();
        cache.primary().down.store(true, Ordering::SeqCst);
        // Accepted before the outage: still refused. Released before it: may be used again.
        assert_eq!(cache.insert_once(entry(1)).await.unwrap(), Insertion::Seen);
        assert_eq!(cache.insert_once(entry(2)).await.unwrap(), Insertion::Fresh);
        // The remembered entries take none of the room the outage has.
        assert_eq!(cache.local().len(), 1);
    }

    /// An entry accepted during an outage reaches the primary even when its owner's share
    /// there is full when the outage ends: it waits until the primary says there is room, is
    /// not asked again before, and goes then.
    #[tokio::test]
    async fn an_outage_entry_waits_for_room_in_the_primary_rather_than_being_dropped() {
        let room = NonZeroUsize::new(100).unwrap();
        let cache = FallbackReplayCache::new(
            Toggle {
                cache: MemoryReplayCache::new(room)
                    .with_per_key_limit(NonZeroUsize::new(2).unwrap()),
                down: AtomicBool::new(false),
                asked: AtomicUsize::new(0),
            },
            MemoryReplayCache::new(room),
        );
        // Two requests fill the key's share in the primary until 1,101.
        let early = |n: u64| ReplayEntry {
            expires_at: 1_101,
            ..entry(n)
        };
        // Requests of other keys, each of its own, whose calls carry the upload.
        let other = |n: u64, now: u64| ReplayEntry {
            key: ReplayKey::v1(&format!("other-{n}"), "nonce-nonce-nonce-0"),
            owner: ReplayKey::owner(&format!("other-{n}")),
            now,
            ..entry(n)
        };
        assert_eq!(cache.insert_once(early(1)).await.unwrap(), Insertion::Fresh);
        assert_eq!(cache.insert_once(early(2)).await.unwrap(), Insertion::Fresh);
        cache.primary().down.store(true, Ordering::SeqCst);
        assert_eq!(cache.insert_once(entry(3)).await.unwrap(), Insertion::Fresh);
        cache.primary().down.store(false, Ordering::SeqCst);
        // Back up, with the owner's share full there: the entry stays pending...
        assert_eq!(
            cache.insert_once(other(1, 1_000)).await.unwrap(),
            Insertion::Fresh
        );
        assert_eq!(cache.pending(), 1);
        assert!(!cache.primary().cache.contains(&entry(3).key, 1_000));
        // ... and the primary is not asked for it again before the share has room.
        let asked = cache.primary().asked.load(Ordering::SeqCst);
        assert_eq!(
            cache.insert_once(other(2, 1_050)).await.unwrap(),
            Insertion::Fresh
        );
        assert_eq!(cache.primary().asked.load(Ordering::SeqCst), asked + 1);
        // Room again: the next upload carries it, and every instance now refuses it.
        assert_eq!(
            cache.insert_once(other(3, 1_102)).await.unwrap(),
            Insertion::Fresh
        );
        assert_eq!(cache.pending(), 0);
        assert!(cache.primary().cache.contains(&entry(3).key, 1_102));
    }
}
