//! The actix-web middleware (feature `actix`): `App::new().wrap(api_key_auth)`.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::{HttpMessage as _, HttpResponse};

use super::{ApiKeyAuth, Rejection};
use crate::auth::{Clock, KeyStore};

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

header_lookup!(actix_presented_key, actix_web::http::header);

impl<Svc, Bd, S, C> Transform<Svc, ServiceRequest> for ApiKeyAuth<S, C>
where
    Svc:
        Service<ServiceRequest, Response = ServiceResponse<Bd>, Error = actix_web::Error> + 'static,
    Bd: MessageBody + 'static,
    S: KeyStore + 'static,
    C: Clock + 'static,
{
    type Response = ServiceResponse<EitherBody<Bd>>;
    type Error = actix_web::Error;
    type Transform = ApiKeyAuthMiddleware<Svc, S, C>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: Svc) -> Self::Future {
        ready(Ok(ApiKeyAuthMiddleware {
            service: Rc::new(service),
            auth: self.clone(),
        }))
    }
}

/// The service [`ApiKeyAuth`] wraps around an actix-web service.
pub struct ApiKeyAuthMiddleware<Svc, S: KeyStore, C> {
    service: Rc<Svc>,
    auth: ApiKeyAuth<S, C>,
}

impl<Svc, S: KeyStore, C> std::fmt::Debug for ApiKeyAuthMiddleware<Svc, S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyAuthMiddleware")
            .finish_non_exhaustive()
    }
}

impl<Svc, Bd, S, C> Service<ServiceRequest> for ApiKeyAuthMiddleware<Svc, S, C>
where
    Svc:
        Service<ServiceRequest, Response = ServiceResponse<Bd>, Error = actix_web::Error> + 'static,
    Bd: MessageBody + 'static,
    S: KeyStore + 'static,
    C: Clock + 'static,
{
    type Response = ServiceResponse<EitherBody<Bd>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let auth = self.auth.clone();
        Box::pin(async move {
            let checked = {
                let headers = req.headers();
                auth.check(|name| header(headers, name)).await
            };
            match checked {
                Ok(identity) => {
                    if let Some((identity, source)) = identity {
                        let mut extensions = req.extensions_mut();
                        extensions.insert(identity);
                        extensions.insert(source);
                    }
                    Ok(service.call(req).await?.map_into_left_body())
                }
                Err(rejection) => Ok(req
                    .into_response(actix_response(rejection))
                    .map_into_right_body()),
            }
        })
    }
}
