//! Test helper for tests that need a real PostgreSQL or Redis.
//!
//! The convention (see `docs/testing.md`): a service test asks this crate for its URL.
//!
//! - `TEST_DATABASE_URL` / `TEST_REDIS_URL` set: the test gets the URL and runs.
//! - Unset: one line on stderr says which test was skipped and why, and the test returns early.
//! - Unset while `REQUIRE_SERVICES=1`: the test fails, so CI can never skip silently.
//!
//! ```no_run
//! #[test]
//! fn counts_on_redis() {
//!     let Some(url) = test_services::redis_url("counts_on_redis") else { return };
//!     // ... connect to `url` and test ...
//! #   let _ = url;
//! }
//! ```

use std::env;

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

/// Whether `REQUIRE_SERVICES=1` is set, i.e. whether a missing service is a failure.
#[must_use]
pub fn services_required() -> bool {
    env::var(REQUIRE_VAR).is_ok_and(|v| v == "1")
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
enum Outcome {
    Run(String),
    Skip,
    Fail,
}

fn decide(value: Option<String>, required: bool) -> Outcome {
    match (value, required) {
        (Some(url), _) => Outcome::Run(url),
        (None, false) => Outcome::Skip,
        (None, true) => Outcome::Fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_url_runs_whether_or_not_required() {
        let url = "redis://127.0.0.1:6379".to_owned();
        assert_eq!(decide(Some(url.clone()), false), Outcome::Run(url.clone()));
        assert_eq!(decide(Some(url.clone()), true), Outcome::Run(url));
    }

    #[test]
    fn an_unset_url_skips_unless_required() {
        assert_eq!(decide(None, false), Outcome::Skip);
        assert_eq!(decide(None, true), Outcome::Fail);
    }
}
