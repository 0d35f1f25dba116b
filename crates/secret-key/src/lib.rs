#![doc = include_str!("../README.md")]

mod derive;
mod error;
mod key;
mod keyring;
mod loader;
#[cfg(feature = "seal")]
mod seal;
mod strength;

pub use derive::hkdf_sha256;
pub use error::{Error, Result};
pub use key::{DEFAULT_SECRET_LEN, SUBKEY_LEN, SecretKey};
pub use keyring::{KeyMatch, Keyring, TAG_LEN};
pub use loader::{
    DEFAULT_ENV_VAR, DEFAULT_FALLBACKS_ENV_VAR, LoadedSecret, Mode, SecretFormat, SecretLoader,
    SecretSource,
};
#[cfg(feature = "seal")]
pub use seal::{Opened, Sealer};
pub use strength::{MAX_SECRET_LEN, MIN_SECRET_LEN};
pub use subtle::ConstantTimeEq;
