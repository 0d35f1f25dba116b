//! The charge journal of the in-memory daily quota: each charge is on record before its call is
//! answered, so a call answered 2xx is never forgotten, not even on `SIGKILL`.
//!
//! On a SQLite file (the embedded default) a charge is one line (about 60 bytes) appended to a log
//! file beside the database, by the worker that answers the call, with no other thread to wait for.
//! The charges a worker makes in one turn of its event loop go out together in one `write`. Once it
//! returns, the lines are in the operating system's page cache, where they survive the process
//! being killed, and only then are their calls answered. About once a second ([`FOLD_INTERVAL`])
//! the journal's thread starts a new log, adds the previous one's charges up per key and day, and
//! commits them into `quota_usage` in one transaction, synced to the disk (`synchronous = FULL`),
//! with the log's sequence number, so that a log is never counted twice; then it deletes that log.
//! At start the logs left by a crash are folded in the same way, and a graceful stop folds the last
//! one. A power loss can lose the lines of the last second or so, which were in no file on the disk
//! yet; a crash of the process loses none. One process at a time writes a file's logs: it holds
//! `<file>-quota.lock` while it runs.
//!
//! On PostgreSQL (and an in-memory SQLite) the thread group-commits instead: it takes every
//! charge waiting, adds them up, commits them in one transaction, and then lets those calls
//! answer. Each commit is durable.
//!
//! With Redis the counters live there, and no journal runs.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak, mpsc};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::clock::Clock;
use crate::store::{Db, UsageFile, UsageRow};

/// How often the charge log of a SQLite database is folded into `quota_usage`.
pub const FOLD_INTERVAL: Duration = Duration::from_secs(1);

/// At most this many charges go into one transaction (PostgreSQL).
const BATCH: usize = 4_096;

/// The longest a group commit may take (PostgreSQL); its calls are refused after it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Seconds per UTC day.
const DAY: i64 = 86_400;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The handle through which calls record their charges. The journal's thread stops once the
/// last handle is dropped.
#[derive(Debug, Clone)]
pub struct Journal {
    writer: Arc<Writer>,
    clock: Clock,
}

#[derive(Debug)]
enum Writer {
    /// A SQLite file: the charge log beside it.
    Log(Arc<ChargeLog>),
    /// PostgreSQL or an in-memory SQLite: the group-commit thread. Unbounded, yet bounded by
    /// the calls in flight: each waits for its charge to be written.
    Pool(mpsc::Sender<Charge>),
}

/// The charge could not be put on record: the disk or the database failed (logged once a
/// second, counted in `secure_api_database_errors_total`), or the journal has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the quota charge could not be written")]
pub struct NotWritten;

impl Journal {
    /// Starts the journal of `db`, with days read off `clock`. On a SQLite file it first folds
    /// the charge logs a crash left behind; this blocks, so call it where blocking is allowed
    /// (start-up).
    ///
    /// # Errors
    /// When a log cannot be read or folded, or the thread cannot be started.
    pub fn start(db: Db, clock: Clock) -> Result<Self, Error> {
        let writer = match db.sqlite_file() {
            Some(path) => {
                let writer = Arc::new(Writer::Log(Arc::new(ChargeLog::open(path)?)));
                let weak = Arc::downgrade(&writer);
                std::thread::Builder::new()
                    .name("quota-journal".to_owned())
                    .spawn(move || fold_every_interval(&weak))?;
                writer
            }
            None => {
                let runtime = tokio::runtime::Handle::current();
                let (queue, charges) = mpsc::channel();
                std::thread::Builder::new()
                    .name("quota-journal".to_owned())
                    .spawn(move || group_commit(&db, &runtime, &charges))?;
                Arc::new(Writer::Pool(queue))
            }
        };
        Ok(Self { writer, clock })
    }

    /// Records `calls` more on `subject` today, and returns once that is on record.
    ///
    /// # Errors
    /// [`NotWritten`]: the call must not be answered as a success.
    pub async fn record(&self, subject: &str, calls: u64) -> Result<(), NotWritten> {
        self.record_all(&[(subject, today(&self.clock), calls)])
            .await
    }

    /// Records each `(subject, day, calls)` of one call (its daily quota and its credits, say),
    /// and returns once all are on record. On a SQLite file they go out in one `write`.
    ///
    /// # Errors
    /// [`NotWritten`]: the call must not be answered as a success. Some of its charges may be
    /// on record (a refused call may cost; an answered one is never lost).
    pub async fn record_all(&self, charges: &[(&str, i64, u64)]) -> Result<(), NotWritten> {
        match &*self.writer {
            Writer::Log(log) => log.append(charges).await.map_err(|error| {
                crate::observe::database_error();
                crate::observe::throttled_error("quota journal write failed", &error);
                NotWritten
            }),
            Writer::Pool(queue) => {
                let mut waiting = Vec::with_capacity(charges.len());
                for &(subject, day, calls) in charges {
                    let (written, done) = oneshot::channel();
                    let charge = Charge {
                        subject: subject.to_owned(),
                        day,
                        calls,
                        written,
                    };
                    queue.send(charge).map_err(|_| NotWritten)?;
                    waiting.push(done);
                }
                for done in waiting {
                    match done.await {
                        Ok(true) => {}
                        Ok(false) | Err(_) => return Err(NotWritten),
                    }
                }
                Ok(())
            }
        }
    }

    /// Folds the charge log now (SQLite; a no-op otherwise), as the journal's thread does every
    /// [`FOLD_INTERVAL`]. Blocking.
    ///
    /// # Errors
    /// When the log cannot be read or the database fails; the log stays to be folded later.
    pub fn fold(&self) -> Result<(), Error> {
        match &*self.writer {
            Writer::Log(log) => log.rotate_and_fold(),
            Writer::Pool(_) => Ok(()),
        }
    }
}

/// Today, in days since the Unix epoch (UTC), on `clock`.
#[must_use]
pub fn today(clock: &Clock) -> i64 {
    clock.now().div_euclid(DAY)
}

/// The charge logs of one SQLite file: `<file>-quota.<seq>`, the newest being written.
#[derive(Debug)]
struct ChargeLog {
    /// Tells this log's batches from another's (tests run several servers in one process).
    id: u64,
    /// `<file>-quota.lock`, locked for as long as this process writes the logs.
    _lock: File,
    base: PathBuf,
    /// The log being written and its sequence number. Appends hold the write lock (one batch
    /// at a time, never interleaved), so once the rotation holds it, no append to the old log
    /// is under way.
    current: RwLock<(u64, File)>,
    usage: Mutex<UsageFile>,
}

impl ChargeLog {
    /// Takes the lock of `db_file`'s logs, folds every log on disk (left by a crash), then
    /// opens the next one.
    fn open(db_file: &Path) -> Result<Self, Error> {
        let lock = lock_logs(db_file, LOCK_WAIT)?;
        let mut usage = UsageFile::open(db_file)?;
        let last = fold_logs(db_file, &mut usage, u64::MAX)?;
        let seq = last.max(usage.folded()?) + 1;
        let file = open_log(db_file, seq)?;
        static IDS: AtomicU64 = AtomicU64::new(0);
        Ok(Self {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            _lock: lock,
            base: db_file.to_owned(),
            current: RwLock::new((seq, file)),
            usage: Mutex::new(usage),
        })
    }

    /// Appends one charge, and returns once it is in the log. The charges a worker thread makes
    /// in one turn of its event loop go out in one `write`: the first of them spawns a task
    /// that writes the batch, which runs after the other requests ready on that thread have
    /// added their lines, and wakes their calls. Each call still waits for its own line; the
    /// batch only saves system calls (one per request cost more than the rest of a cheap call).
    /// Needs a local task set (actix-web's workers and tests have one).
    async fn append(self: &Arc<Self>, charges: &[(&str, i64, u64)]) -> std::io::Result<()> {
        let batch = BATCHES.with_borrow_mut(|batches| {
            if let Some(batch) = batches.get(&self.id) {
                let lines = &mut batch.borrow_mut().lines;
                for &(subject, day, calls) in charges {
                    push_record(lines, subject, day, calls);
                }
                return Rc::clone(batch);
            }
            let mut lines = String::with_capacity(1024);
            for &(subject, day, calls) in charges {
                push_record(&mut lines, subject, day, calls);
            }
            let batch = Rc::new(RefCell::new(Batch {
                lines,
                waiting: Vec::new(),
                outcome: None,
            }));
            let flush = Flush {
                log: Arc::clone(self),
                batch: Rc::clone(&batch),
            };
            actix_web::rt::spawn(async move { flush.write() });
            batches.insert(self.id, Rc::clone(&batch));
            batch
        });
        std::future::poll_fn(|cx| {
            let mut batch = batch.borrow_mut();
            if let Some(outcome) = &batch.outcome {
                return std::task::Poll::Ready(
                    outcome
                        .clone()
                        .map_err(|e| std::io::Error::new(e.kind(), e.to_string())),
                );
            }
            if !batch.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                batch.waiting.push(cx.waker().clone());
            }
            std::task::Poll::Pending
        })
        .await
    }

    /// Writes `lines` to the current log. Appends are exclusive, so that a write the kernel
    /// splits (a short write on a full disk, then the rest) is never interleaved with another
    /// thread's batch.
    fn write(&self, lines: &[u8]) -> std::io::Result<()> {
        let current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        (&current.1).write_all(lines)
    }

    /// Starts a new log when the current one holds charges, and folds the older ones in order.
    fn rotate_and_fold(&self) -> Result<(), Error> {
        // One rotation at a time.
        let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = {
            let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
            if current.1.metadata()?.len() == 0 {
                current.0
            } else {
                let next = open_log(&self.base, current.0 + 1)?;
                drop(current);
                let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
                current.0 += 1;
                let old = std::mem::replace(&mut current.1, next);
                let seq = current.0;
                drop(current);
                // Closed outside the lock, which the workers wait for.
                drop(old);
                seq
            }
        };
        fold_logs(&self.base, &mut usage, seq).map(|_| ())
    }
}

thread_local! {
    /// The batch of charges being gathered on this thread, per log: present from a batch's
    /// first line until its leader writes it. Hashed with `foldhash`: the ids are the
    /// process's own.
    static BATCHES: RefCell<foldhash::HashMap<u64, Rc<RefCell<Batch>>>> =
        RefCell::new(foldhash::HashMap::default());
}

/// Charges of one thread waiting to be written together.
#[derive(Debug)]
struct Batch {
    lines: String,
    /// The calls whose lines these are.
    waiting: Vec<std::task::Waker>,
    /// Set once written.
    outcome: Option<Result<(), Rc<std::io::Error>>>,
}

/// The task that writes a batch. Dropped without having run (its runtime shut down first), it
/// fails the batch's calls rather than leave them waiting.
struct Flush {
    log: Arc<ChargeLog>,
    batch: Rc<RefCell<Batch>>,
}

impl Flush {
    /// Writes the batch and wakes its calls.
    fn write(&self) {
        let lines = std::mem::take(&mut self.batch.borrow_mut().lines);
        let written = self.log.write(lines.as_bytes());
        self.finish(written.map_err(Rc::new));
    }

    /// Closes the batch (the next charge on this thread starts another) with `outcome`, and
    /// wakes its calls.
    fn finish(&self, outcome: Result<(), Rc<std::io::Error>>) {
        // Absent only while the thread itself is ending.
        let _ = BATCHES.try_with(|batches| batches.borrow_mut().remove(&self.log.id));
        let mut batch = self.batch.borrow_mut();
        batch.outcome = Some(outcome);
        for waker in batch.waiting.drain(..) {
            waker.wake();
        }
    }
}

impl Drop for Flush {
    fn drop(&mut self) {
        if self.batch.borrow().outcome.is_none() {
            self.finish(Err(Rc::new(std::io::Error::from(
                std::io::ErrorKind::Interrupted,
            ))));
        }
    }
}

/// How long a start waits for another process to let go of the charge logs (a restart that
/// overlaps the stop of the process before).
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Locks the charge logs of `base` for this process: one process at a time writes and folds
/// them, since each folds every log it finds at start.
fn lock_logs(base: &Path, wait: Duration) -> Result<File, Error> {
    let path = base.with_file_name(format!("{}lock", log_prefix(base)));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    let started = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < wait => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "{} is locked: another secure-api process serves this database file",
                    path.display()
                )
                .into());
            }
            Err(std::fs::TryLockError::Error(error)) => return Err(error.into()),
        }
    }
}

/// Folds each log of `base` numbered below `before`, in order, and deletes it; a log already
/// folded (the process died before deleting it) is only deleted. Stops at the first failure,
/// so that the folded number never passes a log not folded. Returns the highest number seen.
fn fold_logs(base: &Path, usage: &mut UsageFile, before: u64) -> Result<u64, Error> {
    let folded = usage.folded()?;
    let mut highest = 0;
    for (seq, path) in logs(base)? {
        highest = highest.max(seq);
        if seq >= before {
            continue;
        }
        if seq > folded {
            let (rows, skipped) = match read_log(&path) {
                Ok(read) => read,
                // Folded and deleted by another process on the same file meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            if skipped > 0 {
                tracing::warn!(
                    log = %path.display(),
                    skipped,
                    "unreadable quota charge lines skipped (torn by a power loss, or by a failed \
                     write whose call was refused)"
                );
            }
            usage.fold(seq, &rows)?;
        }
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    Ok(highest)
}

/// The logs of `base`, by sequence number.
fn logs(base: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let dir = match base.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let prefix = log_prefix(base);
    let mut logs: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name();
            let seq = name.to_str()?.strip_prefix(&prefix)?.parse().ok()?;
            Some((seq, entry.path()))
        })
        .collect();
    logs.sort_unstable();
    Ok(logs)
}

fn log_prefix(base: &Path) -> String {
    let name = base.file_name().unwrap_or_default().to_string_lossy();
    format!("{name}-quota.")
}

fn open_log(base: &Path, seq: u64) -> std::io::Result<File> {
    let path = base.with_file_name(format!("{}{seq}", log_prefix(base)));
    OpenOptions::new().create(true).append(true).open(path)
}

/// One charge as a log line: `\n<crc32 of the rest, hex> <day> <calls> <subject>`. The line
/// starts with its newline, so that a line torn by a failed write never runs into the next.
fn push_record(out: &mut String, subject: &str, day: i64, calls: u64) {
    out.push('\n');
    let crc_at = out.len();
    out.push_str("00000000 ");
    let rest_at = out.len();
    out.push_str(itoa::Buffer::new().format(day));
    out.push(' ');
    out.push_str(itoa::Buffer::new().format(calls));
    out.push(' ');
    out.push_str(subject);
    let crc = crc32fast::hash(&out.as_bytes()[rest_at..]).to_be_bytes();
    let mut hex = [0u8; 8];
    if hex::encode_to_slice(crc, &mut hex).is_ok()
        && let Ok(hex) = std::str::from_utf8(&hex)
    {
        out.replace_range(crc_at..crc_at + 8, hex);
    }
}

#[cfg(test)]
fn record(subject: &str, day: i64, calls: u64) -> String {
    let mut line = String::new();
    push_record(&mut line, subject, day, calls);
    line
}

/// The charges of the log at `path` added up per subject and day, and how many lines were
/// unreadable.
fn read_log(path: &Path) -> std::io::Result<(Vec<UsageRow>, usize)> {
    let text = std::fs::read(path)?;
    let mut sums: HashMap<(String, i64), u64> = HashMap::new();
    let mut skipped = 0;
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match parse(line) {
            Some((subject, day, calls)) => {
                let sum = sums.entry((subject.to_owned(), day)).or_default();
                *sum = sum.saturating_add(calls);
            }
            None => skipped += 1,
        }
    }
    let mut rows: Vec<UsageRow> = sums
        .into_iter()
        .map(|((subject, day), calls)| (subject, day, calls))
        .collect();
    rows.sort_unstable();
    Ok((rows, skipped))
}

fn parse(line: &[u8]) -> Option<(&str, i64, u64)> {
    let line = std::str::from_utf8(line).ok()?;
    let (crc, rest) = line.split_once(' ')?;
    if u32::from_str_radix(crc, 16).ok()? != crc32fast::hash(rest.as_bytes()) {
        return None;
    }
    let mut fields = rest.splitn(3, ' ');
    let day = fields.next()?.parse().ok()?;
    let calls = fields.next()?.parse().ok()?;
    Some((fields.next()?, day, calls))
}

/// The journal thread of a SQLite file: folds its log every [`FOLD_INTERVAL`] while the
/// journal lives.
fn fold_every_interval(journal: &Weak<Writer>) {
    loop {
        std::thread::sleep(FOLD_INTERVAL);
        let Some(writer) = journal.upgrade() else {
            return;
        };
        if let Writer::Log(log) = &*writer
            && let Err(error) = log.rotate_and_fold()
        {
            // The logs stay, to be folded at the next interval or start.
            crate::observe::database_error();
            crate::observe::throttled_error("quota journal fold failed", &*error);
        }
    }
}

/// A charge waiting for the group-commit thread.
struct Charge {
    subject: String,
    day: i64,
    calls: u64,
    written: oneshot::Sender<bool>,
}

/// The journal thread without a SQLite file: commits whatever waits, through the pool on
/// `runtime`, then answers each waiting call.
fn group_commit(db: &Db, runtime: &tokio::runtime::Handle, charges: &mpsc::Receiver<Charge>) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Ok(first) = charges.recv() {
        batch.push(first);
        batch.extend(charges.try_iter().take(BATCH - 1));
        // Bounded: a database that hangs fails these calls rather than the journal.
        let rows = sums(&batch);
        let write = async { tokio::time::timeout(WRITE_TIMEOUT, db.add_quota_usage(&rows)).await };
        let written = match runtime.block_on(write) {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                crate::observe::database_error();
                crate::observe::throttled_error("quota journal write failed", &error);
                false
            }
            Err(elapsed) => {
                crate::observe::database_error();
                crate::observe::throttled_error("quota journal write failed", &elapsed);
                false
            }
        };
        for charge in batch.drain(..) {
            // The caller may have gone away: nothing to tell it then.
            let _ = charge.written.send(written);
        }
    }
}

/// The calls of `batch` added up per subject and day.
fn sums(batch: &[Charge]) -> Vec<UsageRow> {
    let mut sums: HashMap<(&str, i64), u64> = HashMap::new();
    for charge in batch {
        let sum = sums.entry((&charge.subject, charge.day)).or_default();
        *sum = sum.saturating_add(charge.calls);
    }
    let mut rows: Vec<UsageRow> = sums
        .into_iter()
        .map(|((subject, day), calls)| (subject.to_owned(), day, calls))
        .collect();
    // In one order everywhere, so that concurrent transactions lock rows in the same order.
    rows.sort_unstable();
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> Db {
        Db::connect("sqlite::memory:").await.unwrap()
    }

    #[actix_web::test]
    async fn a_recorded_charge_is_stored_before_record_returns() {
        let db = db().await;
        let clock = Clock::manual(3 * 86_400 + 5);
        let journal = Journal::start(db.clone(), clock.clone()).unwrap();
        journal.record("k1", 2).await.unwrap();
        assert_eq!(db.quota_used("k1", 3).await.unwrap(), 2);
        journal.record("k1", 5).await.unwrap();
        assert_eq!(db.quota_used("k1", 3).await.unwrap(), 7);
        clock.set(4 * 86_400);
        journal.record("k1", 1).await.unwrap();
        assert_eq!(db.quota_used("k1", 3).await.unwrap(), 7);
        assert_eq!(db.quota_used("k1", 4).await.unwrap(), 1);
    }

    #[actix_web::test]
    async fn concurrent_charges_are_all_counted() {
        let db = db().await;
        let journal = Journal::start(db.clone(), Clock::manual(86_400)).unwrap();
        let calls = (0..500).map(|i| {
            let journal = journal.clone();
            async move { journal.record(if i % 2 == 0 { "a" } else { "b" }, 1).await }
        });
        for result in futures_util::future::join_all(calls).await {
            result.unwrap();
        }
        assert_eq!(db.quota_used("a", 1).await.unwrap(), 250);
        assert_eq!(db.quota_used("b", 1).await.unwrap(), 250);
    }

    async fn file_db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("j.db").display());
        (dir, Db::connect(&url).await.unwrap())
    }

    fn log_files(dir: &tempfile::TempDir) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains("-quota.") && !n.ends_with(".lock"))
            .collect();
        names.sort();
        names
    }

    #[actix_web::test]
    async fn on_a_file_charges_are_logged_then_folded_once() {
        let (dir, db) = file_db().await;
        let journal = Journal::start(db.clone(), Clock::manual(86_400 * 2)).unwrap();
        journal.record("a", 2).await.unwrap();
        journal.record("a", 3).await.unwrap();
        journal.record("b", 1).await.unwrap();
        assert_eq!(log_files(&dir), ["j.db-quota.1"]);
        assert_eq!(db.quota_used("a", 2).await.unwrap(), 0, "not folded yet");
        journal.fold().unwrap();
        assert_eq!(db.quota_used("a", 2).await.unwrap(), 5);
        assert_eq!(db.quota_used("b", 2).await.unwrap(), 1);
        assert_eq!(log_files(&dir), ["j.db-quota.2"], "the folded log is gone");
        // An empty log is not rotated.
        journal.fold().unwrap();
        assert_eq!(log_files(&dir), ["j.db-quota.2"]);
        journal.record("a", 1).await.unwrap();
        journal.fold().unwrap();
        assert_eq!(db.quota_used("a", 2).await.unwrap(), 6);
    }

    #[actix_web::test]
    async fn charges_of_one_turn_share_a_write_and_each_returns_once_its_line_is_in_the_log() {
        let (dir, db) = file_db().await;
        let journal = Journal::start(db.clone(), Clock::manual(86_400 * 2)).unwrap();
        let log = dir.path().join("j.db-quota.1");
        let lines = || {
            let text = std::fs::read_to_string(&log).unwrap();
            text.lines().filter(|l| !l.is_empty()).count()
        };
        // 300 calls ready at once, then one more on its own.
        let calls = (0..300).map(|i| {
            let journal = journal.clone();
            async move {
                journal.record(["a", "b", "c"][i % 3], 1).await.unwrap();
                // They went out together: whichever returns, all 300 lines are in the file.
                assert_eq!(lines(), 300);
            }
        });
        futures_util::future::join_all(calls).await;
        assert_eq!(lines(), 300);
        journal.record("a", 5).await.unwrap();
        assert_eq!(lines(), 301);
        // A call dropped once its line is in a batch (its client went away) leaves the batch to
        // be written all the same, with the calls that joined it.
        let mut abandoned = Box::pin(journal.record("b", 1));
        let first_poll =
            std::future::poll_fn(|cx| std::task::Poll::Ready(abandoned.as_mut().poll(cx))).await;
        assert!(first_poll.is_pending());
        drop(abandoned);
        journal.record("c", 1).await.unwrap();
        assert_eq!(lines(), 303);
        journal.fold().unwrap();
        assert_eq!(db.quota_used("a", 2).await.unwrap(), 105);
        assert_eq!(db.quota_used("b", 2).await.unwrap(), 101);
        assert_eq!(db.quota_used("c", 2).await.unwrap(), 101);
    }

    #[actix_web::test]
    async fn logs_left_by_a_crash_are_folded_at_start_and_never_twice() {
        let (dir, db) = file_db().await;
        let clock = Clock::manual(86_400 * 2);
        let journal = Journal::start(db.clone(), clock.clone()).unwrap();
        journal.record("a", 4).await.unwrap();
        // A copy of the log as it was before its fold, as if the process died after the fold's
        // commit and before deleting it.
        let log = dir.path().join("j.db-quota.1");
        let copy = std::fs::read(&log).unwrap();
        journal.fold().unwrap();
        std::fs::write(&log, copy).unwrap();
        journal.record("a", 1).await.unwrap();
        // The process dies: log 2 was never folded.
        drop(journal);

        let again = Journal::start(db.clone(), clock).unwrap();
        assert_eq!(db.quota_used("a", 2).await.unwrap(), 5, "4 once, and the 1");
        assert_eq!(log_files(&dir), ["j.db-quota.3"]);
        again.record("a", 1).await.unwrap();
        again.fold().unwrap();
        assert_eq!(db.quota_used("a", 2).await.unwrap(), 6);
    }

    #[actix_web::test]
    async fn a_log_is_folded_once_whichever_connection_folds_it() {
        let (_dir, db) = file_db().await;
        let path = db.sqlite_file().unwrap();
        let (mut one, mut other) = (
            UsageFile::open(path).unwrap(),
            UsageFile::open(path).unwrap(),
        );
        let rows = [("a".to_owned(), 1, 3)];
        assert!(one.fold(1, &rows).unwrap());
        assert!(!other.fold(1, &rows).unwrap(), "log 1 is folded already");
        assert!(other.fold(2, &rows).unwrap());
        assert_eq!(db.quota_used("a", 1).await.unwrap(), 6);
        assert_eq!(one.folded().unwrap(), 2);
    }

    #[actix_web::test]
    async fn one_process_at_a_time_writes_the_logs() {
        let (_dir, db) = file_db().await;
        let path = db.sqlite_file().unwrap();
        let held = lock_logs(path, Duration::ZERO).unwrap();
        let error = lock_logs(path, Duration::from_millis(100)).unwrap_err();
        assert!(
            error.to_string().contains("another secure-api process"),
            "{error}"
        );
        drop(held);
        let journal = Journal::start(db.clone(), Clock::manual(0)).unwrap();
        assert!(
            lock_logs(path, Duration::ZERO).is_err(),
            "the journal holds it"
        );
        drop(journal);
        // The folding thread lets go of its reference within an interval.
        let started = std::time::Instant::now();
        while lock_logs(path, Duration::ZERO).is_err() {
            assert!(started.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn a_line_is_the_crc_then_day_calls_and_subject() {
        // The format logs written by earlier versions have too: a start after an upgrade folds
        // them.
        let expected = format!(
            "\n{:08x} 20790 1 sapi_...2d0570",
            crc32fast::hash(b"20790 1 sapi_...2d0570")
        );
        assert_eq!(record("sapi_...2d0570", 20_790, 1), expected);
        let mut two = record("a", 1, 2);
        push_record(&mut two, "b", -3, u64::MAX);
        assert_eq!(
            two,
            format!("{}{}", record("a", 1, 2), record("b", -3, u64::MAX))
        );
        assert_eq!(
            parse(two.lines().nth(2).unwrap().as_bytes()),
            Some(("b", -3, u64::MAX))
        );
    }

    #[test]
    fn torn_and_corrupt_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let good = [record("a", 1, 2), record("b", 1, 3), record("a", 1, 5)];
        let mut corrupt = record("a", 1, 9);
        corrupt.replace_range(corrupt.len() - 1.., "b");
        let torn = &record("a", 1, 7)[..10];
        let text = format!("{}{torn}{}{corrupt}{}", good[0], good[1], good[2]);
        std::fs::write(&path, text).unwrap();
        let (mut rows, skipped) = read_log(&path).unwrap();
        rows.sort();
        assert_eq!(rows, [("a".to_owned(), 1, 7), ("b".to_owned(), 1, 3)]);
        assert_eq!(skipped, 2);
    }

    #[actix_web::test]
    async fn a_failing_database_fails_the_charge() {
        let db = db().await;
        let journal = Journal::start(db.clone(), Clock::manual(86_400)).unwrap();
        db.close().await;
        assert_eq!(journal.record("a", 1).await, Err(NotWritten));
    }

    #[test]
    fn sums_add_up_per_subject_and_day() {
        let charge = |subject: &str, day, calls| Charge {
            subject: subject.to_owned(),
            day,
            calls,
            written: oneshot::channel().0,
        };
        let batch = [
            charge("a", 1, 2),
            charge("a", 1, 3),
            charge("a", 2, 1),
            charge("b", 1, u64::MAX),
            charge("b", 1, 1),
        ];
        let mut sums = sums(&batch);
        sums.sort();
        assert_eq!(
            sums,
            [
                ("a".to_owned(), 1, 5),
                ("a".to_owned(), 2, 1),
                ("b".to_owned(), 1, u64::MAX)
            ]
        );
    }
}
