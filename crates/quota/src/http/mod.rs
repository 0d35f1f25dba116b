//! The HTTP seam shared by the actix-web middleware and the tower layer: what a key extractor
//! sees of a request, the ready-made extractors, and the limiter that turns a request into a
//! decision, headers and, when refused, an `application/problem+json` answer.

mod extract;
mod key;

#[cfg(feature = "actix")]
mod actix;
#[cfg(feature = "tower")]
mod tower;

use core::num::NonZeroU64;
use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;

#[cfg(feature = "actix")]
pub use actix::{RateLimitMiddleware, actix_response, append_allowed_fields};
pub use extract::{ForwardedIp, FromExtension, FromHeader, KeyExtractor, PeerIp, Unkeyed};
pub use key::QuotaKey;
#[cfg(feature = "tower")]
pub use tower::{RateLimitService, ResponseFuture, http_response};

use crate::backend::Backend;
use crate::decision::{Decision, Status, ceil_secs, sf_integer, sf_string};
use crate::error::{Error, Result};

/// What the limiter and the key extractors read of an incoming request, whatever the framework.
///
/// Implemented for actix-web's `ServiceRequest` (feature `actix`) and for `http::Request<B>`
/// (feature `tower`); implement it to use the extractors with another framework.
pub trait RequestView {
    /// The TCP peer's address, when known.
    fn peer_ip(&self) -> Option<IpAddr>;
    /// The first value of the header `name` (lower case), as bytes.
    fn header(&self, name: &str) -> Option<&[u8]>;
    /// Every value of the header `name` (lower case), in the order received.
    fn header_values(&self, name: &str) -> Vec<&[u8]>;
    /// Applies `f` to the request extension of type `T`, if an earlier layer inserted one.
    fn with_extension<T: Send + Sync + 'static, O>(&self, f: impl FnOnce(&T) -> O) -> Option<O>;
    /// The method, e.g. `POST`.
    fn method(&self) -> &str;
    /// The path, without the query.
    fn path(&self) -> &str;
}

/// An answer that refuses a request: status, extra headers, content type and body, in a form
/// any framework can send. The default ones are RFC 9457 problem documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status code.
    pub status: u16,
    /// Extra headers, e.g. `retry-after` and the rate-limit fields. Names may be in any case;
    /// one that is not a valid header name is left out.
    pub headers: Vec<(&'static str, String)>,
    /// The `Content-Type`, `application/problem+json` for the default bodies.
    pub content_type: Cow<'static, str>,
    /// The body.
    pub body: Vec<u8>,
}

impl Rejection {
    /// An `application/problem+json` answer (RFC 9457) with `type` `about:blank`, the status's
    /// own reason phrase as `title`, and `detail`.
    #[must_use]
    pub fn problem(status: u16, detail: &str) -> Self {
        #[derive(serde::Serialize)]
        struct Problem<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            title: &'a str,
            status: u16,
            detail: &'a str,
        }
        let body = serde_json::to_vec(&Problem {
            kind: "about:blank",
            title: reason_phrase(status),
            status,
            detail,
        })
        .unwrap_or_default();
        Self {
            status,
            headers: Vec::new(),
            content_type: Cow::Borrowed("application/problem+json"),
            body,
        }
    }

    /// The same answer with one more header (`name` in any case).
    #[must_use]
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// The detail of a refusal for want of a decision.
const UNAVAILABLE: &str = "the quota store is unavailable; try again shortly";

/// The reason phrase of the statuses a limiter sends.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Why the limiter refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The limit is reached (429 with `Retry-After`).
    Limited,
    /// The request costs more than the limit: it can never be granted (429, no `Retry-After`).
    CostExceedsLimit,
    /// The store gave no decision and the limiter fails closed, or it failed with no fail mode
    /// (503 with `Retry-After: 1`).
    Unavailable,
    /// The key extractor found nothing to count the request by (its [`Unkeyed`] status).
    Unkeyed,
    /// The extracted key is longer than the backend accepts (400).
    KeyTooLong,
}

/// What the [`on_refusal`](RateLimitBuilder::on_refusal) hook is told about a refusal.
#[derive(Debug)]
#[non_exhaustive]
pub struct Refusal<'a> {
    /// Why the request is refused.
    pub reason: RefusalReason,
    /// The backend's decision, when there is one.
    pub decision: Option<&'a Decision>,
    /// The name the policy is reported under.
    pub policy_name: &'a str,
    /// The default answer's `detail`: what the client is told, e.g. `the login limit of 5 is
    /// reached; retry in 12 s`, or why no key could be read from the request.
    pub detail: &'a str,
    /// The answer the limiter would send: change its body, keep its headers.
    pub default: Rejection,
}

/// The rate-limit fields of an answer: `RateLimit-Policy`, `RateLimit`, `Retry-After` and, on
/// request, `X-RateLimit-*`. Small, so that futures carrying it are cheap to move; the numbers
/// are written out when the fields are added to the answer.
#[derive(Clone, Debug, Default)]
pub struct HeaderFields {
    policy: Option<Bytes>,
    current: Option<Bytes>,
    retry_after: Option<u64>,
    x: Option<[u64; 3]>,
}

impl HeaderFields {
    /// The fields of several policies that all apply to one call (a per-second rate, a daily
    /// and a monthly quota, say), each `(name, decision)`:
    ///
    /// - `RateLimit-Policy` lists every policy, in the order given;
    /// - `RateLimit`, and the `X-RateLimit-*` fields when `x_headers`, describe the tightest:
    ///   the one with the least remaining (of equal remaining, the one that takes longest to be
    ///   whole again);
    /// - `Retry-After`, when some are limited, is the longest wait among them.
    ///
    /// A decision made without its store (failed open or closed) is listed in
    /// `RateLimit-Policy` only. Names are written as Structured Field Strings, and numbers as
    /// Structured Field Integers, capped at 999,999,999,999,999 (15 digits, RFC 9651); the
    /// `X-RateLimit-*` fields carry the exact numbers.
    ///
    /// ```
    /// use core::num::NonZeroU64;
    /// use std::time::Duration;
    /// use quota::{FakeClock, HeaderFields, MemoryBackend, Policy};
    ///
    /// let n = |v| NonZeroU64::new(v).unwrap();
    /// let clock = FakeClock::at_unix_secs(1_767_225_600); // 2026-01-01T00:00:00Z
    /// let rate = MemoryBackend::builder(Policy::gcra(n(10), Duration::from_secs(1))?)
    ///     .clock(clock.clone())
    ///     .build()?;
    /// let daily = MemoryBackend::builder(Policy::per_day(n(1_000))).clock(clock).build()?;
    /// let (r, d) = (rate.decide("k", 1)?, daily.decide("k", 1)?);
    /// let fields: Vec<_> = HeaderFields::combined([("rate", &r), ("daily", &d)], false)
    ///     .into_pairs()
    ///     .map(|(name, value)| (name, String::from_utf8(value.to_vec()).unwrap()))
    ///     .collect();
    /// assert_eq!(fields[0].1, r#""rate";q=10;w=1, "daily";q=1000;w=86400"#);
    /// assert_eq!(fields[1].1, r#""rate";r=9;t=1"#);
    /// # Ok::<(), quota::Error>(())
    /// ```
    #[must_use]
    pub fn combined<'a>(
        decisions: impl IntoIterator<Item = (&'a str, &'a Decision)>,
        x_headers: bool,
    ) -> Self {
        let mut policy = Vec::with_capacity(128);
        let mut tightest: Option<(&str, &Decision)> = None;
        let mut retry_after: Option<u64> = None;
        for (name, decision) in decisions {
            if !policy.is_empty() {
                policy.extend_from_slice(b", ");
            }
            push_sf_string(&mut policy, name);
            policy.extend_from_slice(b";q=");
            push_sf_integer(&mut policy, decision.limit());
            let window = decision.window();
            if window != crate::decision::NEVER {
                policy.extend_from_slice(b";w=");
                push_sf_integer(&mut policy, ceil_secs(window));
            }
            if decision.is_degraded() {
                continue;
            }
            if let Some(wait) = decision.retry_after() {
                let wait = ceil_secs(wait).max(1);
                retry_after = Some(retry_after.map_or(wait, |w| w.max(wait)));
            }
            let tighter = tightest.is_none_or(|(_, t)| {
                (decision.remaining(), core::cmp::Reverse(decision.reset()))
                    < (t.remaining(), core::cmp::Reverse(t.reset()))
            });
            if tighter {
                tightest = Some((name, decision));
            }
        }
        let current = tightest.map(|(name, d)| {
            let mut current = Vec::with_capacity(name.len() + 32);
            push_sf_string(&mut current, name);
            current.extend_from_slice(b";r=");
            push_sf_integer(&mut current, d.remaining());
            let reset = d.reset();
            if reset != crate::decision::NEVER {
                current.extend_from_slice(b";t=");
                push_sf_integer(&mut current, ceil_secs(reset));
            }
            Bytes::from(current)
        });
        Self {
            policy: (!policy.is_empty()).then(|| Bytes::from(policy)),
            current,
            retry_after,
            x: tightest
                .filter(|_| x_headers)
                .map(|(_, d)| [d.limit(), d.remaining(), d.reset_at_unix_secs()]),
        }
    }

    /// The `(lower-case name, value)` pairs, in order.
    pub fn into_pairs(self) -> impl Iterator<Item = (&'static str, Bytes)> {
        let x = self.x.map(|[limit, remaining, reset]| {
            [
                ("x-ratelimit-limit", decimal(limit)),
                ("x-ratelimit-remaining", decimal(remaining)),
                // A lifetime balance is never whole again: no reset to tell.
                ("x-ratelimit-reset", decimal(reset)),
            ]
            .into_iter()
            .filter(move |&(name, _)| !(name == "x-ratelimit-reset" && reset == u64::MAX))
        });
        self.policy
            .map(|policy| ("ratelimit-policy", policy))
            .into_iter()
            .chain(self.current.map(|current| ("ratelimit", current)))
            .chain(self.retry_after.map(|wait| ("retry-after", decimal(wait))))
            .chain(x.into_iter().flatten())
    }
}

/// Appends `name` as a Structured Field String (see [`sf_string`]), without allocating.
fn push_sf_string(out: &mut Vec<u8>, name: &str) {
    out.push(b'"');
    for c in name.chars() {
        match c {
            '"' | '\\' => {
                out.push(b'\\');
                out.push(c as u8);
            }
            // Printable ASCII: one byte.
            ' '..='~' => out.push(c as u8),
            _ => out.push(b'_'),
        }
    }
    out.push(b'"');
}

/// Appends `n` in decimal, without `fmt`.
fn push_decimal(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends `n` as a Structured Field Integer: in decimal, capped at 15 digits (RFC 9651).
fn push_sf_integer(out: &mut Vec<u8>, n: u64) {
    push_decimal(out, sf_integer(n));
}

fn decimal(n: u64) -> Bytes {
    let mut out = Vec::with_capacity(20);
    push_decimal(&mut out, n);
    Bytes::from(out)
}

type CostFn<R> = Arc<dyn Fn(&R) -> u64 + Send + Sync>;
type LimitFn<R> = Arc<dyn Fn(&R) -> Option<NonZeroU64> + Send + Sync>;
type RefusalFn = Arc<dyn Fn(Refusal<'_>) -> Rejection + Send + Sync>;

/// A rate limit or quota for HTTP requests: a [`Backend`], a [`KeyExtractor`], an optional
/// cost and per-request limit, the headers to send and how to refuse.
///
/// It is the actix-web middleware itself (`App::wrap`, feature `actix`) and the tower layer
/// (`Router::layer`, `ServiceBuilder::layer`, feature `tower`); the request type `R` is
/// `actix_web::dev::ServiceRequest` or `http::Request<B>`. Clones share the backend.
///
/// Every answer, allowed or refused, carries the IETF fields `RateLimit-Policy` and `RateLimit`
/// (draft-ietf-httpapi-ratelimit-headers); a refusal for the limit adds `Retry-After`; the
/// `X-RateLimit-*` fields are optional. A backend error never becomes a 500: it is a 503 with
/// `Retry-After` (wrap a Redis backend in a [`FallbackBackend`](crate::FallbackBackend) to keep
/// serving from memory instead). `RateLimit` and `RateLimit-Policy` are Structured Field Lists
/// whose integers are capped at 999,999,999,999,999 (15 digits, RFC 9651).
///
/// **Several limits on one route.** Stacked `RateLimit` layers each count on their own, the
/// outer one first: a request the outer one counted and an inner one refuses stays counted by
/// the outer one (a client hammering an inner burst limit spends an outer daily quota). On the
/// answer each layer adds its member to `RateLimit-Policy` and `RateLimit`; an `X-RateLimit-*`
/// field already there is kept, so those fields describe the layer closest to the handler. To
/// charge several limits all or nothing, decide them in one place with a
/// [`Chain`](crate::Chain), which gives back what the limits before a refusal counted, and
/// describe them with [`HeaderFields::combined`].
pub struct RateLimit<B, K, R> {
    inner: Arc<Inner<B, K, R>>,
}

struct Inner<B, K, R> {
    backend: B,
    key: K,
    cost: Option<CostFn<R>>,
    limit: Option<LimitFn<R>>,
    name: String,
    /// `name` as a Structured Field String, quoted.
    sf_name: String,
    /// The `RateLimit-Policy` value at the policy's own limit, computed once.
    policy_field: Bytes,
    x_headers: bool,
    allowed_headers: bool,
    on_refusal: Option<RefusalFn>,
}

impl<B, K, R> Clone for RateLimit<B, K, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<B: fmt::Debug, K: fmt::Debug, R> fmt::Debug for RateLimit<B, K, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("backend", &self.inner.backend)
            .field("key", &self.inner.key)
            .field("name", &self.inner.name)
            .field("cost", &self.inner.cost.is_some())
            .field("limit", &self.inner.limit.is_some())
            .field("x_headers", &self.inner.x_headers)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RateLimit`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct RateLimitBuilder<B, K, R> {
    backend: B,
    key: K,
    cost: Option<CostFn<R>>,
    limit: Option<LimitFn<R>>,
    name: String,
    x_headers: bool,
    allowed_headers: bool,
    on_refusal: Option<RefusalFn>,
}

impl<B, K, R> fmt::Debug for RateLimitBuilder<B, K, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitBuilder")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<B: Backend, K: KeyExtractor<R>, R: RequestView> RateLimit<B, K, R> {
    /// A builder counting requests by `key` in `backend`, one unit each, reported as policy
    /// `"default"`.
    pub fn builder(backend: B, key: K) -> RateLimitBuilder<B, K, R> {
        RateLimitBuilder {
            backend,
            key,
            cost: None,
            limit: None,
            name: "default".to_owned(),
            x_headers: false,
            allowed_headers: true,
            on_refusal: None,
        }
    }
}

impl<B: Backend, K: KeyExtractor<R>, R: RequestView> RateLimitBuilder<B, K, R> {
    /// The policy's name in `RateLimit-Policy` and `RateLimit` (default `"default"`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// What each request costs (default 1). A cost of 0 counts nothing and only reports.
    pub fn cost(mut self, cost: impl Fn(&R) -> u64 + Send + Sync + 'static) -> Self {
        self.cost = Some(Arc::new(cost));
        self
    }

    /// The request's own limit, in place of the policy's (`None`: the policy's), for example
    /// the daily quota an authentication layer read from the key's record. It travels with the
    /// call ([`Backend::decide_with_limit`]), so nothing is stored per key beforehand.
    pub fn limit(
        mut self,
        limit: impl Fn(&R) -> Option<NonZeroU64> + Send + Sync + 'static,
    ) -> Self {
        self.limit = Some(Arc::new(limit));
        self
    }

    /// Also send `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (the
    /// reset in Unix seconds, as GitHub and Flask-Limiter send it). Off by default.
    pub const fn x_ratelimit_headers(mut self, on: bool) -> Self {
        self.x_headers = on;
        self
    }

    /// Whether allowed answers carry the rate-limit fields (default: yes). Refusals always
    /// carry them, with `Retry-After`; turn them off on allowed answers only to save their cost
    /// where clients do not read them.
    pub const fn allowed_headers(mut self, on: bool) -> Self {
        self.allowed_headers = on;
        self
    }

    /// Renders refusals with `hook` in place of the default problem bodies. The hook gets the
    /// reason, the decision and the default [`Rejection`]; keep the default's headers so that
    /// clients still learn when to retry.
    pub fn on_refusal(
        mut self,
        hook: impl Fn(Refusal<'_>) -> Rejection + Send + Sync + 'static,
    ) -> Self {
        self.on_refusal = Some(Arc::new(hook));
        self
    }

    /// The limiter.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the name is empty, longer than 64 bytes or not printable
    /// ASCII.
    pub fn build(self) -> Result<RateLimit<B, K, R>> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.bytes().all(|b| (b' '..=b'~').contains(&b));
        if !name_ok {
            return Err(Error::InvalidConfig(
                "the policy name must be 1 to 64 printable ASCII characters",
            ));
        }
        let sf_name = sf_string(&self.name);
        let policy = self.backend.policy();
        let window = crate::fallback::nominal_window(policy);
        let limit = sf_integer(policy.limit());
        let member = if window == crate::decision::NEVER {
            format!("{sf_name};q={limit}")
        } else {
            format!("{sf_name};q={limit};w={}", sf_integer(ceil_secs(window)))
        };
        // Copied once into shared storage: every clone is then a reference count, never a copy.
        let policy_field = Bytes::copy_from_slice(member.as_bytes());
        Ok(RateLimit {
            inner: Arc::new(Inner {
                backend: self.backend,
                key: self.key,
                cost: self.cost,
                limit: self.limit,
                name: self.name,
                sf_name,
                policy_field,
                x_headers: self.x_headers,
                allowed_headers: self.allowed_headers,
                on_refusal: self.on_refusal,
            }),
        })
    }
}

/// The limiter's verdict on one request.
#[derive(Debug)]
#[must_use = "a verdict that is ignored enforces nothing"]
pub enum Verdict {
    /// Go on; add these headers to the answer.
    Allowed(HeaderFields),
    /// Answer this instead of running the handler.
    Refused(Rejection),
}

/// What a request asks the backend: everything read from the request, so that the request need
/// not be held across the backend's await.
#[derive(Debug)]
pub struct Call {
    key: std::result::Result<QuotaKey, Unkeyed>,
    cost: u64,
    limit: Option<NonZeroU64>,
}

impl Call {
    /// The same call at `cost` units instead of the builder's cost: for a cost known only once
    /// the handler has read the body (the size of a number to test, say).
    #[must_use]
    pub const fn with_cost(mut self, cost: u64) -> Self {
        self.cost = cost;
        self
    }

    /// What the call costs.
    #[must_use]
    pub const fn cost(&self) -> u64 {
        self.cost
    }
}

impl<B: Backend, K: KeyExtractor<R>, R: RequestView> RateLimit<B, K, R> {
    /// The backend.
    pub fn backend(&self) -> &B {
        &self.inner.backend
    }

    /// Reads the key, the cost and the limit of `req` (synchronously).
    pub fn prepare(&self, req: &R) -> Call {
        let inner = &*self.inner;
        Call {
            key: inner.key.extract(req),
            cost: inner.cost.as_ref().map_or(1, |cost| cost(req)),
            limit: inner.limit.as_ref().and_then(|limit| limit(req)),
        }
    }

    /// Decides `call` and says what to answer.
    pub async fn decide(&self, call: Call) -> Verdict {
        let key = match &call.key {
            Ok(key) => key,
            Err(unkeyed) => return self.unkeyed(unkeyed),
        };
        let backend = &self.inner.backend;
        if let Some(decided) = backend.decide_now(key.as_str(), call.cost, call.limit) {
            return self.conclude(call.cost, decided);
        }
        let decided = match call.limit {
            Some(limit) => {
                backend
                    .decide_with_limit(key.as_str(), call.cost, limit)
                    .await
            }
            None => backend.decide(key.as_str(), call.cost).await,
        };
        self.conclude(call.cost, decided)
    }

    /// The verdict on `call` when the backend gives it without waiting (see
    /// [`Backend::decide_now`]); `Err(call)`, with nothing counted, when it must be awaited.
    ///
    /// # Errors
    /// The `call` back, for [`decide`](Self::decide).
    pub fn decide_now(&self, call: Call) -> core::result::Result<Verdict, Call> {
        let key = match &call.key {
            Ok(key) => key,
            Err(unkeyed) => return Ok(self.unkeyed(unkeyed)),
        };
        match self
            .inner
            .backend
            .decide_now(key.as_str(), call.cost, call.limit)
        {
            Some(decided) => Ok(self.conclude(call.cost, decided)),
            None => Err(call),
        }
    }

    fn unkeyed(&self, unkeyed: &Unkeyed) -> Verdict {
        let default = Rejection::problem(unkeyed.status(), unkeyed.detail());
        Verdict::Refused(self.refuse(RefusalReason::Unkeyed, None, unkeyed.detail(), default))
    }

    /// The verdict for the backend's answer to a call of `cost`.
    fn conclude(&self, cost: u64, decided: Result<Decision>) -> Verdict {
        let inner = &*self.inner;
        let decision = match decided {
            Ok(decision) => decision,
            Err(Error::KeyTooLong { max, .. }) => {
                let detail = format!("the quota key is longer than {max} bytes");
                let default = Rejection::problem(400, &detail);
                return Verdict::Refused(self.refuse(
                    RefusalReason::KeyTooLong,
                    None,
                    &detail,
                    default,
                ));
            }
            Err(_) => {
                let default = Rejection::problem(503, UNAVAILABLE).with_header("retry-after", "1");
                return Verdict::Refused(self.refuse(
                    RefusalReason::Unavailable,
                    None,
                    UNAVAILABLE,
                    default,
                ));
            }
        };
        let (reason, detail) = match decision.status() {
            Status::Allowed | Status::FailedOpen => {
                return Verdict::Allowed(if inner.allowed_headers {
                    self.fields(&decision)
                } else {
                    HeaderFields::default()
                });
            }
            Status::Limited => {
                let detail = match decision.retry_after() {
                    Some(wait) => format!(
                        "the {} limit of {} is reached; retry in {} s",
                        inner.name,
                        decision.limit(),
                        ceil_secs(wait).max(1)
                    ),
                    // A lifetime balance: no later time would help.
                    None => format!(
                        "the {} limit of {} is spent; it does not renew",
                        inner.name,
                        decision.limit()
                    ),
                };
                (RefusalReason::Limited, detail)
            }
            Status::CostExceedsLimit => {
                let detail = format!(
                    "this request costs {cost}, more than the {} limit of {}",
                    inner.name,
                    decision.limit()
                );
                (RefusalReason::CostExceedsLimit, detail)
            }
            // FailedClosed, and any status a later version adds: refuse, never allow by mistake.
            _ => (RefusalReason::Unavailable, UNAVAILABLE.to_owned()),
        };
        let mut default = if reason == RefusalReason::Unavailable {
            Rejection::problem(503, &detail).with_header("retry-after", "1")
        } else {
            Rejection::problem(429, &detail)
        };
        default.headers.extend(
            self.fields(&decision)
                .into_pairs()
                .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned())),
        );
        Verdict::Refused(self.refuse(reason, Some(&decision), &detail, default))
    }

    /// [`prepare`](Self::prepare) then [`decide`](Self::decide).
    pub async fn check(&self, req: &R) -> Verdict {
        let call = self.prepare(req);
        self.decide(call).await
    }

    fn refuse(
        &self,
        reason: RefusalReason,
        decision: Option<&Decision>,
        detail: &str,
        default: Rejection,
    ) -> Rejection {
        match &self.inner.on_refusal {
            Some(hook) => hook(Refusal {
                reason,
                decision,
                policy_name: &self.inner.name,
                detail,
                default,
            }),
            None => default,
        }
    }

    /// The rate-limit fields of `decision`.
    fn fields(&self, decision: &Decision) -> HeaderFields {
        let inner = &*self.inner;
        let policy = inner.backend.policy();
        let default_window = decision.limit() == policy.limit()
            && decision.window() == crate::fallback::nominal_window(policy);
        let policy = if default_window {
            inner.policy_field.clone()
        } else if decision.window() == crate::decision::NEVER {
            Bytes::from(decision.policy_member(&inner.sf_name))
        } else {
            // A per-request limit (each key its own, say): built on every answer, without `fmt`.
            let mut member = Vec::with_capacity(inner.sf_name.len() + 48);
            member.extend_from_slice(inner.sf_name.as_bytes());
            member.extend_from_slice(b";q=");
            push_sf_integer(&mut member, decision.limit());
            member.extend_from_slice(b";w=");
            push_sf_integer(&mut member, ceil_secs(decision.window()));
            Bytes::from(member)
        };
        if matches!(decision.status(), Status::FailedOpen | Status::FailedClosed) {
            return HeaderFields {
                policy: Some(policy),
                ..HeaderFields::default()
            };
        }
        let mut current = Vec::with_capacity(inner.sf_name.len() + 32);
        current.extend_from_slice(inner.sf_name.as_bytes());
        current.extend_from_slice(b";r=");
        push_sf_integer(&mut current, decision.remaining());
        if decision.reset() != crate::decision::NEVER {
            current.extend_from_slice(b";t=");
            push_sf_integer(&mut current, ceil_secs(decision.reset()));
        }
        HeaderFields {
            policy: Some(policy),
            current: Some(Bytes::from(current)),
            retry_after: decision.retry_after().map(|wait| ceil_secs(wait).max(1)),
            x: inner.x_headers.then(|| {
                [
                    decision.limit(),
                    decision.remaining(),
                    decision.reset_at_unix_secs(),
                ]
            }),
        }
    }
}
