//! A stand-in OpenWeather on loopback: answers every request with what the test's `answer`
//! makes of it, and records each request's path and query and its `Host`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use secure_api::cli::SettingsArgs;

use super::{Spawn, TestApp, spawn_with};

/// The recorded London answer of OpenWeather's current-weather API.
pub const LONDON: &str = include_str!("../../../weather-keypool/tests/data/london.json");

/// How the stand-in answers one request.
pub type Answer = fn(HttpRequest) -> Pin<Box<dyn Future<Output = HttpResponse>>>;

/// What the stand-in saw: the path and query of each request, and the `Host` it was sent to.
#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<(String, String)>>>);

impl Seen {
    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap().clone()
    }

    /// How many requests so far.
    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// A JSON 200 with `body`.
pub fn json(body: impl Into<String>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.into())
}

/// Starts the stand-in on a free port; its base URL and its record.
pub async fn start(answer: Answer) -> (String, Seen) {
    let seen = Seen::default();
    let log = seen.clone();
    let server = HttpServer::new(move || {
        let log = log.clone();
        App::new().default_service(web::to(move |req: HttpRequest| {
            let host = req
                .headers()
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let target = req
                .uri()
                .path_and_query()
                .map(|pq| pq.as_str().to_owned())
                .unwrap_or_default();
            log.0.lock().unwrap().push((target, host));
            answer(req)
        }))
    })
    .workers(2)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let base = format!("http://{}", server.addrs()[0]);
    actix_web::rt::spawn(server.run());
    (base, seen)
}

/// An app talking to `base` with the upstream keys `keys` (variable name, value).
pub async fn app(base: &str, keys: &[(&str, &str)]) -> TestApp {
    let mut options = Spawn {
        args: SettingsArgs {
            openweather_base_url: Some(base.to_owned()),
            ..SettingsArgs::default()
        },
        ..Spawn::default()
    };
    for (name, value) in keys {
        options.env.insert((*name).to_owned(), (*value).to_owned());
    }
    spawn_with(options).await
}
