//! JWT access and refresh tokens: HS256 with a subkey of the server secret.
//!
//! The algorithm is pinned (a token whose header says `none`, `HS512` or an RSA algorithm is
//! refused), `exp` is required, and expiry is checked against the injected clock with no
//! leeway. Every token has a random `jti`, so a single token can be revoked (logout) until it
//! expires, and a `fam`, the login it belongs to, so a family is revoked at once. Access and
//! refresh tokens carry a `typ` claim and are not interchangeable. The header's `kid` names the
//! key that signed, current or fallback.
//!
//! A leaf module: it uses no other module of the server. The fuzz crate compiles this file by
//! path (`fuzz/fuzz_targets/jwt.rs`), so that its sanitizer build needs none of the server's
//! other dependencies (the database drivers, TLS, Redis).

use std::fmt;
use std::time::Duration;

use actix_web::http::header::{AUTHORIZATION, HeaderMap};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The token part of `Authorization: Bearer <token>`, if the header has that form: the
/// scheme in any case, then one space, then the token trimmed of spaces. `None` when the field
/// is sent twice: neither value is picked.
#[must_use]
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(AUTHORIZATION);
    let value = values.next()?.to_str().ok()?;
    if values.next().is_some() {
        return None;
    }
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Short-lived, sent as `Authorization: Bearer` to protected endpoints.
    Access,
    /// Long-lived, exchanged at `/refresh` for a new access token.
    Refresh,
}

/// The claims of every token this server issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The username, for display.
    pub name: String,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Expires at (unix seconds).
    pub exp: i64,
    /// Unique token id, the handle for revocation.
    pub jti: String,
    /// Access or refresh.
    pub typ: TokenKind,
    /// The token family: every token issued from one login, through its refreshes, shares it,
    /// so that logout or a reused refresh token revokes them all. Tokens issued before families
    /// existed have none and are their own family.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fam: String,
}

impl Claims {
    /// The handle that revokes this token's whole family.
    #[must_use]
    pub fn family(&self) -> &str {
        if self.fam.is_empty() {
            &self.jti
        } else {
            &self.fam
        }
    }
}

/// Why a token was refused. All of them answer 401; the reason is for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a well-formed JWT, or a bad signature, or a forbidden algorithm.
    #[error("invalid token")]
    Invalid,
    /// Past its `exp`.
    #[error("token expired")]
    Expired,
    /// An access token where a refresh token was expected, or the reverse.
    #[error("wrong token type")]
    WrongKind,
    /// Issuing failed (should not happen with an HMAC key).
    #[error("token could not be issued")]
    Issue,
}

/// Issues and checks tokens: signs with the current key, naming it in the header's `kid`, and
/// verifies with the key the `kid` names, the current one or a fallback (after the server
/// secret was rotated). A token without a `kid` (issued before tokens had one) is tried
/// against every key.
pub struct Tokens {
    kid: String,
    encoding: EncodingKey,
    /// The current key first, then the fallbacks, each with its `kid`.
    decoding: Vec<(String, DecodingKey)>,
    validation: Validation,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("kid", &self.kid)
            .field("key", &"[redacted]")
            .field("fallbacks", &(self.decoding.len() - 1))
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .finish()
    }
}

/// A freshly issued token and its claims.
#[derive(Debug)]
pub struct Issued {
    /// The encoded JWT.
    pub token: String,
    /// What it says.
    pub claims: Claims,
}

impl Tokens {
    /// Tokens signed with `key` (at least 32 bytes: a derived subkey, never the master secret),
    /// named `kid` in their header.
    #[must_use]
    pub fn new(kid: &str, key: &[u8], access_ttl: Duration, refresh_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against the injected clock in `verify`, with no leeway.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iat", "sub", "jti"]);
        Self {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_secret(key),
            decoding: vec![(kid.to_owned(), DecodingKey::from_secret(key))],
            validation,
            access_ttl,
            refresh_ttl,
        }
    }

    /// Also verifies tokens signed with `key` (of a rotated-out server secret), named `kid`.
    #[must_use]
    pub fn with_fallback(mut self, kid: &str, key: &[u8]) -> Self {
        self.decoding
            .push((kid.to_owned(), DecodingKey::from_secret(key)));
        self
    }

    /// How long access tokens live.
    #[must_use]
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// How long refresh tokens live, and so a token family after its last refresh.
    #[must_use]
    pub fn refresh_ttl(&self) -> Duration {
        self.refresh_ttl
    }

    /// A new, random family id, for the tokens of one login.
    #[must_use]
    pub fn new_family() -> String {
        random_id("fam_")
    }

    /// Issues a token of `kind` in `family` for the user, valid from `now`.
    pub fn issue(
        &self,
        user_id: &str,
        username: &str,
        kind: TokenKind,
        family: &str,
        now: i64,
    ) -> Result<Issued, TokenError> {
        let ttl = match kind {
            TokenKind::Access => self.access_ttl,
            TokenKind::Refresh => self.refresh_ttl,
        };
        let claims = Claims {
            sub: user_id.to_owned(),
            name: username.to_owned(),
            iat: now,
            exp: now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
            jti: random_id(""),
            typ: kind,
            fam: family.to_owned(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|_| TokenError::Issue)?;
        Ok(Issued { token, claims })
    }

    /// The claims of `token` if it is ours, unexpired at `now`, and of `kind`.
    pub fn verify(&self, token: &str, kind: TokenKind, now: i64) -> Result<Claims, TokenError> {
        let kid = jsonwebtoken::decode_header(token)
            .map_err(|_| TokenError::Invalid)?
            .kid;
        let claims = self
            .decoding
            .iter()
            .filter(|(id, _)| kid.as_ref().is_none_or(|kid| kid == id))
            .find_map(|(_, key)| jsonwebtoken::decode::<Claims>(token, key, &self.validation).ok())
            .ok_or(TokenError::Invalid)?
            .claims;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        if claims.typ != kind {
            return Err(TokenError::WrongKind);
        }
        Ok(claims)
    }
}

/// `prefix` and 128 random bits in hex.
fn random_id(prefix: &str) -> String {
    let mut id = [0u8; 16];
    rand::fill(&mut id);
    format!("{prefix}{}", hex::encode(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef-test-only-key";

    fn tokens() -> Tokens {
        Tokens::new(
            "k1",
            KEY,
            Duration::from_secs(900),
            Duration::from_secs(30 * 86_400),
        )
    }

    #[test]
    fn the_bearer_token_is_the_text_after_the_scheme() {
        use actix_web::http::header::HeaderValue;
        let token = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, HeaderValue::from_static(value));
            bearer_token(&headers).map(str::to_owned)
        };
        assert_eq!(token("Bearer abc.def.ghi").as_deref(), Some("abc.def.ghi"));
        assert_eq!(token("bEaReR  abc ").as_deref(), Some("abc"));
        assert_eq!(token("Basic abc"), None);
        assert_eq!(token("abc.def.ghi"), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
        // Sent twice: neither is taken, whichever is right.
        let mut twice = HeaderMap::new();
        twice.append(
            AUTHORIZATION,
            HeaderValue::from_static("Bearer abc.def.ghi"),
        );
        twice.append(AUTHORIZATION, HeaderValue::from_static("Bearer other"));
        assert_eq!(bearer_token(&twice), None);
    }

    #[test]
    fn an_issued_token_verifies_until_it_expires() {
        let t = tokens();
        let issued = t
            .issue("u1", "alice", TokenKind::Access, "fam_1", 1_000)
            .unwrap();
        assert_eq!(issued.claims.exp, 1_900);
        let claims = t.verify(&issued.token, TokenKind::Access, 1_899).unwrap();
        assert_eq!(claims, issued.claims);
        assert_eq!(
            t.verify(&issued.token, TokenKind::Access, 1_900),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn tokens_carry_their_family_and_old_tokens_are_their_own() {
        let t = tokens();
        let issued = t
            .issue("u1", "alice", TokenKind::Refresh, "fam_1", 0)
            .unwrap();
        let claims = t.verify(&issued.token, TokenKind::Refresh, 1).unwrap();
        assert_eq!(claims.family(), "fam_1");

        // Signed before tokens had a `fam` claim.
        let old = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub":"u1","name":"a","iat":0,"exp":99,"jti":"j1","typ":"refresh"}),
            &EncodingKey::from_secret(KEY),
        )
        .unwrap();
        let claims = t.verify(&old, TokenKind::Refresh, 1).unwrap();
        assert_eq!(claims.family(), "j1");
        assert_ne!(Tokens::new_family(), Tokens::new_family());
    }

    #[test]
    fn tokens_name_their_key_and_verify_after_a_rotation_until_the_fallback_goes() {
        let old = tokens();
        let issued = old
            .issue("u1", "alice", TokenKind::Access, "fam_1", 0)
            .unwrap();
        let header = jsonwebtoken::decode_header(&issued.token).unwrap();
        assert_eq!(header.kid.as_deref(), Some("k1"));
        let new_key = b"the key after the rotation, 32 bytes or more";
        let ttl = (Duration::from_secs(900), Duration::from_secs(86_400));
        let rotated = Tokens::new("k2", new_key, ttl.0, ttl.1).with_fallback("k1", KEY);
        assert_eq!(
            rotated.verify(&issued.token, TokenKind::Access, 1),
            Ok(issued.claims)
        );
        let fresh = rotated
            .issue("u1", "alice", TokenKind::Access, "fam_1", 0)
            .unwrap();
        let header = jsonwebtoken::decode_header(&fresh.token).unwrap();
        assert_eq!(header.kid.as_deref(), Some("k2"));
        let dropped = Tokens::new("k2", new_key, ttl.0, ttl.1);
        assert_eq!(
            dropped.verify(&issued.token, TokenKind::Access, 1),
            Err(TokenError::Invalid)
        );
        assert!(dropped.verify(&fresh.token, TokenKind::Access, 1).is_ok());
        // A token without a kid (issued before tokens had one) is tried against every key.
        let no_kid = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub":"u1","name":"a","iat":0,"exp":99,"jti":"j","typ":"access"}),
            &EncodingKey::from_secret(KEY),
        )
        .unwrap();
        assert!(rotated.verify(&no_kid, TokenKind::Access, 1).is_ok());
        assert!(dropped.verify(&no_kid, TokenKind::Access, 1).is_err());
    }

    #[test]
    fn refresh_and_access_tokens_are_not_interchangeable() {
        let t = tokens();
        let refresh = t
            .issue("u1", "alice", TokenKind::Refresh, "fam_1", 0)
            .unwrap();
        assert_eq!(refresh.claims.exp, 30 * 86_400);
        assert_eq!(
            t.verify(&refresh.token, TokenKind::Access, 1),
            Err(TokenError::WrongKind)
        );
    }

    #[test]
    fn tampered_tokens_and_other_keys_are_refused() {
        let t = tokens();
        let token = t
            .issue("u1", "alice", TokenKind::Access, "fam_1", 0)
            .unwrap()
            .token;
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        claims["sub"] = "u2".into();
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        assert_eq!(
            t.verify(&parts.join("."), TokenKind::Access, 1),
            Err(TokenError::Invalid)
        );

        let other = Tokens::new(
            "k1",
            b"another key of at least thirty-two bytes!",
            Duration::ZERO,
            Duration::ZERO,
        );
        assert_eq!(
            other.verify(&token, TokenKind::Access, 1),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn alg_none_and_missing_exp_are_refused() {
        let t = tokens();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(
            r#"{"sub":"u1","name":"a","iat":0,"exp":99999999999,"jti":"x","typ":"access"}"#,
        );
        assert_eq!(
            t.verify(&format!("{header}.{claims}."), TokenKind::Access, 1),
            Err(TokenError::Invalid)
        );

        // Correctly signed, but without `exp`.
        let no_exp = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub":"u1","name":"a","iat":0,"jti":"x","typ":"access"}),
            &EncodingKey::from_secret(KEY),
        )
        .unwrap();
        assert_eq!(
            t.verify(&no_exp, TokenKind::Access, 1),
            Err(TokenError::Invalid)
        );

        // Correctly signed with the same key, but HS512: the algorithm is pinned.
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &serde_json::json!({"sub":"u1","name":"a","iat":0,"exp":99999999999_i64,"jti":"x","typ":"access"}),
            &EncodingKey::from_secret(KEY),
        )
        .unwrap();
        assert_eq!(
            t.verify(&hs512, TokenKind::Access, 1),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn every_token_has_its_own_jti_and_debug_hides_the_key() {
        let t = tokens();
        let a = t
            .issue("u1", "alice", TokenKind::Access, "fam_1", 0)
            .unwrap();
        let b = t
            .issue("u1", "alice", TokenKind::Access, "fam_1", 0)
            .unwrap();
        assert_ne!(a.claims.jti, b.claims.jti);
        assert!(!format!("{t:?}").contains("0123456789abcdef"));
    }
}
