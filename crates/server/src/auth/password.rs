//! Password hashing with argon2id, off the async workers and with bounded concurrency.
//!
//! Each hash takes 19 MiB and tens of milliseconds of CPU (OWASP parameters: m = 19 MiB,
//! t = 2, p = 1). Hashes run on `max_concurrent` threads of their own ([`crate::work`]), never on the async
//! workers, so a login flood queues instead of exhausting memory; a caller that waits longer
//! than `queue_timeout` gets `Busy`.
//!
//! The threads are dedicated rather than borrowed from the shared blocking pool on purpose, and
//! each keeps one 19 MiB working memory that every hash it runs reuses. With a fresh allocation
//! per hash (what argon2's `hash_password` does), the allocator kept freed argon2 memory in the
//! arena of each thread that used it: hashes spread over the blocking pool's many threads kept
//! 1.4 GB resident after a 15-second login flood (release build, 4 hashes at once), and 457 MB
//! on 4 threads of their own; with the reused memory, 95 MB (`benches/load/login_memory.sh`).
//! Logins for unknown users verify against a dummy hash, so the time taken does not tell
//! whether a username exists.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::work::{WorkError, WorkPool};

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

/// Hashes and verifies passwords on a fixed number of hashing threads of its own, with a
/// bounded wait for one.
#[derive(Debug, Clone)]
pub struct Passwords {
    pool: WorkPool,
    dummy_hash: Arc<str>,
}

/// The parameters of new hashes: OWASP's argon2id recommendation. They are also argon2's
/// defaults, spelled out so that a change of defaults upstream cannot weaken stored hashes
/// silently.
fn standard_params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("OWASP parameters are valid")
}

thread_local! {
    /// This thread's argon2 working memory, reused by every hash it runs.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// The argon2 output of `password` and `salt` under `argon2`'s parameters, into `out`, in this
/// thread's working memory. A stored hash asking for more memory than [`standard_params`] gets
/// it for its own hash only, so one odd hash cannot keep a thread's memory high.
fn hash_into(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), PasswordError> {
    MEMORY.with_borrow_mut(|memory| {
        let blocks = params.block_count();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        let hashed = argon2
            .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
            .map_err(hash_error);
        if memory.len() > standard_params().block_count() {
            *memory = Vec::new();
        }
        hashed
    })
}

fn hash_error(e: impl std::fmt::Display) -> PasswordError {
    PasswordError::Hash(e.to_string())
}

/// The argon2id PHC string of `password` with a fresh random salt.
fn hash_blocking(password: &[u8]) -> Result<String, PasswordError> {
    let params = standard_params();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = Salt::generate();
    let mut out = Zeroizing::new([0u8; Params::DEFAULT_OUTPUT_LEN]);
    hash_into(&argon2, &params, password, &salt, &mut out[..])?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(hash_error)?,
        salt: Some(salt),
        hash: Some(Output::new(&out[..]).map_err(hash_error)?),
    };
    Ok(hash.to_string())
}

/// Whether `password` hashes to `stored`, a PHC string, under the algorithm, version and
/// parameters `stored` names; the outputs are compared in constant time.
fn verify_blocking(password: &[u8], stored: &str) -> Result<bool, PasswordError> {
    let stored = PasswordHash::new(stored).map_err(hash_error)?;
    let algorithm = Algorithm::try_from(stored.algorithm.as_str()).map_err(hash_error)?;
    let version = match stored.version {
        Some(v) => Version::try_from(v).map_err(hash_error)?,
        None => Version::default(),
    };
    let params = Params::try_from(&stored).map_err(hash_error)?;
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return Err(PasswordError::Hash(
            "stored hash lacks a salt or an output".into(),
        ));
    };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut out = Zeroizing::new(vec![0u8; expected.len()]);
    hash_into(&argon2, &params, password, salt.as_ref(), &mut out)?;
    Ok(bool::from(out.ct_eq(expected.as_bytes())))
}

impl From<WorkError> for PasswordError {
    fn from(error: WorkError) -> Self {
        match error {
            WorkError::Busy => Self::Busy,
            _ => Self::Pool,
        }
    }
}

impl Passwords {
    /// A hasher allowing `max_concurrent` hashes at once (at least 1). Computes the dummy
    /// hash for unknown users, so call it off the async workers (start-up does).
    pub fn new(max_concurrent: usize, queue_timeout: Duration) -> Result<Self, PasswordError> {
        let pool = WorkPool::new("argon2", max_concurrent, queue_timeout)?;
        // On a hashing thread, so that the caller's thread keeps no argon2 memory.
        let dummy_hash = pool.run_blocking(|| {
            let mut random = Zeroizing::new([0u8; 32]);
            rand::fill(&mut random[..]);
            hash_blocking(&random[..])
        })??;
        Ok(Self {
            pool,
            dummy_hash: dummy_hash.into(),
        })
    }

    /// How many hashes are running now.
    #[must_use]
    pub fn running(&self) -> usize {
        self.pool.running()
    }

    /// How many hashes wait for a slot now.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.pool.queued()
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        self.pool.run(job).await?
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
    use std::sync::atomic::{AtomicUsize, Ordering};

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

    /// Hashes from before this module managed argon2's memory (argon2's own `hash_password`)
    /// still verify, with other parameters too, and its own verifier accepts ours.
    #[test]
    fn hashes_are_interchangeable_with_argon2s_own() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, standard_params())
            .hash_password(b"old password")
            .unwrap()
            .to_string();
        assert!(verify_blocking(b"old password", &theirs).unwrap());
        assert!(!verify_blocking(b"old passwore", &theirs).unwrap());
        let lighter = Params::new(8 * 1024, 1, 1, Some(24)).unwrap();
        let theirs = Argon2::new(Algorithm::Argon2i, Version::V0x10, lighter)
            .hash_password(b"other parameters")
            .unwrap()
            .to_string();
        assert!(
            theirs.starts_with("$argon2i$v=16$m=8192,t=1,p=1$"),
            "{theirs}"
        );
        assert!(verify_blocking(b"other parameters", &theirs).unwrap());
        assert!(!verify_blocking(b"other parameter", &theirs).unwrap());
        let ours = hash_blocking(b"new password").unwrap();
        let argon2 = Argon2::default();
        assert!(
            argon2
                .verify_password(b"new password", ours.as_str())
                .is_ok()
        );
        assert!(
            argon2
                .verify_password(b"new passwore", ours.as_str())
                .is_err()
        );
        // One working memory per thread, as large as a hash with the standard parameters.
        MEMORY.with_borrow(|m| assert_eq!(m.len(), standard_params().block_count()));
        let heavier = Params::new(32 * 1024, 1, 1, None).unwrap();
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, heavier)
            .hash_password(b"more memory")
            .unwrap()
            .to_string();
        assert!(verify_blocking(b"more memory", &theirs).unwrap());
        MEMORY.with_borrow(|m| assert!(m.is_empty()));
        for bad in [
            "",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
        ] {
            assert!(
                matches!(verify_blocking(b"x", bad), Err(PasswordError::Hash(_))),
                "{bad}"
            );
        }
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
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let pool = passwords.pool.clone();
        let blocker = actix_web::rt::spawn(async move { pool.run(move || hold.recv()).await });
        while passwords.running() == 0 {
            actix_web::rt::task::yield_now().await;
        }
        assert!(matches!(
            passwords.hash(pw("x")).await,
            Err(PasswordError::Busy)
        ));
        release.send(()).unwrap();
        assert!(blocker.await.unwrap().is_ok());
        assert!(passwords.hash(pw("x")).await.is_ok());
    }
}
