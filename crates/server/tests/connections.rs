//! Connection limits: one address's connections are capped while another's are served, and a
//! body that never arrives is answered 408 after the body timeout.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::{Spawn, spawn_with};
use request_signing::{FakeClock, Secret, Signer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// A connection to `server` from the local address `from`.
async fn connect(from: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(server).await.unwrap()
}

/// Everything the server sends until it closes the connection (at most `within`).
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .unwrap();
    String::from_utf8(answer).unwrap()
}

/// The whole answer to `GET /healthz` on a new connection from `from`.
async fn healthz_from(from: &str, server: SocketAddr) -> String {
    let mut stream = connect(from, server).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    read_to_close(&mut stream, Duration::from_secs(5)).await
}

/// An authenticated `POST` whose body never comes whole: 100 bytes announced and none sent,
/// or with `chunked`, a chunk begun and never finished.
fn stalled_request(key: &str, chunked: bool) -> Vec<u8> {
    let framing = if chunked {
        "Transfer-Encoding: chunked\r\n\r\n20\r\n{\"number\": "
    } else {
        "Content-Length: 100\r\n\r\n"
    };
    format!(
        "POST /check-prime HTTP/1.1\r\nHost: test\r\nAuthorization: {key}\r\n\
         Content-Type: application/json\r\n{framing}"
    )
    .into_bytes()
}

#[actix_web::test]
async fn one_address_is_capped_while_another_is_served_and_stalled_bodies_time_out() {
    let mut spawn = Spawn::default();
    spawn.args.max_connections_per_address = Some(3);
    spawn.args.body_timeout = Some(2);
    let app = spawn_with(spawn).await;
    let server: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let key = app.first.demo_key.key.clone();
    let local: IpAddr = "127.0.0.1".parse().unwrap();

    // Three stalled bodies take the three places of 127.0.0.1, one of them chunked.
    let mut stalled = Vec::new();
    for chunked in [false, true, false] {
        let mut stream = connect("127.0.0.1", server).await;
        stream
            .write_all(&stalled_request(&key, chunked))
            .await
            .unwrap();
        stalled.push(stream);
    }
    let started = Instant::now();
    // The server counts a connection once it has read its request head.
    while app.services.per_address.open(local) < 3 {
        assert!(started.elapsed() < Duration::from_secs(5), "not counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = healthz_from("127.0.0.1", server).await;
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    let lower = refused.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/problem+json"),
        "{refused}"
    );
    assert!(lower.contains("retry-after: 1"), "{refused}");
    assert!(lower.contains("connection: close"), "{refused}");
    assert!(
        refused.contains("/problems/too-many-connections"),
        "{refused}"
    );
    // A chunked body over the cap is not read on: the connection closes after the answer
    // (within the 2 s actix-http waits for the client to close first).
    let mut chunked = connect("127.0.0.1", server).await;
    chunked
        .write_all(&stalled_request(&key, true))
        .await
        .unwrap();
    let answer = read_to_close(&mut chunked, Duration::from_secs(4)).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");

    // Another address is served meanwhile.
    let answer = healthz_from("127.0.0.2", server).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // The stalled bodies, chunked or not, are answered 408 after the body timeout, and their
    // connections closed.
    for stream in &mut stalled {
        let answer = read_to_close(stream, Duration::from_secs(10)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("/problems/body-timeout"), "{answer}");
        assert!(answer.contains("did not arrive within 2 s"), "{answer}");
    }
    assert!(started.elapsed() >= Duration::from_secs(1));

    // Their places are back once the connections are gone.
    drop(stalled);
    while app.services.per_address.open(local) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "places not given back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let page = app.metrics_page().await;
    assert!(
        page.contains("secure_api_connections_refused_total{reason=\"per_address\"}"),
        "{page}"
    );
    let answer = healthz_from("127.0.0.1", server).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[actix_web::test]
async fn a_body_sent_slowly_but_in_time_is_served() {
    let mut spawn = Spawn::default();
    // Three pauses of 300 ms: well inside, even on a loaded machine.
    spawn.args.body_timeout = Some(5);
    let app = spawn_with(spawn).await;
    let server: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let key = &app.first.demo_key.key;
    let body = br#"{"number": 97}"#;
    let head = format!(
        "POST /check-prime HTTP/1.1\r\nHost: test\r\nAuthorization: {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut stream = connect("127.0.0.1", server).await;
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(5) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream.write_all(chunk).await.unwrap();
    }
    let answer = read_to_close(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""isPrime":true"#), "{answer}");
}

/// A signed request whose body cannot be read (a broken chunked body) is refused with the
/// server's own problem body, as every other refusal is.
#[actix_web::test]
async fn an_unreadable_signed_body_gets_the_servers_problem_body() {
    let app = spawn_with(Spawn::default()).await;
    let server: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    // Headers that pass what the headers alone decide (a known key, in the time window), so
    // that the body is read; the signature does not matter, the body never arrives whole.
    let created = app
        .create_key(serde_json::json!({"service": "orders", "signing": true}))
        .await;
    let signer = Signer::new(
        created["id"].as_str().unwrap(),
        Secret::from(created["signing_secret"].as_str().unwrap()),
    )
    .unwrap()
    .with_clock(FakeClock::at_unix_secs(common::NOON));
    let signature: String = signer
        .sign("POST", "/check-prime", b"")
        .unwrap()
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let mut stream = connect("127.0.0.1", server).await;
    let request = format!(
        "POST /check-prime HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{signature}\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let body: serde_json::Value =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["type"], "/problems/bad-request", "{body}");
    assert_eq!(body["error"], body["detail"], "{body}");
}

/// A client that hangs up while its big prime test runs stops the test between rounds, and is
/// not charged: actix-web drops the request's future once the connection closes, and the key's
/// share of the prime threads is free again at once.
#[actix_web::test]
async fn a_client_that_hangs_up_stops_its_prime_test_and_pays_nothing() {
    let app = spawn_with(Spawn::default()).await;
    let server: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let (key, id) = (
        app.first.demo_key.key.clone(),
        app.first.demo_key.id.clone(),
    );
    let admin = format!("Bearer {}", app.first.admin_token);
    let used = || async {
        let usage = app
            .get(
                &format!("/admin/keys/{id}/usage"),
                &[("authorization", &admin)],
            )
            .await;
        usage.body["used"].as_u64().unwrap()
    };
    let before = used().await;
    // 2^3217 - 1, a prime of 3,217 bits, with 40 rounds: about a second of work, and 721
    // units, which the demo key's 1,000 a day can pay.
    let number = (num_bigint::BigUint::from(1u8) << 3217u32) - 1u8;
    let body = format!(r#"{{"number": {number}, "rounds": 40}}"#);
    let request = format!(
        "POST /check-prime HTTP/1.1\r\nHost: test\r\nAuthorization: {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = connect("127.0.0.1", server).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);
    // The key may start another big test at once: its share is free again.
    let started = Instant::now();
    let small = format!(
        r#"{{"number": {}, "rounds": 0}}"#,
        (num_bigint::BigUint::from(1u8) << 607u32) - 1u8
    );
    loop {
        let reply = app
            .post("/check-prime", &[("authorization", &key)], &small)
            .await;
        if reply.status == 200 {
            break;
        }
        assert_eq!(reply.status, 503, "{}", reply.body);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the abandoned test still holds the key's share: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let charged = used().await - before;
    // The small test is charged; the abandoned one is not.
    assert!(charged < 100, "charged {charged}");
    // The abandoned request is counted (and logged) with nginx's 499.
    let page = app.metrics_page().await;
    assert!(
        page.contains(r#"route="/check-prime",method="POST",status="499""#),
        "{page}"
    );
}

/// Connections count against their address from when they are accepted, requests or not: one
/// address cannot take the server's connections from another with connections that never send
/// a request. Those over its cap are closed within a moment.
#[actix_web::test]
async fn idle_connections_from_one_address_leave_room_for_another() {
    let mut spawn = Spawn::default();
    spawn.args.max_connections = Some(20);
    spawn.args.max_connections_per_address = Some(5);
    spawn.args.workers = Some(1);
    let app = spawn_with(spawn).await;
    let server: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let local: IpAddr = "127.0.0.1".parse().unwrap();
    let mut idle = Vec::new();
    for _ in 0..30 {
        idle.push(connect("127.0.0.1", server).await);
    }
    // Another address is served well before the 5 s head timeout would free anything.
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(3), healthz_from("127.0.0.2", server))
        .await
        .expect("another address is served while one holds idle connections");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(app.services.per_address.open(local), 5);
    // The 25 over the cap were closed; the 5 within it are open.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut closed = 0;
    for stream in &mut idle {
        let mut byte = [0u8; 1];
        if let Ok(read) =
            tokio::time::timeout(Duration::from_millis(50), stream.read(&mut byte)).await
        {
            assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
            closed += 1;
        }
    }
    assert_eq!(closed, 25);
}
