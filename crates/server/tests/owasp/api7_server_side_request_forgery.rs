//! API7:2023 Server Side Request Forgery: the weather proxy sends every request to the one
//! configured upstream, at the one path, with the place percent-encoded in one parameter; no
//! request parameter chooses a host, a path or the upstream key.

use std::future::Future;
use std::pin::Pin;

use actix_web::{HttpRequest, HttpResponse};

use crate::upstream::{self, LONDON, json};

fn london(_: HttpRequest) -> Pin<Box<dyn Future<Output = HttpResponse>>> {
    Box::pin(async { json(LONDON) })
}

#[actix_web::test]
async fn the_weather_proxy_cannot_be_pointed_elsewhere() {
    let (base, seen) = upstream::start(london).await;
    let app = upstream::app(&base, "server-key-api7").await;
    let key = app.first.demo_key.key.clone();
    let h = [("authorization", key.as_str())];
    // Parameters that would choose the host, the path or the key are refused outright.
    for query in [
        "city=London&appid=mine",
        "city=London&url=http://169.254.169.254/",
        "city=London&host=evil.example",
        "city=London&base=http://evil.example",
        "city=London&path=/admin",
        "city=http://169.254.169.254/latest/meta-data",
        "city=London%26appid%3Dmine",
        "city=..%2F..%2Fadmin",
        "city=London%0d%0aHost:%20evil",
    ] {
        let reply = app.get(&format!("/weather?{query}"), &h).await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
    }
    assert!(seen.requests().is_empty(), "nothing reached the upstream");

    // Allowed punctuation stays inside the one parameter, encoded.
    let reply = app.get("/weather?city=St.%20John's,%20CA", &h).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let requests = seen.requests();
    assert_eq!(requests.len(), 1);
    let (target, host) = &requests[0];
    assert_eq!(host, base.trim_start_matches("http://"));
    assert_eq!(
        target,
        "/data/2.5/weather?q=St.%20John%27s%2C%20CA&units=metric&appid=server-key-api7"
    );
}
