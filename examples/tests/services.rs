//! Both example services end to end over real HTTP on port 0: API keys, the daily quota, the
//! login limit and signed requests, in memory and, when `TEST_REDIS_URL` is set, on Redis.

use std::net::SocketAddr;
use std::num::NonZeroU64;

use request_signing::{Secret, Signer, sign_reqwest_request};
use secure_api_examples::{
    Demo, actix_service, axum_service, memory_limits, memory_replay, redis_stores,
};
use serde_json::Value;

/// What a test needs of a running service: where it is and its demo keys.
struct Running {
    base: String,
    api_key: String,
    signer: Signer,
}

fn demo() -> (Demo, String, Signer) {
    let demo = Demo::new(NonZeroU64::new(3).unwrap());
    let api_key = demo.api_key.clone();
    let signer = Signer::new(
        demo.signing_key_id.clone(),
        Secret::from(demo.signing_secret.as_str()),
    )
    .unwrap();
    (demo, api_key, signer)
}

fn prefix(service: &str) -> String {
    let mut id = [0u8; 6];
    getrandom::fill(&mut id).unwrap();
    format!("example-test:{service}:{}", hex(&id))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn start_axum(redis: Option<&str>) -> Running {
    let (demo, api_key, signer) = demo();
    let app = match redis {
        Some(url) => {
            let (daily, signed, login, replay) = redis_stores(url, &prefix("axum")).await.unwrap();
            axum_service::router(demo, daily, signed, login, replay).unwrap()
        }
        None => {
            let (daily, signed, login) = memory_limits();
            axum_service::router(demo, daily, signed, login, memory_replay()).unwrap()
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    Running {
        base,
        api_key,
        signer,
    }
}

async fn start_actix(redis: Option<&str>) -> Running {
    let (demo, api_key, signer) = demo();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = match redis {
        Some(url) => {
            let (daily, signed, login, replay) = redis_stores(url, &prefix("actix")).await.unwrap();
            actix_service::server(listener, demo, daily, signed, login, replay).unwrap()
        }
        None => {
            let (daily, signed, login) = memory_limits();
            actix_service::server(listener, demo, daily, signed, login, memory_replay()).unwrap()
        }
    };
    actix_web::rt::spawn(server);
    Running {
        base,
        api_key,
        signer,
    }
}

async fn problem(response: reqwest::Response) -> Value {
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

/// The same walk through either service.
async fn exercise(service: Running) {
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", service.base);

    // An API key with a daily quota of 3.
    for left in (0..3).rev() {
        let ok = client
            .get(url("/hello"))
            .header("authorization", &service.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.headers()["ratelimit-policy"], "\"daily\";q=3;w=86400");
        let remaining = format!("\"daily\";r={left};");
        let field = ok.headers()["ratelimit"].to_str().unwrap().to_owned();
        assert!(field.starts_with(&remaining), "{field}");
        assert!(ok.text().await.unwrap().starts_with("hello, demo_"));
    }
    let spent = client
        .get(url("/hello"))
        .header("x-api-key", &service.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(spent.status(), 429);
    assert!(spent.headers().contains_key("retry-after"));
    assert_eq!(problem(spent).await["status"], 429);
    let anonymous = client.get(url("/hello")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(
        problem(anonymous).await["detail"]
            .as_str()
            .unwrap()
            .starts_with("missing API key")
    );

    // Five logins a minute from this address.
    for _ in 0..5 {
        let login = client.post(url("/login")).send().await.unwrap();
        assert_eq!(login.status(), 200);
    }
    let limited = client.post(url("/login")).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "12");

    // A signed order, once.
    let mut order = client
        .post(url("/orders?dry_run=1"))
        .body(r#"{"item":"book"}"#)
        .build()
        .unwrap();
    sign_reqwest_request(&service.signer, &mut order).unwrap();
    let replay = order.try_clone().unwrap();
    let placed = client.execute(order).await.unwrap();
    assert_eq!(placed.status(), 200);
    assert_eq!(
        placed.text().await.unwrap(),
        r#"order from svc-orders: {"item":"book"}"#
    );
    let again = client.execute(replay).await.unwrap();
    assert_eq!(again.status(), 401);
    assert_eq!(problem(again).await["detail"], "request replayed");
    let unsigned = client.post(url("/orders")).body("{}").send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
}

#[tokio::test]
async fn the_axum_service_in_memory() {
    exercise(start_axum(None).await).await;
}

#[tokio::test]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn the_axum_service_on_redis() {
    let Some(url) = test_services::redis_url("the_axum_service_on_redis") else {
        return;
    };
    exercise(start_axum(Some(&url)).await).await;
}

#[actix_web::test]
async fn the_actix_service_in_memory() {
    exercise(start_actix(None).await).await;
}

#[actix_web::test]
#[ignore = "needs Redis: set TEST_REDIS_URL"]
async fn the_actix_service_on_redis() {
    let Some(url) = test_services::redis_url("the_actix_service_on_redis") else {
        return;
    };
    exercise(start_actix(Some(&url)).await).await;
}
