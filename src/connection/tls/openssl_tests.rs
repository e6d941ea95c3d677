//! The session against an independent TLS stack over real loopback sockets: our client to
//! `openssl s_server`, `openssl s_client` to our server (blocking-free: non-blocking sockets
//! polled with short sleeps, bounded in time).

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::tests::TestPki;
use super::{SslContext, TlsSession};

const DEADLINE: Duration = Duration::from_secs(20);

fn require_openssl() {
    let found = Command::new("openssl").arg("version").output().is_ok();
    assert!(found, "this test needs openssl: apt-get install -y openssl");
}

/// Kills the child on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Moves bytes between `session` and `stream` until `done` says so (or the peer closes).
fn drive(
    session: &mut TlsSession,
    stream: &mut TcpStream,
    plaintext: &mut Vec<u8>,
    mut done: impl FnMut(&mut TlsSession, &[u8]) -> bool,
) {
    let start = Instant::now();
    loop {
        session.write_to(stream).unwrap();
        let received = session.read_from(stream, plaintext, 64 * 1024).unwrap();
        if done(session, plaintext) || received.peer_closed || received.socket_eof {
            session.write_to(stream).unwrap();
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out; got {:?}",
            String::from_utf8_lossy(plaintext)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn our_client_against_openssl_s_server() {
    require_openssl();
    let pki = TestPki::new("s-server");
    let (cert, key) = pki.leaf("server", &["localhost"], |_| {});
    let port = free_port();
    let _server = Child(
        Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(_) if start.elapsed() < DEADLINE => std::thread::sleep(Duration::from_millis(20)),
            Err(error) => panic!("openssl s_server never listened: {error}"),
        }
    };
    stream.set_nonblocking(true).unwrap();
    let config = SslContext::new()
        .cafile(pki.ca_file())
        .client_config(&[])
        .unwrap();
    let mut session = TlsSession::client(config, "localhost").unwrap();
    assert_eq!(session.send(b"GET / HTTP/1.0\r\n\r\n"), 18);
    let mut plaintext = Vec::new();
    drive(&mut session, &mut stream, &mut plaintext, |_, _| false);
    let page = String::from_utf8_lossy(&plaintext);
    assert!(page.starts_with("HTTP/1.0 200 ok"), "{page}");
    assert!(page.contains("TLSv1.3"), "{page}");
}

#[test]
fn openssl_s_client_against_our_server() {
    require_openssl();
    let pki = TestPki::new("s-client");
    let (cert, key) = pki.leaf("server", &["localhost"], |_| {});
    let config = SslContext::new()
        .local_cert(&cert)
        .local_pk(&key)
        .server_config()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut client = Child(
        Command::new("openssl")
            .args([
                "s_client",
                "-quiet",
                "-verify_return_error",
                "-alpn",
                "http/1.1",
            ])
            .args([
                "-servername",
                "localhost",
                "-verify_hostname",
                "localhost",
                "-connect",
            ])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-CAfile")
            .arg(pki.ca_file())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (mut stream, _) = listener.accept().unwrap();
    stream.set_nonblocking(true).unwrap();
    let mut session = TlsSession::server(config).unwrap();
    client
        .0
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"hello\n")
        .unwrap();
    let mut plaintext = Vec::new();
    drive(&mut session, &mut stream, &mut plaintext, |_, got| {
        got.ends_with(b"\n")
    });
    assert_eq!(plaintext, b"hello\n");
    assert_eq!(session.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(session.send(b"HELLO\n"), 6);
    session.close_notify();
    drive(&mut session, &mut stream, &mut Vec::new(), |session, _| {
        !session.wants_write()
    });
    drop(stream);
    drop(client.0.stdin.take());
    let output = std::mem::replace(&mut client.0, Command::new("true").spawn().unwrap())
        .wait_with_output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "HELLO\n");
}
