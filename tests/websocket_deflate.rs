//! permessage-deflate (RFC 7692) over real sockets: negotiation, compressed messages both ways,
//! the window-size offer, a decompression bomb, invalid UTF-8 inside compressed text, and our
//! `ws://` client against our server with compression on. The test side compresses and inflates
//! with flate2 directly, not with the crate's code.
#![cfg(feature = "deflate")]

mod support;
#[path = "support/websocket.rs"]
mod ws;

use std::sync::mpsc;
use std::time::Duration;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use workerman::connection::AsyncTcpConnection;
use workerman::protocols::websocket::Message;
use workerman::{RunningWorker, TcpConnection, Worker};
use ws::{OP_BINARY, OP_TEXT, WsClient, frame_bytes, upgrade_request};

const CHROME_OFFER: &str =
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

fn echo_server(deflate: bool, max_package_size: usize) -> RunningWorker {
    support::start(move || {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        worker.set_websocket_deflate(deflate);
        worker.set_max_package_size(max_package_size);
        worker.on_message(|connection: &TcpConnection, message: Message| {
            connection.send(message);
        });
        worker
    })
}

/// Raw DEFLATE of one message, with the sync-flush tail removed (RFC 7692 §7.2.1).
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut compressor = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    compressor
        .compress_vec(data, &mut out, FlushCompress::Sync)
        .unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn inflate(data: &[u8]) -> Vec<u8> {
    let mut inflater = Decompress::new(false);
    let mut input = data.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(1 << 20);
    inflater
        .decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    out
}

fn compressed_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    // RSV1 (0b100 in the RSV bits) marks a compressed message.
    frame_bytes(true, 0b100, opcode, &deflate(payload), Some([7, 1, 9, 3]))
}

#[test]
fn negotiated_and_used_both_ways() {
    let server = echo_server(true, 1 << 20);
    let mut client =
        WsClient::connect_with(server.local_address(), &upgrade_request("/", CHROME_OFFER));
    assert_eq!(
        client.header("sec-websocket-extensions").as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
    let text = "all work and no play makes jack a dull boy. ".repeat(50);
    // Compressed from us, compressed back: the echo inflates to the same text.
    client.write(&compressed_frame(OP_TEXT, text.as_bytes()));
    let echo = client.read_frame().unwrap();
    assert_eq!((echo.opcode, echo.rsv), (OP_TEXT, 0b100), "compressed echo");
    assert!(echo.payload.len() < text.len() / 10);
    assert_eq!(inflate(&echo.payload), text.as_bytes());
    // Uncompressed from us is fine too (RSV1 is per message); a long one comes back compressed.
    client.send(OP_BINARY, text.as_bytes());
    let echo = client.read_frame().unwrap();
    assert_eq!((echo.opcode, echo.rsv), (OP_BINARY, 0b100));
    assert_eq!(inflate(&echo.payload), text.as_bytes());
    // A short message is not worth compressing: it comes back as it is.
    client.send(OP_TEXT, b"hi");
    assert_eq!(client.read_frame().unwrap(), ws::Frame::text("hi"));
    // Every message is compressed on its own (no context takeover): the same text again
    // compresses to the same bytes.
    client.write(&compressed_frame(OP_TEXT, text.as_bytes()));
    let first = inflate(&client.read_frame().unwrap().payload);
    assert_eq!(first, text.as_bytes());
}

#[test]
fn not_offered_by_default_and_rsv1_then_fails() {
    let server = echo_server(false, 1 << 20);
    let mut client =
        WsClient::connect_with(server.local_address(), &upgrade_request("/", CHROME_OFFER));
    assert_eq!(client.header("sec-websocket-extensions"), None);
    client.write(&compressed_frame(OP_TEXT, "x".repeat(200).as_bytes()));
    client.expect_close(1002);
}

#[test]
fn a_window_limit_is_echoed_and_respected() {
    let server = echo_server(true, 1 << 20);
    let offer = "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9\r\n";
    let mut client = WsClient::connect_with(server.local_address(), &upgrade_request("/", offer));
    assert_eq!(
        client.header("sec-websocket-extensions").as_deref(),
        Some(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=9"
        )
    );
    // Up to 512 bytes fits the window: compressed. Longer: sent as it is.
    let short = "abcdefgh".repeat(64);
    client.send(OP_TEXT, short.as_bytes());
    let echo = client.read_frame().unwrap();
    assert_eq!(echo.rsv, 0b100);
    assert_eq!(inflate(&echo.payload), short.as_bytes());
    let long = "abcdefgh".repeat(65);
    client.send(OP_TEXT, long.as_bytes());
    let echo = client.read_frame().unwrap();
    assert_eq!((echo.rsv, echo.payload), (0, long.into_bytes()));
}

#[test]
fn an_invalid_offer_is_declined_not_fatal() {
    let server = echo_server(true, 1 << 20);
    let offer = "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=99\r\n";
    let mut client = WsClient::connect_with(server.local_address(), &upgrade_request("/", offer));
    assert_eq!(client.header("sec-websocket-extensions"), None);
    client.send(OP_TEXT, b"plain");
    assert_eq!(client.read_frame().unwrap(), ws::Frame::text("plain"));
}

#[test]
fn a_decompression_bomb_closes_with_1009() {
    let server = echo_server(true, 64 * 1024);
    let mut client =
        WsClient::connect_with(server.local_address(), &upgrade_request("/", CHROME_OFFER));
    // 8 MiB of zeros in about 8 KB: the inflated size is over the limit long before the end.
    let bomb = compressed_frame(OP_BINARY, &vec![0u8; 8 << 20]);
    assert!(bomb.len() < 64 * 1024);
    client.write(&bomb);
    client.expect_close(1009);
}

#[test]
fn invalid_utf8_inside_compressed_text_closes_with_1007() {
    let server = echo_server(true, 1 << 20);
    let mut client =
        WsClient::connect_with(server.local_address(), &upgrade_request("/", CHROME_OFFER));
    let mut bad = "valid text, then ".repeat(10).into_bytes();
    bad.extend_from_slice(&[0xff, 0xfe]);
    client.write(&compressed_frame(OP_TEXT, &bad));
    client.expect_close(1007);
}

#[test]
fn rsv1_on_a_continuation_or_control_frame_closes_with_1002() {
    let server = echo_server(true, 1 << 20);
    let mut client =
        WsClient::connect_with(server.local_address(), &upgrade_request("/", CHROME_OFFER));
    client.write(&frame_bytes(
        false,
        0,
        OP_TEXT,
        b"start",
        Some([1, 2, 3, 4]),
    ));
    client.write(&frame_bytes(true, 0b100, 0, b"more", Some([1, 2, 3, 4])));
    client.expect_close(1002);
    let mut client =
        WsClient::connect_with(server.local_address(), &upgrade_request("/", CHROME_OFFER));
    client.write(&frame_bytes(
        true,
        0b100,
        ws::OP_PING,
        b"",
        Some([1, 2, 3, 4]),
    ));
    client.expect_close(1002);
}

#[test]
fn our_client_and_server_compress_between_them() {
    let server = support::start(|| {
        let mut worker = Worker::new("websocket://127.0.0.1:0");
        worker.set_websocket_deflate(true);
        worker.on_message(|connection: &TcpConnection, text: String| {
            // How many bytes came over the wire for this message so far, next to its size.
            connection.send(format!("{} {}", text.len(), connection.bytes_read()));
            connection.send(text);
        });
        worker
    });
    let address = server.local_address();
    let (events, received) = mpsc::channel();
    let _client = support::start(move || {
        let mut worker = Worker::without_listener();
        worker.on_worker_start(move |_| {
            let mut client = AsyncTcpConnection::new(&format!("ws://{address}/"));
            client.set_websocket_deflate(true);
            let events = events.clone();
            client.on_message(move |connection: &TcpConnection, text: String| {
                events.send((text, connection.bytes_read())).unwrap();
            });
            client.send("hello compression ".repeat(1000));
            client.connect();
        });
        worker
    });
    let wait = Duration::from_secs(5);
    let (report, _) = received.recv_timeout(wait).unwrap();
    let (size, wire): (usize, u64) = {
        let mut parts = report.split(' ');
        (
            parts.next().unwrap().parse().unwrap(),
            parts.next().unwrap().parse().unwrap(),
        )
    };
    assert_eq!(size, 18_000);
    assert!(
        wire < 2_000,
        "the server read {wire} bytes for an 18,000-byte message"
    );
    let (echo, client_read) = received.recv_timeout(wait).unwrap();
    assert_eq!(echo, "hello compression ".repeat(1000));
    assert!(client_read < 2_000, "the client read {client_read} bytes");
}
