//! The tower layer (feature `tower`): `Router::new().layer(api_key_auth)` in axum,
//! `ServiceBuilder::new().layer(api_key_auth)` anywhere tower runs.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use super::{ApiKeyAuth, Rejection};
use crate::auth::{Clock, KeyStore};

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

header_lookup!(http_presented_key, http::header);

impl<Svc, S: KeyStore, C> Layer<Svc> for ApiKeyAuth<S, C> {
    type Service = ApiKeyAuthService<Svc, S, C>;

    fn layer(&self, inner: Svc) -> Self::Service {
        ApiKeyAuthService {
            inner,
            auth: self.clone(),
        }
    }
}

/// The service [`ApiKeyAuth`] wraps around a tower service. Errors stay the inner service's.
pub struct ApiKeyAuthService<Svc, S: KeyStore, C> {
    inner: Svc,
    auth: ApiKeyAuth<S, C>,
}

impl<Svc: Clone, S: KeyStore, C> Clone for ApiKeyAuthService<Svc, S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            auth: self.auth.clone(),
        }
    }
}

impl<Svc, S: KeyStore, C> std::fmt::Debug for ApiKeyAuthService<Svc, S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyAuthService").finish_non_exhaustive()
    }
}

impl<Svc, S, C, ReqBody, ResBody> Service<Request<ReqBody>> for ApiKeyAuthService<Svc, S, C>
where
    Svc: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    Svc::Future: Send + 'static,
    S: KeyStore + 'static,
    C: Clock + 'static,
    ReqBody: Send + 'static,
    ResBody: From<Bytes> + 'static,
{
    type Response = Response<ResBody>;
    type Error = Svc::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let auth = self.auth.clone();
        // The ready service answers this request; its clone waits for the next poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (mut parts, body) = req.into_parts();
        Box::pin(async move {
            let checked = {
                let headers = &parts.headers;
                auth.check(|name| header(headers, name)).await
            };
            match checked {
                Ok(identity) => {
                    if let Some((identity, source)) = identity {
                        parts.extensions.insert(identity);
                        parts.extensions.insert(source);
                    }
                    inner.call(Request::from_parts(parts, body)).await
                }
                Err(rejection) => Ok(http_response(rejection)),
            }
        })
    }
}
