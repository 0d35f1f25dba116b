//! Signed service-to-service requests: `request-signing`'s middleware over the key table,
//! v1 and the original v0.
//!
//! - v1: `X-API-Key` is the key id (or the key itself), the signature covers the canonical
//!   request (method, path, query, body hash, timestamp, nonce), and the secret is the key's
//!   own signing secret, created with `keys create --signing`.
//! - RFC 9421 (HTTP Message Signatures): `Signature-Input` names the covered components and
//!   `keyid` (the key id, or the key itself), `Signature` carries an `hmac-sha256` signature
//!   made with the key's signing secret. It must cover `@method`, the target and, for a body,
//!   `content-digest`, and carry a `nonce`.
//! - v0 (the original's): `X-API-Key` is the key itself and the signature is
//!   `HMAC-SHA256(secret, key + timestamp)`. The secret is `API_SHARED_SECRET` when set (as the
//!   original used one secret for every service), and the key's own signing secret otherwise.
//!
//! Both schemes are replay-proof: a signature is accepted once (the replay cache), and only
//! within 5 minutes of its timestamp (30 s of future skew). The middleware buffers the body up
//! to the JSON limit, verifies it, and hands the handler exactly the bytes it verified.

use std::sync::Arc;
use std::time::Duration;

use apikey_gen::{KeyHasher, LookupCache};
use request_signing::{
    Error as SignError, Refusal, Rejection, Scheme, Secret, SecretStore, Verified, Verifier,
    VerifierConfig, VerifySignature,
};
use secret_key::Sealer;

use crate::auth::principal::{AuthMethod, KeyIdentity, Principal};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::shared::Replay;
use crate::store::{Db, KeyRow, StoreError};

/// Where signing secrets come from: the key table (through a cache of its own) and, for v0,
/// the optional shared secret. Also the principal of a verified request.
#[derive(Debug, Clone)]
pub struct SigningKeys {
    db: Db,
    config: apikey_gen::KeyConfig,
    sealer: Sealer,
    default_quota: u64,
    clock: Clock,
    /// Rows by the name a request gives (the key's hash, or `id:` and its id), and the names
    /// no key has, apart: a flood of unknown names never pushes a known key out.
    cache: Arc<LookupCache<String, KeyRow, Clock>>,
    /// The peppers of rotated-out server secrets, for keys not re-hashed yet.
    fallback_hashers: Arc<[KeyHasher]>,
    /// `API_SHARED_SECRET` then `API_SHARED_SECRET_FALLBACKS`, for v0; empty when unset.
    shared: Arc<[Secret]>,
}

impl SigningKeys {
    /// The signing keys in `db`: keys parse and hash by `config`, secrets open with `sealer`,
    /// answers are cached for `ttl`; `shared` is `API_SHARED_SECRET` and its fallbacks, for
    /// v0: a v0 signature made with any of them verifies.
    #[must_use]
    pub fn new(
        db: Db,
        config: apikey_gen::KeyConfig,
        sealer: Sealer,
        default_quota: u64,
        clock: Clock,
        ttl: Duration,
        shared: Vec<Secret>,
    ) -> Self {
        let cache = LookupCache::builder()
            .clock(clock.clone())
            .ttl(ttl)
            .known_capacity(KEY_CACHE_CAPACITY)
            .unknown_capacity(KEY_CACHE_CAPACITY)
            .build()
            .expect("KEY_CACHE_CAPACITY is not zero");
        Self {
            db,
            config,
            sealer,
            default_quota,
            clock,
            cache: Arc::new(cache),
            fallback_hashers: Arc::new([]),
            shared: shared.into(),
        }
    }

    /// Also finds keys hashed under these peppers (of rotated-out server secrets), and
    /// re-hashes them under the current one.
    #[must_use]
    pub fn with_fallback_hashers(mut self, hashers: Vec<KeyHasher>) -> Self {
        self.fallback_hashers = hashers.into();
        self
    }

    /// Forgets what this instance cached of the key `id` (after revoking or rotating it here).
    pub fn forget(&self, id: &str) {
        self.cache.remove_where(|row| row.id == id);
    }

    /// The stored key a signed request names in `X-API-Key`: the key itself, or (v1) its id.
    async fn row(&self, named: &str, scheme: Scheme) -> Result<Option<KeyRow>, StoreError> {
        let name = if self.config.parse(named).is_ok() {
            self.config.hash(named).to_hex()
        } else if scheme != Scheme::V0 {
            format!("id:{named}")
        } else {
            return Ok(None);
        };
        if let Some(cached) = self.cache.get(&name) {
            return Ok(cached);
        }
        // Trusted from when the database was asked, not from when it answered.
        let asked = self.cache.now();
        let row = match name.strip_prefix("id:") {
            Some(id) => self.db.find_key(id).await?,
            None => self.find_by_hash(named, &name).await?,
        };
        match &row {
            Some(row) => self.cache.put_known_at(name, row.clone(), asked),
            None => self.cache.put_unknown_at(name, asked),
        }
        Ok(row)
    }

    /// The key `named` whose current hash is `hash`; or, hashed under a fallback pepper (a
    /// rotated-out server secret), moved to `hash`.
    async fn find_by_hash(&self, named: &str, hash: &str) -> Result<Option<KeyRow>, StoreError> {
        if let Some(row) = self.db.find_key_by_hash(hash).await? {
            return Ok(Some(row));
        }
        for hasher in self.fallback_hashers.iter() {
            let old = hasher.hash(named).to_hex();
            if let Some(mut row) = self.db.find_key_by_hash(&old).await? {
                if self.db.rehash_key(&old, hash).await? {
                    tracing::info!(key = %row.id, "API key re-hashed under the current server secret");
                }
                row.key_hash = hash.to_owned();
                return Ok(Some(row));
            }
        }
        if self.fallback_hashers.is_empty() {
            return Ok(None);
        }
        // Another instance may have moved the key to `hash` after it was looked up and before
        // the fallbacks were: ask once more, as apikey-gen's authenticator does.
        self.db.find_key_by_hash(hash).await
    }

    /// The principal of a verified request: the active key it names.
    ///
    /// # Errors
    /// 401 when the key was revoked or expired since; 503 when the database does not answer.
    pub async fn principal(&self, verified: &Verified) -> Result<Principal, ApiError> {
        let method = match verified.scheme() {
            Scheme::V0 => AuthMethod::SignedV0,
            Scheme::Rfc9421 => AuthMethod::SignedRfc9421,
            Scheme::V1 => AuthMethod::SignedV1,
        };
        let row = self
            .row(verified.key_id(), verified.scheme())
            .await?
            .ok_or(ApiError::unauthorized("unknown_key", "unknown API key"))?;
        if !row.is_active(self.clock.now()) {
            return Err(ApiError::unauthorized(
                "revoked_key",
                "API key revoked or expired",
            ));
        }
        Ok(KeyIdentity::of(&row, self.default_quota).principal(method))
    }
}

impl SecretStore for SigningKeys {
    type Error = StoreError;

    async fn secrets(&self, key_id: &str, scheme: Scheme) -> Result<Vec<Secret>, Self::Error> {
        let Some(row) = self
            .row(key_id, scheme)
            .await?
            .filter(|r| r.is_active(self.clock.now()))
        else {
            return Ok(Vec::new());
        };
        let mut secrets = Vec::new();
        if let Some(sealed) = &row.signing_secret {
            match self.sealer.open(&row.id, sealed) {
                // Clients hold the hex text of the secret, as shown at creation.
                Ok(opened) => {
                    if opened.is_stale() {
                        // Sealed under a rotated-out server secret: seal it again now.
                        match self.sealer.seal(&row.id, opened.expose_secret()) {
                            Ok(resealed) => {
                                self.db.reseal_signing_secret(&row.id, &resealed).await?;
                                self.forget(&row.id);
                                tracing::info!(key = %row.id, "signing secret sealed under the current server secret");
                            }
                            // The secret opened: verify with it, and seal it again next time.
                            Err(e) => {
                                tracing::error!(key = %row.id, error = %e, "signing secret could not be sealed again")
                            }
                        }
                    }
                    secrets.push(Secret::new(opened.expose_secret().to_vec()));
                }
                Err(e) => {
                    tracing::error!(key = %row.id, error = %e, "stored signing secret does not open")
                }
            }
        }
        if scheme == Scheme::V0 {
            secrets.extend(
                self.shared
                    .iter()
                    .map(|shared| Secret::new(shared.expose_secret().to_vec())),
            );
        }
        Ok(secrets)
    }
}

/// Names of each kind (known, unknown) the signing-key cache holds at most.
pub const KEY_CACHE_CAPACITY: usize = 100_000;

/// The signature middleware as the server uses it.
pub type SignatureAuth = VerifySignature<SigningKeys, Replay, Clock>;

/// `request-signing`'s middleware: v0, v1 and RFC 9421 over `keys`, bodies up to `max_body_bytes`,
/// `replay` remembering signatures seen. Unsigned requests go on to the API-key middleware.
/// A request refused after its signature verified (401 from a key revoked meanwhile, a spent
/// quota, an overloaded dependency) did nothing: its nonce is released, so it uses none of
/// the key's replay share and may be sent again as it is.
///
/// `replay_fails_closed` says a replay store outage is Redis refusing (counted as such).
///
/// # Errors
/// `request-signing`'s, for a body limit it does not accept.
pub fn signature_auth(
    keys: SigningKeys,
    replay: Replay,
    clock: Clock,
    max_body_bytes: usize,
    replay_fails_closed: bool,
) -> Result<SignatureAuth, SignError> {
    let config = VerifierConfig::default()
        .max_body_bytes(max_body_bytes)
        .accept_v0(true);
    let verifier = Verifier::new(keys, replay)
        .with_clock(clock)
        .with_config(config);
    VerifySignature::builder(verifier)
        .optional(true)
        // Answers given before anything was done: a refused scope (401), a spent quota (429),
        // a busy pool or a store away (503; a charge the journal could not write stays counted
        // in memory, the one thing such a call may cost). The same signed request may then be
        // sent again as it is, and still passes at most once.
        .release_on(|status| matches!(status, 401 | 429 | 503))
        .on_refusal(move |refusal: Refusal<'_>| {
            if replay_fails_closed && matches!(refusal.error, SignError::ReplayStoreUnavailable(_))
            {
                crate::observe::redis_error("replay", "unavailable");
                crate::observe::redis_fallback("replay", "closed");
            }
            Rejection::from(sign_error(refusal.error))
        })
        .build()
}

/// The server's answer to a signature that does not verify.
fn sign_error(error: &SignError) -> ApiError {
    match error {
        SignError::BodyTooLarge { max, .. } => {
            ApiError::PayloadTooLarge(format!("the body is larger than the {max}-byte limit"))
        }
        SignError::SecretStoreUnavailable(e) | SignError::ReplayStoreUnavailable(e) => {
            crate::observe::throttled_error("signature verification store unavailable", e);
            ApiError::Unavailable {
                detail: "signature verification is unavailable; try again shortly",
                retry_after: Some(1),
            }
        }
        // Named apart from a bad signature, unlike the crate's default: a v0 key id is the API
        // key itself, whose validity `Authorization: <key>` answers anyway.
        SignError::UnknownKey => {
            ApiError::unauthorized("unknown_key", "unknown API key or no signing secret")
        }
        SignError::Replayed => ApiError::unauthorized("replayed_signature", "request replayed"),
        SignError::ReplayBudgetExceeded { retry_after_secs } => ApiError::RateLimited {
            retry_after: *retry_after_secs,
            headers: Vec::new(),
        },
        SignError::BadSignature => ApiError::unauthorized("bad_signature", "bad signature"),
        e @ (SignError::Expired { .. }
        | SignError::FromFuture { .. }
        | SignError::PastExpiry { .. }) => ApiError::unauthorized("stale_signature", e.to_string()),
        e @ SignError::CoverageTooNarrow { .. } => {
            ApiError::unauthorized("insufficient_coverage", e.to_string())
        }
        SignError::DigestMismatch => {
            ApiError::unauthorized("digest_mismatch", "Content-Digest does not match the body")
        }
        SignError::UnsupportedAlgorithm => ApiError::unauthorized(
            "unsupported_algorithm",
            "signature algorithm not supported: use hmac-sha256",
        ),
        SignError::Randomness => ApiError::internal("no randomness"),
        SignError::UnreadableBody => {
            ApiError::BadRequest("the request body could not be read".to_owned())
        }
        other => ApiError::unauthorized("malformed_signature", other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use secret_key::SecretKey;

    use super::*;
    use crate::audit::{Action, Actor, AuditLog};

    #[actix_web::test]
    async fn rows_are_cached_for_the_ttl_and_forgotten_by_key_id() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let clock = Clock::manual(1_000);
        let audit = AuditLog::new(db.clone(), clock.clone());
        let config = apikey_gen::KeyConfig::new("sapi").unwrap();
        let sealer = Sealer::new(&SecretKey::generate().unwrap(), "test").unwrap();
        let keys = SigningKeys::new(
            db.clone(),
            config.clone(),
            sealer,
            7,
            clock.clone(),
            Duration::from_secs(60),
            Vec::new(),
        );
        let mut stored = Vec::new();
        for id in ["k1", "k2"] {
            let generated = config.generate().unwrap();
            let row = KeyRow {
                id: id.into(),
                key_hash: generated.hash().to_hex(),
                service: "s".into(),
                ..KeyRow::default()
            };
            let entry = audit.entry(&Actor::cli(), Action::KeyCreate, Some(id));
            db.insert_key(&row, &entry).await.unwrap();
            stored.push(generated.key().expose_secret().to_owned());
        }
        // A key is named by itself or by its id: two cached names of one row.
        let revoked_at = async |named: &str| {
            let row = keys.row(named, Scheme::V1).await.unwrap().unwrap();
            row.revoked_at
        };
        for named in [stored[0].as_str(), "k1", "k2"] {
            assert_eq!(revoked_at(named).await, None);
        }
        for id in ["k1", "k2"] {
            let entry = audit.entry(&Actor::cli(), Action::KeyRevoke, Some(id));
            assert!(db.revoke_key(id, 1_000, &entry).await.unwrap());
        }

        // Cached for the TTL on the server's clock; `forget` drops every name of the key.
        clock.set(1_059);
        assert_eq!(revoked_at("k1").await, None);
        keys.forget("k1");
        assert_eq!(revoked_at(&stored[0]).await, Some(1_000));
        assert_eq!(revoked_at("k1").await, Some(1_000));
        assert_eq!(revoked_at("k2").await, None, "only k1 was forgotten");
        clock.set(1_060);
        assert_eq!(revoked_at("k2").await, Some(1_000));
    }

    #[test]
    fn refusals_say_what_failed_and_never_a_secret() {
        assert!(matches!(
            sign_error(&SignError::Replayed),
            ApiError::Unauthorized("replayed_signature", _)
        ));
        assert!(matches!(
            sign_error(&SignError::BodyTooLarge { len: 9, max: 8 }),
            ApiError::PayloadTooLarge(_)
        ));
        assert!(matches!(
            sign_error(&SignError::ReplayBudgetExceeded {
                retry_after_secs: 7
            }),
            ApiError::RateLimited { retry_after: 7, .. }
        ));
    }
}
