//! The stand-in OpenWeather for API7 and API10, from the shared test harness.

pub use crate::common::upstream::{LONDON, json, start};

use crate::common::{self, upstream};

/// An app whose one upstream key is `key`, talking to `base`.
pub async fn app(base: &str, key: &str) -> common::TestApp {
    upstream::app(base, &[("OPENWEATHER_API_KEY", key)]).await
}
