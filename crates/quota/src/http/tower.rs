//! The tower layer (feature `tower`): `Router::new().layer(rate_limit)` in axum,
//! `ServiceBuilder::new().layer(rate_limit)` anywhere tower runs.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use pin_project_lite::pin_project;

use super::{HeaderFields, KeyExtractor, RateLimit, Rejection, RequestView, Verdict};
use crate::backend::Backend;

/// The peer address a tower request carries: axum's `ConnectInfo<SocketAddr>` (feature
/// `axum`, with `into_make_service_with_connect_info`), or a `SocketAddr` or `IpAddr` that the
/// serving loop inserted into the request extensions.
fn peer_of<B>(req: &Request<B>) -> Option<IpAddr> {
    let ext = req.extensions();
    #[cfg(feature = "axum")]
    if let Some(info) = ext.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip());
    }
    ext.get::<SocketAddr>()
        .map(SocketAddr::ip)
        .or_else(|| ext.get::<IpAddr>().copied())
}

impl<Body> RequestView for Request<Body> {
    fn peer_ip(&self) -> Option<IpAddr> {
        peer_of(self)
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers().get(name).map(HeaderValue::as_bytes)
    }

    fn header_values(&self, name: &str) -> Vec<&[u8]> {
        self.headers()
            .get_all(name)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect()
    }

    fn with_extension<T: Send + Sync + 'static, O>(&self, f: impl FnOnce(&T) -> O) -> Option<O> {
        self.extensions().get::<T>().map(f)
    }

    fn method(&self) -> &str {
        Request::method(self).as_str()
    }

    fn path(&self) -> &str {
        self.uri().path()
    }
}

/// Adds the rate-limit fields to `headers`, keeping fields already there (a second limiter's
/// `RateLimit-Policy` is one more list member, not a replacement). An `X-RateLimit-*` field
/// already there is kept and this one left out: those fields hold one number, not a list, and
/// the one set closest to the handler (an inner limiter, or the handler itself) stands.
fn append_fields(headers: &mut HeaderMap, fields: HeaderFields) {
    for (name, value) in fields.into_pairs() {
        let name = HeaderName::from_static(name);
        if name.as_str().starts_with("x-ratelimit-") && headers.contains_key(&name) {
            continue;
        }
        if let Ok(value) = HeaderValue::from_maybe_shared(value) {
            headers.append(name, value);
        }
    }
}

/// The `http` response for a [`Rejection`], with any body type made from bytes (axum's
/// `Body`, `http_body_util::Full<Bytes>`).
pub fn http_response<ResBody: From<Bytes>>(rejection: Rejection) -> Response<ResBody> {
    let mut response = Response::new(ResBody::from(Bytes::from(rejection.body)));
    *response.status_mut() =
        StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = HeaderValue::try_from(rejection.content_type.into_owned()) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    for (name, value) in rejection.headers {
        // Not `from_static`, which panics on an upper-case name: a hook may set any.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::try_from(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

impl<S, B, K, ReqBody> Layer<S> for RateLimit<B, K, Request<ReqBody>> {
    type Service = RateLimitService<S, B, K, ReqBody>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            limit: self.clone(),
        }
    }
}

/// The service [`RateLimit`] wraps around a tower service. Errors stay the inner service's.
pub struct RateLimitService<S, B, K, ReqBody> {
    inner: S,
    limit: RateLimit<B, K, Request<ReqBody>>,
}

impl<S: Clone, B, K, ReqBody> Clone for RateLimitService<S, B, K, ReqBody> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            limit: self.limit.clone(),
        }
    }
}

impl<S, B, K, ReqBody> std::fmt::Debug for RateLimitService<S, B, K, ReqBody> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitService").finish_non_exhaustive()
    }
}

/// A boxed answer, for backends that must be awaited (Redis).
type Waiting<ResBody, E> = Pin<Box<dyn Future<Output = Result<Response<ResBody>, E>> + Send>>;

pin_project! {
    /// The future of a [`RateLimitService`] answer.
    ///
    /// A backend that decides at once (memory) costs no allocation: the inner service is called
    /// directly. One that must be awaited (Redis) runs in a boxed future.
    pub struct ResponseFuture<F, ResBody, E> {
        #[pin]
        state: State<F, ResBody, E>,
    }
}

pin_project! {
    #[project = Projected]
    enum State<F, ResBody, E> {
        // Allowed: the inner service answers, then the fields are added.
        Inner { #[pin] future: F, fields: Option<HeaderFields> },
        // Refused at once.
        Refused { response: Option<Response<ResBody>> },
        // Waiting for the backend, then for the inner service.
        Waiting { future: Waiting<ResBody, E> },
    }
}

impl<F, ResBody, E> ResponseFuture<F, ResBody, E> {
    fn new(state: State<F, ResBody, E>) -> Self {
        Self { state }
    }
}

impl<F, ResBody, E> std::fmt::Debug for ResponseFuture<F, ResBody, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.state {
            State::Inner { .. } => "ResponseFuture::Inner",
            State::Refused { .. } => "ResponseFuture::Refused",
            State::Waiting { .. } => "ResponseFuture::Waiting",
        })
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F, ResBody, E>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            Projected::Inner { future, fields } => match future.poll(cx) {
                Poll::Ready(Ok(mut response)) => {
                    if let Some(fields) = fields.take() {
                        append_fields(response.headers_mut(), fields);
                    }
                    Poll::Ready(Ok(response))
                }
                other => other,
            },
            Projected::Refused { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled again after it answered: never, by the Future contract.
                None => Poll::Pending,
            },
            Projected::Waiting { future } => future.as_mut().poll(cx),
        }
    }
}

impl<S, B, K, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimitService<S, B, K, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Backend + 'static,
    K: KeyExtractor<Request<ReqBody>>,
    ReqBody: Send + 'static,
    ResBody: From<Bytes> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // Everything is read from the request before anything waits.
        let call = self.limit.prepare(&req);
        let call = match self.limit.decide_now(call) {
            Ok(Verdict::Allowed(fields)) => {
                return ResponseFuture::new(State::Inner {
                    future: self.inner.call(req),
                    fields: Some(fields),
                });
            }
            Ok(Verdict::Refused(rejection)) => {
                return ResponseFuture::new(State::Refused {
                    response: Some(http_response(rejection)),
                });
            }
            Err(call) => call,
        };
        let limit = self.limit.clone();
        // The ready service answers this request; its clone waits for the next poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::new(State::Waiting {
            future: Box::pin(async move {
                match limit.decide(call).await {
                    Verdict::Allowed(fields) => {
                        let mut response = inner.call(req).await?;
                        append_fields(response.headers_mut(), fields);
                        Ok(response)
                    }
                    Verdict::Refused(rejection) => Ok(http_response(rejection)),
                }
            }),
        })
    }
}
