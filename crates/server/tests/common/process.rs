//! Real `secure-api` processes for tests that need them (several instances, a crash): start
//! the test build of the binary on a free port, talk to it, stop it with a signal.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The server binary these tests run: `SECURE_API_TEST_BIN` when set (`.ci/run` sets it to the
/// release build), else the test build of `secure-api`.
pub fn binary() -> PathBuf {
    std::env::var_os("SECURE_API_TEST_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_secure-api")),
        PathBuf::from,
    )
}

/// The port a server logged that it listens on (its `listening` line, plain or JSON), if it
/// has logged it yet.
fn logged_port(log: &str) -> Option<u16> {
    let line = log.lines().find(|l| l.contains("listening"))?;
    let at = line
        .find("port=")
        .map(|i| i + "port=".len())
        .or_else(|| line.find("\"port\":").map(|i| i + "\"port\":".len()))?;
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// A child process killed when dropped, so a failing test leaves nothing running.
pub struct Process {
    pub child: Child,
    pub name: &'static str,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit status (bounded).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("waitable") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop on SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Instance {
    pub base: String,
    pub process: Process,
    pub log: PathBuf,
}

impl Instance {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Starts `secure-api` with `env` on a free port; returns it and what it printed on stdout
/// before it was ready (the first-start banner, if any).
pub async fn start_instance(
    name: &'static str,
    env: &[(String, String)],
    dir: &Path,
) -> (Instance, String) {
    let log = dir.join(format!("{name}.log"));
    let child = Command::new(binary())
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k, v)))
        // A port of the system's choice, read back from the log: a free port chosen here could
        // be taken by another test before the server binds it.
        .env("SECURE_API_BIND", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("secure-api starts");
    let mut process = Process { child, name };
    let stdout = process.child.stdout.take().expect("stdout");
    // The banner is printed before the server answers; read stdout in the background.
    let banner = std::thread::spawn(move || {
        let mut text = String::new();
        let mut rules = 0;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
            rules += usize::from(line.starts_with("====="));
            if rules == 2 {
                break;
            }
        }
        text
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let port = loop {
        if let Some(port) = logged_port(&std::fs::read_to_string(&log).unwrap_or_default()) {
            break port;
        }
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!(
                "{name} exited ({status}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "{name} logged no port");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    };
    let instance = Instance {
        base: format!("http://127.0.0.1:{port}"),
        process,
        log,
    };
    let client = awc::Client::default();
    loop {
        if let Ok(res) = client.get(instance.url("/healthz")).send().await
            && res.status() == 200
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not become healthy:\n{}",
            instance.log()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let banner = if banner.is_finished() {
        banner.join().unwrap_or_default()
    } else {
        String::new()
    };
    (instance, banner)
}

/// Runs `secure-api ARGS` (an admin command) with `env` in `dir`; its stdout, after checking
/// that it succeeded.
pub fn run_cli(env: &[(String, String)], dir: &Path, args: &[&str]) -> String {
    let output = cli_output(env, dir, args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "secure-api {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs `secure-api args...` as [`run_cli`] does, expecting it to fail; its stderr.
pub fn run_cli_refused(env: &[(String, String)], dir: &Path, args: &[&str]) -> String {
    let output = cli_output(env, dir, args);
    assert!(
        !output.status.success(),
        "secure-api {args:?} succeeded:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn cli_output(env: &[(String, String)], dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(binary())
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("secure-api runs")
}

pub struct Reply {
    pub status: u16,
    pub headers: awc::http::header::HeaderMap,
    pub body: Value,
}

/// Sends a request; panics when it gets no answer.
pub async fn send(
    client: &awc::Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    try_send(client, method, url, headers, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {url} is answered: {e}"))
}

/// Sends a request; the error when there is no complete answer (the server died, say).
pub async fn try_send(
    client: &awc::Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<Reply, String> {
    let mut req = client.request(method.parse().unwrap(), url);
    for (name, value) in headers {
        req = req.insert_header((*name, *value));
    }
    let mut res = match body {
        Some(body) => {
            req.insert_header(("content-type", "application/json"))
                .send_body(body.to_owned())
                .await
        }
        None => req.send().await,
    }
    .map_err(|e| e.to_string())?;
    let bytes = res.body().limit(1 << 20).await.map_err(|e| e.to_string())?;
    Ok(Reply {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    })
}

/// `POST /get-current-time` on `at` with the API key `key`; the status.
pub async fn time_call(client: &awc::Client, at: &Instance, key: &str) -> u16 {
    send(
        client,
        "POST",
        &at.url("/get-current-time"),
        &[("authorization", key)],
        Some(""),
    )
    .await
    .status
}

pub fn admin_token(banner: &str) -> String {
    banner
        .lines()
        .find_map(|line| line.strip_prefix("Admin token (for /admin/keys):"))
        .map(|token| token.trim().to_owned())
        .unwrap_or_else(|| panic!("no admin token in the banner:\n{banner}"))
}

pub async fn create_key(client: &awc::Client, at: &Instance, admin: &str, body: Value) -> Value {
    let auth = format!("Bearer {admin}");
    let reply = send(
        client,
        "POST",
        &at.url("/admin/keys"),
        &[("authorization", &auth)],
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    hex::encode(buf)
}
