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
//! connection ends. `connection.close()` sends a close frame (1000) first, then reads on for
//! the peer's close frame (for at most a second) before it closes TCP, so the peer sees a clean
//! close. permessage-deflate is not offered (the server answers without extensions, which every
//! client accepts).

use std::borrow::Cow;

use crate::connection::io::{self as connection_io, describe};
use crate::connection::{Connection, TcpConnection};
use crate::protocols::Outbound;
use crate::protocols::http::{self, Request};
use crate::reactor::{call_user, try_with, with};

pub(crate) mod client;
pub(crate) mod control;
#[cfg(feature = "deflate")]
mod deflate;
pub mod frame;
mod handshake;

pub use client::HandshakeResponse;
pub use control::{Ping, Pong};
pub use handshake::accept_key;
pub(crate) use handshake::valid_extra_header;

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
    /// Our close frame went out first: nothing more is sent, and what arrives is read only for
    /// the peer's close frame, which completes the close handshake.
    Closing,
    /// The close handshake is over (or failed): nothing more is sent or read.
    Closed,
}

/// One WebSocket connection's state (`Connection::websocket`, boxed: other protocols pay only a
/// pointer for it).
#[derive(Debug, Default)]
pub(crate) struct WebSocketState {
    decoder: Decoder,
    phase: Phase,
    binary: bool,
    /// The client's end (a `ws://` `AsyncTcpConnection`): frames out are masked, frames in must
    /// not be, and the handshake is the answer to our request.
    client: bool,
    /// permessage-deflate was negotiated: the window (bits) our compressor may use.
    deflate: Option<u8>,
    /// Only while the handshake is on, and only if used: extra 101 headers, queued frames.
    handshake: Option<Box<Pending>>,
    /// The heartbeat's last ping has not been answered by a pong yet.
    awaiting_pong: bool,
    /// Heartbeat pings sent: tells one ping's deadline from the next's.
    pings_sent: u8,
}

impl WebSocketState {
    /// The opening handshake has not finished yet (no upgrade answered or checked).
    pub(crate) fn in_handshake(&self) -> bool {
        matches!(self.phase, Phase::Handshake)
    }

    /// Our close frame went out first and the peer's has not arrived yet: the connection keeps
    /// reading for it (bounded by the connection layer's deadline) before it closes TCP.
    pub(crate) fn awaits_close(&self) -> bool {
        matches!(self.phase, Phase::Closing)
    }
}

#[derive(Debug, Default)]
struct Pending {
    /// Server: header lines for the 101, each ending in CRLF. Client: the upgrade request,
    /// until it is sent.
    headers: Vec<u8>,
    /// Messages sent before the handshake completed, in order (opcode, payload): framed once it
    /// completes, when it is known whether they may be compressed.
    held: Vec<(u8, Vec<u8>)>,
    /// Their bytes, for the send buffer's limit.
    held_bytes: usize,
    /// Client: the `Sec-WebSocket-Accept` the answer must carry.
    accept: String,
}

impl WebSocketState {
    /// The decoder's role: which way frames must be masked.
    fn role(&self) -> Role {
        if self.client {
            Role::Client
        } else {
            Role::Server
        }
    }

    /// A masking key for a frame we send: fresh on a client, none on a server.
    fn mask(&self) -> Option<[u8; 4]> {
        self.client.then(client::mask)
    }

    /// How a data message goes out on this connection.
    fn framing(&self) -> Framing {
        Framing {
            binary: self.binary,
            masked: self.client,
            deflate: self.deflate,
        }
    }

    /// permessage-deflate was agreed, compressing within `window` bits.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    fn start_deflate(&mut self, window: u8) {
        self.deflate = Some(window);
        self.decoder.set_deflate(true);
    }
}

/// How [`encode_message`] frames a data message.
#[derive(Debug, Default, Clone, Copy)]
struct Framing {
    /// Text and bytes go out as binary frames.
    binary: bool,
    /// Frames are masked (a client's), each with a fresh key.
    masked: bool,
    /// permessage-deflate's window, if agreed.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    deflate: Option<u8>,
}

/// Server: accepts the client's permessage-deflate offer if there is one it can honour, and
/// returns the header line for the 101.
fn negotiate_deflate(state: &mut WebSocketState, request: &Request) -> Option<String> {
    #[cfg(feature = "deflate")]
    {
        let offers = request.header("sec-websocket-extensions")?;
        let (window, answer) = deflate::accept_offer(offers)?;
        state.start_deflate(window);
        Some(format!("Sec-WebSocket-Extensions: {answer}\r\n"))
    }
    #[cfg(not(feature = "deflate"))]
    {
        let _ = (state, request);
        None
    }
}

/// Client: checks the server's `Sec-WebSocket-Extensions` against what was offered.
fn client_deflate(
    state: &mut WebSocketState,
    offered: bool,
    answer: Option<&str>,
) -> Result<(), String> {
    let answered = answer.is_some_and(|answer| !answer.trim().is_empty());
    if !offered || cfg!(not(feature = "deflate")) {
        return match answered {
            true => Err("the server answered an extension that was not offered".into()),
            false => Ok(()),
        };
    }
    #[cfg(feature = "deflate")]
    if let Some(window) = deflate::check_answer(answer)? {
        state.start_deflate(window);
    }
    #[cfg(not(feature = "deflate"))]
    let _ = state;
    Ok(())
}

/// The `Sec-WebSocket-Extensions` line a `ws://` client offers, when deflate is on.
pub(crate) fn client_offer() -> Option<&'static str> {
    #[cfg(feature = "deflate")]
    {
        Some(deflate::CLIENT_OFFER)
    }
    #[cfg(not(feature = "deflate"))]
    {
        None
    }
}

/// What the peer's compressed message inflates to, or the close code it earns.
fn inflate_message(bytes: Vec<u8>, compressed: bool, limit: usize) -> Result<Vec<u8>, u16> {
    if !compressed {
        return Ok(bytes);
    }
    #[cfg(feature = "deflate")]
    {
        deflate::inflate(&bytes, limit).map_err(|error| match error {
            deflate::InflateError::TooBig => frame::CLOSE_MESSAGE_TOO_BIG,
            deflate::InflateError::Corrupt => frame::CLOSE_INVALID_PAYLOAD,
        })
    }
    #[cfg(not(feature = "deflate"))]
    {
        // Never negotiated without the feature, so the decoder never reports it.
        let _ = limit;
        Err(frame::CLOSE_PROTOCOL_ERROR)
    }
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
    /// A client's handshake answer was checked and accepted.
    Upgraded(usize, HandshakeResponse),
    /// A client's handshake failed.
    UpgradeFailed(String),
    HttpError(http::HttpError),
    Frame(usize, Event, Option<Message>),
}

/// Takes the next piece of `data`: the upgrade request, or (part of) a frame.
pub(crate) fn advance(handle: &TcpConnection, data: &[u8]) -> Advance {
    let step = with(|reactor| {
        let connection = reactor.connection_mut(handle)?;
        let state = connection.websocket.as_ref()?;
        let reading = match connection.status {
            TcpConnection::STATUS_ESTABLISHED => !connection.recv_paused,
            // Our close frame is out: read on for the peer's.
            TcpConnection::STATUS_CLOSING => state.awaits_close(),
            _ => false,
        };
        if !reading {
            return Some(Step::Wait);
        }
        let max_message = connection.max_package_size;
        match state.phase {
            Phase::Handshake if state.client => {
                let expected = state
                    .handshake
                    .as_ref()
                    .map_or("", |pending| &pending.accept);
                Some(match client::check_response(data, expected) {
                    Ok(None) => Step::Wait,
                    Ok(Some((length, response))) => Step::Upgraded(length, response),
                    Err(why) => Step::UpgradeFailed(why),
                })
            }
            Phase::Handshake => Some(
                match http::input(&mut connection.http, connection.max_package_size, data) {
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
                },
            ),
            Phase::Refused | Phase::Closed => Some(Step::Wait),
            Phase::Open | Phase::Closing => {
                let state = connection.websocket.as_mut()?;
                let role = state.role();
                let (consumed, mut event) = state.decoder.next(data, role, max_message);
                let message = match event {
                    Event::Message(opcode) => {
                        let compressed = state.decoder.compressed();
                        let bytes = state.decoder.take_message();
                        match inflate_message(bytes, compressed, max_message) {
                            // An uncompressed text message's bytes were validated as they
                            // arrived; an inflated one's are checked now.
                            Ok(bytes) if opcode == frame::OP_TEXT => match String::from_utf8(bytes)
                            {
                                Ok(text) => Some(Message::Text(text)),
                                Err(_) => {
                                    event = Event::Fail(frame::CLOSE_INVALID_PAYLOAD);
                                    None
                                }
                            },
                            Ok(bytes) => Some(Message::Binary(bytes)),
                            Err(code) => {
                                event = Event::Fail(code);
                                None
                            }
                        }
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
        Some(Step::Upgraded(length, response)) => {
            finish_client_handshake(handle, length, &response)
        }
        Some(Step::UpgradeFailed(why)) => upgrade_failed(handle, &why),
        Some(Step::Frame(consumed, event, _)) if closing(handle) => {
            on_event_closing(handle, consumed, event)
        }
        Some(Step::Frame(consumed, event, message)) => on_event(handle, consumed, event, message),
    }
}

/// Whether our close frame went out first and the peer's is awaited.
fn closing(handle: &TcpConnection) -> bool {
    with(|reactor| {
        reactor
            .connection(handle)
            .and_then(|connection| connection.websocket.as_ref())
            .is_some_and(|state| state.awaits_close())
    })
}

/// What arrives after our close frame: the peer's close frame completes the close handshake
/// and the connection closes (its socket has read all the peer sent, so it sends FIN, not
/// RST); a failure closes at once; anything else is dropped unread by the app.
fn on_event_closing(handle: &TcpConnection, consumed: usize, event: Event) -> Advance {
    match event {
        Event::More if consumed == 0 => Advance::Wait(0),
        Event::Close(_) | Event::Fail(_) => {
            with(|reactor| {
                if let Some(state) = reactor
                    .connection_mut(handle)
                    .and_then(|connection| connection.websocket.as_mut())
                {
                    state.phase = Phase::Closed;
                }
            });
            crate::connection::websocket::close_handshake_done(handle);
            Advance::Stop
        }
        _ => Advance::Consumed(consumed),
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
        Event::More => Advance::Consumed(consumed),
        Event::Pong(payload) => {
            let callback = with(|reactor| {
                let connection = reactor.connection_mut(handle)?;
                if let Some(state) = connection.websocket.as_mut() {
                    state.awaiting_pong = false;
                }
                connection
                    .worker
                    .callbacks
                    .on_websocket_pong
                    .borrow()
                    .clone()
            });
            if let Some(callback) = callback {
                if call_user(&|| describe(handle, "on_websocket_pong"), || {
                    callback(handle, payload.payload())
                })
                .is_none()
                {
                    connection_io::destroy(handle);
                    return Advance::Stop;
                }
            }
            Advance::Consumed(consumed)
        }
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
            let answer = close_answer(handle, payload.close_code());
            fail_or_close(handle, &answer);
            Advance::Stop
        }
        Event::Fail(code) => {
            log::debug!(
                "connection {}: WebSocket protocol failure, closing with {code}",
                handle.id()
            );
            let answer = close_answer(handle, Some(code));
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

/// A masking key for a control frame on this connection: fresh on a client, none on a server.
fn control_mask(handle: &TcpConnection) -> Option<[u8; 4]> {
    with(|reactor| {
        reactor
            .connection(handle)
            .and_then(|connection| connection.websocket.as_ref())
            .and_then(|state| state.mask())
    })
}

/// A `ws://` client's handshake failed: `on_error(CONNECT_FAIL)`, then the connection goes.
fn upgrade_failed(handle: &TcpConnection, why: &str) -> Advance {
    let message = format!("WebSocket handshake failed: {why}");
    log::debug!("connection {}: {message}", handle.id());
    connection_io::fire_error(handle, TcpConnection::CONNECT_FAIL, &message);
    connection_io::destroy(handle);
    Advance::Stop
}

/// Sends a ping or pong frame built on the stack (masked on a client).
fn send_control(handle: &TcpConnection, opcode: u8, payload: &Control) {
    let payload = payload.payload();
    let mask = control_mask(handle);
    let mut wire = [0u8; 6 + frame::MAX_CONTROL_PAYLOAD];
    wire[0] = 0x80 | opcode;
    wire[1] = payload.len() as u8;
    let start = match mask {
        Some(mask) => {
            wire[1] |= 0x80;
            wire[2..6].copy_from_slice(&mask);
            6
        }
        None => 2,
    };
    let end = start + payload.len();
    wire[start..end].copy_from_slice(payload);
    if let Some(mask) = mask {
        frame::apply_mask(&mut wire[start..end], mask);
    }
    connection_io::send_raw(handle, &wire[..end]);
}

/// A close frame with `code` (none: empty), masked on a client.
fn close_answer(handle: &TcpConnection, code: Option<u16>) -> Vec<u8> {
    let mask = control_mask(handle);
    let mut answer = Vec::with_capacity(8);
    frame::encode_close(&mut answer, code, "", mask);
    answer
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
            state.phase = Phase::Closed;
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
        let deflate_wanted = connection.worker.websocket_deflate.get();
        let state = connection.websocket.as_mut()?;
        if !established || state.phase != Phase::Handshake {
            return None;
        }
        state.phase = Phase::Open;
        let mut pending = state.handshake.take().unwrap_or_default();
        if deflate_wanted {
            if let Some(line) = negotiate_deflate(state, request) {
                pending.headers.extend_from_slice(line.as_bytes());
            }
        }
        let mut answer = Vec::with_capacity(160 + pending.headers.len() + pending.held_bytes);
        handshake::switching_protocols(&accept, &pending.headers, &mut answer);
        pending.frame_held(state.framing(), &mut answer);
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
    crate::connection::websocket::start_heartbeat(handle);
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

/// A `ws://` client's upgrade was answered and checked: open, send the frames held back, then
/// the client's `on_websocket_connect`.
fn finish_client_handshake(
    handle: &TcpConnection,
    length: usize,
    response: &HandshakeResponse,
) -> Advance {
    let extensions = response.header("sec-websocket-extensions");
    let queued = with(|reactor| {
        let connection = reactor.connection_mut(handle)?;
        let offered = connection.worker.websocket_deflate.get();
        let state = connection.websocket.as_mut()?;
        if let Err(why) = client_deflate(state, offered, extensions) {
            return Some(Err(why));
        }
        state.phase = Phase::Open;
        let framing = state.framing();
        Some(Ok(state.handshake.take().map(|pending| {
            let mut frames = Vec::with_capacity(pending.held_bytes);
            pending.frame_held(framing, &mut frames);
            frames
        })))
    });
    let queued = match queued {
        Some(Ok(queued)) => queued,
        Some(Err(why)) => return upgrade_failed(handle, &why),
        None => None,
    };
    if let Some(queued) = queued.filter(|queued| !queued.is_empty()) {
        connection_io::send_raw(handle, &queued);
    }
    crate::connection::async_tcp::on_websocket_open(handle, response);
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
    if let Outbound::Ping(_) | Outbound::Pong(_) = outbound {
        return encode_control(state, &outbound, out);
    }
    match state.phase {
        Phase::Open => {
            encode_message(state.framing(), outbound, out);
            Encoded::Write
        }
        Phase::Handshake => {
            // On a server, a `Response` sent now is the answer that refuses the handshake.
            if let Outbound::Response(response) = outbound {
                if !state.client {
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
                return hold(state, Outbound::Response(response), max_queue);
            }
            hold(state, outbound, max_queue)
        }
        Phase::Refused | Phase::Closing | Phase::Closed => {
            Encoded::Refused("the WebSocket connection is closing")
        }
    }
}

/// A ping or pong sent by the app: only on an open connection, payload up to 125 bytes.
#[inline(never)]
fn encode_control(state: &WebSocketState, outbound: &Outbound<'_>, out: &mut Vec<u8>) -> Encoded {
    if state.phase != Phase::Open {
        return Encoded::Refused("a ping or pong needs an open WebSocket connection");
    }
    let (opcode, payload) = match outbound {
        Outbound::Ping(ping) => (frame::OP_PING, ping.payload()),
        Outbound::Pong(pong) => (frame::OP_PONG, pong.payload()),
        _ => return Encoded::Refused("not a control message"),
    };
    if payload.len() > frame::MAX_CONTROL_PAYLOAD {
        return Encoded::Refused("a control frame's payload is at most 125 bytes");
    }
    frame::encode_frame(out, true, opcode, payload, state.mask());
    Encoded::Write
}

/// Queues a message until the handshake completes.
fn hold(state: &mut WebSocketState, outbound: Outbound<'_>, max_queue: usize) -> Encoded {
    let framing = state.framing();
    let pending = state.handshake.get_or_insert_with(Box::default);
    if pending.held_bytes >= max_queue {
        return Encoded::Refused("the queue before the WebSocket handshake is full");
    }
    let (opcode, payload) = message_parts(framing.binary, outbound);
    pending.held_bytes += payload.len();
    pending.held.push((opcode, payload.into_owned()));
    Encoded::Held
}

fn encode_message(framing: Framing, outbound: Outbound<'_>, out: &mut Vec<u8>) {
    let (opcode, payload) = message_parts(framing.binary, outbound);
    data_frame(framing, opcode, &payload, out);
}

/// A message's frame type and payload: a `Message` keeps its own type; other data is text
/// unless the connection sends binary or the bytes are not UTF-8.
fn message_parts(binary: bool, outbound: Outbound<'_>) -> (u8, Cow<'_, [u8]>) {
    let bytes: Cow<'_, [u8]> = match outbound {
        Outbound::WebSocket(Message::Text(text)) => {
            return (frame::OP_TEXT, Cow::Owned(text.into_bytes()));
        }
        Outbound::WebSocket(Message::Binary(bytes)) => {
            return (frame::OP_BINARY, Cow::Owned(bytes));
        }
        Outbound::Bytes(bytes) => bytes,
        Outbound::Response(response) => {
            let mut bytes = Vec::new();
            http::encode_standalone(response, &mut bytes);
            Cow::Owned(bytes)
        }
        Outbound::Event(event) => Cow::Owned(event.to_bytes()),
        Outbound::Chunk(chunk) => Cow::Owned(chunk.to_bytes()),
        // Sent around the framing (raw, shared) or as control frames: not data messages.
        Outbound::Raw(bytes) => bytes,
        Outbound::Shared(shared) => Cow::Owned(shared.as_bytes().to_vec()),
        Outbound::Ping(ping) => Cow::Owned(ping.into_payload()),
        Outbound::Pong(pong) => Cow::Owned(pong.into_payload()),
    };
    let opcode = if !binary && std::str::from_utf8(&bytes).is_ok() {
        frame::OP_TEXT
    } else {
        frame::OP_BINARY
    };
    (opcode, bytes)
}

impl Pending {
    /// Frames the messages held during the handshake, in order, into `out`.
    fn frame_held(self, framing: Framing, out: &mut Vec<u8>) {
        for (opcode, payload) in self.held {
            data_frame(framing, opcode, &payload, out);
        }
    }
}

/// One whole message in one frame: compressed (RSV1) when deflate was agreed and it pays.
fn data_frame(framing: Framing, opcode: u8, payload: &[u8], out: &mut Vec<u8>) {
    let mask = framing.masked.then(client::mask);
    #[cfg(feature = "deflate")]
    if let Some(window) = framing.deflate {
        if let Some(compressed) = deflate::compress(payload, window) {
            let start = out.len();
            frame::encode_frame(out, true, opcode, &compressed, mask);
            out[start] |= 0x40;
            return;
        }
    }
    frame::encode_frame(out, true, opcode, payload, mask);
}

/// Whether a shared, unmasked frame may go out as it is: an open server connection.
pub(crate) fn takes_shared_frames(connection: &Connection) -> bool {
    connection
        .websocket
        .as_ref()
        .is_some_and(|state| state.phase == Phase::Open && !state.client)
}

/// `close()` on an open WebSocket connection: the close frame (1000) to send before closing
/// (masked on a client), and its length.
pub(crate) fn close_frame(connection: &mut Connection) -> Option<([u8; 8], usize)> {
    let state = connection.websocket.as_mut()?;
    if state.phase != Phase::Open {
        return None;
    }
    state.phase = Phase::Closing;
    let [high, low] = frame::CLOSE_NORMAL.to_be_bytes();
    Some(match state.mask() {
        None => ([0x80 | frame::OP_CLOSE, 2, high, low, 0, 0, 0, 0], 4),
        Some(mask) => {
            let mut wire = [0x80 | frame::OP_CLOSE, 0x82, 0, 0, 0, 0, high, low];
            wire[2..6].copy_from_slice(&mask);
            frame::apply_mask(&mut wire[6..], mask);
            (wire, 8)
        }
    })
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
    ///
    /// ```no_run
    /// use workerman::protocols::websocket::WebSocketType;
    /// # fn f(connection: &workerman::TcpConnection) {
    /// if connection.websocket_type() == WebSocketType::Binary {
    ///     connection.send(vec![0u8, 1, 2]);
    /// }
    /// # }
    /// ```
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
        if !handshake::valid_extra_header(name, value) {
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
        let binary = Framing {
            binary: true,
            ..Framing::default()
        };
        let mut out = Vec::new();
        encode_message(Framing::default(), "hé".into(), &mut out);
        assert_eq!(out[0], 0x81);
        out.clear();
        encode_message(binary, "hé".into(), &mut out);
        assert_eq!(out[0], 0x82);
        out.clear();
        encode_message(Framing::default(), (&[0xffu8][..]).into(), &mut out);
        assert_eq!(out[0], 0x82);
        out.clear();
        encode_message(binary, Message::Text("x".into()).into(), &mut out);
        assert_eq!(out, [0x81, 1, b'x']);
        out.clear();
        encode_message(
            Framing::default(),
            Message::Binary(vec![b'x']).into(),
            &mut out,
        );
        assert_eq!(out, [0x82, 1, b'x']);
    }
}
