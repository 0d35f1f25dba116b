//! `GET /weather`: current weather from OpenWeather through the upstream key pool.
//!
//! The server's upstream keys come from `OPENWEATHER_API_KEY`, `OPENWEATHER_API_KEY1`, ...
//! and `OPENWEATHER_API_KEYS`; the host from `OPENWEATHER_BASE_URL` (operators only: a request
//! chooses the place, never the host).

// utoipa's `IntoParams` expansion for the handler names `WeatherQuery` with a path qualification.
#![allow(unused_qualifications)]

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use weather_keypool::{Error as WeatherError, Location, Units, Weather, WeatherClient};

use crate::error::{ApiError, Problem};
use crate::extract::Query;
use crate::limits::KeyQuota;
use crate::shared::SharedWeather;

/// Where and in which units.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WeatherQuery {
    /// A city name (1 to 100 letters, digits, spaces and `- ' . ,`). Either `city`, or `lat` and `lon`.
    #[param(min_length = 1, max_length = 100)]
    pub city: Option<String>,
    /// Latitude, -90 to 90.
    pub lat: Option<f64>,
    /// Longitude, -180 to 180.
    pub lon: Option<f64>,
    /// `metric` (default), `imperial` or `standard`.
    pub units: Option<String>,
}

/// Wind.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WindResponse {
    /// m/s, or mph in imperial units.
    pub speed: f64,
    /// Direction the wind comes from, degrees.
    pub direction_deg: Option<f64>,
    /// Gusts, same unit as speed.
    pub gust: Option<f64>,
}

/// One weather condition.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConditionResponse {
    /// OpenWeather's condition code.
    pub id: u32,
    /// `Rain`, `Clouds`, ...
    pub main: String,
    /// Description.
    pub description: String,
    /// Icon id.
    pub icon: String,
}

/// Current weather.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WeatherResponse {
    /// Place name.
    pub place: String,
    /// ISO 3166 country code.
    pub country: Option<String>,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// `metric`, `imperial` or `standard`.
    pub units: String,
    /// Temperature (°C, °F or K).
    pub temperature: f64,
    /// Perceived temperature, same unit.
    pub feels_like: f64,
    /// Relative humidity, percent.
    pub humidity_percent: u8,
    /// Sea-level pressure, hPa.
    pub pressure_hpa: f64,
    /// Wind.
    pub wind: WindResponse,
    /// Conditions, most significant first.
    pub conditions: Vec<ConditionResponse>,
    /// Observation time, unix seconds.
    pub observed_at: i64,
}

impl From<&Weather> for WeatherResponse {
    fn from(w: &Weather) -> Self {
        Self {
            place: w.place.clone(),
            country: w.country.clone(),
            lat: w.coordinates.lat(),
            lon: w.coordinates.lon(),
            units: w.units.as_str().to_owned(),
            temperature: w.temperature,
            feels_like: w.feels_like,
            humidity_percent: w.humidity_percent,
            pressure_hpa: w.pressure_hpa,
            wind: WindResponse {
                speed: w.wind.speed,
                direction_deg: w.wind.direction_deg,
                gust: w.wind.gust,
            },
            conditions: w
                .conditions
                .iter()
                .map(|c| ConditionResponse {
                    id: c.id,
                    main: c.main.clone(),
                    description: c.description.clone(),
                    icon: c.icon.clone(),
                })
                .collect(),
            observed_at: w.observed_at,
        }
    }
}

impl From<WeatherError> for ApiError {
    fn from(error: WeatherError) -> Self {
        match error {
            WeatherError::NoKeysConfigured => {
                ApiError::ServerConfiguration("no OpenWeather API key is configured")
            }
            e @ WeatherError::AllKeysUnavailable { .. } => ApiError::Unavailable {
                detail: "every upstream weather key is cooling down",
                retry_after: e.retry_after_secs().or(Some(60)),
            },
            WeatherError::InvalidCity(reason) => ApiError::validation("city", reason),
            // The crate's reason names the coordinate: the field names the same one.
            WeatherError::InvalidCoordinates(reason) => ApiError::validation(
                if reason.starts_with("longitude") {
                    "lon"
                } else {
                    "lat"
                },
                reason,
            ),
            WeatherError::PlaceNotFound => {
                ApiError::NotFound("the weather service knows no such place")
            }
            WeatherError::Timeout { .. } => {
                ApiError::GatewayTimeout("the weather service did not answer in time")
            }
            WeatherError::InvalidConfig(what) => ApiError::ServerConfiguration(what),
            _ => ApiError::BadGateway("the weather service answered with an error"),
        }
    }
}

/// Current weather for a city or coordinates.
#[utoipa::path(
    get, path = "/weather", tag = "api",
    params(WeatherQuery),
    responses(
        (status = 200, description = "Current weather", body = WeatherResponse),
        (status = 400, description = "Invalid place or units", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, unknown, revoked or expired API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such place", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "A limit of the key is reached: its rate limit, its daily or monthly quota, or its credits (each its own problem type)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "No upstream key configured", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The upstream failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Every upstream key is cooling down", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The upstream timed out", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["weather:read"]), ("api_key_header" = ["weather:read"]), ("signed" = ["weather:read"]), ("signed_rfc9421" = ["weather:read"]))
)]
pub async fn weather(
    req: HttpRequest,
    client: Option<web::Data<WeatherClient>>,
    quota: web::Data<KeyQuota>,
    shared: web::Data<SharedWeather>,
    query: Query<WeatherQuery>,
) -> Result<HttpResponse, ApiError> {
    let WeatherQuery {
        city,
        lat,
        lon,
        units,
    } = query.into_inner();
    let location = match (city, lat, lon) {
        (Some(city), None, None) => Location::city(&city)?,
        (None, Some(lat), Some(lon)) => Location::coords(lat, lon)?,
        _ => {
            return Err(ApiError::validation(
                "city",
                "give either city, or both lat and lon",
            ));
        }
    };
    let units = match units.as_deref() {
        None => Units::Metric,
        Some(text) => Units::parse(text)
            .ok_or_else(|| ApiError::validation("units", "must be metric, imperial or standard"))?,
    };
    // Without a configured key the endpoint is a server configuration error, not the caller's.
    let client = client.ok_or(ApiError::from(WeatherError::NoKeysConfigured))?;
    // A key that cannot pay is refused before any upstream call. Otherwise the call is charged
    // once it has its answer, the weather or "no such place": a 5xx (every upstream key cooling
    // down, the upstream failing or hanging) costs nothing. When the quota cannot be read (a
    // Redis outage), the charge comes first and follows the quota's fail policy.
    let paid = match quota.remaining(&req).await {
        Some(remaining) if remaining >= 1 => None,
        _ => Some(quota.charge(&req, 1).await?),
    };
    let answer = async {
        // Shared by every instance on Redis: one upstream call per place and TTL for the
        // whole deployment. A Redis failure only costs an upstream call.
        if let Some(cached) = shared.get::<WeatherResponse>(&location, units).await {
            return Ok(cached);
        }
        let weather = client.current(&location, units).await?;
        let response = WeatherResponse::from(weather.as_ref());
        shared.put(&location, units, &response).await;
        Ok(response)
    }
    .await;
    match (answer, paid) {
        (Ok(response), Some(charged)) => Ok(charged.respond(response)),
        (Ok(response), None) => Ok(quota.charge(&req, 1).await?.respond(response)),
        (Err(error @ WeatherError::PlaceNotFound), None) => {
            // Counted; a 404 carries no quota fields.
            let _charged = quota.charge(&req, 1).await?;
            Err(error.into())
        }
        (Err(error), _) => Err(error.into()),
    }
}
