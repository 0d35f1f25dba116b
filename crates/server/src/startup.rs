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
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpServer, web};
use quota::{Policy, Snapshot};
use secret_key::{SecretKey, SecretLoader};
use weather_keypool::{KeyPool, WeatherClient, WeatherClientBuilder};

use crate::auth::api_key::KeyCache;
use crate::auth::jwt::Tokens;
use crate::auth::password::Passwords;
use crate::auth::signed::Signing;
use crate::config::{Mode, Settings, TlsFiles};
use crate::error::ApiError;
use crate::extract::{self, BodyLimit};
use crate::keys::{CreatedKey, KeyManager, NewKey};
use crate::limits::{Concern, Limiter};
use crate::routes;
use crate::sealing::Sealer;
use crate::shared::{Redis, ReplayStore};
use crate::state::{AppState, Clock};
use crate::store::Db;

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
/// How often quota usage is saved to the database. At most this much usage is lost when the
/// process is killed without a graceful shutdown.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(5);
/// The name of the quota snapshot row.
pub const QUOTA_SNAPSHOT: &str = "daily-quota";
/// Access token lifetime.
pub const ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// Refresh token lifetime.
pub const REFRESH_TTL: Duration = Duration::from_secs(30 * 86_400);
/// Admin tokens use the API key format with this prefix.
pub const ADMIN_PREFIX: &str = "sadm";
/// Key lookups kept in the cache at most.
pub const KEY_CACHE_CAPACITY: usize = 100_000;

/// Why the server could not start. Each names what to fix; none contains a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// The server secret is missing or weak.
    #[error("server secret: {0}")]
    Secret(#[from] secret_key::Error),
    /// `API_SHARED_SECRET` is set but weak.
    #[error("API_SHARED_SECRET: {0}")]
    SharedSecret(secret_key::Error),
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

impl From<ApiError> for StartupError {
    fn from(error: ApiError) -> Self {
        Self::Build(error.to_string())
    }
}

/// What the first start on an empty database created: printed once, never stored in clear.
pub struct FirstStart {
    /// The admin token for `/admin/keys`.
    pub admin_token: String,
    /// A demo API key.
    pub demo_key: CreatedKey,
}

impl fmt::Debug for FirstStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FirstStart")
            .field("admin_token", &"[redacted]")
            .field("demo_key", &self.demo_key)
            .finish()
    }
}

impl FirstStart {
    /// The banner printed on first start: the only time these are shown.
    #[must_use]
    pub fn banner(&self, addr: std::net::SocketAddr) -> String {
        format!(
            "==================== secure-api: first start ====================\n\
             Save these now: they are shown once and stored only as hashes.\n\n\
             Admin token (for /admin/keys):  {admin}\n\
             Demo API key (service {service}, {quota} calls/day):  {key}\n\n\
             Try:  curl -X POST -H 'Authorization: {key}' http://{addr}/get-current-time\n\
             =================================================================",
            admin = self.admin_token,
            service = self.demo_key.service,
            quota = self.demo_key.daily_quota,
            key = self.demo_key.key,
        )
    }
}

/// Loads the secret and builds every component of the state.
pub async fn build_state(
    settings: Settings,
    env: &Env,
    clock: Clock,
) -> Result<AppState, StartupError> {
    let mode = match settings.mode {
        Mode::Development => secret_key::Mode::Development,
        Mode::Production => secret_key::Mode::Production,
    };
    let loaded = SecretLoader::new(mode)
        .file(&settings.secret_key_file)
        .load_with_env(|name| env.get(name))?;
    tracing::info!(source = %loaded.source(), "server secret loaded");
    let master = loaded.key();
    let subkey = |purpose: &str| master.derive(purpose);
    let jwt_key = subkey("secure-api/jwt-hs256/v1")?;
    let pepper = subkey("secure-api/apikey-pepper/v1")?;
    let seal_key = subkey("secure-api/signing-secret-seal/v1")?;

    let shared_secret = match env.get("API_SHARED_SECRET") {
        Some(value) => {
            let text = value.into_string().map_err(|_| {
                StartupError::Build("API_SHARED_SECRET is not valid UTF-8".to_owned())
            })?;
            // Judge it like the server secret, but sign with its text, as the original did.
            SecretKey::from_text(&text).map_err(StartupError::SharedSecret)?;
            Some(request_signing::Secret::new(text.into_bytes()))
        }
        None => None,
    };

    let db = Db::connect(settings.database_url.expose()).await?;
    let (concurrency, queue) = (settings.hash_concurrency, settings.request_timeout);
    let passwords = web::block(move || Passwords::new(concurrency, queue))
        .await
        .map_err(|e| StartupError::Build(e.to_string()))?
        .map_err(|e| StartupError::Build(e.to_string()))?;
    let tokens = Tokens::new(jwt_key.expose_secret(), ACCESS_TTL, REFRESH_TTL);
    let sealer =
        Sealer::new(seal_key.expose_secret()).map_err(|e| StartupError::Build(e.to_string()))?;
    let keys = KeyManager::new(pepper.expose_secret(), sealer, settings.default_daily_quota)?;
    let key_cache = Arc::new(KeyCache::new(settings.key_cache_ttl, KEY_CACHE_CAPACITY));
    let redis = match &settings.redis {
        Some(redis_settings) => {
            let redis =
                Redis::new(redis_settings).map_err(|e| StartupError::Build(e.to_string()))?;
            tracing::info!(
                url = %redis_settings.url,
                prefix = %redis_settings.prefix,
                quota = redis_settings.fail_quota.as_str(),
                login = redis_settings.fail_login.as_str(),
                replay = redis_settings.fail_replay.as_str(),
                "shared state on Redis (fail policies)"
            );
            if let Some(policy) = redis.evicting_policy().await {
                tracing::warn!(
                    %policy,
                    "Redis evicts keys when full: quotas may be under-counted and replayed \
                     signatures accepted; set maxmemory-policy noeviction"
                );
            }
            Some(redis)
        }
        None => None,
    };
    let replay = match &redis {
        Some(redis) => {
            ReplayStore::redis(redis, redis.settings().fail_replay, settings.replay_per_key)
        }
        None => ReplayStore::memory(settings.replay_per_key),
    };
    let signing = Signing::new(
        db.clone(),
        key_cache.clone(),
        keys.clone(),
        clock.clone(),
        shared_secret,
        settings.json_limit,
        replay,
    );
    let daily = NonZeroU64::new(settings.default_daily_quota)
        .ok_or_else(|| StartupError::Build("default_daily_quota must be at least 1".to_owned()))?;
    let daily = Policy::per_day(daily);
    let login = Policy::gcra(
        NonZeroU64::new(LOGIN_LIMIT_PER_MINUTE).expect("nonzero"),
        Duration::from_secs(60),
    )
    .map_err(|e| StartupError::Build(e.to_string()))?;
    let (quota, login_limit) = match &redis {
        Some(redis) => (
            Limiter::redis(
                daily,
                &clock,
                redis.connection(),
                redis.settings(),
                Concern::Quota,
            )?,
            Limiter::redis(
                login,
                &clock,
                redis.connection(),
                redis.settings(),
                Concern::Login,
            )?,
        ),
        None => (
            Limiter::memory(daily, &clock)?,
            Limiter::memory(login, &clock)?,
        ),
    };
    if !quota.is_shared()
        && let Some((taken_at, data)) = db.load_snapshot(QUOTA_SNAPSHOT).await?
    {
        match serde_json::from_str::<Snapshot>(&data) {
            Ok(snapshot) => {
                let restored = quota.restore(&snapshot)?;
                tracing::info!(keys = restored, taken_at, "quota usage restored");
            }
            Err(e) => {
                tracing::error!(error = %e, "saved quota usage is unreadable; starting from zero")
            }
        }
    }

    Ok(AppState {
        settings,
        db,
        clock,
        passwords,
        tokens,
        keys,
        key_cache,
        signing,
        quota,
        login_limit,
        redis,
    })
}

impl AppState {
    /// The admin token config (same hasher and pepper as API keys, prefix `sadm`).
    fn admin_config(&self) -> Result<apikey_gen::KeyConfig, ApiError> {
        apikey_gen::KeyConfig::new(ADMIN_PREFIX)
            .map(|c| c.with_hasher(self.keys.config().hasher().clone()))
            .map_err(ApiError::internal)
    }

    /// Creates an admin token; returns it (shown once).
    pub async fn create_admin_token(&self) -> Result<String, ApiError> {
        let generated = self
            .admin_config()?
            .generate()
            .map_err(ApiError::internal)?;
        self.db
            .insert_admin_token(
                generated.id().as_str(),
                &generated.hash().to_hex(),
                self.clock.now(),
            )
            .await?;
        Ok(generated.key().expose_secret().to_owned())
    }

    /// The id of the admin token `token`, if it is valid.
    pub async fn find_admin(&self, token: &str) -> Result<Option<String>, ApiError> {
        let config = self.admin_config()?;
        if config.parse(token).is_err() {
            return Ok(None);
        }
        Ok(self
            .db
            .find_admin_token(&config.hash(token).to_hex())
            .await?)
    }

    /// On an empty database, creates an admin token and a demo key.
    pub async fn first_start(&self) -> Result<Option<FirstStart>, ApiError> {
        if self.db.count_admin_tokens().await? > 0 || self.db.count_keys().await? > 0 {
            return Ok(None);
        }
        let admin_token = self.create_admin_token().await?;
        let demo = NewKey {
            service: "demo".to_owned(),
            ..NewKey::default()
        };
        let demo_key = self.keys.create(&self.db, &demo, self.clock.now()).await?;
        Ok(Some(FirstStart {
            admin_token,
            demo_key,
        }))
    }

    /// Saves the in-memory quota counters to the database (nothing to do on Redis).
    pub async fn save_quota(&self) -> Result<(), ApiError> {
        let Some(snapshot) = self.quota.snapshot() else {
            return Ok(());
        };
        let data = serde_json::to_string(&snapshot).map_err(ApiError::internal)?;
        self.db
            .save_snapshot(QUOTA_SNAPSHOT, self.clock.now(), &data)
            .await?;
        Ok(())
    }
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
    state: web::Data<AppState>,
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
        .map_err(|e| tls_error(format!("certificate and key do not fit: {e}")))?;
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

/// Answers 503 when a request takes longer than the configured timeout.
async fn request_timeout(
    req: actix_web::dev::ServiceRequest,
    next: Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map_or(Duration::from_secs(30), |s| s.settings.request_timeout);
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(response) => response.map(actix_web::dev::ServiceResponse::map_into_boxed_body),
        Err(_) => Err(ApiError::Unavailable {
            detail: "the request took too long",
            retry_after: None,
        }
        .into()),
    }
}

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
        let json_limit = settings.json_limit;
        let tls = settings.tls.as_ref().map(load_tls).transpose()?;
        let weather = weather_settings(&settings, &env)?;
        crate::observe::recorder();
        let state = web::Data::new(build_state(settings, &env, clock).await?);
        let first_start = state.first_start().await?;

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
        let app_state = state.clone();
        let mut server = HttpServer::new(move || {
            let mut app = App::new().app_data(app_state.clone());
            // awc's client is not `Send`: one per worker, sharing the pool and the cache.
            if let Some(weather) = &weather {
                app = app.app_data(web::Data::new(weather.build()));
            }
            app.app_data(BodyLimit(json_limit))
                .app_data(web::PayloadConfig::new(json_limit))
                .app_data(web::QueryConfig::default().error_handler(extract::query_error))
                .app_data(web::PathConfig::default().error_handler(extract::path_error))
                .wrap(from_fn(request_timeout))
                .wrap(from_fn(crate::observe::observe_request))
                .configure(routes::configure)
        })
        .client_request_timeout(Duration::from_secs(5))
        .client_disconnect_timeout(Duration::from_secs(2))
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
            state,
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

    /// The shared state (tests use it to reach the database and the clock).
    #[must_use]
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// What the first start created, if this was one.
    pub fn take_first_start(&mut self) -> Option<FirstStart> {
        self.first_start.take()
    }

    /// Serves until the process is asked to stop (SIGINT, SIGTERM), then saves the quota
    /// counters. While serving, they are saved every [`SNAPSHOT_INTERVAL`].
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let state = self.state.clone();
        let saver = actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(SNAPSHOT_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                crate::observe::upkeep();
                if let Err(e) = state.save_quota().await {
                    tracing::error!(error = %e, "saving quota usage failed");
                }
                if let Err(e) = state.db.purge_revoked_tokens(state.clock.now()).await {
                    tracing::error!(error = %e, "purging expired revocations failed");
                }
            }
        });
        let result = self.server.await;
        saver.abort();
        if let Err(e) = self.state.save_quota().await {
            tracing::error!(error = %e, "saving quota usage at shutdown failed");
        }
        self.state.db.close().await;
        result
    }
}
