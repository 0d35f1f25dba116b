//! The TLS configuration of the reqwest client (features `reqwest` and `rustls`).

use std::sync::Arc;

/// rustls with the *ring* provider, TLS 1.2 and 1.3, and the webpki root certificates: the same
/// trust as the awc client's, whatever the machine's certificate store holds.
pub(crate) fn client_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        // The ring provider supports the safe default versions: this cannot fail.
        .unwrap_or_else(|_| rustls::ClientConfig::builder())
        .with_root_certificates(roots)
        .with_no_client_auth()
}
