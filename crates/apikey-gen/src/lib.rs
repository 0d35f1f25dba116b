#![doc = include_str!("../README.md")]

mod base62;
mod error;
mod hash;
mod key;

pub use error::{KeyError, Result};
pub use hash::{KeyHash, KeyHasher, KeyId, MIN_PEPPER_LEN};
pub use key::{
    ApiKey, CHECKSUM_LEN, DEFAULT_BODY_LEN, GeneratedKey, KeyConfig, MAX_BODY_LEN, MAX_PREFIX_LEN,
    MAX_TOKEN_LEN, MIN_BODY_LEN, MIN_TOKEN_LEN, ParsedKey, TIMESTAMP_LEN, generate, generate_token,
    parse,
};
pub use subtle::ConstantTimeEq;
