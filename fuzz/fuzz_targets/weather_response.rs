//! `weather-keypool`: `parse_current`, the parser of OpenWeather's (untrusted) answer.
//!
//! Input: the upstream response body, as is; it is parsed in each of the three units.
//!
//! Properties:
//! - never panics; a refusal is `MalformedResponse`, and its message never quotes the body;
//! - a success has finite numbers, coordinates within -90..=90 and -180..=180 (rounded to 4
//!   decimals), humidity within 0..=100, at most 8 conditions, the units asked for, and
//!   serializes to JSON (what the server sends on) that reads back as the same figures.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weather_keypool::{Error, Units, parse_current};

fn finite(name: &str, value: f64) {
    assert!(value.is_finite(), "{name} = {value}");
}

fn rounded_to_4(value: f64) -> bool {
    ((value * 10_000.0).round() / 10_000.0 - value).abs() < 1e-9
}

fuzz_target!(|body: &[u8]| {
    for units in [Units::Standard, Units::Metric, Units::Imperial] {
        let weather = match parse_current(body, units) {
            Ok(weather) => weather,
            Err(Error::MalformedResponse { reason }) => {
                // The reason is fixed text and positions, never a piece of the body.
                assert!(
                    reason.len() < 80 && reason.is_ascii(),
                    "a reason quoting the body? {reason:?}"
                );
                continue;
            }
            Err(other) => panic!("not a malformed-response error: {other:?}"),
        };
        assert_eq!(weather.units, units);
        let c = weather.coordinates;
        finite("lat", c.lat());
        finite("lon", c.lon());
        assert!((-90.0..=90.0).contains(&c.lat()), "lat {}", c.lat());
        assert!((-180.0..=180.0).contains(&c.lon()), "lon {}", c.lon());
        assert!(rounded_to_4(c.lat()) && rounded_to_4(c.lon()));
        assert!(weather.humidity_percent <= 100);
        finite("temperature", weather.temperature);
        finite("feels_like", weather.feels_like);
        finite("pressure", weather.pressure_hpa);
        finite("wind speed", weather.wind.speed);
        if let Some(direction) = weather.wind.direction_deg {
            finite("wind direction", direction);
        }
        if let Some(gust) = weather.wind.gust {
            finite("gust", gust);
        }
        assert!(weather.conditions.len() <= 8);
        assert!(weather.country.as_deref() != Some(""));

        let json = serde_json::to_value(&weather).expect("serializes");
        assert_eq!(
            json["humidity_percent"],
            u64::from(weather.humidity_percent)
        );
        assert_eq!(json["temperature"].as_f64(), Some(weather.temperature));
        assert_eq!(json["coordinates"]["lat"].as_f64(), Some(c.lat()));
        assert_eq!(json["observed_at"].as_i64(), Some(weather.observed_at));
    }
});
