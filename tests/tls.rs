//! TLS servers (`https://`, `wss://`, `set_transport("ssl")`) over loopback, against our test
//! client (rustls), `curl --cacert` and `openssl s_client`: every request answered, the close
//! sent as close_notify, client certificates, plain HTTP on the TLS port, garbage, a silent
//! client cut at the handshake deadline, and start refused for a bad certificate file.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::tls::{Pki, exchange, tls_connect};
use support::{READ_TIMEOUT, require_program, start};
use workerman::connection::SslContext;
use workerman::protocols::http::{Request, Response, ServerSentEvents};
use workerman::{TcpConnection, Worker};

fn https_hello(pki: &Pki, context: SslContext) -> workerman::RunningWorker {
    let _ = pki;
    start(move || {
        let mut worker = Worker::new("https://127.0.0.1:0");
        worker.set_ssl_context(context);
        worker.on_message(|connection: &TcpConnection, request: Request| {
            if request.header("accept") == Some("text/event-stream") {
                connection.send(Response::new(
                    200,
                    [("Content-Type", "text/event-stream")],
                    "\r\n",
                ));
                connection.send(ServerSentEvents::new().event("message").data("hello").id(1));
                connection.close();
                return;
            }
            connection.send(format!("hello {}", request.path()));
        });
        worker
    })
}

#[test]
fn https_requests_keep_alive_and_close_with_close_notify() {
    let pki = Pki::new("https");
    let (cert, key) = pki.leaf("server", &["localhost"]);
    let server = https_hello(&pki, SslContext::new().local_cert(&cert).local_pk(&key));
    let mut stream = tls_connect(server.local_address(), "localhost", pki.client_config(None));
    let response = exchange(
        &mut stream,
        b"GET /a HTTP/1.1\r\nHost: localhost\r\n\r\nGET /b HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .expect("a clean TLS close (close_notify) after two answers");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.contains("hello /a") && text.ends_with("hello /b"),
        "{text}"
    );
    assert_eq!(stream.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    server.stop();
}

#[test]
fn curl_with_the_ca_reads_https_and_sse() {
    let curl = require_program("curl");
    let pki = Pki::new("curl");
    let (cert, key) = pki.leaf("server", &["localhost"]);
    let server = https_hello(&pki, SslContext::new().local_cert(&cert).local_pk(&key));
    let port = server.local_address().port();
    let resolve = format!("localhost:{port}:127.0.0.1");
    let output = Command::new(&curl)
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(pki.ca_file())
        .args(["--resolve", &resolve])
        .arg(format!("https://localhost:{port}/one"))
        .arg(format!("https://localhost:{port}/two"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "hello /onehello /two"
    );

    let output = Command::new(&curl)
        .args([
            "-sS",
            "-N",
            "--max-time",
            "10",
            "-H",
            "Accept: text/event-stream",
            "--cacert",
        ])
        .arg(pki.ca_file())
        .args(["--resolve", &resolve])
        .arg(format!("https://localhost:{port}/events"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("event: message\nid: 1\ndata: hello\n\n"),
        "{stdout:?}"
    );

    // Without the CA, curl refuses the certificate.
    let refused = Command::new(&curl)
        .args(["-sS", "--max-time", "10", "--resolve", &resolve])
        .arg(format!("https://localhost:{port}/"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    server.stop();
}

#[test]
fn text_over_ssl_transport_with_openssl_s_client() {
    let openssl = require_program("openssl");
    let pki = Pki::new("s-client");
    let (cert, key) = pki.leaf("server", &["localhost"]);
    let context = SslContext::new().local_cert(&cert).local_pk(&key);
    let server = start(move || {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.set_transport("ssl");
        assert_eq!(worker.transport(), "ssl");
        worker.set_ssl_context(context);
        worker.on_message(|connection: &TcpConnection, line: String| {
            connection.send(line.to_uppercase());
        });
        worker
    });
    let mut client = Command::new(openssl)
        .args([
            "s_client",
            "-quiet",
            "-verify_return_error",
            "-servername",
            "localhost",
        ])
        .args(["-verify_hostname", "localhost", "-CAfile"])
        .arg(pki.ca_file())
        .arg("-connect")
        .arg(server.local_address().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    client
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"hello over tls\n")
        .unwrap();
    let stdout = client.stdout.take().unwrap();
    let (lines, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = lines.send(line);
    });
    let line = receive.recv_timeout(Duration::from_secs(10));
    let _ = client.kill();
    let _ = client.wait();
    assert_eq!(line.as_deref(), Ok("HELLO OVER TLS\n"));
    server.stop();
}

#[test]
fn client_certificates_required_by_verify_peer() {
    let pki = Pki::new("mtls");
    let (cert, key) = pki.leaf("server", &["localhost"]);
    let (client_cert, client_key) = pki.leaf("client", &["client"]);
    let context = SslContext::new()
        .local_cert(&cert)
        .local_pk(&key)
        .verify_peer(true)
        .cafile(pki.ca_file());
    let server = https_hello(&pki, context);
    let request = b"GET /me HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

    let config = pki.client_config(Some((&client_cert, &client_key)));
    let mut stream = tls_connect(server.local_address(), "localhost", config);
    let response = exchange(&mut stream, request).unwrap();
    assert!(String::from_utf8_lossy(&response).ends_with("hello /me"));

    let mut stream = tls_connect(server.local_address(), "localhost", pki.client_config(None));
    let refused = exchange(&mut stream, request);
    assert!(
        refused.is_err() || refused.as_ref().is_ok_and(Vec::is_empty),
        "{refused:?}"
    );
    server.stop();
}

#[test]
fn plain_http_on_the_tls_port_gets_a_400_and_garbage_a_close() {
    let pki = Pki::new("plain");
    let (cert, key) = pki.leaf("server", &["localhost"]);
    let server = https_hello(&pki, SslContext::new().local_cert(&cert).local_pk(&key));

    let mut plain = support::connect(server.local_address());
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let answer = support::read_to_close(&mut plain);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request"), "{answer:?}");

    let mut garbage = support::connect(server.local_address());
    garbage
        .write_all(&[0x16, 0x03, 0x01, 0x00, 0x04, 1, 0, 0, 0])
        .unwrap();
    let answer = support::read_to_close(&mut garbage);
    assert!(
        answer.len() < 64 && answer.first().is_none_or(|&byte| byte == 0x15),
        "{answer:?}"
    );

    // The server still serves after both.
    let mut stream = tls_connect(server.local_address(), "localhost", pki.client_config(None));
    let response = exchange(
        &mut stream,
        b"GET /ok HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(String::from_utf8_lossy(&response.unwrap()).ends_with("hello /ok"));
    server.stop();
}

#[test]
fn a_client_that_never_finishes_its_handshake_is_cut_at_the_deadline() {
    let pki = Pki::new("slow");
    let (cert, key) = pki.leaf("server", &["localhost"]);
    let context = SslContext::new().local_cert(&cert).local_pk(&key);
    let server = start(move || {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.set_transport("ssl");
        worker.set_ssl_context(context);
        worker
    });
    let started = Instant::now();
    let mut silent = support::connect(server.local_address());
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut byte = [0u8; 1];
    let read = silent.read(&mut byte);
    let waited = started.elapsed();
    assert!(matches!(read, Ok(0)) || read.is_err(), "{read:?}");
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(25),
        "cut after {waited:?}"
    );
    let _ = READ_TIMEOUT;
    server.stop();
}

#[test]
fn start_fails_naming_a_missing_or_mismatched_file() {
    let pki = Pki::new("bad-files");
    let (cert, _key) = pki.leaf("server", &["localhost"]);
    let (_other, other_key) = pki.leaf("other", &["localhost"]);
    let missing = pki.dir.join("missing.pem");
    for (cert, key, named) in [
        (missing.clone(), other_key.clone(), missing.clone()),
        (cert, other_key.clone(), other_key),
    ] {
        let context = SslContext::new().local_cert(&cert).local_pk(&key);
        let error = Worker::spawn(move || {
            let mut worker = Worker::new("https://127.0.0.1:0");
            worker.set_ssl_context(context);
            worker
        })
        .err()
        .expect("start refused");
        let message = error.to_string();
        assert!(message.contains(&named.display().to_string()), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }
}

#[test]
fn a_tls_client_hello_on_a_plain_http_port_is_closed_without_an_answer() {
    let pki = Pki::new("hello-on-plain");
    let server = start(|| {
        let mut worker = Worker::new("http://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, _: Request| {
            connection.send("plain");
        });
        worker
    });
    let mut stream = tls_connect(server.local_address(), "localhost", pki.client_config(None));
    let result = exchange(&mut stream, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(result.is_err(), "{result:?}");
    let mut raw = support::connect(server.local_address());
    raw.write_all(&[
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ])
    .unwrap();
    assert_eq!(
        support::read_to_close(&mut raw),
        b"",
        "closed with nothing written"
    );
    server.stop();
}

#[test]
fn python_websockets_over_wss_and_frame_over_ssl() {
    let python = require_program("python3");
    let pki = Pki::new("python-wss");
    let (cert, key) = pki.leaf("server", &["localhost"]);
    let context = SslContext::new().local_cert(&cert).local_pk(&key);
    let server = start(move || {
        let mut worker = Worker::new("wss://127.0.0.1:0");
        worker.set_ssl_context(context);
        worker.on_message(
            |connection: &TcpConnection, message: workerman::protocols::websocket::Message| {
                if let workerman::protocols::websocket::Message::Text(text) = message {
                    connection.send(workerman::protocols::websocket::Message::Text(format!(
                        "echo {text}"
                    )));
                }
            },
        );
        worker
    });
    let script = r#"
import ssl, sys
from websockets.sync.client import connect
context = ssl.create_default_context(cafile=sys.argv[2])
with connect(sys.argv[1], ssl=context, server_hostname="localhost", open_timeout=10) as ws:
    ws.send("hi from python")
    print(ws.recv(timeout=10))
"#;
    let url = format!("wss://127.0.0.1:{}/", server.local_address().port());
    let output = Command::new(python)
        .args(["-c", script, &url])
        .arg(pki.ca_file())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "echo hi from python\n"
    );
    server.stop();

    // frame:// (4-byte length prefix) over ssl, with our rustls client.
    let (cert, key) = pki.leaf("frame", &["localhost"]);
    let context = SslContext::new().local_cert(&cert).local_pk(&key);
    let server = start(move || {
        let mut worker = Worker::new("frame://127.0.0.1:0");
        worker.set_transport("ssl");
        worker.set_ssl_context(context);
        worker.on_message(|connection: &TcpConnection, bytes: Vec<u8>| {
            connection.send([&bytes[..], b"!"].concat());
            connection.close();
        });
        worker
    });
    let mut stream = tls_connect(server.local_address(), "localhost", pki.client_config(None));
    let response = exchange(&mut stream, b"\x00\x00\x00\x07abc").unwrap();
    assert_eq!(response, b"\x00\x00\x00\x08abc!");
    server.stop();
}

#[test]
fn http_over_tls_on_a_unix_socket() {
    let pki = Pki::new("unix");
    let (cert, key) = pki.leaf("server", &["localhost"]);
    let path = pki.dir.join("tls.sock");
    let address = format!("http://{}", path.display());
    let context = SslContext::new().local_cert(&cert).local_pk(&key);
    let server = start(move || {
        let mut worker = Worker::new(&address);
        worker.set_transport("unix");
        worker.set_transport("ssl");
        assert_eq!(worker.transport(), "unix");
        worker.set_ssl_context(context);
        worker.on_message(|connection: &TcpConnection, request: Request| {
            connection.send(format!("unix {}", request.path()));
        });
        worker
    });
    let socket = std::os::unix::net::UnixStream::connect(&path).unwrap();
    socket.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(pki.client_config(None), name).unwrap();
    let mut stream = rustls::StreamOwned::new(connection, socket);
    stream
        .write_all(b"GET /tls HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    assert!(String::from_utf8_lossy(&response).ends_with("unix /tls"));
    server.stop();
}

#[test]
fn buffer_full_and_drain_and_pause_recv_over_tls() {
    let pki = Pki::new("backpressure");
    let (cert, key) = pki.leaf("server", &["localhost"]);
    let context = SslContext::new().local_cert(&cert).local_pk(&key);
    let (events, received) = std::sync::mpsc::channel::<String>();
    const TOTAL: usize = 8 * 1024 * 1024;
    let server = start(move || {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.set_transport("ssl");
        worker.set_ssl_context(context);
        let full = events.clone();
        worker.on_buffer_full(move |_| full.send("full".into()).unwrap());
        let drain = events.clone();
        worker.on_buffer_drain(move |connection| {
            drain.send("drain".into()).unwrap();
            connection.resume_recv();
        });
        worker.on_message(move |connection: &TcpConnection, line: String| {
            events.send(format!("message {line}")).unwrap();
            if line == "ping" {
                // Stop reading until what is sent has drained; send more than the buffer holds.
                connection.pause_recv();
                let chunk = "x".repeat(256 * 1024 - 1);
                let mut refused = 0;
                for _ in 0..TOTAL / chunk.len() {
                    if connection.send(chunk.as_str()) == workerman::SendResult::Refused {
                        refused += 1;
                    }
                }
                events.send(format!("refused {}", refused > 0)).unwrap();
            } else {
                connection.close();
            }
        });
        worker
    });
    let mut stream = tls_connect(server.local_address(), "localhost", pki.client_config(None));
    stream.write_all(b"ping\n").unwrap();
    stream.flush().unwrap();
    assert_eq!(
        received.recv_timeout(READ_TIMEOUT).as_deref(),
        Ok("message ping")
    );
    assert_eq!(received.recv_timeout(READ_TIMEOUT).as_deref(), Ok("full"));
    assert_eq!(
        received.recv_timeout(READ_TIMEOUT).as_deref(),
        Ok("refused true")
    );
    // Sent while the server's reading is paused: it is read only after the drain.
    stream.write_all(b"pong\n").unwrap();
    stream.flush().unwrap();
    assert!(
        received.recv_timeout(Duration::from_millis(300)).is_err(),
        "read while paused"
    );
    let mut taken = 0;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = stream.read(&mut buffer).expect("a clean TLS stream");
        if read == 0 {
            break;
        }
        assert!(
            buffer[..read]
                .iter()
                .all(|&byte| byte == b'x' || byte == b'\n')
        );
        taken += read;
    }
    let rest: Vec<String> = received.try_iter().collect();
    assert_eq!(rest, ["drain", "message pong"]);
    assert!((1024 * 1024..TOTAL).contains(&taken), "{taken}");
    server.stop();
}

#[test]
fn the_send_buffer_limit_counts_ciphertext_and_drain_waits_for_all_of_it() {
    // Over a Unix socket, where every byte the kernel holds waits in the reader's queue
    // (FIONREAD), so what the server says is pending can be checked to the byte.
    let pki = Pki::new("ciphertext-limit");
    let (cert, key) = pki.leaf("server", &["localhost"]);
    let path = pki.dir.join("limit.sock");
    let address = format!("text://{}", path.display());
    let context = SslContext::new().local_cert(&cert).local_pk(&key);
    // The limit counts the plaintext queued and the ciphertext the TLS layer holds (up to
    // 64 KiB, more than the limit).
    const LIMIT: usize = 32 * 1024;
    const LINE: usize = 8 * 1024;
    let (events, received) = std::sync::mpsc::channel::<(String, usize)>();
    let server = start(move || {
        let mut worker = Worker::new(&address);
        worker.set_transport("unix");
        worker.set_transport("ssl");
        worker.set_ssl_context(context);
        worker.set_max_send_buffer_size(LIMIT);
        let full = events.clone();
        worker.on_buffer_full(move |connection| {
            full.send(("full".into(), connection.send_buffer_queue_size()))
                .unwrap();
        });
        let drain = events.clone();
        worker.on_buffer_drain(move |connection| {
            drain
                .send(("drain".into(), connection.send_buffer_queue_size()))
                .unwrap();
            connection.resume_recv();
        });
        worker.on_message(move |connection: &TcpConnection, line: String| {
            if line != "go" {
                events.send((format!("message {line}"), 0)).unwrap();
                connection.close();
                return;
            }
            connection.pause_recv();
            let chunk = "y".repeat(LINE - 1);
            let mut accepted = 0;
            for _ in 0..100_000 {
                if connection.send(chunk.as_str()) == workerman::SendResult::Refused {
                    break;
                }
                accepted += LINE;
            }
            events.send(("accepted".into(), accepted)).unwrap();
            events
                .send(("pending".into(), connection.send_buffer_queue_size()))
                .unwrap();
        });
        worker
    });
    let socket = std::os::unix::net::UnixStream::connect(&path).unwrap();
    socket.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(pki.client_config(None), name).unwrap();
    let mut stream = rustls::StreamOwned::new(connection, socket);
    stream.write_all(b"go\n").unwrap();
    stream.flush().unwrap();
    let (event, at_full) = received.recv_timeout(READ_TIMEOUT).unwrap();
    assert_eq!(event, "full");
    assert!(
        (LIMIT..LIMIT + LINE + 1024).contains(&at_full),
        "full with {at_full} pending"
    );
    let (event, accepted) = received.recv_timeout(READ_TIMEOUT).unwrap();
    assert_eq!(event, "accepted");
    let (event, pending) = received.recv_timeout(READ_TIMEOUT).unwrap();
    assert_eq!(event, "pending");
    assert!(pending >= LIMIT, "{pending}");
    // The peer reads nothing: no drain, and "done" waits behind pause_recv.
    stream.write_all(b"done\n").unwrap();
    stream.flush().unwrap();
    assert!(
        received.recv_timeout(Duration::from_millis(300)).is_err(),
        "an event while the peer reads nothing"
    );
    // Every accepted byte is either in the kernel (ciphertext waiting for this reader) or
    // counted as pending by the server: nothing is held uncounted. TLS adds 22 bytes a record
    // (at most one record per 8 KiB here), and the server's session tickets wait here too.
    let mut in_kernel: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int, ours, for a socket we own.
    let ok = unsafe {
        use std::os::fd::AsRawFd;
        libc::ioctl(stream.sock.as_raw_fd(), libc::FIONREAD, &mut in_kernel)
    };
    assert_eq!(ok, 0);
    let uncounted = accepted as i64 - pending as i64 - i64::from(in_kernel);
    let overhead = (22 * (accepted / LINE + 8) + 1024) as i64;
    assert!(
        uncounted.abs() <= overhead,
        "accepted {accepted}, pending {pending}, in the kernel {in_kernel}: {uncounted} bytes \
         neither pending nor written"
    );
    // Everything accepted arrives with no help from the server (no close, no further send),
    // then the drain, with nothing pending, then the paused message.
    let mut taken = 0;
    let mut buffer = vec![0u8; 64 * 1024];
    while taken < accepted {
        let read = stream.read(&mut buffer).expect("every accepted byte");
        assert!(read > 0, "closed after {taken} of {accepted}");
        taken += read;
    }
    assert_eq!(taken, accepted);
    assert_eq!(
        received.recv_timeout(READ_TIMEOUT).unwrap(),
        ("drain".to_owned(), 0)
    );
    assert_eq!(
        received.recv_timeout(READ_TIMEOUT).unwrap(),
        ("message done".to_owned(), 0)
    );
    server.stop();
}

#[test]
fn each_sse_event_over_tls_is_one_whole_record() {
    // What each pushed event costs on the wire: one `send` is one TLS record carrying the
    // whole event (head, data and tail together), never a record per piece.
    const EVENTS: u64 = 3;
    let event = |i: u64| {
        ServerSentEvents::new()
            .event("message")
            .data(format!("hello {i}"))
            .id(i)
    };
    let pki = Pki::new("record-per-event");
    let (cert, key) = pki.leaf("server", &["localhost"]);
    let context = SslContext::new().local_cert(&cert).local_pk(&key);
    let server = start(move || {
        let mut worker = Worker::new("https://127.0.0.1:0");
        worker.set_ssl_context(context);
        worker.on_message(move |connection: &TcpConnection, _request: Request| {
            connection.send(Response::new(
                200,
                [("Content-Type", "text/event-stream")],
                "\r\n",
            ));
            let connection = connection.clone();
            let mut sent = 0;
            workerman::Timer::add(0.01, move |timer| {
                sent += 1;
                connection.send(event(sent));
                if sent == EVENTS {
                    workerman::Timer::del(timer);
                    connection.close();
                }
            });
        });
        worker
    });
    let mut socket = support::connect(server.local_address());
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut client = rustls::ClientConnection::new(pki.client_config(None), name).unwrap();
    while client.is_handshaking() {
        client.complete_io(&mut socket).expect("the handshake");
    }
    client
        .writer()
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    while client.wants_write() {
        client.write_tls(&mut socket).unwrap();
    }
    // The ciphertext as it came, to the server's FIN.
    let mut wire = Vec::new();
    socket
        .read_to_end(&mut wire)
        .expect("the stream, then the close");
    // One record at a time through the client: the plaintext each one carries.
    let mut carried: Vec<Vec<u8>> = Vec::new();
    let mut rest = &wire[..];
    while !rest.is_empty() {
        assert!(rest.len() >= 5, "a truncated record header: {rest:?}");
        let length = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        let (record, after) = rest.split_at(5 + length);
        rest = after;
        let mut one = record;
        client.read_tls(&mut one).unwrap();
        assert!(one.is_empty());
        let state = client.process_new_packets().expect("a valid record");
        let mut plaintext = vec![0u8; state.plaintext_bytes_to_read()];
        client.reader().read_exact(&mut plaintext).unwrap();
        if !plaintext.is_empty() {
            carried.push(plaintext);
        }
    }
    assert!(client.process_new_packets().unwrap().peer_has_closed());
    let head = String::from_utf8_lossy(&carried[0]);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    let events: Vec<Vec<u8>> = (1..=EVENTS).map(|i| event(i).to_bytes()).collect();
    assert_eq!(
        carried[1..],
        events[..],
        "one record per event, each the whole event"
    );
    server.stop();
}
