//! `POST /get-current-time`.

use std::cell::RefCell;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use utoipa::ToSchema;

use crate::clock::Clock;
use crate::error::{ApiError, Problem};
use crate::limits::KeyQuota;

/// The current time, in the original's format and two unambiguous ones.
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentTime {
    /// `YYYY-MM-DD HH:MM:SS`, UTC (the original's field and format).
    #[serde(rename = "currentTime")]
    #[schema(example = "2026-11-23 04:10:00")]
    pub current_time: String,
    /// RFC 3339, UTC.
    #[schema(example = "2026-11-23T04:10:00Z")]
    pub utc: String,
    /// Seconds since the Unix epoch.
    pub unix: i64,
}

impl CurrentTime {
    /// The time `unix` in all three forms.
    pub fn at(unix: i64) -> Result<Self, ApiError> {
        let at = OffsetDateTime::from_unix_timestamp(unix).map_err(ApiError::internal)?;
        let plain = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        Ok(Self {
            current_time: at.format(plain).map_err(ApiError::internal)?,
            utc: at.format(&Rfc3339).map_err(ApiError::internal)?,
            unix,
        })
    }

    /// The JSON body of [`CurrentTime::at`]`(unix)`. Each worker thread formats it once a
    /// second: the calls within that second share its bytes.
    pub fn json_at(unix: i64) -> Result<Bytes, ApiError> {
        thread_local! {
            static LAST: RefCell<Option<(i64, Bytes)>> = const { RefCell::new(None) };
        }
        LAST.with_borrow_mut(|last| {
            if let Some((at, body)) = last
                && *at == unix
            {
                return Ok(body.clone());
            }
            let body = serde_json::to_vec(&Self::at(unix)?).map_err(ApiError::internal)?;
            let body = Bytes::from(body);
            *last = Some((unix, body.clone()));
            Ok(body)
        })
    }
}

/// The server's current time.
#[utoipa::path(
    post, path = "/get-current-time", tag = "api",
    responses(
        (status = 200, description = "The current time", body = CurrentTime),
        (status = 401, description = "Missing, unknown, revoked or expired API key", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "A limit of the key is reached: its rate limit, its daily or monthly quota, or its credits (each its own problem type)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["time:read"]), ("api_key_header" = ["time:read"]), ("signed" = ["time:read"]), ("signed_rfc9421" = ["time:read"]))
)]
pub async fn get_current_time(
    req: HttpRequest,
    quota: web::Data<KeyQuota>,
    clock: web::Data<Clock>,
) -> Result<HttpResponse, ApiError> {
    let charged = quota.charge(&req, 1).await?;
    Ok(charged.respond_json(CurrentTime::json_at(clock.now())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_the_original_and_rfc_3339() {
        let t = CurrentTime::at(1_700_000_000).unwrap();
        assert_eq!(t.current_time, "2023-11-14 22:13:20");
        assert_eq!(t.utc, "2023-11-14T22:13:20Z");
        assert_eq!(t.unix, 1_700_000_000);
    }

    /// The body made once a second is the one `at` serializes, for each second asked, in any
    /// order (a test clock may go back).
    #[test]
    fn the_body_of_a_second_is_that_seconds() {
        for unix in [
            1_700_000_000,
            1_700_000_000,
            1_700_000_001,
            1_700_000_000,
            0,
        ] {
            let expected = serde_json::to_vec(&CurrentTime::at(unix).unwrap()).unwrap();
            assert_eq!(CurrentTime::json_at(unix).unwrap(), expected, "{unix}");
        }
    }
}
