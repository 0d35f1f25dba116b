//! Password hashing with argon2id, off the async workers and with bounded concurrency.
//!
//! Each hash takes 19 MiB and tens of milliseconds of CPU (OWASP parameters: m = 19 MiB,
//! t = 2, p = 1). Hashes run on `max_concurrent` threads of their own, never on the async
//! workers, so a login flood queues instead of exhausting memory; a caller that waits longer
//! than `queue_timeout` gets `Busy`.
//!
//! The threads are dedicated rather than borrowed from the shared blocking pool on purpose: the
//! allocator keeps freed argon2 memory in the arena of the thread that used it, so hashes spread
//! over the blocking pool's many threads kept 1.4 GB resident after a 15-second login flood
//! (release build, 4 hashes at once). On threads of their own the resident memory is bounded by
//! their number: about 110 MB per thread after the same flood (the allocator retains more
//! than the 19 MiB a hash uses). Logins for unknown users verify against a dummy hash, so the
//! time taken does not tell whether a username exists.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

/// Counts a caller waiting for a hashing slot, until dropped (also when the wait is cancelled).
struct QueueSlot<'a>(&'a AtomicUsize);

impl<'a> QueueSlot<'a> {
    fn enter(queued: &'a AtomicUsize) -> Self {
        queued.fetch_add(1, Ordering::Relaxed);
        Self(queued)
    }
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// `size` threads that run hashing jobs, one at a time each. They end when the last clone of
/// the pool is dropped.
#[derive(Clone)]
struct HashPool {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl std::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashPool")
    }
}

impl HashPool {
    fn new(size: usize) -> Result<Self, PasswordError> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for i in 0..size {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        // A job that panicked cannot leave the receiver inconsistent.
                        let next = queue
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .recv();
                        let Ok(job) = next else { return };
                        job();
                    }
                })
                .map_err(|_| PasswordError::Pool)?;
        }
        Ok(Self { jobs })
    }

    fn submit(&self, job: Job) -> Result<(), PasswordError> {
        self.jobs.send(job).map_err(|_| PasswordError::Pool)
    }
}

/// A password as received: zeroized on drop, never printed.
pub type Password = Zeroizing<String>;

/// Why hashing or verifying did not give an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// Too many hashes are queued; try again shortly.
    #[error("password hashing is busy")]
    Busy,
    /// argon2 failed (a malformed stored hash or an internal error).
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The hashing threads could not be started or are gone.
    #[error("password hashing threads unavailable")]
    Pool,
}

/// Hashes and verifies passwords on a bounded blocking pool.
#[derive(Debug, Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    max_concurrent: usize,
    queued: Arc<AtomicUsize>,
    pool: HashPool,
    queue_timeout: Duration,
    dummy_hash: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id recommendation; these are also argon2's defaults, spelled out so that
    // a change of defaults upstream cannot weaken stored hashes silently.
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &[u8]) -> Result<String, PasswordError> {
    argon2()
        .hash_password(password)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

fn verify_blocking(password: &[u8], stored: &str) -> Result<bool, PasswordError> {
    match argon2().verify_password(password, stored) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(PasswordError::Hash(e.to_string())),
    }
}

impl Passwords {
    /// A hasher allowing `max_concurrent` hashes at once (at least 1). Computes the dummy
    /// hash for unknown users, so call it off the async workers (start-up does).
    pub fn new(max_concurrent: usize, queue_timeout: Duration) -> Result<Self, PasswordError> {
        let mut random = Zeroizing::new([0u8; 32]);
        rand::fill(&mut random[..]);
        let dummy_hash = hash_blocking(&random[..])?;
        let max_concurrent = max_concurrent.max(1);
        Ok(Self {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            queued: Arc::new(AtomicUsize::new(0)),
            pool: HashPool::new(max_concurrent)?,
            queue_timeout,
            dummy_hash: dummy_hash.into(),
        })
    }

    /// How many more hashes may start right now (for metrics).
    #[must_use]
    pub fn available_permits(&self) -> usize {
        self.permits.available_permits()
    }

    /// How many hashes are running now.
    #[must_use]
    pub fn running(&self) -> usize {
        self.max_concurrent
            .saturating_sub(self.permits.available_permits())
    }

    /// How many hashes wait for a slot now.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let waiting = QueueSlot::enter(&self.queued);
        let permit = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Pool)?;
        drop(waiting);
        let (done, answer) = tokio::sync::oneshot::channel();
        self.pool.submit(Box::new(move || {
            let result = job();
            drop(permit);
            // The caller may have gone (a client that hung up): then nobody needs the answer.
            let _ = done.send(result);
        }))?;
        answer.await.map_err(|_| PasswordError::Pool)?
    }

    /// The argon2id PHC string of `password`, with a fresh random salt.
    pub async fn hash(&self, password: Password) -> Result<String, PasswordError> {
        self.run(move || hash_blocking(password.as_bytes())).await
    }

    /// Whether `password` matches `stored`. With `stored = None` (unknown user) it verifies
    /// against the dummy hash and answers `false`, taking the same time as a real check.
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        let known = stored.is_some();
        let target = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let matched = self
            .run(move || verify_blocking(password.as_bytes(), &target))
            .await?;
        Ok(known && matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Zeroizing::new(s.to_owned())
    }

    #[actix_web::test]
    async fn hashes_verify_only_the_right_password() {
        let passwords = Passwords::new(2, Duration::from_secs(5)).unwrap();
        let hash = passwords.hash(pw("correct horse battery")).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            passwords
                .verify(pw("correct horse battery"), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!passwords.verify(pw("wrong"), Some(hash)).await.unwrap());
    }

    #[actix_web::test]
    async fn unknown_users_never_verify_even_with_the_dummy_password() {
        let passwords = Passwords::new(1, Duration::from_secs(5)).unwrap();
        assert!(!passwords.verify(pw(""), None).await.unwrap());
    }

    #[actix_web::test]
    async fn hashes_run_on_their_own_threads_never_more_than_the_limit_at_once() {
        let passwords = Passwords::new(2, Duration::from_secs(30)).unwrap();
        let threads = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs = (0..8).map(|_| {
            let (threads, running, most) = (threads.clone(), running.clone(), most.clone());
            passwords.run(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let name = std::thread::current().name().unwrap_or_default().to_owned();
                threads.lock().unwrap().insert(name);
                let hashed = hash_blocking(b"a password");
                running.fetch_sub(1, Ordering::SeqCst);
                hashed
            })
        });
        for result in futures_util::future::join_all(jobs).await {
            assert!(result.unwrap().starts_with("$argon2id$"));
        }
        let threads = threads.lock().unwrap().clone();
        assert!(
            threads.iter().all(|t| t.starts_with("argon2-")) && threads.len() <= 2,
            "{threads:?}"
        );
        assert!(most.load(Ordering::SeqCst) <= 2);
    }

    #[actix_web::test]
    async fn a_full_queue_answers_busy() {
        let passwords = Passwords::new(1, Duration::from_millis(10)).unwrap();
        let held = passwords.permits.clone().acquire_owned().await.unwrap();
        assert!(matches!(
            passwords.hash(pw("x")).await,
            Err(PasswordError::Busy)
        ));
        drop(held);
        assert!(passwords.hash(pw("x")).await.is_ok());
    }
}
