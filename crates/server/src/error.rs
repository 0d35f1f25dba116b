//! One error type for every handler, rendered in one place as an RFC 9457 problem body.
//!
//! Handlers return `Result<_, ApiError>`; nothing else builds an error body. The body is
//! `application/problem+json` with `type`, `title`, `status` and `detail`, plus an `error`
//! member carrying the detail, which clients written for the original service read.
//! Internal failures are logged with their cause and answered with a generic 500: no SQL
//! message, stack, key or secret ever reaches a client.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// The message the original service sent when a key's daily quota was spent.
pub const QUOTA_EXCEEDED_MESSAGE: &str = "Request limit exceeded. Please try again later.";

/// Extra response headers a problem carries (rate-limit headers, `Retry-After`).
pub type ExtraHeaders = Vec<(&'static str, String)>;

/// Everything a handler can answer besides success.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request is malformed: bad JSON, wrong type, wrong content type.
    #[error("{0}")]
    BadRequest(String),
    /// A field failed validation.
    #[error("{field}: {reason}")]
    Validation {
        /// The field, as named in the request body.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// Credentials are missing or wrong: the reason (a fixed label, counted in the metrics)
    /// and the detail the caller sees.
    #[error("{1}")]
    Unauthorized(&'static str, Cow<'static, str>),
    /// The caller is authenticated but may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The API key is valid but lacks the scope the route requires.
    #[error("this API key lacks the scope {0}, which this endpoint requires")]
    InsufficientScope(crate::auth::scope::Scope),
    /// Nothing answers at this path, or the object does not exist for this caller.
    #[error("{0}")]
    NotFound(&'static str),
    /// The path exists but not with this method; the methods it has, for `Allow`.
    #[error("method not allowed")]
    MethodNotAllowed {
        /// The value of the `Allow` field: the path's methods, such as `GET, HEAD`.
        allow: &'static str,
    },
    /// The object already exists.
    #[error("{0}")]
    Conflict(&'static str),
    /// The body or a value in it is larger than the server accepts.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A key's quota is spent: the original's 429.
    #[error("{QUOTA_EXCEEDED_MESSAGE}")]
    QuotaExceeded {
        /// Rate-limit headers and `Retry-After`.
        headers: ExtraHeaders,
    },
    /// A key's credits are spent: nothing more until its refill, or ever without one.
    #[error("this key has no credits left{}", refill_hint(*.refill_in))]
    CreditsExhausted {
        /// Seconds until the refill, when the credits are refilled.
        refill_in: Option<u64>,
        /// Rate-limit headers (and `Retry-After` until the refill).
        headers: ExtraHeaders,
    },
    /// A call that costs more than a key's rate limit or credits hold at once: it cannot pass
    /// as it is (a cheaper one can). `slug` is the limit's problem type.
    #[error("{detail}")]
    CostAboveLimit {
        /// `rate-limited` or `credits-exhausted`.
        slug: &'static str,
        /// What it costs against what the limit holds.
        detail: String,
        /// Rate-limit headers (and `Retry-After` when a refill will hold the call).
        headers: ExtraHeaders,
    },
    /// Too many requests from this client (login and registration limits).
    #[error("too many requests; retry in {retry_after} s")]
    RateLimited {
        /// Seconds until a request can succeed.
        retry_after: u64,
        /// Rate-limit headers.
        headers: ExtraHeaders,
    },
    /// The client's address has as many connections open as it may (`Retry-After: 1`).
    #[error(
        "this address has {limit} connections open, the most it may; close one or retry in 1 s"
    )]
    TooManyConnections {
        /// Connections one address may have open.
        limit: usize,
    },
    /// The request body did not arrive in time.
    #[error("the request body did not arrive within {0} s")]
    BodyTimeout(u64),
    /// The server is missing configuration it needs for this endpoint.
    #[error("Server configuration error: {0}")]
    ServerConfiguration(&'static str),
    /// An upstream or dependency is temporarily unavailable.
    #[error("{detail}")]
    Unavailable {
        /// What is unavailable.
        detail: &'static str,
        /// Seconds until it is expected back, when known.
        retry_after: Option<u64>,
    },
    /// The upstream answered with something unusable.
    #[error("{0}")]
    BadGateway(&'static str),
    /// The upstream did not answer in time.
    #[error("{0}")]
    GatewayTimeout(&'static str),
    /// A refusal a crate's limiter already rendered in the server's shape (the daily quota's):
    /// sent as it is.
    #[error("refused with {}", .0.status)]
    Refused(Rendered),
    /// A failure the client cannot act on; its cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// An internal error from any cause; the cause is logged when the response is built.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(cause.into())
    }

    /// A 401 with `detail`; `reason` is a fixed label such as `unknown_key`, counted in
    /// `secure_api_auth_failures_total` when the response is sent.
    pub fn unauthorized(reason: &'static str, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::Unauthorized(reason, detail.into())
    }

    /// A validation error on `field`.
    pub fn validation(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Validation {
            field,
            reason: reason.into(),
        }
    }

    /// The problem type's short name, used in `type` as `/problems/<slug>`.
    fn slug(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad-request",
            Self::Validation { .. } => "validation",
            Self::Unauthorized(..) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::InsufficientScope(_) => "insufficient-scope",
            Self::NotFound(_) => "not-found",
            Self::MethodNotAllowed { .. } => "method-not-allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge(_) => "payload-too-large",
            Self::QuotaExceeded { .. } => "quota-exceeded",
            Self::RateLimited { .. } => "rate-limited",
            Self::CreditsExhausted { .. } => "credits-exhausted",
            Self::CostAboveLimit { slug, .. } => slug,
            Self::TooManyConnections { .. } => "too-many-connections",
            Self::BodyTimeout(_) => "body-timeout",
            Self::ServerConfiguration(_) => "server-configuration",
            Self::Unavailable { .. } => "unavailable",
            Self::BadGateway(_) => "bad-gateway",
            Self::GatewayTimeout(_) => "gateway-timeout",
            Self::Refused(_) => "refused",
            Self::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "Bad request",
            Self::Validation { .. } => "Invalid input",
            Self::Unauthorized(..) => "Unauthorized",
            Self::Forbidden(_) => "Forbidden",
            Self::InsufficientScope(_) => "Insufficient scope",
            Self::NotFound(_) => "Not found",
            Self::MethodNotAllowed { .. } => "Method not allowed",
            Self::Conflict(_) => "Conflict",
            Self::PayloadTooLarge(_) => "Payload too large",
            Self::QuotaExceeded { .. } => "Quota exceeded",
            Self::RateLimited { .. } => "Too many requests",
            Self::CreditsExhausted { .. } => "Credits exhausted",
            Self::CostAboveLimit {
                slug: "credits-exhausted",
                ..
            } => "Credits exhausted",
            Self::CostAboveLimit { .. } => "Too many requests",
            Self::TooManyConnections { .. } => "Too many connections",
            Self::BodyTimeout(_) => "Request timeout",
            Self::ServerConfiguration(_) => "Server configuration error",
            Self::Unavailable { .. } => "Service unavailable",
            Self::BadGateway(_) => "Bad gateway",
            Self::GatewayTimeout(_) => "Gateway timeout",
            Self::Refused(_) => "Refused",
            Self::Internal(_) => "Internal server error",
        }
    }

    fn headers(&self) -> ExtraHeaders {
        match self {
            Self::QuotaExceeded { headers }
            | Self::CreditsExhausted { headers, .. }
            | Self::CostAboveLimit { headers, .. } => headers.clone(),
            Self::RateLimited {
                retry_after,
                headers,
            } => {
                let mut all = headers.clone();
                if !all.iter().any(|(name, _)| *name == "retry-after") {
                    all.push(("retry-after", retry_after.to_string()));
                }
                all
            }
            Self::Unavailable {
                retry_after: Some(secs),
                ..
            } => vec![("retry-after", secs.to_string())],
            Self::TooManyConnections { .. } => vec![("retry-after", "1".to_owned())],
            Self::MethodNotAllowed { allow } => vec![("allow", (*allow).to_owned())],
            _ => Vec::new(),
        }
    }
}

/// `; refilled in N s`, or nothing without a refill.
fn refill_hint(refill_in: Option<u64>) -> String {
    refill_in.map_or_else(String::new, |secs| format!("; refilled in {secs} s"))
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem, e.g. `/problems/quota-exceeded`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// The same text as `detail`, for clients of the original service that read `error`.
    pub error: String,
    /// For validation problems, the field that was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// For an insufficient scope (403), the scope the endpoint requires.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "prime:check")]
    pub required_scope: Option<&'static str>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::Validation { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(..) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::QuotaExceeded { .. }
            | Self::CreditsExhausted { .. }
            | Self::CostAboveLimit { .. }
            | Self::RateLimited { .. }
            | Self::TooManyConnections { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::ServerConfiguration(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Refused(rendered) => {
                StatusCode::from_u16(rendered.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let rendered = self.render();
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        for (name, value) in rendered.headers {
            response.insert_header((name, value));
        }
        response.body(rendered.body)
    }
}

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error as it is sent: status, headers (besides `Content-Type`) and the problem body.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The HTTP status code.
    pub status: u16,
    /// `WWW-Authenticate` on a 401, `Retry-After` and the rate-limit fields where they apply.
    pub headers: ExtraHeaders,
    /// The `application/problem+json` body.
    pub body: Vec<u8>,
}

impl ApiError {
    /// The answer for this error, logged and counted: internal causes go to the log (never
    /// to the client), 401s to `secure_api_auth_failures_total`. The crates' middleware
    /// answers their refusals with it too, so every error body has one shape.
    #[must_use]
    pub fn render(&self) -> Rendered {
        if let Self::Refused(rendered) = self {
            return rendered.clone();
        }
        let status = self.status_code();
        match self {
            Self::Internal(cause) => {
                crate::observe::throttled_error("internal error", &ErrorChain(cause.as_ref()));
            }
            // Repeated on every call until an operator acts: once a second, with a count.
            Self::ServerConfiguration(what) => {
                crate::observe::throttled_error("server configuration error", what);
            }
            Self::Unauthorized(reason, _) => crate::observe::auth_failure(reason),
            Self::InsufficientScope(scope) => crate::observe::scope_denied(scope.name()),
            _ => {}
        }
        let detail = self.to_string();
        let problem = Problem {
            kind: format!("/problems/{}", self.slug()),
            title: self.title().to_owned(),
            status: status.as_u16(),
            error: detail.clone(),
            detail,
            field: match self {
                Self::Validation { field, .. } => Some(field),
                _ => None,
            },
            required_scope: match self {
                Self::InsufficientScope(scope) => Some(scope.name()),
                _ => None,
            },
        };
        let mut headers = self.headers();
        if status == StatusCode::UNAUTHORIZED {
            headers.push(("www-authenticate", "Bearer".to_owned()));
        }
        Rendered {
            status: status.as_u16(),
            headers,
            body: serde_json::to_vec(&problem).unwrap_or_default(),
        }
    }
}

/// The crates' middleware refusals, in the server's problem shape (`on_refusal` hooks).
macro_rules! into_rejection {
    ($($rejection:ty),*) => {$(
        impl From<ApiError> for $rejection {
            fn from(error: ApiError) -> Self {
                let Rendered { status, headers, body } = error.render();
                Self {
                    status,
                    headers,
                    content_type: Cow::Borrowed(PROBLEM_JSON),
                    body,
                }
            }
        }
    )*};
}

impl From<quota::Rejection> for Rendered {
    fn from(rejection: quota::Rejection) -> Self {
        Self {
            status: rejection.status,
            headers: rejection.headers,
            body: rejection.body,
        }
    }
}

into_rejection!(
    apikey_gen::Rejection,
    request_signing::Rejection,
    quota::Rejection
);

/// Displays an error with its sources, for logs.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        match error {
            crate::store::StoreError::Conflict => Self::Conflict("already exists"),
            crate::store::StoreError::Database(e) => e.into(),
            other => {
                crate::observe::database_error();
                Self::internal(other)
            }
        }
    }
}

impl From<sqlx::Error> for ApiError {
    /// A database that cannot be reached is a 503 the client may retry; any other database
    /// failure is a 500. Both are logged and counted, and neither says more to the client.
    fn from(error: sqlx::Error) -> Self {
        crate::observe::database_error();
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                crate::observe::throttled_error("database unavailable", &error);
                Self::Unavailable {
                    detail: "the database is unavailable; try again shortly",
                    retry_after: Some(1),
                }
            }
            other => Self::internal(other),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        Self::internal(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    async fn body_of(error: ApiError) -> (StatusCode, serde_json::Value, HttpResponse<()>) {
        let response = error.error_response();
        let status = response.status();
        let (head, body) = response.into_parts();
        let bytes = to_bytes(body).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap(), head)
    }

    #[actix_web::test]
    async fn quota_exceeded_keeps_the_original_message_and_headers() {
        let error = ApiError::QuotaExceeded {
            headers: vec![
                ("retry-after", "120".into()),
                ("x-ratelimit-limit", "5".into()),
            ],
        };
        let (status, body, head) = body_of(error).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["error"], QUOTA_EXCEEDED_MESSAGE);
        assert_eq!(body["detail"], QUOTA_EXCEEDED_MESSAGE);
        assert_eq!(body["status"], 429);
        assert_eq!(body["type"], "/problems/quota-exceeded");
        assert_eq!(head.headers().get("retry-after").unwrap(), "120");
        assert_eq!(head.headers().get("x-ratelimit-limit").unwrap(), "5");
        assert_eq!(
            head.headers().get("content-type").unwrap(),
            "application/problem+json"
        );
    }

    #[actix_web::test]
    async fn internal_errors_never_show_their_cause() {
        let cause = std::io::Error::other("SELECT secret FROM keys failed near 'hunter2'");
        let (status, body, _) = body_of(ApiError::internal(cause)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let text = body.to_string();
        assert!(!text.contains("SELECT"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(body["detail"], "internal error");
    }

    #[actix_web::test]
    async fn validation_names_the_field() {
        let (status, body, _) = body_of(ApiError::validation(
            "username",
            "must be 3 to 32 characters",
        ))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["field"], "username");
        assert_eq!(body["detail"], "username: must be 3 to 32 characters");
    }

    #[actix_web::test]
    async fn rate_limited_always_has_retry_after() {
        let error = ApiError::RateLimited {
            retry_after: 12,
            headers: Vec::new(),
        };
        let (status, _, head) = body_of(error).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(head.headers().get("retry-after").unwrap(), "12");
    }
}
