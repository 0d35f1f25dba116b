//! Signing an `awc` client request (feature `awc`).

use crate::clock::Clock;
use crate::error::Result;
use crate::signer::Signer;

/// Signs `request` for `body` with `signer` and adds the signature headers to it.
///
/// Send exactly `body` afterwards (`request.send_body(body)`): the signature covers it.
///
/// # Errors
/// As [`Signer::sign`].
pub fn sign_awc_request<C: Clock>(
    signer: &Signer<C>,
    request: awc::ClientRequest,
    body: &[u8],
) -> Result<awc::ClientRequest> {
    let target = request
        .get_uri()
        .path_and_query()
        .map_or("/", awc::http::uri::PathAndQuery::as_str)
        .to_owned();
    let method = request.get_method().as_str().to_owned();
    let headers = signer.sign(&method, &target, body)?;
    Ok(headers.iter().fold(request, |req, (name, value)| {
        req.insert_header((name, value.to_owned()))
    }))
}
