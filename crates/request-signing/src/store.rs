//! Where the verifier finds the secrets of a key id.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use crate::secret::Secret;
use crate::signer::Scheme;

/// Looks up the active secrets of a key id (several during a rotation).
///
/// Implementations may be async (a database) or immediate (a map). An empty list means the key
/// is unknown or revoked, or may not sign with this scheme. The returned secrets are zeroized
/// when the verifier drops them.
///
/// The scheme is given so that one verifier serves both: a v1 `X-API-Key` is usually a key id
/// and its secret the key's own, while a v0 client sends its raw API key and may sign with a
/// secret shared by every service.
pub trait SecretStore: Send + Sync {
    /// The backend's error; the verifier reports it as [`Error::SecretStoreUnavailable`](crate::Error::SecretStoreUnavailable).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The active secrets of `key_id` for requests signed with `scheme`, or an empty list when
    /// there are none.
    fn secrets(
        &self,
        key_id: &str,
        scheme: Scheme,
    ) -> impl Future<Output = Result<Vec<Secret>, Self::Error>> + Send;

    /// The active `ed25519` public keys of `key_id`, for RFC 9421 signatures made with its
    /// private key (none by default).
    fn ed25519_keys(
        &self,
        key_id: &str,
    ) -> impl Future<Output = Result<Vec<[u8; 32]>, Self::Error>> + Send {
        let _ = key_id;
        core::future::ready(Ok(Vec::new()))
    }
}

impl<S: SecretStore + ?Sized> SecretStore for Arc<S> {
    type Error = S::Error;

    fn secrets(
        &self,
        key_id: &str,
        scheme: Scheme,
    ) -> impl Future<Output = Result<Vec<Secret>, Self::Error>> + Send {
        (**self).secrets(key_id, scheme)
    }

    fn ed25519_keys(
        &self,
        key_id: &str,
    ) -> impl Future<Output = Result<Vec<[u8; 32]>, Self::Error>> + Send {
        (**self).ed25519_keys(key_id)
    }
}

impl<S: SecretStore + ?Sized> SecretStore for &S {
    type Error = S::Error;

    fn secrets(
        &self,
        key_id: &str,
        scheme: Scheme,
    ) -> impl Future<Output = Result<Vec<Secret>, Self::Error>> + Send {
        (**self).secrets(key_id, scheme)
    }

    fn ed25519_keys(
        &self,
        key_id: &str,
    ) -> impl Future<Output = Result<Vec<[u8; 32]>, Self::Error>> + Send {
        (**self).ed25519_keys(key_id)
    }
}

/// A fixed in-memory map from key id to its active secrets, the same for every scheme, and
/// to its `ed25519` public keys.
///
/// `Debug` shows only the number of keys (a v0 key id is a raw API key).
#[derive(Clone, Default)]
pub struct StaticSecretStore {
    keys: HashMap<String, Vec<Secret>>,
    ed25519: HashMap<String, Vec<[u8; 32]>>,
}

impl StaticSecretStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `secret` as an active secret of `key_id` (call again to add a rotation secret).
    #[must_use]
    pub fn with_secret(mut self, key_id: impl Into<String>, secret: Secret) -> Self {
        self.insert(key_id, secret);
        self
    }

    /// Adds `secret` as an active secret of `key_id`.
    pub fn insert(&mut self, key_id: impl Into<String>, secret: Secret) {
        self.keys.entry(key_id.into()).or_default().push(secret);
    }

    /// Adds `public_key` as an active `ed25519` key of `key_id`, for RFC 9421.
    #[must_use]
    pub fn with_ed25519_key(mut self, key_id: impl Into<String>, public_key: [u8; 32]) -> Self {
        self.ed25519
            .entry(key_id.into())
            .or_default()
            .push(public_key);
        self
    }

    /// Removes every secret and public key of `key_id`; returns whether it had any.
    pub fn remove(&mut self, key_id: &str) -> bool {
        let secrets = self.keys.remove(key_id).is_some();
        self.ed25519.remove(key_id).is_some() || secrets
    }
}

impl core::fmt::Debug for StaticSecretStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StaticSecretStore")
            .field("keys", &self.keys.len())
            .field("ed25519_keys", &self.ed25519.len())
            .finish()
    }
}

impl SecretStore for StaticSecretStore {
    type Error = Infallible;

    fn secrets(
        &self,
        key_id: &str,
        _scheme: Scheme,
    ) -> impl Future<Output = Result<Vec<Secret>, Self::Error>> + Send {
        let found = self.keys.get(key_id).cloned().unwrap_or_default();
        core::future::ready(Ok(found))
    }

    fn ed25519_keys(
        &self,
        key_id: &str,
    ) -> impl Future<Output = Result<Vec<[u8; 32]>, Self::Error>> + Send {
        let found = self.ed25519.get(key_id).cloned().unwrap_or_default();
        core::future::ready(Ok(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_neither_key_ids_nor_secrets() {
        let store = StaticSecretStore::new().with_secret("raw-api-key-1", Secret::from("pw"));
        assert_eq!(
            format!("{store:?}"),
            "StaticSecretStore { keys: 1, ed25519_keys: 0 }"
        );
    }

    #[test]
    fn insert_and_remove() {
        let mut store = StaticSecretStore::new();
        store.insert("k", Secret::from("a"));
        store.insert("k", Secret::from("b"));
        let found = {
            let got = core::pin::pin!(store.secrets("k", Scheme::V1));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match got.poll(&mut cx) {
                std::task::Poll::Ready(Ok(found)) => found,
                _ => panic!("a static store answers at once"),
            }
        };
        assert_eq!(found.len(), 2);
        assert!(store.remove("k"));
        assert!(!store.remove("k"));
    }
}
