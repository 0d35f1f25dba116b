//! The typed settings the server runs with, and the ranges they must be in. The command line,
//! the environment and the TOML file that produce them are `cli::args`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;
use ipnet::IpNet;
use serde::Deserialize;

use crate::auth::scope::Scopes;

/// Whether missing configuration may be filled in for convenience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A missing server secret is generated once into a 0600 file.
    Development,
    /// A missing or weak server secret stops start-up.
    Production,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// What a shared-state concern does while Redis does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FailPolicy {
    /// Keep serving: quotas allow the call uncounted; login limits and the replay cache fall
    /// back to this instance's memory.
    Open,
    /// Refuse with 503 and `Retry-After` until Redis answers again.
    Closed,
}

impl FailPolicy {
    /// `open` or `closed`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

/// A database or Redis URL. Its `Debug` and `Display` hide the password, so a URL can sit in
/// settings that get logged or printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionUrl(String);

impl ConnectionUrl {
    /// Wraps `url`.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its password, for connecting only.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `[redacted]`: in its user information, and in a
    /// query parameter that may carry one (`?pass=` of a Redis socket URL, `?password=` of a
    /// PostgreSQL one).
    #[must_use]
    pub fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.0.split_once("://") else {
            return self.0.clone();
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let tail = redacted_query(tail);
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
                let hidden = if userinfo.contains(':') || user.is_empty() {
                    format!("{user}:[redacted]")
                } else {
                    // A lone userinfo is often a token (`redis://token@host`): hide it too.
                    "[redacted]".to_owned()
                };
                format!("{scheme}://{hidden}@{host}{tail}")
            }
            None => format!("{scheme}://{authority}{tail}"),
        }
    }
}

/// `tail` (a URL's path, query and fragment) with the value of every query parameter whose
/// name, in any case, contains `pass`, `pwd`, `token`, `secret` or `key` (`pass`, `password`,
/// `sslpassword`, `auth_token`, ...) replaced by `[redacted]`.
fn redacted_query(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let (query, fragment) = query
        .split_once('#')
        .map_or((query, None), |(query, fragment)| (query, Some(fragment)));
    let secret = |name: &str| {
        let name = name.to_ascii_lowercase();
        ["pass", "pwd", "token", "secret", "key"]
            .iter()
            .any(|word| name.contains(word))
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if secret(name) => format!("{name}=[redacted]"),
            _ => pair.to_owned(),
        })
        .collect();
    let mut out = format!("{path}?{}", pairs.join("&"));
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

impl fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectionUrl({})", self.redacted())
    }
}

impl fmt::Display for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Capacity of an in-memory replay cache: signatures seen in the last 5 minutes; no key's
/// share may be larger.
pub const REPLAY_CAPACITY: usize = 1_000_000;

/// Why the settings could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for these settings.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid setting {name}: {reason}")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// Why.
        reason: &'static str,
    },
}

/// The resolved settings the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Database URL.
    pub database_url: ConnectionUrl,
    /// Server secret file.
    pub secret_key_file: PathBuf,
    /// Development or production.
    pub mode: Mode,
    /// Default calls per UTC day per key.
    pub default_daily_quota: u64,
    /// Default scopes of a new key.
    pub default_scopes: Scopes,
    /// Largest JSON body, bytes.
    pub json_limit: usize,
    /// Largest prime candidate, bits.
    pub max_prime_bits: u64,
    /// Key lookup cache lifetime.
    pub key_cache_ttl: Duration,
    /// Signed requests one key may have in the replay cache at once.
    pub replay_per_key: usize,
    /// Request timeout.
    pub request_timeout: Duration,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
    /// Connections accepted at once; `None` for the open-file limit less a reserve.
    pub max_connections: Option<usize>,
    /// Connections one client address may have open.
    pub max_connections_per_address: usize,
    /// Concurrent password hashes.
    pub hash_concurrency: usize,
    /// Threads testing big numbers.
    pub prime_threads: usize,
    /// Worker threads.
    pub workers: Option<usize>,
    /// Log format.
    pub log_format: LogFormat,
    /// OpenWeather base URL.
    pub openweather_base_url: String,
    /// Redis for shared state, if any.
    pub redis: Option<RedisSettings>,
    /// Certificate chain and key files for HTTPS, if set.
    pub tls: Option<TlsFiles>,
    /// Proxies trusted to name the client in `X-Forwarded-For`.
    pub trusted_proxies: Vec<IpNet>,
}

/// An address block such as `10.0.0.0/8` or `::1/128`; a bare address is a block of one.
#[must_use]
pub fn parse_net(text: &str) -> Option<IpNet> {
    let text = text.trim();
    if text.contains('/') {
        text.parse().ok()
    } else {
        text.parse::<IpAddr>().ok().map(IpNet::from)
    }
}

/// How the server uses Redis.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// The Redis URL.
    pub url: ConnectionUrl,
    /// Prefix of every key.
    pub prefix: String,
    /// Limit on each call.
    pub timeout: Duration,
    /// Daily quotas without Redis.
    pub fail_quota: FailPolicy,
    /// Login limits without Redis.
    pub fail_login: FailPolicy,
    /// Replay checks without Redis.
    pub fail_replay: FailPolicy,
}

/// PEM files for HTTPS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

impl Settings {
    /// Default bind address.
    pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
    /// Default database.
    pub const DEFAULT_DATABASE_URL: &str = "sqlite://secure-api.db";
    /// Default secret file.
    pub const DEFAULT_SECRET_KEY_FILE: &str = "secure-api.secret";

    /// Checks every value is in its range.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first setting out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |name, reason| Err(ConfigError::Invalid { name, reason });
        if self.default_daily_quota == 0 {
            return invalid("default_daily_quota", "must be at least 1");
        }
        if !(64..=1024 * 1024).contains(&self.json_limit) {
            return invalid("json_limit", "must be between 64 bytes and 1 MiB");
        }
        if !(2..=65_536).contains(&self.max_prime_bits) {
            return invalid("max_prime_bits", "must be between 2 and 65536");
        }
        if self.hash_concurrency == 0 {
            return invalid("hash_concurrency", "must be at least 1");
        }
        if self.prime_threads == 0 {
            return invalid("prime_threads", "must be at least 1");
        }
        if !(1..=REPLAY_CAPACITY).contains(&self.replay_per_key) {
            return invalid("replay_per_key", "must be between 1 and 1000000");
        }
        if self.request_timeout.is_zero() {
            return invalid("request_timeout", "must be at least 1 second");
        }
        if self.body_timeout.is_zero() {
            return invalid("body_timeout", "must be at least 1 second");
        }
        if self.max_connections == Some(0) {
            return invalid("max_connections", "must be at least 1");
        }
        if self.max_connections_per_address == 0 {
            return invalid("max_connections_per_address", "must be at least 1");
        }
        if self.workers == Some(0) {
            return invalid("workers", "must be at least 1");
        }
        if let Some(redis) = &self.redis {
            if !(1..=10_000).contains(&redis.timeout.as_millis()) {
                return invalid("redis_timeout_ms", "must be between 1 and 10000");
            }
            let prefix_ok = !redis.prefix.is_empty()
                && redis.prefix.len() <= 64
                && redis
                    .prefix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
            if !prefix_ok {
                return invalid("redis_prefix", "must be 1 to 64 letters, digits or - _ . :");
            }
            let scheme = redis.url.expose().split("://").next().unwrap_or_default();
            if !matches!(scheme, "redis" | "rediss" | "redis+unix" | "unix") {
                return invalid("redis_url", "must start with redis:// (or rediss://)");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_urls_never_show_their_password() {
        for (url, shown) in [
            (
                "postgres://app:hunter2@db.internal:5432/keys?sslmode=require",
                "postgres://app:[redacted]@db.internal:5432/keys?sslmode=require",
            ),
            (
                "redis://:hunter2@cache:6379/0",
                "redis://:[redacted]@cache:6379/0",
            ),
            (
                "redis://hunter2@cache:6379",
                "redis://[redacted]@cache:6379",
            ),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("sqlite://secure-api.db", "sqlite://secure-api.db"),
            (
                "redis+unix:///run/r.sock?db=0&pass=hunter2#x",
                "redis+unix:///run/r.sock?db=0&pass=[redacted]#x",
            ),
            (
                "unix:///run/r.sock?pass=hunter2",
                "unix:///run/r.sock?pass=[redacted]",
            ),
            (
                "postgres://app@db/keys?sslmode=require&password=hunter2",
                "postgres://[redacted]@db/keys?sslmode=require&password=[redacted]",
            ),
            (
                "postgres://db/keys?PASSWORD=hunter2&sslpassword=hunter2",
                "postgres://db/keys?PASSWORD=[redacted]&sslpassword=[redacted]",
            ),
        ] {
            let url = ConnectionUrl::new(url);
            assert_eq!(url.redacted(), shown);
            assert!(!format!("{url:?} {url}").contains("hunter2"));
        }
    }

    #[test]
    fn trusted_proxies_are_cidr_blocks() {
        let net = parse_net("10.0.0.0/8").unwrap();
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert!(net.contains(&ip("10.200.3.4")));
        assert!(!net.contains(&ip("11.0.0.1")));
        assert!(!net.contains(&ip("::1")));
        let one = parse_net(" 192.0.2.7 ").unwrap();
        assert!(one.contains(&ip("192.0.2.7")));
        assert!(!one.contains(&ip("192.0.2.8")));
        let v6 = parse_net("2001:db8::/32").unwrap();
        assert!(v6.contains(&ip("2001:db8:1::9")));
        assert!(parse_net("0.0.0.0/0").unwrap().contains(&ip("203.0.113.9")));
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0/8",
            "host",
            "::1/129",
            "1.2.3.4/+1",
        ] {
            assert!(parse_net(bad).is_none(), "{bad}");
        }
    }
}
