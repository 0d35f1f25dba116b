//! Connection limits: one address's connections are capped while another's are served, and a
//! body that never arrives is answered 408 after the body timeout.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Spawn, spawn_with};
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

/// The head of an authenticated `POST` whose 100-byte body is never sent.
fn stalled_head(key: &str) -> Vec<u8> {
    format!(
        "POST /check-prime HTTP/1.1\r\nHost: test\r\nAuthorization: {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
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
    let healthz = b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";

    // Three stalled bodies take the three places of 127.0.0.1.
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let mut stream = connect("127.0.0.1", server).await;
        stream
            .write_all(&stalled_head(&app.first.demo_key.key))
            .await
            .unwrap();
        stalled.push(stream);
    }
    let started = Instant::now();
    // The server counts a connection once it has read its request head.
    let mut fourth;
    let refused = loop {
        fourth = connect("127.0.0.1", server).await;
        fourth.write_all(healthz).await.unwrap();
        let answer = read_to_close(&mut fourth, Duration::from_secs(5)).await;
        if !answer.starts_with("HTTP/1.1 200") {
            break answer;
        }
        assert!(started.elapsed() < Duration::from_secs(1), "never capped");
    };
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

    // Another address is served meanwhile.
    let mut other = connect("127.0.0.2", server).await;
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut other, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // The stalled bodies are answered 408 after the body timeout, and their connections
    // closed.
    for stream in &mut stalled {
        let answer = read_to_close(stream, Duration::from_secs(10)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("/problems/body-timeout"), "{answer}");
        assert!(answer.contains("did not arrive within 2 s"), "{answer}");
    }
    assert!(started.elapsed() >= Duration::from_secs(2));

    // Their places are back.
    let page = app.metrics_page().await;
    assert!(
        page.contains("secure_api_connections_refused_total{reason=\"per_address\"}"),
        "{page}"
    );
    let mut again = connect("127.0.0.1", server).await;
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut again, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[actix_web::test]
async fn a_body_sent_slowly_but_in_time_is_served() {
    let mut spawn = Spawn::default();
    spawn.args.body_timeout = Some(2);
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
