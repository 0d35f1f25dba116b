//! API10:2023 Unsafe Consumption of APIs: the weather upstream's answers are untrusted. Its
//! headers are not passed on, its extra fields are dropped, implausible values and oversized
//! bodies are refused, and nothing it says is echoed in an error.

use std::future::Future;
use std::pin::Pin;

use actix_web::{HttpRequest, HttpResponse};

use crate::upstream::{self, LONDON};

fn hostile(req: HttpRequest) -> Pin<Box<dyn Future<Output = HttpResponse>>> {
    let response = hostile_answer(req.query_string());
    Box::pin(async move { response })
}

fn hostile_answer(query: &str) -> HttpResponse {
    let json = |body: String| {
        HttpResponse::Ok()
            .content_type("application/json")
            .insert_header(("set-cookie", "session=upstream; Path=/"))
            .insert_header(("x-upstream-secret", "upstream-internal-token"))
            .insert_header(("access-control-allow-origin", "*"))
            .body(body)
    };
    if query.contains("q=extra") {
        json(LONDON.replacen(
            '{',
            r#"{"admin":true,"debug":"upstream-internal-token","#,
            1,
        ))
    } else if query.contains("q=implausible") {
        json(LONDON.replacen("\"temp\":11.93", "\"temp\":1e300", 1))
    } else if query.contains("q=huge") {
        json(format!(
            r#"{{"name": "{}"}}"#,
            "upstream-internal-token".repeat(100_000)
        ))
    } else if query.contains("q=redirect") {
        HttpResponse::Found()
            .insert_header(("location", "http://169.254.169.254/"))
            .finish()
    } else if query.contains("q=broken") {
        HttpResponse::Ok()
            .content_type("application/json")
            .body("{\"upstream-internal-token\": [")
    } else {
        json(LONDON.to_owned())
    }
}

#[actix_web::test]
async fn upstream_answers_are_treated_as_untrusted() {
    let (base, seen) = upstream::start(hostile).await;
    let app = upstream::app(&base, "server-key-api10").await;
    let key = app.first.demo_key.key.clone();
    let h = [("authorization", key.as_str())];

    let extra = app.get("/weather?city=extra", &h).await;
    assert_eq!(extra.status, 200, "{}", extra.body);
    assert!(extra.body.get("admin").is_none() && extra.body.get("debug").is_none());
    for (status, city) in [
        (502, "implausible"),
        (502, "huge"),
        (502, "redirect"),
        (502, "broken"),
    ] {
        let reply = app.get(&format!("/weather?city={city}"), &h).await;
        assert_eq!(reply.status, status, "{city}: {}", reply.body);
    }
    for city in ["extra", "implausible", "huge", "redirect", "broken"] {
        let reply = app.get(&format!("/weather?city={city}"), &h).await;
        assert!(
            !reply.text.contains("upstream-internal-token"),
            "{city}: {}",
            reply.text
        );
        assert!(
            !reply.text.contains("server-key-api10"),
            "{city}: the upstream key"
        );
        for header in [
            "set-cookie",
            "x-upstream-secret",
            "access-control-allow-origin",
        ] {
            assert!(reply.header(header).is_none(), "{city}: {header} passed on");
        }
    }
    // The redirect was not followed: only the configured upstream was ever asked.
    let host = base.trim_start_matches("http://");
    assert!(seen.requests().iter().all(|(_, h)| h == host));
}
