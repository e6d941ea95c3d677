//! The text and frame protocols and raw TCP, over loopback: echo, broadcast, packets split across
//! writes and several packets in one write, many connections at once.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use support::{LineClient, connect, start};
use workerman::{TcpConnection, Worker};

fn text_echo() -> workerman::RunningWorker {
    start(|| {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, line: String| {
            connection.send(format!("echo: {line}"));
        });
        worker
    })
}

#[test]
fn text_echoes_each_line() {
    let server = text_echo();
    let mut client = LineClient::connect(server.local_address());
    client.send("hello\n");
    assert_eq!(client.line(), "echo: hello\n");
    client.send("with crlf\r\n");
    assert_eq!(client.line(), "echo: with crlf\n");
}

#[test]
fn text_lines_split_across_writes_and_packed_in_one_write() {
    let server = text_echo();
    let mut client = LineClient::connect(server.local_address());
    for piece in ["he", "ll", "o wor", "ld\nsecond\nthi", "rd\n"] {
        client.send(piece);
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(client.line(), "echo: hello world\n");
    assert_eq!(client.line(), "echo: second\n");
    assert_eq!(client.line(), "echo: third\n");
}

#[test]
fn text_line_over_max_package_size_closes_only_that_connection() {
    let server = start(|| {
        let mut worker = Worker::new("text://127.0.0.1:0");
        worker.set_max_package_size(1024);
        worker.on_message(|connection: &TcpConnection, line: String| {
            connection.send(line);
        });
        worker
    });
    let mut bad = LineClient::connect(server.local_address());
    let mut good = LineClient::connect(server.local_address());
    bad.send(&"x".repeat(2000));
    assert!(bad.closed(), "the oversized line closes the connection");
    good.send("still here\n");
    assert_eq!(good.line(), "still here\n");
}

#[test]
fn text_broadcast_reaches_every_client() {
    let server = start(|| {
        let mut worker = Worker::new("text://127.0.0.1:0");
        let all = worker.clone();
        worker.on_message(move |_connection: &TcpConnection, line: String| {
            for connection in all.connections() {
                connection.send(line.as_str());
            }
        });
        worker
    });
    let mut clients: Vec<LineClient> = (0..5)
        .map(|_| LineClient::connect(server.local_address()))
        .collect();
    // Make sure all five are accepted before the broadcast.
    for client in clients.iter_mut() {
        client.send("ping\n");
    }
    for client in clients.iter_mut() {
        for _ in 0..5 {
            assert_eq!(client.line(), "ping\n");
        }
    }
    clients[2].send("to everyone\n");
    for client in clients.iter_mut() {
        assert_eq!(client.line(), "to everyone\n");
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut wire = ((payload.len() + 4) as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(payload);
    wire
}

fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).unwrap();
    let mut payload = vec![0u8; u32::from_be_bytes(header) as usize - 4];
    stream.read_exact(&mut payload).unwrap();
    payload
}

#[test]
fn frame_packets_split_and_packed() {
    let server = start(|| {
        let mut worker = Worker::new("frame://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, payload: Vec<u8>| {
            let mut reply = b"got ".to_vec();
            reply.extend_from_slice(&payload);
            connection.send(reply);
        });
        worker
    });
    let mut stream = connect(server.local_address());
    // One frame, a byte at a time.
    for byte in frame(b"slow") {
        stream.write_all(&[byte]).unwrap();
        thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(read_frame(&mut stream), b"got slow");
    // Three frames in one write, one of them empty.
    let mut packed = frame(b"a");
    packed.extend(frame(b""));
    packed.extend(frame(&[7u8; 100_000]));
    stream.write_all(&packed).unwrap();
    assert_eq!(read_frame(&mut stream), b"got a");
    assert_eq!(read_frame(&mut stream), b"got ");
    let big = read_frame(&mut stream);
    assert_eq!(big.len(), 100_004);
    assert!(big[4..].iter().all(|&byte| byte == 7));
}

#[test]
fn frame_with_a_bad_length_closes_the_connection() {
    let server = start(|| {
        let mut worker = Worker::new("frame://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, payload: Vec<u8>| {
            connection.send(payload);
        });
        worker
    });
    let mut stream = connect(server.local_address());
    stream.write_all(&[0, 0, 0, 2, 9, 9]).unwrap();
    assert_eq!(support::read_to_close(&mut stream), b"");
}

#[test]
fn raw_tcp_delivers_bytes_as_they_come() {
    let server = start(|| {
        let mut worker = Worker::new("tcp://127.0.0.1:0");
        worker.on_message(|connection: &TcpConnection, bytes: Vec<u8>| {
            connection.send(bytes);
        });
        worker
    });
    let mut stream = connect(server.local_address());
    stream.write_all(b"\x00\x01binary\xff").unwrap();
    let mut reply = [0u8; 9];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"\x00\x01binary\xff");
}

#[test]
fn serves_a_thousand_concurrent_connections() {
    let server = text_echo();
    let mut clients: Vec<LineClient> = (0..1000)
        .map(|_| LineClient::connect(server.local_address()))
        .collect();
    for (index, client) in clients.iter_mut().enumerate() {
        client.send(&format!("client {index}\n"));
    }
    for (index, client) in clients.iter_mut().enumerate() {
        assert_eq!(client.line(), format!("echo: client {index}\n"));
    }
}

/// A custom protocol: packages end in a NUL byte; `on_message` gets the package as a `String`.
struct NulTerminated;

impl workerman::protocols::Protocol for NulTerminated {
    type Message = String;
    fn input(&self, buffer: &[u8], _connection: &TcpConnection) -> workerman::protocols::Input {
        use workerman::protocols::Input;
        match buffer.iter().position(|&byte| byte == 0) {
            Some(end) => Input::Package(end + 1),
            None if buffer.len() > 64 => Input::Invalid,
            None => Input::NeedMore,
        }
    }
    fn decode(&self, package: &[u8], _connection: &TcpConnection) -> String {
        String::from_utf8_lossy(&package[..package.len() - 1]).into_owned()
    }
    fn encode(&self, data: &[u8], _connection: &TcpConnection, out: &mut Vec<u8>) {
        out.extend_from_slice(data);
        out.push(0);
    }
}

#[test]
fn custom_protocol_frames_decodes_and_encodes() {
    let server = start(|| {
        let mut worker = Worker::with_protocol("tcp://127.0.0.1:0", NulTerminated);
        worker.on_message(|connection: &TcpConnection, message: String| {
            connection.send(message.to_uppercase());
        });
        worker
    });
    let mut stream = connect(server.local_address());
    stream.write_all(b"one\0tw").unwrap();
    stream.write_all(b"o\0").unwrap();
    let mut reply = [0u8; 8];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"ONE\0TWO\0");
    // Its `Invalid` closes the connection.
    stream.write_all(&[b'x'; 100]).unwrap();
    assert_eq!(support::read_to_close(&mut stream), b"");
}

#[test]
#[should_panic(expected = "on_message takes String (or Vec<u8>) on this worker")]
fn on_message_with_the_wrong_type_panics_when_set() {
    let mut worker = Worker::new("text://127.0.0.1:0");
    worker.on_message(
        |_connection: &TcpConnection, _request: workerman::protocols::http::Request| {},
    );
}
