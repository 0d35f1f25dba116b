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

use super::{KeyExtractor, RateLimit, Rejection, RequestView, Verdict};
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

/// Adds `(name, value)` pairs to `headers`, keeping fields already there.
pub(crate) fn append_headers(headers: &mut HeaderMap, fields: Vec<(&'static str, String)>) {
    for (name, value) in fields {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.append(HeaderName::from_static(name), value);
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
    append_headers(response.headers_mut(), rejection.headers);
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

impl<S, B, K, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimitService<S, B, K, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Backend + 'static,
    K: KeyExtractor<Request<ReqBody>>,
    ReqBody: Send + 'static,
    ResBody: From<Bytes> + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // Everything is read from the request before the first await.
        let call = self.limit.prepare(&req);
        let limit = self.limit.clone();
        // The ready service answers this request; its clone waits for the next poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            match limit.decide(call).await {
                Verdict::Allowed(fields) => {
                    let mut response = inner.call(req).await?;
                    append_headers(response.headers_mut(), fields);
                    Ok(response)
                }
                Verdict::Refused(rejection) => Ok(http_response(rejection)),
            }
        })
    }
}
