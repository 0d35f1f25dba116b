//! HTTP routes: each handler turns a request into a library call and the answer into JSON.

pub mod users;

use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::{HttpRequest, HttpResponse, Resource, web};

use crate::error::ApiError;

/// A resource whose other methods answer 405 with a JSON problem body.
pub(crate) fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// The answer for every path nothing else answers.
pub(crate) async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such endpoint"))
}

/// Turns actix's JSON body errors into problem bodies with a precise detail.
pub(crate) fn json_error(error: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    let api = match &error {
        JsonPayloadError::OverflowKnownLength { limit, .. } | JsonPayloadError::Overflow { limit } => {
            ApiError::PayloadTooLarge(format!("the body is larger than the {limit}-byte limit"))
        }
        JsonPayloadError::ContentType => {
            ApiError::BadRequest("expected Content-Type: application/json".to_owned())
        }
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            ApiError::BadRequest(format!("invalid request body: {e}"))
        }
        JsonPayloadError::Deserialize(e) => ApiError::BadRequest(format!("malformed JSON: {e}")),
        _ => ApiError::BadRequest("the request body could not be read".to_owned()),
    };
    api.into()
}

/// Turns query string errors into problem bodies.
pub(crate) fn query_error(error: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid query string: {error}")).into()
}
