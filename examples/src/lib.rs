//! What the example services share: a demo key store and the stores they count in.
//!
//! `axum_service` and `actix_service` compose the same four pieces from the crates: API-key
//! authentication (`apikey-gen`), a per-key daily quota and a per-client login limit (`quota`),
//! and signature verification (`request-signing`). They run with `cargo run -p
//! secure-api-examples --bin axum-service` (or `actix-service`), in memory, or on Redis when
//! `REDIS_URL` is set.

pub mod actix_service;
pub mod axum_service;

use std::collections::HashMap;
use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;

use apikey_gen::{KeyConfig, KeyHash, KeyHasher, KeyRecord, KeyStore};
use request_signing::{MemoryReplayCache, RedisReplayCache, Secret, StaticSecretStore};

/// What an authenticated request carries on: the key's id and its own daily quota.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The key's id (what quotas count by, never the key itself).
    pub key_id: String,
    /// The key's daily quota.
    pub daily_quota: NonZeroU64,
}

/// Keys by their peppered hash, in memory (a database table in a real service).
#[derive(Debug, Default)]
pub struct MemoryKeys(HashMap<[u8; 32], KeyRecord<Identity>>);

impl KeyStore for MemoryKeys {
    type Identity = Identity;
    type Error = std::convert::Infallible;

    async fn lookup(&self, hash: &KeyHash) -> Result<Option<KeyRecord<Identity>>, Self::Error> {
        Ok(self.0.get(hash.as_bytes()).cloned())
    }
}

/// A demo service's keys: one API key and one signing key, made at start and shown once.
#[derive(Debug)]
pub struct Demo {
    /// The API key's format and peppered hasher.
    pub config: KeyConfig,
    /// The API keys' store.
    pub keys: MemoryKeys,
    /// The API key, to send as `Authorization: <key>`.
    pub api_key: String,
    /// The signing key's id (`X-API-Key` of signed requests).
    pub signing_key_id: String,
    /// The signing key's secret.
    pub signing_secret: String,
    /// The signing secrets' store.
    pub secrets: StaticSecretStore,
}

impl Demo {
    /// Fresh keys, the API key with a daily quota of `daily_quota`.
    ///
    /// # Panics
    /// When the operating system's random number generator fails.
    #[must_use]
    pub fn new(daily_quota: NonZeroU64) -> Self {
        let mut pepper = [0u8; 32];
        getrandom::fill(&mut pepper).expect("the OS random number generator works");
        let hasher = KeyHasher::hmac_sha256(&pepper).expect("a 32-byte pepper");
        let config = KeyConfig::new("demo")
            .expect("a valid prefix")
            .with_hasher(hasher);
        let generated = config.generate().expect("a key");
        let identity = Identity {
            key_id: generated.id().as_str().to_owned(),
            daily_quota,
        };
        let mut keys = MemoryKeys::default();
        keys.0
            .insert(*generated.hash().as_bytes(), KeyRecord::active(identity));
        let signing_secret = apikey_gen::generate_token(40).expect("a secret");
        let signing_key_id = "svc-orders".to_owned();
        let secrets = StaticSecretStore::new().with_secret(
            signing_key_id.clone(),
            Secret::from(signing_secret.expose_secret()),
        );
        Self {
            config,
            keys,
            api_key: generated.key().expose_secret().to_owned(),
            signing_key_id,
            signing_secret: signing_secret.expose_secret().to_owned(),
            secrets,
        }
    }
}

/// The daily quota (1,000 calls, unless a key brings its own) and the login limit: 5 a minute.
#[must_use]
pub fn policies() -> (quota::Policy, quota::Policy) {
    let five = NonZeroU64::new(5).expect("non-zero");
    let login = quota::Policy::gcra(five, Duration::from_secs(60)).expect("a valid rate");
    let daily = NonZeroU64::new(1_000).expect("non-zero");
    (quota::Policy::per_day(daily), login)
}

/// The daily quotas, the login limit and the replay cache on Redis.
pub type RedisStores = (
    quota::RedisBackend,
    quota::RedisBackend,
    quota::RedisBackend,
    RedisReplayCache,
);

/// The daily quotas and the login limit in memory.
#[must_use]
pub fn memory_limits() -> (
    quota::MemoryBackend,
    quota::MemoryBackend,
    quota::MemoryBackend,
) {
    let (daily, login) = policies();
    (
        quota::MemoryBackend::new(daily),
        quota::MemoryBackend::new(daily),
        quota::MemoryBackend::new(login),
    )
}

/// An in-memory replay cache: a million requests, a tenth of them per key.
#[must_use]
pub fn memory_replay() -> MemoryReplayCache {
    MemoryReplayCache::new(NonZeroUsize::new(1_000_000).expect("non-zero"))
}

/// The Redis stores under `prefix`: the API keys' and the signing keys' daily quotas, the
/// login limit and the replay cache.
///
/// # Errors
/// When the URL is invalid or Redis does not answer the replay cache's connection in time.
pub async fn redis_stores(
    url: &str,
    prefix: &str,
) -> Result<RedisStores, Box<dyn std::error::Error>> {
    let (daily, login) = policies();
    let connect = |policy, name: &str| {
        quota::RedisBackend::builder(policy)
            .prefix(format!("{prefix}:{name}"))
            .connect(url)
    };
    let replay = RedisReplayCache::connect(url, format!("{prefix}:replay:")).await?;
    Ok((
        connect(daily, "daily").await?,
        connect(daily, "signed-daily").await?,
        connect(login, "login").await?,
        replay,
    ))
}
