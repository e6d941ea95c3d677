//! A server and a client session driven against each other in memory, with certificates made
//! by rcgen at run time; and against `openssl s_server` / `s_client` over loopback sockets.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

use super::{SslContext, TlsError, TlsLayer, TlsSession};

/// A CA that signs leaf certificates, written as PEM files into a fresh directory.
pub(crate) struct TestPki {
    pub(crate) dir: PathBuf,
    ca_params: CertificateParams,
    ca_key: KeyPair,
    ca_cert: rcgen::Certificate,
}

impl TestPki {
    pub(crate) fn new(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "workerman-tls-{label}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("workerman test CA {label}"),
        );
        let ca_cert = ca_params.clone().self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
        TestPki {
            dir,
            ca_params,
            ca_key,
            ca_cert,
        }
    }

    pub(crate) fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A leaf for `names`, signed by the CA, written as `<file>.pem` / `<file>.key`; `adjust`
    /// may change its validity.
    pub(crate) fn leaf(
        &self,
        file: &str,
        names: &[&str],
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        adjust(&mut params);
        let issuer = self.ca_params.clone().self_signed(&self.ca_key).unwrap();
        let _ = &self.ca_cert;
        let cert = params.signed_by(&key, &issuer, &self.ca_key).unwrap();
        let cert_path = self.dir.join(format!("{file}.pem"));
        let key_path = self.dir.join(format!("{file}.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn server_context(cert: &Path, key: &Path) -> SslContext {
    SslContext::new().local_cert(cert).local_pk(key)
}

fn client_for(pki: &TestPki) -> SslContext {
    SslContext::new().cafile(pki.ca_file())
}

/// Each side's plaintext, or the side that failed and why.
type Pumped = Result<(Vec<u8>, Vec<u8>), (&'static str, TlsError)>;

/// Moves ciphertext both ways until neither side has anything to say; returns each side's
/// plaintext, or the first error with the side that raised it.
fn pump(server: &mut TlsSession, client: &mut TlsSession) -> Pumped {
    let mut server_plaintext = Vec::new();
    let mut client_plaintext = Vec::new();
    for _ in 0..1000 {
        let mut to_server = Vec::new();
        client.write_to(&mut to_server).unwrap();
        let mut to_client = Vec::new();
        server.write_to(&mut to_client).unwrap();
        if to_server.is_empty() && to_client.is_empty() {
            return Ok((server_plaintext, client_plaintext));
        }
        server
            .receive(&to_server, &mut server_plaintext)
            .map_err(|error| ("server", error))?;
        client
            .receive(&to_client, &mut client_plaintext)
            .map_err(|error| ("client", error))?;
    }
    panic!("the sessions never went quiet");
}

fn pair(server: &SslContext, client: &SslContext, name: &str) -> (TlsSession, TlsSession) {
    let server = TlsSession::server(server.server_config().unwrap()).unwrap();
    let client = TlsSession::client(client.client_config(&[b"http/1.1"]).unwrap(), name).unwrap();
    (server, client)
}

#[test]
fn handshake_then_data_both_ways_then_close_notify() {
    let pki = TestPki::new("basic");
    let (cert, key) = pki.leaf("localhost", &["localhost"], |_| {});
    let (mut server, mut client) =
        pair(&server_context(&cert, &key), &client_for(&pki), "localhost");
    assert!(server.is_handshaking() && client.is_handshaking());
    pump(&mut server, &mut client).unwrap();
    assert!(!server.is_handshaking() && !client.is_handshaking());
    assert_eq!(server.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(server.server_name(), Some("localhost"));

    assert_eq!(client.send(b"GET / HTTP/1.1\r\n\r\n"), 18);
    assert_eq!(server.send(b"HTTP/1.1 200 OK\r\n\r\n"), 19);
    let (at_server, at_client) = pump(&mut server, &mut client).unwrap();
    assert_eq!(at_server, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(at_client, b"HTTP/1.1 200 OK\r\n\r\n");

    server.close_notify();
    assert_eq!(
        server.send(b"late"),
        0,
        "nothing is encrypted after close_notify"
    );
    let mut to_client = Vec::new();
    server.write_to(&mut to_client).unwrap();
    assert_eq!(
        to_client[0], 0x17,
        "TLS 1.3 sends the close_notify alert encrypted"
    );
    let received = client.receive(&to_client, &mut Vec::new()).unwrap();
    assert!(received.peer_closed);
}

#[test]
fn data_sent_before_the_handshake_ends_arrives_after_it() {
    let pki = TestPki::new("early");
    let (cert, key) = pki.leaf("localhost", &["localhost"], |_| {});
    let (mut server, mut client) =
        pair(&server_context(&cert, &key), &client_for(&pki), "localhost");
    assert_eq!(client.send(b"hello\n"), 6);
    let (at_server, _) = pump(&mut server, &mut client).unwrap();
    assert_eq!(at_server, b"hello\n");
}

#[test]
fn a_large_transfer_goes_through_bounded_buffers() {
    let pki = TestPki::new("large");
    let (cert, key) = pki.leaf("localhost", &["localhost"], |_| {});
    let (mut server, mut client) =
        pair(&server_context(&cert, &key), &client_for(&pki), "localhost");
    pump(&mut server, &mut client).unwrap();
    let body: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut offset = 0;
    let mut received = Vec::new();
    let mut largest_flight = 0;
    while offset < body.len() {
        let taken = server.send(&body[offset..]);
        offset += taken;
        let mut flight = Vec::new();
        server.write_to(&mut flight).unwrap();
        largest_flight = largest_flight.max(flight.len());
        client.receive(&flight, &mut received).unwrap();
        assert!(taken > 0 || !flight.is_empty(), "no progress");
    }
    assert_eq!(received, body);
    assert!(
        largest_flight <= super::CIPHERTEXT_BUFFER_LIMIT + 16 * 1024 + 512,
        "the session held {largest_flight} bytes of ciphertext"
    );
}

#[test]
fn sni_chooses_between_two_certificates() {
    let pki = TestPki::new("sni");
    let (default_cert, default_key) = pki.leaf("default", &["default.test"], |_| {});
    let (other_cert, other_key) = pki.leaf("other", &["other.test"], |_| {});
    let (wild_cert, wild_key) = pki.leaf("wild", &["*.wild.test"], |_| {});
    let server = server_context(&default_cert, &default_key)
        .sni_server_cert("Other.Test", &other_cert, &other_key)
        .sni_server_cert("*.wild.test", &wild_cert, &wild_key);
    let leaf_of =
        |path: &Path| super::certificates::load_chain("local_cert", path).unwrap()[0].clone();
    for (name, expected) in [
        ("other.test", leaf_of(&other_cert)),
        ("default.test", leaf_of(&default_cert)),
        ("a.wild.test", leaf_of(&wild_cert)),
    ] {
        let (mut server, mut client) = pair(&server, &client_for(&pki), name);
        pump(&mut server, &mut client).unwrap();
        assert_eq!(
            client.peer_certificates().unwrap()[0],
            expected,
            "for {name}"
        );
    }
    // A name no certificate has: the default one is shown, and the client refuses it.
    let (mut server, mut client) = pair(&server, &client_for(&pki), "unknown.test");
    let (side, error) = pump(&mut server, &mut client).unwrap_err();
    assert_eq!(side, "client", "{error}");
}

#[test]
fn client_certificates_required_accepted_and_refused() {
    let pki = TestPki::new("mtls");
    let other_pki = TestPki::new("mtls-other");
    let (cert, key) = pki.leaf("server", &["localhost"], |_| {});
    let (client_cert, client_key) = pki.leaf("client", &["client.test"], |_| {});
    let (stranger_cert, stranger_key) = other_pki.leaf("stranger", &["client.test"], |_| {});
    let server = server_context(&cert, &key)
        .verify_peer(true)
        .cafile(pki.ca_file());

    let with_cert = client_for(&pki)
        .local_cert(&client_cert)
        .local_pk(&client_key);
    let (mut tls_server, mut tls_client) = pair(&server, &with_cert, "localhost");
    pump(&mut tls_server, &mut tls_client).unwrap();
    assert!(tls_server.peer_certificates().is_some());

    let without_cert = client_for(&pki);
    let (mut tls_server, mut tls_client) = pair(&server, &without_cert, "localhost");
    let (side, error) = pump(&mut tls_server, &mut tls_client).unwrap_err();
    assert_eq!(side, "server", "{error}");

    let stranger = client_for(&pki)
        .local_cert(&stranger_cert)
        .local_pk(&stranger_key);
    let (mut tls_server, mut tls_client) = pair(&server, &stranger, "localhost");
    let (side, error) = pump(&mut tls_server, &mut tls_client).unwrap_err();
    assert_eq!(side, "server", "{error}");
}

#[test]
fn expired_and_wrong_host_certificates_are_refused_by_the_client() {
    let pki = TestPki::new("refuse");
    let (expired_cert, expired_key) = pki.leaf("expired", &["localhost"], |params| {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    });
    let (cert, key) = pki.leaf("server", &["localhost"], |_| {});
    let (mut server, mut client) = pair(
        &server_context(&expired_cert, &expired_key),
        &client_for(&pki),
        "localhost",
    );
    let (side, error) = pump(&mut server, &mut client).unwrap_err();
    assert_eq!(side, "client");
    assert!(error.to_string().contains("xpired"), "{error}");

    let (mut server, mut client) = pair(
        &server_context(&cert, &key),
        &client_for(&pki),
        "example.org",
    );
    let (side, error) = pump(&mut server, &mut client).unwrap_err();
    assert_eq!(side, "client");
    assert!(error.to_string().to_lowercase().contains("name"), "{error}");

    // An unknown CA: the system roots do not know the test CA.
    let stranger = TestPki::new("refuse-ca");
    let (mut server, mut client) = pair(
        &server_context(&cert, &key),
        &client_for(&stranger),
        "localhost",
    );
    assert_eq!(pump(&mut server, &mut client).unwrap_err().0, "client");
}

#[test]
fn insecure_skip_verify_accepts_an_unknown_certificate_for_another_name() {
    let pki = TestPki::new("insecure");
    let (cert, key) = pki.leaf("server", &["localhost"], |_| {});
    let skip = SslContext::new().insecure_skip_verify(true);
    let (mut server, mut client) = pair(&server_context(&cert, &key), &skip, "example.org");
    pump(&mut server, &mut client).unwrap();
    assert!(!client.is_handshaking());
}

#[test]
fn a_plain_http_request_on_a_tls_port_is_told_apart() {
    let pki = TestPki::new("plain");
    let (cert, key) = pki.leaf("server", &["localhost"], |_| {});
    let config = server_context(&cert, &key).server_config().unwrap();
    let mut server = TlsSession::server(config).unwrap();
    let error = server
        .receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", &mut Vec::new())
        .unwrap_err();
    assert!(matches!(error, TlsError::PlainText), "{error}");
    let response = String::from_utf8_lossy(super::PLAIN_HTTP_ON_TLS_PORT);
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains(&format!("Content-Length: {}", body.len())),
        "{response}"
    );
}

#[test]
fn garbage_and_truncated_records_are_errors_with_an_alert() {
    let pki = TestPki::new("garbage");
    let (cert, key) = pki.leaf("server", &["localhost"], |_| {});
    let config = server_context(&cert, &key).server_config().unwrap();

    // A handshake message longer than TLS allows: refused (rustls sends no alert for it).
    let mut server = TlsSession::server(config.clone()).unwrap();
    let error = server.receive(
        &[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5],
        &mut Vec::new(),
    );
    assert!(matches!(error, Err(TlsError::Protocol(_))), "{error:?}");

    // A well-framed ClientHello with nothing in it: refused with a decode_error alert.
    let mut server = TlsSession::server(config.clone()).unwrap();
    let error = server.receive(&[0x16, 0x03, 0x01, 0x00, 0x04, 1, 0, 0, 0], &mut Vec::new());
    assert!(matches!(error, Err(TlsError::Protocol(_))), "{error:?}");
    let mut alert = Vec::new();
    server.write_to(&mut alert).unwrap();
    assert_eq!(
        alert.first(),
        Some(&0x15),
        "an alert is sent before the close ({error:?})"
    );

    // Half a ClientHello is no error: the session waits (the handshake deadline ends it).
    let client_config = client_for(&pki).client_config(&[]).unwrap();
    let mut client = TlsSession::client(client_config, "localhost").unwrap();
    let mut hello = Vec::new();
    client.write_to(&mut hello).unwrap();
    assert!(super::looks_like_tls_client_hello(&hello));
    let mut server = TlsSession::server(config.clone()).unwrap();
    let received = server
        .receive(&hello[..hello.len() / 2], &mut Vec::new())
        .unwrap();
    assert!(server.is_handshaking() && received.plaintext == 0);

    // A record claiming more than TLS allows.
    let mut server = TlsSession::server(config).unwrap();
    let error = server.receive(&[0x16, 0x03, 0x03, 0xff, 0xff, 0], &mut Vec::new());
    assert!(matches!(error, Err(TlsError::Protocol(_))), "{error:?}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Any bytes after a real handshake: an error or nothing, never a panic.
    #[test]
    fn random_bytes_never_panic(chunks in proptest::collection::vec(
        proptest::collection::vec(proptest::num::u8::ANY, 0..300), 1..6))
    {
        let config = shared_server_config();
        let mut server = TlsSession::server(config).unwrap();
        for chunk in chunks {
            let mut prefixed = vec![0x16, 0x03, 0x01];
            prefixed.extend(chunk);
            if server.receive(&prefixed, &mut Vec::new()).is_err() {
                break;
            }
        }
    }
}

fn shared_server_config() -> Arc<rustls::ServerConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ServerConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let pki = TestPki::new("proptest");
            let (cert, key) = pki.leaf("server", &["localhost"], |_| {});
            server_context(&cert, &key).server_config().unwrap()
        })
        .clone()
}

#[test]
fn context_errors_name_the_file() {
    let pki = TestPki::new("errors");
    let (cert, key) = pki.leaf("server", &["localhost"], |_| {});
    let (_other_cert, other_key) = pki.leaf("other", &["localhost"], |_| {});

    let missing = pki.dir.join("missing.pem");
    let error = server_context(&missing, &key)
        .check()
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!("ssl local_cert {}:", missing.display())),
        "{error}"
    );

    let error = server_context(&cert, &other_key)
        .check()
        .unwrap_err()
        .to_string();
    assert!(error.contains(&other_key.display().to_string()), "{error}");
    assert!(error.contains("does not match"), "{error}");
    assert!(!error.contains('\n'), "one line: {error}");

    let error = server_context(&key, &key).check().unwrap_err().to_string();
    assert!(error.contains("no PEM certificate"), "{error}");

    let error = server_context(&cert, &cert)
        .check()
        .unwrap_err()
        .to_string();
    assert!(error.contains("no PEM private key"), "{error}");

    let encrypted = pki.dir.join("encrypted.key");
    std::fs::write(
        &encrypted,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    let error = server_context(&cert, &encrypted)
        .check()
        .unwrap_err()
        .to_string();
    assert!(error.contains("encrypted"), "{error}");

    let error = server_context(&cert, &key)
        .verify_peer(true)
        .check()
        .unwrap_err();
    assert!(error.to_string().contains("cafile"), "{error}");

    // One file holding both the chain and the key.
    let combined = pki.dir.join("combined.pem");
    let both = [std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap()].concat();
    std::fs::write(&combined, both).unwrap();
    SslContext::new().local_cert(&combined).check().unwrap();
}

#[test]
fn a_reloaded_context_reads_the_rotated_certificate() {
    let pki = TestPki::new("reload");
    let (cert, key) = pki.leaf("server", &["localhost"], |_| {});
    let context = server_context(&cert, &key);
    let first = context.server_config().unwrap();
    let leaf_before = super::certificates::load_chain("local_cert", &cert).unwrap()[0].clone();
    pki.leaf("server", &["localhost"], |_| {}); // rotated in place
    let second = context.server_config().unwrap();
    for (config, expect_rotated) in [(first, false), (second, true)] {
        let mut server = TlsSession::server(config).unwrap();
        let client_config = client_for(&pki).client_config(&[]).unwrap();
        let mut client = TlsSession::client(client_config, "localhost").unwrap();
        pump(&mut server, &mut client).unwrap();
        let shown = &client.peer_certificates().unwrap()[0];
        assert_eq!(shown != &leaf_before, expect_rotated);
    }
}

#[test]
fn the_layer_counts_the_ciphertext_it_holds_until_the_socket_takes_it() {
    use crate::connection::stream::Stream;
    use crate::connection::transport::Layer;
    use std::io::Read;

    let pki = TestPki::new("pending");
    let (cert, key) = pki.leaf("localhost", &["localhost"], |_| {});
    let (mut server, mut client) =
        pair(&server_context(&cert, &key), &client_for(&pki), "localhost");
    pump(&mut server, &mut client).unwrap();
    let (ours, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    peer.set_nonblocking(true).unwrap();
    let socket = Stream::Unix(mio::net::UnixStream::from_std(ours));
    let mut layer = TlsLayer::new(server);
    assert_eq!(layer.pending(), 0);

    // A peer that does not read: plaintext goes in until the layer refuses more.
    let chunk = vec![b'x'; 100_000];
    let mut taken = 0;
    loop {
        match layer.write(&socket, &chunk) {
            Ok(count) => taken += count,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(error) => panic!("{error}"),
        }
        assert!(taken < 64 * 1024 * 1024, "the socket never filled");
    }
    let held = layer.pending();
    assert!(
        held > 0 && layer.wants_write(),
        "nothing held at WouldBlock"
    );
    assert!(held <= super::CIPHERTEXT_BUFFER_LIMIT + 1024, "{held}");

    // What the kernel took, then what the layer held: exactly `held` more bytes arrive.
    let mut ciphertext = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut read_all = |peer: &mut std::os::unix::net::UnixStream, into: &mut Vec<u8>| loop {
        match peer.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => into.extend_from_slice(&buffer[..count]),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(error) => panic!("{error}"),
        }
    };
    read_all(&mut peer, &mut ciphertext);
    let before_flush = ciphertext.len();
    let mut rounds = 0;
    while !layer.flush(&socket).unwrap() {
        read_all(&mut peer, &mut ciphertext);
        rounds += 1;
        assert!(rounds < 1000, "the layer never emptied");
    }
    read_all(&mut peer, &mut ciphertext);
    assert_eq!(ciphertext.len() - before_flush, held);
    assert_eq!(layer.pending(), 0);
    assert!(!layer.wants_write());

    // And it is the plaintext, whole.
    let mut plaintext = Vec::new();
    client.receive(&ciphertext, &mut plaintext).unwrap();
    assert_eq!(plaintext.len(), taken);
    assert!(plaintext.iter().all(|&byte| byte == b'x'));
}

#[test]
fn no_ticket_makes_every_handshake_a_full_one() {
    let pki = TestPki::new("no-ticket");
    let (cert, key) = pki.leaf("localhost", &["localhost"], |_| {});
    for (no_ticket, second) in [
        (false, rustls::HandshakeKind::Resumed),
        (true, rustls::HandshakeKind::Full),
    ] {
        let server_config = server_context(&cert, &key)
            .no_ticket(no_ticket)
            .server_config()
            .unwrap();
        // One client configuration: its session cache keeps what the first connection got.
        let client_config = client_for(&pki).client_config(&[b"http/1.1"]).unwrap();
        for round in 0..2 {
            let mut server = TlsSession::server(server_config.clone()).unwrap();
            let mut client = TlsSession::client(client_config.clone(), "localhost").unwrap();
            pump(&mut server, &mut client).unwrap();
            let expected = if round == 0 {
                rustls::HandshakeKind::Full
            } else {
                second
            };
            assert_eq!(
                client.handshake_kind(),
                Some(expected),
                "no_ticket {no_ticket}"
            );
        }
    }
}
