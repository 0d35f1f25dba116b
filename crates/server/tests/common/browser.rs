//! Headless Chromium driven over the Chrome DevTools Protocol, for the tests of the pages the
//! server serves (`/docs`, `/admin/ui`): a browser on a fresh profile, a page opened in it
//! with CSP violations recorded, JavaScript evaluated in it, and every console error, exception,
//! failed request and error response it saw.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use actix_web::rt::time::sleep;
use awc::error::WsProtocolError;
use awc::ws;
use base64::Engine as _;
use futures_util::{Sink, SinkExt as _, Stream, StreamExt as _};
use serde_json::{Value, json};

/// Chromium for the test `test`, or `None` (the test then skips, and fails under
/// `REQUIRE_SERVICES=1`) when it is not installed.
pub fn chromium(test: &str) -> Option<std::path::PathBuf> {
    test_services::program(
        test,
        "chromium",
        "install it with `apt-get install chromium` (`.ci/run` does)",
    )
}

/// How long a page may take to render, or a request made from it to be answered.
pub const RENDER_BUDGET: Duration = Duration::from_secs(45);

/// Records CSP violations, which a page can see even when the console shows nothing.
pub const RECORD_VIOLATIONS: &str = "window.__violations = []; \
    document.addEventListener('securitypolicyviolation', e => \
      window.__violations.push(e.effectiveDirective + ' blocked ' + (e.blockedURI || 'inline')));";

/// Console errors, uncaught exceptions, failed requests and error responses among `events`.
pub fn problems_in(events: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for event in events {
        let params = &event["params"];
        match event["method"].as_str().unwrap_or_default() {
            "Runtime.consoleAPICalled"
                if matches!(params["type"].as_str(), Some("error" | "assert")) =>
            {
                problems.push(format!("console.{}: {}", params["type"], params["args"]));
            }
            "Runtime.exceptionThrown" => {
                problems.push(format!(
                    "uncaught exception: {}",
                    params["exceptionDetails"]
                ));
            }
            // CSP violations and resources that fail to load are reported here too.
            "Log.entryAdded" if params["entry"]["level"] == "error" => {
                let entry = &params["entry"];
                problems.push(format!(
                    "log error ({}): {} {}",
                    entry["source"], entry["text"], entry["url"]
                ));
            }
            "Network.loadingFailed" => {
                problems.push(format!(
                    "request failed: {} {} {}",
                    params["type"], params["errorText"], params["blockedReason"]
                ));
            }
            "Network.responseReceived" => {
                let response = &params["response"];
                if response["status"].as_u64().is_none_or(|c| c >= 400) {
                    problems.push(format!(
                        "HTTP {} for {}",
                        response["status"], response["url"]
                    ));
                }
            }
            _ => {}
        }
    }
    problems
}

/// Evaluates `expression` until `done` accepts its value, for at most [`RENDER_BUDGET`].
pub async fn wait_for<S, T>(
    cdp: &mut Cdp<S>,
    what: &str,
    done: impl Fn(&Value) -> Option<T>,
    expression: &str,
) -> T
where
    S: Socket,
{
    let deadline = Instant::now() + RENDER_BUDGET;
    loop {
        let value = cdp.evaluate(expression).await;
        if let Some(found) = done(&value) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting until {what}: last value {value}; problems so far:\n{}",
            problems_in(&cdp.events).join("\n")
        );
        sleep(Duration::from_millis(100)).await;
    }
}

/// The DevTools websocket, as awc hands it out.
pub trait Socket:
    Sink<ws::Message, Error = WsProtocolError>
    + Stream<Item = Result<ws::Frame, WsProtocolError>>
    + Unpin
{
}

impl<T> Socket for T where
    T: Sink<ws::Message, Error = WsProtocolError>
        + Stream<Item = Result<ws::Frame, WsProtocolError>>
        + Unpin
{
}

/// A Chrome DevTools Protocol client on one websocket, with the events it has seen.
pub struct Cdp<S> {
    socket: S,
    next_id: u64,
    /// The page session that commands go to, once attached (flat session mode).
    pub session: Option<String>,
    /// Every event received so far.
    pub events: Vec<Value>,
}

impl<S> Cdp<S>
where
    S: Socket,
{
    pub fn new(socket: S) -> Self {
        Self {
            socket,
            next_id: 0,
            session: None,
            events: Vec::new(),
        }
    }

    /// Sends a command and returns its result, keeping the events that arrive meanwhile.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({"id": id, "method": method, "params": params});
        if let Some(session) = &self.session {
            command["sessionId"] = json!(session);
        }
        self.socket
            .send(ws::Message::Text(command.to_string().into()))
            .await
            .expect("the command is sent");
        loop {
            let message = self.receive().await;
            if message["id"] == id {
                assert!(message.get("error").is_none(), "{method}: {message}");
                return message["result"].clone();
            }
            if message.get("method").is_some() {
                self.events.push(message);
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    pub async fn evaluate(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    async fn receive(&mut self) -> Value {
        loop {
            let frame = self
                .socket
                .next()
                .await
                .expect("Chromium keeps the DevTools connection open")
                .expect("a websocket frame");
            match frame {
                ws::Frame::Text(text) => {
                    return serde_json::from_slice(&text).expect("DevTools sends JSON");
                }
                ws::Frame::Ping(data) => {
                    self.socket
                        .send(ws::Message::Pong(data))
                        .await
                        .expect("pong");
                }
                // Chromium sends each message as one frame (up to `max_frame_size`).
                ws::Frame::Continuation(_) => panic!("a fragmented DevTools message"),
                ws::Frame::Close(reason) => panic!("Chromium closed DevTools: {reason:?}"),
                ws::Frame::Binary(_) | ws::Frame::Pong(_) => {}
            }
        }
    }
}

/// Headless Chromium on a fresh profile, killed when dropped. Its helper processes (zygote,
/// renderer, GPU, network) end by themselves when the browser process is gone.
///
/// Deliberately no process-group kill through the `kill` program: procps' `kill -KILL -<pgid>`
/// reads the negative number as options and can end up as `kill(-1, SIGKILL)`, which as root
/// ends every process on the machine.
pub struct Chromium {
    child: Child,
    /// The browser's DevTools websocket address.
    pub devtools_url: String,
    stderr: Arc<Mutex<Vec<String>>>,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts Chromium (`program`) headless on a fresh profile.
    pub fn launch(program: &Path) -> Self {
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut command = Command::new(program);
        command
            .args([
                "--headless",
                "--no-sandbox", // tests run as root here
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--window-size=1280,1600",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            // With --disable-dev-shm-usage its shared memory goes to the temp dir: keep that in
            // the profile, which is removed with the test.
            .env("TMPDIR", profile.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("chromium starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (found, address) = mpsc::channel();
        let kept = Arc::clone(&lines);
        // Reads stderr to the end, so Chromium never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = found.send(url.trim().to_owned());
                }
                kept.lock().expect("stderr lines").push(line);
            }
        });
        let mut browser = Self {
            child,
            devtools_url: String::new(),
            stderr: lines,
            _profile: profile,
        };
        browser.devtools_url = address
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "Chromium printed no DevTools address within 30 s:\n{}",
                    browser.stderr()
                )
            });
        browser
    }

    /// What Chromium wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lines").join("\n")
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // Only the child this test started, by its handle: never a process group or a name.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens `url` in a new tab of `browser`, with the page, runtime, log and network events on and
/// CSP violations recorded from the first script on; the client, once the navigation started.
pub async fn open(browser: &Chromium, url: &str) -> Cdp<impl Socket + use<>> {
    let (_, socket) = awc::Client::new()
        .ws(browser.devtools_url.as_str())
        .max_frame_size(64 << 20)
        .connect()
        .await
        .expect("the DevTools websocket connects");
    let mut cdp = Cdp::new(socket);
    let target = cdp
        .call("Target.createTarget", json!({"url": "about:blank"}))
        .await;
    let session = cdp
        .call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        )
        .await;
    cdp.session = Some(session["sessionId"].as_str().expect("a session").to_owned());
    for domain in ["Page", "Runtime", "Log", "Network"] {
        cdp.call(&format!("{domain}.enable"), json!({})).await;
    }
    cdp.call(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({"source": RECORD_VIOLATIONS}),
    )
    .await;
    let navigated = cdp.call("Page.navigate", json!({"url": url})).await;
    assert!(navigated.get("errorText").is_none(), "{navigated}");
    cdp
}

/// Every problem the page had so far: CSP violations, then console errors, exceptions, failed
/// requests and error responses.
pub async fn problems<S: Socket>(cdp: &mut Cdp<S>) -> Vec<String> {
    let violations = cdp.evaluate("window.__violations").await;
    let mut problems: Vec<String> = violations
        .as_array()
        .expect("the violations list")
        .iter()
        .map(|v| format!("CSP violation: {v}"))
        .collect();
    problems.extend(problems_in(&cdp.events));
    problems
}

/// Writes a PNG of the page's content (the body, however tall, not the empty window below it)
/// to `path`.
pub async fn screenshot<S: Socket>(cdp: &mut Cdp<S>, path: &Path) {
    let size = cdp
        .evaluate(
            "[document.documentElement.clientWidth, \
              Math.ceil(document.body.getBoundingClientRect().bottom) + 16]",
        )
        .await;
    let clip = json!({"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1});
    let shot = cdp
        .call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true, "clip": clip}),
        )
        .await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("screenshot data"))
        .expect("base64 PNG");
    std::fs::write(path, png).expect("the screenshot is written");
    eprintln!("screenshot in {}", path.display());
}
