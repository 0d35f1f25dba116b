//! The load benchmark's baseline: `POST /get-current-time` answering the same JSON as
//! secure-api (`currentTime`, `utc`, `unix`), built the same way (actix-web, serde, `time`
//! formatting), with no authentication, quota, logging or security headers. What secure-api
//! adds on top of this is what the benchmark measures.
//!
//! `baseline ADDR [WORKERS [same-headers]]`, e.g. `baseline 127.0.0.1:9000 2`. With
//! `same-headers`, every answer also carries the header fields secure-api's does, as constants
//! ([`SAME_HEADERS`]): what those bytes cost, without what computing them costs.

use actix_web::http::header::{HeaderName, HeaderValue};
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

/// The header fields secure-api's `/get-current-time` answer carries beyond what actix-web adds
/// (`content-length`, `content-type`, `date`), with values of the same length: the quota's,
/// the security headers and the request id. Sent by `baseline ADDR WORKERS same-headers`, to
/// tell what those bytes cost (in the kernel and in the client) from what computing them costs.
/// Built at compile time, as secure-api builds its security headers: a name built at run time
/// is validated byte by byte on every answer.
const SAME_HEADERS: [(HeaderName, HeaderValue); 11] = [
    (
        HeaderName::from_static("x-ratelimit-remaining"),
        HeaderValue::from_static("999999999"),
    ),
    (
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    ),
    (
        HeaderName::from_static("ratelimit"),
        HeaderValue::from_static("\"daily\";r=999999999;t=41143"),
    ),
    (
        HeaderName::from_static("x-ratelimit-limit"),
        HeaderValue::from_static("1000000000"),
    ),
    (
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    ),
    (
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    ),
    (
        HeaderName::from_static("ratelimit-policy"),
        HeaderValue::from_static("\"daily\";q=1000000000;w=86400"),
    ),
    (
        HeaderName::from_static("x-ratelimit-reset"),
        HeaderValue::from_static("1796601600"),
    ),
    (
        HeaderName::from_static("cache-control"),
        HeaderValue::from_static("no-store"),
    ),
    (
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    ),
    (
        HeaderName::from_static("x-request-id"),
        HeaderValue::from_static("5e3a535a45ce4852"),
    ),
];

async fn current_time_same_headers() -> HttpResponse {
    let mut response = current_time().await;
    let headers = response.headers_mut();
    for (name, value) in SAME_HEADERS {
        headers.insert(name, value);
    }
    response
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
    let same_headers = match args.next().as_deref() {
        None => false,
        Some("same-headers") => true,
        Some(other) => {
            return Err(std::io::Error::other(format!(
                "unknown mode {other:?}: the third argument is `same-headers` or nothing"
            )));
        }
    };
    actix_web::rt::System::new().block_on(
        HttpServer::new(move || {
            let handler = if same_headers {
                web::post().to(current_time_same_headers)
            } else {
                web::post().to(current_time)
            };
            App::new().route("/get-current-time", handler)
        })
        .workers(workers)
        .bind(addr)?
        .run(),
    )
}
