//! HTTP routes: each handler turns a request into a library call and the answer into JSON.

pub mod admin;
pub mod docs;
pub mod health;
pub mod prime;
pub mod time;
pub mod users;
pub mod weather;
pub mod whoami;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, Resource, web};
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::auth::api_key::require_api_key;
use crate::error::ApiError;

/// The OpenAPI 3.1 description of every route, generated from the handlers.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "secure-api",
        description = "API keys, quotas, request signing, JWT login, primality and weather.",
        license(name = "MIT")
    ),
    paths(
        time::get_current_time,
        prime::check_prime,
        whoami::whoami,
        weather::weather,
        users::register,
        users::login,
        users::refresh,
        users::logout,
        users::protected,
        admin::list_keys,
        admin::create_key,
        admin::revoke_key,
        admin::rotate_key,
        admin::key_usage,
        health::healthz,
        health::readyz,
        health::metrics,
        openapi,
        docs::docs_page,
        docs::docs_init_js,
        docs::swagger_ui_bundle_js,
        docs::swagger_ui_css,
    ),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let header = |name: &str, what: &str| {
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(name, what)))
        };
        components.add_security_scheme(
            "api_key",
            header(
                "Authorization",
                "The API key as the raw header value, or `Bearer <key>`.",
            ),
        );
        components.add_security_scheme("api_key_header", header("X-API-Key", "The API key."));
        components.add_security_scheme(
            "signed",
            header(
                "X-API-Signature",
                "A v1 or v0 HMAC-SHA256 signature, with X-API-Key and X-API-Timestamp (and X-API-Nonce for v1).",
            ),
        );
        let bearer = |what: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(what))
                    .build(),
            )
        };
        components.add_security_scheme("bearer", bearer("An access token from /login."));
        components.add_security_scheme("admin", bearer("An admin token."));
    }
}

/// The OpenAPI document as JSON.
#[must_use]
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
}

/// This OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of every route",
        content_type = "application/json", body = Object)))]
pub async fn openapi() -> HttpResponse {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.get_or_init(openapi_json).as_str())
}

/// Registers every route. Shared by the server and the tests.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Authentication wraps the route, not the resource, so a wrong method answers 405
    // before any credential is looked at.
    let api_key = || from_fn(require_api_key);
    cfg.service(
        resource("/get-current-time").route(web::post().to(time::get_current_time).wrap(api_key())),
    )
    .service(resource("/check-prime").route(web::post().to(prime::check_prime).wrap(api_key())))
    .service(resource("/whoami").route(web::get().to(whoami::whoami).wrap(api_key())))
    .service(resource("/weather").route(web::get().to(weather::weather).wrap(api_key())))
    .service(resource("/register").route(web::post().to(users::register)))
    .service(resource("/login").route(web::post().to(users::login)))
    .service(resource("/refresh").route(web::post().to(users::refresh)))
    .service(resource("/logout").route(web::post().to(users::logout)))
    .service(resource("/protected").route(web::get().to(users::protected)))
    .service(
        resource("/admin/keys")
            .route(web::get().to(admin::list_keys))
            .route(web::post().to(admin::create_key)),
    )
    .service(resource("/admin/keys/{id}").route(web::delete().to(admin::revoke_key)))
    .service(resource("/admin/keys/{id}/rotate").route(web::post().to(admin::rotate_key)))
    .service(resource("/admin/keys/{id}/usage").route(web::get().to(admin::key_usage)))
    .service(resource("/healthz").route(web::get().to(health::healthz)))
    .service(resource("/readyz").route(web::get().to(health::readyz)))
    .service(resource("/metrics").route(web::get().to(health::metrics)))
    .service(resource("/openapi.json").route(web::get().to(openapi)))
    .service(resource("/docs").route(web::get().to(docs::docs_page)))
    .service(resource("/docs/docs-init.js").route(web::get().to(docs::docs_init_js)))
    .service(
        resource("/docs/swagger-ui-bundle.js").route(web::get().to(docs::swagger_ui_bundle_js)),
    )
    .service(resource("/docs/swagger-ui.css").route(web::get().to(docs::swagger_ui_css)))
    .default_service(web::to(not_found));
}

/// A resource whose other methods answer 405 with a JSON problem body.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such endpoint"))
}

/// Turns actix's JSON body errors into problem bodies with a precise detail.
pub fn json_error(error: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    let api = match &error {
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => {
            ApiError::PayloadTooLarge(format!("the body is larger than the {limit}-byte limit"))
        }
        JsonPayloadError::ContentType => {
            ApiError::BadRequest("expected Content-Type: application/json".to_owned())
        }
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            ApiError::BadRequest(format!("invalid request body: {e}"))
        }
        JsonPayloadError::Deserialize(e) if e.is_eof() => {
            ApiError::BadRequest("the body is empty or truncated JSON".to_owned())
        }
        JsonPayloadError::Deserialize(e) => ApiError::BadRequest(format!("malformed JSON: {e}")),
        _ => ApiError::BadRequest("the request body could not be read".to_owned()),
    };
    api.into()
}

/// Turns query string errors into problem bodies.
pub fn query_error(error: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid query string: {error}")).into()
}

/// Turns path parameter errors into problem bodies.
pub fn path_error(error: PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid path: {error}")).into()
}
