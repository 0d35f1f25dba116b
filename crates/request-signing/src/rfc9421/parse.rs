//! `Signature-Input` and `Signature` as structured fields (RFC 8941), parsed with `sfv`.

use core::fmt;

use sfv::{BareItem, Dictionary, InnerList, Item, ListEntry, ListSerializer, Parser};

use crate::canonical::MAX_SIGNATURES;
use crate::error::{Error, Result};
use crate::rfc9421::{HEADER_SIGNATURE, HEADER_SIGNATURE_INPUT, supported_component};

/// Longest `Signature-Input` or `Signature` value accepted, in bytes.
pub const MAX_FIELD_LEN: usize = 8192;
/// Most components one signature may cover.
pub const MAX_COMPONENTS: usize = 32;

/// One signature a request claims: its label, covered components and parameters, and the
/// signature bytes, as parsed from `Signature-Input` and `Signature`. Nothing is verified yet.
///
/// `Debug` shows the key id as `[redacted]` (a server may accept an API key as key id).
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureParams {
    label: String,
    components: Vec<String>,
    created: Option<u64>,
    expires: Option<u64>,
    nonce: Option<String>,
    keyid: Option<String>,
    alg: Option<String>,
    tag: Option<String>,
    serialized: String,
    signature: Vec<u8>,
}

impl SignatureParams {
    /// The label (the dictionary key in both fields), e.g. `sig1`.
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The covered components, in order (`@method`, `content-digest`, ...).
    #[must_use]
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// Whether `component` is covered.
    #[must_use]
    pub fn covers(&self, component: &str) -> bool {
        self.components.iter().any(|c| c == component)
    }

    /// `created`, Unix seconds.
    #[must_use]
    pub fn created(&self) -> Option<u64> {
        self.created
    }

    /// `expires`, Unix seconds.
    #[must_use]
    pub fn expires(&self) -> Option<u64> {
        self.expires
    }

    /// `nonce`.
    #[must_use]
    pub fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }

    /// `keyid`.
    #[must_use]
    pub fn keyid(&self) -> Option<&str> {
        self.keyid.as_deref()
    }

    /// `alg`, as sent (it may name an algorithm this crate does not know).
    #[must_use]
    pub fn alg(&self) -> Option<&str> {
        self.alg.as_deref()
    }

    /// `tag`.
    #[must_use]
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The `@signature-params` value: the inner list and its parameters, serialized.
    #[must_use]
    pub fn serialized(&self) -> &str {
        &self.serialized
    }

    /// The signature bytes.
    #[must_use]
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The parameters a signer sends, before it has a signature.
    pub(crate) fn for_signing(
        label: &str,
        components: Vec<String>,
        params: Vec<(&str, BareItem)>,
    ) -> Result<Self> {
        let invalid = |reason| Error::InvalidRequest {
            part: "signature parameters",
            reason,
        };
        let mut inner = InnerList::new(
            components
                .iter()
                .map(|c| {
                    sfv::String::from_string(c.clone())
                        .map(Item::new)
                        .map_err(|_| invalid("a component name is not a string"))
                })
                .collect::<Result<_>>()?,
        );
        for (name, value) in params {
            let key = sfv::Key::from_string(name.to_owned())
                .map_err(|_| invalid("a parameter name is not a key"))?;
            inner.params.insert(key, value);
        }
        let mut out = from_inner_list(label.to_owned(), &inner, Vec::new())?;
        out.components = components;
        Ok(out)
    }
}

impl fmt::Debug for SignatureParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureParams")
            .field("label", &self.label)
            .field("components", &self.components)
            .field("created", &self.created)
            .field("expires", &self.expires)
            .field("nonce", &self.nonce)
            .field("keyid", &self.keyid.as_ref().map(|_| "[redacted]"))
            .field("alg", &self.alg)
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

fn malformed(header: &'static str, reason: &'static str) -> Error {
    Error::MalformedHeader { header, reason }
}

fn dictionary(header: &'static str, value: &[u8]) -> Result<Dictionary> {
    if value.len() > MAX_FIELD_LEN {
        return Err(malformed(header, "longer than 8192 bytes"));
    }
    Parser::new(value)
        .parse::<Dictionary>()
        .map_err(|_| malformed(header, "not a structured field dictionary"))
}

/// The signatures a request claims, in `Signature-Input` order: each label's components and
/// parameters, with its bytes from `Signature`. Only the form is checked, nothing is verified.
///
/// # Errors
/// [`Error::MalformedHeader`] when either field is not a dictionary (RFC 8941), holds more
/// than 8 signatures, or when a signature has a component this crate cannot compute, a
/// component twice, a component parameter, a parameter of the wrong type, or no bytes in
/// `Signature`.
pub fn parse_signatures(signature_input: &[u8], signature: &[u8]) -> Result<Vec<SignatureParams>> {
    const INPUT: &str = HEADER_SIGNATURE_INPUT;
    let inputs = dictionary(INPUT, signature_input)?;
    let signatures = dictionary(HEADER_SIGNATURE, signature)?;
    if inputs.is_empty() {
        return Err(malformed(INPUT, "no signature"));
    }
    if inputs.len() > MAX_SIGNATURES {
        return Err(malformed(INPUT, "more than 8 signatures"));
    }
    inputs
        .iter()
        .map(|(label, entry)| {
            let ListEntry::InnerList(inner) = entry else {
                return Err(malformed(INPUT, "a member is not an inner list"));
            };
            let bytes = match signatures.get(label) {
                Some(ListEntry::Item(Item {
                    bare_item: BareItem::ByteSequence(bytes),
                    ..
                })) => bytes.clone(),
                Some(_) => {
                    return Err(malformed(
                        HEADER_SIGNATURE,
                        "a member is not a byte sequence",
                    ));
                }
                None => return Err(malformed(HEADER_SIGNATURE, "a label has no signature")),
            };
            from_inner_list(label.as_str().to_owned(), inner, bytes)
        })
        .collect()
}

fn from_inner_list(
    label: String,
    inner: &InnerList,
    signature: Vec<u8>,
) -> Result<SignatureParams> {
    const INPUT: &str = HEADER_SIGNATURE_INPUT;
    if inner.items.len() > MAX_COMPONENTS {
        return Err(malformed(INPUT, "more than 32 components"));
    }
    let mut components: Vec<String> = Vec::with_capacity(inner.items.len());
    for item in &inner.items {
        let BareItem::String(name) = &item.bare_item else {
            return Err(malformed(INPUT, "a component is not a string"));
        };
        if !item.params.is_empty() {
            return Err(malformed(INPUT, "component parameters are not supported"));
        }
        let name = name.as_str();
        if !supported_component(name) {
            return Err(malformed(
                INPUT,
                "a component is not one this server computes",
            ));
        }
        if components.iter().any(|c| c == name) {
            return Err(malformed(INPUT, "a component is covered twice"));
        }
        components.push(name.to_owned());
    }
    let mut params = SignatureParams {
        label,
        components,
        created: None,
        expires: None,
        nonce: None,
        keyid: None,
        alg: None,
        tag: None,
        serialized: String::new(),
        signature,
    };
    for (name, value) in &inner.params {
        let time = || match value {
            BareItem::Integer(i) => u64::try_from(i64::from(*i))
                .map_err(|_| malformed(INPUT, "created or expires is negative")),
            _ => Err(malformed(INPUT, "created or expires is not an integer")),
        };
        let text = || match value {
            BareItem::String(s) => Ok(s.as_str().to_owned()),
            _ => Err(malformed(INPUT, "nonce, keyid, alg or tag is not a string")),
        };
        match name.as_str() {
            "created" => params.created = Some(time()?),
            "expires" => params.expires = Some(time()?),
            "nonce" => params.nonce = Some(text()?),
            "keyid" => params.keyid = Some(text()?),
            "alg" => params.alg = Some(text()?),
            "tag" => params.tag = Some(text()?),
            // Parameters this crate does not know are signed all the same.
            _ => {}
        }
    }
    let mut list = ListSerializer::new();
    list.members([&ListEntry::InnerList(inner.clone())]);
    params.serialized = list
        .finish()
        .ok_or(malformed(INPUT, "a member cannot be serialized"))?;
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUT: &[u8] = br#"sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret""#;
    const SIGNATURE: &[u8] = b"sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:";

    #[test]
    fn parses_the_rfc_example_and_serializes_it_as_sent() {
        let parsed = parse_signatures(INPUT, SIGNATURE).unwrap();
        assert_eq!(parsed.len(), 1);
        let p = &parsed[0];
        assert_eq!(p.label(), "sig-b25");
        assert_eq!(p.components(), ["date", "@authority", "content-type"]);
        assert_eq!(p.created(), Some(1_618_884_473));
        assert_eq!(p.keyid(), Some("test-shared-secret"));
        assert_eq!(p.signature().len(), 32);
        assert_eq!(p.serialized().as_bytes(), &INPUT[8..]);
        assert!(!format!("{p:?}").contains("test-shared-secret"));
    }

    #[test]
    fn refuses_what_it_cannot_verify() {
        let cases: [(&[u8], &[u8]); 10] = [
            (b"sig1=(", SIGNATURE),
            (b"sig1=\"x\"", b"sig1=:AA==:"),
            (b"sig1=(\"@status\");created=1", b"sig1=:AA==:"),
            (b"sig1=(\"date\" \"date\");created=1", b"sig1=:AA==:"),
            (b"sig1=(\"date\";sf);created=1", b"sig1=:AA==:"),
            (b"sig1=(\"Date\");created=1", b"sig1=:AA==:"),
            (b"sig1=(\"date\");created=-1", b"sig1=:AA==:"),
            (b"sig1=(\"date\");keyid=1", b"sig1=:AA==:"),
            (b"sig1=(\"date\")", b"sig2=:AA==:"),
            (b"sig1=(\"date\")", b"sig1=\"AA==\""),
        ];
        for (input, signature) in cases {
            let err = parse_signatures(input, signature).unwrap_err();
            assert!(
                matches!(err, Error::MalformedHeader { .. }),
                "{}: {err}",
                String::from_utf8_lossy(input)
            );
        }
        let many: Vec<String> = (0..9).map(|i| format!("s{i}=()")).collect();
        let sigs: Vec<String> = (0..9).map(|i| format!("s{i}=:AA==:")).collect();
        assert!(parse_signatures(many.join(",").as_bytes(), sigs.join(",").as_bytes()).is_err());
        assert!(parse_signatures(&vec![b'a'; MAX_FIELD_LEN + 1], SIGNATURE).is_err());
        assert!(parse_signatures(b"", b"").is_err());
    }

    #[test]
    fn several_labels_keep_their_order() {
        let parsed = parse_signatures(
            br#"b=("@method");created=2, a=();created=1;nonce="n";alg="ed25519";tag="t";x=?1"#,
            b"a=:AA==:, b=:AQ==:",
        )
        .unwrap();
        assert_eq!(parsed[0].label(), "b");
        assert_eq!(parsed[1].label(), "a");
        assert_eq!(parsed[1].nonce(), Some("n"));
        assert_eq!(parsed[1].alg(), Some("ed25519"));
        assert_eq!(parsed[1].tag(), Some("t"));
        assert_eq!(
            parsed[1].serialized(),
            r#"();created=1;nonce="n";alg="ed25519";tag="t";x"#
        );
    }
}
