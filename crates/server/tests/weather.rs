//! `/weather` against a fake OpenWeather on loopback.

mod common;

use std::future::Future;
use std::pin::Pin;

use actix_web::{HttpRequest, HttpResponse};
use common::upstream::{self, LONDON, json};
use common::{Spawn, spawn, spawn_with};
use secure_api::cli::SettingsArgs;

/// A stand-in OpenWeather: `revoked` keys get 401, `busy` 429, Atlantis 404, the rest London.
fn openweather(req: HttpRequest) -> Pin<Box<dyn Future<Output = HttpResponse>>> {
    let query = req.query_string().to_owned();
    Box::pin(async move {
        if query.contains("appid=revoked") {
            HttpResponse::Unauthorized().body(r#"{"cod":401}"#)
        } else if query.contains("appid=busy") {
            HttpResponse::TooManyRequests()
                .insert_header(("retry-after", "120"))
                .body(r#"{"cod":429}"#)
        } else if query.contains("q=Atlantis") {
            HttpResponse::NotFound().body(r#"{"cod":"404"}"#)
        } else {
            json(LONDON)
        }
    })
}

#[actix_web::test]
async fn weather_comes_through_a_healthy_key_and_is_cached() {
    let (base, calls) = upstream::start(openweather).await;
    let app = upstream::app(
        &base,
        &[
            ("OPENWEATHER_API_KEY", "revoked"),
            ("OPENWEATHER_API_KEY1", "good-1"),
        ],
    )
    .await;
    let key = app.first.demo_key.key.clone();
    let h = [("authorization", key.as_str())];
    for _ in 0..3 {
        let reply = app.get("/weather?city=London&units=metric", &h).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["place"], "London");
        assert_eq!(reply.body["units"], "metric");
        assert!(reply.body["temperature"].is_number());
        assert!(!reply.text.contains("revoked") && !reply.text.contains("good-1"));
    }
    assert!(calls.count() <= 2, "the cache answered the repeats");

    let missing = app.get("/weather?city=Atlantis", &h).await;
    assert_eq!(missing.status, 404);
    for bad in [
        "/weather",
        "/weather?city=",
        "/weather?city=London&lat=1&lon=2",
        "/weather?lat=91&lon=0",
        "/weather?city=London&units=kelvin",
        "/weather?city=London&appid=mine",
        "/weather?city=%3Cscript%3E",
        "/weather?city=London%26appid%3Dmine",
    ] {
        let reply = app.get(bad, &h).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
    }
    // The field named is the coordinate that is wrong.
    for (bad, field) in [("lat=91&lon=0", "lat"), ("lat=0&lon=200", "lon")] {
        let reply = app.get(&format!("/weather?{bad}"), &h).await;
        assert_eq!(reply.body["field"], field, "{bad}: {}", reply.body);
        let detail = reply.body["detail"].as_str().unwrap();
        assert!(detail.starts_with(&format!("{field}: ")), "{detail}");
    }
    // The three answers and the 404 were charged; the 400s were not.
    assert_eq!(used(&app).await, 4);
}

#[actix_web::test]
async fn all_keys_cooling_gives_503_with_retry_after() {
    let (base, _) = upstream::start(openweather).await;
    let app = upstream::app(&base, &[("OPENWEATHER_API_KEY", "busy")]).await;
    let key = app.first.demo_key.key.clone();
    let reply = app
        .get("/weather?city=Paris", &[("authorization", &key)])
        .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=120).contains(&retry), "{retry}");
    assert_eq!(used(&app).await, 0, "a 503 costs nothing");
}

/// The calls the demo key was charged today.
async fn used(app: &common::TestApp) -> u64 {
    let admin = format!("Bearer {}", app.first.admin_token);
    let usage = app
        .get(
            &format!("/admin/keys/{}/usage", app.first.demo_key.id),
            &[("authorization", &admin)],
        )
        .await;
    usage.body["used"].as_u64().unwrap()
}

#[actix_web::test]
async fn no_configured_key_is_a_server_configuration_error() {
    let app = spawn().await;
    let key = app.first.demo_key.key.clone();
    let reply = app
        .get("/weather?city=London", &[("authorization", &key)])
        .await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.body["title"], "Server configuration error");
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Server configuration error")
    );
    // Authentication still comes first.
    assert_eq!(app.get("/weather?city=London", &[]).await.status, 401);
}

#[actix_web::test]
async fn upstream_calls_are_counted_by_key_fingerprint_and_outcome() {
    let (base, _) = upstream::start(openweather).await;
    // Keys only this test uses, so the counts are its own.
    let (refused, good) = ("revoked-metrics", "good-metrics");
    let app = upstream::app(
        &base,
        &[
            ("OPENWEATHER_API_KEY", "revoked"),
            ("OPENWEATHER_API_KEY1", good),
            ("OPENWEATHER_API_KEY2", refused),
        ],
    )
    .await;
    let key = app.first.demo_key.key.clone();
    for city in ["Oslo", "Lima", "Quito", "Hanoi"] {
        let reply = app
            .get(&format!("/weather?city={city}"), &[("authorization", &key)])
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let page = app.metrics_page().await;
    let fingerprint = |k: &str| {
        weather_keypool::UpstreamKey::new(k)
            .unwrap()
            .fingerprint()
            .to_string()
    };
    let accepted = common::sample(
        &page,
        "secure_api_weather_upstream_calls_total",
        &format!("key=\"{}\",outcome=\"accepted\"", fingerprint(good)),
    );
    assert_eq!(accepted, Some(4.0), "{page}");
    assert!(
        !page.contains(good) && !page.contains(refused),
        "keys never appear"
    );
}

#[actix_web::test]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn instances_share_the_weather_cache_on_redis() {
    let Some(redis) = test_services::redis_url("instances_share_the_weather_cache_on_redis") else {
        return;
    };
    let (base, calls) = upstream::start(openweather).await;
    let mut prefix = [0u8; 6];
    rand::fill(&mut prefix);
    let spawn_one = || {
        let mut options = Spawn {
            args: SettingsArgs {
                openweather_base_url: Some(base.clone()),
                redis_url: Some(redis.clone()),
                redis_prefix: Some(format!("weather-test-{}", hex::encode(prefix))),
                ..SettingsArgs::default()
            },
            ..Spawn::default()
        };
        options
            .env
            .insert("OPENWEATHER_API_KEY".to_owned(), "good-shared".to_owned());
        spawn_with(options)
    };
    let a = spawn_one().await;
    let b = spawn_one().await;
    let from_a = a
        .get(
            "/weather?city=Reykjavik",
            &[("authorization", &a.first.demo_key.key)],
        )
        .await;
    assert_eq!(from_a.status, 200, "{}", from_a.body);
    assert_eq!(calls.count(), 1);
    // Another instance, another case: the same place, from the shared cache.
    let from_b = b
        .get(
            "/weather?city=reykjavik",
            &[("authorization", &b.first.demo_key.key)],
        )
        .await;
    assert_eq!(from_b.status, 200, "{}", from_b.body);
    assert_eq!(calls.count(), 1, "B answered from Redis");
    assert_eq!(from_a.body, from_b.body);
    // Other units are another entry.
    let imperial = b
        .get(
            "/weather?city=Reykjavik&units=imperial",
            &[("authorization", &b.first.demo_key.key)],
        )
        .await;
    assert_eq!(imperial.status, 200);
    assert_eq!(calls.count(), 2);
    let page = b.metrics_page().await;
    assert!(
        common::sample(&page, "secure_api_weather_cache_total", "result=\"hit\"")
            .is_some_and(|n| n >= 1.0),
        "{page}"
    );
}
