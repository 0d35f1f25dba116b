//! Signing an `awc` client request (feature `awc`).

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::rfc9421::{Message, MessageSigner};
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

/// Signs `request` for `body` with RFC 9421 and adds `Content-Digest` (for a body),
/// `Signature-Input` and `Signature` to it.
///
/// Send exactly `body` afterwards (`request.send_body(body)`): the signature covers it.
///
/// # Errors
/// [`Error::InvalidRequest`] for a URI without a host, and as [`MessageSigner::sign`].
pub fn sign_awc_message<C: Clock>(
    signer: &MessageSigner<C>,
    request: awc::ClientRequest,
    body: &[u8],
) -> Result<awc::ClientRequest> {
    let signed = {
        let uri = request.get_uri();
        let authority = uri.authority().ok_or(Error::InvalidRequest {
            part: "target",
            reason: "the URI has no host",
        })?;
        let target = uri
            .path_and_query()
            .map_or("/", awc::http::uri::PathAndQuery::as_str);
        let headers: Vec<(&str, &[u8])> = request
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        let message = Message::new(request.get_method().as_str(), target, &headers, body)?
            .with_scheme(uri.scheme_str().unwrap_or("http"))
            .with_authority(authority.as_str());
        signer.sign(&message)?
    };
    Ok(signed.iter().fold(request, |req, (name, value)| {
        req.insert_header((name, value.to_owned()))
    }))
}
