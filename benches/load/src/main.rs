//! The load benchmark's baseline: `POST /get-current-time` answering the same JSON as
//! secure-api (`currentTime`, `utc`, `unix`), built the same way (actix-web, serde, `time`
//! formatting), with no authentication, quota, logging or security headers. What secure-api
//! adds on top of this is what the benchmark measures.
//!
//! `baseline ADDR [WORKERS]`, e.g. `baseline 127.0.0.1:9000 2`.

use actix_web::{App, HttpResponse, HttpServer, web};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

#[derive(Serialize)]
struct CurrentTime {
    #[serde(rename = "currentTime")]
    current_time: String,
    utc: String,
    unix: i64,
}

async fn current_time() -> HttpResponse {
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let plain = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let body = CurrentTime {
        current_time: now.format(plain).unwrap_or_default(),
        utc: now.format(&Rfc3339).unwrap_or_default(),
        unix: now.unix_timestamp(),
    };
    HttpResponse::Ok().json(body)
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9000".to_owned());
    let workers = args.next().and_then(|w| w.parse().ok()).unwrap_or(2);
    actix_web::rt::System::new().block_on(
        HttpServer::new(|| App::new().route("/get-current-time", web::post().to(current_time)))
            .workers(workers)
            .bind(addr)?
            .run(),
    )
}
