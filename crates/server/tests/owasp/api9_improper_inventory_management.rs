//! API9:2023 Improper Inventory Management: every route that answers is in the OpenAPI
//! document, and nothing else answers: other methods get 405, other paths 404.

use serde_json::Value;

use crate::common::spawn;

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

#[actix_web::test]
async fn every_route_is_documented_and_nothing_else_answers() {
    let app = spawn().await;
    let document = app.get("/openapi.json", &[]).await;
    assert_eq!(document.status, 200);
    let paths = document.body["paths"].as_object().expect("paths").clone();
    assert!(paths.len() >= 20, "{}", paths.len());
    for (path, item) in &paths {
        let concrete = path.replace("{id}", &app.first.demo_key.id);
        let documented: Vec<String> = item
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        for method in METHODS {
            let reply = app.send(method, &concrete, &[], None).await;
            if documented.iter().any(|m| m == method) {
                assert!(
                    reply.status != 404 && reply.status != 405,
                    "{method} {path} is documented but answers {}",
                    reply.status
                );
                assert_documented_status(item, method, reply.status, path);
            } else {
                assert_eq!(reply.status, 405, "{method} {path} is not documented");
            }
        }
    }
    for path in [
        "/",
        "/admin",
        "/api",
        "/api/v1/check-prime",
        "/debug",
        "/debug/vars",
        "/actuator/health",
        "/.env",
        "/.git/config",
        "/server-status",
        "/swagger.json",
        "/openapi.yaml",
        "/graphql",
        "/docs/../openapi.json.bak",
        "/metrics/extra",
        "/check-prime/",
        "/CHECK-PRIME",
        "/admin/keys/x/y/z",
    ] {
        let reply = app.get(path, &[]).await;
        assert_eq!(reply.status, 404, "{path} answers");
        let reply = app.post(path, &[], "{}").await;
        assert_eq!(reply.status, 404, "POST {path} answers");
    }
}

/// The status is one the document lists for this operation (or, without credentials, the 401
/// every secured operation documents).
fn assert_documented_status(item: &Value, method: &str, status: u16, path: &str) {
    let responses = &item[method.to_lowercase()]["responses"];
    assert!(
        responses.get(status.to_string()).is_some(),
        "{method} {path} answered {status}, which its document does not list: {responses}"
    );
}
