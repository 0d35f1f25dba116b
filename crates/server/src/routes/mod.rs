//! HTTP routes: each handler turns a request into a library call and the answer into JSON.

pub mod admin;
pub mod admin_ui;
pub mod docs;
pub mod health;
pub mod prime;
pub mod time;
pub mod users;
pub mod weather;
pub mod whoami;

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, Resource, Route, guard, web};
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::auth::chain::{ApiAuth, require_principal};
use crate::auth::scope::Scope;
use crate::error::ApiError;
use crate::limits::LoginLimit;

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
        admin::get_key,
        admin::update_key,
        admin::revoke_key,
        admin::rotate_key,
        admin::key_usage,
        admin::list_admin_tokens,
        admin::create_admin_token,
        admin::revoke_admin_token,
        admin::audit_log,
        admin_ui::admin_page,
        admin_ui::admin_js,
        admin_ui::admin_css,
        health::healthz,
        health::readyz,
        health::metrics,
        openapi,
        docs::docs_page,
        docs::docs_init_js,
        docs::swagger_ui_bundle_js,
        docs::swagger_ui_css,
    ),
    modifiers(&SecuritySchemes, &CommonResponses, &HeadOnGet)
)]
pub struct ApiDoc;

struct SecuritySchemes;

/// Adds the answers any operation of its kind can give, wherever its handler does not list
/// them: 400 and 413 for a request body, 401 for a secured operation, 503 for one that needs a
/// dependency (the database, Redis, the request timeout). The document then lists every status
/// the server can send.
struct CommonResponses;

/// Operations that touch no dependency: they answer the same whatever is down.
const STATIC_OPERATIONS: &[&str] = &[
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/docs-init.js",
    "/docs/swagger-ui-bundle.js",
    "/docs/swagger-ui.css",
];

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let problem = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/problem+json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Problem")))
                            .build(),
                    )
                    .build(),
            )
        };
        for (path, item) in &mut openapi.paths.paths {
            let operations = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ];
            for operation in operations.into_iter().flatten() {
                let scope = required_scope(operation);
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let has_body = operation.request_body.is_some();
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem(description));
                };
                if has_body {
                    add(
                        "400",
                        "Malformed body: not JSON, wrong content type, wrong types",
                    );
                    add("413", "Body larger than the limit (16 KiB by default)");
                }
                if secured {
                    add("401", "Missing or invalid credentials");
                }
                if let Some(scope) = scope {
                    add(
                        "403",
                        &format!(
                            "The key is valid but lacks the scope `{scope}` (named in `required_scope`)"
                        ),
                    );
                }
                if !STATIC_OPERATIONS.contains(&path.as_str()) {
                    add(
                        "503",
                        "A dependency (the database or Redis) does not answer, or the request took too long; see Retry-After",
                    );
                }
            }
        }
    }
}

/// The scope an operation's security requirements name (each names the same one), if any.
fn required_scope(operation: &utoipa::openapi::path::Operation) -> Option<String> {
    let value = serde_json::to_value(operation.security.as_ref()?).ok()?;
    value
        .as_array()?
        .iter()
        .filter_map(|requirement| requirement.as_object())
        .flat_map(|requirement| requirement.values())
        .filter_map(|scopes| scopes.as_array()?.first()?.as_str())
        .map(str::to_owned)
        .next()
}

/// Documents `HEAD` beside every `GET` (the server answers both, see [`get`]): the same
/// operation, with the same statuses and headers and no body.
struct HeadOnGet;

impl utoipa::Modify for HeadOnGet {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        for item in openapi.paths.paths.values_mut() {
            let Some(get) = &item.get else { continue };
            let mut head = get.clone();
            head.operation_id = get.operation_id.as_ref().map(|id| format!("{id}_head"));
            head.summary = get.summary.as_ref().map(|s| format!("{s} (headers only)"));
            for response in head.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response.content.clear();
                }
            }
            item.head = Some(head);
        }
    }
}

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
        components.add_security_scheme(
            "signed_rfc9421",
            header(
                "Signature",
                "An RFC 9421 HTTP Message Signature, with Signature-Input: alg \"hmac-sha256\", \
                 keyid the key id, the key's signing secret (its hex text, from `keys create \
                 --signing`); it must cover @method, the target (@target-uri, or @authority, @path \
                 and @query) and, with a body, content-digest (RFC 9530, sha-256 or sha-512), and \
                 carry created (within 5 minutes) and a nonce (used once).",
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

/// Registers every route: the API routes behind `auth`'s chain, `/register` and `/login`
/// behind `login_limits`.
pub fn configure(cfg: &mut web::ServiceConfig, auth: &ApiAuth, login_limits: &[LoginLimit; 2]) {
    // Authentication wraps the route, not the resource, so a wrong method answers 405
    // before any credential is looked at. The last `wrap` runs first: the signature check,
    // then the key, then the principal and the route's scope.
    let api = |scope: Scope, route: Route| {
        route
            .wrap(from_fn(move |req, next| {
                require_principal(scope, req, next)
            }))
            .wrap(auth.key.clone())
            .wrap(auth.signature.clone())
    };
    let [per_client, per_network] = login_limits;
    let limited = |route: Route| route.wrap(per_client.clone()).wrap(per_network.clone());
    cfg.service(
        resource("/get-current-time", "POST")
            .route(api(Scope::TimeRead, web::post().to(time::get_current_time))),
    )
    .service(
        resource("/check-prime", "POST")
            .route(api(Scope::PrimeCheck, web::post().to(prime::check_prime))),
    )
    .service(
        resource("/whoami", "GET, HEAD").route(api(Scope::WhoamiRead, get().to(whoami::whoami))),
    )
    .service(
        resource("/weather", "GET, HEAD")
            .route(api(Scope::WeatherRead, get().to(weather::weather))),
    )
    .service(resource("/register", "POST").route(limited(web::post().to(users::register))))
    .service(resource("/login", "POST").route(limited(web::post().to(users::login))))
    .service(resource("/refresh", "POST").route(web::post().to(users::refresh)))
    .service(resource("/logout", "POST").route(web::post().to(users::logout)))
    .service(resource("/protected", "GET, HEAD").route(get().to(users::protected)))
    .service(
        resource("/admin/keys", "GET, HEAD, POST")
            .route(get().to(admin::list_keys))
            .route(web::post().to(admin::create_key)),
    )
    .service(
        resource("/admin/keys/{id}", "GET, HEAD, PATCH, DELETE")
            .route(get().to(admin::get_key))
            .route(web::patch().to(admin::update_key))
            .route(web::delete().to(admin::revoke_key)),
    )
    .service(resource("/admin/keys/{id}/rotate", "POST").route(web::post().to(admin::rotate_key)))
    .service(resource("/admin/keys/{id}/usage", "GET, HEAD").route(get().to(admin::key_usage)))
    .service(
        resource("/admin/tokens", "GET, HEAD, POST")
            .route(get().to(admin::list_admin_tokens))
            .route(web::post().to(admin::create_admin_token)),
    )
    .service(
        resource("/admin/tokens/{id}", "DELETE").route(web::delete().to(admin::revoke_admin_token)),
    )
    .service(resource("/admin/audit", "GET, HEAD").route(get().to(admin::audit_log)))
    .service(resource("/admin/ui", "GET, HEAD").route(get().to(admin_ui::admin_page)))
    .service(resource("/admin/ui/admin.js", "GET, HEAD").route(get().to(admin_ui::admin_js)))
    .service(resource("/admin/ui/admin.css", "GET, HEAD").route(get().to(admin_ui::admin_css)))
    .service(resource("/healthz", "GET, HEAD").route(get().to(health::healthz)))
    .service(resource("/readyz", "GET, HEAD").route(get().to(health::readyz)))
    .service(resource("/metrics", "GET, HEAD").route(get().to(health::metrics)))
    .service(resource("/openapi.json", "GET, HEAD").route(get().to(openapi)))
    .service(resource("/docs", "GET, HEAD").route(get().to(docs::docs_page)))
    .service(resource("/docs/docs-init.js", "GET, HEAD").route(get().to(docs::docs_init_js)))
    .service(
        resource("/docs/swagger-ui-bundle.js", "GET, HEAD")
            .route(get().to(docs::swagger_ui_bundle_js)),
    )
    .service(resource("/docs/swagger-ui.css", "GET, HEAD").route(get().to(docs::swagger_ui_css)))
    .default_service(web::to(not_found));
}

/// A route for `GET` that answers `HEAD` too, as load balancers' health checks send it: the same
/// handler and headers, and no body (actix-web leaves the body of an answer to `HEAD` unsent).
fn get() -> Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// A resource whose other methods answer 405 with a JSON problem body and `allow`, the methods
/// its routes take, in `Allow` (RFC 9110 requires it; `tests/api.rs` checks it against the
/// routes).
fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow })
    }))
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such endpoint"))
}
