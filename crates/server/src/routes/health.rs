//! `/healthz`, `/readyz` and `/metrics`.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::accounts::Accounts;
use crate::routes::prime::PrimePool;
use crate::shared::Redis;
use crate::store::Db;

/// What `/readyz` checks: the database, and Redis when it is configured.
#[derive(Debug, Clone)]
pub struct Readiness {
    db: Db,
    redis: Option<Redis>,
}

impl Readiness {
    /// Checks `db` and `redis`.
    #[must_use]
    pub fn new(db: Db, redis: Option<Redis>) -> Self {
        Self { db, redis }
    }
}

/// Health status.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` when a dependency does not answer.
    pub status: &'static str,
    /// Whether the database answers (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<bool>,
    /// Whether Redis answers and accepts writes (readiness only, when Redis is configured):
    /// `false` when it does not answer, and when it refuses writes (`OOM`, `READONLY`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<bool>,
    /// Set when Redis's memory policy evicts keys: quotas may then be under-counted and
    /// replays accepted again. Only `noeviction` keeps both exact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_eviction: Option<String>,
}

/// Whether the process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health {
        status: "ok",
        database: None,
        redis: None,
        redis_eviction: None,
    })
}

/// Whether the server can serve: the database answers, and Redis, when it is configured,
/// answers and accepts writes. An evicting Redis memory policy is reported, not refused.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "A dependency does not answer", body = Health),
    ))]
pub async fn readyz(checks: web::Data<Readiness>) -> HttpResponse {
    let (database, redis, redis_eviction) = match &checks.redis {
        Some(redis) => {
            let (database, writable, eviction) = tokio::join!(
                checks.db.ping(),
                redis.accepts_writes(),
                redis.evicting_policy()
            );
            let eviction = eviction.map(|policy| {
                format!("{policy}: Redis may evict counters and replay records; use noeviction")
            });
            (database.is_ok(), Some(writable), eviction)
        }
        None => (checks.db.ping().await.is_ok(), None, None),
    };
    if !database {
        crate::observe::database_error();
    }
    let ready = database && redis != Some(false);
    let body = Health {
        status: if ready { "ok" } else { "unavailable" },
        database: Some(database),
        redis,
        redis_eviction,
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Metrics in the Prometheus text format: requests by route and status, latency histograms,
/// authentication failures by reason, quota denials, upstream weather calls by key fingerprint
/// and outcome, the argon2 and prime queues, Redis and database errors. Meant for a scraper on the
/// operators' network: put it behind the load balancer's access rules when the API is public.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain; version=0.0.4")))]
pub async fn metrics(accounts: web::Data<Accounts>, primes: web::Data<PrimePool>) -> HttpResponse {
    let passwords = accounts.passwords();
    crate::observe::argon2_load(passwords.queued(), passwords.running());
    let (running, queued) = primes.load();
    crate::observe::prime_load(queued, running);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::observe::render())
}
