//! Signing a `reqwest` request in place (feature `reqwest`).

use reqwest::header::{HeaderName, HeaderValue};

use crate::clock::Clock;
use crate::error::{Error, Result};
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
    let body = match request.body() {
        None => &[][..],
        Some(body) => body.as_bytes().ok_or(Error::InvalidRequest {
            part: "body",
            reason: "a streaming body cannot be signed; buffer it into bytes first",
        })?,
    };
    let signed = signer.sign(request.method().as_str(), request.url().as_str(), body)?;
    for (name, value) in signed.iter() {
        let invalid = || Error::InvalidRequest {
            part: "header",
            reason: "not a valid header",
        };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let value = HeaderValue::from_str(value).map_err(|_| invalid())?;
        request.headers_mut().insert(name, value);
    }
    Ok(())
}
