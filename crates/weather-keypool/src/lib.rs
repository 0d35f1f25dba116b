#![doc = include_str!("../README.md")]
//!
//! # Cargo features
//!
//! - `awc` (default): `WeatherClient` on awc, built per actix-web worker
//!   (`WeatherClientBuilder::build`), and `WeatherCache`.
//! - `reqwest` (off by default): `WeatherClient` on reqwest, `Send + Sync`, for tokio and axum
//!   services (`WeatherClientBuilder::build_reqwest`).
//! - `client`: the client over any `Transport` and the cache, with neither HTTP client; `awc`
//!   and `reqwest` turn it on. With `default-features = false` and none of these, only the pool
//!   is built.
//! - `rustls` (off by default): HTTPS for the enabled clients, with rustls 0.23, the *ring*
//!   crypto provider and the webpki root certificates. Without it the clients speak plain HTTP
//!   only (an `https://` base URL fails with `Error::Connect`); the real
//!   `https://api.openweathermap.org` needs it.

#[cfg(feature = "client")]
mod cache;
#[cfg(feature = "client")]
mod client;
mod clock;
mod env;
mod error;
mod key;
mod pool;
#[cfg(all(feature = "reqwest", feature = "rustls"))]
mod tls;
#[cfg(feature = "client")]
mod weather;

#[cfg(feature = "client")]
pub use cache::WeatherCache;
#[cfg(feature = "awc")]
pub use client::AwcTransport;
#[cfg(feature = "reqwest")]
pub use client::ReqwestTransport;
#[cfg(feature = "client")]
pub use client::{
    DEFAULT_BASE_URL, ENV_BASE_URL, Reply, Transport, TransportError, WeatherClient,
    WeatherClientBuilder,
};
pub use clock::{Clock, FakeClock, SystemClock};
pub use env::{ENV_KEY, ENV_KEYS, keys_from_vars};
pub use error::{Error, Result};
pub use key::{ApiKey, KeyFingerprint};
pub use pool::{
    KeyHealth, KeyId, KeyPool, KeyPoolBuilder, KeyStats, Outcome, PickedKey, Selection,
    parse_retry_after,
};
#[cfg(feature = "client")]
pub use weather::{
    City, Condition, Coordinates, Location, MAX_CITY_CHARS, Units, Weather, Wind, parse_current,
};
