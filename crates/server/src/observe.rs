//! What the server tells its operators: Prometheus metrics, request ids and the access log.
//!
//! Metrics go through the [`metrics`] facade into one process-wide Prometheus recorder
//! (`metrics-exporter-prometheus`, without its HTTP listener); `GET /metrics` renders it. The
//! names are constants here, so the docs and the tests refer to the same strings. Every label
//! takes a bounded set of values: route patterns (never raw paths), status codes, fixed reason
//! names, and the 12-hex fingerprints of the configured upstream keys.
//!
//! Each request runs inside a `request` span (or, in the bundled binary's text log, a task-local
//! context with the same fields) carrying its id (the caller's `X-Request-Id` when it is a short
//! token, otherwise a random one), so every log line written while serving it names the request;
//! the authentication middleware adds the key's id (a fingerprint of its hash, never the key).
//! The id is echoed in the `X-Request-Id` response header.
//!
//! The bundled binary's text log takes a shorter way to the same bytes (see
//! [`write_access_log_with`]): the request's fields live in a task-local [`RequestContext`]
//! instead of a `tracing` span, the text format writes them where the span's would be, and the
//! access line goes straight to the log's writer. A span costs more than the rest of a cheap
//! request's logging: a slot in the registry, its fields formatted, and the filter consulted
//! each time the request's future is polled. A program that installs its own subscriber gets
//! the span.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix_web::HttpMessage as _;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument as _;

/// Requests answered, by route pattern, method and status.
pub const HTTP_REQUESTS: &str = "secure_api_http_requests_total";
/// Time to answer, by route pattern and method (histogram, seconds).
pub const HTTP_DURATION: &str = "secure_api_http_request_duration_seconds";
/// Refused credentials, by reason.
pub const AUTH_FAILURES: &str = "secure_api_auth_failures_total";
/// Valid keys refused for lacking a route's scope, by the scope required.
pub const SCOPE_DENIALS: &str = "secure_api_scope_denials_total";
/// Calls refused by the daily quota, by reason.
pub const QUOTA_DENIALS: &str = "secure_api_quota_denials_total";
/// Logins and registrations refused by the per-client limit.
pub const LOGIN_LIMITED: &str = "secure_api_login_rate_limited_total";
/// Upstream weather calls, by key fingerprint and outcome.
pub const WEATHER_UPSTREAM: &str = "secure_api_weather_upstream_calls_total";
/// Weather answers served from the shared (Redis) cache, by result.
pub const WEATHER_CACHE: &str = "secure_api_weather_cache_total";
/// Password hashes waiting for a slot on the bounded argon2 pool.
pub const ARGON2_QUEUE: &str = "secure_api_argon2_queue_depth";
/// Password hashes running.
pub const ARGON2_RUNNING: &str = "secure_api_argon2_running";
/// Prime tests waiting for a thread of the prime pool.
pub const PRIME_QUEUE: &str = "secure_api_prime_queue_depth";
/// Prime tests running on the prime pool.
pub const PRIME_RUNNING: &str = "secure_api_prime_running";
/// Redis calls that failed, by concern and kind (`unavailable`, `store`).
pub const REDIS_ERRORS: &str = "secure_api_redis_errors_total";
/// Decisions taken without Redis by the fail policy, by concern and policy.
pub const REDIS_FALLBACKS: &str = "secure_api_redis_fallbacks_total";
/// Database calls that failed.
pub const DATABASE_ERRORS: &str = "secure_api_database_errors_total";
/// Audit log entries of refusals that could not be written.
pub const AUDIT_WRITE_FAILURES: &str = "secure_api_audit_write_failures_total";
/// Connections closed by the server's limits, by reason (`per_address`, `body_timeout`).
pub const CONNECTIONS_REFUSED: &str = "secure_api_connections_refused_total";
/// Client connections open that have sent a request, counted against their address's cap.
pub const CONNECTIONS_OPEN: &str = "secure_api_client_connections";

/// The response header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Buckets of the latency histogram, seconds: 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use. Every application built in
/// this process reports into it (tests build several; each test binary is its own process).
pub fn recorder() -> &'static PrometheusHandle {
    RECORDER.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), LATENCY_BUCKETS)
            .expect("the latency buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            // Someone else installed a recorder first (an embedding program): metrics go
            // there, and this handle renders an empty page.
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        describe();
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "Requests answered, by route, method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "Time to answer a request."
    );
    describe_counter!(AUTH_FAILURES, "Refused credentials, by reason.");
    describe_counter!(
        QUOTA_DENIALS,
        "Calls refused by the daily quota, by reason."
    );
    describe_counter!(
        LOGIN_LIMITED,
        "Logins and registrations refused by the per-client limit."
    );
    describe_counter!(
        WEATHER_UPSTREAM,
        "Upstream weather calls, by key fingerprint and outcome."
    );
    describe_counter!(
        WEATHER_CACHE,
        "Lookups in the shared weather cache, by result."
    );
    describe_gauge!(ARGON2_QUEUE, "Password hashes waiting for a slot.");
    describe_gauge!(ARGON2_RUNNING, "Password hashes running.");
    describe_gauge!(PRIME_QUEUE, "Prime tests waiting for a thread.");
    describe_gauge!(PRIME_RUNNING, "Prime tests running on the prime pool.");
    describe_counter!(REDIS_ERRORS, "Failed Redis calls, by concern and kind.");
    describe_counter!(
        REDIS_FALLBACKS,
        "Decisions taken by the fail policy while Redis was unavailable."
    );
    describe_counter!(DATABASE_ERRORS, "Failed database calls.");
    describe_counter!(
        AUDIT_WRITE_FAILURES,
        "Audit entries of refused admin actions that could not be written."
    );
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections answered and closed by a connection limit, by reason."
    );
    describe_gauge!(
        CONNECTIONS_OPEN,
        "Client connections open that have sent a request."
    );
}

/// Counts a connection closed by a limit (`per_address`, `body_timeout`).
pub fn connection_refused(reason: &'static str) {
    metrics::counter!(CONNECTIONS_REFUSED, "reason" => reason).increment(1);
}

/// Sets the number of client connections counted against their addresses' caps.
pub fn client_connections(open: usize) {
    metrics::gauge!(CONNECTIONS_OPEN).set(open as f64);
}

/// The metrics page, Prometheus text format 0.0.4.
#[must_use]
pub fn render() -> String {
    recorder().render()
}

/// Drains histogram buffers; the server calls it every few seconds so that memory stays
/// bounded when nobody scrapes.
pub fn upkeep() {
    recorder().run_upkeep();
}

/// Counts a refused credential.
pub fn auth_failure(reason: &'static str) {
    metrics::counter!(AUTH_FAILURES, "reason" => reason).increment(1);
}

/// Counts a valid key refused for lacking `scope`.
pub fn scope_denied(scope: &'static str) {
    metrics::counter!(SCOPE_DENIALS, "scope" => scope).increment(1);
}

/// Counts a call refused by the daily quota.
pub fn quota_denied(reason: &'static str) {
    metrics::counter!(QUOTA_DENIALS, "reason" => reason).increment(1);
}

/// Counts a login or registration refused by the per-client limit.
pub fn login_limited() {
    metrics::counter!(LOGIN_LIMITED).increment(1);
}

/// Counts one upstream weather call.
pub fn weather_upstream(fingerprint: String, outcome: &'static str) {
    metrics::counter!(WEATHER_UPSTREAM, "key" => fingerprint, "outcome" => outcome).increment(1);
}

/// Counts a lookup in the shared weather cache (`hit`, `miss`, `error`).
pub fn weather_cache(result: &'static str) {
    metrics::counter!(WEATHER_CACHE, "result" => result).increment(1);
}

/// Sets the number of password hashes waiting and running.
pub fn argon2_load(queued: usize, running: usize) {
    metrics::gauge!(ARGON2_QUEUE).set(queued as f64);
    metrics::gauge!(ARGON2_RUNNING).set(running as f64);
}

/// Sets the number of prime tests waiting and running on the prime pool.
pub fn prime_load(queued: usize, running: usize) {
    metrics::gauge!(PRIME_QUEUE).set(queued as f64);
    metrics::gauge!(PRIME_RUNNING).set(running as f64);
}

/// Counts a failed Redis call.
pub fn redis_error(concern: &'static str, kind: &'static str) {
    metrics::counter!(REDIS_ERRORS, "concern" => concern, "kind" => kind).increment(1);
}

/// Counts a decision taken by the fail policy while Redis was unavailable, and logs it at
/// most once a second per concern (see [`Throttle`]), so that an outage under load does not
/// flood the log.
pub fn redis_fallback(concern: &'static str, policy: &'static str) {
    metrics::counter!(REDIS_FALLBACKS, "concern" => concern, "policy" => policy).increment(1);
    if let Some(suppressed) = LOG_THROTTLE.admit(concern, Instant::now()) {
        tracing::warn!(
            concern,
            policy,
            suppressed,
            "Redis unavailable: following the fail policy"
        );
    }
}

/// Logs `error` at ERROR under `cause` (a fixed phrase such as `"database unavailable"`), at
/// most once a second per cause. Each line carries `suppressed`: how many errors of that cause
/// were not logged since the previous line. A failing store under load fails thousands of
/// requests a second with the same error; every one of them is still counted in the metrics.
pub fn throttled_error(cause: &'static str, error: &dyn fmt::Display) {
    if let Some(suppressed) = LOG_THROTTLE.admit(cause, Instant::now()) {
        tracing::error!(error = %error, suppressed, "{cause}");
    }
}

static LOG_THROTTLE: Throttle = Throttle::new(Duration::from_secs(1));

/// At most one log line per cause and interval, counting the lines it held back.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    // Causes are a handful of fixed phrases: a short list, read only on error paths.
    seen: std::sync::Mutex<Vec<(&'static str, Instant, u64)>>,
}

impl Throttle {
    /// A throttle letting one line per cause through each `interval`.
    #[must_use]
    pub const fn new(interval: Duration) -> Self {
        Self {
            interval,
            seen: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// `Some(held back)` when a line for `cause` may be written at `now`, with how many were
    /// held back since the last one; `None` (and one more held back) otherwise.
    pub fn admit(&self, cause: &'static str, now: Instant) -> Option<u64> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match seen.iter_mut().find(|(c, ..)| *c == cause) {
            Some((_, last, held)) if now.saturating_duration_since(*last) < self.interval => {
                *held += 1;
                None
            }
            Some((_, last, held)) => {
                *last = now;
                Some(std::mem::take(held))
            }
            None => {
                seen.push((cause, now, 0));
                Some(0)
            }
        }
    }
}

/// Counts a failed database call.
pub fn database_error() {
    metrics::counter!(DATABASE_ERRORS).increment(1);
}

/// The longest request id taken from a caller.
const MAX_REQUEST_ID: usize = 64;

/// A request's id: the caller's `X-Request-Id` when it is a short token (1 to 64 letters,
/// digits, `-`, `_`, `.`) that holds no key, token or signing secret, so that a trace can cross
/// services; otherwise 16 random hex digits.
/// Kept inline, as every request makes one, stores it and writes it twice.
#[derive(Clone, Copy)]
pub struct RequestId {
    len: u8,
    bytes: [u8; MAX_REQUEST_ID],
}

impl RequestId {
    /// `text` as an id, when it is a short token that holds no secret ([`holds_secret`]: a
    /// key or token sent as the id would be logged and stored in the audit log).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        // The length first: a long header is refused without reading it.
        if !(1..=MAX_REQUEST_ID).contains(&text.len())
            || !text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            || holds_secret(text)
        {
            return None;
        }
        let mut bytes = [0; MAX_REQUEST_ID];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Some(Self {
            len: u8::try_from(text.len()).ok()?,
            bytes,
        })
    }

    /// A new random id.
    #[must_use]
    pub fn random() -> Self {
        let mut random = [0u8; 8];
        rand::fill(&mut random);
        let mut bytes = [0; MAX_REQUEST_ID];
        // 8 bytes are 16 hex digits, which always fit.
        let _ = hex::encode_to_slice(random, &mut bytes[..16]);
        Self { len: 16, bytes }
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII tokens and hex digits are ever stored.
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

fn inbound_request_id(req: &ServiceRequest) -> Option<RequestId> {
    RequestId::parse(req.headers().get(REQUEST_ID_HEADER)?.to_str().ok()?)
}

/// The id of `req` (its `X-Request-Id`), set by [`observe_request`]: the audit log records it.
#[must_use]
pub fn request_id(req: &actix_web::HttpRequest) -> Option<String> {
    req.extensions()
        .get::<RequestId>()
        .map(|id| id.as_str().to_owned())
}

/// The fields of the request being served, where the bundled binary's text log reads them:
/// what the `request` span carries otherwise.
#[derive(Debug)]
pub struct RequestContext {
    id: RequestId,
    method: actix_web::http::Method,
    path: String,
    key: RefCell<Option<Arc<str>>>,
}

impl RequestContext {
    /// The context of a request `id`, before its key is known.
    #[must_use]
    pub fn new(id: RequestId, method: actix_web::http::Method, path: String) -> Self {
        Self {
            id,
            method,
            path,
            key: RefCell::new(None),
        }
    }

    /// Runs `f` with `context` as the request being served on this thread (as
    /// [`observe_request`] does around the request's future).
    pub fn scope<R>(context: Rc<Self>, f: impl FnOnce() -> R) -> R {
        CONTEXT.sync_scope(context, f)
    }

    /// The fields as the `request` span's are written in the text format:
    /// `id=... method=... path=...`, then ` key=...` once the key is known.
    ///
    /// # Errors
    /// When `out` fails.
    pub fn write_fields(&self, out: &mut impl fmt::Write) -> fmt::Result {
        write!(
            out,
            "id={} method={} path={}",
            self.id, self.method, self.path
        )?;
        if let Some(key) = &*self.key.borrow() {
            write!(out, " key={key}")?;
        }
        Ok(())
    }
}

tokio::task_local! {
    static CONTEXT: Rc<RequestContext>;
}

/// Runs `f` on the context of the request being served on this task, if the access log is
/// written directly ([`write_access_log_with`]) and a request is being served.
pub fn with_request_context<R>(f: impl FnOnce(&RequestContext) -> R) -> Option<R> {
    CONTEXT.try_with(|context| f(context)).ok()
}

/// Writes one access line: the request, its status and its duration in microseconds.
pub type AccessLog = Box<dyn Fn(&RequestContext, u16, u64) + Send + Sync>;

static ACCESS_LOG: OnceLock<AccessLog> = OnceLock::new();

/// The target of the access line and the `request` span: this module.
pub const ACCESS_TARGET: &str = module_path!();

/// From now on, requests keep their fields in a [`RequestContext`] instead of a `tracing` span,
/// and their access lines are written by `write` instead of through `tracing`, when `tracing`
/// would log at INFO for [`ACCESS_TARGET`]. For a log subscriber that writes the context of
/// every event ([`with_request_context`]) where the span would be, with a filter by target and
/// level only. Only the first call counts.
pub fn write_access_log_with(write: AccessLog) {
    let _ = ACCESS_LOG.set(write);
}

/// Middleware around every request: the request's span (or context) and id, the access log line
/// (method, route, status, duration; never the query string) and the request metrics.
pub async fn observe_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = inbound_request_id(&req).unwrap_or_else(RequestId::random);
    let method = req.method().clone();
    // The pattern comes from the path alone, so it can be read before routing. (The request
    // itself must not be cloned before routing: actix needs it unshared to record the match.)
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    req.extensions_mut().insert(id);
    let label = method_label(&method);
    let result = match ACCESS_LOG.get() {
        // The context also names the request on the WARN and ERROR lines logged while it is
        // served when the access line itself is filtered out (`RUST_LOG=warn`).
        Some(access_log) => {
            let context = Rc::new(RequestContext::new(
                id,
                method,
                logged_path(req.path()).into_owned(),
            ));
            let mut record = Record::new(route, label, started, |status, elapsed| {
                if tracing::enabled!(tracing::Level::INFO) {
                    access_log(&context, status, micros(elapsed));
                }
            });
            let result = CONTEXT.scope(Rc::clone(&context), next.call(req)).await;
            record.answered(&result);
            result
        }
        None => {
            // At ERROR, so that a filter that keeps any line keeps the span that names its
            // request; the access line below stays at INFO.
            let span = tracing::error_span!(
                "request",
                id = %id,
                method = %method,
                path = %logged_path(req.path()),
                key = tracing::field::Empty,
            );
            let mut record = Record::new(route, label, started, |status, elapsed| {
                span.in_scope(|| {
                    tracing::info!(status, micros = micros(elapsed), "request");
                });
            });
            let result = next.call(req).instrument(span.clone()).await;
            record.answered(&result);
            result
        }
    };
    match result {
        Ok(mut response) => {
            finish_headers(response.headers_mut(), id);
            Ok(response)
        }
        // An error from a middleware (authentication, the request timeout) is turned into its
        // problem response by actix after this point: wrap it so that it gets the same headers.
        Err(error) => Err(Answered { error, id }.into()),
    }
}

static SECRET_PREFIXES: OnceLock<Vec<String>> = OnceLock::new();

/// How much of a key's or token's body (about 40 characters) after its prefix makes text hold
/// a secret: 16 characters still leave nothing to guess, while `sapi_billing` is a name.
pub const SECRET_BODY_MIN: usize = 16;

/// From now on, text that holds one of `prefixes`, `_` and a key's or token's body counts as a
/// secret ([`holds_secret_of`]): a path segment that holds one is logged as
/// `[secret]` (a key or token pasted where an id goes, `DELETE /admin/keys/<the key>`), and an
/// `X-Request-Id` that holds one is replaced. Only the first call counts.
pub fn hide_secrets_in_paths(prefixes: &[&str]) {
    let _ = SECRET_PREFIXES.set(prefixes.iter().map(|&p| p.to_owned()).collect());
}

/// Whether `text` holds a key or token (see [`hide_secrets_in_paths`]) or a signing secret
/// anywhere in it ([`holds_secret_of`]).
#[must_use]
pub fn holds_secret(text: &str) -> bool {
    holds_secret_of(text, SECRET_PREFIXES.get().map_or(&[], Vec::as_slice))
}

/// Whether `text` holds, anywhere in it, one of `prefixes` and `_` followed by at least
/// [`SECRET_BODY_MIN`] letters and digits (a key or token, or most of one: their bodies are
/// base62; an id has `...` there), or a word of exactly 64 hex digits, as a key's signing
/// secret is.
#[must_use]
pub fn holds_secret_of(text: &str, prefixes: &[impl AsRef<str>]) -> bool {
    let signing_secret = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| word.len() == 64 && word.bytes().all(|b| b.is_ascii_hexdigit()));
    signing_secret
        || prefixes.iter().any(|prefix| {
            let prefix = prefix.as_ref();
            text.match_indices(prefix).any(|(at, _)| {
                text[at + prefix.len()..]
                    .strip_prefix('_')
                    .is_some_and(|rest| {
                        rest.bytes().take_while(u8::is_ascii_alphanumeric).count()
                            >= SECRET_BODY_MIN
                    })
            })
        })
}

/// `path` as it is logged: each segment that holds a secret ([`holds_secret`]), also once
/// percent-decoded, is `[secret]`.
fn logged_path(path: &str) -> std::borrow::Cow<'_, str> {
    let secret = |segment: &str| {
        if segment.contains('%') {
            holds_secret(&percent_encoding::percent_decode_str(segment).decode_utf8_lossy())
        } else {
            holds_secret(segment)
        }
    };
    // Most paths hold no segment that could be one.
    let could_be = |segment: &str| segment.contains(['_', '%']) || segment.len() >= 64;
    if !path
        .split('/')
        .any(|segment| could_be(segment) && secret(segment))
    {
        return path.into();
    }
    path.split('/')
        .map(|segment| if secret(segment) { "[secret]" } else { segment })
        .collect::<Vec<_>>()
        .join("/")
        .into()
}

/// The status nginx logs for a request whose client closed the connection before the answer.
pub const CLIENT_CLOSED: u16 = 499;

/// A request's metrics and access line, written once: with its status when it is answered, or
/// with [`CLIENT_CLOSED`] when dropped first. A client that closes its connection makes
/// actix-web drop the request being served, which stops its work.
struct Record<F: FnMut(u16, Duration)> {
    route: Option<String>,
    label: &'static str,
    started: Instant,
    log: F,
}

impl<F: FnMut(u16, Duration)> Record<F> {
    fn new(route: String, label: &'static str, started: Instant, log: F) -> Self {
        Self {
            route: Some(route),
            label,
            started,
            log,
        }
    }

    /// Records the request with the status `result` answers with.
    fn answered<B>(&mut self, result: &Result<ServiceResponse<B>, actix_web::Error>) {
        let status = match result {
            Ok(response) => response.status().as_u16(),
            Err(e) => e.as_response_error().status_code().as_u16(),
        };
        self.write(status);
    }

    fn write(&mut self, status: u16) {
        if let Some(route) = self.route.take() {
            let elapsed = self.started.elapsed();
            record_request(route, self.label, status, elapsed);
            (self.log)(status, elapsed);
        }
    }
}

impl<F: FnMut(u16, Duration)> Drop for Record<F> {
    fn drop(&mut self) {
        self.write(CLIENT_CLOSED);
    }
}

fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

/// Headers on every response: the request id, and the security headers that a handler did
/// not set itself (a JSON API is never framed, sniffed or cached; `/docs` sets its own policy).
fn finish_headers(headers: &mut HeaderMap, id: RequestId) {
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        headers.insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    for (name, value) in SECURITY_HEADERS {
        if !headers.contains_key(&name) {
            headers.insert(name, value);
        }
    }
}

/// The security headers every response carries unless its handler set them, built at compile
/// time (a header name built at run time is validated byte by byte, on every response).
pub const SECURITY_HEADERS: [(HeaderName, HeaderValue); 5] = [
    (
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    ),
    (
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    ),
    (
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    ),
    (
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    ),
    (
        HeaderName::from_static("cache-control"),
        HeaderValue::from_static("no-store"),
    ),
];

/// A middleware's error with the request id, answered with the usual headers.
struct Answered {
    error: actix_web::Error,
    id: RequestId,
}

impl fmt::Debug for Answered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.error, f)
    }
}

impl fmt::Display for Answered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl actix_web::ResponseError for Answered {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.error.as_response_error().status_code()
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        let mut response = self.error.error_response();
        finish_headers(response.headers_mut(), self.id);
        response
    }
}

/// The method as a label: the standard ones by name, any extension method as `OTHER`, so a
/// client cannot mint label values.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The request metrics' handles, by route, method and status. Hashed with `foldhash`, not
/// SipHash: no client chooses these keys (a route pattern or `unmatched`, a method label from a
/// fixed set, a status), so resistance to collisions buys nothing, and this runs on every call.
type RequestHandles =
    foldhash::HashMap<(String, &'static str, u16), (metrics::Counter, metrics::Histogram)>;

fn record_request(route: String, method: &'static str, status: u16, elapsed: Duration) {
    thread_local! {
        /// Looking a handle up in the recorder's registry builds and hashes its labels, which
        /// costs more than the count itself. The labels are bounded (route patterns, standard
        /// methods, statuses), and so is this map.
        static HANDLES: RefCell<RequestHandles> = RefCell::default();
    }
    HANDLES.with_borrow_mut(|handles| {
        let key = (route, method, status);
        if let Some((counter, histogram)) = handles.get(&key) {
            counter.increment(1);
            histogram.record(elapsed.as_secs_f64());
            return;
        }
        let (route, method, status) = key;
        let counter = metrics::counter!(
            HTTP_REQUESTS,
            "route" => route.clone(),
            "method" => method,
            "status" => status.to_string()
        );
        let histogram =
            metrics::histogram!(HTTP_DURATION, "route" => route.clone(), "method" => method);
        counter.increment(1);
        histogram.record(elapsed.as_secs_f64());
        handles.insert((route, method, status), (counter, histogram));
    });
}

/// Records the authenticated key's id on the request being served (its context or its span).
pub fn record_key(key_id: &Arc<str>) {
    let recorded = with_request_context(|context| {
        *context.key.borrow_mut() = Some(Arc::clone(key_id));
    });
    if recorded.is_none() {
        tracing::Span::current().record("key", tracing::field::display(key_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_id_is_a_token_of_at_most_64_bytes_or_16_random_hex_digits() {
        let longest = "a.B-9_".repeat(11)[..64].to_owned();
        assert_eq!(RequestId::parse(&longest).unwrap().as_str(), longest);
        assert_eq!(RequestId::parse("x").unwrap().to_string(), "x");
        for refused in ["", &"a".repeat(65), "a b", "é", "a/b", "a\u{0}"] {
            assert!(RequestId::parse(refused).is_none(), "{refused:?}");
        }
        let (one, two) = (RequestId::random(), RequestId::random());
        assert_eq!(one.as_str().len(), 16);
        assert!(
            one.as_str()
                .bytes()
                .all(|b| b"0123456789abcdef".contains(&b))
        );
        assert_ne!(one.as_str(), two.as_str());
    }

    #[test]
    fn keys_tokens_and_signing_secrets_are_found_anywhere_in_text_but_ids_are_not() {
        let prefixes = ["sapi", "sadm"];
        let key = "sapi_1xaJWXCMHMaxfFtFdV2BchnmZjFcmHdQzNoIjz25kgOV";
        for text in [
            key,
            &format!("x{key}"),
            &format!(" {key} "),
            "sadm_iwG6ypm19xiUk720YhEBg8wU9KzJdqYB4HIxyU",
            "1315083d445618a3fe06ff1554838235f766a72cb97c6bfda2cd608a76338940",
            "secret: 1315083d445618a3fe06ff1554838235f766a72cb97c6bfda2cd608a76338940.",
        ] {
            assert!(holds_secret_of(text, &prefixes), "{text}");
        }
        for text in [
            "sapi_...57e2781a18e6",
            "sadm_...63d8fae57498",
            "billing",
            "sapi",
            "sapi_billing",
            "sapi_billing-reconciliation",
            "sadm_notifications_team",
            "sapi_checkout-web-000042",
            "trace-1",
            "1315083d445618a3fe06ff1554838235",
            // 65 hex digits, or 64 inside a longer word, are not a signing secret's shape.
            "01315083d445618a3fe06ff1554838235f766a72cb97c6bfda2cd608a76338940",
            "x1315083d445618a3fe06ff1554838235f766a72cb97c6bfda2cd608a76338940",
        ] {
            assert!(!holds_secret_of(text, &prefixes), "{text}");
        }
        hide_secrets_in_paths(&prefixes);
        assert_eq!(
            logged_path(&format!("/admin/keys/{key}")),
            "/admin/keys/[secret]"
        );
        for encoded in [
            "%73api_1xaJWXCMHMaxfFtFdV2BchnmZjFcmHdQzNoIjz25kgOV",
            "sapi%5F1xaJWXCMHMaxfFtFdV2BchnmZjFcmHdQzNoIjz25kgOV",
            "%20sapi_1xaJWXCMHMaxfFtFdV2BchnmZjFcmHdQzNoIjz25kgOV",
        ] {
            assert_eq!(
                logged_path(&format!("/admin/keys/{encoded}/rotate")),
                "/admin/keys/[secret]/rotate"
            );
        }
        assert_eq!(
            logged_path("/admin/keys/sapi_...57e2781a18e6"),
            "/admin/keys/sapi_...57e2781a18e6"
        );
        assert_eq!(
            logged_path(
                "/admin/keys/x-1315083d445618a3fe06ff1554838235f766a72cb97c6bfda2cd608a76338940"
            ),
            "/admin/keys/[secret]"
        );
        assert!(RequestId::parse(key).is_none());
        assert!(RequestId::parse("trace_1").is_some());
    }

    #[test]
    fn a_cause_is_logged_once_an_interval_with_the_count_held_back() {
        let throttle = Throttle::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(throttle.admit("database unavailable", t0), Some(0));
        for ms in [1, 500, 999] {
            let at = t0 + Duration::from_millis(ms);
            assert_eq!(throttle.admit("database unavailable", at), None);
        }
        // Another cause has its own interval.
        assert_eq!(throttle.admit("key lookup failed", t0), Some(0));
        assert_eq!(
            throttle.admit("database unavailable", t0 + Duration::from_secs(1)),
            Some(3)
        );
        assert_eq!(
            throttle.admit("database unavailable", t0 + Duration::from_millis(1_500)),
            None
        );
        assert_eq!(
            throttle.admit("database unavailable", t0 + Duration::from_secs(5)),
            Some(1)
        );
    }
}
