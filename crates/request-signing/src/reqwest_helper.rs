//! Signing a `reqwest` request in place (feature `reqwest`).

use reqwest::header::{HeaderName, HeaderValue};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::rfc9421::{Message, MessageSigner};
use crate::signer::Signer;

/// Signs `request` with `signer` (its method, URL and body as they will be sent) and adds the
/// signature headers to it, replacing any already there.
///
/// Build the request with `client.post(url).body(bytes).build()?`, sign it, then
/// `client.execute(request)`.
///
/// # Errors
/// [`Error::InvalidRequest`] for a streaming body (it cannot be read twice: buffer it into bytes
/// first), and as [`Signer::sign`].
pub fn sign_reqwest_request<C: Clock>(
    signer: &Signer<C>,
    request: &mut reqwest::Request,
) -> Result<()> {
    let body = buffered_body(request)?;
    let signed = signer.sign(request.method().as_str(), request.url().as_str(), body)?;
    insert(request.headers_mut(), signed.iter())
}

/// The body `request` will send, when it is in memory.
fn buffered_body(request: &reqwest::Request) -> Result<&[u8]> {
    match request.body() {
        None => Ok(&[]),
        Some(body) => body.as_bytes().ok_or(Error::InvalidRequest {
            part: "body",
            reason: "a streaming body cannot be signed; buffer it into bytes first",
        }),
    }
}

/// Signs `request` with RFC 9421 (its method, URL, headers and body as they will be sent) and
/// adds `Content-Digest` (for a body), `Signature-Input` and `Signature` to it, replacing any
/// already there.
///
/// # Errors
/// [`Error::InvalidRequest`] for a streaming body or a URL without a host, and as
/// [`MessageSigner::sign`].
pub fn sign_reqwest_message<C: Clock>(
    signer: &MessageSigner<C>,
    request: &mut reqwest::Request,
) -> Result<()> {
    let body = buffered_body(request)?;
    let url = request.url();
    let host = url.host_str().ok_or(Error::InvalidRequest {
        part: "target",
        reason: "the URL has no host",
    })?;
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let target = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let headers: Vec<(&str, &[u8])> = request
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    let message = Message::new(request.method().as_str(), &target, &headers, body)?
        .with_scheme(url.scheme())
        .with_authority(&authority);
    let signed = signer.sign(&message)?;
    insert(request.headers_mut(), signed.iter())
}

fn insert<'a>(
    headers: &mut reqwest::header::HeaderMap,
    fields: impl Iterator<Item = (&'static str, &'a str)>,
) -> Result<()> {
    for (name, value) in fields {
        let invalid = || Error::InvalidRequest {
            part: "header",
            reason: "not a valid header",
        };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let value = HeaderValue::from_str(value).map_err(|_| invalid())?;
        headers.insert(name, value);
    }
    Ok(())
}
