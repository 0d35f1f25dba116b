//! Faults and load the server must survive: a weather upstream that is slow, hangs, fails,
//! answers garbage or too much, or refuses connections; and a thousand concurrent calls on one
//! key's quota.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse};
use common::upstream::{self, LONDON, json};
use common::{Spawn, spawn_with};
use serde_json::json;

/// A misbehaving OpenWeather; the `appid` chooses how.
fn faulty(req: HttpRequest) -> Pin<Box<dyn Future<Output = HttpResponse>>> {
    let query = req.query_string().to_owned();
    Box::pin(async move {
        if query.contains("appid=slow") {
            actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
            json(LONDON)
        } else if query.contains("appid=hang") {
            actix_web::rt::time::sleep(Duration::from_secs(120)).await;
            json(LONDON)
        } else if query.contains("appid=fail") {
            HttpResponse::ServiceUnavailable().body("upstream maintenance")
        } else if query.contains("appid=garbage") {
            json("{\"coord\": [1, 2], \"main\": \"hot\"")
        } else if query.contains("appid=huge") {
            json(format!(
                "{{\"padding\": \"{}\"}}",
                "x".repeat(4 * 1024 * 1024)
            ))
        } else if query.contains("appid=liar") {
            // Well-formed JSON with values no real weather has.
            json(LONDON.replace("\"temp\":", "\"temp\":1e308,\"x\":"))
        } else {
            json(LONDON)
        }
    })
}

async fn app_with_upstream(base: &str, key: &str) -> common::TestApp {
    upstream::app(base, &[("OPENWEATHER_API_KEY", key)]).await
}

#[actix_web::test]
async fn each_upstream_fault_gets_its_documented_status() {
    let (base, _) = upstream::start(faulty).await;
    // A port where nothing listens: connection refused. The socket stays bound, never
    // listening, for the whole test, so that no server started meanwhile can take its port.
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed = format!("http://{}", reserved.local_addr().unwrap());
    for (upstream, key, status) in [
        (&base, "slow", 200),
        (&base, "fail", 502),
        (&base, "garbage", 502),
        (&base, "huge", 502),
        (&base, "liar", 502),
        (&closed, "any", 502),
    ] {
        let app = app_with_upstream(upstream, key).await;
        let demo = app.first.demo_key.key.clone();
        let reply = app
            .get("/weather?city=London", &[("authorization", &demo)])
            .await;
        assert_eq!(reply.status, status, "{key}: {}", reply.body);
        if status != 200 {
            assert_eq!(reply.body["status"], status, "{key}: a problem body");
            let text = reply.text.to_lowercase();
            for leak in [key, "maintenance", "padding", "coord", "127.0.0.1"] {
                assert!(
                    !text.contains(leak),
                    "{key}: the answer repeats {leak:?}: {text}"
                );
            }
        }
    }
}

#[actix_web::test]
async fn a_hanging_upstream_times_out_and_never_holds_up_other_requests() {
    let (base, calls) = upstream::start(faulty).await;
    let app = app_with_upstream(&base, "hang").await;
    let demo = app.first.demo_key.key.clone();
    // More hanging calls than the server has workers (2).
    let started = Instant::now();
    let weather = futures_util::future::join_all((0..8).map(|i| {
        let app = &app;
        let demo = demo.clone();
        async move {
            app.get(
                &format!("/weather?city=Place{i}"),
                &[("authorization", &demo)],
            )
            .await
        }
    }));
    let time = async {
        // Give the weather calls time to reach the upstream and hang there.
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
        let mut statuses = Vec::new();
        for _ in 0..5 {
            let reply = app
                .post("/get-current-time", &[("authorization", &demo)], "")
                .await;
            statuses.push((reply.status, started.elapsed()));
        }
        statuses
    };
    let (weather, time) = tokio::join!(weather, time);
    let weather_done = started.elapsed();
    for (status, at) in &time {
        assert_eq!(*status, 200);
        assert!(
            *at < weather_done,
            "/get-current-time answered while the weather calls hung"
        );
    }
    assert!(calls.count() >= 8, "every call reached the upstream");
    for reply in weather {
        assert_eq!(reply.status, 504, "{}", reply.body);
        assert_eq!(
            reply.body["detail"],
            "the weather service did not answer in time"
        );
    }
}

#[actix_web::test]
async fn a_thousand_concurrent_prime_checks_on_a_quota_of_300_give_exactly_300() {
    let app = spawn_with(Spawn::default()).await;
    let created = app
        .create_key(json!({"service": "load", "daily_quota": 300}))
        .await;
    let key = created["key"].as_str().unwrap().to_owned();
    // One connection per call: the calls really are concurrent at the server.
    let client = awc::Client::builder()
        .connector(awc::Connector::new().limit(1000))
        .timeout(Duration::from_secs(120))
        .finish();
    let url = app.url("/check-prime");
    let calls = (0..1000).map(|_| {
        let (client, url, key) = (&client, &url, &key);
        async move {
            let mut res = client
                .post(url.as_str())
                .insert_header(("authorization", key.as_str()))
                .insert_header(("content-type", "application/json"))
                .send_body(r#"{"number": 18446744073709551557}"#)
                .await
                .expect("answered");
            let body = res.body().await.expect("a body");
            (res.status().as_u16(), body)
        }
    });
    let replies = futures_util::future::join_all(calls).await;
    let ok: Vec<_> = replies.iter().filter(|(s, _)| *s == 200).collect();
    let limited = replies.iter().filter(|(s, _)| *s == 429).count();
    assert_eq!((ok.len(), limited), (300, 700));
    for (_, body) in ok {
        let body: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(body["isPrime"], true, "the largest prime below 2^64");
    }
    let auth = format!("Bearer {}", app.first.admin_token);
    let usage = app
        .get(
            &format!("/admin/keys/{}/usage", created["id"].as_str().unwrap()),
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(usage.body["used"], 300, "{}", usage.body);
    assert_eq!(usage.body["remaining"], 0);
}
