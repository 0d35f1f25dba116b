//! Reading the presented key from request headers, whatever the framework.

use core::fmt;

use crate::error::{Error, Result};

/// Longest header value read as a key; anything longer is refused unread.
pub const MAX_PRESENTED_LEN: usize = 256;

/// The header a key came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySource {
    /// `Authorization: <key>`, as the original Flask clients send it.
    RawAuthorization,
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// `X-API-Key: <key>`.
    XApiKey,
}

impl KeySource {
    /// A short label: `raw_authorization`, `bearer` or `x_api_key`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RawAuthorization => "raw_authorization",
            Self::Bearer => "bearer",
            Self::XApiKey => "x_api_key",
        }
    }
}

/// A key as the client presented it, not yet checked. `Debug` prints `[redacted]`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PresentedKey<'a> {
    key: &'a str,
    source: KeySource,
}

impl<'a> PresentedKey<'a> {
    /// The key text (a secret: hash it, never log it).
    #[must_use]
    pub const fn expose_secret(&self) -> &'a str {
        self.key
    }

    /// The header it came in.
    #[must_use]
    pub const fn source(&self) -> KeySource {
        self.source
    }
}

impl fmt::Debug for PresentedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresentedKey")
            .field("key", &"[redacted]")
            .field("source", &self.source)
            .finish()
    }
}

/// Reads the presented key through `header` (called with the lower-case names
/// `x-api-key` and `authorization`; return the first value's bytes).
///
/// The rules: `X-API-Key: <key>` wins when present; otherwise `Authorization: <key>` (the raw
/// form) or `Authorization: Bearer <key>` (any case of `Bearer`). Surrounding spaces are
/// trimmed. A value over [`MAX_PRESENTED_LEN`] bytes, one that is not visible ASCII, or another
/// authorization scheme (`Basic ...`) is refused without being read further.
///
/// ```
/// use apikey_gen::{Error, KeySource, presented_key};
///
/// let headers = [("authorization", "Bearer sk_live_abc")];
/// let get = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_bytes());
/// let key = presented_key(get)?;
/// assert_eq!((key.expose_secret(), key.source()), ("sk_live_abc", KeySource::Bearer));
/// assert_eq!(presented_key(|_| None), Err(Error::MissingKey));
/// # Ok::<(), Error>(())
/// ```
///
/// # Errors
/// [`Error::MissingKey`] when no header carries a key (or `Bearer` carries nothing);
/// [`Error::MalformedHeader`] as above.
pub fn presented_key<'a>(header: impl Fn(&str) -> Option<&'a [u8]>) -> Result<PresentedKey<'a>> {
    presented_key_of(|name| header(name).map_or(Found::Absent, Found::One))
}

/// What a request holds of one header field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found<'a> {
    /// No field of that name.
    Absent,
    /// One field, with this value.
    One(&'a [u8]),
    /// Two or more: a credential sent twice is refused, never one of them picked. (Only the
    /// middleware's lookups can tell.)
    #[cfg_attr(not(any(feature = "actix", feature = "tower")), allow(dead_code))]
    Several,
}

/// [`presented_key`] for a lookup that tells a field sent twice, as the middleware's does.
pub(crate) fn presented_key_of<'a>(header: impl Fn(&str) -> Found<'a>) -> Result<PresentedKey<'a>> {
    let twice = |name| Error::MalformedHeader { reason: name };
    let (value, source) = match header("x-api-key") {
        Found::One(value) => (value, KeySource::XApiKey),
        Found::Several => return Err(twice("X-API-Key sent more than once")),
        Found::Absent => match header("authorization") {
            Found::One(value) => (value, KeySource::RawAuthorization),
            Found::Several => return Err(twice("Authorization sent more than once")),
            Found::Absent => return Err(Error::MissingKey),
        },
    };
    if value.len() > MAX_PRESENTED_LEN {
        return Err(Error::MalformedHeader {
            reason: "longer than 256 bytes",
        });
    }
    // Byte by byte, in one pass each: this runs on every request (twice, when the caller asks
    // for the source too), and `str` patterns of chars decode each one.
    if !value.iter().all(|&b| is_blank(b) || b.is_ascii_graphic()) {
        return Err(Error::MalformedHeader {
            reason: "not visible ASCII",
        });
    }
    let text = trim_blanks(value);
    let (key, source) = match (source, text.iter().position(|&b| is_blank(b))) {
        (KeySource::RawAuthorization, Some(at)) => {
            if !text[..at].eq_ignore_ascii_case(b"bearer") {
                return Err(Error::MalformedHeader {
                    reason: "only the Bearer scheme carries a key",
                });
            }
            (trim_blanks(&text[at + 1..]), KeySource::Bearer)
        }
        (KeySource::RawAuthorization, None) if text.eq_ignore_ascii_case(b"bearer") => {
            return Err(Error::MissingKey);
        }
        (KeySource::XApiKey, Some(_)) => {
            return Err(Error::MalformedHeader {
                reason: "a key has no spaces",
            });
        }
        _ => (text, source),
    };
    if key.is_empty() {
        return Err(Error::MissingKey);
    }
    if key.iter().any(|&b| is_blank(b)) {
        return Err(Error::MalformedHeader {
            reason: "a key has no spaces",
        });
    }
    // Visible ASCII, so always UTF-8.
    let key = core::str::from_utf8(key).map_err(|_| Error::MalformedHeader {
        reason: "not visible ASCII",
    })?;
    Ok(PresentedKey { key, source })
}

/// A space or a tab: what separates a scheme from its key, and what a value is trimmed of.
const fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t')
}

/// `bytes` without leading and trailing blanks.
fn trim_blanks(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_blank(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_blank(b))
        .map_or(start, |last| last + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&'static str, &'static str)]) -> Result<(String, KeySource)> {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_bytes())
        };
        presented_key(get).map(|k| (k.expose_secret().to_owned(), k.source()))
    }

    #[test]
    fn keys_are_read_from_all_three_forms() {
        use KeySource::{Bearer, RawAuthorization, XApiKey};
        assert_eq!(
            read(&[("authorization", "sk_abc")]),
            Ok(("sk_abc".into(), RawAuthorization))
        );
        assert_eq!(
            read(&[("authorization", " BEARER  sk_abc ")]),
            Ok(("sk_abc".into(), Bearer))
        );
        assert_eq!(
            read(&[("x-api-key", "sk_abc")]),
            Ok(("sk_abc".into(), XApiKey))
        );
        // X-API-Key wins over Authorization.
        assert_eq!(
            read(&[("authorization", "other"), ("x-api-key", "sk_abc")]),
            Ok(("sk_abc".into(), XApiKey))
        );
    }

    #[test]
    fn absent_and_malformed_keys_are_told_apart() {
        for missing in [
            &[][..],
            &[("authorization", "")],
            &[("authorization", "Bearer ")],
            &[("authorization", "bearer")],
        ] {
            assert_eq!(read(missing), Err(Error::MissingKey), "{missing:?}");
        }
        let long: &'static str = Box::leak("a".repeat(257).into_boxed_str());
        for bad in [
            &[("authorization", "Basic dXNlcjpwYXNz")][..],
            &[("authorization", "Bearer a b")],
            &[("x-api-key", "a b")],
            &[("authorization", long)],
            &[("x-api-key", "k\u{e9}y")],
        ] {
            assert!(
                matches!(read(bad), Err(Error::MalformedHeader { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let key = PresentedKey {
            key: "sk_secret",
            source: KeySource::XApiKey,
        };
        assert!(!format!("{key:?}").contains("sk_secret"));
    }
}
