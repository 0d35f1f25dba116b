//! Pools of dedicated threads for CPU-heavy work (argon2 hashes, big prime tests), never run on
//! the async workers.
//!
//! A [`WorkPool`] runs at most `threads` jobs at once. A caller waits at most `queue_timeout`
//! for one to start and then gets [`WorkError::Busy`], so a flood queues for a bounded time
//! instead of piling up. A caller that gives up while waiting leaves the queue at once. The
//! threads are the pool's own rather than the shared blocking pool's, so that the jobs of one
//! kind cannot take the threads another kind needs, and so that a job may keep per-thread state
//! (argon2's working memory).
//!
//! On Linux the threads run at a lower scheduling priority than the async workers (nice
//! [`NICENESS`]): when both want a core, the workers get about nine tenths of it, so a flood of
//! expensive calls slows those calls rather than every cheap call beside them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

type Job = Box<dyn FnOnce() + Send>;

/// How much lower the pool threads' priority is than the rest of the process's (a nice value:
/// 10 gives a thread about a tenth of the CPU share of one at 0).
pub const NICENESS: i32 = 10;

/// Lowers the calling thread's priority by [`NICENESS`] (Linux, where nice is per thread). A
/// failure leaves it as it was: lowering needs no privilege, and the work runs either way.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let thread = rustix::thread::gettid();
        let current = rustix::process::getpriority_process(Some(thread)).unwrap_or(0);
        if let Err(error) =
            rustix::process::setpriority_process(Some(thread), current.saturating_add(NICENESS))
        {
            tracing::debug!(%error, "the work thread keeps its priority");
        }
    }
}

/// Why a job did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkError {
    /// No thread became free within the queue timeout.
    #[error("every worker thread stayed busy for the queue timeout")]
    Busy,
    /// The threads could not be started, or are gone.
    #[error("the worker threads are unavailable")]
    Gone,
}

/// `threads` threads of their own, a bounded wait for one, and counts of what runs and waits.
/// Clones share the threads, which end when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct WorkPool {
    jobs: mpsc::Sender<Job>,
    permits: Arc<Semaphore>,
    threads: usize,
    queued: Arc<AtomicUsize>,
    queue_timeout: Duration,
}

/// A pool thread held for one job, from [`WorkPool::reserve`]; dropped unused, it is free again.
#[derive(Debug)]
pub struct Reserved {
    permit: OwnedSemaphorePermit,
    jobs: mpsc::Sender<Job>,
}

impl Reserved {
    /// Runs `job` on the thread held, as [`WorkPool::run`] does.
    ///
    /// # Errors
    /// [`WorkError::Gone`] when the threads are gone.
    pub async fn run<T: Send + 'static>(
        self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, WorkError> {
        let Self { permit, jobs } = self;
        let (done, answer) = tokio::sync::oneshot::channel();
        jobs.send(Box::new(move || {
            let result = job();
            drop(permit);
            // The caller may have gone (a client that hung up): then nobody needs the answer.
            let _ = done.send(result);
        }))
        .map_err(|_| WorkError::Gone)?;
        answer.await.map_err(|_| WorkError::Gone)
    }
}

/// Counts a caller waiting for a thread, until dropped (also when the wait is cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(queued: &'a AtomicUsize) -> Self {
        queued.fetch_add(1, Ordering::Relaxed);
        Self(queued)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl WorkPool {
    /// A pool of `threads` threads (at least 1) named `name-0`, `name-1`, ...
    ///
    /// # Errors
    /// [`WorkError::Gone`] when a thread cannot be spawned.
    pub fn new(name: &str, threads: usize, queue_timeout: Duration) -> Result<Self, WorkError> {
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        // A job that panicked cannot leave the receiver inconsistent.
                        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        let Ok(job) = next else { return };
                        // A job that panics ends alone: its caller's answer is dropped (an
                        // error), and the thread serves the next job.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })
                .map_err(|_| WorkError::Gone)?;
        }
        Ok(Self {
            jobs,
            permits: Arc::new(Semaphore::new(threads)),
            threads,
            queued: Arc::new(AtomicUsize::new(0)),
            queue_timeout,
        })
    }

    /// How many threads the pool has.
    #[must_use]
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// How many jobs run now.
    #[must_use]
    pub fn running(&self) -> usize {
        self.threads
            .saturating_sub(self.permits.available_permits())
    }

    /// How many callers wait for a thread now.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Runs `job` on a pool thread once one is free, waiting at most the queue timeout.
    ///
    /// Dropping the returned future while the job runs does not stop it: the job ends on its
    /// own (a job that can stop early checks a flag its caller sets, as `/check-prime` does).
    ///
    /// # Errors
    /// [`WorkError::Busy`] after the queue timeout, [`WorkError::Gone`] without threads.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, WorkError> {
        self.reserve().await?.run(job).await
    }

    /// Waits, at most the queue timeout, for a thread to be free, and holds it for one job: for
    /// a caller with something to settle before the job may start, such as a charge, which
    /// then never pays for a job that found no thread.
    ///
    /// # Errors
    /// [`WorkError::Busy`] after the queue timeout, [`WorkError::Gone`] without threads.
    pub async fn reserve(&self) -> Result<Reserved, WorkError> {
        let waiting = Waiting::enter(&self.queued);
        let permit = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| WorkError::Busy)?
            .map_err(|_| WorkError::Gone)?;
        drop(waiting);
        Ok(Reserved {
            permit,
            jobs: self.jobs.clone(),
        })
    }

    /// Runs `job` on a pool thread and blocks the calling thread until it is done, bypassing
    /// the queue: for start-up, before any request is served.
    ///
    /// # Errors
    /// [`WorkError::Gone`] without threads.
    pub fn run_blocking<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, WorkError> {
        let (done, answer) = mpsc::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(job());
            }))
            .map_err(|_| WorkError::Gone)?;
        answer.recv().map_err(|_| WorkError::Gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[actix_web::test]
    async fn jobs_run_at_a_lower_priority_than_the_caller() {
        fn own() -> i32 {
            rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
        }
        let caller = own();
        let pool = WorkPool::new("nice", 1, Duration::from_secs(5)).unwrap();
        let job = pool.run(own).await.unwrap();
        assert_eq!(job, (caller + NICENESS).min(19));
    }

    #[actix_web::test]
    async fn at_most_threads_jobs_run_and_a_full_pool_answers_busy_after_the_timeout() {
        let pool = WorkPool::new("test", 1, Duration::from_millis(50)).unwrap();
        let (release, hold) = mpsc::channel::<()>();
        let first = {
            let pool = pool.clone();
            actix_web::rt::spawn(async move { pool.run(move || hold.recv().is_ok()).await })
        };
        while pool.running() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.run(|| ()).await, Err(WorkError::Busy));
        assert_eq!(pool.queued(), 0, "a caller that gave up left the queue");
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(true));
        assert_eq!(pool.run(|| 7).await, Ok(7));
        assert_eq!(pool.run_blocking(|| 8), Ok(8));
        assert_eq!(pool.running(), 0);
    }

    #[actix_web::test]
    async fn a_reserved_thread_is_held_until_its_job_ends_or_it_is_dropped() {
        let pool = WorkPool::new("test", 1, Duration::from_millis(50)).unwrap();
        let reserved = pool.reserve().await.unwrap();
        assert_eq!(pool.running(), 1, "held before any job runs");
        assert_eq!(pool.run(|| ()).await, Err(WorkError::Busy));
        assert_eq!(reserved.run(|| 7).await, Ok(7));
        assert_eq!(pool.running(), 0);
        let unused = pool.reserve().await.unwrap();
        drop(unused);
        assert_eq!(pool.running(), 0, "a dropped reservation frees its thread");
        assert_eq!(pool.run(|| 8).await, Ok(8));
    }

    #[actix_web::test]
    async fn a_job_that_panics_leaves_its_thread_serving() {
        let pool = WorkPool::new("test", 1, Duration::from_secs(1)).unwrap();
        let panicked: Result<(), WorkError> = pool.run(|| panic!("a job's own failure")).await;
        assert_eq!(panicked, Err(WorkError::Gone));
        assert_eq!(pool.run(|| 9).await, Ok(9), "the one thread still serves");
        assert_eq!(pool.running(), 0);
    }

    #[actix_web::test]
    async fn jobs_run_on_the_pools_own_threads() {
        let pool = WorkPool::new("primes", 2, Duration::from_secs(1)).unwrap();
        let name = pool
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap()
            .unwrap();
        assert!(name.starts_with("primes-"), "{name}");
    }
}
