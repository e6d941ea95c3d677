//! PEM files: certificate chains, private keys (PKCS#8, PKCS#1, SEC1), CA bundles, read with
//! `rustls-pki-types`; every failure is one line naming the setting and the file.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::SslContextError;

/// Reads a file whole (at start or on reload, never per connection).
fn read(setting: &str, path: &Path) -> Result<Vec<u8>, SslContextError> {
    std::fs::read(path).map_err(|error| SslContextError::file(setting, path, error))
}

/// The certificates of a PEM file, leaf first, as they appear.
pub(crate) fn load_chain(
    setting: &str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, SslContextError> {
    let pem = read(setting, path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| SslContextError::file(setting, path, error))?;
    if chain.is_empty() {
        return Err(SslContextError::file(
            setting,
            path,
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
        ));
    }
    Ok(chain)
}

/// True when the PEM text holds a password-protected key (PKCS#8 `ENCRYPTED PRIVATE KEY`, or
/// OpenSSL's legacy `Proc-Type: 4,ENCRYPTED` header), which rustls cannot use.
fn is_encrypted(pem: &[u8]) -> bool {
    let contains = |needle: &[u8]| pem.windows(needle.len()).any(|window| window == needle);
    contains(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || contains(b"Proc-Type: 4,ENCRYPTED")
}

/// The first private key of a PEM file: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or
/// SEC1 (`EC PRIVATE KEY`).
pub(crate) fn load_key(
    setting: &str,
    path: &Path,
) -> Result<PrivateKeyDer<'static>, SslContextError> {
    let pem = read(setting, path)?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(key) => Ok(key),
        Err(_) if is_encrypted(&pem) => Err(SslContextError::file(
            setting,
            path,
            "the private key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN)",
        )),
        Err(rustls_pki_types::pem::Error::NoItemsFound) => Err(SslContextError::file(
            setting,
            path,
            "no PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY) in it",
        )),
        Err(error) => Err(SslContextError::file(setting, path, error)),
    }
}

/// A certificate chain and its key, checked to belong together. `key_path` may be the
/// certificate file itself (Workerman allows both in `local_cert`).
pub(crate) fn certified_key(
    cert_path: &Path,
    key_path: Option<&Path>,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, SslContextError> {
    let chain = load_chain("local_cert", cert_path)?;
    let (setting, key_path) = match key_path {
        Some(path) => ("local_pk", path),
        None => ("local_cert", cert_path),
    };
    let key = load_key(setting, key_path)?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|error| SslContextError::file(setting, key_path, error))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(certified))
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(SslContextError::file(
                setting,
                key_path,
                format_args!(
                    "the private key does not match the certificate in {}",
                    cert_path.display()
                ),
            ))
        }
        Err(error) => Err(SslContextError::file("local_cert", cert_path, error)),
    }
}

/// Trust anchors from a CA bundle (`cafile`).
pub(crate) fn load_roots(path: &Path) -> Result<RootCertStore, SslContextError> {
    let mut roots = RootCertStore::empty();
    for certificate in load_chain("cafile", path)? {
        roots
            .add(certificate)
            .map_err(|error| SslContextError::file("cafile", path, error))?;
    }
    Ok(roots)
}

/// The system's trusted roots (`rustls-native-certs`), read once per process: reading them is
/// file I/O, so it happens at the first client configuration, not per connection.
pub(crate) fn system_roots() -> Result<Arc<RootCertStore>, SslContextError> {
    static ROOTS: std::sync::OnceLock<Result<Arc<RootCertStore>, SslContextError>> =
        std::sync::OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map(|error| format!(" ({error})"))
                    .unwrap_or_default();
                return Err(SslContextError::new(format!(
                    "ssl: no system root certificates found{why}; install ca-certificates or set cafile"
                )));
            }
            Ok(Arc::new(roots))
        })
        .clone()
}
