#![doc = include_str!("../README.md")]

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
pub use key::{KeyFingerprint, UpstreamKey};
pub use pool::{
    KeyHealth, KeyPool, KeyPoolBuilder, KeyStats, Outcome, PickedKey, Selection, UpstreamKeyId,
    parse_retry_after,
};
#[cfg(feature = "client")]
pub use weather::{
    City, Condition, Coordinates, Location, MAX_CITY_CHARS, Units, Weather, Wind, parse_current,
};
