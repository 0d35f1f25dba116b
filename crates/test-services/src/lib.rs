//! Test helper for tests that need a real PostgreSQL or Redis, or an installed program.
//!
//! The convention (see `docs/testing.md`): a service test is `#[ignore = "needs ..."]`, so that
//! a plain `cargo test` reports it as ignored rather than passed, and `--include-ignored` runs
//! it. It asks this crate for its URL; a test that drives a program (a browser, say) asks for
//! the program's path.
//!
//! - `TEST_DATABASE_URL` / `TEST_REDIS_URL` set, or the program on `PATH`: the test gets the URL
//!   or the path and runs.
//! - Missing: one line on stderr says which test was skipped and why, and the test returns early.
//! - Missing while `REQUIRE_SERVICES=1`: the test fails, so CI can never skip silently.
//!
//! ```no_run
//! #[test]
//! #[ignore = "needs Redis: set TEST_REDIS_URL"]
//! fn counts_on_redis() {
//!     let Some(url) = test_services::redis_url("counts_on_redis") else { return };
//!     // ... connect to `url` and test ...
//! #   let _ = url;
//! }
//! ```

use std::env;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Environment variable holding the PostgreSQL URL for tests.
pub const DATABASE_VAR: &str = "TEST_DATABASE_URL";
/// Environment variable holding the Redis URL for tests.
pub const REDIS_VAR: &str = "TEST_REDIS_URL";
/// Environment variable that turns a skip into a failure (set by `.ci/run`).
pub const REQUIRE_VAR: &str = "REQUIRE_SERVICES";

/// The PostgreSQL URL for `test`, or `None` (after printing why) when the test should skip.
///
/// # Panics
/// When `TEST_DATABASE_URL` is unset or empty and `REQUIRE_SERVICES=1`.
#[must_use]
pub fn database_url(test: &str) -> Option<String> {
    service_url(test, DATABASE_VAR, "PostgreSQL")
}

/// The Redis URL for `test`, or `None` (after printing why) when the test should skip.
///
/// # Panics
/// When `TEST_REDIS_URL` is unset or empty and `REQUIRE_SERVICES=1`.
#[must_use]
pub fn redis_url(test: &str) -> Option<String> {
    service_url(test, REDIS_VAR, "Redis")
}

/// Waits until just after the next UTC midnight when less than `needed` is left before it,
/// saying so on stderr. For tests of real processes, which count daily quotas on the system
/// clock: a day that ends mid-test starts every quota again.
///
/// # Panics
/// When the system clock is before 1970.
pub fn clear_of_utc_midnight(test: &str, needed: Duration) {
    const DAY: Duration = Duration::from_secs(86_400);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    let into_day = Duration::from_nanos(
        u64::try_from(now.as_nanos() % DAY.as_nanos()).expect("less than a day"),
    );
    let left = DAY - into_day;
    if left < needed {
        eprintln!("{test}: waiting {left:.1?} for UTC midnight to pass (daily quotas start again)");
        std::thread::sleep(left + Duration::from_secs(1));
    }
}

/// Whether `REQUIRE_SERVICES=1` is set, i.e. whether a missing service is a failure.
#[must_use]
pub fn services_required() -> bool {
    env::var(REQUIRE_VAR).is_ok_and(|v| v == "1")
}

/// The path of `program` found on `PATH` for `test`, or `None` (after printing why, with
/// `install` saying how to get it) when the test should skip.
///
/// # Panics
/// When `program` is not on `PATH` and `REQUIRE_SERVICES=1`.
#[must_use]
pub fn program(test: &str, program: &str, install: &str) -> Option<PathBuf> {
    let found = env::var_os("PATH").and_then(|path| find_program(program, &path));
    match decide(found, services_required()) {
        Outcome::Run(path) => Some(path),
        Outcome::Skip => {
            eprintln!("skipped {test}: needs {program} on PATH; {install}");
            None
        }
        Outcome::Fail => {
            panic!("{test} needs {program}: it is not on PATH but {REQUIRE_VAR}=1; {install}")
        }
    }
}

/// The first executable file called `program` in the directories of `path` (a `PATH` value).
fn find_program(program: &str, path: &OsStr) -> Option<PathBuf> {
    env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

fn service_url(test: &str, var: &str, service: &str) -> Option<String> {
    let value = env::var(var).ok().filter(|v| !v.trim().is_empty());
    match decide(value, services_required()) {
        Outcome::Run(url) => Some(url),
        Outcome::Skip => {
            eprintln!("skipped {test}: needs {service}; set {var} to run it");
            None
        }
        Outcome::Fail => {
            panic!("{test} needs {service}: {var} is unset but {REQUIRE_VAR}=1")
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome<T> {
    Run(T),
    Skip,
    Fail,
}

fn decide<T>(value: Option<T>, required: bool) -> Outcome<T> {
    match (value, required) {
        (Some(url), _) => Outcome::Run(url),
        (None, false) => Outcome::Skip,
        (None, true) => Outcome::Fail,
    }
}

/// A private `redis-server` for tests that stop Redis on purpose: bound to 127.0.0.1, keeping
/// nothing on disk, killed when dropped. Needs the `redis-server` program on `PATH` (gate the
/// test with [`program`]).
#[derive(Debug)]
pub struct RedisServer {
    child: std::process::Child,
    port: u16,
}

impl RedisServer {
    /// Starts one on a free port.
    ///
    /// # Panics
    /// When no port is free or the server does not listen within 5 s.
    #[must_use]
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts one on a free port with extra configuration, e.g.
    /// `["--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"]`. A port that another
    /// process takes between its choice and the server's start is given up for another one.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    #[must_use]
    pub fn start_with(args: &[&str]) -> Self {
        let mut tried = Vec::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            match Self::launch(port, args) {
                Ok(server) => return server,
                Err(why) => tried.push(why),
            }
        }
        panic!("no redis-server started: {}", tried.join("; "));
    }

    /// Starts one on `port` (to bring a stopped one back where its clients expect it).
    ///
    /// # Panics
    /// When `redis-server` cannot run or does not listen within 5 s.
    #[must_use]
    pub fn start_on(port: u16) -> Self {
        Self::launch(port, &[]).unwrap_or_else(|why| panic!("{why}"))
    }

    /// Starts one on `port`; ready once the Redis answering there says it is this child.
    fn launch(port: u16, args: &[&str]) -> Result<Self, String> {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let mut server = Self { child, port };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("redis-server on port {port} exited ({status})"));
            }
            match answering_pid(port) {
                Some(pid) if pid == server.child.id() => return Ok(server),
                Some(pid) => {
                    server.stop();
                    return Err(format!("port {port} is held by redis-server {pid}"));
                }
                None if std::time::Instant::now() > deadline => {
                    server.stop();
                    return Err(format!("redis-server does not listen on port {port}"));
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Its port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its URL, `redis://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it and waits for it (dropping does the same).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The process id the Redis answering on `port` reports (`INFO server`), if one answers.
fn answering_pid(port: u16) -> Option<u32> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream.write_all(b"INFO server\r\n").ok()?;
    let mut reply = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        let read = stream.read(&mut chunk).ok()?;
        if read == 0 {
            return None;
        }
        reply.extend_from_slice(&chunk[..read]);
        // Only lines that end in their "\r\n" are whole; the last piece may be cut short.
        let text = String::from_utf8_lossy(&reply);
        let whole = text.rsplit_once("\r\n").map_or("", |(whole, _)| whole);
        if let Some(pid) = whole
            .split("\r\n")
            .find_map(|l| l.strip_prefix("process_id:"))
        {
            return pid.parse().ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore = "needs redis-server on PATH"]
    fn a_port_another_redis_server_holds_is_never_taken_for_ours() {
        let test = "a_port_another_redis_server_holds_is_never_taken_for_ours";
        if program(
            test,
            "redis-server",
            "install Debian's redis-server package",
        )
        .is_none()
        {
            return;
        }
        let first = RedisServer::start();
        let refused = RedisServer::launch(first.port(), &[]).unwrap_err();
        assert!(refused.contains(&first.port().to_string()), "{refused}");
        // The first one still answers as itself.
        assert_eq!(answering_pid(first.port()), Some(first.child.id()));
    }

    #[test]
    fn a_set_url_runs_whether_or_not_required() {
        let url = "redis://127.0.0.1:6379".to_owned();
        assert_eq!(decide(Some(url.clone()), false), Outcome::Run(url.clone()));
        assert_eq!(decide(Some(url.clone()), true), Outcome::Run(url));
    }

    #[test]
    fn an_unset_url_skips_unless_required() {
        assert_eq!(decide(None::<String>, false), Outcome::Skip);
        assert_eq!(decide(None::<String>, true), Outcome::Fail);
    }

    #[test]
    fn a_program_is_found_only_as_an_executable_file_on_the_path() {
        let root = env::temp_dir().join(format!("test-services-path-{}", std::process::id()));
        let (empty, plain, bin) = (root.join("empty"), root.join("plain"), root.join("bin"));
        for dir in [&empty, &plain, &bin] {
            std::fs::create_dir_all(dir).expect("a temporary directory");
        }
        // A file that is not executable does not count (on Unix), nor does a directory.
        std::fs::write(plain.join("tool"), "").expect("a plain file");
        std::fs::create_dir_all(empty.join("tool")).expect("a directory named like the program");
        let tool = bin.join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").expect("a program");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let path = env::join_paths([&empty, &plain, &bin]).expect("a PATH value");
        let found = find_program("tool", &path);
        let missing = find_program("no-such-tool", &path);
        let without_bin = find_program("tool", &env::join_paths([&empty]).expect("a PATH value"));
        std::fs::remove_dir_all(&root).expect("clean up");
        if cfg!(unix) {
            assert_eq!(found, Some(tool));
        } else {
            assert_eq!(found, Some(plain.join("tool")));
        }
        assert_eq!(missing, None);
        assert_eq!(without_bin, None);
    }
}
