//! API-key authentication as actix-web middleware and as a tower layer.

/// Defines, for one framework's `header` module (actix-web's and `http`'s types differ),
/// `header(headers, name)`, what the request holds of the header `name` (absent, one value, or
/// several), and the public `$presented`, the [`presented_key`](crate::presented_key) of a
/// header map. The key headers, and the signature headers that
/// [`skip_when_header`](ApiKeyAuthBuilder::skip_when_header) names, are matched to names built
/// at compile time: a lookup by `&str` parses the name, and copies one that is not a standard
/// header into a new allocation, on every request.
#[cfg(any(feature = "actix", feature = "tower"))]
macro_rules! header_lookup {
    ($presented:ident, $($header:ident)::+) => {
        /// The key presented in `headers` ([`presented_key`](crate::presented_key)), read
        /// without parsing the header names.
        ///
        /// # Errors
        /// As [`presented_key`](crate::presented_key).
        pub fn $presented(
            headers: &$($header)::+::HeaderMap,
        ) -> crate::Result<crate::PresentedKey<'_>> {
            crate::presented::presented_key_of(|name| header(headers, name))
        }

        /// The field `name` of `headers`: absent, one value, or sent more than once.
        fn header<'h>(
            headers: &'h $($header)::+::HeaderMap,
            name: &str,
        ) -> crate::presented::Found<'h> {
            use $($header)::+::{AUTHORIZATION, HeaderName};
            use crate::presented::Found;
            const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
            const SIGNATURE: HeaderName = HeaderName::from_static("x-api-signature");
            const SIGNATURE_INPUT: HeaderName = HeaderName::from_static("signature-input");
            const RFC9421_SIGNATURE: HeaderName = HeaderName::from_static("signature");
            let mut values = match name {
                "x-api-key" => headers.get_all(X_API_KEY),
                "authorization" => headers.get_all(AUTHORIZATION),
                "x-api-signature" => headers.get_all(SIGNATURE),
                "signature-input" => headers.get_all(SIGNATURE_INPUT),
                "signature" => headers.get_all(RFC9421_SIGNATURE),
                other => headers.get_all(other),
            }
            .into_iter();
            match (values.next(), values.next()) {
                (None, _) => Found::Absent,
                (Some(value), None) => Found::One(value.as_bytes()),
                (Some(_), Some(_)) => Found::Several,
            }
        }
    };
}

#[cfg(feature = "actix")]
mod actix;
#[cfg(feature = "tower")]
mod tower;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

#[cfg(feature = "actix")]
pub use actix::{ApiKeyAuthMiddleware, actix_presented_key, actix_response};
#[cfg(feature = "tower")]
pub use tower::{ApiKeyAuthService, http_presented_key, http_response};

use crate::auth::{Authenticator, Clock, KeyStore};
use crate::error::Error;
use crate::presented::{Found, KeySource, presented_key_of};

/// An answer that refuses a request: status, extra headers, content type and body, in a form
/// any framework can send. The default ones are RFC 9457 problem documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status code.
    pub status: u16,
    /// Extra headers, e.g. `www-authenticate` or `retry-after`. Names may be in any case; one
    /// that is not a valid header name is left out.
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
        let title = match status {
            401 => "Unauthorized",
            503 => "Service Unavailable",
            _ => "Error",
        };
        let body = serde_json::to_vec(&Problem {
            kind: "about:blank",
            title,
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

    /// The default answer to an authentication error: 503 with `Retry-After: 1` when the store
    /// failed (its message is not sent), otherwise 401 with `WWW-Authenticate: Bearer` and the
    /// error's text, which never contains the key.
    #[must_use]
    pub fn for_error(error: &Error) -> Self {
        match error {
            Error::StoreUnavailable { .. } => {
                Self::problem(503, "the key store is unavailable; try again shortly")
                    .with_header("retry-after", "1")
            }
            other => {
                Self::problem(401, &other.to_string()).with_header("www-authenticate", "Bearer")
            }
        }
    }
}

/// What the [`on_refusal`](ApiKeyAuthBuilder::on_refusal) hook is told about a refusal.
#[derive(Debug)]
#[non_exhaustive]
pub struct Refusal<'a> {
    /// Why the request is refused; it never contains the key.
    pub error: &'a Error,
    /// The answer the middleware would send: change its body, keep its headers.
    pub default: Rejection,
}

type RefusalFn = Arc<dyn Fn(Refusal<'_>) -> Rejection + Send + Sync>;

/// API-key authentication for HTTP requests, as actix-web middleware (`App::wrap`, feature
/// `actix`) and as a tower layer (`Router::layer`, feature `tower`).
///
/// It reads the key by [`presented_key`](crate::presented_key)'s rules (and refuses a key field
/// sent twice), checks it with the [`Authenticator`], and puts the key's identity
/// (`S::Identity`) into the request extensions for the handler and the layers after it (a quota
/// keyed by the identity's key id, say), with the [`KeySource`] it came in (to count the clients
/// still sending a bare `Authorization`, say). A refusal is a 401
/// problem document, or 503 when the store fails.
pub struct ApiKeyAuth<S: KeyStore, C> {
    inner: Arc<Inner<S, C>>,
}

struct Inner<S: KeyStore, C> {
    authenticator: Authenticator<S, C>,
    skip_headers: Vec<String>,
    on_refusal: Option<RefusalFn>,
}

impl<S: KeyStore, C> Clone for ApiKeyAuth<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S: KeyStore, C: fmt::Debug> fmt::Debug for ApiKeyAuth<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyAuth")
            .field("authenticator", &self.inner.authenticator)
            .field("skip_headers", &self.inner.skip_headers)
            .finish_non_exhaustive()
    }
}

/// Builds an [`ApiKeyAuth`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct ApiKeyAuthBuilder<S: KeyStore, C> {
    authenticator: Authenticator<S, C>,
    skip_headers: Vec<String>,
    on_refusal: Option<RefusalFn>,
}

impl<S: KeyStore, C: fmt::Debug> fmt::Debug for ApiKeyAuthBuilder<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyAuthBuilder")
            .field("skip_headers", &self.skip_headers)
            .finish_non_exhaustive()
    }
}

impl<S: KeyStore, C: Clock> ApiKeyAuth<S, C> {
    /// The middleware with the default refusals, authenticating every request.
    pub fn new(authenticator: Authenticator<S, C>) -> Self {
        Self::builder(authenticator).build()
    }

    /// A builder around `authenticator`.
    pub fn builder(authenticator: Authenticator<S, C>) -> ApiKeyAuthBuilder<S, C> {
        ApiKeyAuthBuilder {
            authenticator,
            skip_headers: Vec::new(),
            on_refusal: None,
        }
    }

    /// The authenticator (to invalidate its caches after a revocation, say).
    pub fn authenticator(&self) -> &Authenticator<S, C> {
        &self.inner.authenticator
    }

    /// The identity of the request whose headers `header` reads and how its key came, or the
    /// refusal to send; `Ok(None)` when the request carries a skip header and goes on
    /// unauthenticated.
    async fn check<'a>(
        &self,
        header: impl Fn(&str) -> Found<'a>,
    ) -> Result<Option<(S::Identity, KeySource)>, Rejection> {
        if self
            .inner
            .skip_headers
            .iter()
            .any(|skip| header(skip) != Found::Absent)
        {
            return Ok(None);
        }
        let presented = presented_key_of(header).map_err(|e| self.refuse(&e))?;
        self.inner
            .authenticator
            .authenticate(presented.expose_secret())
            .await
            .map(|identity| Some((identity, presented.source())))
            .map_err(|e| self.refuse(&e))
    }

    fn refuse(&self, error: &Error) -> Rejection {
        let default = Rejection::for_error(error);
        match &self.inner.on_refusal {
            Some(hook) => hook(Refusal { error, default }),
            None => default,
        }
    }
}

impl<S: KeyStore, C: Clock> ApiKeyAuthBuilder<S, C> {
    /// Lets requests that carry the header `name` through unauthenticated, for another layer
    /// to check: `x-api-signature`, `signature-input` and `signature` when signed requests
    /// are verified by `request-signing`. Call once per header; any one of them skips.
    pub fn skip_when_header(mut self, name: impl Into<String>) -> Self {
        self.skip_headers.push(name.into().to_ascii_lowercase());
        self
    }

    /// Renders refusals with `hook` in place of the default problem bodies.
    pub fn on_refusal(
        mut self,
        hook: impl Fn(Refusal<'_>) -> Rejection + Send + Sync + 'static,
    ) -> Self {
        self.on_refusal = Some(Arc::new(hook));
        self
    }

    /// The middleware.
    pub fn build(self) -> ApiKeyAuth<S, C> {
        ApiKeyAuth {
            inner: Arc::new(Inner {
                authenticator: self.authenticator,
                skip_headers: self.skip_headers,
                on_refusal: self.on_refusal,
            }),
        }
    }
}
