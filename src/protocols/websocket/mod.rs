//! `websocket://`: WebSocket servers (RFC 6455), as Workerman's `Websocket` protocol.
//!
//! A connection starts with an HTTP/1.1 upgrade request, read by the same parser and limits as on
//! an `http://` worker. `on_websocket_connect(|connection, request|)` runs before the `101`
//! answer and may refuse the connection; `on_websocket_connected` runs after it. Then messages
//! flow: `on_message` receives each whole message (fragments joined), and `send` frames what it
//! is given.
//!
//! ```no_run
//! use workerman::protocols::http::{Request, Response};
//! use workerman::{TcpConnection, Worker};
//!
//! let mut worker = Worker::new("websocket://0.0.0.0:8000");
//! worker.on_websocket_connect(|connection: &TcpConnection, request: &Request| {
//!     if request.get("token") != Some("secret") {
//!         // Refuse: this answer instead of the 101, then the connection closes.
//!         connection.close_with(Response::new(403, [("Content-Type", "text/plain")], "no"));
//!     }
//! });
//! worker.on_message(|connection: &TcpConnection, text: String| {
//!     connection.send(format!("echo: {text}"));
//! });
//! Worker::run_all();
//! ```
//!
//! What `on_message` receives, by the closure's type: `String` gets text messages (a binary
//! message arrives as text too, lossily if it is not UTF-8); `Vec<u8>` gets every message's
//! bytes; [`Message`] tells text from binary.
//!
//! What `send` sends: text and bytes go out as a text frame, or as a binary frame when the
//! connection's type is [`WebSocketType::Binary`] (Workerman's `websocketType`), or when the
//! bytes are not UTF-8 (a text frame must be). A [`Message`] picks its own frame type. Whatever is
//! sent before the handshake completes is queued and follows the `101`.
//!
//! The protocol, by RFC 6455: client frames must be masked; reserved bits and opcodes, a
//! fragmented or oversized (over 125 bytes) control frame, a continuation out of place, or an
//! invalid close frame close the connection with 1002; text that is not UTF-8 (checked as it
//! arrives, across fragments) with 1007; a message over `max_package_size` with 1009. A ping is
//! answered with a pong; a close frame is answered with a close frame carrying its code, then the
//! connection ends. `connection.close()` sends a close frame (1000) first. permessage-deflate is
//! not offered (the server answers without extensions, which every client accepts).

use std::borrow::Cow;

use crate::connection::io::{self as connection_io, describe};
use crate::connection::{Connection, TcpConnection};
use crate::protocols::Outbound;
use crate::protocols::http::{self, Request};
use crate::reactor::{call_user, try_with, with};

pub mod frame;
mod handshake;

pub use handshake::accept_key;

/// The handshake's checks, for the fuzz targets: the accept key, or the refusing answer.
#[cfg(feature = "fuzzing")]
pub(crate) fn check_handshake(request: &Request) -> Result<String, Vec<u8>> {
    handshake::check(request).map_err(handshake::Rejection::response)
}

use frame::{Control, Decoder, Event, Role};

/// One whole WebSocket message, for `on_message` closures that need to tell text from binary,
/// and for `send` to choose the frame type.
///
/// ```no_run
/// use workerman::protocols::websocket::Message;
/// # let mut worker = workerman::Worker::new("websocket://127.0.0.1:0");
/// worker.on_message(|connection, message: Message| {
///     // An echo server: text back as text, binary back as binary.
///     connection.send(message);
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (always valid UTF-8).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl Message {
    /// The message's bytes.
    ///
    /// ```
    /// use workerman::protocols::websocket::Message;
    /// assert_eq!(Message::Text("hi".into()).into_bytes(), b"hi");
    /// ```
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Message::Text(text) => text.into_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }

    /// The message as text; binary bytes that are not UTF-8 are replaced with U+FFFD.
    ///
    /// ```
    /// use workerman::protocols::websocket::Message;
    /// assert_eq!(Message::Binary(b"hi".to_vec()).into_text_lossy(), "hi");
    /// ```
    pub fn into_text_lossy(self) -> String {
        match self {
            Message::Text(text) => text,
            Message::Binary(bytes) => String::from_utf8(bytes)
                .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned()),
        }
    }

    /// The message's bytes, without taking it.
    ///
    /// ```
    /// use workerman::protocols::websocket::Message;
    /// assert_eq!(Message::Binary(vec![1, 2]).as_bytes(), [1, 2]);
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }
}

/// The frame type `send` uses for text and bytes on a connection (Workerman's `websocketType`:
/// `BINARY_TYPE_BLOB` is [`Text`](Self::Text), `BINARY_TYPE_ARRAYBUFFER` is
/// [`Binary`](Self::Binary)).
///
/// ```
/// use workerman::protocols::websocket::WebSocketType;
/// assert_eq!(WebSocketType::default(), WebSocketType::Text);
/// ```
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum WebSocketType {
    /// Text frames (`0x81`), the default; bytes that are not UTF-8 still go out as binary.
    #[default]
    Text,
    /// Binary frames (`0x82`).
    Binary,
}

/// Where a connection is in its life.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for (or answering) the upgrade request.
    #[default]
    Handshake,
    /// The handshake was refused (an HTTP answer went out instead of the 101).
    Refused,
    /// Messages flow.
    Open,
    /// Our close frame went out: nothing more is sent.
    Closing,
}

/// One WebSocket connection's state (`Connection::websocket`, boxed: other protocols pay only a
/// pointer for it).
#[derive(Debug, Default)]
pub(crate) struct WebSocketState {
    decoder: Decoder,
    phase: Phase,
    binary: bool,
    /// Only while the handshake is on, and only if used: extra 101 headers, queued frames.
    handshake: Option<Box<Pending>>,
}

#[derive(Debug, Default)]
struct Pending {
    /// Header lines for the 101, each ending in CRLF.
    headers: Vec<u8>,
    /// Frames sent before the 101, in order.
    queued: Vec<u8>,
}

// ---------------------------------------------------------------------------------------------
// Receiving

/// What the read path does after [`advance`].
pub(crate) enum Advance {
    /// Wait for more bytes (after consuming this many).
    Wait(usize),
    /// This many bytes were taken; go on with the rest.
    Consumed(usize),
    /// A whole message, ending this many bytes in.
    Message(usize, crate::protocols::Message),
    /// The connection is ending or refused: drop whatever else was received.
    Stop,
}

enum Step {
    Wait,
    Handshake(usize, Request),
    HttpError(http::HttpError),
    Frame(usize, Event, Option<Message>),
}

/// Takes the next piece of `data`: the upgrade request, or (part of) a frame.
pub(crate) fn advance(handle: &TcpConnection, data: &[u8]) -> Advance {
    let step = with(|reactor| {
        let connection = reactor.connection_mut(handle)?;
        if connection.status != TcpConnection::STATUS_ESTABLISHED || connection.recv_paused {
            return Some(Step::Wait);
        }
        let max_message = connection.max_package_size;
        match connection.websocket.as_ref()?.phase {
            Phase::Handshake => Some(match http::input(connection, data) {
                Ok(None) => Step::Wait,
                Ok(Some(length)) => {
                    let mut raw = http::take_buffer(length);
                    raw.extend_from_slice(&data[..length]);
                    let request = connection.http.parser.decode(raw);
                    // Nothing more is parsed as HTTP on this connection.
                    connection.http.parser.release();
                    Step::Handshake(length, request)
                }
                Err(error) => Step::HttpError(error),
            }),
            Phase::Refused => Some(Step::Wait),
            Phase::Open | Phase::Closing => {
                let state = connection.websocket.as_mut()?;
                let (consumed, event) = state.decoder.next(data, Role::Server, max_message);
                let message = match event {
                    Event::Message(opcode) => {
                        let bytes = state.decoder.take_message();
                        // A text message's bytes were validated as they arrived.
                        Some(if opcode == frame::OP_TEXT {
                            Message::Text(Message::Binary(bytes).into_text_lossy())
                        } else {
                            Message::Binary(bytes)
                        })
                    }
                    _ => None,
                };
                Some(Step::Frame(consumed, event, message))
            }
        }
    });
    match step {
        None | Some(Step::Wait) => Advance::Wait(0),
        Some(Step::HttpError(error)) => {
            log::debug!(
                "connection {}: {error} in a WebSocket handshake, answering {}",
                handle.id(),
                error.status()
            );
            connection_io::send_raw(handle, error.response());
            connection_io::end(handle);
            Advance::Stop
        }
        Some(Step::Handshake(length, request)) => finish_handshake(handle, length, &request),
        Some(Step::Frame(consumed, event, message)) => on_event(handle, consumed, event, message),
    }
}

fn on_event(
    handle: &TcpConnection,
    consumed: usize,
    event: Event,
    message: Option<Message>,
) -> Advance {
    match event {
        Event::More if consumed == 0 => Advance::Wait(0),
        Event::More | Event::Pong(_) => Advance::Consumed(consumed),
        Event::Message(_) => match message {
            Some(message) => {
                Advance::Message(consumed, crate::protocols::Message::WebSocket(message))
            }
            None => Advance::Consumed(consumed),
        },
        Event::Ping(payload) => {
            let callback = with(|reactor| {
                reactor.connection(handle).and_then(|connection| {
                    connection
                        .worker
                        .callbacks
                        .on_websocket_ping
                        .borrow()
                        .clone()
                })
            });
            if let Some(callback) = callback {
                if call_user(&|| describe(handle, "on_websocket_ping"), || {
                    callback(handle, payload.payload())
                })
                .is_none()
                {
                    connection_io::destroy(handle);
                    return Advance::Stop;
                }
            }
            if is_open(handle) {
                send_control(handle, frame::OP_PONG, &payload);
            }
            Advance::Consumed(consumed)
        }
        Event::Close(payload) => {
            let callback = with(|reactor| {
                reactor.connection(handle).and_then(|connection| {
                    connection
                        .worker
                        .callbacks
                        .on_websocket_close
                        .borrow()
                        .clone()
                })
            });
            if let Some(callback) = callback {
                let code = payload.close_code().unwrap_or(frame::CLOSE_NO_STATUS);
                call_user(&|| describe(handle, "on_websocket_close"), || {
                    callback(handle, code, payload.close_reason())
                });
            }
            // Echo the code (an empty close frame for an empty one), then end: our FIN follows
            // the close frame, and the socket closes once the client closes its side.
            let mut answer = Vec::with_capacity(4);
            frame::encode_close(&mut answer, payload.close_code(), "", None);
            fail_or_close(handle, &answer);
            Advance::Stop
        }
        Event::Fail(code) => {
            log::debug!(
                "connection {}: WebSocket protocol failure, closing with {code}",
                handle.id()
            );
            let mut answer = Vec::with_capacity(4);
            frame::encode_close(&mut answer, Some(code), "", None);
            fail_or_close(handle, &answer);
            Advance::Stop
        }
    }
}

/// Whether frames may still be sent on the connection.
fn is_open(handle: &TcpConnection) -> bool {
    with(|reactor| {
        reactor.connection(handle).is_some_and(|connection| {
            connection.status == TcpConnection::STATUS_ESTABLISHED
                && connection
                    .websocket
                    .as_ref()
                    .is_some_and(|state| state.phase == Phase::Open)
        })
    })
}

/// Sends a ping or pong frame built on the stack.
fn send_control(handle: &TcpConnection, opcode: u8, payload: &Control) {
    let payload = payload.payload();
    let mut wire = [0u8; 2 + frame::MAX_CONTROL_PAYLOAD];
    wire[0] = 0x80 | opcode;
    wire[1] = payload.len() as u8;
    wire[2..2 + payload.len()].copy_from_slice(payload);
    connection_io::send_raw(handle, &wire[..2 + payload.len()]);
}

/// Sends our close frame (if frames may still go out), then ends the connection.
fn fail_or_close(handle: &TcpConnection, close_frame: &[u8]) {
    if is_open(handle) {
        connection_io::send_raw(handle, close_frame);
    }
    with(|reactor| {
        if let Some(state) = reactor
            .connection_mut(handle)
            .and_then(|connection| connection.websocket.as_mut())
        {
            state.phase = Phase::Closing;
        }
    });
    connection_io::end(handle);
}

/// The upgrade request is whole: check it, ask `on_websocket_connect`, answer 101 (with whatever
/// was queued), then `on_websocket_connected`.
fn finish_handshake(handle: &TcpConnection, length: usize, request: &Request) -> Advance {
    let accept = match handshake::check(request) {
        Ok(accept) => accept,
        Err(rejection) => {
            log::debug!(
                "connection {}: not a WebSocket handshake: {rejection:?}",
                handle.id()
            );
            connection_io::send_raw(handle, &rejection.response());
            connection_io::end(handle);
            return Advance::Stop;
        }
    };
    let callback = with(|reactor| {
        reactor.connection(handle).and_then(|connection| {
            connection
                .worker
                .callbacks
                .on_websocket_connect
                .borrow()
                .clone()
        })
    });
    if let Some(callback) = callback {
        if call_user(&|| describe(handle, "on_websocket_connect"), || {
            callback(handle, request)
        })
        .is_none()
        {
            connection_io::destroy(handle);
            return Advance::Stop;
        }
    }
    let answer = with(|reactor| {
        let connection = reactor.connection_mut(handle)?;
        let established = connection.status == TcpConnection::STATUS_ESTABLISHED;
        let state = connection.websocket.as_mut()?;
        if !established || state.phase != Phase::Handshake {
            return None;
        }
        state.phase = Phase::Open;
        let pending = state.handshake.take().unwrap_or_default();
        let mut answer = Vec::with_capacity(160 + pending.headers.len() + pending.queued.len());
        handshake::switching_protocols(&accept, &pending.headers, &mut answer);
        answer.extend_from_slice(&pending.queued);
        // The request-head timeout ends with the handshake.
        reactor.set_deadline(handle.key(), None);
        Some(answer)
    });
    let Some(answer) = answer else {
        // Refused: closed in the callback, or answered with a `Response` (closed here).
        handle.close();
        return Advance::Stop;
    };
    connection_io::send_raw(handle, &answer);
    let callback = with(|reactor| {
        reactor.connection(handle).and_then(|connection| {
            connection
                .worker
                .callbacks
                .on_websocket_connected
                .borrow()
                .clone()
        })
    });
    if let Some(callback) = callback {
        if call_user(&|| describe(handle, "on_websocket_connected"), || {
            callback(handle, request)
        })
        .is_none()
        {
            connection_io::destroy(handle);
            return Advance::Stop;
        }
    }
    Advance::Consumed(length)
}

// ---------------------------------------------------------------------------------------------
// Sending

/// What [`encode`] did with the data.
pub(crate) enum Encoded {
    /// `out` holds bytes to write.
    Write,
    /// Queued until the handshake completes.
    Held,
    /// Not sent.
    Refused(&'static str),
}

/// Frames what `send` was given: into `out` once open; into the queue before the 101. A
/// `Response` sent during the handshake is the answer that refuses it.
pub(crate) fn encode(
    connection: &mut Connection,
    outbound: Outbound<'_>,
    out: &mut Vec<u8>,
) -> Encoded {
    let max_queue = connection.max_send_buffer_size;
    let Some(state) = connection.websocket.as_deref_mut() else {
        return Encoded::Refused("not a WebSocket connection");
    };
    match state.phase {
        Phase::Open => {
            encode_message(state.binary, outbound, out);
            Encoded::Write
        }
        Phase::Handshake => {
            if let Outbound::Response(response) = outbound {
                let options = http::EncodeOptions {
                    head_request: false,
                    close: true,
                    range: None,
                };
                let _ = response.encode(&options, out);
                state.phase = Phase::Refused;
                state.handshake = None;
                return Encoded::Write;
            }
            let binary = state.binary;
            let pending = state.handshake.get_or_insert_with(Box::default);
            if pending.queued.len() >= max_queue {
                return Encoded::Refused("the queue before the WebSocket handshake is full");
            }
            encode_message(binary, outbound, &mut pending.queued);
            Encoded::Held
        }
        Phase::Refused | Phase::Closing => Encoded::Refused("the WebSocket connection is closing"),
    }
}

fn encode_message(binary: bool, outbound: Outbound<'_>, out: &mut Vec<u8>) {
    let bytes: Cow<'_, [u8]> = match outbound {
        Outbound::WebSocket(Message::Text(text)) => {
            frame::encode_frame(out, true, frame::OP_TEXT, text.as_bytes(), None);
            return;
        }
        Outbound::WebSocket(Message::Binary(bytes)) => {
            frame::encode_frame(out, true, frame::OP_BINARY, &bytes, None);
            return;
        }
        Outbound::Bytes(bytes) => bytes,
        Outbound::Response(response) => {
            let mut bytes = Vec::new();
            http::encode_standalone(response, &mut bytes);
            Cow::Owned(bytes)
        }
        Outbound::Event(event) => Cow::Owned(event.to_bytes()),
        Outbound::Chunk(chunk) => Cow::Owned(chunk.to_bytes()),
    };
    let opcode = if !binary && std::str::from_utf8(&bytes).is_ok() {
        frame::OP_TEXT
    } else {
        frame::OP_BINARY
    };
    frame::encode_frame(out, true, opcode, &bytes, None);
}

/// `close()` on an open WebSocket connection: the close frame (1000) to send before closing.
pub(crate) fn close_frame(connection: &mut Connection) -> Option<[u8; 4]> {
    let state = connection.websocket.as_mut()?;
    if state.phase != Phase::Open {
        return None;
    }
    state.phase = Phase::Closing;
    let [high, low] = frame::CLOSE_NORMAL.to_be_bytes();
    Some([0x80 | frame::OP_CLOSE, 2, high, low])
}

// ---------------------------------------------------------------------------------------------
// The user's per-connection settings

impl TcpConnection {
    /// Sets the frame type `send` uses for text and bytes on this WebSocket connection
    /// (Workerman's `$connection->websocketType`); the default is text. A
    /// [`Message`](crate::protocols::websocket::Message) sent always keeps its own type.
    ///
    /// ```no_run
    /// use workerman::protocols::websocket::WebSocketType;
    /// # let mut worker = workerman::Worker::new("websocket://127.0.0.1:0");
    /// worker.on_websocket_connected(|connection, _request| {
    ///     connection.set_websocket_type(WebSocketType::Binary);
    ///     connection.send(&[1u8, 2, 3]);
    /// });
    /// ```
    pub fn set_websocket_type(&self, websocket_type: WebSocketType) {
        try_with(|reactor| {
            if let Some(state) = reactor
                .connection_mut(self)
                .and_then(|connection| connection.websocket.as_mut())
            {
                state.binary = websocket_type == WebSocketType::Binary;
            }
        });
    }

    /// See [`set_websocket_type`](Self::set_websocket_type) (text on other protocols).
    pub fn websocket_type(&self) -> WebSocketType {
        let binary = try_with(|reactor| {
            reactor
                .connection(self)
                .and_then(|connection| connection.websocket.as_ref())
                .is_some_and(|state| state.binary)
        });
        if binary == Some(true) {
            WebSocketType::Binary
        } else {
            WebSocketType::Text
        }
    }

    /// Adds a header to the `101 Switching Protocols` answer; call it in `on_websocket_connect`
    /// (Workerman's `$connection->headers`), e.g. to pick a `Sec-WebSocket-Protocol`. Returns
    /// `false` (and adds nothing) once the handshake is over, on other protocols, or when the
    /// name is not a token or the value holds CR, LF or NUL.
    ///
    /// ```no_run
    /// # let mut worker = workerman::Worker::new("websocket://127.0.0.1:0");
    /// worker.on_websocket_connect(|connection, request| {
    ///     if let Some(offered) = request.header("sec-websocket-protocol") {
    ///         if offered.split(',').any(|p| p.trim() == "chat") {
    ///             connection.add_websocket_header("Sec-WebSocket-Protocol", "chat");
    ///         }
    ///     }
    /// });
    /// ```
    pub fn add_websocket_header(&self, name: &str, value: &str) -> bool {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte));
        if !token || value.bytes().any(|byte| matches!(byte, b'\r' | b'\n' | 0)) {
            return false;
        }
        try_with(|reactor| {
            let state = reactor
                .connection_mut(self)
                .and_then(|connection| connection.websocket.as_mut())
                .filter(|state| state.phase == Phase::Handshake)?;
            let pending = state.handshake.get_or_insert_with(Box::default);
            for part in [name.as_bytes(), b": ", value.as_bytes(), b"\r\n"] {
                pending.headers.extend_from_slice(part);
            }
            Some(())
        })
        .flatten()
        .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_small() {
        assert!(std::mem::size_of::<WebSocketState>() <= 64);
    }

    #[test]
    fn bytes_go_out_as_text_unless_binary_or_not_utf8() {
        let mut out = Vec::new();
        encode_message(false, "hé".into(), &mut out);
        assert_eq!(out[0], 0x81);
        out.clear();
        encode_message(true, "hé".into(), &mut out);
        assert_eq!(out[0], 0x82);
        out.clear();
        encode_message(false, (&[0xffu8][..]).into(), &mut out);
        assert_eq!(out[0], 0x82);
        out.clear();
        encode_message(true, Message::Text("x".into()).into(), &mut out);
        assert_eq!(out, [0x81, 1, b'x']);
        out.clear();
        encode_message(false, Message::Binary(vec![b'x']).into(), &mut out);
        assert_eq!(out, [0x82, 1, b'x']);
    }
}
