//! The HTTP seam shared by the actix-web middleware and the tower layer: buffering the body
//! up to a limit, verifying, handing the body on unchanged, and answering refusals with
//! `application/problem+json`.

/// Defines `has_header(headers, name)`, whether the header `name` is there, for one framework's
/// `header` module (actix-web's and `http`'s types differ). The signature headers are matched
/// to names built at compile time: a lookup by `&str` parses the name, and copies one that is
/// not a standard header into a new allocation, on every request.
#[cfg(any(feature = "actix", feature = "tower"))]
macro_rules! header_lookup {
    ($($header:ident)::+) => {
        fn has_header(headers: &$($header)::+::HeaderMap, name: &str) -> bool {
            use $($header)::+::HeaderName;
            const SIGNATURE: HeaderName = HeaderName::from_static("x-api-signature");
            const SIGNATURE_INPUT: HeaderName = HeaderName::from_static("signature-input");
            const RFC9421_SIGNATURE: HeaderName = HeaderName::from_static("signature");
            match name {
                "x-api-signature" => headers.contains_key(SIGNATURE),
                "signature-input" => headers.contains_key(SIGNATURE_INPUT),
                "signature" => headers.contains_key(RFC9421_SIGNATURE),
                other => headers.contains_key(other),
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
pub use actix::{VerifySignatureMiddleware, actix_response};
#[cfg(feature = "tower")]
pub use tower::{VerifySignatureService, http_response};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::replay::ReplayCache;
use crate::rfc9421::{self, Message};
use crate::signer::{HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use crate::store::SecretStore;
use crate::verifier::{Request, SignatureHeaders, Verified, Verifier};

/// An answer that refuses a request: status, extra headers, content type and body, in a form
/// any framework can send. The default ones are RFC 9457 problem documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status code.
    pub status: u16,
    /// Extra headers, e.g. `retry-after`. Names may be in any case; one that is not a valid
    /// header name is left out.
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
            400 => "Bad Request",
            401 => "Unauthorized",
            413 => "Content Too Large",
            429 => "Too Many Requests",
            503 => "Service Unavailable",
            _ => "Internal Server Error",
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

    /// The default answer to a verification error: 401 for a signature that does not verify
    /// (missing or malformed headers, unknown key, stale, replayed, bad), 400 for a body that
    /// could not be read, 413 for a body over the limit, 429 with `Retry-After` for a key over its replay share, 503 with
    /// `Retry-After: 1` when a store failed. Details name what is wrong, never a secret.
    #[must_use]
    pub fn for_error(error: &Error) -> Self {
        match error {
            Error::BodyTooLarge { max, .. } => Self::problem(
                413,
                &format!("the body is larger than the {max}-byte limit"),
            ),
            Error::ReplayBudgetExceeded { retry_after_secs } => {
                Self::problem(429, &error.to_string())
                    .with_header("retry-after", retry_after_secs.to_string())
            }
            // As a bad signature: the answer does not tell whether a key id exists (a v0 key id
            // is the client's API key itself). `on_refusal` still sees which it was.
            Error::UnknownKey => Self::problem(401, &Error::BadSignature.to_string()),
            Error::SecretStoreUnavailable(_) | Error::ReplayStoreUnavailable(_) => Self::problem(
                503,
                "signature verification is unavailable; try again shortly",
            )
            .with_header("retry-after", "1"),
            Error::Randomness => Self::problem(500, "internal error"),
            Error::UnreadableBody => Self::problem(400, &error.to_string()),
            other => Self::problem(401, &other.to_string()),
        }
    }
}

/// What the [`on_refusal`](VerifySignatureBuilder::on_refusal) hook is told about a refusal.
#[derive(Debug)]
#[non_exhaustive]
pub struct Refusal<'a> {
    /// Why the request is refused. It carries no secret and no key id.
    pub error: &'a Error,
    /// The answer the middleware would send: change its body, keep its headers.
    pub default: Rejection,
}

type RefusalFn = Arc<dyn Fn(Refusal<'_>) -> Rejection + Send + Sync>;
type ReleaseFn = Arc<dyn Fn(u16) -> bool + Send + Sync>;

/// Signature verification for HTTP requests, as actix-web middleware (`App::wrap`, feature
/// `actix`) and as a tower layer (`Router::layer`, feature `tower`).
///
/// For each request it reads the signature headers, buffers the body up to a limit (413 above
/// it, checked against `Content-Length` before reading), runs the [`Verifier`] (scheme, time
/// window, secrets, replay cache with the key's share), then hands the handler exactly the
/// bytes it verified, with the [`Verified`] identity in the request extensions. A refusal is
/// answered at once with a problem document (see [`Rejection::for_error`]).
///
/// **Ordering with later checks.** The request's nonce is recorded before the handler runs,
/// so two copies racing each other never both pass. When the answer's status is one the
/// builder's [`release_on`](VerifySignatureBuilder::release_on) accepts (none by default), the
/// record is released: the refused request uses none of the key's share, and the client may
/// send it again as it is.
pub struct VerifySignature<S, R, C> {
    inner: Arc<Inner<S, R, C>>,
}

struct Inner<S, R, C> {
    verifier: Verifier<S, R, C>,
    max_body_bytes: usize,
    scheme: Option<&'static str>,
    optional: bool,
    release_on: ReleaseFn,
    on_refusal: Option<RefusalFn>,
}

impl<S, R, C> Clone for VerifySignature<S, R, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S, R, C> fmt::Debug for VerifySignature<S, R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifySignature")
            .field("verifier", &self.inner.verifier)
            .field("max_body_bytes", &self.inner.max_body_bytes)
            .field("scheme", &self.inner.scheme)
            .field("optional", &self.inner.optional)
            .finish_non_exhaustive()
    }
}

/// Builds a [`VerifySignature`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct VerifySignatureBuilder<S, R, C> {
    verifier: Verifier<S, R, C>,
    max_body_bytes: Option<usize>,
    scheme: Option<&'static str>,
    optional: bool,
    release_on: ReleaseFn,
    on_refusal: Option<RefusalFn>,
}

impl<S, R, C> fmt::Debug for VerifySignatureBuilder<S, R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifySignatureBuilder")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("optional", &self.optional)
            .finish_non_exhaustive()
    }
}

impl<S: SecretStore, R: ReplayCache, C: Clock> VerifySignature<S, R, C> {
    /// A builder around `verifier`: every request must be signed, bodies up to the verifier's
    /// `max_body_bytes`, no record released.
    pub fn builder(verifier: Verifier<S, R, C>) -> VerifySignatureBuilder<S, R, C> {
        VerifySignatureBuilder {
            verifier,
            max_body_bytes: None,
            scheme: None,
            optional: false,
            release_on: Arc::new(|_| false),
            on_refusal: None,
        }
    }

    /// The verifier.
    pub fn verifier(&self) -> &Verifier<S, R, C> {
        &self.inner.verifier
    }
}

impl<S: SecretStore, R: ReplayCache, C: Clock> VerifySignatureBuilder<S, R, C> {
    /// The largest body read (default: the verifier's `max_body_bytes`, 10 MiB unless set).
    pub const fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = Some(bytes);
        self
    }

    /// The scheme clients reach the service with (`"https"` behind a TLS listener or a proxy
    /// that ends TLS), for RFC 9421's `@scheme` and `@target-uri`. By default it is the
    /// request's own: on actix-web the connection's (which honours `Forwarded` and
    /// `X-Forwarded-Proto`), on tower the URI's, and `http` for an origin-form URI, which names
    /// none. A client that signs `@target-uri` of an `https` URL needs `https` here behind a
    /// tower server. [`build`](Self::build) refuses anything but `http` and `https`.
    pub const fn scheme(mut self, scheme: &'static str) -> Self {
        self.scheme = Some(scheme);
        self
    }

    /// Lets requests without `X-API-Signature` through unverified and untouched (default:
    /// refused with 401), so that another layer can authenticate them, by API key say. A
    /// request that carries the header must verify.
    pub const fn optional(mut self, optional: bool) -> Self {
        self.optional = optional;
        self
    }

    /// Which answer statuses release the request's replay record, so that the very same
    /// signed request may be sent again (default: none). Name only statuses your service
    /// answers before it does anything, such as a spent quota's 429 decided before the
    /// handler runs: a 503 after a write, released, would let anyone who saw the request make
    /// that write again.
    pub fn release_on(mut self, release: impl Fn(u16) -> bool + Send + Sync + 'static) -> Self {
        self.release_on = Arc::new(release);
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
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] when the body limit is above the verifier's own, which would
    /// read bodies only to refuse them, or the scheme is neither `http` nor `https`.
    pub fn build(self) -> Result<VerifySignature<S, R, C>> {
        if self.scheme.is_some_and(|s| s != "http" && s != "https") {
            return Err(Error::InvalidRequest {
                part: "scheme",
                reason: "neither http nor https",
            });
        }
        let verifier_max = self.verifier.config().body_limit();
        let max_body_bytes = self.max_body_bytes.unwrap_or(verifier_max);
        if max_body_bytes > verifier_max {
            return Err(Error::InvalidRequest {
                part: "body limit",
                reason: "above the verifier's max_body_bytes",
            });
        }
        Ok(VerifySignature {
            inner: Arc::new(Inner {
                verifier: self.verifier,
                max_body_bytes,
                scheme: self.scheme,
                optional: self.optional,
                release_on: self.release_on,
                on_refusal: self.on_refusal,
            }),
        })
    }
}

impl<S: SecretStore, R: ReplayCache, C: Clock> VerifySignature<S, R, C> {
    /// Whether a request is let through as it is: an optional layer and no signature header
    /// (`X-API-Signature`, `Signature-Input` or `Signature`); `has` says whether the request
    /// has a header of that lower-case name.
    fn passes_unsigned(&self, has: impl Fn(&'static str) -> bool) -> bool {
        self.inner.optional && !has(SIGNATURE) && !has(SIGNATURE_INPUT) && !has(RFC9421_SIGNATURE)
    }

    /// The refusal for a body whose `Content-Length` is over the limit, before reading it.
    fn check_length(&self, content_length: Option<&[u8]>) -> Option<Rejection> {
        let declared = content_length
            .and_then(|v| core::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<u64>().ok())?;
        let max = self.inner.max_body_bytes;
        (declared > max as u64).then(|| {
            self.refuse(&Error::BodyTooLarge {
                len: usize::try_from(declared).unwrap_or(usize::MAX),
                max,
            })
        })
    }

    /// Refuses, before its body is read, a request that its headers alone condemn: fields
    /// missing, malformed or sent twice, a scheme not accepted, a time outside the window.
    /// Reading the body of such a request would only hold up to the body limit in memory for
    /// anyone who sends one. Nothing here waits (the store is asked once the body is in), so
    /// the body is read at once: actix-web drops a connection whose body breaks while its
    /// request waits on something else, with no answer.
    fn check_headers(&self, headers: &[(&str, &[u8])]) -> Option<Rejection> {
        let verifier = &self.inner.verifier;
        let result = if is_rfc9421(headers) {
            match (
                rfc9421::field_value(headers, SIGNATURE_INPUT),
                rfc9421::field_value(headers, RFC9421_SIGNATURE),
            ) {
                (Some(input), Some(signature)) => {
                    verifier.check_message_headers(&input, &signature)
                }
                (None, _) => Err(Error::MissingHeader {
                    header: rfc9421::HEADER_SIGNATURE_INPUT,
                }),
                (_, None) => Err(Error::MissingHeader {
                    header: rfc9421::HEADER_SIGNATURE,
                }),
            }
        } else {
            match sent_twice(headers) {
                Some(error) => Err(error),
                None => {
                    verifier.check_headers(&SignatureHeaders::from_fn(|name| find(headers, name)))
                }
            }
        };
        result.err().map(|e| self.refuse(&e))
    }

    /// Verifies `request` with `body`: RFC 9421 when it has `Signature-Input` or
    /// `Signature`, v1 (or v0) otherwise.
    async fn verify(
        &self,
        request: &Received<'_>,
        body: &[u8],
    ) -> core::result::Result<Verified, Rejection> {
        let verifier = &self.inner.verifier;
        let result = if is_rfc9421(&request.headers) {
            match Message::new(request.method, request.target, &request.headers, body) {
                Ok(message) => {
                    let mut message = message.with_scheme(request.scheme);
                    if let Some(authority) = request.authority {
                        message = message.with_authority(authority);
                    }
                    verifier.verify_message(&message).await
                }
                Err(e) => Err(e),
            }
        } else if let Some(error) = sent_twice(&request.headers) {
            Err(error)
        } else {
            let headers = SignatureHeaders::from_fn(|name| find(&request.headers, name));
            verifier
                .verify(
                    &headers,
                    &Request::new(request.method, request.target, body),
                )
                .await
        };
        result.map_err(|e| self.refuse(&e))
    }

    /// Releases `verified`'s record when the answer's `status` says nothing was done.
    async fn settle(&self, verified: &Verified, status: u16) {
        if (self.inner.release_on)(status) {
            // A failed release only delays a retry with the same nonce.
            let _ = self.inner.verifier.release(verified).await;
        }
    }

    fn refuse(&self, error: &Error) -> Rejection {
        let default = Rejection::for_error(error);
        match &self.inner.on_refusal {
            Some(hook) => hook(Refusal { error, default }),
            None => default,
        }
    }

    /// The refusal of a body that could not be read (the client went away or sent a broken
    /// chunked body), through the hook like every other.
    fn unreadable(&self) -> Rejection {
        self.refuse(&Error::UnreadableBody)
    }

    fn too_large(&self) -> Rejection {
        let max = self.inner.max_body_bytes;
        self.refuse(&Error::BodyTooLarge {
            len: max.saturating_add(1),
            max,
        })
    }
}

/// The value of the first header field named `name` (in any case).
fn find<'a>(headers: &[(&str, &'a [u8])], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// Whether the request is signed the RFC 9421 way (`Signature-Input` or `Signature`).
fn is_rfc9421(headers: &[(&str, &[u8])]) -> bool {
    find(headers, SIGNATURE_INPUT).is_some() || find(headers, RFC9421_SIGNATURE).is_some()
}

/// The refusal of a v1 or v0 field sent more than once: never one of its values picked.
fn sent_twice(headers: &[(&str, &[u8])]) -> Option<Error> {
    [HEADER_KEY, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE]
        .into_iter()
        .find(|name| {
            headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .nth(1)
                .is_some()
        })
        .map(|header| Error::MalformedHeader {
            header,
            reason: "sent more than once",
        })
}

/// The lower-case name of `X-API-Signature`, as frameworks store it.
const SIGNATURE: &str = "x-api-signature";
/// RFC 9421's `Signature-Input`, lower case.
const SIGNATURE_INPUT: &str = "signature-input";
/// RFC 9421's `Signature`, lower case.
const RFC9421_SIGNATURE: &str = "signature";

/// What the layers read off a request before verifying it, framework-free.
struct Received<'a> {
    method: &'a str,
    /// The request target as received (`/path?query`).
    target: &'a str,
    /// `http` or `https`, as the framework knows it.
    scheme: &'a str,
    /// The authority of the request URI (HTTP/2's `:authority`), when it has one; else the
    /// `Host` header's is used.
    authority: Option<&'a str>,
    headers: Vec<(&'a str, &'a [u8])>,
}

const _: () = assert!(SIGNATURE.len() == HEADER_SIGNATURE.len());
