//! The example service on actix-web: `cargo run -p secure-api-examples --bin actix-service`.
//!
//! Listens on `127.0.0.1:3001` (or `BIND`), in memory, or on Redis when `REDIS_URL` is set,
//! and prints its demo keys once.

use std::net::TcpListener;
use std::num::NonZeroU64;

use secure_api_examples::{Demo, actix_service, memory_limits, memory_replay, redis_stores};

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3001".to_owned());
    let demo = Demo::new(NonZeroU64::new(1_000).expect("non-zero"));
    println!("API key (1,000 calls a day): {}", demo.api_key);
    println!(
        "signing key id: {}  secret: {}",
        demo.signing_key_id, demo.signing_secret
    );
    let listener = TcpListener::bind(&bind)?;
    println!("listening on http://{}", listener.local_addr()?);
    let server = match std::env::var("REDIS_URL") {
        Ok(url) => {
            let (daily, signed, login, replay) = redis_stores(&url, "actix-example").await?;
            actix_service::server(listener, demo, daily, signed, login, replay)?
        }
        Err(_) => {
            let (daily, signed, login) = memory_limits();
            actix_service::server(listener, demo, daily, signed, login, memory_replay())?
        }
    };
    server.await?;
    Ok(())
}
