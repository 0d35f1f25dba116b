//! The command-line grammar: flags, their environment variables and the TOML file, resolved
//! into [`Settings`].
//!
//! Precedence: a flag beats its environment variable, which beats the file, which beats the
//! default. Secrets are never flags (they would show in `ps`): the server secret comes from
//! `SECRET_KEY` or the file named by `SECRET_KEY_FILE`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

use crate::auth::scope::Scopes;
use crate::config::{
    ConfigError, ConnectionUrl, FailPolicy, LogFormat, Mode, RedisSettings, Settings, TlsFiles,
    parse_net,
};

/// The `secure-api` command line.
#[derive(Debug, Parser)]
#[command(
    name = "secure-api",
    version,
    about = "An HTTP API with API keys, quotas, request signing, JWT login, primality and weather.",
    after_help = "SECRETS (environment only, never flags):\n  \
        SECRET_KEY              the server secret (hex or base64, at least 32 bytes)\n  \
        SECRET_KEY_FILE         a file holding it (must not be readable by group or others)\n  \
        SECRET_KEY_FALLBACKS    earlier server secrets, comma-separated, still accepted\n  \
        API_SHARED_SECRET       the shared v0 signing secret of the original service (optional)\n  \
        API_SHARED_SECRET_FALLBACKS  earlier shared secrets, comma-separated, still accepted\n  \
        OPENWEATHER_API_KEY, OPENWEATHER_API_KEY1, ...  upstream weather keys (optional)"
)]
pub struct Cli {
    /// Settings for the server and for the admin commands.
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// What to do; without one, serve.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Manage API keys in the database.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage admin tokens in the database.
    #[command(subcommand)]
    AdminToken(AdminTokenCommand),
    /// Work on what the server secret protects.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Show the audit log of admin actions, newest first.
    Audit(AuditArgs),
}

/// `secure-api audit ...`
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Entries to show (1 to 500).
    #[arg(long, default_value_t = crate::audit::PAGE_DEFAULT)]
    pub limit: u32,
    /// Only entries older than this one (the cursor a page ends with).
    #[arg(long, value_name = "ID")]
    pub before: Option<String>,
    /// Print one JSON object (`entries` and `next`) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `secure-api secrets ...`
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// After `SECRET_KEY` was rotated (the old one in `SECRET_KEY_FALLBACKS`): seal every
    /// stored signing secret again under the current secret.
    Rotate,
}

/// `secure-api admin-token ...`
#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Create an admin token and print it once.
    Create {
        /// Who or what holds it, shown in listings.
        #[arg(long)]
        label: Option<String>,
        /// Days until it expires (default: until revoked).
        #[arg(long, value_name = "DAYS")]
        expires_in: Option<u32>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List admin tokens (never the tokens themselves).
    List {
        /// Print a JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an admin token now.
    Revoke {
        /// The admin token id.
        id: String,
    },
}

/// `secure-api keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it once.
    Create {
        /// The service that owns the key.
        #[arg(long)]
        service: String,
        /// Calls per UTC day (default: the server's default quota).
        #[arg(long)]
        daily_quota: Option<u64>,
        /// A scope the key holds (repeatable, or separated by commas): `*`, `time:read`,
        /// `prime:check`, `weather:read` or `whoami:read`. Default: the server's default scopes.
        #[arg(long = "scope", value_name = "SCOPE", value_delimiter = ',')]
        scopes: Vec<String>,
        /// Also create a signing secret; requests with this key must then be signed.
        #[arg(long)]
        signing: bool,
        /// Days until the key expires.
        #[arg(long, value_name = "DAYS")]
        expires_in: Option<u32>,
        /// Name, owner and meta.
        #[command(flatten)]
        metadata: MetadataArgs,
        /// Rate limit, monthly quota and credits.
        #[command(flatten)]
        limits: Box<LimitArgs>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never the keys themselves).
    List {
        /// Print a JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change a key: its scopes, quota, expiry, name, owner, meta, rate limit, monthly quota or
    /// credits, checked whole and written at once. Running servers apply the change within
    /// their key cache TTL.
    Update {
        /// The key id.
        id: String,
        /// The scopes the key holds from now on (repeatable, or separated by commas).
        #[arg(long = "scope", value_name = "SCOPE", value_delimiter = ',')]
        scopes: Vec<String>,
        /// Calls per UTC day from now on.
        #[arg(long)]
        daily_quota: Option<u64>,
        /// Days from now until the key expires.
        #[arg(long, value_name = "DAYS")]
        expires_in: Option<u32>,
        /// Name, owner and meta.
        #[command(flatten)]
        metadata: MetadataArgs,
        /// Rate limit (replaced whole), monthly quota and credits (a new balance, granted now).
        #[command(flatten)]
        limits: Box<LimitArgs>,
        /// Clear a setting (repeatable): the name, owner or meta, the quota (back to the
        /// server's default), the expiry (never expires), the rate limit, the monthly quota or
        /// the credits (unlimited uses).
        #[arg(long, value_name = "FIELD", value_delimiter = ',')]
        clear: Vec<Clearable>,
        /// Print the key as listed, in JSON, instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key now.
    Revoke {
        /// The key id.
        id: String,
    },
    /// Replace a key with a new one; the old one keeps working for the grace period.
    Rotate {
        /// The key id.
        id: String,
        /// Hours the old key keeps working.
        #[arg(long, default_value_t = 24)]
        grace_hours: u32,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show a key's usage: today's quota, and its calls per day (the last 30 days unless
    /// --days or --from/--to say otherwise).
    Usage {
        /// The key id.
        id: String,
        /// The last N UTC days, today included (1 to 400).
        #[arg(long, value_name = "N", conflicts_with_all = ["from", "to"])]
        days: Option<u32>,
        /// The first day, YYYY-MM-DD.
        #[arg(long, value_name = "DATE")]
        from: Option<String>,
        /// The last day, YYYY-MM-DD (default: today).
        #[arg(long, value_name = "DATE")]
        to: Option<String>,
        /// Print one JSON object, as `GET /admin/keys/{id}/usage` answers, instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// What an operator records about a key, as `keys create` and `keys update` take it.
#[derive(Debug, Clone, Default, Args)]
pub struct MetadataArgs {
    /// A display name (1 to 128 characters).
    #[arg(long)]
    pub name: Option<String>,
    /// Who the key belongs to, as an id in your systems (1 to 128 characters).
    #[arg(long)]
    pub owner: Option<String>,
    /// A JSON object of at most 4 KiB, such as '{"plan":"pro"}'.
    #[arg(long, value_name = "JSON", value_parser = parse_json)]
    pub meta: Option<serde_json::Value>,
}

/// A key's limits beside the daily quota, as `keys create` and `keys update` take them. The
/// numbers are read as the admin API reads them, so a bad one is refused in the same words.
#[derive(Debug, Clone, Default, Args)]
pub struct LimitArgs {
    /// A rate limit, CALLS/PERIOD with PERIOD second, minute, hour or day: 10/second.
    #[arg(long, value_name = "CALLS/PERIOD")]
    pub rate_limit: Option<String>,
    /// The most calls at once under --rate-limit (default: its CALLS; at most 1000000).
    #[arg(
        long,
        value_name = "N",
        requires = "rate_limit",
        allow_hyphen_values = true
    )]
    pub burst: Option<String>,
    /// Calls per UTC calendar month.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub monthly_quota: Option<String>,
    /// A balance of uses that every call spends, granted now (0 for none left until a refill).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub credits: Option<String>,
    /// Set the credits to AMOUNT at the start of each UTC day or month: 100/day, 5000/month.
    #[arg(long, value_name = "AMOUNT/INTERVAL", requires = "credits")]
    pub refill: Option<String>,
}

/// A setting `keys update --clear` clears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Clearable {
    /// The display name.
    Name,
    /// The owner.
    Owner,
    /// The meta object.
    Meta,
    /// The key's own quota: it gets the server's default.
    #[value(alias = "daily_quota")]
    DailyQuota,
    /// The expiry: the key never expires.
    Expiry,
    /// The rate limit: none.
    #[value(alias = "rate_limit")]
    RateLimit,
    /// The monthly quota: none.
    #[value(alias = "monthly_quota")]
    MonthlyQuota,
    /// The credits: unlimited uses.
    Credits,
}

fn parse_json(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

/// Settings as given by flags and environment variables; unset ones come from the file.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsArgs {
    /// A TOML file with any of these settings (snake_case names).
    #[arg(long, env = "SECURE_API_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "SECURE_API_BIND", value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
    /// Database: sqlite://FILE or postgres://...
    // Its value may hold a password: help never shows it.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Where the server secret is kept (read, or in development generated).
    #[arg(long, env = "SECRET_KEY_FILE", value_name = "FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// development or production.
    #[arg(long = "env", env = "SECURE_API_ENV", value_name = "MODE")]
    #[serde(rename = "env")]
    pub mode: Option<Mode>,
    /// Calls per UTC day for keys created without their own quota.
    #[arg(long, env = "SECURE_API_DAILY_QUOTA", value_name = "N")]
    pub default_daily_quota: Option<u64>,
    /// Scopes of keys created without their own, separated by commas (default `*`: every
    /// scope). In the file, an array.
    #[arg(long, env = "SECURE_API_DEFAULT_SCOPES", value_name = "SCOPES")]
    pub default_scopes: Option<Scopes>,
    /// Largest JSON body accepted, in bytes.
    #[arg(long, env = "SECURE_API_JSON_LIMIT", value_name = "BYTES")]
    pub json_limit: Option<usize>,
    /// Largest number `/check-prime` accepts, in bits.
    #[arg(long, env = "SECURE_API_MAX_PRIME_BITS", value_name = "BITS")]
    pub max_prime_bits: Option<u64>,
    /// Seconds a key lookup is cached; a revocation takes effect within this time.
    #[arg(long, env = "SECURE_API_KEY_CACHE_TTL", value_name = "SECS")]
    pub key_cache_ttl: Option<u64>,
    /// Seconds a request may take before the server answers 503 with a problem body.
    #[arg(long, env = "SECURE_API_REQUEST_TIMEOUT", value_name = "SECS")]
    pub request_timeout: Option<u64>,
    /// Seconds a request body may take to arrive before the server answers 408.
    #[arg(long, env = "SECURE_API_BODY_TIMEOUT", value_name = "SECS")]
    pub body_timeout: Option<u64>,
    /// Connections accepted at once (default: the open-file limit less 512).
    #[arg(long, env = "SECURE_API_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Connections one client address (IPv4, or IPv6 /64) may have open; trusted proxies are
    /// exempt.
    #[arg(long, env = "SECURE_API_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    pub max_connections_per_address: Option<usize>,
    /// Signed requests one key may have in the replay cache at once (its share; a key signing
    /// `r` requests per second needs `361 × r`).
    #[arg(long, env = "SECURE_API_REPLAY_PER_KEY", value_name = "N")]
    pub replay_per_key: Option<usize>,
    /// Password hashes running at once (each needs 19 MiB; default: half the cores, at least one).
    #[arg(long, env = "SECURE_API_HASH_CONCURRENCY", value_name = "N")]
    pub hash_concurrency: Option<usize>,
    /// Threads that test big numbers for `/check-prime` (default: one per core).
    #[arg(long, env = "SECURE_API_PRIME_THREADS", value_name = "N")]
    pub prime_threads: Option<usize>,
    /// Worker threads (default: one per core).
    #[arg(long, env = "SECURE_API_WORKERS", value_name = "N")]
    pub workers: Option<usize>,
    /// text or json.
    #[arg(long, env = "SECURE_API_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Base URL of the OpenWeather API.
    #[arg(long, env = "OPENWEATHER_BASE_URL", value_name = "URL")]
    pub openweather_base_url: Option<String>,
    /// Redis for state shared by several instances: quotas, login limits, replay nonces and
    /// the weather cache. Without it that state lives in this process.
    #[arg(long, env = "REDIS_URL", value_name = "URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key; instances of one deployment share it.
    #[arg(long, env = "SECURE_API_REDIS_PREFIX", value_name = "PREFIX")]
    pub redis_prefix: Option<String>,
    /// The most one Redis call may take, in milliseconds.
    #[arg(long, env = "SECURE_API_REDIS_TIMEOUT_MS", value_name = "MS")]
    pub redis_timeout_ms: Option<u64>,
    /// Daily quotas while Redis does not answer: open (allow uncounted) or closed (503).
    #[arg(long, env = "SECURE_API_REDIS_FAIL_QUOTA", value_name = "POLICY")]
    pub redis_fail_quota: Option<FailPolicy>,
    /// Login limits while Redis does not answer: open (this instance's limit) or closed (503).
    #[arg(long, env = "SECURE_API_REDIS_FAIL_LOGIN", value_name = "POLICY")]
    pub redis_fail_login: Option<FailPolicy>,
    /// Signed requests while Redis does not answer: open (this instance's replay cache) or
    /// closed (503).
    #[arg(long, env = "SECURE_API_REDIS_FAIL_REPLAY", value_name = "POLICY")]
    pub redis_fail_replay: Option<FailPolicy>,
    /// Proxies (IP or CIDR, comma-separated) whose `X-Forwarded-For` names the client, for the
    /// per-client login limit behind a load balancer. Without it the TCP peer is the client.
    #[arg(
        long,
        env = "SECURE_API_TRUSTED_PROXIES",
        value_name = "CIDRS",
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<String>>,
    /// A PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(
        long,
        env = "SECURE_API_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(
        long,
        env = "SECURE_API_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
}

impl SettingsArgs {
    /// Resolves flags and environment over the optional file over the defaults.
    ///
    /// # Errors
    /// [`ConfigError`] for an unreadable file or a value out of range.
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        let args = self;
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => SettingsArgs::default(),
        };
        macro_rules! pick {
            ($field:ident, $default:expr) => {
                args.$field
                    .clone()
                    .or(file.$field.clone())
                    .unwrap_or_else(|| $default)
            };
        }
        let settings = Settings {
            bind: pick!(
                bind,
                Settings::DEFAULT_BIND
                    .parse()
                    .expect("valid default address")
            ),
            database_url: ConnectionUrl::new(pick!(
                database_url,
                Settings::DEFAULT_DATABASE_URL.to_owned()
            )),
            secret_key_file: pick!(
                secret_key_file,
                PathBuf::from(Settings::DEFAULT_SECRET_KEY_FILE)
            ),
            mode: pick!(mode, Mode::Development),
            default_daily_quota: pick!(default_daily_quota, 1_000),
            default_scopes: pick!(default_scopes, Scopes::ANY),
            json_limit: pick!(json_limit, 16 * 1024),
            max_prime_bits: pick!(max_prime_bits, 4_096),
            key_cache_ttl: Duration::from_secs(pick!(key_cache_ttl, 5)),
            replay_per_key: pick!(replay_per_key, 100_000),
            request_timeout: Duration::from_secs(pick!(request_timeout, 30)),
            body_timeout: Duration::from_secs(pick!(body_timeout, 10)),
            max_connections: args.max_connections.or(file.max_connections),
            max_connections_per_address: pick!(max_connections_per_address, 256),
            hash_concurrency: pick!(hash_concurrency, default_hash_concurrency(cores())),
            prime_threads: pick!(prime_threads, cores()),
            workers: args.workers.or(file.workers),
            log_format: pick!(log_format, LogFormat::Text),
            openweather_base_url: pick!(
                openweather_base_url,
                "https://api.openweathermap.org".to_owned()
            ),
            redis: args
                .redis_url
                .clone()
                .or(file.redis_url.clone())
                .map(|url| RedisSettings {
                    url: ConnectionUrl::new(url),
                    prefix: pick!(redis_prefix, "secure-api".to_owned()),
                    timeout: Duration::from_millis(pick!(redis_timeout_ms, 250)),
                    fail_quota: pick!(redis_fail_quota, FailPolicy::Open),
                    fail_login: pick!(redis_fail_login, FailPolicy::Open),
                    fail_replay: pick!(redis_fail_replay, FailPolicy::Closed),
                }),
            trusted_proxies: args
                .trusted_proxies
                .clone()
                .or(file.trusted_proxies.clone())
                .unwrap_or_default()
                .iter()
                .map(|text| parse_net(text))
                .collect::<Option<Vec<_>>>()
                .ok_or(ConfigError::Invalid {
                    name: "trusted_proxies",
                    reason: "each entry must be an IP address or CIDR block, e.g. 10.0.0.0/8",
                })?,
            tls: match (
                args.tls_cert.clone().or(file.tls_cert.clone()),
                args.tls_key.clone().or(file.tls_key.clone()),
            ) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                (None, None) => None,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "tls_cert",
                        reason: "tls_cert and tls_key go together",
                    });
                }
            },
        };
        settings.validate()?;
        Ok(settings)
    }
}

/// The cores this process may use (1 when that cannot be read).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Password hashes at once by default: half the cores, at least one. Each hash keeps a core busy
/// for about 15 ms, and a login flood keeps every hashing thread busy. With half the cores, the
/// other half stays free for the async workers. With a thread on every core, a cheap call that
/// woke a worker often found every core busy with a hash: during a flood of unknown-user logins,
/// `/get-current-time` at 5,000 calls a second took 3.9x to 5.6x its p99 alone on two cores,
/// against 2.1x to 3.3x with one hashing thread, in alternating rounds (`docs/benchmarks.md`,
/// run 6).
fn default_hash_concurrency(cores: usize) -> usize {
    (cores / 2).max(1)
}

fn read_file(path: &Path) -> Result<SettingsArgs, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.message().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let settings = SettingsArgs::default().resolve().unwrap();
        assert_eq!(settings.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.database_url.expose(), "sqlite://secure-api.db");
        assert!(settings.redis.is_none());
        assert!(settings.tls.is_none());
        assert_eq!(settings.mode, Mode::Development);
        assert_eq!(settings.json_limit, 16 * 1024);
        assert_eq!(settings.max_prime_bits, 4096);
        assert_eq!(settings.hash_concurrency, default_hash_concurrency(cores()));
        assert_eq!(settings.prime_threads, cores());
    }

    #[test]
    fn hashing_takes_half_the_cores_and_at_least_one() {
        let by_cores: Vec<_> = [1, 2, 3, 4, 16].map(default_hash_concurrency).into();
        assert_eq!(by_cores, [1, 1, 1, 2, 8]);
    }

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            file,
            "bind = \"0.0.0.0:9000\"\nenv = \"production\"\njson_limit = 2048"
        )
        .unwrap();
        let args = SettingsArgs {
            config: Some(file.path().to_owned()),
            json_limit: Some(4096),
            ..SettingsArgs::default()
        };
        let settings = args.resolve().unwrap();
        assert_eq!(settings.bind.to_string(), "0.0.0.0:9000");
        assert_eq!(settings.mode, Mode::Production);
        assert_eq!(settings.json_limit, 4096);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "secret_key = \"inline secrets are not accepted\"").unwrap();
        let args = SettingsArgs {
            config: Some(file.path().to_owned()),
            ..SettingsArgs::default()
        };
        assert!(matches!(args.resolve(), Err(ConfigError::Parse { .. })));

        let args = SettingsArgs {
            max_prime_bits: Some(1),
            ..SettingsArgs::default()
        };
        assert!(matches!(
            args.resolve(),
            Err(ConfigError::Invalid {
                name: "max_prime_bits",
                ..
            })
        ));
    }

    #[test]
    fn redis_settings_default_to_reasoned_fail_policies() {
        let args = SettingsArgs {
            redis_url: Some("redis://127.0.0.1:6379".to_owned()),
            redis_fail_login: Some(FailPolicy::Closed),
            ..SettingsArgs::default()
        };
        let redis = args.resolve().unwrap().redis.unwrap();
        assert_eq!(redis.prefix, "secure-api");
        assert_eq!(redis.timeout, Duration::from_millis(250));
        assert_eq!(redis.fail_quota, FailPolicy::Open);
        assert_eq!(redis.fail_login, FailPolicy::Closed);
        assert_eq!(redis.fail_replay, FailPolicy::Closed);

        for (name, args) in [
            (
                "redis_url",
                SettingsArgs {
                    redis_url: Some("http://127.0.0.1:6379".to_owned()),
                    ..SettingsArgs::default()
                },
            ),
            (
                "redis_prefix",
                SettingsArgs {
                    redis_url: Some("redis://127.0.0.1".to_owned()),
                    redis_prefix: Some("a b".to_owned()),
                    ..SettingsArgs::default()
                },
            ),
            (
                "redis_timeout_ms",
                SettingsArgs {
                    redis_url: Some("redis://127.0.0.1".to_owned()),
                    redis_timeout_ms: Some(0),
                    ..SettingsArgs::default()
                },
            ),
            (
                "tls_cert",
                SettingsArgs {
                    tls_cert: Some(PathBuf::from("cert.pem")),
                    ..SettingsArgs::default()
                },
            ),
        ] {
            assert!(
                matches!(args.resolve(), Err(ConfigError::Invalid { name: n, .. }) if n == name),
                "{name}"
            );
        }
    }

    #[test]
    fn trusted_proxies_must_be_cidr_blocks() {
        let args = SettingsArgs {
            trusted_proxies: Some(vec!["10.0.0.0/8".to_owned(), "nonsense".to_owned()]),
            ..SettingsArgs::default()
        };
        assert!(matches!(
            args.resolve(),
            Err(ConfigError::Invalid {
                name: "trusted_proxies",
                ..
            })
        ));
    }

    #[test]
    fn the_cli_parses_key_commands() {
        let cli = Cli::try_parse_from([
            "secure-api",
            "keys",
            "create",
            "--service",
            "billing",
            "--daily-quota",
            "50",
            "--signing",
            "--json",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Keys(KeysCommand::Create {
                daily_quota: Some(50),
                signing: true,
                json: true,
                ..
            }))
        ));
    }
}
