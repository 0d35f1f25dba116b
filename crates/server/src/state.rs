//! The services the server is made of, each registered as its own `web::Data`: a handler's
//! signature shows which ones it uses.

use actix_web::web;

use crate::audit::AuditLog;
use crate::auth::accounts::Accounts;
use crate::auth::admin::AdminTokens;
use crate::auth::chain::ApiAuth;
use crate::clock::Clock;
use crate::connections::{BodyTimeout, PerAddress, RequestTimeout};
use crate::keys::KeyManager;
use crate::limits::{KeyQuota, LoginLimit, UsernameLimit};
use crate::routes::health::Readiness;
use crate::routes::prime::PrimePool;
use crate::shared::SharedWeather;
use crate::store::Db;
use crate::usage::UsageHistory;

/// Every service, built once at start-up and shared by all workers.
#[derive(Debug, Clone)]
pub struct Services {
    /// The clock every service reads.
    pub clock: web::Data<Clock>,
    /// The database, for the background tasks (the handlers reach it through the services).
    pub db: Db,
    /// API key management (`/admin/keys`, `secure-api keys`).
    pub keys: web::Data<KeyManager>,
    /// Admin tokens.
    pub admin_tokens: web::Data<AdminTokens>,
    /// The audit log of admin actions.
    pub audit: web::Data<AuditLog>,
    /// Registration, login, tokens.
    pub accounts: web::Data<Accounts>,
    /// The key and signature middleware of the API routes.
    pub api_auth: web::Data<ApiAuth>,
    /// The per-key daily quota.
    pub quota: web::Data<KeyQuota>,
    /// The usage history of every key.
    pub usage: web::Data<UsageHistory>,
    /// The per-client limits on `/login` and `/register` (middleware): per address or IPv6
    /// /64, and per IPv6 /48.
    pub login_limits: [LoginLimit; 2],
    /// The per-username limit on `/login`.
    pub username_limit: web::Data<UsernameLimit>,
    /// Weather answers shared through Redis.
    pub weather_cache: web::Data<SharedWeather>,
    /// What `/readyz` checks.
    pub readiness: web::Data<Readiness>,
    /// The largest number `/check-prime` tests.
    pub prime_limits: web::Data<primality::Limits>,
    /// The threads big numbers are tested on.
    pub primes: web::Data<PrimePool>,
    /// The request timeout.
    pub request_timeout: RequestTimeout,
    /// The connections each client address has open, against its cap.
    pub per_address: PerAddress,
    /// How long a request body may take to arrive.
    pub body_timeout: BodyTimeout,
}

impl Services {
    /// Registers every service as app data.
    pub fn register(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.clock.clone())
            .app_data(self.keys.clone())
            .app_data(self.admin_tokens.clone())
            .app_data(self.audit.clone())
            .app_data(self.accounts.clone())
            .app_data(self.api_auth.clone())
            .app_data(self.quota.clone())
            .app_data(self.usage.clone())
            .app_data(self.username_limit.clone())
            .app_data(self.weather_cache.clone())
            .app_data(self.readiness.clone())
            .app_data(self.prime_limits.clone())
            .app_data(self.primes.clone())
            .app_data(self.request_timeout)
            .app_data(self.per_address.clone())
            .app_data(self.body_timeout);
    }
}
