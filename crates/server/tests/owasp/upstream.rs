//! A fake OpenWeather that records every request it gets, for API7 and API10.

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

use crate::common::{self, Spawn, spawn_with};
use secure_api::config::SettingsArgs;

pub const LONDON: &str = include_str!("../../../weather-keypool/tests/data/london.json");

/// The upstream's log: the path and query of each request, and the `Host` it was sent to.
#[derive(Clone, Default)]
pub struct Seen(pub Arc<Mutex<Vec<(String, String)>>>);

impl Seen {
    pub fn requests(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap().clone()
    }
}

/// Starts the fake; `answer` makes each response from the query string.
pub async fn start(answer: fn(&str) -> HttpResponse) -> (String, Seen) {
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
            let response = answer(req.query_string());
            async move { response }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let base = format!("http://{}", server.addrs()[0]);
    actix_web::rt::spawn(server.run());
    (base, seen)
}

/// An app whose one upstream key is `key`, talking to `base`.
pub async fn app(base: &str, key: &str) -> common::TestApp {
    let mut options = Spawn {
        args: SettingsArgs {
            openweather_base_url: Some(base.to_owned()),
            ..SettingsArgs::default()
        },
        ..Spawn::default()
    };
    options
        .env
        .insert("OPENWEATHER_API_KEY".to_owned(), key.to_owned());
    spawn_with(options).await
}
