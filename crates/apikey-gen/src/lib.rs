#![doc = include_str!("../README.md")]

#[cfg(any(feature = "actix", feature = "tower"))]
mod auth;
mod base62;
#[cfg(any(feature = "actix", feature = "tower"))]
mod cache;
mod error;
mod hash;
#[cfg(any(feature = "actix", feature = "tower"))]
mod http;
mod key;
mod presented;

#[cfg(any(feature = "actix", feature = "tower"))]
pub use auth::{
    Authenticator, AuthenticatorBuilder, Clock, FakeClock, KeyRecord, KeyStore, SystemClock,
};
#[cfg(any(feature = "actix", feature = "tower"))]
pub use cache::{LookupCache, LookupCacheBuilder};

pub use error::{Error, Result};
pub use hash::{KeyHash, KeyHasher, KeyId, MIN_PEPPER_LEN};
#[cfg(any(feature = "actix", feature = "tower"))]
pub use http::{ApiKeyAuth, ApiKeyAuthBuilder, Refusal, Rejection};
#[cfg(feature = "actix")]
pub use http::{ApiKeyAuthMiddleware, actix_presented_key, actix_response};
#[cfg(feature = "tower")]
pub use http::{ApiKeyAuthService, http_presented_key, http_response};
pub use key::{
    ApiKey, CHECKSUM_LEN, DEFAULT_BODY_LEN, GeneratedKey, KeyConfig, KeyConfigBuilder,
    MAX_BODY_LEN, MAX_PREFIX_LEN, MAX_TOKEN_LEN, MIN_BODY_LEN, MIN_TOKEN_LEN, ParsedKey,
    TIMESTAMP_LEN, generate, generate_token, parse,
};
pub use presented::{KeySource, MAX_PRESENTED_LEN, PresentedKey, presented_key};
pub use subtle::ConstantTimeEq;
