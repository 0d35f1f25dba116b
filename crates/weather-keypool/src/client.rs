use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::cache::WeatherCache;
use crate::error::{Error, Result};
use crate::key::KeyFingerprint;
use crate::pool::{KeyPool, Outcome, PickedKey, UpstreamKeyId};
use crate::weather::{Location, Units, Weather, encode_query_value, parse_current};

/// The variable the base URL is conventionally read from (the server does so).
pub const ENV_BASE_URL: &str = "OPENWEATHER_BASE_URL";
/// OpenWeather's own base URL, the default.
pub const DEFAULT_BASE_URL: &str = "https://api.openweathermap.org";

/// Called after every upstream attempt with the key's fingerprint and what the upstream said.
type Observer = Arc<dyn Fn(KeyFingerprint, Outcome) + Send + Sync>;

/// Settings for [`WeatherClient`]s. `Clone + Send + Sync`: keep one and build a client from
/// it: `build` on awc (feature `awc`; one per worker thread, since awc's client is not `Send`),
/// `build_reqwest` on reqwest (feature `reqwest`; one for the whole process, `Send` and
/// `Sync`), or [`build_with`](Self::build_with) on any [`Transport`]. Clones share the key pool
/// and the response cache.
#[derive(Clone)]
#[must_use]
pub struct WeatherClientBuilder {
    pool: Arc<KeyPool>,
    observer: Option<Observer>,
    cache: Option<Arc<WeatherCache>>,
    base_url: String,
    connect_timeout: Duration,
    timeout: Duration,
    max_body_bytes: usize,
    retry_backoff: Duration,
}

impl fmt::Debug for WeatherClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeatherClientBuilder")
            .field("pool", &self.pool)
            .field("cache", &self.cache)
            .field("base_url", &self.base_url)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("retry_backoff", &self.retry_backoff)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl WeatherClientBuilder {
    /// Default connect timeout: 2 s.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
    /// Default limit on one whole upstream exchange (connect, send, read the body): 5 s.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default upstream body limit: 64 KiB (a real answer is under 1 KiB).
    pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
    /// Default pause before retrying after a 5xx or a timeout: 100 ms.
    pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_millis(100);

    /// Settings with the defaults: OpenWeather's base URL, a new [`WeatherCache::default`].
    pub fn new(pool: Arc<KeyPool>) -> Self {
        Self {
            pool,
            observer: None,
            cache: Some(Arc::new(WeatherCache::default())),
            base_url: DEFAULT_BASE_URL.to_owned(),
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            timeout: Self::DEFAULT_TIMEOUT,
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            retry_backoff: Self::DEFAULT_RETRY_BACKOFF,
        }
    }

    /// Calls `observer` after every upstream attempt with the key's fingerprint (never the key)
    /// and the [`Outcome`] reported to the pool: for metrics such as calls per key and outcome.
    /// It runs on the request's task, so it must be quick.
    pub fn observer(
        mut self,
        observer: impl Fn(KeyFingerprint, Outcome) + Send + Sync + 'static,
    ) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// The upstream base URL, e.g. `http://127.0.0.1:8081` for a local fake or a staging proxy.
    /// This is operator configuration: requests never choose the host.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] unless it is an absolute `http` or `https` URL with a host and no
    /// credentials, query or fragment.
    pub fn base_url(mut self, base_url: &str) -> Result<Self> {
        let parsed = url::Url::parse(base_url)
            .map_err(|_| Error::InvalidConfig("base URL is not a valid absolute URL"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::InvalidConfig(
                "base URL scheme must be http or https",
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(Error::InvalidConfig("base URL has no host"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(Error::InvalidConfig("base URL must not carry credentials"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(Error::InvalidConfig(
                "base URL must not have a query or fragment",
            ));
        }
        self.base_url = parsed.as_str().trim_end_matches('/').to_owned();
        Ok(self)
    }

    /// Limit on establishing the TCP (and TLS) connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Limit on one whole upstream exchange: connect, send, and read the body.
    ///
    /// It applies to each attempt: a [`WeatherClient::current`] call that retries after a
    /// timeout takes up to twice this plus the backoff (and one more exchange per key the
    /// upstream refuses or throttles on the way).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest upstream body accepted; larger is [`Error::BodyTooLarge`].
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Pause before the single retry after a 5xx or a timeout.
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// Shares this response cache (e.g. one with a custom TTL, size or clock).
    pub fn cache(mut self, cache: Arc<WeatherCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Turns the response cache off: every call goes upstream.
    pub fn without_cache(mut self) -> Self {
        self.cache = None;
        self
    }

    /// A client on awc for the current thread (inside an actix or tokio runtime; feature
    /// `awc`). Redirects are not followed. It speaks HTTP/1.1 only: awc's HTTP/2 path logs each
    /// request's head, the URL with the upstream key in it, at `trace` level.
    #[cfg(feature = "awc")]
    #[must_use]
    pub fn build(&self) -> WeatherClient<AwcTransport> {
        let connector = awc::Connector::new()
            .timeout(self.connect_timeout)
            .max_http_version(awc::http::Version::HTTP_11);
        let http = awc::Client::builder()
            .connector(connector)
            .timeout(self.timeout)
            .disable_redirects()
            .finish();
        self.build_with(AwcTransport(http))
    }

    /// A client on reqwest (feature `reqwest`): `Send + Sync`, so one serves a whole tokio or
    /// axum service. Redirects and proxies from the environment are not followed. HTTPS uses
    /// whatever TLS backend the application enabled in reqwest (this crate enables none, so
    /// that it never changes how the application's other reqwest clients behave); to configure
    /// the client yourself, use [`build_with`](Self::build_with) and [`ReqwestTransport::new`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when reqwest cannot set the client up.
    #[cfg(feature = "reqwest")]
    pub fn build_reqwest(&self) -> Result<WeatherClient<ReqwestTransport>> {
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|_| Error::InvalidConfig("the HTTP client could not be set up"))?;
        Ok(self.build_with(ReqwestTransport(http)))
    }

    /// A client on `transport`.
    #[must_use]
    pub fn build_with<T: Transport>(&self, transport: T) -> WeatherClient<T> {
        WeatherClient {
            http: transport,
            config: self.clone(),
        }
    }
}

/// An upstream answer, as a [`Transport`] reports it.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The `Retry-After` header, if it was sent and is text.
    pub retry_after: Option<String>,
    /// The body, read only when the status is 200; `None` otherwise.
    pub body: Option<Vec<u8>>,
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("status", &self.status)
            .field("retry_after", &self.retry_after)
            .field("body_bytes", &self.body.as_ref().map(Vec::len))
            .finish()
    }
}

/// Why a [`Transport`] got no answer. It carries no text: a transport's own error may quote
/// the URL, and so the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportError {
    /// No answer in time.
    Timeout,
    /// The connection failed or broke.
    Connect,
    /// The body is larger than the limit.
    BodyTooLarge,
}

/// What the client needs of an HTTP client: one `GET` with `Accept: application/json`,
/// redirects not followed, the body read (at most `max_body` bytes) only for a 200.
///
/// Ready-made: `AwcTransport` (feature `awc`) and `ReqwestTransport` (feature `reqwest`).
/// The client's future is `Send` exactly when the transport's is.
pub trait Transport {
    /// Sends the request. The URL holds the API key: never log it or put it in an error.
    fn get(
        &self,
        url: &str,
        max_body: usize,
    ) -> impl Future<Output = core::result::Result<Reply, TransportError>>;
}

/// awc as the [`Transport`] (feature `awc`); not `Send`, like awc's client.
#[cfg(feature = "awc")]
pub struct AwcTransport(awc::Client);

#[cfg(feature = "awc")]
impl fmt::Debug for AwcTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AwcTransport")
    }
}

#[cfg(feature = "awc")]
impl Transport for AwcTransport {
    async fn get(&self, url: &str, max_body: usize) -> core::result::Result<Reply, TransportError> {
        use awc::error::{ConnectError, PayloadError, SendRequestError};
        let sent = self
            .0
            .get(url)
            .insert_header(("accept", "application/json"))
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(SendRequestError::Timeout | SendRequestError::Connect(ConnectError::Timeout)) => {
                return Err(TransportError::Timeout);
            }
            Err(_) => return Err(TransportError::Connect),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = if status == 200 {
            match response.body().limit(max_body).await {
                Ok(body) => Some(body.to_vec()),
                Err(PayloadError::Overflow) => return Err(TransportError::BodyTooLarge),
                Err(_) => return Err(TransportError::Connect),
            }
        } else {
            None
        };
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }
}

/// reqwest as the [`Transport`] (feature `reqwest`); `Send + Sync`.
#[cfg(feature = "reqwest")]
#[derive(Clone)]
pub struct ReqwestTransport(reqwest::Client);

#[cfg(feature = "reqwest")]
impl ReqwestTransport {
    /// A transport on `client`, configured by the caller (TLS, timeouts). Keep its redirects
    /// off: the client's own timeouts and [`WeatherClientBuilder::timeout`] both apply.
    #[must_use]
    pub fn new(client: reqwest::Client) -> Self {
        Self(client)
    }
}

#[cfg(feature = "reqwest")]
impl fmt::Debug for ReqwestTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReqwestTransport")
    }
}

#[cfg(feature = "reqwest")]
impl Transport for ReqwestTransport {
    async fn get(&self, url: &str, max_body: usize) -> core::result::Result<Reply, TransportError> {
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                TransportError::Timeout
            } else {
                TransportError::Connect
            }
        };
        let mut response = self
            .0
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(failed)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if status != 200 {
            return Ok(Reply {
                status,
                retry_after,
                body: None,
            });
        }
        if response
            .content_length()
            .is_some_and(|len| len > max_body as u64)
        {
            return Err(TransportError::BodyTooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > max_body {
                return Err(TransportError::BodyTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply {
            status,
            retry_after,
            body: Some(body),
        })
    }
}

/// The OpenWeather "current weather" client: picks a key from the [`KeyPool`], reports what the
/// upstream said about it, retries once after a 5xx or a timeout, and caches answers.
///
/// On awc (the default type, [`WeatherClientBuilder::build`]) it is not `Send`: build one per
/// worker thread from a shared [`WeatherClientBuilder`]. On reqwest
/// (`WeatherClientBuilder::build_reqwest`) it is `Send + Sync`, and its futures are `Send`.
#[cfg(feature = "awc")]
pub struct WeatherClient<T = AwcTransport> {
    http: T,
    config: WeatherClientBuilder,
}

/// The OpenWeather "current weather" client: picks a key from the [`KeyPool`], reports what the
/// upstream said about it, retries once after a 5xx or a timeout, and caches answers.
#[cfg(not(feature = "awc"))]
pub struct WeatherClient<T> {
    http: T,
    config: WeatherClientBuilder,
}

impl<T> fmt::Debug for WeatherClient<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeatherClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// How one upstream attempt ended.
enum Attempt {
    /// The key was accepted; this is the request's answer.
    Done(Result<Weather>),
    /// The key was refused or throttled: try another.
    KeyRefused(Outcome),
    /// The upstream failed (5xx, timeout, transport): maybe retry.
    UpstreamFailed(Error),
}

#[cfg(feature = "awc")]
impl WeatherClient<AwcTransport> {
    /// Settings to build clients from; see [`WeatherClientBuilder`].
    pub fn builder(pool: Arc<KeyPool>) -> WeatherClientBuilder {
        WeatherClientBuilder::new(pool)
    }
}

impl<T: Transport> WeatherClient<T> {
    /// The key pool this client draws from.
    #[must_use]
    pub fn pool(&self) -> &Arc<KeyPool> {
        &self.config.pool
    }

    /// Current weather at `location` in `units`, from the cache when fresh.
    ///
    /// A key refused (401/403) or throttled (429) is reported to the pool and the next key is
    /// tried at once; after a 5xx or a timeout one retry follows on another key (the same one
    /// if it is the only key in rotation) after the backoff.
    ///
    /// # Errors
    /// [`Error::AllKeysUnavailable`] when no key is in rotation, [`Error::Timeout`],
    /// [`Error::Connect`], [`Error::PlaceNotFound`], [`Error::UpstreamStatus`],
    /// [`Error::BodyTooLarge`], [`Error::MalformedResponse`].
    pub async fn current(&self, location: &Location, units: Units) -> Result<Arc<Weather>> {
        match &self.config.cache {
            Some(cache) => {
                cache
                    .get_or_fetch(location, units, || self.fetch(location, units))
                    .await
            }
            None => self.fetch(location, units).await.map(Arc::new),
        }
    }

    async fn fetch(&self, location: &Location, units: Units) -> Result<Weather> {
        let pool = &self.config.pool;
        let mut tried: Vec<UpstreamKeyId> = Vec::new();
        let mut failure: Option<Error> = None;
        let mut retry_pending = false;
        loop {
            let picked = match pool.pick_excluding(&tried) {
                Ok(picked) => picked,
                Err(unavailable) => match (retry_pending, failure.take()) {
                    // Retrying after a 5xx or timeout with no other key: the same one will do.
                    (true, Some(failure)) => pool.pick().map_err(|_| failure)?,
                    (_, Some(failure)) => return Err(failure),
                    (_, None) => return Err(unavailable),
                },
            };
            let retrying = std::mem::take(&mut retry_pending);
            tried.push(picked.id());
            let report = |outcome: Outcome| {
                pool.report(picked.id(), outcome);
                if let Some(observer) = &self.config.observer {
                    observer(picked.fingerprint(), outcome);
                }
            };
            match self.attempt(&picked, location, units).await {
                Attempt::Done(result) => {
                    report(Outcome::Accepted);
                    return result;
                }
                Attempt::KeyRefused(outcome) => report(outcome),
                Attempt::UpstreamFailed(error) => {
                    report(Outcome::UpstreamFailure);
                    if retrying || failure.is_some() {
                        return Err(error);
                    }
                    failure = Some(error);
                    retry_pending = true;
                    tokio::time::sleep(self.config.retry_backoff).await;
                }
            }
        }
    }

    async fn attempt(&self, picked: &PickedKey, location: &Location, units: Units) -> Attempt {
        let timeout = self.config.timeout;
        match tokio::time::timeout(timeout, self.exchange(picked, location, units)).await {
            Ok(attempt) => attempt,
            Err(_) => Attempt::UpstreamFailed(Error::Timeout { after: timeout }),
        }
    }

    async fn exchange(&self, picked: &PickedKey, location: &Location, units: Units) -> Attempt {
        // The URL holds the key: it is zeroed when dropped and never put into an error or log.
        let url = Zeroizing::new(format!(
            "{}/data/2.5/weather?{}&units={}&appid={}",
            self.config.base_url,
            location.query(),
            units.as_str(),
            encode_query_value(picked.key().expose_secret()),
        ));
        let limit = self.config.max_body_bytes;
        let reply = match self.http.get(url.as_str(), limit).await {
            Ok(reply) => reply,
            Err(TransportError::Timeout) => {
                return Attempt::UpstreamFailed(Error::Timeout {
                    after: self.config.timeout,
                });
            }
            Err(TransportError::BodyTooLarge) => {
                return Attempt::Done(Err(Error::BodyTooLarge { limit }));
            }
            Err(_) => return Attempt::UpstreamFailed(Error::Connect),
        };
        let status = reply.status;
        match Outcome::from_status(status, reply.retry_after.as_deref()) {
            outcome @ (Outcome::Rejected | Outcome::Throttled { .. }) => {
                return Attempt::KeyRefused(outcome);
            }
            Outcome::UpstreamFailure => {
                return Attempt::UpstreamFailed(Error::UpstreamStatus { status });
            }
            _ => {}
        }
        match (status, reply.body) {
            (200, Some(body)) => Attempt::Done(parse_current(&body, units)),
            (404, _) => Attempt::Done(Err(Error::PlaceNotFound)),
            _ => Attempt::Done(Err(Error::UpstreamStatus { status })),
        }
    }
}
