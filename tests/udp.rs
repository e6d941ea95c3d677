//! `udp://` workers over loopback: echo, replies to the right sender, a peer's handle kept for a
//! timer, close, the size limit and empty datagrams, a panic, idle expiry, the peer limit, and a
//! protocol over datagrams.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::Duration;

use support::{READ_TIMEOUT, start};
use workerman::{SendResult, TcpConnection, Timer, Worker};

/// A client socket on loopback with a read timeout.
fn client() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a client socket");
    socket.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    socket
}

/// Sends `datagram` to `server` and returns the reply.
fn ask(socket: &UdpSocket, server: SocketAddr, datagram: &[u8]) -> Vec<u8> {
    socket.send_to(datagram, server).unwrap();
    receive(socket)
}

fn receive(socket: &UdpSocket) -> Vec<u8> {
    let mut buffer = [0u8; 65536];
    let (length, _) = socket.recv_from(&mut buffer).expect("a reply");
    buffer[..length].to_vec()
}

/// True if nothing arrives within `wait`.
fn silent(socket: &UdpSocket, wait: Duration) -> bool {
    socket.set_read_timeout(Some(wait)).unwrap();
    let mut buffer = [0u8; 1024];
    let silent = socket.recv_from(&mut buffer).is_err();
    socket.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    silent
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

/// A worker that answers `<connection id> <datagram>`.
fn echo_with_id() -> workerman::RunningWorker {
    start(|| {
        let mut worker = Worker::new("udp://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, data: Vec<u8>| {
            let mut reply = format!("{} ", connection.id()).into_bytes();
            reply.extend_from_slice(&data);
            connection.send(reply);
        });
        worker
    })
}

#[test]
fn echo() {
    let server = start(|| {
        let mut worker = Worker::new("udp://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, data: Vec<u8>| {
            assert_eq!(connection.send(data), SendResult::Written);
        });
        worker
    });
    let socket = client();
    assert_eq!(ask(&socket, server.local_address(), b"hello"), b"hello");
    let big = vec![7u8; 60_000];
    assert_eq!(
        ask(&socket, server.local_address(), &big),
        big,
        "a large datagram goes whole"
    );
}

#[test]
fn replies_go_to_their_sender_and_a_sender_keeps_its_peer() {
    let server = echo_with_id();
    let (first, second) = (client(), client());
    first.send_to(b"one", server.local_address()).unwrap();
    second.send_to(b"two", server.local_address()).unwrap();
    let first_reply = text(receive(&first));
    let second_reply = text(receive(&second));
    assert!(first_reply.ends_with(" one"), "{first_reply}");
    assert!(second_reply.ends_with(" two"), "{second_reply}");
    let id = |reply: &str| reply.split(' ').next().unwrap().to_owned();
    assert_ne!(id(&first_reply), id(&second_reply), "one peer per address");
    let again = text(ask(&first, server.local_address(), b"three"));
    assert_eq!(
        id(&again),
        id(&first_reply),
        "later datagrams reuse the peer"
    );
}

#[test]
fn a_peer_knows_its_addresses_and_transport() {
    let (sender, addresses) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("udp://127.0.0.1:0");
        let connected = sender.clone();
        worker.on_connect(move |connection| {
            connected
                .send(("connect", connection.remote_address()))
                .unwrap();
        });
        worker.on_message(move |connection: &TcpConnection, _data: Vec<u8>| {
            sender
                .send(("remote", connection.remote_address()))
                .unwrap();
            sender.send(("local", connection.local_address())).unwrap();
            connection.send(connection.transport());
        });
        worker
    });
    let socket = client();
    assert_eq!(ask(&socket, server.local_address(), b"?"), b"udp");
    assert_eq!(ask(&socket, server.local_address(), b"?"), b"udp");
    let seen: Vec<_> = addresses.try_iter().collect();
    let me = socket.local_addr().unwrap();
    assert_eq!(
        seen,
        vec![
            ("connect", me),
            ("remote", me),
            ("local", server.local_address()),
            ("remote", me),
            ("local", server.local_address()),
        ],
        "on_connect once per peer, before its first message"
    );
}

#[test]
fn a_timer_replies_later_through_a_kept_handle() {
    let server = start(|| {
        let mut worker = Worker::new("udp://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, data: Vec<u8>| {
            let connection = connection.clone();
            Timer::once(0.05, move || {
                connection.send(format!("later: {}", String::from_utf8_lossy(&data)));
            });
        });
        worker
    });
    let socket = client();
    assert_eq!(
        ask(&socket, server.local_address(), b"ping"),
        b"later: ping"
    );
}

#[test]
fn after_close_a_send_is_refused_and_the_handle_stays_closed() {
    let (sender, results) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("udp://127.0.0.1:0");
        let closed = sender.clone();
        worker.on_close(move |connection| {
            closed
                .send(format!("on_close {}", connection.id()))
                .unwrap()
        });
        worker.on_message(move |connection: &TcpConnection, data: Vec<u8>| {
            if data == b"bye" {
                connection.close_with("goodbye");
                let refused = connection.send("too late");
                sender
                    .send(format!(
                        "{} {:?} {}",
                        connection.id(),
                        refused,
                        connection.status() == TcpConnection::STATUS_CLOSED
                    ))
                    .unwrap();
                // A handle kept for later sends nothing either.
                let kept = connection.clone();
                let later = sender.clone();
                Timer::once(0.05, move || {
                    later
                        .send(format!("later {:?} {}", kept.send("x"), kept.status()))
                        .unwrap();
                });
            } else {
                connection.send(connection.id().to_string());
            }
        });
        worker
    });
    let socket = client();
    let id = text(ask(&socket, server.local_address(), b"hi"));
    assert_eq!(ask(&socket, server.local_address(), b"bye"), b"goodbye");
    let wait = |results: &mpsc::Receiver<String>| results.recv_timeout(READ_TIMEOUT).unwrap();
    assert_eq!(
        wait(&results),
        format!("on_close {id}"),
        "close_with closes at once"
    );
    assert_eq!(wait(&results), format!("{id} Refused true"));
    assert_eq!(
        wait(&results),
        format!("later Refused {}", TcpConnection::STATUS_CLOSED)
    );
    assert!(
        silent(&socket, Duration::from_millis(100)),
        "nothing after the goodbye"
    );
    let new_id = text(ask(&socket, server.local_address(), b"hi again"));
    assert_ne!(new_id, id, "the next datagram starts a new peer");
}

#[test]
fn oversized_datagrams_are_dropped_and_an_empty_one_is_a_message() {
    let server = start(|| {
        let mut worker = Worker::new("udp://127.0.0.1:0");
        worker.set_max_package_size(16);
        worker.on_message(|connection: &TcpConnection, data: Vec<u8>| {
            connection.send(format!("{} bytes", data.len()));
        });
        worker
    });
    let socket = client();
    socket.send_to(&[1u8; 17], server.local_address()).unwrap();
    assert!(
        silent(&socket, Duration::from_millis(100)),
        "over max_package_size: dropped"
    );
    assert_eq!(
        ask(&socket, server.local_address(), &[1u8; 16]),
        b"16 bytes"
    );
    assert_eq!(ask(&socket, server.local_address(), b""), b"0 bytes");
}

#[test]
fn a_panic_in_on_message_costs_only_that_peer() {
    let (sender, closes) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("udp://127.0.0.1:0");
        worker.on_close(move |connection| sender.send(connection.id()).unwrap());
        worker.on_message(|connection: &TcpConnection, data: Vec<u8>| {
            if data == b"panic" {
                panic!("on purpose");
            }
            connection.send(connection.id().to_string());
        });
        worker
    });
    let (panicking, bystander) = (client(), client());
    let bystander_id = text(ask(&bystander, server.local_address(), b"hi"));
    let first = text(ask(&panicking, server.local_address(), b"hi"));
    panicking.send_to(b"panic", server.local_address()).unwrap();
    let closed = closes.recv_timeout(READ_TIMEOUT).unwrap();
    assert_eq!(closed.to_string(), first, "the panicking peer is closed");
    let after = text(ask(&panicking, server.local_address(), b"hi"));
    assert_ne!(after, first, "a new peer for the next datagram");
    assert_eq!(
        text(ask(&bystander, server.local_address(), b"hi")),
        bystander_id,
        "other peers are untouched"
    );
}

#[test]
fn an_idle_peer_expires_with_on_close() {
    let (sender, closes) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("udp://127.0.0.1:0");
        worker.set_keep_alive_timeout(Duration::from_millis(300));
        worker.on_close(move |connection| sender.send(connection.id()).unwrap());
        worker.on_message(|connection: &TcpConnection, _data: Vec<u8>| {
            connection.send(connection.id().to_string());
        });
        worker
    });
    let socket = client();
    let first = text(ask(&socket, server.local_address(), b"a"));
    // Activity keeps it alive past one timeout.
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(text(ask(&socket, server.local_address(), b"a")), first);
    }
    let closed = closes
        .recv_timeout(READ_TIMEOUT)
        .expect("on_close after idling");
    assert_eq!(closed.to_string(), first);
    let next = text(ask(&socket, server.local_address(), b"a"));
    assert_ne!(next, first, "an expired peer is replaced by a new one");
}

#[test]
fn the_peer_limit_holds_under_many_source_ports() {
    const LIMIT: usize = 8;
    let (sender, closes) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("udp://127.0.0.1:0");
        worker.set_max_connections(LIMIT);
        worker.on_close(move |connection| sender.send(connection.id()).unwrap());
        worker.on_message(|connection: &TcpConnection, _data: Vec<u8>| {
            let open = Worker::statistics().connection_count;
            connection.send(format!("{} {open}", connection.id()));
        });
        worker
    });
    let keeper = client();
    let keeper_reply = text(ask(&keeper, server.local_address(), b"k"));
    let keeper_id = keeper_reply.split(' ').next().unwrap().to_owned();
    let mut sockets = Vec::new();
    for round in 0..50 {
        let socket = client();
        let reply = text(ask(&socket, server.local_address(), b"x"));
        let open: usize = reply.split(' ').nth(1).unwrap().parse().unwrap();
        assert!(open <= LIMIT, "{open} peers open, the limit is {LIMIT}");
        sockets.push(socket);
        if round % 3 == 0 {
            // The keeper stays active, so it is never the longest idle.
            let reply = text(ask(&keeper, server.local_address(), b"k"));
            assert_eq!(reply.split(' ').next().unwrap(), keeper_id);
        }
    }
    let evicted: Vec<u64> = closes.try_iter().collect();
    assert_eq!(
        evicted.len(),
        51 - LIMIT,
        "each peer beyond the limit evicts one"
    );
    assert!(!evicted.contains(&keeper_id.parse().unwrap()));
    // The oldest of the 50 was evicted: it gets a new peer.
    let oldest = text(ask(&sockets[0], server.local_address(), b"x"));
    assert_ne!(oldest.split(' ').next().unwrap(), "2");
}

#[test]
fn text_over_udp_decodes_each_line_of_a_datagram() {
    let server = start(|| {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.set_transport("udp");
        worker.on_message(|connection: &TcpConnection, line: String| {
            connection.send(format!("<{line}>"));
        });
        worker
    });
    let socket = client();
    socket
        .send_to(b"one\ntwo\r\nincomplete", server.local_address())
        .unwrap();
    assert_eq!(receive(&socket), b"<one>\n");
    assert_eq!(receive(&socket), b"<two>\n");
    assert!(
        silent(&socket, Duration::from_millis(100)),
        "a rest without a newline is dropped"
    );
    assert_eq!(
        ask(&socket, server.local_address(), b"three\n"),
        b"<three>\n"
    );
}

#[test]
fn a_custom_protocol_over_udp() {
    let server = start(|| {
        let mut worker = Worker::with_protocol("udp://127.0.0.1:0", workerman::protocols::Frame);
        worker.on_message(|connection: &TcpConnection, payload: Vec<u8>| {
            connection.send(payload.repeat(2));
        });
        worker
    });
    let socket = client();
    let mut framed = 7u32.to_be_bytes().to_vec();
    framed.extend_from_slice(b"abc");
    assert_eq!(
        ask(&socket, server.local_address(), &framed),
        [&10u32.to_be_bytes()[..], b"abcabc"].concat()
    );
}

#[test]
fn stopping_the_worker_closes_its_peers() {
    let (sender, closes) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("udp://127.0.0.1:0");
        worker.on_close(move |connection| sender.send(connection.id()).unwrap());
        worker.on_message(|connection: &TcpConnection, data: Vec<u8>| {
            connection.send(data);
        });
        worker
    });
    let socket = client();
    ask(&socket, server.local_address(), b"x");
    let started = std::time::Instant::now();
    server.stop();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(closes.try_iter().count(), 1, "on_close ran on stop");
}

#[test]
#[should_panic(expected = "need a stream")]
fn http_over_udp_is_refused() {
    let mut worker = Worker::new("http://127.0.0.1:0");
    worker.set_transport("udp");
}

#[test]
fn eviction_works_with_an_endless_idle_timeout() {
    let (sender, closes) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("udp://127.0.0.1:0");
        worker.set_keep_alive_timeout(Duration::MAX);
        worker.set_max_connections(2);
        worker.on_close(move |connection| sender.send(connection.id()).unwrap());
        worker.on_message(|connection: &TcpConnection, _data: Vec<u8>| {
            connection.send(connection.id().to_string());
        });
        worker
    });
    let sockets = [client(), client(), client()];
    let ids: Vec<String> = sockets
        .iter()
        .map(|socket| text(ask(socket, server.local_address(), b"x")))
        .collect();
    assert_eq!(
        closes
            .try_iter()
            .map(|id| id.to_string())
            .collect::<Vec<_>>(),
        vec![ids[0].clone()],
        "the longest idle peer made room"
    );
}

/// Regression: datagrams handled in one turn share the turn's time, and a peer heard from twice
/// in one turn kept its first place in the eviction order, so it could be evicted as the longest
/// idle although it had just been heard from.
#[test]
fn a_peer_heard_from_again_in_the_same_turn_is_not_the_longest_idle() {
    let (sender, closes) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("udp://127.0.0.1:0");
        worker.set_max_connections(2);
        worker.on_close(move |connection| sender.send(connection.id()).unwrap());
        worker.on_message(|connection: &TcpConnection, data: Vec<u8>| {
            if data == b"hold" {
                // Holds the reactor, so the datagrams sent meanwhile are read in this turn.
                std::thread::sleep(Duration::from_millis(300));
            }
            connection.send(format!("{}", connection.id()));
        });
        worker
    });
    let address = server.local_address();
    let keeper = client();
    let (first, second) = (client(), client());
    keeper.send_to(b"hold", address).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    first.send_to(b"x", address).unwrap();
    keeper.send_to(b"k", address).unwrap();
    second.send_to(b"x", address).unwrap();
    let keeper_id = text(receive(&keeper));
    assert_eq!(
        text(receive(&keeper)),
        keeper_id,
        "the keeper kept its peer"
    );
    let first_id = text(receive(&first));
    let _second_id = text(receive(&second));
    let evicted = closes
        .recv_timeout(Duration::from_secs(2))
        .expect("a peer was evicted to make room for `second`");
    assert_eq!(
        evicted.to_string(),
        first_id,
        "the longest idle, `first`, was evicted"
    );
    assert_eq!(text(ask(&keeper, address, b"k")), keeper_id);
}
