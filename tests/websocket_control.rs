//! WebSocket control from the app over real sockets: pings sent with `send`, `on_websocket_pong`
//! (server and `ws://` client), the server's heartbeat with its pong deadline, and `close` with
//! a chosen code and reason (invalid codes refused).

mod support;
#[path = "support/websocket.rs"]
mod ws;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::start;
use workerman::protocols::websocket::{Ping, Pong};
use workerman::{AsyncTcpConnection, SendResult, TcpConnection, Worker};
use ws::{OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, WsClient};

#[test]
fn a_ping_sent_by_the_app_is_answered_and_reaches_on_websocket_pong() {
    let (pongs, pong) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, text: String| {
            if text == "ping me" {
                assert_eq!(connection.send(Ping::new("p-1")), SendResult::Written);
                assert_eq!(connection.send(Pong::new("unasked")), SendResult::Written);
                // A control payload is at most 125 bytes.
                assert_eq!(
                    connection.send(Ping::new(vec![0u8; 126])),
                    SendResult::Refused
                );
            }
        });
        worker.on_websocket_pong(move |_connection, payload| pongs.send(payload.to_vec()).unwrap());
        worker
    });
    let mut client = WsClient::connect(server.local_address());
    client.send(OP_TEXT, b"ping me");
    let ping = client.read_frame().unwrap();
    assert_eq!(
        (ping.opcode, ping.payload.as_slice()),
        (OP_PING, &b"p-1"[..])
    );
    let unasked = client.read_frame().unwrap();
    assert_eq!(
        (unasked.opcode, unasked.payload.as_slice()),
        (OP_PONG, &b"unasked"[..])
    );
    client.send(OP_PONG, b"p-1");
    assert_eq!(pong.recv_timeout(Duration::from_secs(5)).unwrap(), b"p-1");
    server.stop();
}

#[test]
fn close_with_code_sends_the_code_and_reason_and_refuses_invalid_ones() {
    let (results, result) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        worker.on_message(move |connection: &TcpConnection, text: String| {
            let code: u16 = text.parse().unwrap();
            results
                .send(connection.close_with_code(code, "chosen"))
                .unwrap();
        });
        worker
    });
    for refused in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        let mut client = WsClient::connect(server.local_address());
        client.send(OP_TEXT, refused.to_string().as_bytes());
        assert_eq!(
            result.recv_timeout(Duration::from_secs(5)),
            Ok(false),
            "{refused}"
        );
        // Still open: the next message is answered.
        client.send(OP_TEXT, b"4000");
        assert_eq!(result.recv_timeout(Duration::from_secs(5)), Ok(true));
        let close = client.read_frame().unwrap();
        assert_eq!(close.close_code(), Some(4000));
    }
    for accepted in [1000u16, 1001, 1003, 1008, 1011, 1014, 3000, 4000, 4999] {
        let mut client = WsClient::connect(server.local_address());
        client.send(OP_TEXT, accepted.to_string().as_bytes());
        assert_eq!(result.recv_timeout(Duration::from_secs(5)), Ok(true));
        let close = client.read_frame().unwrap();
        assert_eq!(close.opcode, OP_CLOSE);
        assert_eq!(close.close_code(), Some(accepted));
        assert_eq!(&close.payload[2..], b"chosen");
        client.send_close(accepted, b"");
        assert!(
            client.read_frame().is_none(),
            "the server closes after its close frame"
        );
    }
    server.stop();
}

#[test]
fn the_heartbeat_closes_a_peer_that_stops_answering_pings_and_keeps_one_that_answers() {
    let (closes, closed) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        worker.set_websocket_ping_interval(0.2);
        worker.set_websocket_pong_timeout(0.3);
        worker.on_close(move |connection| closes.send(connection.id()).unwrap());
        worker
    });
    let mut answering = WsClient::connect(server.local_address());
    let mut silent = WsClient::connect(server.local_address());
    let started = Instant::now();
    // The answering peer pongs every ping for a second: it stays.
    let mut pings = 0;
    while started.elapsed() < Duration::from_secs(1) {
        let frame = answering
            .read_frame()
            .expect("the answering peer stays open");
        assert_eq!(frame.opcode, OP_PING);
        answering.send(OP_PONG, &frame.payload);
        pings += 1;
    }
    assert!(pings >= 3, "{pings} pings in a second at a 0.2 s interval");
    // The silent one read nothing and answered nothing: closed by its first pong deadline.
    assert!(closed.recv_timeout(Duration::from_secs(2)).is_ok());
    assert!(closed.try_recv().is_err(), "only the silent peer is closed");
    let ping = silent.read_frame().expect("it was pinged before");
    assert_eq!(ping.opcode, OP_PING);
    assert!(silent.closed());
    server.stop();
}

#[test]
fn a_ws_client_gets_on_websocket_pong_for_its_pings() {
    let (pongs, pong) = mpsc::channel();
    let server = start(|| Worker::new("websocket://127.0.0.1:0"));
    let address = server.local_address();
    let client = start(move || {
        let mut worker = Worker::without_listener();
        worker.on_worker_start(move |_| {
            let mut upstream = AsyncTcpConnection::new(&format!("ws://{address}/"));
            upstream.on_websocket_connect(|connection, _response| {
                assert!(connection.send(Ping::new("from the client")).is_accepted());
            });
            let pongs = pongs.clone();
            upstream.on_websocket_pong(move |_connection, payload| {
                pongs.send(payload.to_vec()).unwrap()
            });
            upstream.connect();
        });
        worker
    });
    assert_eq!(
        pong.recv_timeout(Duration::from_secs(5)).unwrap(),
        b"from the client"
    );
    client.stop();
    server.stop();
}

#[test]
fn close_with_code_from_on_websocket_pong() {
    let server = start(move || {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        worker.set_websocket_ping_interval(0.2);
        worker.on_websocket_connected(|connection, _| {
            connection.set_context(0u32);
            connection.send("open");
        });
        worker.on_websocket_pong(|connection, _payload| {
            let pongs = connection.with_context(|pongs: &mut u32| {
                *pongs += 1;
                *pongs
            });
            connection.send(format!("pong {}", pongs.unwrap_or(0)));
            if pongs == Some(2) {
                assert!(connection.close_with_code(4001, "bye"));
            }
        });
        worker
    });
    let mut client = WsClient::connect(server.local_address());
    assert_eq!(client.read_frame().unwrap().payload, b"open");
    for n in 1..=2 {
        let ping = client.read_frame().unwrap();
        assert_eq!(ping.opcode, OP_PING);
        client.send(OP_PONG, &ping.payload);
        assert_eq!(
            client.read_frame().unwrap().payload,
            format!("pong {n}").as_bytes()
        );
    }
    let close = client.read_frame().unwrap();
    assert_eq!(close.close_code(), Some(4001));
    server.stop();
}

#[test]
fn a_server_close_waits_for_the_peers_close_frame_then_ends_with_fin() {
    use std::io::Read;
    let (closes, closed) = mpsc::channel();
    let server = start(move || {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, _text: String| {
            assert!(connection.close_with_code(4001, "goodbye"));
        });
        worker.on_close(move |_connection| closes.send(Instant::now()).unwrap());
        worker
    });
    let mut client = WsClient::connect(server.local_address());
    client.send(OP_TEXT, b"close me");
    let close = client.read_frame().unwrap();
    assert_eq!(close.close_code(), Some(4001));
    // The server waits for our close frame: no FIN, and no on_close, while we take our time.
    let stream = client.reader.get_mut();
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    let early = stream.read(&mut byte);
    assert!(
        early.as_ref().is_err_and(|error| matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )),
        "the server ended before our close frame: {early:?}"
    );
    assert!(
        closed.try_recv().is_err(),
        "on_close before our close frame"
    );
    // Our close frame completes the handshake: the server closes with FIN (EOF), not RST.
    let answered = Instant::now();
    client.send_close(4001, b"");
    let stream = client.reader.get_mut();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rest = Vec::new();
    let end = stream.read_to_end(&mut rest);
    assert!(
        matches!(end, Ok(0)),
        "an orderly close (EOF) after our close frame: {end:?}, {rest:?}"
    );
    let on_close = closed.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(on_close >= answered, "on_close before our close frame");
    server.stop();
}

#[test]
fn a_server_close_gives_up_on_a_silent_peer_within_its_bound() {
    let server = start(move || {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, _text: String| connection.close());
        worker
    });
    let mut client = WsClient::connect(server.local_address());
    client.send(OP_TEXT, b"close me");
    let started = Instant::now();
    let close = client.read_frame().unwrap();
    assert_eq!(close.close_code(), Some(1000));
    // We never answer: the server closes the socket by itself, within its bound.
    assert!(client.closed(), "the server never closed a silent peer");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    server.stop();
}
