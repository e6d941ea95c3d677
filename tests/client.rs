//! `AsyncTcpConnection` over real sockets: a client worker (on its own thread, like any worker)
//! connects to servers on loopback and reports what its callbacks saw through a channel.
//!
//! Covered: text and frame clients against our own servers, sends queued before and during
//! connecting, a refused connect (`on_error(CONNECT_FAIL)`, `on_close`, then `reconnect` once the
//! server is up), a connect timeout, host names (resolved off the reactor thread), a `ws://`
//! client against our `websocket://` server (messages both ways, pings on an interval, close
//! codes) and against a hand-written server that checks the wire bytes (the upgrade request,
//! masking, pong), failed handshakes, and a panic in a client callback.

mod support;
#[path = "support/websocket.rs"]
mod ws;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use workerman::connection::AsyncTcpConnection;
use workerman::protocols::websocket::{HandshakeResponse, Message};
use workerman::{RunningWorker, SendResult, TcpConnection, Worker};

const WAIT: Duration = Duration::from_secs(5);

/// Runs `start` in `on_worker_start` of a worker on its own thread: the client's home.
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
        .expect("the client reports within 5 s")
}

/// Reads events until one starts with `prefix`, returning those before it and it.
fn until(events: &Receiver<String>, prefix: &str) -> (Vec<String>, String) {
    let mut before = Vec::new();
    loop {
        let event = next(events);
        if event.starts_with(prefix) {
            return (before, event);
        }
        before.push(event);
    }
}

fn text_echo_server() -> RunningWorker {
    support::start(|| {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, line: String| {
            connection.send(format!("echo {line}"));
        });
        worker
    })
}

/// A port nothing listens on (bound, then released).
fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn text_client_talks_to_text_server() {
    let server = text_echo_server();
    let address = server.local_address();
    let (_client, events) = client_worker(move |events| {
        let mut client = AsyncTcpConnection::new(&format!("text://{address}"));
        let on_connect = events.clone();
        client.on_connect(move |connection| {
            on_connect
                .send(format!(
                    "connect {} {}",
                    connection.status(),
                    connection.remote_address()
                ))
                .unwrap();
            connection.send("hello");
        });
        let on_message = events.clone();
        client.on_message(move |connection: &TcpConnection, line: String| {
            on_message.send(format!("message {line}")).unwrap();
            if line == "echo hello" {
                connection.send("bye");
            } else {
                connection.close();
            }
        });
        client.on_close(move |connection| {
            events
                .send(format!("close {}", connection.status()))
                .unwrap();
        });
        client.connect();
    });
    assert_eq!(
        next(&events),
        format!("connect {} {address}", TcpConnection::STATUS_ESTABLISHED)
    );
    assert_eq!(next(&events), "message echo hello");
    assert_eq!(next(&events), "message echo bye");
    assert_eq!(
        next(&events),
        format!("close {}", TcpConnection::STATUS_CLOSED)
    );
}

#[test]
fn frame_client_talks_to_frame_server() {
    let server = support::start(|| {
        let mut worker = Worker::new("frame://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, bytes: Vec<u8>| {
            connection.send([&bytes[..], &bytes[..]].concat());
        });
        worker
    });
    let address = server.local_address();
    let (_client, events) = client_worker(move |events| {
        let mut client = AsyncTcpConnection::new(&format!("frame://{address}"));
        client.on_message(move |_: &TcpConnection, bytes: Vec<u8>| {
            events.send(format!("{} bytes", bytes.len())).unwrap();
        });
        // Large enough to take several reads on both sides.
        client.send(vec![7u8; 300_000]);
        client.connect();
    });
    assert_eq!(next(&events), "600000 bytes");
}

#[test]
fn sends_before_and_during_connect_arrive_in_order() {
    let server = text_echo_server();
    let address = server.local_address();
    let (_client, events) = client_worker(move |events| {
        let mut client = AsyncTcpConnection::new(&format!("text://{address}"));
        client.on_message(move |_: &TcpConnection, line: String| {
            events.send(line).unwrap();
        });
        let before = client.send("one");
        assert_eq!(before, SendResult::Queued);
        assert_eq!(client.status(), TcpConnection::STATUS_INITIAL);
        client.connect();
        assert_eq!(client.status(), TcpConnection::STATUS_CONNECTING);
        // While connecting: queued in the connection, behind the first.
        assert_eq!(client.send("two"), SendResult::Queued);
        let connection = client.connection().expect("a connection exists");
        assert_eq!(connection.send("three"), SendResult::Queued);
    });
    assert_eq!(next(&events), "echo one");
    assert_eq!(next(&events), "echo two");
    assert_eq!(next(&events), "echo three");
}

#[test]
fn refused_connect_reports_connect_fail_then_reconnects() {
    let port = refused_port();
    let (_client, events) = client_worker(move |events| {
        let mut client = AsyncTcpConnection::new(&format!("text://127.0.0.1:{port}"));
        let on_error = events.clone();
        client.on_error(move |connection, code, message| {
            on_error
                .send(format!("error {code} #{} {message}", connection.id()))
                .unwrap();
        });
        let on_close = events.clone();
        client.on_close(move |connection| {
            on_close
                .send(format!("close #{}", connection.id()))
                .unwrap();
            connection.reconnect(0.2);
        });
        let on_connect = events.clone();
        client.on_connect(move |connection| {
            on_connect
                .send(format!("connect #{}", connection.id()))
                .unwrap();
            connection.send("after reconnecting");
        });
        client.on_message(move |_: &TcpConnection, line: String| {
            events.send(format!("message {line}")).unwrap();
        });
        client.connect();
    });
    let first = next(&events);
    assert!(
        first.starts_with(&format!("error {} #", TcpConnection::CONNECT_FAIL))
            && first.contains(&format!("connect 127.0.0.1:{port} fail after")),
        "{first}"
    );
    let first_id: String = first
        .split('#')
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .into();
    assert_eq!(next(&events), format!("close #{first_id}"));

    // Now a server appears on that port; a reconnect (every 0.2 s) finds it.
    let server = support::start(move || {
        let mut worker = Worker::new(&format!("text://127.0.0.1:{port}"));
        worker.on_message(|connection: &TcpConnection, line: String| {
            connection.send(format!("echo {line}"));
        });
        worker
    });
    let (failures, connected) = until(&events, "connect #");
    assert!(
        failures
            .iter()
            .all(|event| event.starts_with("error 1 ") || event.starts_with("close #")),
        "{failures:?}"
    );
    let second_id: u64 = connected["connect #".len()..].parse().unwrap();
    assert!(
        second_id > first_id.parse().unwrap(),
        "each attempt is a new connection"
    );
    assert_eq!(next(&events), "message echo after reconnecting");
    drop(server);
}

#[test]
fn a_handle_from_an_earlier_attempt_stays_closed() {
    let server = text_echo_server();
    let address = server.local_address();
    let (_client, events) = client_worker(move |events| {
        let mut client = AsyncTcpConnection::new(&format!("text://{address}"));
        let first: std::rc::Rc<std::cell::RefCell<Option<TcpConnection>>> = Default::default();
        let remembered = first.clone();
        let again = client.clone();
        client.on_connect(move |connection| {
            let mut first = remembered.borrow_mut();
            match first.as_ref() {
                None => {
                    *first = Some(connection.clone());
                    drop(first);
                    // Reconnecting closes this connection and opens another.
                    again.reconnect(0.0);
                }
                Some(old) => {
                    events
                        .send(format!(
                            "old {} {:?}, new {}",
                            old.status(),
                            old.send("x"),
                            connection.status()
                        ))
                        .unwrap();
                }
            }
        });
        client.connect();
    });
    assert_eq!(
        next(&events),
        format!(
            "old {} Refused, new {}",
            TcpConnection::STATUS_CLOSED,
            TcpConnection::STATUS_ESTABLISHED
        )
    );
}

#[test]
fn connect_times_out_when_nothing_answers() {
    // A listener with a backlog of 0 that never accepts: once its queue is full, the kernel
    // drops further SYNs, so a connect neither succeeds nor fails.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(0).unwrap();
    let address = socket.local_addr().unwrap().as_socket().unwrap();
    let _fillers: Vec<_> = (0..4)
        .filter_map(|_| TcpStream::connect_timeout(&address, Duration::from_millis(200)).ok())
        .collect();
    let started = Instant::now();
    let (_client, events) = client_worker(move |events| {
        let mut client = AsyncTcpConnection::new(&format!("tcp://{address}"));
        client.set_connect_timeout(Duration::from_millis(300));
        let on_error = events.clone();
        client.on_error(move |_, code, message| {
            on_error.send(format!("error {code} {message}")).unwrap();
        });
        client.on_connect(move |_| panic!("must not connect"));
        client.on_close(move |_| events.send("close".into()).unwrap());
        client.connect();
    });
    let error = next(&events);
    assert!(
        error.starts_with("error 1 ") && error.ends_with("timed out"),
        "{error}"
    );
    assert_eq!(next(&events), "close");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    drop(socket);
}

#[test]
fn host_names_are_resolved() {
    let server = text_echo_server();
    let port = server.local_address().port();
    let (_client, events) = client_worker(move |events| {
        let mut client = AsyncTcpConnection::new(&format!("text://localhost:{port}"));
        client.on_message(move |connection: &TcpConnection, line: String| {
            events
                .send(format!("{line} from {}", connection.remote_address().ip()))
                .unwrap();
        });
        client.send("hi");
        client.connect();
    });
    let event = next(&events);
    assert!(
        event == "echo hi from 127.0.0.1" || event == "echo hi from ::1",
        "{event}"
    );
}

#[test]
fn a_panic_in_a_client_callback_costs_only_that_connection() {
    let server = text_echo_server();
    let address = server.local_address();
    let (_client, events) = client_worker(move |events| {
        let mut client = AsyncTcpConnection::new(&format!("text://{address}"));
        client.on_message(|_: &TcpConnection, _: String| panic!("boom"));
        let on_close = events.clone();
        client.on_close(move |_| on_close.send("close".into()).unwrap());
        client.send("x");
        client.connect();
        // The worker lives on: a timer still fires afterwards.
        workerman::Timer::once(0.3, move || {
            events
                .send(format!("panics {}", Worker::statistics().panics))
                .unwrap();
        });
    });
    assert_eq!(next(&events), "close");
    assert_eq!(next(&events), "panics 1");
}

// ---------------------------------------------------------------------------------------------
// ws://

fn websocket_echo_server(events: Sender<String>) -> RunningWorker {
    support::start(move || {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        let on_connect = events.clone();
        worker.on_websocket_connect(move |_, request| {
            on_connect
                .send(format!(
                    "server: upgrade {} protocol {:?}",
                    request.uri(),
                    request.header("sec-websocket-protocol")
                ))
                .unwrap();
        });
        worker.on_message(
            |connection: &TcpConnection, message: Message| match &message {
                Message::Text(text) if text == "close please" => connection.close(),
                _ => {
                    connection.send(message);
                }
            },
        );
        let on_ping = events.clone();
        worker.on_websocket_ping(move |_, _| {
            let _ = on_ping.send("server: ping".into());
        });
        worker.on_websocket_close(move |_, code, _| {
            let _ = events.send(format!("server: close {code}"));
        });
        worker
    })
}

#[test]
fn ws_client_against_our_websocket_server() {
    let (server_events, from_server) = mpsc::channel();
    let server = websocket_echo_server(server_events);
    let address = server.local_address();
    let (_client, events) = client_worker(move |events| {
        let mut client = AsyncTcpConnection::new(&format!("ws://{address}/room?id=7"));
        client.add_websocket_header("Sec-WebSocket-Protocol", "chat");
        let on_upgrade = events.clone();
        client.on_websocket_connect(move |connection, response: &HandshakeResponse| {
            on_upgrade
                .send(format!("upgraded {}", response.status()))
                .unwrap();
            connection.send(Message::Binary(vec![0, 159, 146, 150]));
        });
        let on_message = events.clone();
        client.on_message(move |connection: &TcpConnection, message: Message| {
            on_message.send(format!("message {message:?}")).unwrap();
            if let Message::Binary(_) = message {
                connection.send("x".repeat(70_000));
            }
        });
        client.on_close(move |_| events.send("close".into()).unwrap());
        // Queued before the handshake completes: goes out after the 101.
        client.send("first");
        client.connect();
    });
    assert_eq!(
        from_server.recv_timeout(WAIT).unwrap(),
        "server: upgrade /room?id=7 protocol Some(\"chat\")"
    );
    assert_eq!(next(&events), "upgraded 101");
    assert_eq!(next(&events), "message Text(\"first\")");
    assert_eq!(next(&events), "message Binary([0, 159, 146, 150])");
    let long = next(&events);
    assert_eq!(long.len(), "message Text(\"\")".len() + 70_000);
}

#[test]
fn ws_client_pings_on_an_interval_and_closes_with_1000() {
    let (server_events, from_server) = mpsc::channel();
    let server = websocket_echo_server(server_events);
    let address = server.local_address();
    let (_client, events) = client_worker(move |events| {
        let mut client = AsyncTcpConnection::new(&format!("ws://{address}/"));
        client.set_websocket_ping_interval(0.1);
        let closer = client.clone();
        client.on_websocket_connect(move |_, _| {
            // Close after a few pings.
            let closer = closer.clone();
            workerman::Timer::once(0.35, move || closer.close());
        });
        client.on_close(move |_| events.send("close".into()).unwrap());
        client.connect();
    });
    let (before, _) = {
        let mut seen = Vec::new();
        loop {
            let event = from_server.recv_timeout(WAIT).unwrap();
            if event.starts_with("server: close") {
                assert_eq!(event, "server: close 1000");
                break (seen, event);
            }
            seen.push(event);
        }
    };
    let pings = before
        .iter()
        .filter(|event| *event == "server: ping")
        .count();
    assert!((2..=4).contains(&pings), "{before:?}");
    assert_eq!(next(&events), "close");
}

#[test]
fn ws_client_hears_the_servers_close() {
    let (server_events, _from_server) = mpsc::channel();
    let server = websocket_echo_server(server_events);
    let address = server.local_address();
    let (_client, events) = client_worker(move |events| {
        let mut client = AsyncTcpConnection::new(&format!("ws://{address}/"));
        let on_close_frame = events.clone();
        client.on_websocket_close(move |_, code, _| {
            on_close_frame.send(format!("close frame {code}")).unwrap();
        });
        client.on_close(move |_| events.send("close".into()).unwrap());
        client.send("close please");
        client.connect();
    });
    assert_eq!(next(&events), "close frame 1000");
    assert_eq!(next(&events), "close");
}

/// A hand-written WebSocket server for one connection: checks the client's request and frames
/// byte by byte, and reports what it saw.
fn raw_websocket_server(
    answer: impl FnOnce(&str) -> String + Send + 'static,
    then: impl FnOnce(&mut BufReader<TcpStream>) + Send + 'static,
) -> (SocketAddr, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut reader = BufReader::new(stream);
        let mut request = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            request.push_str(&line);
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        let key = request
            .lines()
            .find_map(|line| line.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap_or("")
            .to_owned();
        reader.get_mut().write_all(answer(&key).as_bytes()).unwrap();
        then(&mut reader);
        request
    });
    (address, thread)
}

fn read_client_frame(reader: &mut impl Read) -> (u8, Option<[u8; 4]>, Vec<u8>) {
    let mut head = [0u8; 2];
    reader.read_exact(&mut head).unwrap();
    let length = match head[1] & 0x7f {
        126 => {
            let mut extended = [0u8; 2];
            reader.read_exact(&mut extended).unwrap();
            u16::from_be_bytes(extended) as usize
        }
        127 => panic!("unexpectedly long frame"),
        length => length as usize,
    };
    let mask = (head[1] & 0x80 != 0).then(|| {
        let mut mask = [0u8; 4];
        reader.read_exact(&mut mask).unwrap();
        mask
    });
    let mut payload = vec![0u8; length];
    reader.read_exact(&mut payload).unwrap();
    if let Some(mask) = mask {
        for (index, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[index % 4];
        }
    }
    (head[0], mask, payload)
}

#[test]
fn ws_client_wire_bytes_request_masking_and_pong() {
    let (frames_seen, frames) = mpsc::channel();
    let (address, server) = raw_websocket_server(
        |key| {
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\n\r\n",
                workerman::protocols::websocket::accept_key(key)
            )
        },
        move |reader| {
            // An unmasked text frame and a ping, in one write.
            reader
                .get_mut()
                .write_all(&[0x81, 2, b'h', b'i', 0x89, 3, b'a', b'b', b'c'])
                .unwrap();
            for _ in 0..2 {
                frames_seen.send(read_client_frame(reader)).unwrap();
            }
        },
    );
    let (_client, events) = client_worker(move |events| {
        let mut client = AsyncTcpConnection::new(&format!("ws://{address}/path"));
        client.on_message(move |connection: &TcpConnection, text: String| {
            events.send(text.clone()).unwrap();
            connection.send(format!("re: {text}"));
        });
        client.connect();
    });
    assert_eq!(next(&events), "hi");
    let request = server.join().unwrap();
    assert!(request.starts_with("GET /path HTTP/1.1\r\n"), "{request}");
    assert!(
        request.contains(&format!("\r\nHost: {address}\r\n")),
        "{request}"
    );
    assert!(request.contains("\r\nUpgrade: websocket\r\n"));
    assert!(request.contains("\r\nConnection: Upgrade\r\n"));
    assert!(request.contains("\r\nSec-WebSocket-Version: 13\r\n"));
    let received: Vec<_> = frames.iter().take(2).collect();
    // The pong (answered while reading) and the reply, both masked with non-zero... keys that
    // differ from frame to frame.
    let pong = received
        .iter()
        .find(|frame| frame.0 == 0x8A)
        .expect("a pong");
    let reply = received
        .iter()
        .find(|frame| frame.0 == 0x81)
        .expect("a reply");
    assert_eq!(pong.2, b"abc");
    assert_eq!(reply.2, b"re: hi");
    assert!(
        pong.1.is_some() && reply.1.is_some(),
        "client frames are masked"
    );
    assert_ne!(pong.1, reply.1, "each frame gets a fresh mask");
}

#[test]
fn ws_client_refuses_a_wrong_accept_key() {
    for answer in [
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
        "SSH-2.0-OpenSSH_9.2\r\n\r\n",
    ] {
        let (address, server) = raw_websocket_server(
            move |_| answer.to_owned(),
            |reader| {
                // The client closes without sending a frame.
                let mut rest = Vec::new();
                let _ = reader.read_to_end(&mut rest);
                assert!(
                    rest.is_empty(),
                    "no frame after a failed handshake: {rest:?}"
                );
            },
        );
        let (_client, events) = client_worker(move |events| {
            let mut client = AsyncTcpConnection::new(&format!("ws://{address}/"));
            let on_error = events.clone();
            client.on_error(move |_, code, message| {
                on_error.send(format!("error {code} {message}")).unwrap();
            });
            let on_upgrade = events.clone();
            client.on_websocket_connect(move |_, _| on_upgrade.send("upgraded".into()).unwrap());
            client.on_close(move |_| events.send("close".into()).unwrap());
            client.send("must not be sent");
            client.connect();
        });
        let error = next(&events);
        assert!(
            error.starts_with("error 1 WebSocket handshake failed"),
            "{answer:?}: {error}"
        );
        assert_eq!(next(&events), "close");
        server.join().unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// unix://

fn socket_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "workerman-client-{}-{name}.sock",
        std::process::id()
    ))
}

#[test]
fn unix_client_talks_to_a_unix_server() {
    let path = socket_path("echo");
    let listen = format!("unix://{}", path.display());
    let server = support::start(move || {
        let mut worker = Worker::new(&listen);
        worker.on_message(|connection: &TcpConnection, bytes: Vec<u8>| {
            connection.send([b"echo ".as_slice(), &bytes].concat());
        });
        worker
    });
    let target = format!("unix://{}", path.display());
    let (_client, events) = client_worker(move |events| {
        let mut client = AsyncTcpConnection::new(&target);
        let on_connect = events.clone();
        client.on_connect(move |connection| {
            on_connect
                .send(format!("connect {}", connection.transport()))
                .unwrap();
        });
        client.on_message(move |connection: &TcpConnection, bytes: Vec<u8>| {
            events
                .send(String::from_utf8_lossy(&bytes).into_owned())
                .unwrap();
            connection.close();
        });
        client.send("over a unix socket");
        client.connect();
    });
    assert_eq!(next(&events), "connect unix");
    assert_eq!(next(&events), "echo over a unix socket");
    drop(server);
}

#[test]
fn unix_client_to_a_missing_socket_reports_connect_fail() {
    let path = socket_path("missing");
    let target = format!("unix://{}", path.display());
    let (_client, events) = client_worker(move |events| {
        let mut client = AsyncTcpConnection::new(&target);
        let on_error = events.clone();
        client.on_error(move |_, code, message| {
            on_error.send(format!("error {code} {message}")).unwrap();
        });
        client.on_close(move |_| events.send("close".into()).unwrap());
        client.connect();
    });
    let error = next(&events);
    assert!(
        error.starts_with(&format!(
            "error 1 connect unix://{} fail after",
            path.display()
        )),
        "{error}"
    );
    assert_eq!(next(&events), "close");
}
