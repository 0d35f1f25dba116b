use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The longest city query accepted, in characters.
pub const MAX_CITY_CHARS: usize = 100;

/// A validated city query, e.g. `"London"`, `"Saint-Étienne, FR"` or `"Springfield,IL,US"`.
///
/// Normalized on construction: trimmed, inner whitespace collapsed to one space. The cache
/// ignores case (OpenWeather matches names case-insensitively), so `LONDON` and `london` share
/// an entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct City(String);

impl City {
    /// Validates a city query: 1 to [`MAX_CITY_CHARS`] characters after trimming; letters,
    /// digits, spaces and `- ' ’ . ,` only.
    ///
    /// # Errors
    /// [`Error::InvalidCity`] saying what is wrong.
    pub fn new(name: &str) -> Result<Self> {
        let normalized = name.split_whitespace().collect::<Vec<_>>().join(" ");
        if normalized.is_empty() {
            return Err(Error::InvalidCity("empty"));
        }
        if normalized.chars().count() > MAX_CITY_CHARS {
            return Err(Error::InvalidCity("longer than 100 characters"));
        }
        if !normalized
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '\'' | '’' | '.' | ','))
        {
            return Err(Error::InvalidCity(
                "only letters, digits, spaces and - ' . , are allowed",
            ));
        }
        if !normalized.chars().any(char::is_alphabetic) {
            return Err(Error::InvalidCity("no letter"));
        }
        Ok(Self(normalized))
    }

    /// The normalized query.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for City {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated latitude and longitude in degrees, rounded to 4 decimals (about 11 m).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Coordinates {
    lat: f64,
    lon: f64,
}

impl Coordinates {
    /// Validates and rounds: latitude in `-90..=90`, longitude in `-180..=180`, both finite.
    ///
    /// # Errors
    /// [`Error::InvalidCoordinates`] saying which is wrong.
    pub fn new(lat: f64, lon: f64) -> Result<Self> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(Error::InvalidCoordinates(
                "latitude must be between -90 and 90",
            ));
        }
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(Error::InvalidCoordinates(
                "longitude must be between -180 and 180",
            ));
        }
        // `+ 0.0` makes -0.0 (a tiny negative value, rounded) the 0.0 it equals, so that both
        // name the same place in the cache and upstream.
        let round = |v: f64| (v * 10_000.0).round() / 10_000.0 + 0.0;
        Ok(Self {
            lat: round(lat),
            lon: round(lon),
        })
    }

    /// Latitude in degrees, north positive.
    #[must_use]
    pub fn lat(&self) -> f64 {
        self.lat
    }

    /// Longitude in degrees, east positive.
    #[must_use]
    pub fn lon(&self) -> f64 {
        self.lon
    }
}

/// Where to ask about.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// A city query (`q=`).
    City(City),
    /// A point (`lat=`, `lon=`).
    Coords(Coordinates),
}

impl Location {
    /// A validated city location; see [`City::new`].
    ///
    /// # Errors
    /// [`Error::InvalidCity`].
    pub fn city(name: &str) -> Result<Self> {
        City::new(name).map(Self::City)
    }

    /// A validated point; see [`Coordinates::new`].
    ///
    /// # Errors
    /// [`Error::InvalidCoordinates`].
    pub fn coords(lat: f64, lon: f64) -> Result<Self> {
        Coordinates::new(lat, lon).map(Self::Coords)
    }

    /// The location as upstream query parameters (values already URL-encoded).
    pub(crate) fn query(&self) -> String {
        match self {
            Self::City(city) => format!(
                "q={}",
                percent_encoding::utf8_percent_encode(city.as_str(), QUERY_VALUE)
            ),
            Self::Coords(c) => format!("lat={:.4}&lon={:.4}", c.lat, c.lon),
        }
    }

    /// The normalized place as a cache key: `city:<name>` or `coords:<lat>,<lon>`. Two
    /// city names that differ only in letter case give the same key.
    #[must_use]
    pub fn cache_key(&self) -> String {
        match self {
            Self::City(city) => format!("city:{}", city.as_str().to_lowercase()),
            Self::Coords(c) => format!("coords:{:.4},{:.4}", c.lat, c.lon),
        }
    }
}

/// Everything except unreserved characters is percent-encoded in query values.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(crate) fn encode_query_value(value: &str) -> percent_encoding::PercentEncode<'_> {
    percent_encoding::utf8_percent_encode(value, QUERY_VALUE)
}

/// Units of measurement, as OpenWeather names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Units {
    /// Kelvin, metre/second.
    Standard,
    /// Celsius, metre/second (the default).
    #[default]
    Metric,
    /// Fahrenheit, miles/hour.
    Imperial,
}

impl Units {
    /// The `units=` value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Metric => "metric",
            Self::Imperial => "imperial",
        }
    }

    /// Parses `standard`, `metric` or `imperial` (ASCII case-insensitive).
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        [Self::Standard, Self::Metric, Self::Imperial]
            .into_iter()
            .find(|u| u.as_str().eq_ignore_ascii_case(value))
    }
}

/// Wind at the observation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Wind {
    /// Speed: metre/second, or miles/hour in [`Units::Imperial`].
    pub speed: f64,
    /// Direction the wind comes from, in degrees (meteorological), when reported.
    pub direction_deg: Option<f64>,
    /// Gust speed in the same unit as `speed`, when reported.
    pub gust: Option<f64>,
}

/// One weather condition, e.g. `Rain` / `light rain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    /// OpenWeather's condition code (e.g. 500 for light rain).
    pub id: u32,
    /// The group: `Rain`, `Snow`, `Clouds`, ...
    pub main: String,
    /// The description in the requested language (English).
    pub description: String,
    /// OpenWeather's icon id, e.g. `10d`.
    pub icon: String,
}

/// Current weather at a place: the stable subset of OpenWeather's answer this crate vouches for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Weather {
    /// The place name as the upstream gives it (may be empty for remote points).
    pub place: String,
    /// ISO 3166 country code, when known.
    pub country: Option<String>,
    /// Where the observation is.
    pub coordinates: Coordinates,
    /// The units of the figures below.
    pub units: Units,
    /// Temperature: Kelvin, Celsius or Fahrenheit depending on `units`.
    pub temperature: f64,
    /// Perceived temperature, same unit.
    pub feels_like: f64,
    /// Relative humidity, 0 to 100.
    pub humidity_percent: u8,
    /// Sea-level atmospheric pressure, hPa.
    pub pressure_hpa: f64,
    /// Wind.
    pub wind: Wind,
    /// Conditions, most significant first.
    pub conditions: Vec<Condition>,
    /// Observation time, Unix seconds UTC.
    pub observed_at: i64,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    name: String,
    coord: RawCoord,
    main: RawMain,
    #[serde(default)]
    wind: Option<RawWind>,
    #[serde(default)]
    weather: Vec<RawCondition>,
    dt: i64,
    #[serde(default)]
    sys: Option<RawSys>,
}

#[derive(Deserialize)]
struct RawCoord {
    lat: f64,
    lon: f64,
}

#[derive(Deserialize)]
struct RawMain {
    temp: f64,
    feels_like: f64,
    humidity: f64,
    pressure: f64,
}

#[derive(Deserialize)]
struct RawWind {
    speed: f64,
    #[serde(default)]
    deg: Option<f64>,
    #[serde(default)]
    gust: Option<f64>,
}

#[derive(Deserialize)]
struct RawCondition {
    id: u32,
    main: String,
    description: String,
    icon: String,
}

#[derive(Deserialize)]
struct RawSys {
    #[serde(default)]
    country: Option<String>,
}

/// Most conditions kept from one answer.
const MAX_CONDITIONS: usize = 8;
/// Longest place name, condition text or icon id accepted from the upstream, in characters.
const MAX_TEXT: usize = 200;

/// The temperatures accepted in `units`: beyond Earth's records with a wide margin (−100 °C to
/// +100 °C), so only a broken or hostile upstream is refused.
fn temperature_range(units: Units) -> core::ops::RangeInclusive<f64> {
    match units {
        Units::Metric => -100.0..=100.0,
        Units::Imperial => -148.0..=212.0,
        Units::Standard => 173.15..=373.15,
    }
}

/// Checks a text field from the upstream: bounded, no control characters, and none of the
/// invisible or direction-changing ones (the zero-width space, bidi marks, embeddings,
/// overrides and isolates, line and paragraph separators, the byte-order mark) that would make
/// a name read as another. The zero-width joiner and non-joiner stay: Persian and Indic names
/// are spelled with them.
fn check_text(value: &str, what: &str) -> Result<()> {
    let invisible = |c: char| {
        matches!(
            c,
            '\u{061C}'
                | '\u{200B}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
    };
    if value.chars().count() > MAX_TEXT || value.chars().any(|c| c.is_control() || invisible(c)) {
        return Err(malformed(format!(
            "{what} is too long or has control characters"
        )));
    }
    Ok(())
}

/// Refuses values no real weather report has: the upstream is not trusted further than its
/// format. Wind up to 150 m/s (335 mph), pressure 300 to 1200 hPa, observation time from 1970
/// to 2200.
fn check_plausible(raw: &Raw, units: Units) -> Result<()> {
    let temperatures = temperature_range(units);
    if !temperatures.contains(&raw.main.temp) || !temperatures.contains(&raw.main.feels_like) {
        return Err(malformed("temperature out of range"));
    }
    if !(300.0..=1200.0).contains(&raw.main.pressure) {
        return Err(malformed("pressure out of range"));
    }
    let max_wind = if units == Units::Imperial {
        335.0
    } else {
        150.0
    };
    if let Some(wind) = &raw.wind {
        let speeds = 0.0..=max_wind;
        if !speeds.contains(&wind.speed) || wind.gust.is_some_and(|g| !speeds.contains(&g)) {
            return Err(malformed("wind speed out of range"));
        }
        if wind.deg.is_some_and(|d| !(0.0..=360.0).contains(&d)) {
            return Err(malformed("wind direction out of range"));
        }
    }
    if !(0..=7_258_118_400).contains(&raw.dt) {
        return Err(malformed("observation time out of range"));
    }
    check_text(&raw.name, "place name")?;
    // Empty (a place at sea) is no country; anything else is two capital letters.
    if let Some(country) = raw.sys.as_ref().and_then(|s| s.country.as_deref()) {
        if !country.is_empty()
            && (country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(malformed("country is not an ISO 3166 code"));
        }
    }
    for condition in raw.weather.iter().take(MAX_CONDITIONS) {
        check_text(&condition.main, "condition")?;
        check_text(&condition.description, "condition description")?;
        if condition.icon.len() > 8 || !condition.icon.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(malformed("condition icon is not an icon id"));
        }
    }
    Ok(())
}

fn malformed(reason: impl Into<String>) -> Error {
    Error::MalformedResponse {
        reason: reason.into(),
    }
}

/// Parses an OpenWeather "current weather" body, and refuses one whose values no real weather
/// report has (temperatures, pressure, wind, times and texts out of range): the upstream's
/// answer is untrusted input like any other.
///
/// # Errors
/// [`Error::MalformedResponse`], saying where or what (never quoting the body).
pub fn parse_current(body: &[u8], units: Units) -> Result<Weather> {
    let raw: Raw = serde_json::from_slice(body).map_err(|e| {
        malformed(format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    let coordinates = Coordinates::new(raw.coord.lat, raw.coord.lon)
        .map_err(|_| malformed("coordinates out of range"))?;
    check_plausible(&raw, units)?;
    if !(0.0..=100.0).contains(&raw.main.humidity) {
        return Err(malformed("humidity out of range"));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // checked to be 0..=100
    let humidity_percent = raw.main.humidity.round() as u8;
    let wind = raw.wind.map_or(
        Wind {
            speed: 0.0,
            direction_deg: None,
            gust: None,
        },
        |w| Wind {
            speed: w.speed,
            direction_deg: w.deg,
            gust: w.gust,
        },
    );
    Ok(Weather {
        place: raw.name,
        country: raw.sys.and_then(|s| s.country).filter(|c| !c.is_empty()),
        coordinates,
        units,
        temperature: raw.main.temp,
        feels_like: raw.main.feels_like,
        humidity_percent,
        pressure_hpa: raw.main.pressure,
        wind,
        conditions: raw
            .weather
            .into_iter()
            .take(MAX_CONDITIONS)
            .map(|c| Condition {
                id: c.id,
                main: c.main,
                description: c.description,
                icon: c.icon,
            })
            .collect(),
        observed_at: raw.dt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../tests/data/london.json");

    #[test]
    fn values_no_weather_has_are_refused() {
        let refused = |from: &str, to: &str| {
            let body = SAMPLE.replacen(from, to, 1);
            assert_ne!(body, SAMPLE, "{from} is in the sample");
            assert!(
                matches!(
                    parse_current(body.as_bytes(), Units::Metric),
                    Err(Error::MalformedResponse { .. })
                ),
                "{to}"
            );
        };
        refused("\"temp\":11.93", "\"temp\":1e308");
        refused("\"temp\":11.93", "\"temp\":-300");
        refused("\"feels_like\":11.22", "\"feels_like\":500");
        refused("\"pressure\":1012", "\"pressure\":-1");
        refused("\"speed\":4.12", "\"speed\":9999");
        refused("\"speed\":4.12", "\"speed\":-1");
        refused("\"deg\":250", "\"deg\":720");
        refused("\"dt\":1700000000", "\"dt\":-5");
        refused("\"country\":\"GB\"", "\"country\":\"<script>\"");
        refused("\"country\":\"GB\"", "\"country\":\"GBR\"");
        refused("\"name\":\"London\"", "\"name\":\"Lon\\u202edon\"");
        refused("\"name\":\"London\"", "\"name\":\"London\\u200b\"");
        // The zero-width non-joiner spells Persian names (می‌خانه): accepted.
        let persian = SAMPLE.replacen(
            "\"name\":\"London\"",
            "\"name\":\"\\u0645\\u06cc\\u200c\\u062e\\u0627\\u0646\\u0647\"",
            1,
        );
        assert!(parse_current(persian.as_bytes(), Units::Metric).is_ok());
        refused("\"icon\":\"04d\"", "\"icon\":\"../../x\"");
        refused(
            "\"name\":\"London\"",
            &format!("\"name\":\"{}\"", "L".repeat(201)),
        );
        refused("\"name\":\"London\"", "\"name\":\"Lon\\u0000don\"");
        // The same numbers are fine in the units they belong to.
        let kelvin = SAMPLE
            .replacen("\"temp\":11.93", "\"temp\":285.08", 1)
            .replacen("\"feels_like\":11.22", "\"feels_like\":284.37", 1);
        assert!(parse_current(kelvin.as_bytes(), Units::Standard).is_ok());
        assert!(parse_current(kelvin.as_bytes(), Units::Metric).is_err());
    }

    #[test]
    fn parses_the_documented_sample() {
        let w = parse_current(SAMPLE.as_bytes(), Units::Metric).unwrap();
        assert_eq!(w.place, "London");
        assert_eq!(w.country.as_deref(), Some("GB"));
        assert_eq!(w.coordinates, Coordinates::new(51.5085, -0.1257).unwrap());
        assert!((w.temperature - 11.93).abs() < 1e-9);
        assert!((w.feels_like - 11.22).abs() < 1e-9);
        assert_eq!(w.humidity_percent, 78);
        assert!((w.pressure_hpa - 1012.0).abs() < 1e-9);
        assert!((w.wind.speed - 4.12).abs() < 1e-9);
        assert_eq!(w.wind.direction_deg, Some(250.0));
        assert_eq!(w.conditions.len(), 1);
        assert_eq!(w.conditions[0].main, "Clouds");
        assert_eq!(w.conditions[0].description, "broken clouds");
        assert_eq!(w.observed_at, 1_700_000_000);
    }

    /// A point just south-west of 0,0 rounds to 0,0: the same cache entry and upstream query,
    /// not `-0.0000`.
    #[test]
    fn a_point_that_rounds_to_zero_is_zero_not_minus_zero() {
        let tiny = Location::coords(-0.000_01, -0.000_04).unwrap();
        let zero = Location::coords(0.0, 0.0).unwrap();
        assert_eq!(tiny.cache_key(), zero.cache_key());
        assert_eq!(tiny.query(), "lat=0.0000&lon=0.0000");
    }

    #[test]
    fn malformed_bodies_are_typed_errors() {
        for body in [
            &b""[..],
            b"not json",
            b"{}",
            b"[1,2]",
            b"{\"coord\":{\"lat\":1,\"lon\":2}}",
            b"{\"coord\":{\"lat\":91,\"lon\":2},\"main\":{\"temp\":1,\"feels_like\":1,\"humidity\":5,\"pressure\":1},\"dt\":1}",
            b"{\"coord\":{\"lat\":1,\"lon\":2},\"main\":{\"temp\":1,\"feels_like\":1,\"humidity\":500,\"pressure\":1},\"dt\":1}",
            b"{\"coord\":{\"lat\":\"secret\",\"lon\":2}}",
        ] {
            let err = parse_current(body, Units::Metric).unwrap_err();
            assert!(matches!(err, Error::MalformedResponse { .. }), "{err:?}");
            assert!(!err.to_string().contains("secret"));
        }
    }

    #[test]
    fn city_validation_and_normalization() {
        assert_eq!(City::new("  New \n  York ").unwrap().as_str(), "New York");
        assert_eq!(City::new("İstanbul").unwrap().as_str(), "İstanbul");
        assert_eq!(
            City::new("Saint-Étienne, FR").unwrap().as_str(),
            "Saint-Étienne, FR"
        );
        assert!(City::new("O'Fallon").is_ok());
        for bad in [
            "",
            "   ",
            "a&appid=x",
            "x/../y",
            "a\u{0}b",
            "a%20b",
            "123",
            "ab;c",
            "<script>",
        ] {
            assert!(
                matches!(City::new(bad), Err(Error::InvalidCity(_))),
                "{bad:?}"
            );
        }
        assert!(City::new(&"a".repeat(100)).is_ok());
        assert!(City::new(&"a".repeat(101)).is_err());
    }

    #[test]
    fn coordinate_validation() {
        assert!(Coordinates::new(90.0, 180.0).is_ok());
        assert!(Coordinates::new(-90.0, -180.0).is_ok());
        for (lat, lon) in [
            (90.1, 0.0),
            (-90.1, 0.0),
            (0.0, 180.5),
            (0.0, -181.0),
            (f64::NAN, 0.0),
            (0.0, f64::INFINITY),
        ] {
            assert!(matches!(
                Coordinates::new(lat, lon),
                Err(Error::InvalidCoordinates(_))
            ));
        }
        let c = Coordinates::new(51.508_53, -0.125_74).unwrap();
        assert_eq!(Location::Coords(c).query(), "lat=51.5085&lon=-0.1257");
    }

    #[test]
    fn city_query_is_url_encoded() {
        let loc = Location::city("Saint-Étienne, FR").unwrap();
        assert_eq!(loc.query(), "q=Saint-%C3%89tienne%2C%20FR");
        assert_eq!(
            loc.cache_key(),
            Location::city("saint-étienne,   fr").unwrap().cache_key()
        );
    }

    #[test]
    fn units_round_trip() {
        for u in [Units::Standard, Units::Metric, Units::Imperial] {
            assert_eq!(Units::parse(u.as_str()), Some(u));
        }
        assert_eq!(Units::parse("METRIC"), Some(Units::Metric));
        assert_eq!(Units::parse("kelvin"), None);
    }
}
