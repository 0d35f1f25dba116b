//! Building the application: state from settings, the HTTP server, background tasks.
//!
//! `main` and the tests build the same [`Application`]; tests inject the environment and the
//! clock and bind port 0.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::net::TcpListener;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use apikey_gen::KeyHasher;
use quota::{ForwardedIp, Policy, Snapshot};
use secret_key::{Keyring, Sealer, SecretKey, SecretLoader};
use weather_keypool::{KeyPool, WeatherClient, WeatherClientBuilder};

use crate::audit::{Actor, AuditLog};
use crate::auth::accounts::Accounts;
use crate::auth::admin::{ADMIN_PREFIX, AdminTokens, CreatedAdminToken, NewAdminToken};
use crate::auth::api_key::{KeyTable, key_auth};
use crate::auth::chain::ApiAuth;
use crate::auth::jwt::Tokens;
use crate::auth::password::Passwords;
use crate::auth::signed::{SigningKeys, signature_auth};
use crate::clock::Clock;
use crate::config::{FailPolicy, Mode, RedisSettings, Settings, TlsFiles};
use crate::connections::RequestTimeout;
use crate::connections::{self, BodyTimeout, PerAddress};
use crate::extract::{self, BodyLimit};
use crate::journal::{self, Journal};
use crate::keys::{CreatedKey, KEY_PREFIX, KeyDefaults, KeyManager, NewKey};
use crate::limits::{
    self, Concern, KeyCounters, KeyQuota, LIFETIME_CREDITS_SUBJECT, UsernameLimit,
};
use crate::routes;
use crate::routes::health::Readiness;
use crate::routes::prime::{PRIME_QUEUE_TIMEOUT, PrimePool};
use crate::shared::{self, Redis, SharedWeather};
use crate::state::Services;
use crate::store::Db;
use crate::usage::UsageHistory;

/// The environment the server reads secrets and upstream keys from: the process's, or a
/// map that tests inject instead of mutating the process environment.
#[derive(Clone, Default)]
pub struct Env(Option<Arc<HashMap<String, OsString>>>);

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Env(injected)"
        } else {
            "Env(process)"
        })
    }
}

impl Env {
    /// The process environment.
    #[must_use]
    pub fn process() -> Self {
        Self(None)
    }

    /// A fixed set of variables.
    #[must_use]
    pub fn from_map(vars: HashMap<String, OsString>) -> Self {
        Self(Some(Arc::new(vars)))
    }

    /// The value of `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<OsString> {
        match &self.0 {
            Some(map) => map.get(name).cloned(),
            None => std::env::var_os(name),
        }
    }

    /// Every variable whose name and value are UTF-8.
    #[must_use]
    pub fn vars(&self) -> Vec<(String, String)> {
        let utf8 = |(k, v): (String, OsString)| v.into_string().ok().map(|v| (k, v));
        match &self.0 {
            Some(map) => map
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .filter_map(utf8)
                .collect(),
            None => std::env::vars_os()
                .filter_map(|(k, v)| k.into_string().ok().map(|k| (k, v)))
                .filter_map(utf8)
                .collect(),
        }
    }
}

/// The process environment.
#[must_use]
pub fn process_env() -> Env {
    Env::process()
}

/// Logins and registrations allowed per minute per client address.
pub const LOGIN_LIMIT_PER_MINUTE: u64 = 5;
/// How often the server's upkeep runs: metrics of the process, and purging expired token
/// revocations.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);
/// The name of the quota snapshot row that servers saved before the usage table (moved into it
/// at the first start).
pub const QUOTA_SNAPSHOT: &str = "daily-quota";
/// How many days of quota usage the database keeps.
pub const USAGE_DAYS: i64 = 90;
/// Access token lifetime.
pub const ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// Refresh token lifetime.
pub const REFRESH_TTL: Duration = Duration::from_secs(30 * 86_400);

/// Why the server could not start. Each names what to fix; none contains a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// The server secret is missing or weak.
    #[error("server secret: {0}")]
    Secret(#[from] secret_key::Error),
    /// `API_SHARED_SECRET` or one of its fallbacks (named) is weak.
    #[error("{0}: {1}")]
    SharedSecret(&'static str, secret_key::Error),
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The API key format could not be set up.
    #[error("api keys: {0}")]
    Keys(#[from] crate::keys::KeyAdminError),
    /// A component could not be built.
    #[error("{0}")]
    Build(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

impl From<crate::auth::admin::AdminTokenError> for StartupError {
    fn from(error: crate::auth::admin::AdminTokenError) -> Self {
        Self::Build(format!("admin tokens: {error}"))
    }
}

/// What a start created because it was missing: an admin token when none was active, and a
/// demo key on a database that never had a key. Printed once, never stored in clear.
pub struct FirstStart {
    /// An admin token for `/admin/...`, when no admin token was active.
    pub admin_token: Option<CreatedAdminToken>,
    /// A demo API key, when the database had no key.
    pub demo_key: Option<CreatedKey>,
}

impl fmt::Debug for FirstStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FirstStart")
            .field("admin_token", &self.admin_token)
            .field("demo_key", &self.demo_key)
            .finish()
    }
}

impl FirstStart {
    /// The banner printed on start: the only time these are shown.
    #[must_use]
    pub fn banner(&self, addr: std::net::SocketAddr) -> String {
        let mut lines = vec![
            "==================== secure-api: first start ====================".to_owned(),
            "Save these now: they are shown once and stored only as hashes.".to_owned(),
            String::new(),
        ];
        if let Some(admin) = &self.admin_token {
            lines.push(format!("Admin token (for /admin/keys):  {}", admin.token));
            lines.push(format!(
                "Admin page (sign in with it):   http://{addr}/admin/ui"
            ));
            if self.demo_key.is_none() {
                lines.push(
                    "(made because no admin token was active; `secure-api admin-token list`)"
                        .to_owned(),
                );
            }
        }
        if let Some(demo) = &self.demo_key {
            lines.push(format!(
                "Demo API key (service {}, {} calls/day):  {}",
                demo.service, demo.daily_quota, demo.key
            ));
            lines.push(String::new());
            lines.push(format!(
                "Try:  curl -X POST -H 'Authorization: {}' http://{addr}/get-current-time",
                demo.key
            ));
        }
        lines.push("=================================================================".to_owned());
        lines.join("\n")
    }
}

/// `API_SHARED_SECRET`, then each of `API_SHARED_SECRET_FALLBACKS` (comma-separated), as v0
/// signing secrets: v0 signatures verify with any of them, so clients move to a new shared
/// secret one by one. Each is judged like the server secret and used as its text, as the
/// original did. Fallbacks without a current secret are refused.
fn shared_secrets(env: &Env) -> Result<Vec<request_signing::Secret>, StartupError> {
    let text = |name: &str| {
        env.get(name)
            .map(|value| {
                value
                    .into_string()
                    .map_err(|_| StartupError::Build(format!("{name} is not valid UTF-8")))
            })
            .transpose()
    };
    let current = text("API_SHARED_SECRET")?;
    let fallbacks = text("API_SHARED_SECRET_FALLBACKS")?;
    let fallbacks = fallbacks
        .iter()
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let Some(current) = current else {
        return match fallbacks.count() {
            0 => Ok(Vec::new()),
            _ => Err(StartupError::Build(
                "API_SHARED_SECRET_FALLBACKS is set without API_SHARED_SECRET".to_owned(),
            )),
        };
    };
    let mut secrets = Vec::new();
    for (name, text) in std::iter::once(("API_SHARED_SECRET", current.as_str()))
        .chain(fallbacks.map(|text| ("API_SHARED_SECRET_FALLBACKS", text)))
    {
        SecretKey::from_text(text).map_err(|error| StartupError::SharedSecret(name, error))?;
        secrets.push(request_signing::Secret::new(text.as_bytes().to_vec()));
    }
    Ok(secrets)
}

/// The keys derived from the server secret and its fallbacks (`SECRET_KEY_FALLBACKS`): each
/// purpose has a subkey of its own, so that signing with the current secret and accepting the
/// fallbacks works for every use.
struct DerivedKeys {
    /// JWTs: signed with the current subkey, verified with any.
    tokens: Tokens,
    /// The API key pepper of the current secret.
    pepper: SecretKey,
    /// The API key hashers of the fallbacks' peppers, for keys not re-hashed yet.
    fallback_hashers: Vec<KeyHasher>,
    /// Signing secrets: sealed with the current subkey, opened with any.
    sealer: Sealer,
}

impl DerivedKeys {
    fn of(ring: &Keyring) -> Result<Self, StartupError> {
        let jwt = ring.derive("secure-api/jwt-hs256/v1")?;
        // A JWT's `kid`: 6 bytes of yet another subkey, naming the key without revealing it.
        let kid = |key: &SecretKey| -> Result<String, StartupError> {
            Ok(hex::encode(
                &key.derive("secure-api/jwt-kid/v1")?.expose_secret()[..6],
            ))
        };
        let mut tokens = Tokens::new(
            &kid(jwt.current())?,
            jwt.current().expose_secret(),
            ACCESS_TTL,
            REFRESH_TTL,
        );
        for key in jwt.fallbacks() {
            tokens = tokens.with_fallback(&kid(key)?, key.expose_secret());
        }
        let pepper = ring.derive("secure-api/apikey-pepper/v1")?;
        let fallback_hashers = pepper
            .fallbacks()
            .iter()
            .map(|key| KeyHasher::hmac_sha256(key.expose_secret()))
            .collect::<Result<_, _>>()
            .map_err(build_error)?;
        let sealer = ring.sealer("secure-api/signing-secret-seal/v1")?;
        Ok(Self {
            tokens,
            pepper: pepper.current().clone(),
            fallback_hashers,
            sealer,
        })
    }
}

/// What the services are built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Serving requests: quota charges are journaled, and the charge logs a crash left are
    /// folded first.
    Serve,
    /// An admin command beside a running server: nothing is charged, and the server's charge
    /// log is left to it.
    Manage,
}

/// Loads the secret and builds every service.
pub async fn build_services(
    settings: &Settings,
    env: &Env,
    clock: Clock,
    purpose: Purpose,
) -> Result<Services, StartupError> {
    let mode = match settings.mode {
        Mode::Development => secret_key::Mode::Development,
        Mode::Production => secret_key::Mode::Production,
    };
    let (ring, source) = SecretLoader::new(mode)
        .file(&settings.secret_key_file)
        .load_keyring_with_env(|name| env.get(name))?;
    tracing::info!(
        source = %source,
        fallbacks = ring.fallbacks().len(),
        "server secret loaded"
    );
    let derived = DerivedKeys::of(&ring)?;

    let shared_secrets = shared_secrets(env)?;

    let db = Db::connect(settings.database_url.expose()).await?;
    let colliding = db.colliding_usernames().await?;
    if !colliding.is_empty() {
        tracing::warn!(
            usernames = ?colliding,
            "these accounts were registered before usernames were case-insensitive and differ \
             only in case: each logs in with its exact username, and no new account can take \
             any spelling of it; rename or delete all but one (docs/operations.md)"
        );
    }
    let (concurrency, queue) = (settings.hash_concurrency, settings.request_timeout);
    let passwords = web::block(move || Passwords::new(concurrency, queue))
        .await
        .map_err(build_error)?
        .map_err(build_error)?;
    let DerivedKeys {
        tokens,
        pepper,
        fallback_hashers,
        sealer,
    } = derived;
    let quota_default = settings.default_daily_quota;
    let audit = AuditLog::new(db.clone(), clock.clone());
    let keys = KeyManager::new(
        db.clone(),
        clock.clone(),
        audit.clone(),
        pepper.expose_secret(),
        sealer.clone(),
        KeyDefaults {
            daily_quota: quota_default,
            scopes: settings.default_scopes,
        },
    )?;
    let redis = match &settings.redis {
        Some(redis_settings) => Some(connect_redis(redis_settings).await?),
        None => None,
    };

    let ttl = settings.key_cache_ttl;
    let signing_keys = SigningKeys::new(
        db.clone(),
        keys.config().clone(),
        sealer,
        quota_default,
        clock.clone(),
        ttl,
        shared_secrets,
    )
    .with_fallback_hashers(fallback_hashers.clone());
    let replay = shared::replay_cache(redis.as_ref(), settings.replay_per_key);
    let fails_closed = settings
        .redis
        .as_ref()
        .is_some_and(|r| r.fail_replay == FailPolicy::Closed);
    let api_auth = ApiAuth {
        signature: signature_auth(
            signing_keys.clone(),
            replay,
            clock.clone(),
            settings.json_limit,
            fails_closed,
        )
        .map_err(build_error)?,
        key: key_auth(
            keys.config().clone(),
            fallback_hashers.clone(),
            KeyTable::new(db.clone(), quota_default),
            clock.clone(),
            ttl,
        )
        .map_err(build_error)?,
        signing_keys,
    };

    let daily = NonZeroU64::new(quota_default)
        .ok_or_else(|| StartupError::Build("default_daily_quota must be at least 1".to_owned()))?;
    let daily = Policy::per_day(daily);
    // In memory, every charge is on record (`journal`) before its call is answered.
    let journal = (redis.is_none() && purpose == Purpose::Serve)
        .then(|| Journal::start(db.clone(), clock.clone()))
        .transpose()
        .map_err(build_error)?;
    let usage = UsageHistory::new(db.clone(), clock.clone());
    let quota = KeyQuota::new(
        limits::counters(daily, &clock, redis.as_ref(), Concern::Quota).map_err(build_error)?,
        KeyCounters::new(&clock, redis.as_ref()).map_err(build_error)?,
        clock.clone(),
        journal,
        usage.clone(),
    )
    .map_err(build_error)?;
    let login_limits = limits::login_limits(
        LOGIN_LIMIT_PER_MINUTE,
        &clock,
        redis.as_ref(),
        &ForwardedIp::new(settings.trusted_proxies.iter().copied()),
    )
    .map_err(build_error)?;
    let username_limit = UsernameLimit::new(&clock, redis.as_ref()).map_err(build_error)?;
    if !quota.is_shared() {
        restore_quota(&db, &quota, &clock).await?;
    }

    Ok(Services {
        admin_tokens: web::Data::new(AdminTokens::new(
            db.clone(),
            keys.config(),
            fallback_hashers,
            clock.clone(),
            audit.clone(),
        )?),
        audit: web::Data::new(audit),
        accounts: web::Data::new(Accounts::new(db.clone(), passwords, tokens, clock.clone())),
        keys: web::Data::new(keys),
        api_auth: web::Data::new(api_auth),
        quota: web::Data::new(quota),
        usage: web::Data::new(usage),
        login_limits,
        username_limit: web::Data::new(username_limit),
        weather_cache: web::Data::new(SharedWeather::new(redis.clone())),
        readiness: web::Data::new(Readiness::new(db.clone(), redis)),
        prime_limits: web::Data::new(primality::Limits::new(settings.max_prime_bits)),
        primes: web::Data::new(
            PrimePool::new(settings.prime_threads, PRIME_QUEUE_TIMEOUT).map_err(build_error)?,
        ),
        request_timeout: RequestTimeout(settings.request_timeout),
        per_address: PerAddress::new(
            settings.max_connections_per_address,
            &settings.trusted_proxies,
        ),
        body_timeout: BodyTimeout(settings.body_timeout),
        clock: web::Data::new(clock),
        db,
    })
}

fn build_error(error: impl fmt::Display) -> StartupError {
    StartupError::Build(error.to_string())
}

/// The Redis client for `settings`, with its fail policies logged and a warning when Redis
/// evicts keys.
async fn connect_redis(settings: &RedisSettings) -> Result<Redis, StartupError> {
    let redis = Redis::new(settings).map_err(build_error)?;
    tracing::info!(
        url = %settings.url,
        prefix = %settings.prefix,
        quota = settings.fail_quota.as_str(),
        login = settings.fail_login.as_str(),
        replay = settings.fail_replay.as_str(),
        "shared state on Redis (fail policies)"
    );
    if let Some(policy) = redis.evicting_policy().await {
        tracing::warn!(
            %policy,
            "Redis evicts keys when full: quotas may be under-counted and replayed \
             signatures accepted; set maxmemory-policy noeviction"
        );
    }
    Ok(redis)
}

/// Creates an admin token whenever none is active (whatever else the database holds), and a
/// demo key on a database that never had a key; `None` when neither was needed.
pub async fn first_start(services: &Services) -> Result<Option<FirstStart>, StartupError> {
    let admin_token = if services.admin_tokens.any_active().await? {
        None
    } else {
        let new = NewAdminToken {
            label: Some("first start".to_owned()),
            expires_in_days: None,
        };
        Some(
            services
                .admin_tokens
                .create(&new, &Actor::first_start())
                .await?,
        )
    };
    let demo_key = if services.db.count_keys().await? == 0 {
        let demo = NewKey {
            service: "demo".to_owned(),
            ..NewKey::default()
        };
        Some(services.keys.create(&demo, &Actor::first_start()).await?)
    } else {
        None
    };
    if admin_token.is_none() && demo_key.is_none() {
        return Ok(None);
    }
    Ok(Some(FirstStart {
        admin_token,
        demo_key,
    }))
}

/// Counts today's stored quota usage into the in-memory counters, and deletes the usage of
/// days older than [`USAGE_DAYS`]. A snapshot saved by a server from before the usage table is
/// first moved into it.
async fn restore_quota(db: &Db, quota: &KeyQuota, clock: &Clock) -> Result<(), StartupError> {
    if let Some((taken_at, data)) = db.load_snapshot(QUOTA_SNAPSHOT).await? {
        match serde_json::from_str::<Snapshot>(&data) {
            Ok(snapshot) => {
                let rows: Vec<_> = snapshot
                    .fixed_windows()
                    .map(|(subject, start, used)| {
                        let day = i64::try_from(start / 86_400).unwrap_or(i64::MAX);
                        (subject.to_owned(), day, used)
                    })
                    .collect();
                db.carry_over_snapshot(QUOTA_SNAPSHOT, &rows).await?;
                tracing::info!(
                    keys = rows.len(),
                    taken_at,
                    "saved quota usage moved to the usage table"
                );
            }
            // Kept, for whoever can read it.
            Err(e) => tracing::error!(
                error = %e,
                "the saved quota snapshot is unreadable: not counted, and kept"
            ),
        }
    }
    let today = journal::today(clock);
    // This month's days: today's for the daily quotas, all of them for the monthly ones and
    // for credits refilled monthly; and every lifetime balance, whatever its age.
    let month_start = quota::Window::Month
        .bounds(u64::try_from(today).unwrap_or(0) * 86_400)
        .0
        .div_euclid(86_400);
    let month_start = i64::try_from(month_start).unwrap_or(today);
    let usage = db.quota_usage_between(month_start, today).await?;
    let lifetime = db.quota_usage_total(LIFETIME_CREDITS_SUBJECT).await?;
    let restored = quota.restore(today, month_start, &usage, &lifetime);
    tracing::info!(counters = restored, "quota usage restored");
    let purged = db
        .purge_quota_usage(today - USAGE_DAYS, LIFETIME_CREDITS_SUBJECT)
        .await?;
    if purged > 0 {
        tracing::info!(
            rows = purged,
            days = USAGE_DAYS,
            "older quota usage deleted"
        );
    }
    Ok(())
}

/// The weather client settings, from the upstream keys in `env`. `None` (with one error
/// line in the log) when no key is configured: `/weather` then answers 500.
pub fn weather_settings(
    settings: &Settings,
    env: &Env,
) -> Result<Option<WeatherClientBuilder>, StartupError> {
    match KeyPool::builder().build_from_vars(env.vars()) {
        Ok(pool) => {
            tracing::info!(keys = pool.len(), "OpenWeather keys configured");
            let builder = WeatherClient::builder(Arc::new(pool))
                .base_url(&settings.openweather_base_url)
                .map_err(|e| StartupError::Build(format!("OPENWEATHER_BASE_URL: {e}")))?
                .observer(|fingerprint, outcome| {
                    crate::observe::weather_upstream(fingerprint.to_string(), outcome.as_str());
                });
            Ok(Some(builder))
        }
        Err(weather_keypool::Error::NoKeysConfigured) => {
            tracing::error!(
                "no OpenWeather API key configured (set OPENWEATHER_API_KEY): /weather answers 500"
            );
            Ok(None)
        }
        Err(e) => Err(StartupError::Build(format!("OpenWeather keys: {e}"))),
    }
}

/// A built server, bound and ready to run.
pub struct Application {
    server: Server,
    port: u16,
    is_tls: bool,
    services: Services,
    first_start: Option<FirstStart>,
}

impl fmt::Debug for Application {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// The rustls configuration for `files`: the PEM certificate chain and private key, ring
/// provider, TLS 1.2 and 1.3, HTTP/1.1.
pub fn load_tls(files: &TlsFiles) -> Result<rustls::ServerConfig, StartupError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let tls_error = |what: String| StartupError::Build(format!("TLS: {what}"));
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| tls_error(format!("certificate {}: {e}", files.cert.display())))?;
    if certs.is_empty() {
        return Err(tls_error(format!(
            "certificate {}: no certificate in the file",
            files.cert.display()
        )));
    }
    // The error names the file, never its contents.
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| tls_error(format!("private key {}: {e}", files.key.display())))?;
    warn_if_readable_by_others(&files.key);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            tls_error(format!(
                "the private key {} does not fit the certificate {}: {e}",
                files.key.display(),
                files.cert.display()
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(file = %path.display(), "the TLS private key is readable by group or others; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &std::path::Path) {}

impl Application {
    /// Builds the server from settings, the process environment and the system clock.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with(settings, process_env(), Clock::system()).await
    }

    /// Builds the server with an injected environment and clock (tests).
    pub async fn build_with(
        settings: Settings,
        env: Env,
        clock: Clock,
    ) -> Result<Self, StartupError> {
        let addr = settings.bind;
        let workers = settings.workers;
        let fd_limit = connections::raise_fd_limit();
        let max_connections = connections::connection_cap(settings.max_connections, fd_limit);
        let per_worker = (max_connections
            / workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)))
        .max(1);
        tracing::info!(
            open_file_limit = fd_limit,
            max_connections,
            per_address = settings.max_connections_per_address,
            body_timeout_s = settings.body_timeout.as_secs(),
            "connection limits"
        );
        let json_limit = settings.json_limit;
        let tls = settings.tls.as_ref().map(load_tls).transpose()?;
        let weather = weather_settings(&settings, &env)?;
        crate::observe::recorder();
        crate::observe::hide_secrets_in_paths(&[KEY_PREFIX, ADMIN_PREFIX]);
        // Bound first: a second server on the same address fails before it touches the
        // database (and its charge log).
        let listener = TcpListener::bind(addr).map_err(|source| StartupError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: addr.to_string(),
                source,
            })?
            .port();
        let services = build_services(&settings, &env, clock, Purpose::Serve).await?;
        let first_start = first_start(&services).await?;

        let shared = services.clone();
        let mut server = HttpServer::new(move || {
            let mut app = App::new().configure(|cfg| shared.register(cfg));
            // awc's client is not `Send`: one per worker, sharing the pool and the cache.
            if let Some(weather) = &weather {
                app = app.app_data(web::Data::new(weather.build()));
            }
            app.app_data(BodyLimit(json_limit))
                .app_data(web::PayloadConfig::new(json_limit))
                .app_data(web::QueryConfig::default().error_handler(extract::query_error))
                .app_data(web::PathConfig::default().error_handler(extract::path_error))
                .wrap(from_fn(connections::guard))
                .wrap(from_fn(crate::observe::observe_request))
                .configure(|cfg| routes::configure(cfg, &shared.api_auth, &shared.login_limits))
        })
        .on_connect(connections::on_connect(&services.per_address))
        .max_connections(per_worker)
        .client_request_timeout(Duration::from_secs(5))
        .client_disconnect_timeout(Duration::from_secs(2))
        // A client that closes its side has gone: the connection ends, and with it the request
        // being served, whose work stops (a big prime test between rounds, uncharged). By
        // default actix-web would finish the request for nobody, as for a client that only
        // half-closes to say it will send no more; HTTP/1.1 clients do not do that.
        .h1_allow_half_closed(false)
        .shutdown_timeout(30);
        if let Some(workers) = workers {
            server = server.workers(workers);
        }
        let is_tls = tls.is_some();
        let server = match tls {
            Some(config) => server.listen_rustls_0_23(listener, config),
            None => server.listen(listener),
        }
        .map_err(|source| StartupError::Bind {
            addr: addr.to_string(),
            source,
        })?
        .run();
        Ok(Self {
            server,
            port,
            is_tls,
            services,
            first_start,
        })
    }

    /// The port the server listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server speaks HTTPS.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.is_tls
    }

    /// A handle that stops the server gracefully (`handle.stop(true)`).
    #[must_use]
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The services (tests use them to reach the database and the clock).
    #[must_use]
    pub fn services(&self) -> Services {
        self.services.clone()
    }

    /// What the first start created, if this was one.
    pub fn take_first_start(&mut self) -> Option<FirstStart> {
        self.first_start.take()
    }

    /// Serves until the process is asked to stop (SIGINT, SIGTERM), with the upkeep every
    /// [`UPKEEP_INTERVAL`]. Quota charges need no saving: each is in the database before its
    /// call is answered.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let services = self.services.clone();
        let upkeep = actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                crate::observe::upkeep();
                if let Err(e) = services.db.purge_revoked_tokens(services.clock.now()).await {
                    tracing::error!(error = %e, "purging expired revocations failed");
                }
                if let Err(e) = services.usage.flush().await {
                    crate::observe::database_error();
                    crate::observe::throttled_error("writing the usage history failed", &e);
                }
            }
        });
        let result = self.server.await;
        upkeep.abort();
        // The last charges into the table, so that a copy of the database file alone has them.
        if let Some(journal) = self.services.quota.journal().cloned() {
            match web::block(move || journal.fold()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "folding the quota charges at shutdown failed")
                }
                Err(e) => {
                    tracing::error!(error = %e, "folding the quota charges at shutdown failed")
                }
            }
        }
        if let Err(e) = self.services.usage.flush().await {
            tracing::error!(error = %e, "writing the usage history at shutdown failed");
        }
        if let Err(e) = self.services.db.checkpoint().await {
            tracing::error!(error = %e, "syncing the database at shutdown failed");
        }
        self.services.db.close().await;
        result
    }
}
