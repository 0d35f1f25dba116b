//! Fetches the current weather for a city through a pool of OpenWeather keys.
//!
//! Keys come from the environment (`OPENWEATHER_API_KEY`, `OPENWEATHER_API_KEY1`, ...,
//! `OPENWEATHER_API_KEYS`), the base URL from the command line:
//!
//! ```text
//! OPENWEATHER_API_KEY=... cargo run -p secure-api-examples --bin weather -- https://api.openweathermap.org London [metric|imperial|standard]
//! ```
//!
//! Any server speaking OpenWeather's `/data/2.5/weather` works as base URL, e.g. a local fake
//! at `http://127.0.0.1:8081`.

use std::process::ExitCode;
use std::sync::Arc;

use weather_keypool::{KeyPool, Location, Units, WeatherClient};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (base_url, city, units) = match args.as_slice() {
        [base, city] => (base, city, Some(Units::Metric)),
        [base, city, units] => (base, city, Units::parse(units)),
        _ => {
            eprintln!("usage: weather BASE_URL CITY [metric|imperial|standard]");
            return ExitCode::from(2);
        }
    };
    let Some(units) = units else {
        eprintln!("units must be metric, imperial or standard");
        return ExitCode::from(2);
    };
    match actix_rt::System::new().block_on(run(base_url, city, units)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(base_url: &str, city: &str, units: Units) -> weather_keypool::Result<()> {
    let pool = Arc::new(KeyPool::from_env()?);
    let client = WeatherClient::builder(Arc::clone(&pool))
        .base_url(base_url)?
        .build();
    let location = Location::city(city)?;
    let weather = client.current(&location, units).await?;
    let country = weather.country.as_deref().unwrap_or("?");
    println!(
        "{} ({country}) at {:.4}, {:.4}",
        weather.place,
        weather.coordinates.lat(),
        weather.coordinates.lon()
    );
    println!(
        "temperature {} (feels like {}), humidity {}%, pressure {} hPa, wind {} ({:?} deg)",
        weather.temperature,
        weather.feels_like,
        weather.humidity_percent,
        weather.pressure_hpa,
        weather.wind.speed,
        weather.wind.direction_deg
    );
    for condition in &weather.conditions {
        println!("{}: {}", condition.main, condition.description);
    }
    println!(
        "observed at {} (Unix time), units {:?}",
        weather.observed_at, units
    );
    for stats in pool.stats() {
        println!(
            "key {}: {} picks, {:?}",
            stats.fingerprint, stats.picks, stats.health
        );
    }
    Ok(())
}
