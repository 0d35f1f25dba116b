//! The actix-web middleware (feature `actix`): `App::new().wrap(verify_signature)`.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpMessage as _, HttpResponse};
use futures_util::StreamExt as _;

use super::{Received, Rejection, VerifySignature};
use crate::clock::Clock;
use crate::replay::ReplayCache;
use crate::store::SecretStore;

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

/// Reads the whole payload, at most `max` bytes.
async fn read_body(payload: &mut Payload, max: usize) -> Result<Bytes, Overflow> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| Overflow::Unreadable)?;
        if body.len() + chunk.len() > max {
            return Err(Overflow::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

enum Overflow {
    TooLarge,
    Unreadable,
}

header_lookup!(actix_web::http::header);

impl<Svc, Bd, S, R, C> Transform<Svc, ServiceRequest> for VerifySignature<S, R, C>
where
    Svc:
        Service<ServiceRequest, Response = ServiceResponse<Bd>, Error = actix_web::Error> + 'static,
    Bd: MessageBody + 'static,
    S: SecretStore + 'static,
    R: ReplayCache + 'static,
    C: Clock + 'static,
{
    type Response = ServiceResponse<EitherBody<Bd>>;
    type Error = actix_web::Error;
    type Transform = VerifySignatureMiddleware<Svc, S, R, C>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: Svc) -> Self::Future {
        ready(Ok(VerifySignatureMiddleware {
            service: Rc::new(service),
            verify: self.clone(),
        }))
    }
}

/// The service [`VerifySignature`] wraps around an actix-web service.
pub struct VerifySignatureMiddleware<Svc, S, R, C> {
    service: Rc<Svc>,
    verify: VerifySignature<S, R, C>,
}

impl<Svc, S, R, C> std::fmt::Debug for VerifySignatureMiddleware<Svc, S, R, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifySignatureMiddleware")
            .finish_non_exhaustive()
    }
}

impl<Svc, Bd, S, R, C> Service<ServiceRequest> for VerifySignatureMiddleware<Svc, S, R, C>
where
    Svc:
        Service<ServiceRequest, Response = ServiceResponse<Bd>, Error = actix_web::Error> + 'static,
    Bd: MessageBody + 'static,
    S: SecretStore + 'static,
    R: ReplayCache + 'static,
    C: Clock + 'static,
{
    type Response = ServiceResponse<EitherBody<Bd>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let headers = req.headers();
        if self
            .verify
            .passes_unsigned(|name| has_header(headers, name))
        {
            // A future of its own: the one below holds the verification's state, kilobytes
            // that boxing would copy on every unsigned request.
            let answer = service.call(req);
            return Box::pin(async move { Ok(answer.await?.map_into_left_body()) });
        }
        let verify = self.verify.clone();
        Box::pin(async move {
            let refuse = |req: ServiceRequest, rejection| {
                Ok(req
                    .into_response(actix_response(rejection))
                    .map_into_right_body())
            };
            let headers = req.headers();
            if let Some(rejection) =
                verify.check_length(headers.get(CONTENT_LENGTH).map(HeaderValue::as_bytes))
            {
                return refuse(req, rejection);
            }
            let fields: Vec<_> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_bytes()))
                .collect();
            let rejection = verify.check_headers(&fields);
            drop(fields);
            if let Some(rejection) = rejection {
                return refuse(req, rejection);
            }
            let body = match read_body(&mut req.take_payload(), verify.inner.max_body_bytes).await {
                Ok(body) => body,
                Err(Overflow::TooLarge) => return refuse(req, verify.too_large()),
                Err(Overflow::Unreadable) => return refuse(req, verify.unreadable()),
            };
            let verified = {
                let connection = req.connection_info().clone();
                let received = Received {
                    method: req.method().as_str(),
                    target: req
                        .uri()
                        .path_and_query()
                        .map_or_else(|| req.path(), |pq| pq.as_str()),
                    scheme: verify.inner.scheme.unwrap_or_else(|| connection.scheme()),
                    authority: req.uri().authority().map(|a| a.as_str()),
                    headers: req
                        .headers()
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_bytes()))
                        .collect(),
                };
                verify.verify(&received, &body).await
            };
            let verified = match verified {
                Ok(verified) => verified,
                Err(rejection) => return refuse(req, rejection),
            };
            req.set_payload(Payload::from(body));
            req.extensions_mut().insert(verified.clone());
            match service.call(req).await {
                Ok(response) => {
                    verify.settle(&verified, response.status().as_u16()).await;
                    Ok(response.map_into_left_body())
                }
                Err(error) => {
                    let status = error.as_response_error().status_code();
                    verify.settle(&verified, status.as_u16()).await;
                    Err(error)
                }
            }
        })
    }
}
