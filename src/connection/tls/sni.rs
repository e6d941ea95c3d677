//! Choosing the server certificate by the name the client asked for (SNI).

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Certificates by host name (`*.example.com` matches one label), and the one used when the
/// client sent no name or an unknown one (`local_cert`; without it such a handshake is refused).
#[derive(Debug, Default)]
pub(crate) struct SniResolver {
    pub(crate) default: Option<Arc<CertifiedKey>>,
    pub(crate) by_name: HashMap<String, Arc<CertifiedKey>>,
}

impl SniResolver {
    /// The certificate for `server_name` (case-insensitive).
    pub(crate) fn choose(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = server_name.map(str::to_ascii_lowercase) else {
            return self.default.clone();
        };
        if let Some(key) = self.by_name.get(&name) {
            return Some(key.clone());
        }
        let wildcard = name
            .split_once('.')
            .map(|(_, parent)| format!("*.{parent}"));
        wildcard
            .and_then(|wildcard| self.by_name.get(&wildcard).cloned())
            .or_else(|| self.default.clone())
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.choose(client_hello.server_name())
    }
}
