//! The example service on axum: `cargo run -p secure-api-examples --bin axum-service`.
//!
//! Listens on `127.0.0.1:3000` (or `BIND`), in memory, or on Redis when `REDIS_URL` is set,
//! and prints its demo keys once.

use std::net::SocketAddr;
use std::num::NonZeroU64;

use secure_api_examples::{Demo, axum_service, memory_limits, memory_replay, redis_stores};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let demo = Demo::new(NonZeroU64::new(1_000).expect("non-zero"));
    println!("API key (1,000 calls a day): {}", demo.api_key);
    println!(
        "signing key id: {}  secret: {}",
        demo.signing_key_id, demo.signing_secret
    );
    let app = match std::env::var("REDIS_URL") {
        Ok(url) => {
            let (daily, signed, login, replay) = redis_stores(&url, "axum-example").await?;
            axum_service::router(demo, daily, signed, login, replay)?
        }
        Err(_) => {
            let (daily, signed, login) = memory_limits();
            axum_service::router(demo, daily, signed, login, memory_replay())?
        }
    };
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
