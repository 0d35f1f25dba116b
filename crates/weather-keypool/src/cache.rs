use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::clock::{Clock, SystemClock, later};
use crate::error::Result;
use crate::weather::{Location, Units, Weather};

type Shared = Option<Result<Arc<Weather>>>;

enum Entry {
    Ready {
        weather: Arc<Weather>,
        expires: Instant,
    },
    Pending(watch::Receiver<Shared>),
}

/// A bounded, TTL response cache for weather answers, keyed by normalized place and units, with
/// single-flight misses: concurrent requests for the same missing place share one upstream call
/// and its result (success or error; errors are not cached).
///
/// `Send + Sync` and runtime-agnostic (a [`std::sync::Mutex`] and a `tokio::sync::watch`
/// channel): share one in an [`Arc`] between all worker threads.
pub struct WeatherCache {
    ttl: Duration,
    capacity: NonZeroUsize,
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<(String, Units), Entry>>,
}

impl fmt::Debug for WeatherCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeatherCache")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .field("entries", &self.lock().len())
            .finish_non_exhaustive()
    }
}

impl Default for WeatherCache {
    fn default() -> Self {
        Self::new(Self::DEFAULT_TTL, Self::DEFAULT_CAPACITY)
    }
}

impl WeatherCache {
    /// Default time an answer is served from the cache: 10 minutes (OpenWeather's advice; it
    /// updates its data no more often).
    pub const DEFAULT_TTL: Duration = Duration::from_secs(10 * 60);
    /// Default number of places kept: 1024.
    pub const DEFAULT_CAPACITY: NonZeroUsize = NonZeroUsize::new(1024).expect("non-zero");

    /// A cache keeping up to `capacity` answers for `ttl` each, on the system clock.
    #[must_use]
    pub fn new(ttl: Duration, capacity: NonZeroUsize) -> Self {
        Self::with_clock(ttl, capacity, Arc::new(SystemClock))
    }

    /// Like [`new`](Self::new), with an injected clock.
    #[must_use]
    pub fn with_clock(ttl: Duration, capacity: NonZeroUsize, clock: Arc<dyn Clock>) -> Self {
        Self {
            ttl,
            capacity,
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(String, Units), Entry>> {
        // Every update is a single insert or remove, so a poisoned map is still consistent.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many places are cached or being fetched.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is cached or being fetched.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Drops every cached answer (fetches in flight are kept).
    pub fn clear(&self) {
        self.lock()
            .retain(|_, entry| matches!(entry, Entry::Pending(_)));
    }

    /// The cached answer for `location` and `units` if fresh; otherwise runs `fetch` once, however
    /// many callers (on any thread) ask for the same place at the same time, and caches a success.
    ///
    /// # Errors
    /// Whatever `fetch` returned, shared by every caller that waited for it.
    pub async fn get_or_fetch<F, Fut>(
        &self,
        location: &Location,
        units: Units,
        fetch: F,
    ) -> Result<Arc<Weather>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Weather>>,
    {
        let key = (location.cache_key(), units);
        let mut fetch = Some(fetch);
        loop {
            let role = {
                let now = self.clock.now();
                let mut entries = self.lock();
                match entries.get(&key) {
                    Some(Entry::Ready { weather, expires }) if *expires > now => {
                        return Ok(Arc::clone(weather));
                    }
                    Some(Entry::Pending(rx)) => Err(rx.clone()),
                    _ => {
                        let (tx, rx) = watch::channel(None);
                        self.make_room(&mut entries, &key, now);
                        entries.insert(key.clone(), Entry::Pending(rx.clone()));
                        Ok((tx, rx))
                    }
                }
            };
            match role {
                Err(mut rx) => {
                    if let Ok(shared) = rx.wait_for(Option::is_some).await {
                        if let Some(result) = shared.as_ref() {
                            return result.clone();
                        }
                    }
                    // The fetching caller went away (its future was dropped): try again.
                }
                Ok((tx, rx)) => {
                    let Some(fetch) = fetch.take() else {
                        // Unreachable: a caller leads at most once, as it returns right after.
                        continue;
                    };
                    let guard = PendingGuard {
                        cache: self,
                        key: &key,
                        rx,
                        armed: true,
                    };
                    let result = fetch().await.map(Arc::new);
                    guard.finish(&result);
                    tx.send_replace(Some(result.clone()));
                    return result;
                }
            }
        }
    }

    /// Makes room for one more entry: drops expired answers, then the answer expiring first.
    /// Fetches in flight are never dropped, so the map can exceed `capacity` by at most the
    /// number of concurrent fetches.
    fn make_room(
        &self,
        entries: &mut HashMap<(String, Units), Entry>,
        key: &(String, Units),
        now: Instant,
    ) {
        if entries.contains_key(key) || entries.len() < self.capacity.get() {
            return;
        }
        entries.retain(|_, e| !matches!(e, Entry::Ready { expires, .. } if *expires <= now));
        if entries.len() < self.capacity.get() {
            return;
        }
        let oldest = entries
            .iter()
            .filter_map(|(k, e)| match e {
                Entry::Ready { expires, .. } => Some((k, *expires)),
                Entry::Pending(_) => None,
            })
            .min_by_key(|(_, expires)| *expires)
            .map(|(k, _)| k.clone());
        if let Some(oldest) = oldest {
            entries.remove(&oldest);
        }
    }
}

/// Removes the leader's pending entry if its fetch is dropped before finishing, so waiters and
/// later callers do not wait on a fetch that will never complete.
struct PendingGuard<'a> {
    cache: &'a WeatherCache,
    key: &'a (String, Units),
    rx: watch::Receiver<Shared>,
    armed: bool,
}

impl PendingGuard<'_> {
    fn finish(mut self, result: &Result<Arc<Weather>>) {
        self.armed = false;
        let mut entries = self.cache.lock();
        if !self.is_ours(&entries) {
            return;
        }
        match result {
            Ok(weather) => {
                entries.insert(
                    self.key.clone(),
                    Entry::Ready {
                        weather: Arc::clone(weather),
                        expires: later(self.cache.clock.now(), self.cache.ttl),
                    },
                );
            }
            Err(_) => {
                entries.remove(self.key);
            }
        }
    }

    fn is_ours(&self, entries: &HashMap<(String, Units), Entry>) -> bool {
        matches!(entries.get(self.key), Some(Entry::Pending(rx)) if rx.same_channel(&self.rx))
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut entries = self.cache.lock();
            if self.is_ours(&entries) {
                entries.remove(self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::clock::FakeClock;
    use crate::error::Error;
    use crate::weather::{Units, parse_current};

    fn sample() -> Weather {
        parse_current(include_bytes!("../tests/data/london.json"), Units::Metric).unwrap()
    }

    fn city(name: &str) -> Location {
        Location::city(name).unwrap()
    }

    /// A time to live of `Duration::MAX` keeps an answer for good, without overflowing the
    /// clock (which left the place pending forever, its callers spinning).
    #[tokio::test]
    async fn a_time_to_live_of_duration_max_keeps_the_answer() {
        let clock = Arc::new(FakeClock::new());
        let cache = WeatherCache::with_clock(Duration::MAX, NonZeroUsize::new(2).unwrap(), clock);
        let calls = Cell::new(0);
        let fetch = || async {
            calls.set(calls.get() + 1);
            Ok(sample())
        };
        for _ in 0..2 {
            cache
                .get_or_fetch(&city("x"), Units::Metric, fetch)
                .await
                .unwrap();
        }
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test]
    async fn the_cache_is_bounded_and_evicts_the_answer_expiring_first() {
        let clock = Arc::new(FakeClock::new());
        let cache = WeatherCache::with_clock(
            Duration::from_secs(600),
            NonZeroUsize::new(2).unwrap(),
            clock.clone(),
        );
        let calls = Cell::new(0);
        let fetch = || async {
            calls.set(calls.get() + 1);
            Ok(sample())
        };
        for name in ["a", "b"] {
            cache
                .get_or_fetch(&city(name), Units::Metric, fetch)
                .await
                .unwrap();
            clock.advance(Duration::from_secs(1));
        }
        cache
            .get_or_fetch(&city("c"), Units::Metric, fetch)
            .await
            .unwrap();
        assert_eq!(cache.len(), 2);
        assert_eq!(calls.get(), 3);
        // "b" and "c" are cached; "a", expiring first, was evicted.
        cache
            .get_or_fetch(&city("b"), Units::Metric, fetch)
            .await
            .unwrap();
        cache
            .get_or_fetch(&city("c"), Units::Metric, fetch)
            .await
            .unwrap();
        assert_eq!(calls.get(), 3);
        cache
            .get_or_fetch(&city("a"), Units::Metric, fetch)
            .await
            .unwrap();
        assert_eq!(calls.get(), 4);
        assert_eq!(cache.len(), 2);
        cache.clear();
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn waiters_share_the_leaders_error() {
        let cache = WeatherCache::default();
        let x = city("x");
        let calls = Cell::new(0);
        let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
        let leader = cache.get_or_fetch(&x, Units::Metric, || async {
            calls.set(calls.get() + 1);
            let _ = gate_rx.await;
            Err(Error::PlaceNotFound)
        });
        let follower = cache.get_or_fetch(&x, Units::Metric, || async {
            calls.set(calls.get() + 1);
            Ok(sample())
        });
        let opener = async {
            gate_tx.send(()).unwrap();
        };
        let (a, b, ()) = tokio::join!(leader, follower, opener);
        assert_eq!(a.unwrap_err(), Error::PlaceNotFound);
        assert_eq!(b.unwrap_err(), Error::PlaceNotFound);
        assert_eq!(calls.get(), 1);
        // Errors are not cached.
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn a_dropped_leader_hands_over_to_a_waiter() {
        let cache = WeatherCache::default();
        let x = city("x");
        let mut leader = Box::pin(cache.get_or_fetch(&x, Units::Metric, || {
            std::future::pending::<Result<Weather>>()
        }));
        // Poll the leader once so it registers the fetch, then abandon it.
        assert!(futures_poll_once(leader.as_mut()).await.is_none());
        let follower = cache.get_or_fetch(&x, Units::Metric, || async { Ok(sample()) });
        let mut follower = Box::pin(follower);
        assert!(futures_poll_once(follower.as_mut()).await.is_none());
        drop(leader);
        assert_eq!(follower.await.unwrap().place, "London");
        assert_eq!(cache.len(), 1);
    }

    /// Polls a future once; `Some` if it finished.
    async fn futures_poll_once<F: Future + Unpin>(mut fut: F) -> Option<F::Output> {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut fut).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
