//! The TLS pieces every client of the process shares, HTTP (the jobs'
//! checks, webhooks) and PostgreSQL alike: one crypto provider and one copy
//! of the system's CA certificates.
//!
//! It opens no connection and sets no policy: each client builds its own
//! `rustls::ClientConfig` from these (the HTTP client in `health.rs`,
//! PostgreSQL's `sslmode` in the `ops-worker` crate's `db/tls.rs`).

use std::sync::{Arc, OnceLock};

use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;

/// ring: no OpenSSL and no aws-lc C build. Explicit rather than rustls's
/// process-wide default, so no second provider can slip in.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// Checks a server's certificate chain and host name against the system's
/// CA store (rustls-platform-verifier: on Linux the `ca-certificates` bundle,
/// or what `SSL_CERT_FILE` / `SSL_CERT_DIR` name). The store is read and
/// parsed once per process, on first use (about 160 KiB held), and shared by
/// every client that uses it.
///
/// Err when the system has no CA certificates; each caller decides what
/// that means for it.
pub fn system_verifier() -> Result<Arc<dyn ServerCertVerifier>, rustls::Error> {
    type Loaded = Result<Arc<dyn ServerCertVerifier>, rustls::Error>;
    static VERIFIER: OnceLock<Loaded> = OnceLock::new();
    VERIFIER
        .get_or_init(|| {
            rustls_platform_verifier::Verifier::new(provider())
                .map(|v| Arc::new(v) as Arc<dyn ServerCertVerifier>)
        })
        .clone()
}
