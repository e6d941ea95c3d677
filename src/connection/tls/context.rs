//! [`SslContext`]: Workerman's `ssl` stream context (`local_cert`, `local_pk`, `verify_peer`,
//! `cafile`, `SNI_server_certs`, `peer_name`) and the rustls configurations made from it.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig};

use super::SslContextError;
use super::certificates::{certified_key, load_chain, load_key, load_roots, system_roots};
use super::insecure::SkipServerVerification;
use super::provider::provider;
use super::sni::SniResolver;

/// The ALPN protocol servers offer by default: HTTP/1.1 (room for `h2` later).
pub(crate) const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// The `ssl` context of a TLS server or client, as Workerman's
/// `['ssl' => ['local_cert' => .., 'local_pk' => .., 'verify_peer' => .., 'cafile' => ..]]`.
///
/// Files are paths, read when the worker starts and again on `reload`, so a rotated certificate
/// needs no restart. [`SslContext::check`] reads them now and reports the first problem.
///
/// A server with one certificate, a second chosen by SNI, and client certificates required:
///
/// ```no_run
/// use workerman::connection::SslContext;
///
/// let context = SslContext::new()
///     .local_cert("/etc/ssl/example.com.pem") // the chain, leaf first
///     .local_pk("/etc/ssl/example.com.key") // PKCS#8, PKCS#1 or SEC1, not encrypted
///     .sni_server_cert("api.example.org", "/etc/ssl/api.pem", "/etc/ssl/api.key")
///     .verify_peer(true)
///     .cafile("/etc/ssl/clients-ca.pem");
/// context.check()?;
/// # Ok::<(), workerman::connection::SslContextError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct SslContext {
    local_cert: Option<PathBuf>,
    local_pk: Option<PathBuf>,
    sni_server_certs: Vec<(String, PathBuf, PathBuf)>,
    verify_peer: Option<bool>,
    cafile: Option<PathBuf>,
    peer_name: Option<String>,
    insecure_skip_verify: bool,
    alpn: Option<Vec<Vec<u8>>>,
    no_ticket: bool,
}

impl SslContext {
    /// An empty context: a client verifying servers against the system's roots; a server needs
    /// at least [`local_cert`](Self::local_cert).
    ///
    /// ```
    /// let context = workerman::connection::SslContext::new();
    /// assert!(context.check().is_err()); // a server needs local_cert
    /// ```
    pub fn new() -> Self {
        SslContext::default()
    }

    /// `local_cert`: the PEM certificate chain, leaf first (it may also hold the key).
    ///
    /// ```
    /// let context = workerman::connection::SslContext::new().local_cert("server.pem");
    /// ```
    pub fn local_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.local_cert = Some(path.into());
        self
    }

    /// `local_pk`: the PEM private key of `local_cert` (PKCS#8, PKCS#1 or SEC1, unencrypted).
    ///
    /// ```
    /// let context = workerman::connection::SslContext::new()
    ///     .local_cert("server.pem")
    ///     .local_pk("server.key");
    /// ```
    pub fn local_pk(mut self, path: impl Into<PathBuf>) -> Self {
        self.local_pk = Some(path.into());
        self
    }

    /// `SNI_server_certs`: a certificate and key used when the client asks for `host_name`
    /// (`*.example.com` matches one label); other names get `local_cert`.
    ///
    /// ```
    /// let context = workerman::connection::SslContext::new()
    ///     .local_cert("default.pem")
    ///     .local_pk("default.key")
    ///     .sni_server_cert("other.example", "other.pem", "other.key");
    /// ```
    pub fn sni_server_cert(
        mut self,
        host_name: impl Into<String>,
        local_cert: impl Into<PathBuf>,
        local_pk: impl Into<PathBuf>,
    ) -> Self {
        let host_name = host_name.into().to_ascii_lowercase();
        self.sni_server_certs
            .push((host_name, local_cert.into(), local_pk.into()));
        self
    }

    /// `verify_peer`: on a server, require a client certificate signed by `cafile` (default
    /// off); on a client, verify the server's certificate and name (default on).
    ///
    /// ```
    /// let context = workerman::connection::SslContext::new().verify_peer(true).cafile("ca.pem");
    /// ```
    pub fn verify_peer(mut self, verify: bool) -> Self {
        self.verify_peer = Some(verify);
        self
    }

    /// `cafile`: the PEM CA bundle that verifies the peer (client certificates on a server; on
    /// a client, instead of the system's roots).
    ///
    /// ```
    /// let context = workerman::connection::SslContext::new().cafile("ca.pem");
    /// ```
    pub fn cafile(mut self, path: impl Into<PathBuf>) -> Self {
        self.cafile = Some(path.into());
        self
    }

    /// `peer_name` (client): the name sent as SNI and verified in the server's certificate,
    /// instead of the host of the address.
    ///
    /// ```
    /// let context = workerman::connection::SslContext::new().peer_name("example.com");
    /// ```
    pub fn peer_name(mut self, name: impl Into<String>) -> Self {
        self.peer_name = Some(name.into());
        self
    }

    /// DANGEROUS (client): accept any server certificate for any name. Anyone on the path can
    /// then read and change the traffic. For tests and closed networks only; a warning is logged
    /// each time a configuration is made with it.
    ///
    /// ```
    /// let context = workerman::connection::SslContext::new().insecure_skip_verify(true);
    /// ```
    pub fn insecure_skip_verify(mut self, skip: bool) -> Self {
        self.insecure_skip_verify = skip;
        self
    }

    /// The ALPN protocols offered, in order of preference (default `http/1.1`); an empty list
    /// offers none.
    ///
    /// ```
    /// let context = workerman::connection::SslContext::new().alpn(["http/1.1"]);
    /// ```
    pub fn alpn<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        self.alpn = Some(protocols.into_iter().map(|p| p.as_ref().to_vec()).collect());
        self
    }

    /// `no_ticket` (server): no session resumption; every connection makes a full handshake
    /// (no TLS 1.3 tickets, no session cache). Default off: clients may resume, which saves
    /// the certificate's signature on their next connections.
    ///
    /// ```
    /// let context = workerman::connection::SslContext::new().no_ticket(true);
    /// ```
    pub fn no_ticket(mut self, no_ticket: bool) -> Self {
        self.no_ticket = no_ticket;
        self
    }

    /// Reads every file a server needs and checks them (a chain and its key, the SNI
    /// certificates, `cafile` when `verify_peer`), as `start` does before anything listens.
    ///
    /// ```
    /// let error = workerman::connection::SslContext::new()
    ///     .local_cert("/nonexistent/cert.pem")
    ///     .check()
    ///     .unwrap_err();
    /// assert!(error.to_string().starts_with("ssl local_cert /nonexistent/cert.pem:"));
    /// ```
    pub fn check(&self) -> Result<(), SslContextError> {
        self.server_config().map(drop)
    }

    /// The ALPN list to offer: the one set, else `default`.
    fn alpn_protocols(&self, default: &[&[u8]]) -> Vec<Vec<u8>> {
        self.alpn
            .clone()
            .unwrap_or_else(|| default.iter().map(|protocol| protocol.to_vec()).collect())
    }

    /// The server name a client sends and verifies: `peer_name`, else the address's host.
    pub(crate) fn client_server_name<'a>(&'a self, host: &'a str) -> &'a str {
        self.peer_name.as_deref().unwrap_or(host)
    }

    /// A server configuration, reading the files now (at start and on reload).
    pub(crate) fn server_config(&self) -> Result<Arc<ServerConfig>, SslContextError> {
        let provider = provider();
        let mut resolver = SniResolver::default();
        match &self.local_cert {
            Some(cert) => {
                resolver.default = Some(certified_key(cert, self.local_pk.as_deref(), &provider)?)
            }
            None if self.sni_server_certs.is_empty() => {
                return Err(SslContextError::new(
                    "ssl: a TLS server needs local_cert (and local_pk) in its ssl context",
                ));
            }
            None => {}
        }
        for (name, cert, key) in &self.sni_server_certs {
            let certified = certified_key(cert, Some(key), &provider)?;
            resolver.by_name.insert(name.clone(), certified);
        }
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| SslContextError::new(format!("ssl: {error}")))?;
        let builder = if self.verify_peer == Some(true) {
            let Some(cafile) = &self.cafile else {
                return Err(SslContextError::new(
                    "ssl: verify_peer on a server needs cafile (the CA of the client certificates)",
                ));
            };
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(load_roots(cafile)?),
                provider,
            )
            .build()
            .map_err(|error| SslContextError::file("cafile", cafile, error))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_cert_resolver(Arc::new(resolver));
        config.alpn_protocols = self.alpn_protocols(&[ALPN_HTTP_1_1]);
        if self.no_ticket {
            config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
            config.send_tls13_tickets = 0;
        }
        Ok(Arc::new(config))
    }

    /// A client configuration: roots from `cafile` or the system, a client certificate from
    /// `local_cert`/`local_pk` when set, or no verification when explicitly skipped. ALPN offers
    /// what [`alpn`](Self::alpn) set, else `default_alpn` (`http/1.1` for `wss://` and
    /// `https://`, nothing for raw `ssl://`).
    pub(crate) fn client_config(
        &self,
        default_alpn: &[&[u8]],
    ) -> Result<Arc<ClientConfig>, SslContextError> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| SslContextError::new(format!("ssl: {error}")))?;
        let skip = self.insecure_skip_verify || self.verify_peer == Some(false);
        let builder = if skip {
            log::warn!(
                "ssl: server certificate verification is OFF (insecure_skip_verify / verify_peer \
                 false): anyone on the path can read and change this traffic"
            );
            let verifier = SkipServerVerification {
                provider: provider.clone(),
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        } else {
            let roots = match &self.cafile {
                Some(cafile) => Arc::new(load_roots(cafile)?),
                None => system_roots()?,
            };
            builder.with_root_certificates(roots)
        };
        let mut config = match &self.local_cert {
            Some(cert) => {
                let chain = load_chain("local_cert", cert)?;
                let (setting, key_path) = match &self.local_pk {
                    Some(key) => ("local_pk", key.as_path()),
                    None => ("local_cert", cert.as_path()),
                };
                // Checks that the key matches before handing it over.
                certified_key(cert, Some(key_path), &provider)?;
                let key = load_key(setting, key_path)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|error| SslContextError::file(setting, key_path, error))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn_protocols(default_alpn);
        Ok(Arc::new(config))
    }
}
