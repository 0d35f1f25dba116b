#![doc = include_str!("../README.md")]
//!
//! # Cargo features
//!
//! - `client` (default): [`WeatherClient`], the OpenWeather client on `awc`, and
//!   [`WeatherCache`]. Without it only the pool is built and `awc` is not a dependency. This
//!   feature alone speaks plain HTTP only: an `https://` base URL then fails with
//!   [`Error::Connect`].
//! - `rustls` (off by default): HTTPS for the client, with rustls 0.23, the *ring* crypto
//!   provider and the webpki root certificates. Needed to reach the real
//!   `https://api.openweathermap.org`.

#[cfg(feature = "client")]
mod cache;
#[cfg(feature = "client")]
mod client;
mod clock;
mod env;
mod error;
mod key;
mod pool;
#[cfg(feature = "client")]
mod weather;

#[cfg(feature = "client")]
pub use cache::WeatherCache;
#[cfg(feature = "client")]
pub use client::{DEFAULT_BASE_URL, ENV_BASE_URL, WeatherClient, WeatherClientBuilder};
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
