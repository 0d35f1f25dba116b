//! The tower layer (feature `tower`): `Router::new().layer(verify_signature)` in axum,
//! `ServiceBuilder::new().layer(verify_signature)` anywhere tower runs.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use tower_layer::Layer;
use tower_service::Service;

use super::{Received, Rejection, VerifySignature};
use crate::clock::Clock;
use crate::replay::ReplayCache;
use crate::store::SecretStore;

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

header_lookup!(http::header);

impl<Svc, S, R, C> Layer<Svc> for VerifySignature<S, R, C> {
    type Service = VerifySignatureService<Svc, S, R, C>;

    fn layer(&self, inner: Svc) -> Self::Service {
        VerifySignatureService {
            inner,
            verify: self.clone(),
        }
    }
}

/// The service [`VerifySignature`] wraps around a tower service. Errors stay the inner
/// service's. The request body type must be buildable from the verified bytes
/// (`B: From<Bytes>`, as axum's `Body` is); map a hyper `Incoming` body first.
pub struct VerifySignatureService<Svc, S, R, C> {
    inner: Svc,
    verify: VerifySignature<S, R, C>,
}

impl<Svc: Clone, S, R, C> Clone for VerifySignatureService<Svc, S, R, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            verify: self.verify.clone(),
        }
    }
}

impl<Svc, S, R, C> std::fmt::Debug for VerifySignatureService<Svc, S, R, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifySignatureService")
            .finish_non_exhaustive()
    }
}

impl<Svc, S, R, C, ReqBody, ResBody> Service<Request<ReqBody>>
    for VerifySignatureService<Svc, S, R, C>
where
    Svc: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    Svc::Future: Send + 'static,
    S: SecretStore + 'static,
    R: ReplayCache + 'static,
    C: Clock + 'static,
    ReqBody: http_body::Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: From<Bytes> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = Svc::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // The ready service answers this request; its clone waits for the next poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if self
            .verify
            .passes_unsigned(|name| has_header(req.headers(), name))
        {
            // Not inside the future below, which holds the verification's state: kilobytes
            // that boxing would copy on every unsigned request.
            return Box::pin(inner.call(req));
        }
        let verify = self.verify.clone();
        Box::pin(async move {
            let headers = req.headers();
            if let Some(rejection) =
                verify.check_length(headers.get(CONTENT_LENGTH).map(HeaderValue::as_bytes))
            {
                return Ok(http_response(rejection));
            }
            let fields: Vec<_> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_bytes()))
                .collect();
            if let Some(rejection) = verify.check_headers(&fields) {
                return Ok(http_response(rejection));
            }
            drop(fields);
            let (mut parts, body) = req.into_parts();
            let limit = verify.inner.max_body_bytes;
            let body = match Limited::new(body, limit).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) if e.is::<LengthLimitError>() => {
                    return Ok(http_response(verify.too_large()));
                }
                Err(_) => return Ok(http_response(verify.unreadable())),
            };
            let verified = {
                let received = Received {
                    method: parts.method.as_str(),
                    target: parts
                        .uri
                        .path_and_query()
                        .map_or_else(|| parts.uri.path(), |pq| pq.as_str()),
                    scheme: verify
                        .inner
                        .scheme
                        .unwrap_or_else(|| parts.uri.scheme_str().unwrap_or("http")),
                    authority: parts.uri.authority().map(|a| a.as_str()),
                    headers: parts
                        .headers
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_bytes()))
                        .collect(),
                };
                verify.verify(&received, &body).await
            };
            let verified = match verified {
                Ok(verified) => verified,
                Err(rejection) => return Ok(http_response(rejection)),
            };
            parts.extensions.insert(verified.clone());
            let response = inner
                .call(Request::from_parts(parts, ReqBody::from(body)))
                .await?;
            verify.settle(&verified, response.status().as_u16()).await;
            Ok(response)
        })
    }
}
