//! Request bodies and parameters: read under a limit, and refused in the caller's terms.
//!
//! A leaf among the server's modules: it uses only `error`. Every refusal is an [`ApiError`]
//! whose detail names the field (`rounds: expected an integer from 0 to 4294967295, not a
//! string`) and never a Rust type (`expected struct PrimeRequest`, `expected u32`).

use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::error::{PathError, QueryPayloadError};
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{FromRequest, HttpMessage, HttpRequest, mime, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The most bytes a request body may have, registered as app data (`web::Data` is not needed:
/// it is `Copy`). Without it, 16 KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

impl BodyLimit {
    /// The limit when none is registered.
    pub const DEFAULT: Self = Self(16 * 1024);

    fn of(req: &HttpRequest) -> usize {
        req.app_data::<Self>().copied().unwrap_or(Self::DEFAULT).0
    }
}

/// Reads a whole request body of at most `limit` bytes; a larger one is a 413 problem, read no
/// further.
pub async fn read_body(payload: &mut Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    use futures_util::StreamExt as _;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::BadRequest("the request body could not be read".into()))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!("the body is larger than the {limit}-byte limit"))
}

/// A JSON request body of `T` (the `Content-Type` must be `application/json` or end in
/// `+json`), at most [`BodyLimit`] bytes. A body over the limit is refused by its
/// `Content-Length` before any of it is read.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    /// The deserialized body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = BodyLimit::of(req);
        let checked = json_content_type(req).and_then(|()| declared_length(req, limit));
        let mut payload = payload.take();
        Box::pin(async move {
            checked?;
            let body = read_body(&mut payload, limit).await?;
            parse_json(&body).map(Self)
        })
    }
}

/// A JSON body that may be left out. An empty body is `None`; any other body must be valid
/// JSON of `T`, or the request is refused as with [`Json`]. (actix's `Option<Json<T>>` would
/// silently treat a bad body as no body.) No `Content-Type` is required.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = BodyLimit::of(req);
        let mime = req.mime_type().ok().flatten();
        let checked = read_as_sent(req, mime.as_ref()).and_then(|()| declared_length(req, limit));
        let mut payload = payload.take();
        Box::pin(async move {
            checked?;
            let body = read_body(&mut payload, limit).await?;
            if body.is_empty() {
                return Ok(Self(None));
            }
            parse_json(&body).map(|value| Self(Some(value)))
        })
    }
}

fn json_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    let mime = req.mime_type().ok().flatten();
    let json = mime
        .as_ref()
        .is_some_and(|mime| mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON));
    if !json {
        return Err(ApiError::BadRequest(
            "expected Content-Type: application/json".to_owned(),
        ));
    }
    read_as_sent(req, mime.as_ref())
}

/// Refuses a body declared (by `mime`, its `Content-Type`) in a charset other than UTF-8 or its
/// subset US-ASCII, which would be misread (JSON is UTF-8, RFC 8259), or sent with a
/// `Content-Encoding` other than `identity` (gzip, br, ...), which would be misread as malformed
/// JSON: the server reads bodies as sent.
fn read_as_sent(req: &HttpRequest, mime: Option<&mime::Mime>) -> Result<(), ApiError> {
    let charset = mime.and_then(|mime| mime.get_param(mime::CHARSET));
    if charset.is_some_and(|charset| {
        !["utf-8", "utf8", "us-ascii", "ascii"]
            .iter()
            .any(|utf8| charset.as_str().eq_ignore_ascii_case(utf8))
    }) {
        return Err(ApiError::BadRequest(
            "expected a UTF-8 body: Content-Type may name charset=utf-8 or none".to_owned(),
        ));
    }
    let coded = req
        .headers()
        .get_all(actix_web::http::header::CONTENT_ENCODING)
        .any(|coding| {
            !coding
                .as_bytes()
                .trim_ascii()
                .eq_ignore_ascii_case(b"identity")
        });
    if coded {
        return Err(ApiError::BadRequest(
            "request bodies are read as sent: Content-Encoding is not accepted".to_owned(),
        ));
    }
    Ok(())
}

fn declared_length(req: &HttpRequest, limit: usize) -> Result<(), ApiError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => Err(too_large(limit)),
        _ => Ok(()),
    }
}

/// `body` as JSON of `T`, every refusal a 400 that says where and what, in JSON's terms.
/// Every body this server reads is a JSON object: serde would read a struct from an array of
/// its fields' values in order (`[null, null]`), which the documents do not allow, so an array
/// is refused before it is read.
///
/// # Errors
/// [`ApiError::BadRequest`] for an empty or truncated body, malformed JSON, an array, or JSON
/// of the wrong shape.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.trim_ascii_start().starts_with(b"[") {
        return Err(ApiError::BadRequest(
            "the body: expected an object, not an array".to_owned(),
        ));
    }
    let mut reader = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut reader).map_err(|error| {
        let path = error.path().to_string();
        refusal(&path, &error.into_inner())
    })?;
    reader.end().map_err(|error| refusal(".", &error))?;
    Ok(value)
}

/// The 400 for `error` at `path` (`.` for the whole body).
fn refusal(path: &str, error: &serde_json::Error) -> ApiError {
    if error.is_eof() {
        return ApiError::BadRequest("the body is empty or truncated JSON".to_owned());
    }
    if error.is_syntax() {
        // serde_json counts these two among syntax errors; they are not malformed JSON.
        let message = error.to_string();
        let what = if message.starts_with("number out of range") {
            "a number too large for any field"
        } else if message.starts_with("recursion limit exceeded") {
            "JSON nested more than 128 levels deep"
        } else {
            "malformed JSON"
        };
        return ApiError::BadRequest(format!(
            "{what} at line {}, column {}",
            error.line(),
            error.column()
        ));
    }
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let message = message.strip_suffix(&suffix).unwrap_or(&message);
    if message.starts_with("unknown field") {
        // The path ends in the unknown field, which the message names already.
        let parent = path.rsplit_once('.').map_or(".", |(parent, _)| parent);
        let place = if parent == "." || parent.is_empty() {
            "the body"
        } else {
            parent
        };
        return ApiError::BadRequest(format!("{place}: {message}"));
    }
    let place = if path == "." { "the body" } else { path };
    ApiError::BadRequest(format!("{place}: {}", in_json_terms(message)))
}

/// serde's message with Rust's names for types replaced by JSON's.
fn in_json_terms(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((found, expected)) = message
            .strip_prefix(prefix)
            .and_then(|rest| rest.rsplit_once(", expected "))
        {
            let (expected, found) = (expected_kind(expected), found_kind(found));
            // `-1` for an unsigned integer is an integer all the same: the range says it.
            if expected.starts_with(found) {
                return format!("expected {expected}");
            }
            return format!("expected {expected}, not {found}");
        }
    }
    if let Some((before, expected)) = message.split_once(", expected ")
        && before.starts_with("invalid length")
    {
        // serde_json reads a struct from an array too, so an array where an object belongs
        // fails on its length.
        if expected.starts_with("struct ") {
            return "expected an object, not an array".to_owned();
        }
        return format!("{before}, expected {}", expected_kind(expected));
    }
    // `unknown field `x`, expected ...`, `missing field `x``, `unknown variant ...` and our own
    // messages already speak of the API's names.
    message.to_owned()
}

/// What serde's `Expected` text means in JSON.
fn expected_kind(expected: &str) -> String {
    let unsigned = [
        ("u8", u64::from(u8::MAX)),
        ("u16", u64::from(u16::MAX)),
        ("u32", u64::from(u32::MAX)),
        ("u64", u64::MAX),
        ("usize", usize::MAX as u64),
    ];
    if let Some((_, max)) = unsigned.iter().find(|(name, _)| *name == expected) {
        return format!("an integer from 0 to {max}");
    }
    match expected {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u128" => "an integer".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "a string" | "a borrowed string" | "a char" | "a character" => "a string".to_owned(),
        "a sequence" | "a tuple" => "an array".to_owned(),
        "a map" => "an object".to_owned(),
        _ if expected.starts_with("struct ") || expected.starts_with("tuple struct ") => {
            "an object".to_owned()
        }
        _ if expected.starts_with("a sequence") || expected.starts_with("an array") => {
            "an array".to_owned()
        }
        other => other.to_owned(),
    }
}

/// What serde's `Unexpected` text means in JSON, without the value itself.
fn found_kind(found: &str) -> &'static str {
    // serde_json reads an integer past 64 bits, and `-0`, as a double.
    if let Some(value) = found
        .strip_prefix("floating point `")
        .and_then(|rest| rest.strip_suffix('`'))
        .and_then(|value| value.parse::<f64>().ok())
        .filter(|value| value.fract() == 0.0)
    {
        return if value == 0.0 {
            "-0 or 0.0, which is not an integer"
        } else if value.abs() >= 2.0_f64.powi(64) {
            "an integer out of that range"
        } else {
            "a number with a decimal point or an exponent"
        };
    }
    let kinds = [
        ("boolean", "true or false"),
        ("integer", "an integer"),
        ("floating point", "a number with a fraction"),
        ("string", "a string"),
        ("character", "a string"),
        ("unit", "null"),
        ("sequence", "an array"),
        ("map", "an object"),
    ];
    kinds
        .iter()
        .find(|(prefix, _)| found.starts_with(prefix))
        .map_or("another value", |(_, kind)| kind)
}

/// A query string of `T`, refused with a 400 that names the parameter, as [`Json`] does.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    /// The deserialized query.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_query(req.query_string()).map(Self))
    }
}

/// `query` (without the `?`) as `T`.
///
/// # Errors
/// [`ApiError::BadRequest`] naming the parameter and what it should be.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(pairs).map_err(|error| {
        let path = error.path().to_string();
        let message = in_json_terms(&error.into_inner().to_string());
        // A value that does not parse as the parameter's type: the parser's own words (`invalid
        // float literal`) say less than the parameter's name.
        let message = message
            .replace("invalid float literal", "expected a number")
            .replace("invalid digit found in string", "expected an integer");
        if message.starts_with("missing field") || path == "." {
            ApiError::BadRequest(format!("invalid query string: {message}"))
        } else {
            ApiError::BadRequest(format!("invalid query string: {path}: {message}"))
        }
    })
}

/// Turns query string errors into problem bodies.
pub fn query_error(error: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    let detail = match &error {
        QueryPayloadError::Deserialize(e) => in_json_terms(&e.to_string()),
        _ => "it could not be read".to_owned(),
    };
    ApiError::BadRequest(format!("invalid query string: {detail}")).into()
}

/// Turns path parameter errors into problem bodies.
pub fn path_error(error: PathError, _: &HttpRequest) -> actix_web::Error {
    let detail = match &error {
        PathError::Deserialize(e) => in_json_terms(&e.to_string()),
        _ => "it could not be read".to_owned(),
    };
    ApiError::BadRequest(format!("invalid path: {detail}")).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only deserialized")]
    struct Body {
        number: u64,
        rounds: Option<u32>,
        name: Option<String>,
        tags: Option<Vec<String>>,
    }

    fn detail(json: &str) -> String {
        match parse_json::<Body>(json.as_bytes()) {
            Err(ApiError::BadRequest(detail)) => detail,
            other => panic!("{json}: {other:?}"),
        }
    }

    #[test]
    fn details_name_the_field_and_json_kinds_never_rust_types() {
        assert_eq!(
            detail(r#"{"number": 1, "rounds": "many"}"#),
            "rounds: expected an integer from 0 to 4294967295, not a string"
        );
        assert_eq!(
            detail(r#"{"number": -1}"#),
            "number: expected an integer from 0 to 18446744073709551615"
        );
        assert_eq!(detail("[1]"), "the body: expected an object, not an array");
        // An array as long as the struct has fields is refused too, not read field by field.
        assert_eq!(
            detail(" [97, 2, null, null]"),
            "the body: expected an object, not an array"
        );
        assert_eq!(detail("7"), "the body: expected an object, not an integer");
        assert_eq!(
            detail(r#"{"number": 1, "name": 5}"#),
            "name: expected a string, not an integer"
        );
        assert_eq!(
            detail(r#"{"number": 1, "tags": [true]}"#),
            "tags[0]: expected a string, not true or false"
        );
        assert_eq!(
            detail(r#"{"number": 1, "tags": {}}"#),
            "tags: expected an array, not an object"
        );
        assert_eq!(
            detail(r#"{"numbr": 1}"#),
            "the body: unknown field `numbr`, expected one of `number`, `rounds`, `name`, `tags`"
        );
        assert_eq!(detail("{}"), "the body: missing field `number`");
        // Integers past 64 bits and `-0`, which serde_json reads as doubles, and numbers or
        // nesting past its limits, which it counts as syntax errors.
        assert_eq!(
            detail(r#"{"number": 18446744073709551616}"#),
            "number: expected an integer from 0 to 18446744073709551615, not an integer out of \
             that range"
        );
        assert_eq!(
            detail(r#"{"number": 1, "rounds": -0}"#),
            "rounds: expected an integer from 0 to 4294967295, not -0 or 0.0, which is not an \
             integer"
        );
        assert_eq!(
            detail(r#"{"number": 1, "rounds": 5.0}"#),
            "rounds: expected an integer from 0 to 4294967295, not a number with a decimal point \
             or an exponent"
        );
        assert_eq!(
            detail(r#"{"number": 1e400}"#),
            "a number too large for any field at line 1, column 16"
        );
        let deep = r#"{"a": "#.repeat(200);
        let nested = parse_json::<serde_json::Value>(deep.as_bytes()).unwrap_err();
        assert!(
            nested
                .to_string()
                .starts_with("JSON nested more than 128 levels deep at line 1"),
            "{nested}"
        );
        for json in [
            r#"{"number": 1, "rounds": "many"}"#,
            "[1]",
            r#"{"number": null}"#,
        ] {
            let detail = detail(json);
            for rust in ["struct", "u32", "u64", "Body", "unit value"] {
                assert!(!detail.contains(rust), "{json}: {detail}");
            }
        }
    }

    #[test]
    fn syntax_and_truncation_are_told_apart() {
        assert_eq!(detail(""), "the body is empty or truncated JSON");
        assert_eq!(
            detail(r#"{"number": 7"#),
            "the body is empty or truncated JSON"
        );
        assert_eq!(
            detail(r#"{"number": 7} x"#),
            "malformed JSON at line 1, column 15"
        );
        assert_eq!(detail("{number: 7}"), "malformed JSON at line 1, column 2");
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code, reason = "only deserialized")]
    struct Params {
        lat: Option<f64>,
        days: Option<u32>,
        city: String,
    }

    #[test]
    fn query_parameters_are_named_too() {
        let detail = |query: &str| match parse_query::<Params>(query) {
            Err(ApiError::BadRequest(detail)) => detail,
            other => panic!("{query}: {other:?}"),
        };
        assert!(parse_query::<Params>("city=Oslo&lat=59.9").is_ok());
        assert_eq!(
            detail("city=Oslo&lat=abc"),
            "invalid query string: lat: expected a number"
        );
        assert_eq!(
            detail("city=Oslo&days=-3"),
            "invalid query string: days: expected an integer"
        );
        assert_eq!(
            detail("lat=1"),
            "invalid query string: missing field `city`"
        );
    }

    #[test]
    fn a_value_is_never_echoed() {
        let detail = detail(r#"{"number": 1, "name": 123456789}"#);
        assert!(!detail.contains("123456789"), "{detail}");
    }
}
