//! `AsyncTcpConnection` over TLS against our own TLS servers on loopback: `wss://` to a
//! `wss://` worker (messages both ways), `ssl://` raw bytes to a `text` worker on
//! `set_transport("ssl")`, `ws://` + `set_transport("ssl")`, a client certificate, and a
//! wrong-host or unknown-CA certificate refused (on_error, on_close) unless verification is
//! explicitly skipped; a server that accepts and never answers fails the handshake at its
//! deadline (the connect timeout when shorter, else 10 s).

mod support;

use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use support::tls::Pki;
use workerman::connection::{AsyncTcpConnection, SslContext};
use workerman::protocols::websocket::Message;
use workerman::{RunningWorker, TcpConnection, Worker};

const WAIT: Duration = Duration::from_secs(10);

fn client_worker(
    start: impl Fn(Sender<String>) + Send + 'static,
) -> (RunningWorker, Receiver<String>) {
    let (events, received) = mpsc::channel();
    let worker = support::start(move || {
        let mut worker = Worker::new("tcp://127.0.0.1:0");
        worker.on_worker_start(move |_| start(events.clone()));
        worker
    });
    (worker, received)
}

fn next(events: &Receiver<String>) -> String {
    events
        .recv_timeout(WAIT)
        .expect("the client reports within 10 s")
}

fn wss_echo(context: SslContext) -> RunningWorker {
    support::start(move || {
        let mut worker = Worker::new("wss://127.0.0.1:0");
        worker.set_ssl_context(context);
        worker.on_message(|connection: &TcpConnection, message: Message| {
            if let Message::Text(text) = message {
                connection.send(Message::Text(format!("echo {text}")));
            }
        });
        worker
    })
}

fn text_echo_over_ssl(context: SslContext) -> RunningWorker {
    support::start(move || {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.set_transport("ssl");
        worker.set_ssl_context(context);
        worker.on_message(|connection: &TcpConnection, line: String| {
            connection.send(format!("echo {line}"));
        });
        worker
    })
}

/// A text-ish client on `address` that sends `hello`, reports messages, errors and the close.
fn report(client: &mut AsyncTcpConnection, events: &Sender<String>, hello: &'static str) {
    let on_connect = events.clone();
    client.on_connect(move |connection| {
        on_connect.send("connect".into()).unwrap();
        connection.send(hello);
    });
    let on_error = events.clone();
    client.on_error(move |_, code, message| {
        on_error.send(format!("error {code} {message}")).unwrap();
    });
    let on_close = events.clone();
    client.on_close(move |_| on_close.send("close".into()).unwrap());
}

#[test]
fn wss_client_to_wss_server() {
    let pki = Pki::new("wss-client");
    let (cert, key) = pki.leaf("server", &["localhost"]);
    let server = wss_echo(SslContext::new().local_cert(&cert).local_pk(&key));
    let port = server.local_address().port();
    let ca = pki.ca_file();
    let (_client, events) = client_worker(move |events| {
        let mut client = AsyncTcpConnection::new(&format!("wss://localhost:{port}/chat"));
        client.set_ssl_context(SslContext::new().cafile(&ca));
        let on_message = events.clone();
        client.on_message(move |connection: &TcpConnection, message: Message| {
            on_message.send(format!("message {message:?}")).unwrap();
            connection.close();
        });
        let on_open = events.clone();
        client.on_websocket_connect(move |connection, _| {
            on_open.send("open".into()).unwrap();
            connection.send(Message::Text("hi".into()));
        });
        let on_close = events.clone();
        client.on_close(move |_| on_close.send("close".into()).unwrap());
        client.connect();
    });
    assert_eq!(next(&events), "open");
    assert_eq!(next(&events), "message Text(\"echo hi\")");
    assert_eq!(next(&events), "close");
}

#[test]
fn ssl_raw_client_and_ws_with_transport_ssl() {
    let pki = Pki::new("ssl-client");
    let (cert, key) = pki.leaf("server", &["localhost"]);
    let text_server = text_echo_over_ssl(SslContext::new().local_cert(&cert).local_pk(&key));
    let ws_server = wss_echo(SslContext::new().local_cert(&cert).local_pk(&key));
    let text_port = text_server.local_address().port();
    let ws_port = ws_server.local_address().port();
    let ca = pki.ca_file();
    let (_client, events) = client_worker(move |events| {
        let mut raw = AsyncTcpConnection::new(&format!("ssl://127.0.0.1:{text_port}"));
        raw.set_ssl_context(SslContext::new().cafile(&ca).peer_name("localhost"));
        report(&mut raw, &events, "line one\n");
        let on_message = events.clone();
        raw.on_message(move |connection: &TcpConnection, bytes: Vec<u8>| {
            on_message
                .send(format!("raw {}", String::from_utf8_lossy(&bytes)))
                .unwrap();
            connection.close();
        });
        raw.connect();

        let mut ws = AsyncTcpConnection::new(&format!("ws://localhost:{ws_port}/"));
        ws.set_transport("ssl");
        ws.set_ssl_context(SslContext::new().cafile(&ca));
        let on_message = events.clone();
        ws.on_message(move |connection: &TcpConnection, message: Message| {
            on_message.send(format!("ws {message:?}")).unwrap();
            connection.close();
        });
        ws.on_websocket_connect(move |connection, _| {
            connection.send(Message::Text("over ssl".into()));
        });
        ws.connect();
    });
    let mut seen: Vec<String> = (0..4).map(|_| next(&events)).collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            "close",
            "connect",
            "raw echo line one\n",
            "ws Text(\"echo over ssl\")"
        ],
        "{seen:?}"
    );
}

#[test]
fn client_certificate_and_refused_server_certificates() {
    let pki = Pki::new("client-refuse");
    let stranger = Pki::new("client-refuse-other");
    let (cert, key) = pki.leaf("server", &["localhost"]);
    let (client_cert, client_key) = pki.leaf("client", &["client"]);
    let strict = text_echo_over_ssl(
        SslContext::new()
            .local_cert(&cert)
            .local_pk(&key)
            .verify_peer(true)
            .cafile(pki.ca_file()),
    );
    let port = strict.local_address().port();
    let ca = pki.ca_file();
    let stranger_ca = stranger.ca_file();

    // With its certificate, the client is served.
    let context = SslContext::new()
        .cafile(&ca)
        .peer_name("localhost")
        .local_cert(&client_cert)
        .local_pk(&client_key);
    let (_client, events) = client_worker(move |events| {
        let mut client = AsyncTcpConnection::new(&format!("text://127.0.0.1:{port}"));
        client.set_transport("ssl");
        client.set_ssl_context(context.clone());
        report(&mut client, &events, "mine");
        let on_message = events.clone();
        client.on_message(move |connection: &TcpConnection, line: String| {
            on_message.send(format!("message {line}")).unwrap();
            connection.close();
        });
        client.connect();
    });
    assert_eq!(next(&events), "connect");
    assert_eq!(next(&events), "message echo mine");
    assert_eq!(next(&events), "close");

    // A wrong host name, an unknown CA: the handshake fails, no message, an error, a close.
    for context in [
        SslContext::new().cafile(&ca).peer_name("example.org"),
        SslContext::new()
            .cafile(&stranger_ca)
            .peer_name("localhost"),
    ] {
        let (_client, events) = client_worker(move |events| {
            let mut client = AsyncTcpConnection::new(&format!("ssl://127.0.0.1:{port}"));
            client.set_ssl_context(context.clone());
            report(&mut client, &events, "never\n");
            let on_message = events.clone();
            client.on_message(move |_: &TcpConnection, bytes: Vec<u8>| {
                on_message.send(format!("message {bytes:?}")).unwrap();
            });
            client.connect();
        });
        let mut seen = Vec::new();
        loop {
            let event = next(&events);
            let closed = event == "close";
            seen.push(event);
            if closed {
                break;
            }
        }
        assert!(
            !seen.iter().any(|event| event.starts_with("message")),
            "{seen:?}"
        );
        assert!(
            seen.iter().any(|event| event.starts_with("error")),
            "{seen:?}"
        );
    }
}

#[test]
fn insecure_skip_verify_connects_to_an_unknown_certificate() {
    let pki = Pki::new("client-insecure");
    let (cert, key) = pki.leaf("server", &["localhost"]);
    let server = text_echo_over_ssl(SslContext::new().local_cert(&cert).local_pk(&key));
    let port = server.local_address().port();
    let (_client, events) = client_worker(move |events| {
        let mut client = AsyncTcpConnection::new(&format!("text://127.0.0.1:{port}"));
        client.set_ssl_context(SslContext::new().insecure_skip_verify(true));
        report(&mut client, &events, "anyway");
        let on_message = events.clone();
        client.on_message(move |connection: &TcpConnection, line: String| {
            on_message.send(format!("message {line}")).unwrap();
            connection.close();
        });
        client.connect();
    });
    assert_eq!(next(&events), "connect");
    assert_eq!(next(&events), "message echo anyway");
}

/// A TCP listener that accepts and never says a word (no ServerHello): the accepted sockets
/// are held open until the listener's thread ends with the test process.
fn silent_listener() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(4) {
            held.push(stream);
        }
        std::thread::sleep(Duration::from_secs(60));
        drop(held);
    });
    port
}

/// Events until `close`, each with the time it came since `started`.
fn until_close(
    events: &Receiver<String>,
    started: std::time::Instant,
    wait: Duration,
) -> Vec<(String, Duration)> {
    let mut seen = Vec::new();
    loop {
        let event = events
            .recv_timeout(wait)
            .unwrap_or_else(|_| panic!("no close within {wait:?}: {seen:?}"));
        let closed = event == "close";
        seen.push((event, started.elapsed()));
        if closed {
            return seen;
        }
    }
}

#[test]
fn tls_handshake_deadline_is_the_connect_timeout_when_shorter() {
    let port = silent_listener();
    let started = std::time::Instant::now();
    let (_client, events) = client_worker(move |events| {
        let mut client = AsyncTcpConnection::new(&format!("ssl://127.0.0.1:{port}"));
        client.set_ssl_context(SslContext::new().insecure_skip_verify(true));
        client.set_connect_timeout(Duration::from_secs(1));
        report(&mut client, &events, "never\n");
        client.connect();
    });
    let seen = until_close(&events, started, WAIT);
    let names: Vec<&str> = seen.iter().map(|(event, _)| event.as_str()).collect();
    assert_eq!(
        names,
        [
            "connect",
            &*format!("error 1 TLS handshake with 127.0.0.1:{port} timed out after 1 seconds"),
            "close"
        ],
        "{seen:?}"
    );
    let (_, error_at) = &seen[1];
    assert!(
        *error_at >= Duration::from_millis(900) && *error_at < Duration::from_secs(6),
        "the handshake failed after {error_at:?}, not about 1 s"
    );
}

#[test]
fn wss_handshake_deadline_defaults_to_10_seconds() {
    let port = silent_listener();
    let started = std::time::Instant::now();
    let (_client, events) = client_worker(move |events| {
        let mut client = AsyncTcpConnection::new(&format!("wss://127.0.0.1:{port}/chat"));
        client.set_ssl_context(SslContext::new().insecure_skip_verify(true));
        let on_open = events.clone();
        client.on_websocket_connect(move |_, _| on_open.send("open".into()).unwrap());
        let on_error = events.clone();
        client.on_error(move |_, code, message| {
            on_error.send(format!("error {code} {message}")).unwrap();
        });
        let on_close = events.clone();
        client.on_close(move |_| on_close.send("close".into()).unwrap());
        client.connect();
    });
    let seen = until_close(&events, started, Duration::from_secs(25));
    let names: Vec<&str> = seen.iter().map(|(event, _)| event.as_str()).collect();
    assert_eq!(
        names,
        [
            &*format!("error 1 TLS handshake with 127.0.0.1:{port} timed out after 10 seconds"),
            "close"
        ],
        "{seen:?}"
    );
    let (_, error_at) = &seen[0];
    assert!(
        *error_at >= Duration::from_millis(9_900) && *error_at < Duration::from_secs(20),
        "the handshake failed after {error_at:?}, not about 10 s"
    );
}
