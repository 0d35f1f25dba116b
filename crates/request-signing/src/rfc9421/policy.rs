//! What an RFC 9421 signature must cover to be accepted.

use crate::error::{Error, Result};
use crate::rfc9421::parse::SignatureParams;
use crate::rfc9421::supported_component;

/// The verifier's requirements on an RFC 9421 signature.
///
/// By default a signature must cover `@method`, the target (`@target-uri`, or `@authority`
/// with `@path` and `@query`), and `content-digest` when the request has a body, and must
/// carry a `nonce` (it goes into the replay cache). A signature that covers less is refused
/// with [`Error::CoverageTooNarrow`], naming what is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePolicy {
    method: bool,
    target: bool,
    content_digest: bool,
    nonce: bool,
    required: Vec<String>,
    label: Option<String>,
}

impl Default for MessagePolicy {
    fn default() -> Self {
        Self {
            method: true,
            target: true,
            content_digest: true,
            nonce: true,
            required: Vec::new(),
            label: None,
        }
    }
}

impl MessagePolicy {
    /// A builder starting from the default requirements.
    pub fn builder() -> MessagePolicyBuilder {
        MessagePolicyBuilder {
            policy: Self::default(),
        }
    }

    /// Requires nothing but a valid signature within the time window: no component, no
    /// nonce. For checking published test vectors; a signature with no nonce is kept in the
    /// replay cache by its bytes.
    #[must_use]
    pub fn permissive() -> Self {
        Self {
            method: false,
            target: false,
            content_digest: false,
            nonce: false,
            required: Vec::new(),
            label: None,
        }
    }

    /// Whether a signature without a `nonce` is refused.
    #[must_use]
    pub fn requires_nonce(&self) -> bool {
        self.nonce
    }

    /// The one label looked at, when set.
    #[must_use]
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// Checks that `params` covers what this policy requires of a request with or without a
    /// body.
    ///
    /// # Errors
    /// [`Error::CoverageTooNarrow`] naming the first requirement not met;
    /// [`Error::MalformedHeader`] when a nonce is required and absent.
    pub fn check(&self, params: &SignatureParams, has_body: bool) -> Result<()> {
        let narrow = |missing| Err(Error::CoverageTooNarrow { missing });
        if self.method && !params.covers("@method") {
            return narrow("@method");
        }
        if self.target
            && !params.covers("@target-uri")
            && !(params.covers("@authority") && params.covers("@path") && params.covers("@query"))
        {
            return narrow("@target-uri (or @authority, @path and @query)");
        }
        if self.content_digest && has_body && !params.covers("content-digest") {
            return narrow("content-digest");
        }
        if !self.required.iter().all(|c| params.covers(c)) {
            return narrow("a component this server requires");
        }
        if self.nonce && params.nonce().is_none() {
            return Err(Error::MalformedHeader {
                header: "Signature-Input",
                reason: "no nonce parameter",
            });
        }
        Ok(())
    }
}

/// Builds a [`MessagePolicy`]; see its docs for the defaults.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct MessagePolicyBuilder {
    policy: MessagePolicy,
}

impl MessagePolicyBuilder {
    /// Whether `@method` must be covered (default true).
    pub fn require_method(mut self, required: bool) -> Self {
        self.policy.method = required;
        self
    }

    /// Whether the target must be covered (default true).
    pub fn require_target(mut self, required: bool) -> Self {
        self.policy.target = required;
        self
    }

    /// Whether `content-digest` must be covered when the request has a body (default true).
    pub fn require_content_digest(mut self, required: bool) -> Self {
        self.policy.content_digest = required;
        self
    }

    /// Whether a `nonce` parameter is required (default true).
    pub fn require_nonce(mut self, required: bool) -> Self {
        self.policy.nonce = required;
        self
    }

    /// Also requires `component` (a header field such as `content-type`, or a derived one).
    pub fn require(mut self, component: impl Into<String>) -> Self {
        self.policy.required.push(component.into());
        self
    }

    /// Looks only at the signature labelled `label` (default: the first of the request's
    /// signatures that verifies).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.policy.label = Some(label.into());
        self
    }

    /// The policy.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] for a required component this crate cannot compute, or a
    /// label that is not a structured-field key.
    pub fn build(self) -> Result<MessagePolicy> {
        if !self.policy.required.iter().all(|c| supported_component(c)) {
            return Err(Error::InvalidRequest {
                part: "policy",
                reason: "a required component is not one this crate computes",
            });
        }
        let label_ok = self
            .policy
            .label
            .as_deref()
            .is_none_or(|label| sfv::KeyRef::from_str(label).is_ok());
        if !label_ok {
            return Err(Error::InvalidRequest {
                part: "policy",
                reason: "the label is not a structured-field key",
            });
        }
        Ok(self.policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rfc9421::parse_signatures;

    fn params(components: &str, extra: &str) -> SignatureParams {
        let input = format!("s=({components});created=1{extra}");
        parse_signatures(input.as_bytes(), b"s=:AA==:")
            .unwrap()
            .remove(0)
    }

    #[test]
    fn the_default_names_what_is_missing() {
        let policy = MessagePolicy::default();
        let n = r#";nonce="0123456789abcdef""#;
        let full = params(r#""@method" "@target-uri" "content-digest""#, n);
        policy.check(&full, true).unwrap();
        let split = params(r#""@method" "@authority" "@path" "@query""#, n);
        policy.check(&split, false).unwrap();
        let cases = [
            (params(r#""@target-uri""#, n), false, "@method"),
            (params(r#""@method" "@path""#, n), false, "@target-uri"),
            (split.clone(), true, "content-digest"),
        ];
        for (p, body, missing) in cases {
            match policy.check(&p, body) {
                Err(Error::CoverageTooNarrow { missing: m }) => assert!(m.starts_with(missing)),
                other => panic!("{other:?}"),
            }
        }
        let no_nonce = params(r#""@method" "@target-uri""#, "");
        assert!(matches!(
            policy.check(&no_nonce, false),
            Err(Error::MalformedHeader { .. })
        ));
        MessagePolicy::permissive().check(&no_nonce, true).unwrap();
    }

    #[test]
    fn extra_requirements_and_build_checks() {
        let policy = MessagePolicy::builder()
            .require("content-type")
            .require_nonce(false)
            .build()
            .unwrap();
        let p = params(r#""@method" "@target-uri""#, "");
        assert!(policy.check(&p, false).is_err());
        assert!(
            MessagePolicy::builder()
                .require("Content-Type")
                .build()
                .is_err()
        );
        assert!(MessagePolicy::builder().label("Sig").build().is_err());
        assert_eq!(
            MessagePolicy::builder()
                .label("sig1")
                .build()
                .unwrap()
                .label(),
            Some("sig1")
        );
    }
}
