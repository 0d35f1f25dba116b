//! Checking the signature headers of an incoming request.

use core::fmt;

use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::canonical::{
    self, MAX_SIGNATURE_HEADER_LEN, MAX_SIGNATURES, body_sha256_hex, canonical_method,
    canonical_path, canonical_query, canonical_v1_parts, check_key_id, check_nonce, hmac_sha256,
    parse_timestamp, split_target,
};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::replay::{Insertion, ReplayCache, ReplayEntry, ReplayKey};
use crate::rfc9421::{self, Algorithm, Message, MessagePolicy, SignatureParams};
use crate::secret::Secret;
use crate::signer::{
    HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, Scheme, SignedHeaders,
};
use crate::store::SecretStore;

/// The raw signature header values of an incoming request, as bytes.
///
/// `Debug` shows the key as `[redacted]` (for v0 clients it is their raw API key).
#[derive(Clone, Copy, Default)]
pub struct SignatureHeaders<'a> {
    /// `X-API-Key`.
    pub key: Option<&'a [u8]>,
    /// `X-API-Timestamp`.
    pub timestamp: Option<&'a [u8]>,
    /// `X-API-Nonce`.
    pub nonce: Option<&'a [u8]>,
    /// `X-API-Signature`.
    pub signature: Option<&'a [u8]>,
}

impl<'a> SignatureHeaders<'a> {
    /// Reads the four headers through `get` (called with each header name, e.g. `X-API-Key`;
    /// header names are case-insensitive, so look them up that way).
    ///
    /// With actix-web: `SignatureHeaders::from_fn(|name| req.headers().get(name).map(|v| v.as_bytes()))`.
    #[must_use]
    pub fn from_fn(mut get: impl FnMut(&'static str) -> Option<&'a [u8]>) -> Self {
        Self {
            key: get(HEADER_KEY),
            timestamp: get(HEADER_TIMESTAMP),
            nonce: get(HEADER_NONCE),
            signature: get(HEADER_SIGNATURE),
        }
    }

    /// The headers a [`Signer`](crate::Signer) produced (handy in tests).
    #[must_use]
    pub fn from_signed(headers: &'a SignedHeaders) -> Self {
        Self {
            key: Some(headers.key_id().as_bytes()),
            timestamp: Some(headers.timestamp().as_bytes()),
            nonce: headers.nonce().map(str::as_bytes),
            signature: Some(headers.signature().as_bytes()),
        }
    }
}

impl fmt::Debug for SignatureHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn text(v: Option<&[u8]>) -> Option<std::borrow::Cow<'_, str>> {
            v.map(String::from_utf8_lossy)
        }
        f.debug_struct("SignatureHeaders")
            .field("key", &self.key.map(|_| "[redacted]"))
            .field("timestamp", &text(self.timestamp))
            .field("nonce", &text(self.nonce))
            .field("signature", &text(self.signature))
            .finish()
    }
}

/// The signed parts of an incoming request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    method: &'a str,
    target: &'a str,
    body: &'a [u8],
}

impl<'a> Request<'a> {
    /// The method, the request target as received (`/path?query`, or an absolute URL) and the body.
    #[must_use]
    pub fn new(method: &'a str, target: &'a str, body: &'a [u8]) -> Self {
        Self {
            method,
            target,
            body,
        }
    }
}

/// Verifier settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifierConfig {
    max_age_secs: u64,
    max_future_skew_secs: u64,
    accept_v0: bool,
    max_body_bytes: usize,
}

impl Default for VerifierConfig {
    /// Maximum age 300 s, future skew 30 s, v0 refused, bodies up to 10 MiB.
    fn default() -> Self {
        Self {
            max_age_secs: 300,
            max_future_skew_secs: 30,
            accept_v0: false,
            max_body_bytes: 10 * 1024 * 1024,
        }
    }
}

impl VerifierConfig {
    /// The defaults: maximum age 300 s, future skew 30 s, v0 refused, bodies up to 10 MiB.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// When the replay cache may forget a request that is accepted until `last_accepted`
    /// (Unix seconds, on this verifier's clock). A cache shared by several instances is pruned
    /// by each one's clock: the record is kept the future skew longer, so that an instance whose
    /// clock runs up to that much ahead never forgets it while another can still accept it.
    const fn forget_after(&self, last_accepted: u64) -> u64 {
        last_accepted
            .saturating_add(self.max_future_skew_secs)
            .saturating_add(1)
    }

    /// Rejects timestamps more than `secs` seconds old.
    #[must_use]
    pub fn max_age_secs(mut self, secs: u64) -> Self {
        self.max_age_secs = secs;
        self
    }

    /// Rejects timestamps more than `secs` seconds ahead of the verifier's clock. Instances
    /// that share a replay cache must keep their clocks within this of each other: the cache
    /// keeps each record this much longer than its request is accepted.
    #[must_use]
    pub fn max_future_skew_secs(mut self, secs: u64) -> Self {
        self.max_future_skew_secs = secs;
        self
    }

    /// Whether the legacy scheme v0 is accepted (off by default; always with the replay cache).
    ///
    /// v0's inherent limit: its signature covers only the key and the second, so two calls of
    /// one key in the same second are the same signed request, and the second is refused as a
    /// replay. A key can make at most one v0 call per second, and a v0 signature says nothing
    /// about the method, path or body it came with.
    #[must_use]
    pub fn accept_v0(mut self, accept: bool) -> Self {
        self.accept_v0 = accept;
        self
    }

    /// Rejects bodies longer than `bytes` before hashing them.
    #[must_use]
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// The longest body accepted, in bytes.
    #[must_use]
    pub fn body_limit(&self) -> usize {
        self.max_body_bytes
    }
}

/// A request whose signature, timestamp and uniqueness were all checked.
///
/// Only [`Verifier::verify`] makes one, after the replay cache accepted the request.
#[derive(Clone, PartialEq, Eq)]
#[must_use]
pub struct Verified {
    key_id: String,
    scheme: Scheme,
    timestamp: u64,
    secret_index: usize,
    recorded: ReplayEntry,
    /// The records of the message's other signatures that verified (RFC 9421), released with it.
    also_recorded: Vec<ReplayEntry>,
    label: Option<String>,
}

impl Verified {
    /// The label of the RFC 9421 signature that verified (`None` for v0 and v1).
    #[must_use]
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// The `X-API-Key` value (for v0 clients, their raw API key).
    #[must_use]
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The scheme the request was signed with.
    #[must_use]
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The signed timestamp, Unix seconds.
    #[must_use]
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// Index, in the secret store's list, of the secret that matched (watch it during rotations).
    #[must_use]
    pub fn secret_index(&self) -> usize {
        self.secret_index
    }

    /// What the replay cache recorded for this request: for an RFC 9421 message with several
    /// signatures that verify, the record of the first ([`Verifier::release`] releases every
    /// one).
    #[must_use]
    pub fn recorded(&self) -> &ReplayEntry {
        &self.recorded
    }
}

impl fmt::Debug for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("key_id", &"[redacted]")
            .field("scheme", &self.scheme)
            .field("timestamp", &self.timestamp)
            .field("secret_index", &self.secret_index)
            .field("label", &self.label)
            .finish()
    }
}

/// Verifies signed requests: headers, timestamp window, signature against every active secret
/// of the key, then the replay cache. Both schemes always go through the replay cache.
pub struct Verifier<S, R, C = SystemClock> {
    store: S,
    replay: R,
    clock: C,
    config: VerifierConfig,
    policy: MessagePolicy,
}

impl<S: SecretStore, R: ReplayCache> Verifier<S, R, SystemClock> {
    /// A verifier with the default [`VerifierConfig`] and the system clock.
    #[must_use]
    pub fn new(store: S, replay: R) -> Self {
        Self {
            store,
            replay,
            clock: SystemClock,
            config: VerifierConfig::default(),
            policy: MessagePolicy::default(),
        }
    }
}

impl<S: SecretStore, R: ReplayCache, C: Clock> Verifier<S, R, C> {
    /// The same verifier reading time from `clock`.
    #[must_use]
    pub fn with_clock<C2: Clock>(self, clock: C2) -> Verifier<S, R, C2> {
        Verifier {
            store: self.store,
            replay: self.replay,
            clock,
            config: self.config,
            policy: self.policy,
        }
    }

    /// The same verifier with `config`.
    #[must_use]
    pub fn with_config(mut self, config: VerifierConfig) -> Self {
        self.config = config;
        self
    }

    /// The same verifier requiring `policy` of RFC 9421 signatures.
    #[must_use]
    pub fn with_message_policy(mut self, policy: MessagePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The settings in use.
    #[must_use]
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// What RFC 9421 signatures must cover.
    #[must_use]
    pub fn message_policy(&self) -> &MessagePolicy {
        &self.policy
    }

    /// Verifies one RFC 9421 request (`Signature-Input` and `Signature` among its headers);
    /// `Ok` only once per signed request.
    ///
    /// Looks at the signature the policy names by label, or else at each signature in turn
    /// until one verifies (the error is the first signature's). For each: the policy's
    /// coverage and nonce, the time window (`created`, then `expires`), `Content-Digest`
    /// against the body whenever the field is present, the key's secrets (`hmac-sha256`) or
    /// `ed25519` public keys, then the replay cache (the nonce; the signature bytes when
    /// the policy allows no nonce), within the key's share, as [`verify`](Self::verify) does.
    ///
    /// # Errors
    /// [`Error::MissingHeader`] when either field is absent, and as [`verify`](Self::verify)
    /// plus [`Error::CoverageTooNarrow`], [`Error::ComponentAbsent`],
    /// [`Error::DigestMismatch`], [`Error::PastExpiry`] and [`Error::UnsupportedAlgorithm`].
    pub async fn verify_message(&self, message: &Message<'_>) -> Result<Verified> {
        let input = message
            .header("signature-input")
            .ok_or(Error::MissingHeader {
                header: rfc9421::HEADER_SIGNATURE_INPUT,
            })?;
        let signature = message.header("signature").ok_or(Error::MissingHeader {
            header: rfc9421::HEADER_SIGNATURE,
        })?;
        if message.body().len() > self.config.max_body_bytes {
            return Err(Error::BodyTooLarge {
                len: message.body().len(),
                max: self.config.max_body_bytes,
            });
        }
        let candidates = self.candidates(&input, &signature)?;
        if let Some(digest) = message.header("content-digest") {
            rfc9421::verify_content_digest(&digest, message.body())?;
        }
        let now = self.clock.now_unix();
        let mut first_error = None;
        let mut valid = Vec::with_capacity(1);
        for candidate in &candidates {
            match self.check_message_signature(message, candidate, now).await {
                Ok(secret_index) => valid.push((candidate, secret_index)),
                Err(e @ (Error::SecretStoreUnavailable(_) | Error::ReplayStoreUnavailable(_))) => {
                    return Err(e);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        // Every signature that verifies is recorded, not only the first: each would let the
        // message through on its own (with the others taken out or put after it), so the message
        // passes once whichever of its signatures it is sent with later.
        let mut valid = valid.into_iter();
        let Some((first, secret_index)) = valid.next() else {
            return Err(first_error.unwrap_or(Error::BadSignature));
        };
        let mut verified = self.record_message(first, secret_index, now).await?;
        for (candidate, secret_index) in valid {
            match self.record_message(candidate, secret_index, now).await {
                Ok(other) => verified.also_recorded.push(other.recorded),
                Err(e) => {
                    // Best effort: what stays recorded only delays a retry with the same nonces.
                    let _ = self.release(&verified).await;
                    return Err(e);
                }
            }
        }
        Ok(verified)
    }

    /// Checks what one RFC 9421 request's headers decide on their own, before its body is
    /// read: the fields' syntax and label, and that some signature is within its time window,
    /// with a key id of the right form and an algorithm this verifier supports (the first
    /// signature's error when none is). [`verify_message`](Self::verify_message) checks all of
    /// it again, with the body and the store.
    pub(crate) fn check_message_headers(&self, input: &[u8], signature: &[u8]) -> Result<()> {
        let candidates = self.candidates(input, signature)?;
        let now = self.clock.now_unix();
        let mut first_error = None;
        for candidate in &candidates {
            match self.check_params(candidate, now) {
                Ok(_) => return Ok(()),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or(Error::BadSignature))
    }

    /// The signatures of `Signature-Input` and `Signature`, only the one the policy names
    /// when it names one.
    fn candidates(&self, input: &[u8], signature: &[u8]) -> Result<Vec<SignatureParams>> {
        let mut candidates = rfc9421::parse_signatures(input, signature)?;
        if let Some(label) = self.policy.label() {
            candidates.retain(|c| c.label() == label);
            if candidates.is_empty() {
                return Err(Error::MalformedHeader {
                    header: rfc9421::HEADER_SIGNATURE_INPUT,
                    reason: "no signature with the label this server requires",
                });
            }
        }
        Ok(candidates)
    }

    /// Checks one RFC 9421 signature up to (not including) the replay cache; returns the
    /// index of the key that verified it.
    async fn check_message_signature(
        &self,
        message: &Message<'_>,
        params: &SignatureParams,
        now: u64,
    ) -> Result<usize> {
        self.policy.check(params, !message.body().is_empty())?;
        let (key_id, algorithm) = self.check_params(params, now)?;
        let base = rfc9421::signature_base(message, params)?;
        let unavailable = |e| Error::SecretStoreUnavailable(Box::new(e));
        let mut known = false;
        if matches!(algorithm, None | Some(Algorithm::HmacSha256)) {
            let secrets = self
                .store
                .secrets(key_id, Scheme::Rfc9421)
                .await
                .map_err(unavailable)?;
            known |= !secrets.is_empty();
            if let Ok(mac) = <[u8; 32]>::try_from(params.signature()) {
                if let Some(index) = find_match(&secrets, &base, &[mac]) {
                    return Ok(index);
                }
            }
        }
        if matches!(algorithm, None | Some(Algorithm::Ed25519)) {
            let keys = self.store.ed25519_keys(key_id).await.map_err(unavailable)?;
            known |= !keys.is_empty();
            if let Some(index) = keys
                .iter()
                .position(|key| verify_ed25519(key, &base, params.signature()))
            {
                return Ok(index);
            }
        }
        Err(if known {
            Error::BadSignature
        } else {
            Error::UnknownKey
        })
    }

    /// What one RFC 9421 signature's parameters decide: its time window, its key id's form and
    /// its algorithm; returns the key id and the algorithm named, if any.
    fn check_params<'p>(
        &self,
        params: &'p SignatureParams,
        now: u64,
    ) -> Result<(&'p str, Option<Algorithm>)> {
        const INPUT: &str = rfc9421::HEADER_SIGNATURE_INPUT;
        let created = params.created().ok_or(Error::MalformedHeader {
            header: INPUT,
            reason: "no created parameter",
        })?;
        check_time(created, now, &self.config)?;
        if let Some(expires) = params.expires() {
            if expires < created {
                return Err(Error::MalformedHeader {
                    header: INPUT,
                    reason: "expires before created",
                });
            }
            if now > expires {
                return Err(Error::PastExpiry {
                    secs_ago: now - expires,
                });
            }
        }
        let key_id = params.keyid().ok_or(Error::MalformedHeader {
            header: INPUT,
            reason: "no keyid parameter",
        })?;
        check_key_id(key_id.as_bytes()).map_err(|reason| Error::MalformedHeader {
            header: INPUT,
            reason,
        })?;
        let algorithm = match params.alg() {
            None => None,
            Some(name) => Some(Algorithm::from_name(name).ok_or(Error::UnsupportedAlgorithm)?),
        };
        if cfg!(not(feature = "ed25519")) && algorithm == Some(Algorithm::Ed25519) {
            return Err(Error::UnsupportedAlgorithm);
        }
        Ok((key_id, algorithm))
    }

    async fn record_message(
        &self,
        params: &SignatureParams,
        secret_index: usize,
        now: u64,
    ) -> Result<Verified> {
        let key_id = params.keyid().unwrap_or_default();
        let created = params.created().unwrap_or_default();
        let mut last_accepted = created.saturating_add(self.config.max_age_secs);
        if let Some(expires) = params.expires() {
            last_accepted = last_accepted.min(expires);
        }
        let expires_at = self.config.forget_after(last_accepted);
        let entry = ReplayEntry {
            key: match params.nonce() {
                Some(nonce) => ReplayKey::rfc9421(key_id, nonce),
                None => ReplayKey::rfc9421_signature(key_id, params.signature()),
            },
            owner: ReplayKey::owner(key_id),
            now,
            expires_at,
        };
        let verified = Verified {
            key_id: key_id.to_owned(),
            scheme: Scheme::Rfc9421,
            timestamp: created,
            secret_index,
            recorded: entry,
            also_recorded: Vec::new(),
            label: Some(params.label().to_owned()),
        };
        self.insert(entry, verified).await
    }

    /// Records `entry` in the replay cache; `verified` when it was fresh.
    async fn insert(&self, entry: ReplayEntry, verified: Verified) -> Result<Verified> {
        match self.replay.insert_once(entry).await {
            Ok(Insertion::Fresh) => Ok(verified),
            Ok(Insertion::OverBudget { retry_after_secs }) => {
                Err(Error::ReplayBudgetExceeded { retry_after_secs })
            }
            // Seen, and any answer a later version adds: never accept by mistake.
            Ok(_) => Err(Error::Replayed),
            Err(e) => Err(Error::ReplayStoreUnavailable(Box::new(e))),
        }
    }

    /// Checks what a v1 or v0 request's headers decide on their own, before its body is read:
    /// the fields' format, the scheme and the time window. [`verify`](Self::verify) checks all
    /// of it again, with the body and the store.
    pub(crate) fn check_headers(&self, headers: &SignatureHeaders<'_>) -> Result<()> {
        let parsed = parse_headers(headers, self.config.accept_v0)?;
        check_time(parsed.timestamp, self.clock.now_unix(), &self.config)
    }

    /// Verifies one request; `Ok` only once per signed request.
    ///
    /// Checks, in order: headers present and well-formed, scheme accepted, body size,
    /// timestamp window, key known, signature (constant-time, any active secret, any `v1=`
    /// value), and finally records the request in the replay cache, within the key's share.
    ///
    /// The request is recorded before it is returned, so two copies of it racing each other
    /// can never both pass. If a check the caller makes afterwards refuses it (a spent quota,
    /// a missing permission), call [`release`](Self::release): the record goes, the nonce may
    /// be used again and the key gets its room back, so refused requests never fill its share.
    ///
    /// # Errors
    /// Every [`Error`] variant except [`Error::Randomness`]; see their docs.
    pub async fn verify(
        &self,
        headers: &SignatureHeaders<'_>,
        request: &Request<'_>,
    ) -> Result<Verified> {
        let parsed = parse_headers(headers, self.config.accept_v0)?;
        if request.body.len() > self.config.max_body_bytes {
            return Err(Error::BodyTooLarge {
                len: request.body.len(),
                max: self.config.max_body_bytes,
            });
        }
        let now = self.clock.now_unix();
        check_time(parsed.timestamp, now, &self.config)?;
        let message = parsed.message(request)?;
        let secrets = self
            .store
            .secrets(parsed.key_id, parsed.scheme())
            .await
            .map_err(|e| Error::SecretStoreUnavailable(Box::new(e)))?;
        if secrets.is_empty() {
            return Err(Error::UnknownKey);
        }
        let secret_index =
            find_match(&secrets, &message, parsed.signatures()).ok_or(Error::BadSignature)?;
        drop(secrets);
        let entry = ReplayEntry {
            key: parsed.replay_key(),
            owner: ReplayKey::owner(parsed.key_id),
            now,
            expires_at: self
                .config
                .forget_after(parsed.timestamp.saturating_add(self.config.max_age_secs)),
        };
        self.insert(entry, parsed.into_verified(secret_index, entry))
            .await
    }

    /// Forgets `verified`'s record in the replay cache, because a later check refused the
    /// request: its nonce may be used again and its room in the key's share is free.
    ///
    /// # Errors
    /// [`Error::ReplayStoreUnavailable`] when the cache fails; the record then stays until it
    /// expires, which only delays a retry with the same nonce.
    pub async fn release(&self, verified: &Verified) -> Result<()> {
        for entry in core::iter::once(&verified.recorded).chain(&verified.also_recorded) {
            self.replay
                .release(entry)
                .await
                .map_err(|e| Error::ReplayStoreUnavailable(Box::new(e)))?;
        }
        Ok(())
    }
}

impl<S, R, C> fmt::Debug for Verifier<S, R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Parsed<'a> {
    pub(crate) key_id: &'a str,
    pub(crate) timestamp: u64,
    pub(crate) kind: Kind<'a>,
}

pub(crate) enum Kind<'a> {
    V0 {
        signature: [u8; 32],
    },
    V1 {
        nonce: &'a str,
        signatures: Vec<[u8; 32]>,
    },
}

impl Parsed<'_> {
    pub(crate) fn scheme(&self) -> Scheme {
        match self.kind {
            Kind::V0 { .. } => Scheme::V0,
            Kind::V1 { .. } => Scheme::V1,
        }
    }

    pub(crate) fn signatures(&self) -> &[[u8; 32]] {
        match &self.kind {
            Kind::V0 { signature } => core::slice::from_ref(signature),
            Kind::V1 { signatures, .. } => signatures,
        }
    }

    /// The bytes the client signed.
    pub(crate) fn message(&self, request: &Request<'_>) -> Result<Vec<u8>> {
        match &self.kind {
            Kind::V0 { .. } => Ok(canonical::v0_message(
                self.key_id,
                &self.timestamp.to_string(),
            )),
            Kind::V1 { nonce, .. } => {
                let method = canonical_method(request.method)?;
                let (path, query) = split_target(request.target)?;
                Ok(canonical_v1_parts(
                    self.key_id,
                    self.timestamp,
                    nonce,
                    &method,
                    &canonical_path(path)?,
                    &canonical_query(query)?,
                    &body_sha256_hex(request.body),
                )
                .into_bytes())
            }
        }
    }

    fn replay_key(&self) -> ReplayKey {
        match &self.kind {
            Kind::V0 { signature } => ReplayKey::v0(self.key_id, self.timestamp, signature),
            Kind::V1 { nonce, .. } => ReplayKey::v1(self.key_id, nonce),
        }
    }

    fn into_verified(self, secret_index: usize, recorded: ReplayEntry) -> Verified {
        Verified {
            key_id: self.key_id.to_owned(),
            scheme: self.scheme(),
            timestamp: self.timestamp,
            secret_index,
            recorded,
            also_recorded: Vec::new(),
            label: None,
        }
    }
}

/// Whether `signature` is `public_key`'s `ed25519` signature of `message` (RFC 8032, strict:
/// no malleable or small-order forms).
#[cfg(feature = "ed25519")]
fn verify_ed25519(public_key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
        return false;
    };
    key.verify_strict(message, &signature).is_ok()
}

/// Without the `ed25519` feature no `ed25519` signature verifies.
#[cfg(not(feature = "ed25519"))]
fn verify_ed25519(_public_key: &[u8; 32], _message: &[u8], _signature: &[u8]) -> bool {
    false
}

/// Index of the first secret whose MAC equals one of `signatures`, compared in constant time
/// (every non-empty secret and every signature is always compared). An empty secret never
/// matches.
pub(crate) fn find_match(
    secrets: &[Secret],
    message: &[u8],
    signatures: &[[u8; 32]],
) -> Option<usize> {
    let mut found = subtle::Choice::from(0);
    let mut index = 0u64;
    for (i, secret) in secrets.iter().enumerate().rev() {
        // An empty secret (an unset variable, a blank column) is one anybody can sign with.
        if secret.expose_secret().is_empty() {
            continue;
        }
        let mac = hmac_sha256(secret, message);
        let mut this = subtle::Choice::from(0);
        for sig in signatures {
            this |= mac.ct_eq(sig);
        }
        index.conditional_assign(&(i as u64), this);
        found |= this;
    }
    bool::from(found).then(|| usize::try_from(index).unwrap_or(usize::MAX))
}

pub(crate) fn check_time(timestamp: u64, now: u64, config: &VerifierConfig) -> Result<()> {
    if timestamp > now {
        let ahead_secs = timestamp - now;
        if ahead_secs > config.max_future_skew_secs {
            return Err(Error::FromFuture {
                ahead_secs,
                max_skew_secs: config.max_future_skew_secs,
            });
        }
    } else {
        let age_secs = now - timestamp;
        if age_secs > config.max_age_secs {
            return Err(Error::Expired {
                age_secs,
                max_age_secs: config.max_age_secs,
            });
        }
    }
    Ok(())
}

fn missing(header: &'static str) -> Error {
    Error::MissingHeader { header }
}

fn malformed(header: &'static str, reason: &'static str) -> Error {
    Error::MalformedHeader { header, reason }
}

pub(crate) fn parse_headers<'a>(h: &SignatureHeaders<'a>, accept_v0: bool) -> Result<Parsed<'a>> {
    let key = h.key.ok_or(missing(HEADER_KEY))?;
    let ts = h.timestamp.ok_or(missing(HEADER_TIMESTAMP))?;
    let sig = h.signature.ok_or(missing(HEADER_SIGNATURE))?;
    check_key_id(key).map_err(|r| malformed(HEADER_KEY, r))?;
    let key_id = core::str::from_utf8(key).map_err(|_| malformed(HEADER_KEY, "not ASCII"))?;
    let timestamp = parse_timestamp(ts).map_err(|r| malformed(HEADER_TIMESTAMP, r))?;
    let kind = match parse_signature(sig)? {
        ParsedSignature::V0(signature) => {
            if !accept_v0 {
                return Err(Error::V0NotAccepted);
            }
            Kind::V0 { signature }
        }
        ParsedSignature::V1(signatures) => {
            let nonce = h.nonce.ok_or(missing(HEADER_NONCE))?;
            check_nonce(nonce).map_err(|r| malformed(HEADER_NONCE, r))?;
            let nonce =
                core::str::from_utf8(nonce).map_err(|_| malformed(HEADER_NONCE, "not ASCII"))?;
            Kind::V1 { nonce, signatures }
        }
    };
    Ok(Parsed {
        key_id,
        timestamp,
        kind,
    })
}

enum ParsedSignature {
    V0([u8; 32]),
    V1(Vec<[u8; 32]>),
}

fn parse_signature(value: &[u8]) -> Result<ParsedSignature> {
    const H: &str = HEADER_SIGNATURE;
    if value.len() > MAX_SIGNATURE_HEADER_LEN {
        return Err(malformed(H, "longer than 1024 bytes"));
    }
    let value = core::str::from_utf8(value).map_err(|_| malformed(H, "not ASCII"))?;
    if !value.contains('=') {
        return decode_mac(value).map(ParsedSignature::V0).ok_or(malformed(
            H,
            "expected v1=<64 hex digits> or, for v0, 64 hex digits",
        ));
    }
    let mut signatures = Vec::new();
    for entry in value.split(',') {
        let entry = entry.trim_matches([' ', '\t']);
        let (scheme, mac) = entry
            .split_once('=')
            .ok_or(malformed(H, "entry without '='"))?;
        if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(malformed(H, "entry without a scheme name"));
        }
        // Other schemes are ignored, so a future scheme can be sent alongside v1.
        if scheme == "v1" {
            if signatures.len() == MAX_SIGNATURES {
                return Err(malformed(H, "more than 8 v1 values"));
            }
            signatures.push(decode_mac(mac).ok_or(malformed(H, "v1 value is not 64 hex digits"))?);
        }
    }
    if signatures.is_empty() {
        return Err(malformed(H, "no v1 value"));
    }
    Ok(ParsedSignature::V1(signatures))
}

fn decode_mac(hex_digits: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig_header(value: &str) -> SignatureHeaders<'_> {
        SignatureHeaders {
            key: Some(b"svc"),
            timestamp: Some(b"100"),
            nonce: Some(b"0123456789abcdef"),
            signature: Some(value.as_bytes()),
        }
    }

    #[test]
    fn parses_several_v1_values_and_ignores_other_schemes() {
        let a = "a".repeat(64);
        let b = "B".repeat(64);
        let header = format!("v1={a}, v2=zz ,v1={b}");
        let parsed = parse_headers(&sig_header(&header), false).unwrap();
        assert_eq!(parsed.signatures().len(), 2);
        assert_eq!(parsed.scheme(), Scheme::V1);
    }

    #[test]
    fn classifies_malformed_signature_headers() {
        for bad in [
            "",
            "v1=",
            "v1=abc",
            "=aa",
            "v1=aa,,",
            "v2=zz",
            &"g".repeat(64),
        ] {
            let err = parse_headers(&sig_header(bad), true).err().unwrap();
            assert!(
                matches!(
                    err,
                    Error::MalformedHeader {
                        header: HEADER_SIGNATURE,
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
        let nine = vec![format!("v1={}", "a".repeat(64)); 9].join(",");
        assert!(parse_headers(&sig_header(&nine), true).is_err());
        let long = format!("v1={},v3={}", "a".repeat(64), "x".repeat(1000));
        assert!(parse_headers(&sig_header(&long), true).is_err());
    }

    #[test]
    fn v0_needs_acceptance_and_v1_needs_a_nonce() {
        let v0 = "c".repeat(64);
        assert!(matches!(
            parse_headers(&sig_header(&v0), false),
            Err(Error::V0NotAccepted)
        ));
        assert_eq!(
            parse_headers(&sig_header(&v0), true).unwrap().scheme(),
            Scheme::V0
        );
        let header = format!("v1={}", "a".repeat(64));
        let mut h = sig_header(&header);
        h.nonce = None;
        assert!(matches!(
            parse_headers(&h, true),
            Err(Error::MissingHeader {
                header: HEADER_NONCE
            })
        ));
    }

    #[test]
    fn missing_headers_are_named() {
        let h = SignatureHeaders::default();
        assert!(matches!(
            parse_headers(&h, true),
            Err(Error::MissingHeader { header: HEADER_KEY })
        ));
    }

    #[test]
    fn time_window_boundaries() {
        let c = VerifierConfig::default();
        assert!(check_time(1000, 1300, &c).is_ok());
        assert!(matches!(
            check_time(1000, 1301, &c),
            Err(Error::Expired { age_secs: 301, .. })
        ));
        assert!(check_time(1030, 1000, &c).is_ok());
        assert!(matches!(
            check_time(1031, 1000, &c),
            Err(Error::FromFuture { ahead_secs: 31, .. })
        ));
    }

    #[test]
    fn find_match_reports_the_matching_secret() {
        let secrets = [Secret::from("a"), Secret::from("b")];
        let mac_b = hmac_sha256(&secrets[1], b"m");
        assert_eq!(find_match(&secrets, b"m", &[[0; 32], mac_b]), Some(1));
        assert_eq!(find_match(&secrets, b"m", &[[0; 32]]), None);
        assert_eq!(find_match(&secrets, b"x", &[mac_b]), None);
    }

    #[test]
    fn an_empty_secret_never_verifies() {
        let empty = Secret::from("");
        let forged = hmac_sha256(&empty, b"m");
        assert_eq!(find_match(&[empty], b"m", &[forged]), None);
    }
}
