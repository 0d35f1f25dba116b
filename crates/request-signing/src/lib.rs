#![doc = include_str!("../README.md")]

#[cfg(feature = "awc")]
mod awc_helper;
mod canonical;
mod clock;
pub mod dangerous;
mod error;
mod fallback;
#[cfg(any(feature = "actix", feature = "tower"))]
mod http;
#[cfg(feature = "redis")]
mod redis_cache;
mod replay;
#[cfg(feature = "reqwest")]
mod reqwest_helper;
pub mod rfc9421;
mod secret;
mod signer;
mod store;
mod verifier;

#[cfg(feature = "awc")]
pub use awc_helper::{sign_awc_message, sign_awc_request};
pub use canonical::{
    MAX_KEY_ID_LEN, MAX_METHOD_LEN, MAX_NONCE_LEN, MAX_SIGNATURE_HEADER_LEN, MAX_SIGNATURES,
    MAX_TIMESTAMP_LEN, MIN_NONCE_LEN, body_sha256_hex, canonical_string_v1,
};
pub use clock::{Clock, FakeClock, SystemClock};
/// Re-exported: one of two replay caches is a replay cache (see [`ReplayCache`]).
pub use either::Either;
pub use error::{BoxError, Error, Result};
pub use fallback::FallbackReplayCache;
#[cfg(any(feature = "actix", feature = "tower"))]
pub use http::{Refusal, Rejection, VerifySignature, VerifySignatureBuilder};
#[cfg(feature = "actix")]
pub use http::{VerifySignatureMiddleware, actix_response};
#[cfg(feature = "tower")]
pub use http::{VerifySignatureService, http_response};
#[cfg(feature = "redis")]
pub use redis_cache::{MemoryPolicy, RedisReplayCache, RedisReplayError};
pub use replay::{
    Insertion, MemoryReplayCache, ReplayCache, ReplayCacheFull, ReplayEntry, ReplayKey,
};
#[cfg(feature = "reqwest")]
pub use reqwest_helper::{sign_reqwest_message, sign_reqwest_request};
pub use secret::Secret;
pub use signer::{
    HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, Scheme, SignedHeaders, Signer,
    sign_v0,
};
pub use store::{SecretStore, StaticSecretStore};
pub use verifier::{Request, SignatureHeaders, Verified, Verifier, VerifierConfig};
