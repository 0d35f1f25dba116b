//! The OWASP API Security Top 10 (2023), one module per item, each named after it.
//!
//! Every module drives the real application over HTTP (the same `App` the binary serves) and
//! asserts what a client must never be able to do. Items and what they check here:
//!
//! - API1 broken object level authorization: no object of another principal is reachable by id.
//! - API2 broken authentication: brute force is limited, tokens are strong, `alg` confusion and
//!   kind confusion fail, and a wrong username answers exactly like a wrong password.
//! - API3 broken object property level authorization: no hash or secret in any response, and no
//!   property a client may not set is accepted.
//! - API4 unrestricted resource consumption: body size, number size, request rate, argon2
//!   concurrency.
//! - API5 broken function level authorization: admin routes refuse ordinary keys and tokens.
//! - API6 unrestricted access to sensitive business flows: mass registration is limited.
//! - API7 server side request forgery: the weather proxy cannot be pointed elsewhere.
//! - API8 security misconfiguration: placeholder secrets are refused, no debug output, security
//!   headers on every answer.
//! - API9 improper inventory management: every route is in the OpenAPI document and nothing
//!   else answers.
//! - API10 unsafe consumption of APIs: upstream answers are treated as untrusted.

#[path = "../common/mod.rs"]
mod common;

mod api10_unsafe_consumption_of_apis;
mod api1_broken_object_level_authorization;
mod api2_broken_authentication;
mod api3_broken_object_property_level_authorization;
mod api4_unrestricted_resource_consumption;
mod api5_broken_function_level_authorization;
mod api6_unrestricted_access_to_sensitive_business_flows;
mod api7_server_side_request_forgery;
mod api8_security_misconfiguration;
mod api9_improper_inventory_management;
mod upstream;

use serde_json::Value;

/// Registers `username` and logs in; the access and refresh tokens.
pub(crate) async fn user_tokens(app: &common::TestApp, username: &str) -> (String, String) {
    app.user_tokens(username).await
}

/// The `Authorization` value of the first-start admin token.
pub(crate) fn admin(app: &common::TestApp) -> String {
    format!("Bearer {}", app.first.admin_token)
}

/// Every string anywhere in a JSON value.
pub(crate) fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| std::iter::once(k.clone()).chain(strings(v)))
            .collect(),
        _ => Vec::new(),
    }
}
