//! The verifying middleware on actix-web and on axum: the body handed on unchanged, the
//! identity in the extensions, refusals as problem documents, body limits, replay shares,
//! records released when a later check refuses; and the reqwest signer over real HTTP.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::{App, HttpResponse, test as atest, web};
use axum::Router;
use axum::body::Bytes;
use axum::extract::Extension;
use axum::routing::post;
use request_signing::rfc9421::{MessageSigner, SigningKey};
use request_signing::{
    FakeClock, MemoryReplayCache, Secret, SignatureHeaders, SignedHeaders, Signer,
    StaticSecretStore, Verified, Verifier, VerifySignature, sign_awc_message, sign_reqwest_message,
    sign_reqwest_request,
};
use serde_json::Value;

const NOW: u64 = 1_700_000_000;

type TestVerifier = Verifier<StaticSecretStore, MemoryReplayCache, FakeClock>;

/// Keys `flood` and `calm`, each with a share of 3 entries in a cache of 100.
fn verifier(clock: &FakeClock) -> TestVerifier {
    let store = StaticSecretStore::new()
        .with_secret("flood", Secret::from("flood-secret"))
        .with_secret("calm", Secret::from("calm-secret"));
    let cache = MemoryReplayCache::new(NonZeroUsize::new(100).unwrap())
        .with_per_key_limit(NonZeroUsize::new(3).unwrap());
    Verifier::new(store, cache).with_clock(clock.clone())
}

fn signer(key: &str, clock: &FakeClock) -> Signer<FakeClock> {
    Signer::new(key, Secret::from(format!("{key}-secret").as_str()))
        .unwrap()
        .with_clock(clock.clone())
}

fn signed_actix(path: &str, body: &str, headers: &SignedHeaders) -> atest::TestRequest {
    let mut req = atest::TestRequest::post().uri(path);
    for (name, value) in headers.iter() {
        req = req.insert_header((name, value));
    }
    req.set_payload(body.to_owned())
}

async fn echo(verified: web::ReqData<Verified>, body: Bytes) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "key": verified.key_id(),
        "body": String::from_utf8_lossy(&body),
    }))
}

async fn spent() -> HttpResponse {
    HttpResponse::TooManyRequests().finish()
}

async fn json(res: actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>) -> Value {
    serde_json::from_slice(&atest::read_body(res).await).expect("json")
}

#[actix_rt::test]
async fn actix_hands_on_the_verified_body_and_identity_once() {
    let clock = FakeClock::at_unix_secs(NOW);
    let verify = VerifySignature::builder(verifier(&clock))
        .max_body_bytes(64)
        .build()
        .unwrap();
    let app = atest::init_service(
        App::new()
            .wrap(verify)
            .route("/echo", web::post().to(echo))
            .route("/spent", web::post().to(spent)),
    )
    .await;
    let body = r#"{"item":"book"}"#;
    let headers = signer("calm", &clock)
        .sign("POST", "/echo", body.as_bytes())
        .unwrap();
    let res = atest::call_service(&app, signed_actix("/echo", body, &headers).to_request()).await;
    assert_eq!(res.status(), 200);
    let got = json(res).await;
    assert_eq!(
        (got["key"].as_str(), got["body"].as_str()),
        (Some("calm"), Some(body))
    );

    let replay =
        atest::call_service(&app, signed_actix("/echo", body, &headers).to_request()).await;
    assert_eq!(replay.status(), 401);
    assert_eq!(
        replay.headers().get("content-type").unwrap(),
        "application/problem+json"
    );
    assert_eq!(json(replay).await["detail"], "request replayed");

    // The same headers on another body: the signature does not cover it.
    let other = signer("calm", &clock)
        .sign("POST", "/echo", body.as_bytes())
        .unwrap();
    let tampered =
        atest::call_service(&app, signed_actix("/echo", "{}", &other).to_request()).await;
    assert_eq!(tampered.status(), 401);
    assert_eq!(json(tampered).await["detail"], "bad signature");

    // A signature field sent twice is refused, whichever of its values is the right one.
    for (name, extra) in [("x-api-signature", "v1=00"), ("x-api-timestamp", "1")] {
        let fresh = signer("calm", &clock)
            .sign("POST", "/echo", body.as_bytes())
            .unwrap();
        let twice = signed_actix("/echo", body, &fresh).append_header((name, extra));
        let refused = atest::call_service(&app, twice.to_request()).await;
        assert_eq!(refused.status(), 401, "{name}");
        assert_eq!(
            json(refused).await["detail"],
            format!(
                "malformed header {}: sent more than once",
                fresh
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .unwrap()
                    .0
            )
        );
    }

    let unsigned =
        atest::call_service(&app, atest::TestRequest::post().uri("/echo").to_request()).await;
    assert_eq!(unsigned.status(), 401);
    assert_eq!(json(unsigned).await["detail"], "missing header X-API-Key");

    let big = "x".repeat(65);
    let headers = signer("calm", &clock)
        .sign("POST", "/echo", big.as_bytes())
        .unwrap();
    let too_large =
        atest::call_service(&app, signed_actix("/echo", &big, &headers).to_request()).await;
    assert_eq!(too_large.status(), 413);
    assert_eq!(
        json(too_large).await["detail"],
        "the body is larger than the 64-byte limit"
    );
}

#[actix_rt::test]
async fn a_refused_request_is_released_and_a_flood_stays_in_its_share() {
    let clock = FakeClock::at_unix_secs(NOW);
    let verify = VerifySignature::builder(verifier(&clock))
        .release_on(|status| status == 429)
        .build()
        .unwrap();
    let app = atest::init_service(
        App::new()
            .wrap(verify)
            .route("/echo", web::post().to(echo))
            .route("/spent", web::post().to(spent)),
    )
    .await;
    // A later check (a spent quota) refuses with 429: the record is released, so the key's
    // share is untouched and the very same request may come again.
    let flood = signer("flood", &clock);
    let refused = flood.sign("POST", "/spent", b"").unwrap();
    for _ in 0..10 {
        let res =
            atest::call_service(&app, signed_actix("/spent", "", &refused).to_request()).await;
        assert_eq!(res.status(), 429);
    }
    // The key's share of 3 is whole: three fresh requests pass, the fourth is refused alone.
    for _ in 0..3 {
        let h = flood.sign("POST", "/echo", b"").unwrap();
        let res = atest::call_service(&app, signed_actix("/echo", "", &h).to_request()).await;
        assert_eq!(res.status(), 200);
    }
    let h = flood.sign("POST", "/echo", b"").unwrap();
    let over = atest::call_service(&app, signed_actix("/echo", "", &h).to_request()).await;
    assert_eq!(over.status(), 429);
    assert_eq!(over.headers().get("retry-after").unwrap(), "331");
    assert_eq!(
        json(over).await["detail"],
        "too many signed requests for this key; retry in 331 s"
    );
    // Another key is unaffected by the flood.
    let calm = signer("calm", &clock).sign("POST", "/echo", b"").unwrap();
    let res = atest::call_service(&app, signed_actix("/echo", "", &calm).to_request()).await;
    assert_eq!(res.status(), 200);
    // Once the flood's oldest entries expire, it has room again.
    clock.set_unix_secs(NOW + 331);
    let later = flood.sign("POST", "/echo", b"").unwrap();
    let res = atest::call_service(&app, signed_actix("/echo", "", &later).to_request()).await;
    assert_eq!(res.status(), 200);
}

#[actix_rt::test]
async fn optional_verification_lets_unsigned_requests_through_to_the_next_layer() {
    let clock = FakeClock::at_unix_secs(NOW);
    let verify = VerifySignature::builder(verifier(&clock))
        .optional(true)
        .build()
        .unwrap();
    let app = atest::init_service(App::new().wrap(verify).route(
        "/open",
        web::post().to(|body: Bytes| async move { HttpResponse::Ok().body(body) }),
    ))
    .await;
    let plain = atest::TestRequest::post()
        .uri("/open")
        .set_payload("hello")
        .to_request();
    let res = atest::call_service(&app, plain).await;
    assert_eq!(res.status(), 200);
    assert_eq!(atest::read_body(res).await, "hello");
    // A request that carries a signature must verify.
    let bad = atest::TestRequest::post()
        .uri("/open")
        .insert_header(("x-api-signature", "v1=00"))
        .to_request();
    assert_eq!(atest::call_service(&app, bad).await.status(), 401);
}

async fn axum_echo(Extension(verified): Extension<Verified>, body: Bytes) -> String {
    format!("{}:{}", verified.key_id(), String::from_utf8_lossy(&body))
}

/// Serves `/orders` behind the verifying layer on a free port.
async fn serve_axum(verifier: TestVerifier) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let verify = VerifySignature::builder(verifier)
        .max_body_bytes(1024)
        .build()
        .unwrap();
    serve_axum_behind(verify).await
}

/// Serves `/orders` behind `verify` on a free port.
async fn serve_axum_behind(
    verify: VerifySignature<StaticSecretStore, MemoryReplayCache, FakeClock>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let app = Router::new()
        .route("/orders", post(axum_echo))
        .layer(verify);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, server)
}

#[tokio::test]
async fn reqwest_signs_in_place_and_axum_verifies_over_real_http() {
    let clock = FakeClock::at_unix_secs(NOW);
    let (addr, server) = serve_axum(verifier(&clock)).await;
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/orders?dry_run=1");
    let mut request = client.post(&url).body(r#"{"qty":2}"#).build().unwrap();
    sign_reqwest_request(&signer("calm", &clock), &mut request).unwrap();
    let replay = request.try_clone().expect("a buffered body clones");
    let answer = client.execute(request).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), r#"calm:{"qty":2}"#);

    let again = client.execute(replay).await.unwrap();
    assert_eq!(again.status(), 401);
    assert_eq!(again.headers()["content-type"], "application/problem+json");

    server.abort();
}

/// Sends `request` raw over TCP; returns the status code.
async fn raw(addr: SocketAddr, request: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    std::str::from_utf8(&answer[9..12])
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn axum_refuses_bodies_over_the_limit_declared_or_streamed() {
    let clock = FakeClock::at_unix_secs(NOW);
    let (addr, server) = serve_axum(verifier(&clock)).await;
    let h = signer("calm", &clock).sign("POST", "/orders", b"").unwrap();
    let signature: String = h
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    // Declared too large: refused before a byte of the body is read.
    let declared = format!(
        "POST /orders HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{signature}Content-Length: 5000\r\n\r\n"
    );
    assert_eq!(raw(addr, declared.as_bytes()).await, 413);
    // Chunked, with no length given: refused once the limit is passed.
    let chunk = "y".repeat(800);
    let chunked = format!(
        "POST /orders HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{signature}Transfer-Encoding: chunked\r\n\r\n\
         320\r\n{chunk}\r\n320\r\n{chunk}\r\n0\r\n\r\n"
    );
    assert_eq!(raw(addr, chunked.as_bytes()).await, 413);
    // The signature was never recorded: the empty-body request it signs still passes.
    let ok = format!(
        "POST /orders HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{signature}Content-Length: 0\r\n\r\n"
    );
    assert_eq!(raw(addr, ok.as_bytes()).await, 200);
    server.abort();
}

#[test]
fn the_headers_a_signer_makes_are_what_the_middleware_reads() {
    let clock = FakeClock::at_unix_secs(NOW);
    let h = signer("calm", &clock).sign("GET", "/", b"").unwrap();
    let read = SignatureHeaders::from_signed(&h);
    assert_eq!(read.key, Some(&b"calm"[..]));
}

fn message_signer(key: &str, clock: &FakeClock) -> MessageSigner<FakeClock> {
    let secret = Secret::from(format!("{key}-secret").as_str());
    MessageSigner::builder(key, SigningKey::hmac_sha256(secret))
        .clock(clock.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn rfc9421_reqwest_signs_in_place_and_axum_verifies_over_real_http() {
    let clock = FakeClock::at_unix_secs(NOW);
    let (addr, server) = serve_axum(verifier(&clock)).await;
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/orders?dry_run=1");
    let mut request = client.post(&url).body(r#"{"qty":2}"#).build().unwrap();
    sign_reqwest_message(&message_signer("calm", &clock), &mut request).unwrap();
    assert!(request.headers().contains_key("content-digest"));
    let replay = request.try_clone().expect("a buffered body clones");
    let mut tampered = request.try_clone().unwrap();
    *tampered.body_mut() = Some(r#"{"qty":9}"#.into());

    let answer = client.execute(request).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), r#"calm:{"qty":2}"#);
    let again = client.execute(replay).await.unwrap();
    assert_eq!(again.status(), 401);
    let problem: Value = serde_json::from_str(&again.text().await.unwrap()).unwrap();
    assert_eq!(problem["detail"], "request replayed");
    let tampered = client.execute(tampered).await.unwrap();
    assert_eq!(tampered.status(), 401);
    let problem: Value = serde_json::from_str(&tampered.text().await.unwrap()).unwrap();
    assert_eq!(problem["detail"], "Content-Digest does not match the body");

    server.abort();
}

#[actix_rt::test]
async fn rfc9421_on_actix_with_awc_signed_headers_and_a_narrow_signature_refused() {
    let clock = FakeClock::at_unix_secs(NOW);
    let verify = VerifySignature::builder(verifier(&clock)).build().unwrap();
    let app = atest::init_service(
        App::new()
            .wrap(verify)
            .route("/orders", web::post().to(echo)),
    )
    .await;
    let body = r#"{"qty":1}"#;
    let to_actix = |request: &awc::ClientRequest| {
        let mut req = atest::TestRequest::post()
            .uri("/orders?x=1")
            .insert_header(("host", "api.example"));
        for (name, value) in request.headers() {
            req = req.insert_header((name.clone(), value.clone()));
        }
        req.set_payload(body)
    };
    let client = awc::Client::default();
    let signed = sign_awc_message(
        &message_signer("calm", &clock),
        client.post("http://api.example/orders?x=1"),
        body.as_bytes(),
    )
    .unwrap();
    let res = atest::call_service(&app, to_actix(&signed).to_request()).await;
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["key"], "calm");

    // A signature over the method alone covers neither the target nor the body.
    let narrow =
        MessageSigner::builder("calm", SigningKey::hmac_sha256(Secret::from("calm-secret")))
            .components(["@method"])
            .clock(clock.clone())
            .build()
            .unwrap();
    let signed = sign_awc_message(
        &narrow,
        client.post("http://api.example/orders?x=1"),
        body.as_bytes(),
    )
    .unwrap();
    let res = atest::call_service(&app, to_actix(&signed).to_request()).await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        json(res).await["detail"],
        "the signature does not cover @target-uri (or @authority, @path and @query)"
    );
}

/// Behind TLS, an origin-form URI names no scheme: a client that signs `@target-uri` of its
/// `https` URL verifies on a tower server once the layer is told the scheme.
#[tokio::test]
async fn tower_verifies_an_https_target_uri_once_told_the_scheme() {
    use tower::ServiceExt as _;
    let clock = FakeClock::at_unix_secs(NOW);
    let message =
        request_signing::rfc9421::Message::new("POST", "https://api.example/orders", &[], b"")
            .unwrap();
    let signed =
        MessageSigner::builder("calm", SigningKey::hmac_sha256(Secret::from("calm-secret")))
            .components(["@method", "@target-uri"])
            .clock(clock.clone())
            .build()
            .unwrap()
            .sign(&message)
            .unwrap();
    let request = || {
        let mut request = http::Request::post("/orders").header("host", "api.example");
        for (name, value) in signed.iter() {
            request = request.header(name, value);
        }
        request.body(axum::body::Body::empty()).unwrap()
    };
    for (scheme, status) in [(None, 401), (Some("https"), 200)] {
        let mut layer = VerifySignature::builder(verifier(&clock));
        if let Some(scheme) = scheme {
            layer = layer.scheme(scheme);
        }
        let app = Router::new()
            .route("/orders", post(axum_echo))
            .layer(layer.build().unwrap());
        let answer = app.oneshot(request()).await.unwrap();
        assert_eq!(answer.status(), status, "{scheme:?}");
    }
    assert!(
        VerifySignature::builder(verifier(&clock))
            .scheme("ftp")
            .build()
            .is_err()
    );
}

/// A refusal's headers may be named in any case (`HeaderName::from_static` would panic on every
/// refusal); a name that is no header name is left out.
#[test]
fn refusal_headers_may_be_named_in_any_case() {
    let rejection = || {
        request_signing::Rejection::problem(401, "no")
            .with_header("WWW-Authenticate", "Bearer")
            .with_header("not a name", "left out")
    };
    let tower = request_signing::http_response::<axum::body::Body>(rejection());
    assert_eq!(tower.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        tower.headers().len(),
        2,
        "content-type and www-authenticate"
    );
    let actix = request_signing::actix_response(rejection());
    assert_eq!(actix.headers().get("www-authenticate").unwrap(), "Bearer");
    assert_eq!(
        actix.headers().len(),
        2,
        "content-type and www-authenticate"
    );
}

/// A body that cannot be read (a broken chunked body) is refused through the `on_refusal` hook,
/// as every other refusal is, so that a service's error bodies keep one shape.
#[tokio::test]
async fn an_unreadable_body_is_refused_through_the_hook() {
    let clock = FakeClock::at_unix_secs(NOW);
    let verify = VerifySignature::builder(verifier(&clock))
        .on_refusal(|refusal| match refusal.error {
            request_signing::Error::UnreadableBody => {
                request_signing::Rejection::problem(422, "hooked: unreadable")
            }
            _ => refusal.default,
        })
        .build()
        .unwrap();
    let (addr, server) = serve_axum_behind(verify).await;
    let h = signer("calm", &clock).sign("POST", "/orders", b"").unwrap();
    let signature: String = h
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let broken = format!(
        "POST /orders HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{signature}Transfer-Encoding: chunked\r\n\r\nzz\r\n"
    );
    assert_eq!(raw(addr, broken.as_bytes()).await, 422);
    server.abort();
}

/// A 64 KiB request body that records whether anything read it.
fn watched_body(read: &Arc<AtomicBool>) -> axum::body::Body {
    let read = Arc::clone(read);
    axum::body::Body::from_stream(futures_util::stream::once(async move {
        read.store(true, Ordering::SeqCst);
        Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 64 * 1024]))
    }))
}

/// A request the headers alone condemn is refused before its body is read: reading it would
/// hold up to the body limit in memory for anyone who sends one.
#[tokio::test]
async fn tower_refuses_on_the_headers_alone_without_reading_the_body() {
    use axum::http::Request;
    use tower::ServiceExt as _;

    let clock = FakeClock::at_unix_secs(NOW);
    let verify = VerifySignature::builder(verifier(&clock)).build().unwrap();
    let app = Router::new()
        .route("/orders", post(axum_echo))
        .layer(verify);
    let v1 = |signer: Signer<FakeClock>| {
        let h = signer.sign("POST", "/orders", b"").unwrap();
        h.iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect::<Vec<_>>()
    };
    let an_hour_ago = FakeClock::at_unix_secs(NOW - 3_600);
    let rfc9421 = {
        let client = reqwest::Client::new();
        let mut request = client.post("http://t/orders").build().unwrap();
        sign_reqwest_message(&message_signer("calm", &an_hour_ago), &mut request).unwrap();
        request
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect::<Vec<_>>()
    };
    let mut twice = v1(signer("calm", &clock));
    twice.push(("x-api-key".to_owned(), "calm".to_owned()));
    let cases = [
        ("no signature", Vec::new(), "missing header X-API-Key"),
        (
            "a timestamp an hour old",
            v1(signer("calm", &an_hour_ago)),
            "expired",
        ),
        ("a field sent twice", twice, "sent more than once"),
        ("an RFC 9421 signature an hour old", rfc9421, "expired"),
    ];
    for (case, headers, detail) in cases {
        let read = Arc::new(AtomicBool::new(false));
        let mut request = Request::post("/orders");
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let answer = app
            .clone()
            .oneshot(request.body(watched_body(&read)).unwrap())
            .await
            .unwrap();
        assert_eq!(answer.status(), 401, "{case}");
        let body = axum::body::to_bytes(answer.into_body(), 4096)
            .await
            .unwrap();
        let problem: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains(detail),
            "{case}: {problem}"
        );
        assert!(!read.load(Ordering::SeqCst), "{case}: the body was read");
    }
}

/// The same on actix-web: refused on the headers alone, the body never read.
#[actix_rt::test]
async fn actix_refuses_on_the_headers_alone_without_reading_the_body() {
    use actix_web::dev::{Payload, Service as _, Transform as _};

    let clock = FakeClock::at_unix_secs(NOW);
    let verify = VerifySignature::builder(verifier(&clock)).build().unwrap();
    let middleware = verify.new_transform(atest::ok_service()).await.unwrap();
    let stale = signer("calm", &FakeClock::at_unix_secs(NOW - 3_600))
        .sign("POST", "/orders", b"")
        .unwrap();
    let fresh = signer("calm", &clock).sign("POST", "/orders", b"").unwrap();
    for (case, headers, signature) in [("stale", stale, None), ("malformed", fresh, Some("v1=zz"))]
    {
        let read = Arc::new(AtomicBool::new(false));
        let watched = Arc::clone(&read);
        let stream = futures_util::stream::once(async move {
            watched.store(true, Ordering::SeqCst);
            Ok::<_, actix_web::error::PayloadError>(Bytes::from(vec![b'x'; 64 * 1024]))
        });
        let mut request = signed_actix("/orders", "", &headers);
        if let Some(signature) = signature {
            request = request.insert_header(("X-API-Signature", signature));
        }
        let mut request = request.to_srv_request();
        request.set_payload(Payload::Stream {
            payload: Box::pin(stream),
        });
        let answer = middleware.call(request).await.unwrap();
        assert_eq!(answer.status(), 401, "{case}");
        assert!(!read.load(Ordering::SeqCst), "{case}: the body was read");
    }
}

/// By default an answer releases nothing: the same signed request, answered once (429 here,
/// or a 503 after a write), is a replay the second time.
#[actix_rt::test]
async fn by_default_a_signed_request_is_accepted_once_whatever_its_answer() {
    let clock = FakeClock::at_unix_secs(NOW);
    let verify = VerifySignature::builder(verifier(&clock)).build().unwrap();
    let app = atest::init_service(
        App::new()
            .wrap(verify)
            .route("/spent", web::post().to(spent)),
    )
    .await;
    let h = signer("calm", &clock).sign("POST", "/spent", b"").unwrap();
    let first = atest::call_service(&app, signed_actix("/spent", "", &h).to_request()).await;
    assert_eq!(first.status(), 429);
    let again = atest::call_service(&app, signed_actix("/spent", "", &h).to_request()).await;
    assert_eq!(again.status(), 401);
    assert_eq!(json(again).await["detail"], "request replayed");
}
