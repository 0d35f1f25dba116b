//! The request as RFC 9421 components see it, and the signature base (RFC 9421 §2.5).

use core::fmt;

use crate::error::{Error, Result};
use crate::rfc9421::parse::SignatureParams;

/// An HTTP request as RFC 9421's components see it: method, scheme, authority, path, query,
/// header fields and body.
///
/// `Debug` shows the method, the authority, the path and the header names, never a header
/// value (an `Authorization` header may be among them) nor the body.
#[derive(Clone, Copy)]
pub struct Message<'a> {
    method: &'a str,
    scheme: &'a str,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
    headers: &'a [(&'a str, &'a [u8])],
    body: &'a [u8],
}

impl<'a> Message<'a> {
    /// A request with `method`, `target` as sent (origin form `/path?query`, or an absolute
    /// `https://host/path?query`), its header fields (names in any case, one pair per field
    /// line) and its body.
    ///
    /// With an origin-form target the scheme is `http` (set it with
    /// [`with_scheme`](Self::with_scheme)) and the authority is the `Host` header's.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] for a target that is neither form.
    pub fn new(
        method: &'a str,
        target: &'a str,
        headers: &'a [(&'a str, &'a [u8])],
        body: &'a [u8],
    ) -> Result<Self> {
        let invalid = |reason| Error::InvalidRequest {
            part: "target",
            reason,
        };
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidRequest {
                part: "method",
                reason: "not a token",
            });
        }
        let target = target.split_once('#').map_or(target, |(t, _)| t);
        let (scheme, authority, rest) = if target.starts_with('/') {
            ("http", None, target)
        } else if let Some((scheme, after)) = target.split_once("://") {
            if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid("not an absolute URL"));
            }
            let end = after.find(['/', '?']).unwrap_or(after.len());
            let (authority, rest) = after.split_at(end);
            if authority.is_empty() {
                return Err(invalid("no authority"));
            }
            (scheme, Some(authority), rest)
        } else {
            return Err(invalid("neither /path nor an absolute URL"));
        };
        if !rest.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("not visible ASCII"));
        }
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        Ok(Self {
            method,
            scheme,
            authority,
            path,
            query,
            headers,
            body,
        })
    }

    /// The same request received over `scheme` (`https` behind TLS).
    #[must_use]
    pub fn with_scheme(mut self, scheme: &'a str) -> Self {
        self.scheme = scheme;
        self
    }

    /// The same request for `authority` (`host[:port]`), in place of the `Host` header.
    #[must_use]
    pub fn with_authority(mut self, authority: &'a str) -> Self {
        self.authority = Some(authority);
        self
    }

    /// The body.
    #[must_use]
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The header fields.
    #[must_use]
    pub fn headers(&self) -> &'a [(&'a str, &'a [u8])] {
        self.headers
    }

    /// The same request with other header fields (a signer adding `Content-Digest`).
    #[must_use]
    pub(crate) fn with_headers<'b>(&self, headers: &'b [(&'b str, &'b [u8])]) -> Message<'b>
    where
        'a: 'b,
    {
        Message { headers, ..*self }
    }

    /// The value of header field `name`: every field line of that name, trimmed, joined by
    /// `", "` (RFC 9421 §2.1); `None` when the request has none.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<Vec<u8>> {
        field_value(self.headers, name)
    }

    /// The authority as `@authority` has it: lower case, without the scheme's default port.
    fn authority(&self) -> Result<String> {
        let host = match self.authority {
            Some(authority) => authority.to_owned(),
            None => {
                let host = self.header("host").ok_or(Error::ComponentAbsent)?;
                String::from_utf8(host).map_err(|_| Error::MalformedHeader {
                    header: "Host",
                    reason: "not ASCII",
                })?
            }
        };
        let host = host.to_ascii_lowercase();
        let scheme = self.scheme.to_ascii_lowercase();
        let default = match scheme.as_str() {
            "http" => Some(":80"),
            "https" => Some(":443"),
            _ => None,
        };
        Ok(match default.and_then(|port| host.strip_suffix(port)) {
            Some(bare) => bare.to_owned(),
            None => host,
        })
    }

    /// The value of component `name` (RFC 9421 §2.1 and §2.2).
    ///
    /// # Errors
    /// [`Error::ComponentAbsent`] for a header field the request does not have,
    /// [`Error::MalformedHeader`] for a value with a line break.
    pub fn component(&self, name: &str) -> Result<Vec<u8>> {
        let path = if self.path.is_empty() { "/" } else { self.path };
        let query = self.query.unwrap_or("");
        let value = match name {
            "@method" => self.method.as_bytes().to_vec(),
            "@scheme" => self.scheme.to_ascii_lowercase().into_bytes(),
            "@authority" => self.authority()?.into_bytes(),
            "@path" => path.as_bytes().to_vec(),
            "@query" => format!("?{query}").into_bytes(),
            "@request-target" => match self.query {
                Some(query) => format!("{path}?{query}").into_bytes(),
                None => path.as_bytes().to_vec(),
            },
            "@target-uri" => {
                let mut uri = format!(
                    "{}://{}{path}",
                    self.scheme.to_ascii_lowercase(),
                    self.authority()?
                );
                if let Some(query) = self.query {
                    uri.push('?');
                    uri.push_str(query);
                }
                uri.into_bytes()
            }
            header => self.header(header).ok_or(Error::ComponentAbsent)?,
        };
        if value.iter().any(|&b| b == b'\r' || b == b'\n') {
            return Err(Error::MalformedHeader {
                header: "covered component",
                reason: "value has a line break",
            });
        }
        Ok(value)
    }
}

/// The value of header field `name` in `headers`: every field line of that name, trimmed,
/// joined by `", "` (RFC 9421 §2.1); `None` when there is none.
pub(crate) fn field_value(headers: &[(&str, &[u8])], name: &str) -> Option<Vec<u8>> {
    let mut lines = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, line)| trim_ows(line));
    let mut value = lines.next()?.to_vec();
    for line in lines {
        value.extend_from_slice(b", ");
        value.extend_from_slice(line);
    }
    Some(value)
}

/// `value` without leading and trailing spaces and tabs (HTTP's optional whitespace).
fn trim_ows(value: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !ows(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    &value[start..end]
}

impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("method", &self.method)
            .field("scheme", &self.scheme)
            .field("authority", &self.authority)
            .field("path", &self.path)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The signature base of `params` over `message` (RFC 9421 §2.5): one line per covered
/// component, `"name": value`, then `"@signature-params": ` and the parameters as sent.
///
/// # Errors
/// As [`Message::component`].
pub fn signature_base(message: &Message<'_>, params: &SignatureParams) -> Result<Vec<u8>> {
    let mut base = Vec::with_capacity(256);
    for name in params.components() {
        base.push(b'"');
        base.extend_from_slice(name.as_bytes());
        base.extend_from_slice(b"\": ");
        base.extend_from_slice(&message.component(name)?);
        base.push(b'\n');
    }
    base.extend_from_slice(b"\"@signature-params\": ");
    base.extend_from_slice(params.serialized().as_bytes());
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADERS: &[(&str, &[u8])] = &[
        ("Host", b"Example.com:443"),
        ("X-Multi", b" a "),
        ("x-multi", b"b\t"),
        ("x-empty", b""),
    ];

    fn message() -> Message<'static> {
        Message::new("POST", "/foo?param=Value&Pet=dog", HEADERS, b"{}")
            .unwrap()
            .with_scheme("https")
    }

    #[test]
    fn derived_components() {
        let m = message();
        let get = |name| String::from_utf8(m.component(name).unwrap()).unwrap();
        assert_eq!(get("@method"), "POST");
        assert_eq!(get("@authority"), "example.com");
        assert_eq!(get("@scheme"), "https");
        assert_eq!(get("@path"), "/foo");
        assert_eq!(get("@query"), "?param=Value&Pet=dog");
        assert_eq!(get("@request-target"), "/foo?param=Value&Pet=dog");
        assert_eq!(
            get("@target-uri"),
            "https://example.com/foo?param=Value&Pet=dog"
        );
    }

    #[test]
    fn header_lines_are_trimmed_and_joined() {
        let m = message();
        assert_eq!(m.component("x-multi").unwrap(), b"a, b");
        assert_eq!(m.component("x-empty").unwrap(), b"");
        assert!(matches!(m.component("date"), Err(Error::ComponentAbsent)));
    }

    #[test]
    fn absolute_targets_and_empty_parts() {
        let m = Message::new("GET", "http://h.example:8080", &[], b"").unwrap();
        assert_eq!(m.component("@authority").unwrap(), b"h.example:8080");
        assert_eq!(m.component("@path").unwrap(), b"/");
        assert_eq!(m.component("@query").unwrap(), b"?");
        for bad in ["relative", "://x/", "http:///p", "/a b"] {
            assert!(Message::new("GET", bad, &[], b"").is_err(), "{bad}");
        }
        assert!(Message::new("", "/", &[], b"").is_err());
    }

    #[test]
    fn line_breaks_are_refused_and_debug_hides_values() {
        let headers: &[(&str, &[u8])] = &[("authorization", b"secret\nvalue")];
        let m = Message::new("GET", "/", headers, b"").unwrap();
        assert!(m.component("authorization").is_err());
        assert!(!format!("{m:?}").contains("secret"));
    }
}
