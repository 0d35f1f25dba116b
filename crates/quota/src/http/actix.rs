//! The actix-web middleware (feature `actix`): `App::new().wrap(rate_limit)`.

use std::future::{Future, Ready, ready};
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse};

use super::{HeaderFields, KeyExtractor, RateLimit, Rejection, RequestView, Verdict};
use crate::backend::Backend;

/// The same view of a middleware's `ServiceRequest` and of a handler's `HttpRequest`, the
/// latter for limits decided inside the handler, where the cost is known only once the body is
/// read (`limit.prepare(&req).with_cost(cost)`, then [`decide`](RateLimit::decide)).
macro_rules! request_view {
    ($($request:ty),*) => {$(
        impl RequestView for $request {
            fn peer_ip(&self) -> Option<IpAddr> {
                self.peer_addr().map(|addr| addr.ip())
            }

            fn header(&self, name: &str) -> Option<&[u8]> {
                self.headers().get(name).map(HeaderValue::as_bytes)
            }

            fn header_values(&self, name: &str) -> Vec<&[u8]> {
                self.headers()
                    .get_all(name)
                    .map(HeaderValue::as_bytes)
                    .collect()
            }

            fn with_extension<T: Send + Sync + 'static, O>(
                &self,
                f: impl FnOnce(&T) -> O,
            ) -> Option<O> {
                self.extensions().get::<T>().map(f)
            }

            fn method(&self) -> &str {
                <$request>::method(self).as_str()
            }

            fn path(&self) -> &str {
                <$request>::path(self)
            }
        }
    )*};
}

request_view!(ServiceRequest, HttpRequest);

/// Adds the rate-limit fields to an answer built by hand, after a [`Verdict::Allowed`]
/// decided inside a handler: the same fields the middleware adds.
pub fn append_allowed_fields(response: &mut HttpResponse, fields: HeaderFields) {
    append_fields(response.headers_mut(), fields);
}

/// Adds the rate-limit fields to `headers`, keeping fields already there (a second limiter's
/// `RateLimit-Policy` is one more list member, not a replacement). An `X-RateLimit-*` field
/// already there is kept and this one left out: those fields hold one number, not a list, and
/// the one set closest to the handler (an inner limiter, or the handler itself) stands.
fn append_fields(headers: &mut HeaderMap, fields: HeaderFields) {
    for (name, value) in fields.into_pairs() {
        let name = header_name(name);
        if name.as_str().starts_with("x-ratelimit-") && headers.contains_key(&name) {
            continue;
        }
        if let Ok(value) = HeaderValue::from_maybe_shared(value) {
            headers.append(name, value);
        }
    }
}

/// The name of a rate-limit field: the usual ones built at compile time, since a name built at
/// run time is validated byte by byte, on every answer.
fn header_name(name: &'static str) -> HeaderName {
    const KNOWN: [HeaderName; 6] = [
        HeaderName::from_static("ratelimit-policy"),
        HeaderName::from_static("ratelimit"),
        HeaderName::from_static("retry-after"),
        HeaderName::from_static("x-ratelimit-limit"),
        HeaderName::from_static("x-ratelimit-remaining"),
        HeaderName::from_static("x-ratelimit-reset"),
    ];
    KNOWN
        .into_iter()
        .find(|known| known.as_str() == name)
        .unwrap_or_else(|| HeaderName::from_static(name))
}

/// The actix-web response for a [`Rejection`].
#[must_use]
pub fn actix_response(rejection: Rejection) -> HttpResponse {
    let status =
        StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    if let Ok(value) = HeaderValue::try_from(rejection.content_type.into_owned()) {
        response.insert_header((CONTENT_TYPE, value));
    }
    let mut response = response.body(rejection.body);
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

impl<S, Bd, B, K> Transform<S, ServiceRequest> for RateLimit<B, K, ServiceRequest>
where
    S: Service<ServiceRequest, Response = ServiceResponse<Bd>, Error = actix_web::Error> + 'static,
    Bd: MessageBody + 'static,
    B: Backend + 'static,
    K: KeyExtractor<ServiceRequest>,
{
    type Response = ServiceResponse<EitherBody<Bd>>;
    type Error = actix_web::Error;
    type Transform = RateLimitMiddleware<S, B, K>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RateLimitMiddleware {
            service: Rc::new(service),
            limit: self.clone(),
        }))
    }
}

/// The service [`RateLimit`] wraps around an actix-web service.
pub struct RateLimitMiddleware<S, B, K> {
    service: Rc<S>,
    limit: RateLimit<B, K, ServiceRequest>,
}

impl<S, B, K> std::fmt::Debug for RateLimitMiddleware<S, B, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitMiddleware")
            .finish_non_exhaustive()
    }
}

impl<S, Bd, B, K> Service<ServiceRequest> for RateLimitMiddleware<S, B, K>
where
    S: Service<ServiceRequest, Response = ServiceResponse<Bd>, Error = actix_web::Error> + 'static,
    Bd: MessageBody + 'static,
    B: Backend + 'static,
    K: KeyExtractor<ServiceRequest>,
{
    type Response = ServiceResponse<EitherBody<Bd>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        // Everything is read from the request before the first await.
        let call = self.limit.prepare(&req);
        let service = Rc::clone(&self.service);
        let limit = self.limit.clone();
        Box::pin(async move {
            match limit.decide(call).await {
                Verdict::Allowed(fields) => {
                    let mut response = service.call(req).await?;
                    append_fields(response.headers_mut(), fields);
                    Ok(response.map_into_left_body())
                }
                Verdict::Refused(rejection) => Ok(req
                    .into_response(actix_response(rejection))
                    .map_into_right_body()),
            }
        })
    }
}
