//! A small WebSocket client for tests, written from RFC 6455 (not from the crate's codec): it
//! masks what it sends, and reads frames (unmasked, as a server sends them) one at a time.
//!
//! ```ignore
//! let mut client = WsClient::connect(server.local_address());
//! client.send(OP_TEXT, b"hello");
//! assert_eq!(client.read_frame(), Some(Frame::text("hello")));
//! ```
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// The key from RFC 6455 §1.3 and the accept value it must get.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// One frame as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn text(text: &str) -> Frame {
        Frame::new(OP_TEXT, text.as_bytes())
    }

    pub fn new(opcode: u8, payload: &[u8]) -> Frame {
        Frame {
            fin: true,
            rsv: 0,
            opcode,
            payload: payload.to_vec(),
        }
    }

    /// A close frame's code, if it has one.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == OP_CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// The bytes of one frame: `mask` `None` sends it unmasked (a protocol error from a client).
pub fn frame_bytes(
    fin: bool,
    rsv: u8,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if payload.len() < 126 {
        out.push(mask_bit | payload.len() as u8);
    } else if payload.len() <= 0xFFFF {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    }
    match mask {
        Some(mask) => {
            out.extend_from_slice(&mask);
            out.extend(
                payload
                    .iter()
                    .enumerate()
                    .map(|(i, byte)| byte ^ mask[i % 4]),
            );
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A masked frame with a mask that changes from frame to frame.
pub fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0x1234_5678);
    let mask = COUNTER
        .fetch_add(0x9E37_79B9, Ordering::Relaxed)
        .to_be_bytes();
    frame_bytes(fin, 0, opcode, payload, Some(mask))
}

/// The handshake request for `path` with `extra` header lines (each ending in `\r\n`).
pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

pub struct WsClient {
    pub reader: BufReader<TcpStream>,
    /// The 101 answer's head.
    pub head: String,
}

impl WsClient {
    /// Connects and completes the handshake (asserting a correct 101).
    pub fn connect(address: SocketAddr) -> WsClient {
        WsClient::connect_with(address, &upgrade_request("/", ""))
    }

    /// Connects with this handshake request; asserts the 101.
    pub fn connect_with(address: SocketAddr, request: &str) -> WsClient {
        let mut client = WsClient::open(address);
        client.write(request.as_bytes());
        client.head = client.read_head();
        assert!(
            client.head.starts_with("HTTP/1.1 101 "),
            "no 101: {:?}",
            client.head
        );
        assert_eq!(client.header("upgrade").as_deref(), Some("websocket"));
        assert_eq!(
            client.header("sec-websocket-accept").as_deref(),
            Some(ACCEPT)
        );
        client
    }

    /// A connection with no handshake yet.
    pub fn open(address: SocketAddr) -> WsClient {
        let stream = TcpStream::connect(address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        WsClient {
            reader: BufReader::new(stream),
            head: String::new(),
        }
    }

    /// Reads an HTTP response head (up to the blank line).
    pub fn read_head(&mut self) -> String {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            let count = self.reader.read_line(&mut line).expect("read a head line");
            assert!(count > 0, "closed inside a response head: {head:?}");
            head.push_str(&line);
            if line == "\r\n" {
                return head;
            }
        }
    }

    /// A header of the 101 answer.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    pub fn write(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("write");
    }

    /// Writes `bytes` in pieces of `chop` bytes, flushing each (Nagle is off).
    pub fn write_chopped(&mut self, bytes: &[u8], chop: usize, pause: Duration) {
        for piece in bytes.chunks(chop) {
            if self.reader.get_mut().write_all(piece).is_err() {
                return; // the server may fail the connection before the end
            }
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
        }
    }

    /// Sends one whole masked frame.
    pub fn send(&mut self, opcode: u8, payload: &[u8]) {
        let bytes = masked(true, opcode, payload);
        self.write(&bytes);
    }

    /// Sends a close frame with this code and reason.
    pub fn send_close(&mut self, code: u16, reason: &[u8]) {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason);
        self.send(OP_CLOSE, &payload);
    }

    /// The next frame, or `None` once the server has closed the connection.
    pub fn read_frame(&mut self) -> Option<Frame> {
        let mut head = [0u8; 2];
        if let Err(error) = self.reader.read_exact(&mut head) {
            assert!(
                matches!(
                    error.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ),
                "reading a frame: {error}"
            );
            return None;
        }
        assert_eq!(head[1] & 0x80, 0, "a server's frames must not be masked");
        let length = match head[1] & 0x7F {
            126 => {
                let mut bytes = [0u8; 2];
                self.reader.read_exact(&mut bytes).unwrap();
                u64::from(u16::from_be_bytes(bytes))
            }
            127 => {
                let mut bytes = [0u8; 8];
                self.reader.read_exact(&mut bytes).unwrap();
                u64::from_be_bytes(bytes)
            }
            length => u64::from(length),
        };
        let mut payload = vec![0u8; length as usize];
        self.reader
            .read_exact(&mut payload)
            .expect("read a payload");
        Some(Frame {
            fin: head[0] & 0x80 != 0,
            rsv: (head[0] >> 4) & 7,
            opcode: head[0] & 0x0F,
            payload,
        })
    }

    /// Reads one whole message (joining fragments), answering nothing; `None` at close or EOF.
    pub fn read_message(&mut self) -> Option<Frame> {
        let mut message: Option<Frame> = None;
        loop {
            let frame = self.read_frame()?;
            match frame.opcode {
                OP_CLOSE => return Some(frame),
                OP_PING | OP_PONG => continue,
                OP_CONTINUATION => {
                    let started = message.as_mut().expect("a continuation inside a message");
                    started.payload.extend_from_slice(&frame.payload);
                    if frame.fin {
                        return message;
                    }
                }
                _ => {
                    if frame.fin {
                        return Some(frame);
                    }
                    message = Some(frame);
                }
            }
        }
    }

    /// Expects the server to close with `code`: a close frame (after any other frames, which are
    /// returned) and then the end of the connection.
    pub fn expect_close(&mut self, code: u16) -> Vec<Frame> {
        let mut before = Vec::new();
        loop {
            match self.read_frame() {
                Some(frame) if frame.opcode == OP_CLOSE => {
                    assert_eq!(frame.close_code(), Some(code), "close frame {frame:?}");
                    break;
                }
                Some(frame) => before.push(frame),
                None => panic!("closed without a close frame (expected {code}); got {before:?}"),
            }
        }
        assert!(self.read_frame().is_none(), "frames after the close frame");
        before
    }

    /// The server ends the connection (EOF) within the timeout, whatever it sent before.
    pub fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).is_ok()
    }
}
