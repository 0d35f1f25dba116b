//! The two limits the server applies, with `quota`'s backends and its HTTP limiter:
//!
//! - the per-key daily quota (a UTC-day fixed window). Each key's own quota travels with each
//!   call, so nothing is synchronised into the store beforehand. It is charged by the handler,
//!   once the request is known to be valid and its cost is known ([`KeyQuota::charge`]).
//! - the per-client limit on `/login` and `/register` (GCRA, 5 per minute), `quota`'s
//!   middleware keyed by [`ForwardedIp`]: the peer, or behind trusted proxies the right-most
//!   `X-Forwarded-For` address that is not one of them; IPv6 grouped by /64, and each /48 as a
//!   whole at ten times that. A chain with an unreadable entry where the client should be is
//!   refused with 400, never counted against the proxy's own address (which every client
//!   behind it shares).
//! - the per-username limit on `/login` ([`UsernameLimit`]), whatever the address.
//!
//! Without Redis both live in this process's memory, and each quota charge is on record (the
//! charge log of a SQLite file, or a PostgreSQL commit) before its call is answered
//! ([`crate::journal`]). On
//! Redis every instance sees the same counters, so N instances behind a load balancer grant a
//! key its quota once, not N times. Whenever Redis gives no decision (it does not answer within
//! the Redis timeout, or answers with an error such as `OOM` or `READONLY`), each limit
//! follows its [`FailPolicy`] through `quota`'s [`FallbackBackend`]: the quota fails open (the
//! call is allowed and not counted) or closed (503); the login limit falls back to this
//! instance's own limiter (open) or answers 503 (closed). Never a 500. Each outage is counted
//! in `secure_api_redis_errors_total` and `secure_api_redis_fallbacks_total`.

use std::num::NonZeroU64;
use std::time::Duration;

use actix_web::dev::ServiceRequest;
use actix_web::{HttpRequest, HttpResponse};
use quota::{
    Backend as _, Either, FailMode, FallbackBackend, ForwardedIp, FromExtension, HeaderFields,
    MemoryBackend, Policy, RateLimit, RedisBackend, Refusal, RefusalReason, Rejection, Usage,
    Verdict,
};
use serde::Serialize;

use crate::auth::accounts::validate_username;
use crate::auth::principal::Principal;
use crate::clock::Clock;
use crate::config::FailPolicy;
use crate::error::{ApiError, QUOTA_EXCEEDED_MESSAGE};
use crate::journal::Journal;
use crate::observe;
use crate::shared::Redis;
use crate::store::canonical_username;
use crate::usage::{Outcome, UsageHistory};

/// What a limit is for: names its Redis keys, its log lines and its metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concern {
    /// Per-key daily quotas.
    Quota,
    /// Per-client login and registration attempts.
    Login,
    /// Per-network (IPv6 /48) login and registration attempts.
    LoginNetwork,
    /// Per-username login attempts.
    LoginUser,
}

impl Concern {
    /// The label: `quota` or `login`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quota => "quota",
            Self::Login => "login",
            Self::LoginNetwork => "login_network",
            Self::LoginUser => "login_user",
        }
    }
}

/// A limit's counters: this process's memory (`Left`), or Redis behind its fail policy
/// (`Right`).
pub type Counters =
    Either<MemoryBackend<Clock>, FallbackBackend<RedisBackend<Clock>, MemoryBackend<Clock>>>;

/// The counters of `concern` under `policy`: on `redis` when it is configured. Redis connects
/// lazily, so the server starts while it is down.
///
/// # Errors
/// `quota`'s, for a backend it cannot build.
pub fn counters(
    policy: Policy,
    clock: &Clock,
    redis: Option<&Redis>,
    concern: Concern,
) -> Result<Counters, quota::Error> {
    tier_counters(policy, clock, redis, concern, "")
}

/// [`counters`] for one of several policies of `concern`: `tier` keeps their Redis keys apart.
fn tier_counters(
    policy: Policy,
    clock: &Clock,
    redis: Option<&Redis>,
    concern: Concern,
    tier: &str,
) -> Result<Counters, quota::Error> {
    let memory = || MemoryBackend::builder(policy).clock(clock.clone()).build();
    let Some(redis) = redis else {
        return Ok(Either::Left(memory()?));
    };
    let settings = redis.settings();
    let fail = match concern {
        Concern::Quota => settings.fail_quota,
        Concern::Login | Concern::LoginNetwork | Concern::LoginUser => settings.fail_login,
    };
    // Redis reports every failure, so that the fallback sees (and counts) each one.
    let primary = RedisBackend::builder(policy)
        .clock(clock.clone())
        .prefix(format!("{}:{}{tier}", settings.prefix, concern.as_str()))
        .timeout(settings.timeout)
        .fail_mode(FailMode::Error)
        .with_connection(redis.connection())?;
    let label = concern.as_str();
    let builder = FallbackBackend::builder(primary).on_outage(move |error| {
        let kind = match error {
            quota::Error::Unavailable { .. } => "unavailable",
            _ => "store",
        };
        tracing::debug!(concern = label, %error, "Redis gave no decision");
        observe::redis_error(label, kind);
        observe::redis_fallback(label, fail.as_str());
    });
    let builder = match (concern, fail) {
        // The login limit goes on with this instance's own counts.
        (Concern::Login | Concern::LoginNetwork | Concern::LoginUser, FailPolicy::Open) => {
            builder.maybe_local(Some(memory()?))
        }
        // The quota allows the call uncounted.
        (Concern::Quota, FailPolicy::Open) => builder.fail_mode(FailMode::Open).maybe_local(None),
        (_, FailPolicy::Closed) => builder.fail_mode(FailMode::Closed).maybe_local(None),
    };
    Ok(Either::Right(builder.build()?))
}

/// The 503 a caller gets when a shared store it needs does not answer.
#[must_use]
pub fn store_unavailable() -> ApiError {
    ApiError::Unavailable {
        detail: "a shared store is unavailable; try again shortly",
        retry_after: Some(1),
    }
}

type PrincipalKey = FromExtension<Principal, fn(&Principal) -> String>;

fn key_of(principal: &Principal) -> String {
    principal.quota_id.clone()
}

/// The per-key daily quota, charged by the handlers.
#[derive(Debug)]
pub struct KeyQuota {
    limit: RateLimit<Counters, PrincipalKey, HttpRequest>,
    /// Where the in-memory counters' charges are made durable; `None` on Redis.
    journal: Option<Journal>,
    /// Where each charge and each spent-quota refusal is counted, per key and day.
    history: UsageHistory,
}

/// Rate-limit fields of a granted call, added to the success response.
#[derive(Debug)]
#[must_use = "the charge's fields belong on the response"]
pub struct Charged(HeaderFields);

impl Charged {
    /// A 200 response with `body` and the quota's fields.
    pub fn respond(self, body: impl Serialize) -> HttpResponse {
        let mut response = HttpResponse::Ok().json(body);
        quota::append_allowed_fields(&mut response, self.0);
        response
    }
}

impl KeyQuota {
    /// The quota over `counters`: each key's own daily quota, from its [`Principal`]. Each
    /// charge is written to `journal` before the call is answered, when there is one (for
    /// counters in memory), and counted in `history` with each refusal for a spent quota.
    ///
    /// # Errors
    /// `quota`'s, for a limiter it cannot build.
    pub fn new(
        counters: Counters,
        journal: Option<Journal>,
        history: UsageHistory,
    ) -> Result<Self, quota::Error> {
        let limit = RateLimit::builder(counters, FromExtension::new(key_of as fn(&_) -> _))
            .name("daily")
            .x_ratelimit_headers(true)
            .limit(|req: &HttpRequest| {
                quota::RequestView::with_extension(req, |p: &Principal| {
                    NonZeroU64::new(p.daily_quota)
                })
                .flatten()
            })
            .on_refusal(|refusal: Refusal<'_>| {
                let reason = match refusal.reason {
                    RefusalReason::Limited => "spent",
                    RefusalReason::CostExceedsLimit => "cost_exceeds_limit",
                    RefusalReason::Unavailable => "store_unavailable",
                    _ => return refusal.default,
                };
                observe::quota_denied(reason);
                if refusal.reason == RefusalReason::Unavailable {
                    return Rejection::from(store_unavailable());
                }
                tracing::info!("{QUOTA_EXCEEDED_MESSAGE}");
                Rejection::from(ApiError::QuotaExceeded {
                    headers: refusal.default.headers,
                })
            })
            .build()?;
        Ok(Self {
            limit,
            journal,
            history,
        })
    }

    /// Charges `cost` calls to the daily quota of the key `req` authenticated with; 429 with
    /// the original's message once spent, 503 while a store that fails closed is away. Allowed
    /// uncounted while Redis is away (fail open), without quota fields. In memory, the charge
    /// is in the journal when this returns `Ok`.
    ///
    /// # Errors
    /// The refusal, as the answer to send; 503 when the journal could not write the charge
    /// (which stays counted in memory: a refused call may cost, an answered one is never lost).
    pub async fn charge(&self, req: &HttpRequest, cost: u64) -> Result<Charged, ApiError> {
        let call = self.limit.prepare(req).with_cost(cost);
        let fields = match self.limit.decide(call).await {
            Verdict::Allowed(fields) => fields,
            Verdict::Refused(rejection) => {
                if rejection.status == 429 {
                    self.count(req, Outcome::Quota);
                }
                return Err(ApiError::Refused(rejection.into()));
            }
        };
        if let Some(journal) = &self.journal
            && cost > 0
            && let Some(subject) = quota::RequestView::with_extension(req, key_of)
        {
            journal
                .record(&subject, cost)
                .await
                .map_err(|_| ApiError::Unavailable {
                    detail: "the database is unavailable; try again shortly",
                    retry_after: Some(1),
                })?;
        }
        self.count(req, Outcome::Accepted);
        Ok(Charged(fields))
    }

    /// Counts the call `req` in the usage history of its key.
    fn count(&self, req: &HttpRequest, outcome: Outcome) {
        quota::RequestView::with_extension(req, |p: &Principal| {
            self.history.record(&p.key_id, outcome);
        });
    }

    /// The journal of the in-memory counters; `None` on Redis.
    #[must_use]
    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// Adds `used` calls stored by the journal to the in-memory count of `subject` (today's),
    /// at start-up; nothing to do on Redis.
    ///
    /// # Errors
    /// `quota`'s, for a subject too long to count.
    pub fn replay(&self, subject: &str, used: u64) -> Result<(), quota::Error> {
        if let Either::Left(memory) = self.limit.backend()
            && used > 0
        {
            // Under the largest limit the day's window takes whatever is added; the key's own
            // limit applies to the calls that follow.
            let _added = memory.decide_with_limit(subject, used, NonZeroU64::MAX)?;
        }
        Ok(())
    }

    /// How much the key `req` authenticated with can still spend today, counting nothing;
    /// `None` when that cannot be read now (Redis is away).
    pub async fn remaining(&self, req: &HttpRequest) -> Option<u64> {
        let (key, limit) = quota::RequestView::with_extension(req, |p: &Principal| {
            (key_of(p), NonZeroU64::new(p.daily_quota))
        })?;
        let backend = self.limit.backend();
        let usage = match limit {
            Some(limit) => backend.usage_with_limit(&key, limit).await,
            None => backend.usage(&key).await,
        };
        usage.ok().map(|usage| usage.remaining)
    }

    /// The key's consumption today under its own `limit`.
    ///
    /// # Errors
    /// 503 when Redis does not answer: usage is an admin read, never a 500.
    pub async fn usage(&self, key_id: &str, limit: Option<NonZeroU64>) -> Result<Usage, ApiError> {
        let backend = self.limit.backend();
        let usage = match limit {
            Some(limit) => backend.usage_with_limit(key_id, limit).await,
            None => backend.usage(key_id).await,
        };
        usage.map_err(|error| match error {
            quota::Error::Unavailable { .. } | quota::Error::Store { .. } => {
                observe::redis_error("quota", "unavailable");
                store_unavailable()
            }
            other => ApiError::internal(other),
        })
    }

    /// Whether the counters live on Redis.
    #[must_use]
    pub fn is_shared(&self) -> bool {
        self.limit.backend().is_right()
    }
}

/// The per-client limit on `/login` and `/register`: `quota`'s middleware.
pub type LoginLimit = RateLimit<Counters, ForwardedIp, ServiceRequest>;

/// How many times the per-client login limit a whole IPv6 /48 gets: a site with many hosts
/// shares it, and an attacker holding the /48 cannot spread guesses over its 65,536 /64s.
pub const NETWORK_FACTOR: u64 = 10;

/// The per-client limits on `/login` and `/register`: each client (an IPv4 address or an IPv6
/// /64) at `per_minute`, and each IPv6 /48 as a whole at [`NETWORK_FACTOR`] times that.
///
/// # Errors
/// `quota`'s, for a limiter it cannot build.
pub fn login_limits(
    per_minute: u64,
    clock: &Clock,
    redis: Option<&Redis>,
    trusted: &ForwardedIp,
) -> Result<[LoginLimit; 2], quota::Error> {
    let policy = |n: u64| {
        Policy::gcra(
            NonZeroU64::new(n.max(1)).expect("at least 1"),
            Duration::from_secs(60),
        )
    };
    let client = counters(policy(per_minute)?, clock, redis, Concern::Login)?;
    let network = counters(
        policy(per_minute.saturating_mul(NETWORK_FACTOR))?,
        clock,
        redis,
        Concern::LoginNetwork,
    )?;
    Ok([
        login_limit(client, trusted.clone(), true)?,
        login_limit(network, trusted.clone().ipv6_prefix(48), false)?,
    ])
}

/// A login limit over `counters`, finding the client behind `trusted` proxies; with the
/// `X-RateLimit-*` headers when `headers`.
fn login_limit(
    counters: Counters,
    trusted: ForwardedIp,
    headers: bool,
) -> Result<LoginLimit, quota::Error> {
    RateLimit::builder(counters, trusted)
        .name("login")
        .x_ratelimit_headers(headers)
        .on_refusal(|refusal: Refusal<'_>| {
            let error = match refusal.reason {
                RefusalReason::Limited | RefusalReason::CostExceedsLimit => {
                    observe::login_limited();
                    tracing::info!("login rate limit reached");
                    let retry_after = refusal
                        .decision
                        .and_then(quota::Decision::retry_after)
                        .map_or(60, |d| d.as_secs_f64().ceil() as u64)
                        .max(1);
                    ApiError::RateLimited {
                        retry_after,
                        headers: refusal.default.headers,
                    }
                }
                RefusalReason::Unavailable => store_unavailable(),
                _ if refusal.default.status == 400 => {
                    ApiError::BadRequest(refusal.detail.to_owned())
                }
                _ => ApiError::internal(refusal.detail.to_owned()),
            };
            Rejection::from(error)
        })
        .build()
}

/// The per-username limit on `/login`, on top of the per-client one, with a backoff that
/// grows with the attempts: each tier is a limit of its own, and an attempt must pass all of
/// them. With [`USERNAME_TIERS`], a name can be tried 5 times in a minute, 20 times in an
/// hour and 100 times in a day, whatever the addresses the attempts come from.
///
/// Every attempt counts, before the password is checked, and the name is counted whether or
/// not an account has it: a locked-out name answers 429 with `Retry-After` alike for an
/// existing and an unknown user, and a guess costs no argon2 work once the name is locked.
#[derive(Debug)]
pub struct UsernameLimit {
    tiers: Vec<Counters>,
}

/// The tiers of [`UsernameLimit`]: their Redis key suffix, and the attempts per name in a
/// sliding minute, hour and day (GCRA).
pub const USERNAME_TIERS: [(&str, u64, Duration); 3] = [
    (":minute", 5, Duration::from_secs(60)),
    (":hour", 20, Duration::from_secs(3_600)),
    (":day", 100, Duration::from_secs(86_400)),
];

impl UsernameLimit {
    /// The limit with [`USERNAME_TIERS`], its counters on `redis` when configured.
    ///
    /// # Errors
    /// `quota`'s, for a backend it cannot build.
    pub fn new(clock: &Clock, redis: Option<&Redis>) -> Result<Self, quota::Error> {
        let tiers = USERNAME_TIERS
            .iter()
            .map(|&(tier, limit, period)| {
                let limit = NonZeroU64::new(limit).expect("nonzero tiers");
                let policy = Policy::gcra(limit, period)?;
                tier_counters(policy, clock, redis, Concern::LoginUser, tier)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { tiers })
    }

    /// Counts one login attempt for `username` (in any case); 429 once a tier is spent.
    ///
    /// # Errors
    /// [`ApiError::RateLimited`] past a tier; 503 when Redis fails under the closed policy.
    pub async fn attempt(&self, username: &str) -> Result<(), ApiError> {
        // At most 32 ASCII characters; every name no account can have shares one bucket, in
        // which nothing can succeed anyway.
        let key = match validate_username(username) {
            Ok(()) => canonical_username(username),
            Err(_) => "~invalid".to_owned(),
        };
        for tier in &self.tiers {
            let decision = tier.decide(&key, 1).await.map_err(|error| match error {
                quota::Error::Unavailable { .. } | quota::Error::Store { .. } => {
                    store_unavailable()
                }
                other => ApiError::internal(other),
            })?;
            if !decision.is_allowed() {
                observe::login_limited();
                tracing::info!("per-username login limit reached");
                let retry_after = decision
                    .retry_after()
                    .map_or(60, |d| d.as_secs_f64().ceil() as u64)
                    .max(1);
                return Err(ApiError::RateLimited {
                    retry_after,
                    headers: Vec::new(),
                });
            }
        }
        Ok(())
    }
}
