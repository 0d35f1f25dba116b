//! The limits the server applies, with `quota`'s backends and its HTTP limiter:
//!
//! - the per-key daily quota (a UTC-day fixed window). Each key's own quota travels with each
//!   call, so nothing is synchronised into the store beforehand. It is charged by the handler,
//!   once the request is known to be valid and its cost is known ([`KeyQuota::charge`]).
//! - a key's own rate limit (GCRA), monthly quota and credits, where it has them
//!   ([`KeyCounters`]), charged with the daily quota: rate, daily, monthly, credits, and a call
//!   one of them refuses is given back to those before it.
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
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServiceRequest;
use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use quota::{
    Backend as _, Cause, Chain, Decision, Either, FailMode, FallbackBackend, ForwardedIp,
    FromExtension, HeaderFields, MemoryBackend, Policy, QuotaKey, RateLimit, RedisBackend, Refusal,
    RefusalReason, Rejection, Rule, Status, Stop, Usage, Verdict, Window,
};
use serde::Serialize;

use crate::auth::accounts::validate_username;
use crate::auth::principal::{CallLimits, Principal};
use crate::clock::Clock;
use crate::config::FailPolicy;
use crate::error::{ApiError, QUOTA_EXCEEDED_MESSAGE};
use crate::journal::{self, Journal};
use crate::key_limits::{CreditsInfo, RefillInterval};
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

type PrincipalKey = FromExtension<Principal, fn(&Principal) -> QuotaKey>;

/// The quota key of `principal`'s calls: a key and its rotations count as one.
fn key_of(principal: &Principal) -> QuotaKey {
    QuotaKey::from(&*principal.quota_id)
}

/// The counters of a key's own limits beside its daily quota: each call brings its key's
/// policy or limit, so nothing about a key is stored in them beforehand.
#[derive(Debug)]
pub struct KeyCounters {
    /// Rate limits (GCRA), each call under its key's rate and burst.
    rate: Counters,
    /// Monthly quotas (UTC calendar months).
    monthly: Counters,
    /// Credits refilled daily, monthly, and never.
    credits_day: Counters,
    credits_month: Counters,
    credits_lifetime: Counters,
}

/// Journal subjects of credits start with this, then `d:`, `m:` or `l:` for the refill
/// interval (day, month, none), the generation (`credits_set_at`) and the quota id.
pub const CREDITS_SUBJECT: &str = "credits:";
/// Subjects of lifetime credits, whose usage is kept whatever its age.
pub const LIFETIME_CREDITS_SUBJECT: &str = "credits:l:";

impl KeyCounters {
    /// The counters, on `redis` when it is configured (with the quota's fail policy).
    ///
    /// # Errors
    /// `quota`'s, for a backend it cannot build.
    pub fn new(clock: &Clock, redis: Option<&Redis>) -> Result<Self, quota::Error> {
        let one = NonZeroU64::MIN;
        // Placeholders: every call brings its key's own policy or limit.
        let rate = Policy::gcra(one, Duration::from_secs(1))?;
        let build =
            |policy: Policy, tier: &str| tier_counters(policy, clock, redis, Concern::Quota, tier);
        Ok(Self {
            rate: build(rate, ":rate")?,
            monthly: build(Policy::per_month(one), ":month")?,
            credits_day: build(Policy::per_day(one), ":credits-d")?,
            credits_month: build(Policy::per_month(one), ":credits-m")?,
            credits_lifetime: build(Policy::lifetime(one), ":credits-l")?,
        })
    }

    /// The charge of a call against `credits`, the credits of the key `quota_id`, at `now`.
    fn credits<'a>(&'a self, credits: &CreditsInfo, quota_id: &str, now: u64) -> CreditCharge<'a> {
        let set_at = u64::try_from(credits.granted_at).unwrap_or(0);
        let (counters, kind, window) = match credits.refill.map(|r| r.interval) {
            None => (&self.credits_lifetime, 'l', Window::Lifetime),
            Some(RefillInterval::Day) => (&self.credits_day, 'd', Window::Day),
            Some(RefillInterval::Month) => (&self.credits_month, 'm', Window::Month),
        };
        let (start, end) = window.bounds(now);
        let limit = match credits.refill {
            Some(refill) if window.bounds(set_at).0 != start => refill.amount,
            _ => credits.granted,
        };
        let day_of = |secs: u64| i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
        CreditCharge {
            counters,
            key: format!("{quota_id}:{set_at}"),
            limit,
            kind,
            set_at,
            day: if kind == 'l' {
                day_of(set_at)
            } else {
                day_of(start)
            },
            ends: (end != u64::MAX).then_some(end),
        }
    }
}

/// One call's charge against a key's credits.
struct CreditCharge<'a> {
    counters: &'a Counters,
    /// The counter: the quota id and the generation.
    key: String,
    /// What the current window holds: the balance granted, in the window it was granted in;
    /// the refill amount in the windows after.
    limit: u64,
    /// What the journal's subject names: the refill interval (`d`, `m`, or `l` for none) and
    /// the generation.
    kind: char,
    set_at: u64,
    /// The journal's day for it: the start of its window.
    day: i64,
    /// The end of the current window (unix seconds); `None` for credits never refilled.
    ends: Option<u64>,
}

impl CreditCharge<'_> {
    /// The journal's subject: `credits:<kind>:<set_at>:<quota id>`.
    fn subject(&self, quota_id: &str) -> String {
        format!("{CREDITS_SUBJECT}{}:{}:{quota_id}", self.kind, self.set_at)
    }
}

/// What a key has used and has left of one of its limits, counting nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PolicyUsage {
    /// The limit: the burst of a rate, the calls of a month, the credits of the current
    /// balance (the refill amount once refilled).
    pub limit: u64,
    /// How much of it is spent.
    pub used: u64,
    /// How much can still be spent now.
    pub remaining: u64,
    /// Seconds until it is whole again; absent for credits that are never refilled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_secs: Option<u64>,
}

impl From<Usage> for PolicyUsage {
    fn from(usage: Usage) -> Self {
        Self {
            limit: usage.limit,
            used: usage.used,
            remaining: usage.remaining,
            reset_secs: (usage.reset != quota::NEVER).then_some(usage.reset.as_secs()),
        }
    }
}

/// A key's limits beside its daily quota, as its usage report shows them; each only when set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LimitsUsage {
    /// The rate limit's bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<PolicyUsage>,
    /// This UTC month's calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_quota: Option<PolicyUsage>,
    /// The credits left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credits: Option<PolicyUsage>,
}

/// The per-key daily quota, charged by the handlers.
#[derive(Debug)]
pub struct KeyQuota {
    limit: RateLimit<Counters, PrincipalKey, HttpRequest>,
    /// The counters of the keys' other limits.
    counters: KeyCounters,
    clock: Clock,
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

    /// A 200 response with `body`, already JSON, and the quota's fields.
    pub fn respond_json(self, body: Bytes) -> HttpResponse {
        let mut response = HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(body);
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
        others: KeyCounters,
        clock: Clock,
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
            counters: others,
            clock,
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
        if let Some((limits, quota_id, daily)) =
            quota::RequestView::with_extension(req, |p: &Principal| {
                (!p.limits.is_empty())
                    .then(|| (p.limits, p.quota_id.clone(), NonZeroU64::new(p.daily_quota)))
            })
            .flatten()
        {
            // Boxed: the chain of stores' futures would otherwise size (and be copied with)
            // the future of every call, most of which charge the daily quota alone.
            return Box::pin(self.charge_all(req, cost, limits, &quota_id, daily)).await;
        }
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
            && let Some(subject) =
                quota::RequestView::with_extension(req, |p: &Principal| Arc::clone(&p.quota_id))
        {
            journal
                .record(&subject, cost)
                .await
                .map_err(|_| ApiError::Unavailable {
                    detail: "the database is unavailable; try again shortly",
                    retry_after: Some(1),
                })?;
        }
        // In memory, the month counts every call of every key, so that a monthly quota set
        // during the month counts the month's calls, as it does after a restart (which counts
        // them back from the stored usage). On Redis it counts from when it was set.
        if let Either::Left(monthly) = &self.counters.monthly
            && cost > 0
        {
            let _counted = quota::RequestView::with_extension(req, |p: &Principal| {
                monthly.decide_with_limit(&p.quota_id, cost, NonZeroU64::MAX)
            });
        }
        self.count(req, Outcome::Accepted);
        Ok(Charged(fields))
    }

    /// [`charge`](Self::charge) for a key with limits beside its daily quota: its rate limit,
    /// daily quota, monthly quota and credits, in that order. The call must pass each; once one
    /// refuses it, what the ones before counted is given back, so a refused call costs
    /// nothing. The answer's fields list every policy and describe the tightest.
    async fn charge_all(
        &self,
        req: &HttpRequest,
        cost: u64,
        limits: CallLimits,
        quota_id: &str,
        daily: Option<NonZeroU64>,
    ) -> Result<Charged, ApiError> {
        let mut chain = Chain::new(cost);
        if let Some(policy) = limits.rate
            && let Err(stop) = chain
                .charge("rate", &self.counters.rate, quota_id, Rule::Policy(policy))
                .await
        {
            return Err(self.stopped(req, &chain, stop));
        }
        let rule = daily.map_or(Rule::Backend, Rule::Limit);
        if let Err(stop) = chain
            .charge("daily", self.limit.backend(), quota_id, rule)
            .await
        {
            return Err(self.stopped(req, &chain, stop));
        }
        if let Some(limit) = limits.monthly
            && let Err(stop) = chain
                .charge(
                    "monthly",
                    &self.counters.monthly,
                    quota_id,
                    Rule::Limit(limit),
                )
                .await
        {
            return Err(self.stopped(req, &chain, stop));
        }
        // Read after the steps before, which may have waited on Redis across a midnight.
        let now = u64::try_from(self.clock.now()).unwrap_or(0);
        let credit = limits
            .credits
            .map(|credits| self.counters.credits(&credits, quota_id, now));
        if let Some(credit) = &credit {
            match NonZeroU64::new(credit.limit) {
                Some(limit) => {
                    if let Err(stop) = chain
                        .charge("credits", credit.counters, &credit.key, Rule::Limit(limit))
                        .await
                    {
                        return Err(self.stopped(req, &chain, stop));
                    }
                }
                // A balance of 0: nothing to count, every call refused until the refill.
                None if cost > 0 => {
                    log_unrefunded(&chain.refund().await);
                    let refill_in = credit.ends.map(|end| end.saturating_sub(now));
                    observe::quota_denied("credits_spent");
                    self.count(req, Outcome::Credits);
                    return Err(ApiError::CreditsExhausted {
                        refill_in,
                        headers: fields_of(chain.decisions(), refill_in),
                    });
                }
                None => {}
            }
        }

        if let Some(journal) = &self.journal
            && cost > 0
        {
            let today = journal::today(&self.clock);
            // The day of the window the counter decided in (a refill's day or month), which
            // may have begun since `now` was read.
            let decided_day = chain.decision("credits").and_then(window_start_day);
            let subject = credit.as_ref().map(|credit| {
                let day = match credit.kind {
                    'l' => credit.day,
                    _ => decided_day.unwrap_or(credit.day),
                };
                (credit.subject(quota_id), day)
            });
            let mut charges = vec![(quota_id, today, cost)];
            if let Some((subject, day)) = &subject {
                charges.push((subject.as_str(), *day, cost));
            }
            journal
                .record_all(&charges)
                .await
                .map_err(|_| ApiError::Unavailable {
                    detail: "the database is unavailable; try again shortly",
                    retry_after: Some(1),
                })?;
        }
        // In memory the month counts every call (see `charge`).
        if limits.monthly.is_none()
            && cost > 0
            && let Either::Left(monthly) = &self.counters.monthly
        {
            let _counted = monthly.decide_with_limit(quota_id, cost, NonZeroU64::MAX);
        }
        self.count(req, Outcome::Accepted);
        Ok(Charged(HeaderFields::combined(
            chain.decisions().iter().map(|(name, d)| (*name, d)),
            true,
        )))
    }

    /// The answer to a call one of its key's limits stopped: `stop`, the last step of `chain`.
    fn stopped(&self, req: &HttpRequest, chain: &Chain<'_, Counters>, stop: Stop) -> ApiError {
        log_unrefunded(&stop.unrefunded);
        let decided = chain.decisions();
        let decision = match stop.cause {
            Cause::Refused(decision) => decision,
            Cause::Failed(error) => {
                observe::quota_denied("store_unavailable");
                observe::throttled_error("a key limit could not be decided", &error);
                return store_unavailable();
            }
            _ => {
                observe::quota_denied("store_unavailable");
                return store_unavailable();
            }
        };
        let name = stop.name;
        match decision.status() {
            Status::CostExceedsLimit if name == "rate" || name == "credits" => {
                let cost = chain.cost();
                let (slug, outcome, detail, wait) = if name == "rate" {
                    let detail = format!(
                        "this call costs {cost}, more than the {} calls the key's rate limit \
                         allows at once: it cannot pass as it is",
                        decision.limit()
                    );
                    ("rate-limited", Outcome::Rate, detail, None)
                } else {
                    self.credits_above_limit(cost, decision.limit(), limits_of(req))
                };
                observe::quota_denied(if name == "rate" {
                    "rate_limited"
                } else {
                    "credits_spent"
                });
                self.count(req, outcome);
                ApiError::CostAboveLimit {
                    slug,
                    detail,
                    headers: fields_of(decided, wait),
                }
            }
            Status::Limited | Status::CostExceedsLimit => {
                let wait = decision
                    .retry_after()
                    .map(|d| d.as_secs_f64().ceil() as u64);
                let headers = fields_of(decided, None);
                let (reason, outcome, error) = match name {
                    "rate" => (
                        "rate_limited",
                        Outcome::Rate,
                        ApiError::RateLimited {
                            retry_after: wait.unwrap_or(1).max(1),
                            headers,
                        },
                    ),
                    "credits" => (
                        "credits_spent",
                        Outcome::Credits,
                        ApiError::CreditsExhausted {
                            refill_in: wait,
                            headers,
                        },
                    ),
                    _ => ("spent", Outcome::Quota, ApiError::QuotaExceeded { headers }),
                };
                observe::quota_denied(reason);
                tracing::info!(limit = name, "key limit reached");
                self.count(req, outcome);
                error
            }
            _ => {
                observe::quota_denied("store_unavailable");
                store_unavailable()
            }
        }
    }

    /// What a call of `cost` credits above the `limit` of the current window is told: when a
    /// refill will hold it, to come back then.
    fn credits_above_limit(
        &self,
        cost: u64,
        limit: u64,
        limits: Option<CallLimits>,
    ) -> (&'static str, Outcome, String, Option<u64>) {
        let now = u64::try_from(self.clock.now()).unwrap_or(0);
        let refill = limits
            .and_then(|l| l.credits)
            .and_then(|c| c.refill)
            .filter(|refill| refill.amount >= cost);
        let (detail, wait) = match refill {
            Some(refill) => {
                let window = match refill.interval {
                    RefillInterval::Day => Window::Day,
                    RefillInterval::Month => Window::Month,
                };
                let wait = window.bounds(now).1.saturating_sub(now);
                let detail = format!(
                    "this call costs {cost}, more than the key's balance of {limit} credits; \
                     refilled to {} in {wait} s",
                    refill.amount
                );
                (detail, Some(wait))
            }
            None => (
                format!(
                    "this call costs {cost}, more than the key's balance of {limit} credits: \
                     it cannot pass as it is"
                ),
                None,
            ),
        };
        ("credits-exhausted", Outcome::Credits, detail, wait)
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

    /// Counts back, at start-up, what the journal stored (nothing to do on Redis): `month`,
    /// the usage of this month's days up to `today` (`(subject, day, calls)`), and `lifetime`,
    /// the total of each lifetime credit balance. Returns how many counters were restored.
    pub fn restore(
        &self,
        today: i64,
        month_start: i64,
        month: &[(String, i64, u64)],
        lifetime: &[(String, u64)],
    ) -> usize {
        let mut restored = 0;
        let mut add = |counters: &Counters, key: &str, used: u64| {
            if let Either::Left(memory) = counters
                && used > 0
            {
                // Under the largest limit the window takes whatever is added; the key's own
                // limit applies to the calls that follow.
                match memory.decide_with_limit(key, used, NonZeroU64::MAX) {
                    Ok(_) => restored += 1,
                    Err(e) => tracing::error!(error = %e, "a stored quota usage was not restored"),
                }
            }
        };
        let credit_key = |rest: &str| {
            let (set_at, quota_id) = rest.split_once(':')?;
            Some(format!("{quota_id}:{set_at}"))
        };
        for (subject, day, used) in month {
            match subject.strip_prefix(CREDITS_SUBJECT) {
                Some(rest) => match (rest.split_at_checked(2), *day) {
                    (Some(("d:", rest)), day) if day == today => {
                        if let Some(key) = credit_key(rest) {
                            add(&self.counters.credits_day, &key, *used);
                        }
                    }
                    (Some(("m:", rest)), day) if day == month_start => {
                        if let Some(key) = credit_key(rest) {
                            add(&self.counters.credits_month, &key, *used);
                        }
                    }
                    _ => {}
                },
                None => {
                    if *day == today {
                        add(self.limit.backend(), subject, *used);
                    }
                    add(&self.counters.monthly, subject, *used);
                }
            }
        }
        for (subject, used) in lifetime {
            if let Some(key) = subject
                .strip_prefix(LIFETIME_CREDITS_SUBJECT)
                .and_then(credit_key)
            {
                add(&self.counters.credits_lifetime, &key, *used);
            }
        }
        restored
    }

    /// How much the key `req` authenticated with can still spend now, counting nothing: the
    /// least of what its daily quota, rate limit, monthly quota and credits have left; `None`
    /// when that cannot be read now (Redis is away).
    pub async fn remaining(&self, req: &HttpRequest) -> Option<u64> {
        let (key, limit, limits) = quota::RequestView::with_extension(req, |p: &Principal| {
            (
                Arc::clone(&p.quota_id),
                NonZeroU64::new(p.daily_quota),
                p.limits,
            )
        })?;
        let backend = self.limit.backend();
        let usage = match limit {
            Some(limit) => backend.usage_with_limit(&key, limit).await,
            None => backend.usage(&key).await,
        };
        let daily = usage.ok()?.remaining;
        if limits.is_empty() {
            return Some(daily);
        }
        // The least the key's other limits have left: a key that cannot pay one of them is
        // refused before any work too.
        let others = self.limits_usage(&key, &limits).await.ok()?;
        [others.rate_limit, others.monthly_quota, others.credits]
            .into_iter()
            .flatten()
            .map(|usage| usage.remaining)
            .chain([daily])
            .min()
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

    /// What the key with `limits` and quota id `quota_id` has left of its rate limit, monthly
    /// quota and credits, counting nothing.
    ///
    /// # Errors
    /// 503 when Redis does not answer.
    pub async fn limits_usage(
        &self,
        quota_id: &str,
        limits: &CallLimits,
    ) -> Result<LimitsUsage, ApiError> {
        let read = |decided: Result<Decision, quota::Error>| match decided {
            Ok(decision)
                if !matches!(decision.status(), Status::FailedOpen | Status::FailedClosed) =>
            {
                Ok(Usage::from(&decision).into())
            }
            _ => {
                observe::redis_error("quota", "unavailable");
                Err(store_unavailable())
            }
        };
        let mut usage = LimitsUsage::default();
        if let Some(policy) = limits.rate {
            let decided = self
                .counters
                .rate
                .decide_with_policy(quota_id, 0, policy)
                .await;
            usage.rate_limit = Some(read(decided)?);
        }
        if let Some(limit) = limits.monthly {
            let decided = self
                .counters
                .monthly
                .decide_with_limit(quota_id, 0, limit)
                .await;
            usage.monthly_quota = Some(read(decided)?);
        }
        if let Some(credits) = &limits.credits {
            let now = u64::try_from(self.clock.now()).unwrap_or(0);
            let credit = self.counters.credits(credits, quota_id, now);
            usage.credits = Some(match NonZeroU64::new(credit.limit) {
                Some(limit) => read(
                    credit
                        .counters
                        .decide_with_limit(&credit.key, 0, limit)
                        .await,
                )?,
                None => PolicyUsage {
                    limit: 0,
                    used: 0,
                    remaining: 0,
                    reset_secs: credit.ends.map(|end| end.saturating_sub(now)),
                },
            });
        }
        Ok(usage)
    }

    /// Whether the counters live on Redis.
    #[must_use]
    pub fn is_shared(&self) -> bool {
        self.limit.backend().is_right()
    }
}

/// The day (since the epoch) the fixed window of `decision` began; `None` for a lifetime or a
/// decision made without its store.
fn window_start_day(decision: &Decision) -> Option<i64> {
    let window = decision.window();
    if window == quota::NEVER || decision.reset_at_unix_secs() == 0 {
        return None;
    }
    let start = decision
        .reset_at_unix_secs()
        .checked_sub(window.as_secs())?;
    i64::try_from(start / 86_400).ok()
}

/// The per-key limits of the key `req` authenticated with.
fn limits_of(req: &HttpRequest) -> Option<CallLimits> {
    quota::RequestView::with_extension(req, |p: &Principal| p.limits)
}

/// Logs the refunds a stopped call could not make.
fn log_unrefunded(errors: &[quota::Error]) {
    for error in errors {
        observe::throttled_error("a refused call's charge was not given back", error);
    }
}

/// The fields of the policies decided so far; `Retry-After` of `wait` seconds when none of
/// them gives one.
fn fields_of(shown: &[(&'static str, Decision)], wait: Option<u64>) -> crate::error::ExtraHeaders {
    let mut headers: crate::error::ExtraHeaders =
        HeaderFields::combined(shown.iter().map(|(name, d)| (*name, d)), true)
            .into_pairs()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();
    if let Some(wait) = wait
        && !headers.iter().any(|(name, _)| *name == "retry-after")
    {
        headers.push(("retry-after", wait.max(1).to_string()));
    }
    headers
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
                        .and_then(Decision::retry_after)
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
