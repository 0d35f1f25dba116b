//! A fake OpenWeather server for the integration tests: each API key follows a script.

#![allow(dead_code, unreachable_pub)] // each test binary uses a different part of this helper

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use tokio::sync::Semaphore;

pub const LONDON: &str = include_str!("../data/london.json");

/// What the fake answers for one key.
#[derive(Debug, Clone)]
pub enum Script {
    /// 200 with the London sample.
    Ok,
    /// This status, with this `Retry-After` if given, and a small JSON body.
    Status(u16, Option<&'static str>),
    /// 200 with this body.
    Body(String),
    /// Sleeps this long, then 200.
    Sleep(Duration),
    /// Waits for the gate to open, then 200.
    Gated,
}

#[derive(Debug, Default)]
struct State {
    scripts: HashMap<String, Script>,
    calls: HashMap<String, usize>,
    queries: Vec<String>,
}

/// The fake server: its base URL, shared scripts and per-key call counts.
#[derive(Debug, Clone)]
pub struct Fake {
    pub base_url: String,
    state: Arc<Mutex<State>>,
    gate: Arc<Semaphore>,
}

impl Fake {
    /// Starts the fake on 127.0.0.1, port 0, in its own thread and actix system.
    pub fn start(scripts: &[(&str, Script)]) -> Self {
        let state = Arc::new(Mutex::new(State {
            scripts: scripts
                .iter()
                .map(|(k, s)| ((*k).to_owned(), s.clone()))
                .collect(),
            ..State::default()
        }));
        let gate = Arc::new(Semaphore::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let (st, gt) = (Arc::clone(&state), Arc::clone(&gate));
        std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::new((Arc::clone(&st), Arc::clone(&gt))))
                        .route("/data/2.5/weather", web::get().to(handle))
                })
                .workers(2)
                .disable_signals()
                .shutdown_timeout(0)
                .bind(("127.0.0.1", 0))
                .expect("bind the fake server");
                let addr = server.addrs()[0];
                let running = server.run();
                tx.send(addr).expect("report the address");
                running.await.expect("fake server");
            });
        });
        let addr = rx.recv().expect("fake server started");
        Self {
            base_url: format!("http://{addr}"),
            state,
            gate,
        }
    }

    /// Changes the script of one key.
    pub fn set(&self, key: &str, script: Script) {
        self.state
            .lock()
            .unwrap()
            .scripts
            .insert(key.to_owned(), script);
    }

    /// How many requests carried this key.
    pub fn calls(&self, key: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .calls
            .get(key)
            .copied()
            .unwrap_or(0)
    }

    /// How many requests arrived in all.
    pub fn total_calls(&self) -> usize {
        self.state.lock().unwrap().calls.values().sum()
    }

    /// Every query string received, in order.
    pub fn queries(&self) -> Vec<String> {
        self.state.lock().unwrap().queries.clone()
    }

    /// Lets gated requests through.
    pub fn open_gate(&self) {
        self.gate.add_permits(1_000);
    }
}

type Shared = (Arc<Mutex<State>>, Arc<Semaphore>);

/// The London sample in the units the query asks for: the sample is metric, and the client
/// refuses a temperature that is impossible in the units it asked for (11.93 K, say).
fn london_in_units(query: &str) -> String {
    if query.contains("units=standard") {
        LONDON
            .replacen("\"temp\":11.93", "\"temp\":285.08", 1)
            .replacen("\"feels_like\":11.22", "\"feels_like\":284.37", 1)
    } else {
        LONDON.to_owned()
    }
}

async fn handle(req: HttpRequest, data: web::Data<Shared>) -> HttpResponse {
    let (state, gate) = data.get_ref();
    let key = req
        .query_string()
        .split('&')
        .find_map(|kv| kv.strip_prefix("appid="))
        .unwrap_or("")
        .to_owned();
    let script = {
        let mut state = state.lock().unwrap();
        *state.calls.entry(key.clone()).or_default() += 1;
        state.queries.push(req.query_string().to_owned());
        state.scripts.get(&key).cloned()
    };
    match script {
        None => HttpResponse::Unauthorized().body(r#"{"cod":401,"message":"Invalid API key."}"#),
        Some(Script::Ok) => ok(london_in_units(req.query_string())),
        Some(Script::Body(body)) => ok(body),
        Some(Script::Status(code, retry_after)) => {
            let mut resp = HttpResponse::build(
                actix_web::http::StatusCode::from_u16(code).expect("valid status"),
            );
            if let Some(value) = retry_after {
                resp.insert_header(("Retry-After", value));
            }
            resp.content_type("application/json")
                .body(format!(r#"{{"cod":{code},"message":"scripted"}}"#))
        }
        Some(Script::Sleep(d)) => {
            actix_rt::time::sleep(d).await;
            ok(LONDON.to_owned())
        }
        Some(Script::Gated) => {
            gate.acquire().await.expect("gate open").forget();
            gate.add_permits(1);
            ok(LONDON.to_owned())
        }
    }
}

fn ok(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}
