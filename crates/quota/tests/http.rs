//! The actix-web middleware and the tower layer: keys, costs, per-request limits, headers,
//! refusals, store failures; and exactness under concurrency over real HTTP.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpMessage as _, HttpResponse, test as atest, web};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use common::{Fault, Flaky, n};
use quota::{
    FailMode, FakeClock, FallbackBackend, ForwardedIp, FromExtension, FromHeader, MemoryBackend,
    PeerIp, Policy, RateLimit, RefusalReason, Rejection,
};
use serde_json::Value;
use tower::ServiceExt as _;

/// What an authentication layer in front puts into the request.
#[derive(Clone, Debug)]
struct Identity {
    key_id: String,
    daily_quota: u64,
}

fn clock() -> FakeClock {
    FakeClock::at_unix_secs(1_767_225_600) // 2026-01-01T00:00:00Z
}

fn login_policy() -> Policy {
    Policy::gcra(n(5), Duration::from_secs(60)).expect("valid")
}

fn memory(policy: Policy, clock: &FakeClock) -> MemoryBackend<FakeClock> {
    MemoryBackend::builder(policy)
        .clock(clock.clone())
        .build()
        .expect("valid")
}

fn peer(text: &str) -> SocketAddr {
    text.parse().expect("a socket address")
}

fn header<'a, B>(res: &'a ServiceResponse<B>, name: &str) -> Option<&'a str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn ok() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

#[actix_rt::test]
async fn actix_counts_each_peer_and_says_when_to_retry() {
    let clock = clock();
    let login = RateLimit::builder(memory(login_policy(), &clock), PeerIp::new())
        .name("login")
        .build()
        .expect("valid");
    let app = atest::init_service(App::new().wrap(login).route("/login", web::post().to(ok))).await;
    let call = |from: &str| {
        atest::TestRequest::post()
            .uri("/login")
            .peer_addr(peer(from))
            .to_request()
    };
    for left in (0..5).rev() {
        let res = atest::call_service(&app, call("203.0.113.7:4000")).await;
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "ratelimit-policy"), Some("\"login\";q=5;w=60"));
        let expected = format!("\"login\";r={left};t={}", (5 - left) * 12);
        assert_eq!(header(&res, "ratelimit"), Some(expected.as_str()));
        assert_eq!(header(&res, "retry-after"), None);
    }
    let refused = atest::call_service(&app, call("203.0.113.7:4001")).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "retry-after"), Some("12"));
    assert_eq!(
        header(&refused, "content-type"),
        Some("application/problem+json")
    );
    let body: Value = serde_json::from_slice(&atest::read_body(refused).await).expect("json");
    assert_eq!(body["status"], 429);
    assert_eq!(body["title"], "Too Many Requests");
    assert_eq!(
        body["detail"],
        "the login limit of 5 is reached; retry in 12 s"
    );

    // Another address is untouched; two addresses of one IPv6 /64 share a bucket.
    assert_eq!(
        atest::call_service(&app, call("198.51.100.1:1"))
            .await
            .status(),
        200
    );
    for i in 0..5 {
        let from = format!("[2001:db8:1:2::{i}]:80");
        assert_eq!(atest::call_service(&app, call(&from)).await.status(), 200);
    }
    let same_64 = atest::call_service(&app, call("[2001:db8:1:2:ffff::9]:80")).await;
    assert_eq!(same_64.status(), 429);
    clock.advance(Duration::from_secs(12));
    assert_eq!(
        atest::call_service(&app, call("203.0.113.7:4002"))
            .await
            .status(),
        200
    );
}

/// Puts an [`Identity`] into the request when it names a key (`x-key`); key `small` has a daily
/// quota of 4, any other 100.
async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let key = req
        .headers()
        .get("x-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(key_id) = key {
        let daily_quota = if key_id == "small" { 4 } else { 100 };
        req.extensions_mut().insert(Identity {
            key_id,
            daily_quota,
        });
    }
    next.call(req).await
}

#[actix_rt::test]
async fn actix_reads_the_key_its_limit_and_the_cost_from_the_request() {
    let clock = clock();
    let daily = RateLimit::builder(
        memory(Policy::per_day(n(1_000)), &clock),
        FromExtension::new(|id: &Identity| id.key_id.clone()),
    )
    .name("daily")
    .limit(|req: &ServiceRequest| {
        req.extensions()
            .get::<Identity>()
            .and_then(|id| std::num::NonZeroU64::new(id.daily_quota))
    })
    .cost(|req: &ServiceRequest| if req.path() == "/expensive" { 3 } else { 1 })
    .x_ratelimit_headers(true)
    .build()
    .expect("valid");
    let app = atest::init_service(
        App::new()
            .wrap(daily)
            .wrap(from_fn(authenticate))
            .route("/cheap", web::get().to(ok))
            .route("/expensive", web::get().to(ok)),
    )
    .await;
    let call = |key: Option<&str>, path: &str| {
        let req = atest::TestRequest::get().uri(path);
        match key {
            Some(key) => req.insert_header(("x-key", key)).to_request(),
            None => req.to_request(),
        }
    };
    let first = atest::call_service(&app, call(Some("small"), "/expensive")).await;
    assert_eq!(first.status(), 200);
    // The key's own quota of 4, a day long; the X- fields on request.
    assert_eq!(
        header(&first, "ratelimit-policy"),
        Some("\"daily\";q=4;w=86400")
    );
    assert_eq!(header(&first, "ratelimit"), Some("\"daily\";r=1;t=86400"));
    assert_eq!(header(&first, "x-ratelimit-limit"), Some("4"));
    assert_eq!(header(&first, "x-ratelimit-remaining"), Some("1"));
    assert_eq!(header(&first, "x-ratelimit-reset"), Some("1767312000"));
    let too_costly = atest::call_service(&app, call(Some("small"), "/expensive")).await;
    assert_eq!(too_costly.status(), 429);
    assert_eq!(header(&too_costly, "retry-after"), Some("86400"));
    assert_eq!(
        atest::call_service(&app, call(Some("small"), "/cheap"))
            .await
            .status(),
        200
    );
    assert_eq!(
        atest::call_service(&app, call(Some("small"), "/cheap"))
            .await
            .status(),
        429
    );
    // Another key has its own count and its own limit.
    let big = atest::call_service(&app, call(Some("big"), "/cheap")).await;
    assert_eq!(header(&big, "ratelimit"), Some("\"daily\";r=99;t=86400"));
    // Without the identity the layer in front is missing: a server error, said plainly.
    let anonymous = atest::call_service(&app, call(None, "/cheap")).await;
    assert_eq!(anonymous.status(), 500);
    let body: Value = serde_json::from_slice(&atest::read_body(anonymous).await).expect("json");
    assert_eq!(
        body["detail"],
        "no Identity in the request: the layer that adds it must run first"
    );
}

type EitherMemory = quota::Either<MemoryBackend<FakeClock>, MemoryBackend<FakeClock>>;
type HandlerLimit = RateLimit<EitherMemory, FromHeader, actix_web::HttpRequest>;

/// A handler that charges what the body says, once it has read it.
async fn charge_body(
    req: actix_web::HttpRequest,
    limit: web::Data<HandlerLimit>,
    body: String,
) -> HttpResponse {
    let cost = body.trim().parse().unwrap_or(1);
    match limit.decide(limit.prepare(&req).with_cost(cost)).await {
        quota::Verdict::Allowed(fields) => {
            let mut answer = HttpResponse::Ok().body("ok");
            quota::append_allowed_fields(&mut answer, fields);
            answer
        }
        quota::Verdict::Refused(rejection) => quota::actix_response(rejection),
    }
}

#[actix_rt::test]
async fn a_handler_charges_a_cost_it_learns_from_the_body_on_either_backend() {
    let clock = clock();
    let daily = Policy::per_day(n(10));
    for backend in [
        quota::Either::Left(memory(daily, &clock)),
        quota::Either::Right(memory(daily, &clock)),
    ] {
        let limit: HandlerLimit = RateLimit::builder(backend, FromHeader::new("x-tenant"))
            .name("daily")
            .on_refusal(|refusal| {
                // The hook is told what the client would read.
                let body = String::from_utf8_lossy(&refusal.default.body).into_owned();
                assert!(body.contains(refusal.detail), "{}", refusal.detail);
                refusal.default
            })
            .build()
            .expect("valid");
        let app = atest::init_service(
            App::new()
                .app_data(web::Data::new(limit))
                .route("/", web::post().to(charge_body)),
        )
        .await;
        let post = |cost: &str| {
            atest::TestRequest::post()
                .uri("/")
                .insert_header(("x-tenant", "acme"))
                .set_payload(cost.to_owned())
                .to_request()
        };
        let res = atest::call_service(&app, post("7")).await;
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "ratelimit"), Some(r#""daily";r=3;t=86400"#));
        // More than the limit can ever grant: refused, and nothing is counted.
        let res = atest::call_service(&app, post("11")).await;
        assert_eq!(res.status(), 429);
        let res = atest::call_service(&app, post("3")).await;
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "ratelimit"), Some(r#""daily";r=0;t=86400"#));
        let res = atest::call_service(&app, post("1")).await;
        assert_eq!(res.status(), 429);
    }
}

#[actix_rt::test]
async fn actix_never_answers_500_for_a_store_failure_and_renders_custom_bodies() {
    let clock = clock();
    let daily = Policy::per_day(n(2));
    let failing = RateLimit::builder(Flaky::new(daily, &clock), FromHeader::new("X-Tenant"))
        .name("tenant")
        .build()
        .expect("valid");
    failing.backend().set(Fault::Store);
    let open = FallbackBackend::builder(Flaky::new(daily, &clock))
        .fail_mode(FailMode::Open)
        .build()
        .expect("ok");
    open.primary().set(Fault::Unavailable);
    let open = RateLimit::builder(open, FromHeader::new("x-tenant"))
        .name("tenant")
        .build()
        .expect("valid");
    let custom = RateLimit::builder(memory(daily, &clock), FromHeader::new("x-tenant"))
        .on_refusal(|refusal| {
            let mut answer = refusal.default;
            if refusal.reason == RefusalReason::Limited {
                answer.content_type = "application/json".into();
                answer.body = br#"{"error":"Request limit exceeded."}"#.to_vec();
            }
            answer
        })
        .build()
        .expect("valid");
    let app = atest::init_service(
        App::new()
            .service(
                web::resource("/failing")
                    .wrap(failing)
                    .route(web::get().to(ok)),
            )
            .service(web::resource("/open").wrap(open).route(web::get().to(ok)))
            .service(
                web::resource("/custom")
                    .wrap(custom)
                    .route(web::get().to(ok)),
            ),
    )
    .await;
    let call = |path: &str, tenant: Option<&str>| {
        let req = atest::TestRequest::get().uri(path);
        match tenant {
            Some(t) => req.insert_header(("x-tenant", t)).to_request(),
            None => req.to_request(),
        }
    };
    let unavailable = atest::call_service(&app, call("/failing", Some("t1"))).await;
    assert_eq!(unavailable.status(), 503);
    assert_eq!(header(&unavailable, "retry-after"), Some("1"));

    let degraded = atest::call_service(&app, call("/open", Some("t1"))).await;
    assert_eq!(degraded.status(), 200);
    // Failed open: the policy is known, the current numbers are not.
    assert_eq!(
        header(&degraded, "ratelimit-policy"),
        Some("\"tenant\";q=2;w=86400")
    );
    assert_eq!(header(&degraded, "ratelimit"), None);

    let unkeyed = atest::call_service(&app, call("/custom", None)).await;
    assert_eq!(unkeyed.status(), 400);
    let body: Value = serde_json::from_slice(&atest::read_body(unkeyed).await).expect("json");
    assert_eq!(body["detail"], "missing header x-tenant");
    let bad = atest::call_service(&app, call("/custom", Some("has space"))).await;
    assert_eq!(bad.status(), 400);

    for _ in 0..2 {
        assert_eq!(
            atest::call_service(&app, call("/custom", Some("t1")))
                .await
                .status(),
            200
        );
    }
    let limited = atest::call_service(&app, call("/custom", Some("t1"))).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(header(&limited, "content-type"), Some("application/json"));
    assert!(header(&limited, "retry-after").is_some());
    assert_eq!(
        atest::read_body(limited).await,
        br#"{"error":"Request limit exceeded."}"#.as_slice()
    );
}

fn axum_request(path: &str, from: &str, forwarded: Option<&str>) -> http::Request<Body> {
    let mut req = http::Request::builder().uri(path);
    if let Some(chain) = forwarded {
        req = req.header("x-forwarded-for", chain);
    }
    let mut req = req.body(Body::empty()).expect("request");
    req.extensions_mut().insert(ConnectInfo(peer(from)));
    req
}

#[tokio::test]
async fn axum_counts_the_client_behind_trusted_proxies() {
    let clock = clock();
    let trusted = ["10.0.0.0/8".parse().expect("net")];
    let login = RateLimit::builder(memory(login_policy(), &clock), ForwardedIp::new(trusted))
        .name("login")
        .build()
        .expect("valid");
    let app = Router::new()
        .route("/login", get(|| async { "ok" }))
        .layer(login);
    let call =
        |from: &str, chain: Option<&str>| app.clone().oneshot(axum_request("/login", from, chain));
    // Five logins from one client through the balancer, whatever it prepends.
    for i in 0..5 {
        let chain = format!("1.2.3.{i}, 203.0.113.9");
        let res = call("10.0.0.2:80", Some(&chain)).await.expect("infallible");
        assert_eq!(res.status(), 200);
        assert!(res.headers().contains_key("ratelimit"));
    }
    let res = call("10.0.0.3:80", Some("203.0.113.9"))
        .await
        .expect("infallible");
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "12");
    // Another client behind the same balancer has its own bucket.
    let other = call("10.0.0.2:80", Some("198.51.100.4, 10.1.1.1"))
        .await
        .expect("ok");
    assert_eq!(other.status(), 200);
    // The balancer's own address is never a client.
    let no_client = call("10.0.0.2:80", None).await.expect("ok");
    assert_eq!(no_client.status(), 400);
    let body = axum::body::to_bytes(no_client.into_body(), 4096)
        .await
        .expect("body");
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        body["detail"],
        "X-Forwarded-For names no client outside the trusted proxies"
    );
    // A direct client is its own address, whatever it claims.
    let direct = call("203.0.113.50:80", Some("203.0.113.9"))
        .await
        .expect("ok");
    assert_eq!(direct.status(), 200);
}

#[tokio::test]
async fn axum_refusals_and_failures_are_problem_documents() {
    let clock = clock();
    let daily = Policy::per_day(n(1));
    let flaky = RateLimit::builder(Flaky::new(daily, &clock), PeerIp::new())
        .build()
        .expect("valid");
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(flaky.clone());
    assert_eq!(
        app.clone()
            .oneshot(axum_request("/", "192.0.2.1:1", None))
            .await
            .expect("ok")
            .status(),
        200
    );
    let spent = app
        .clone()
        .oneshot(axum_request("/", "192.0.2.1:1", None))
        .await
        .expect("ok");
    assert_eq!(spent.status(), 429);
    assert_eq!(spent.headers()["content-type"], "application/problem+json");
    flaky.backend().set(Fault::Unavailable);
    let down = app
        .clone()
        .oneshot(axum_request("/", "192.0.2.2:1", None))
        .await
        .expect("ok");
    assert_eq!(down.status(), 503);
    assert_eq!(down.headers()["retry-after"], "1");
    // No peer address at all (no ConnectInfo): a deployment problem, said plainly.
    let bare = http::Request::builder()
        .uri("/")
        .body(Body::empty())
        .expect("request");
    let unknown = app.oneshot(bare).await.expect("ok");
    assert_eq!(unknown.status(), 500);

    let costly = RateLimit::builder(memory(Policy::per_day(n(3)), &clock), PeerIp::new())
        .cost(|_: &http::Request<Body>| 4)
        .build()
        .expect("valid");
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(costly);
    let never = app
        .oneshot(axum_request("/", "192.0.2.3:1", None))
        .await
        .expect("ok");
    assert_eq!(never.status(), 429);
    assert!(!never.headers().contains_key("retry-after"));
    let rejection = Rejection::problem(429, "x");
    assert_eq!(rejection.content_type, "application/problem+json");
}

/// Stacked layers: each adds its member to the IETF lists, and the `X-RateLimit-*` fields, one
/// number each, are the layer's closest to the handler, never one line per layer.
#[tokio::test]
async fn stacked_tower_layers_send_one_set_of_x_fields() {
    let clock = clock();
    let layer = |policy: Policy, name: &str| {
        RateLimit::builder(memory(policy, &clock), PeerIp::new())
            .name(name)
            .x_ratelimit_headers(true)
            .build()
            .expect("valid")
    };
    let burst = Policy::gcra(n(2), Duration::from_secs(60)).expect("valid");
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(layer(burst, "burst"))
        .layer(layer(Policy::per_day(n(1_000)), "daily"));
    let res = app
        .clone()
        .oneshot(axum_request("/", "192.0.2.9:1", None))
        .await
        .expect("ok");
    assert_eq!(res.status(), 200);
    let all = |name: &str| -> Vec<String> {
        res.headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .collect()
    };
    assert_eq!(all("x-ratelimit-limit"), ["2"]);
    assert_eq!(all("x-ratelimit-remaining"), ["1"]);
    assert_eq!(all("x-ratelimit-reset").len(), 1);
    assert_eq!(
        all("ratelimit-policy"),
        ["\"burst\";q=2;w=60", "\"daily\";q=1000;w=86400"]
    );
    // The inner layer's refusal keeps its own X- fields too.
    app.clone()
        .oneshot(axum_request("/", "192.0.2.9:1", None))
        .await
        .expect("ok");
    let refused = app
        .oneshot(axum_request("/", "192.0.2.9:1", None))
        .await
        .expect("ok");
    assert_eq!(refused.status(), 429);
    let limits: Vec<&str> = refused
        .headers()
        .get_all("x-ratelimit-limit")
        .iter()
        .map(|v| v.to_str().expect("ascii"))
        .collect();
    assert_eq!(limits, ["2"]);
}

#[actix_rt::test]
async fn stacked_actix_middleware_sends_one_set_of_x_fields() {
    let clock = clock();
    let layer = |policy: Policy, name: &str| {
        RateLimit::builder(memory(policy, &clock), PeerIp::new())
            .name(name)
            .x_ratelimit_headers(true)
            .build()
            .expect("valid")
    };
    let burst = Policy::gcra(n(2), Duration::from_secs(60)).expect("valid");
    let app = atest::init_service(
        App::new()
            .wrap(layer(burst, "burst"))
            .wrap(layer(Policy::per_day(n(1_000)), "daily"))
            .route("/", web::get().to(ok)),
    )
    .await;
    let req = atest::TestRequest::get()
        .peer_addr(peer("192.0.2.9:1"))
        .to_request();
    let res = atest::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
    let limits: Vec<&str> = res
        .headers()
        .get_all("x-ratelimit-limit")
        .map(|v| v.to_str().expect("ascii"))
        .collect();
    assert_eq!(limits, ["2"]);
    assert_eq!(res.headers().get_all("ratelimit-policy").count(), 2);
}

/// `RateLimit` and `RateLimit-Policy` carry Structured Field Integers, of at most 15 digits.
#[tokio::test]
async fn huge_limits_are_written_within_fifteen_digits() {
    let clock = clock();
    let huge = RateLimit::builder(
        memory(Policy::per_day(n(10_000_000_000_000_000)), &clock),
        PeerIp::new(),
    )
    .name("huge")
    .x_ratelimit_headers(true)
    .build()
    .expect("valid");
    let app = Router::new().route("/", get(|| async { "ok" })).layer(huge);
    let res = app
        .oneshot(axum_request("/", "192.0.2.10:1", None))
        .await
        .expect("ok");
    assert_eq!(
        res.headers()["ratelimit-policy"],
        "\"huge\";q=999999999999999;w=86400"
    );
    assert_eq!(
        res.headers()["ratelimit"],
        "\"huge\";r=999999999999999;t=86400"
    );
    assert_eq!(res.headers()["x-ratelimit-limit"], "10000000000000000");
    // A per-request limit, and the combined fields, are capped alike.
    let clock = FakeClock::at_unix_secs(1_767_225_600);
    let daily = memory(Policy::per_day(n(5)), &clock);
    let d = daily
        .decide_with_limit("k", 1, n(10_000_000_000_000_000))
        .expect("ok");
    let fields: Vec<(&str, String)> = quota::HeaderFields::combined([("d", &d)], false)
        .into_pairs()
        .map(|(name, value)| (name, String::from_utf8(value.to_vec()).expect("ascii")))
        .collect();
    assert_eq!(fields[0].1, "\"d\";q=999999999999999;w=86400");
    assert_eq!(fields[1].1, "\"d\";r=999999999999999;t=86400");
    assert_eq!(d.ietf_headers("d")[0].1, "\"d\";q=999999999999999;w=86400");
}

/// One raw HTTP/1.1 GET; returns the status code.
async fn http_get(addr: SocketAddr, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let status = answer.get(9..12).and_then(|s| std::str::from_utf8(s).ok());
    status.and_then(|s| s.parse().ok()).expect("a status line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_over_real_http_grants_exactly_the_quota_under_concurrency() {
    let daily = RateLimit::builder(MemoryBackend::new(Policy::per_day(n(100))), PeerIp::new())
        .name("daily")
        .build()
        .expect("valid");
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(daily);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let calls: Vec<_> = (0..400)
        .map(|_| tokio::spawn(http_get(addr, "/")))
        .collect();
    let mut statuses = Vec::new();
    for call in calls {
        statuses.push(call.await.expect("task"));
    }
    server.abort();
    let granted = statuses.iter().filter(|&&s| s == 200).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!((granted, refused), (100, 300));
}

#[test]
fn combined_fields_list_every_policy_and_describe_the_tightest() {
    let clock = FakeClock::at_unix_secs(1_767_225_600); // 2026-01-01T00:00:00Z
    let rate = MemoryBackend::builder(
        Policy::gcra(n(2), Duration::from_secs(60))
            .unwrap()
            .with_burst(n(2))
            .unwrap(),
    )
    .clock(clock.clone())
    .build()
    .unwrap();
    let credits = MemoryBackend::builder(Policy::lifetime(n(5)))
        .clock(clock)
        .build()
        .unwrap();
    let c = credits.decide("k", 4).unwrap();
    let r1 = rate.decide("k", 1).unwrap();
    let as_text = |fields: quota::HeaderFields| -> Vec<(&'static str, String)> {
        fields
            .into_pairs()
            .map(|(name, value)| (name, String::from_utf8(value.to_vec()).unwrap()))
            .collect()
    };
    // The credits (1 left) are tighter than the rate (1 left, but whole sooner); a name is
    // escaped as a Structured Field String; a lifetime has no w, t or reset.
    let fields = as_text(quota::HeaderFields::combined(
        [("ra\"te", &r1), ("credits", &c)],
        true,
    ));
    assert_eq!(
        fields,
        [
            (
                "ratelimit-policy",
                r#""ra\"te";q=2;w=60, "credits";q=5"#.to_owned()
            ),
            ("ratelimit", r#""credits";r=1"#.to_owned()),
            ("x-ratelimit-limit", "5".to_owned()),
            ("x-ratelimit-remaining", "1".to_owned()),
        ]
    );
    // A refusal: the longest wait among the limited ones.
    let r2 = rate.decide("k", 1).unwrap();
    let r3 = rate.decide("k", 1).unwrap();
    assert!(r2.is_allowed() && !r3.is_allowed());
    let fields = as_text(quota::HeaderFields::combined(
        [("rate", &r3), ("credits", &c)],
        false,
    ));
    assert_eq!(fields[1], ("ratelimit", r#""rate";r=0;t=60"#.to_owned()));
    assert_eq!(fields[2], ("retry-after", "30".to_owned()));
    assert_eq!(fields.len(), 3);
}

/// A refusal hook may name its headers in any case (`from_static` would panic on every refusal),
/// and a spent lifetime balance is not told to come back in a second.
#[tokio::test]
async fn refusal_headers_in_any_case_and_a_spent_balance_that_does_not_renew() {
    let clock = clock();
    let credits = RateLimit::builder(memory(Policy::lifetime(n(1)), &clock), PeerIp::new())
        .name("credits")
        .on_refusal(|refusal| {
            refusal
                .default
                .with_header("Cache-Control", "no-store")
                .with_header("not a name", "left out")
        })
        .build()
        .expect("valid");
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(credits);
    let call = || app.clone().oneshot(axum_request("/", "192.0.2.9:1", None));
    assert_eq!(call().await.expect("ok").status(), 200);
    let spent = call().await.expect("ok");
    assert_eq!(spent.status(), 429);
    assert_eq!(spent.headers()["cache-control"], "no-store");
    assert!(!spent.headers().contains_key("retry-after"));
    let body = axum::body::to_bytes(spent.into_body(), 4096)
        .await
        .expect("body");
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        body["detail"],
        "the credits limit of 1 is spent; it does not renew"
    );
}
