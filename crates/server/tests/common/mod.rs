//! Spawns the real application on port 0 with a temporary SQLite database, an injected
//! environment and a manual clock, and talks to it over HTTP.

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod browser;
pub mod process;
pub mod upstream;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use secure_api::cli::SettingsArgs;
use secure_api::clock::Clock;
use secure_api::keys::CreatedKey;
use secure_api::startup::{Application, Env};
use secure_api::state::Services;
use serde_json::{Value, json};

/// 2026-03-01 12:00:00 UTC.
pub const NOON: u64 = 1_772_366_400;

/// A running test server.
pub struct TestApp {
    pub base: String,
    pub services: Services,
    pub clock: Clock,
    pub first: First,
    pub dir: Arc<tempfile::TempDir>,
    pub env: HashMap<String, String>,
    pub client: awc::Client,
    server: actix_web::dev::ServerHandle,
    handle: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
}

pub struct Spawn {
    pub env: HashMap<String, String>,
    pub args: SettingsArgs,
    pub dir: Option<Arc<tempfile::TempDir>>,
    pub clock: Clock,
}

impl Default for Spawn {
    fn default() -> Self {
        let mut env = HashMap::new();
        let mut secret = [0u8; 48];
        rand::fill(&mut secret);
        env.insert("SECRET_KEY".to_owned(), hex::encode(secret));
        Self {
            env,
            args: SettingsArgs::default(),
            dir: None,
            clock: Clock::manual(NOON),
        }
    }
}

pub async fn spawn() -> TestApp {
    spawn_with(Spawn::default()).await
}

pub async fn spawn_with(spawn: Spawn) -> TestApp {
    let dir = spawn
        .dir
        .unwrap_or_else(|| Arc::new(tempfile::tempdir().expect("temp dir")));
    let db: PathBuf = dir.path().join("secure-api.db");
    let mut args = spawn.args;
    args.bind.get_or_insert("127.0.0.1:0".parse().unwrap());
    args.database_url
        .get_or_insert(format!("sqlite://{}", db.display()));
    args.secret_key_file
        .get_or_insert(dir.path().join("secure-api.secret"));
    args.workers.get_or_insert(2);
    let settings = args.resolve().expect("settings");
    let env = Env::from_map(
        spawn
            .env
            .iter()
            .map(|(k, v)| (k.clone(), OsString::from(v)))
            .collect(),
    );
    let mut app = Application::build_with(settings, env, spawn.clock.clone())
        .await
        .expect("the app builds");
    let mut first = app.take_first_start();
    let base = format!("http://127.0.0.1:{}", app.port());
    let services = app.services();
    let server = app.handle();
    let handle = actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        base,
        services,
        clock: spawn.clock,
        first: First {
            admin_token: first
                .as_mut()
                .and_then(|f| f.admin_token.take())
                .map(|t| t.token.clone())
                .unwrap_or_default(),
            demo_key: first
                .and_then(|mut f| f.demo_key.take())
                .unwrap_or_else(empty_key),
        },
        dir,
        env: spawn.env,
        server,
        client: awc::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .finish(),
        handle,
    }
}

/// What the start created: the admin token (empty when none was made) and the demo key (with
/// an empty key when none was made).
pub struct First {
    pub admin_token: String,
    pub demo_key: CreatedKey,
}

fn empty_key() -> CreatedKey {
    CreatedKey {
        id: String::new(),
        key: String::new(),
        service: String::new(),
        daily_quota: 0,
        scopes: secure_api::auth::scope::Scopes::ANY,
        signing_secret: None,
        expires_at: None,
        metadata: secure_api::keys::KeyMetadata::default(),
        limits: secure_api::key_limits::KeyLimits::default(),
    }
}

/// A response: status, headers and body as JSON (Null when empty).
pub struct Reply {
    pub status: u16,
    /// The body as sent (numbers of any size intact).
    pub text: String,
    pub headers: actix_web::http::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The raw JSON text of the top-level `number` field.
    pub fn raw_number(&self) -> &str {
        let start = self.text.find("\"number\":").expect("a number field") + 9;
        let rest = &self.text[start..];
        let end = rest.find([',', '}']).expect("end of the number");
        &rest[..end]
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let mut req = self.client.request(method.parse().unwrap(), self.url(path));
        for (name, value) in headers {
            req = req.insert_header((*name, *value));
        }
        let mut res = match body {
            Some(body) => {
                if !headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                {
                    req = req.insert_header(("content-type", "application/json"));
                }
                req.send_body(body.to_owned()).await
            }
            None => req.send().await,
        }
        .expect("the request is answered");
        let bytes = res.body().limit(8 << 20).await.expect("a body");
        let text = String::from_utf8(bytes.to_vec()).expect("UTF-8 body");
        let is_json = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let body = if text.is_empty() || !is_json {
            Value::Null
        } else {
            // `Value` cannot hold a 600-digit number: such a reply is checked on `text`.
            serde_json::from_str(&text).unwrap_or_else(|e| {
                assert!(
                    e.to_string().contains("number out of range"),
                    "not JSON: {text}"
                );
                Value::Null
            })
        };
        Reply {
            status: res.status().as_u16(),
            text,
            headers: res.headers().clone(),
            body,
        }
    }

    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        self.send("POST", path, headers, Some(body)).await
    }

    pub async fn patch(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        self.send("PATCH", path, headers, Some(body)).await
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", path, headers, None).await
    }

    /// Registers `username` and logs in; the access and refresh tokens.
    pub async fn user_tokens(&self, username: &str) -> (String, String) {
        let creds =
            json!({"username": username, "password": "a long enough password 1"}).to_string();
        let registered = self.post("/register", &[], &creds).await;
        assert_eq!(registered.status, 201, "{}", registered.body);
        let login = self.post("/login", &[], &creds).await;
        assert_eq!(login.status, 200, "{}", login.body);
        (
            login.body["access_token"].as_str().unwrap().to_owned(),
            login.body["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    /// `/refresh` with `refresh_token`.
    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        let body = json!({ "refresh_token": refresh_token }).to_string();
        self.post("/refresh", &[], &body).await
    }

    /// Sends `n` `/refresh` calls with one refresh token at once, and checks that exactly one
    /// succeeds, and that the losers, which presented a spent token, revoked the winner's
    /// new pair with the rest of the family.
    pub async fn check_refresh_race(&self, username: &str, n: usize) {
        let (_, refresh) = self.user_tokens(username).await;
        let replies = futures_util::future::join_all((0..n).map(|_| self.refresh(&refresh))).await;
        let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
        statuses.sort_unstable();
        let mut expected = vec![200];
        expected.resize(n, 401);
        assert_eq!(statuses, expected);
        let winner = replies.iter().find(|r| r.status == 200).unwrap();
        let access = format!("Bearer {}", winner.body["access_token"].as_str().unwrap());
        let me = self.get("/protected", &[("authorization", &access)]).await;
        assert_eq!(me.status, 401, "{}", me.body);
        let next = self
            .refresh(winner.body["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(next.status, 401, "{}", next.body);
    }

    /// Creates a key through the admin API.
    pub async fn create_key(&self, body: Value) -> Value {
        let auth = format!("Bearer {}", self.first.admin_token);
        let reply = self
            .post(
                "/admin/keys",
                &[("authorization", &auth)],
                &body.to_string(),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body
    }

    /// The `/metrics` page, checking its content type.
    pub async fn metrics_page(&self) -> String {
        let page = self.get("/metrics", &[]).await;
        assert_eq!(page.status, 200);
        assert_eq!(
            page.header("content-type").as_deref(),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        page.text
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(self) {
        self.server.stop(true).await;
        self.handle
            .await
            .expect("the server task ends")
            .expect("the server ran");
    }
}

/// The value of the sample `name{labels}` on the metrics page (labels in exposition order).
pub fn sample(page: &str, name: &str, labels: &str) -> Option<f64> {
    let wanted = if labels.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{labels}}}")
    };
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            (series == wanted).then(|| value.parse().ok()).flatten()
        })
}

/// A PostgreSQL schema of the test's own, dropped by [`PgSchema::drop_schema`], so that tests
/// sharing `TEST_DATABASE_URL` never collide.
pub struct PgSchema {
    admin: sqlx::AnyPool,
    name: String,
    /// The database URL with `search_path` set to the schema.
    pub url: String,
}

impl PgSchema {
    /// Creates `<prefix>_<random hex>` on the database at `url`.
    pub async fn create(url: &str, prefix: &str) -> Self {
        use sqlx::Executor as _;
        let mut id = [0u8; 6];
        rand::fill(&mut id);
        let name = format!("{prefix}_{}", hex::encode(id));
        sqlx::any::install_default_drivers();
        let admin = sqlx::AnyPool::connect(url)
            .await
            .expect("PostgreSQL answers");
        admin
            // The schema name is a fixed prefix and generated hex, never input.
            .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .await
            .expect("the schema is created");
        let separator = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{separator}options=-c%20search_path%3D{name}");
        Self { admin, name, url }
    }

    /// Drops the schema and everything in it.
    pub async fn drop_schema(self) {
        use sqlx::Executor as _;
        self.admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA {} CASCADE",
                self.name
            )))
            .await
            .expect("the schema is dropped");
    }
}
