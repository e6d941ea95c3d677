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

use crate::protocols::Outbound;
use crate::protocols::http::{self, Request};

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

pub(crate) use frame::Control;
use frame::{Decoder, Event, Role};

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

/// What [`advance`] made of the start of the bytes: what the connection layer
/// (`connection/websocket.rs`) must act on. The codec has already moved its own state.
pub(crate) enum Output {
    /// Wait for more bytes.
    Wait,
    /// This many bytes were taken; go on with the rest.
    Consumed(usize),
    /// A whole message, ending this many bytes in.
    Message(usize, crate::protocols::Message),
    /// Server: the upgrade request (this many bytes) is whole and valid. Ask
    /// `on_websocket_connect`, then [`WebSocketState::accept_upgrade`] gives the 101 to write.
    Upgrade {
        length: usize,
        request: Request,
        accept: String,
    },
    /// Server: the upgrade request is refused (an HTTP error, or not a WebSocket handshake):
    /// write this answer, then end the connection.
    Refuse(Cow<'static, [u8]>, String),
    /// Client: the server's answer (this many bytes) came; [`WebSocketState::open_client`]
    /// checks its extensions and opens.
    Upgraded(usize, HandshakeResponse),
    /// Client: the server's answer is not a valid upgrade.
    UpgradeFailed(String),
    /// A ping: `on_websocket_ping`, then [`WebSocketState::pong`] answers it.
    Ping(usize, Control),
    /// A pong (the heartbeat's wait is over): `on_websocket_pong`.
    Pong(usize, Control),
    /// The peer's close frame, first: `on_websocket_close`, then [`WebSocketState::answer_close`]
    /// gives the echo to write, and the connection ends.
    PeerClose(Control),
    /// The peer broke the protocol: [`WebSocketState::answer_close`] with this code, then end.
    Fail(u16),
    /// The close handshake we started is over (the peer's close frame, or a failure after
    /// ours): close the connection.
    Closed,
}

/// Takes the next piece of `data`: the upgrade request, the server's answer, or (part of) a
/// frame. `http` is the connection's request parser (the upgrade request is HTTP), `max_message`
/// its `max_package_size`.
pub(crate) fn advance(
    state: &mut WebSocketState,
    http: &mut http::HttpState,
    max_message: usize,
    data: &[u8],
) -> Output {
    match state.phase {
        Phase::Handshake if state.client => {
            let expected = state
                .handshake
                .as_ref()
                .map_or("", |pending| &pending.accept);
            match client::check_response(data, expected) {
                Ok(None) => Output::Wait,
                Ok(Some((length, response))) => Output::Upgraded(length, response),
                Err(why) => Output::UpgradeFailed(why),
            }
        }
        Phase::Handshake => upgrade_request(http, max_message, data),
        Phase::Refused | Phase::Closed => Output::Wait,
        Phase::Open | Phase::Closing => {
            let (consumed, event, message) = state.next_frame(data, max_message);
            if state.phase == Phase::Closing {
                return state.after_our_close(consumed, event);
            }
            match event {
                Event::More if consumed == 0 => Output::Wait,
                Event::More => Output::Consumed(consumed),
                Event::Message(_) => match message {
                    Some(message) => {
                        Output::Message(consumed, crate::protocols::Message::WebSocket(message))
                    }
                    None => Output::Consumed(consumed),
                },
                Event::Ping(payload) => Output::Ping(consumed, payload),
                Event::Pong(payload) => {
                    state.awaiting_pong = false;
                    Output::Pong(consumed, payload)
                }
                Event::Close(payload) => Output::PeerClose(payload),
                Event::Fail(code) => Output::Fail(code),
            }
        }
    }
}

/// Server: frames and checks the upgrade request with the HTTP parser and limits.
fn upgrade_request(http: &mut http::HttpState, max_message: usize, data: &[u8]) -> Output {
    match http::input(http, max_message, data) {
        Ok(None) => Output::Wait,
        Ok(Some(length)) => {
            let mut raw = http::take_buffer(length);
            raw.extend_from_slice(&data[..length]);
            let request = http.parser.decode(raw);
            // Nothing more is parsed as HTTP on this connection.
            http.parser.release();
            match handshake::check(&request) {
                Ok(accept) => Output::Upgrade {
                    length,
                    request,
                    accept,
                },
                Err(rejection) => Output::Refuse(
                    Cow::Owned(rejection.response()),
                    format!("not a WebSocket handshake: {rejection:?}"),
                ),
            }
        }
        Err(error) => Output::Refuse(
            Cow::Borrowed(error.response()),
            format!(
                "{error} in a WebSocket handshake, answering {}",
                error.status()
            ),
        ),
    }
}

impl WebSocketState {
    /// Decodes the next frame (or part of one); a whole message comes with its text checked
    /// and its payload inflated.
    fn next_frame(&mut self, data: &[u8], max_message: usize) -> (usize, Event, Option<Message>) {
        let role = self.role();
        let (consumed, mut event) = self.decoder.next(data, role, max_message);
        let message = match event {
            Event::Message(opcode) => {
                let compressed = self.decoder.compressed();
                let bytes = self.decoder.take_message();
                match inflate_message(bytes, compressed, max_message) {
                    // An uncompressed text message's bytes were validated as they arrived; an
                    // inflated one's are checked now.
                    Ok(bytes) if opcode == frame::OP_TEXT => match String::from_utf8(bytes) {
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
        (consumed, event, message)
    }

    /// What arrives after our close frame: the peer's close frame completes the close
    /// handshake (so does a failure); anything else is dropped, unseen by the app.
    fn after_our_close(&mut self, consumed: usize, event: Event) -> Output {
        match event {
            Event::More if consumed == 0 => Output::Wait,
            Event::Close(_) | Event::Fail(_) => {
                self.phase = Phase::Closed;
                Output::Closed
            }
            _ => Output::Consumed(consumed),
        }
    }

    /// Whether frames may still be sent.
    pub(crate) fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// The answer to the peer's close frame (its code; `None`: an empty one) or to a failure
    /// (the failure's code): our close frame, if frames may still be sent. Either way nothing
    /// more is sent or read after it.
    pub(crate) fn answer_close(&mut self, code: Option<u16>) -> Option<Vec<u8>> {
        let open = self.phase == Phase::Open;
        self.phase = Phase::Closed;
        open.then(|| {
            let mut answer = Vec::with_capacity(8);
            frame::encode_close(&mut answer, code, "", self.mask());
            answer
        })
    }

    /// The pong that answers a ping with this payload (built on the stack, masked on a
    /// client), and its length; `None` once frames may no longer be sent.
    pub(crate) fn pong(
        &self,
        payload: &Control,
    ) -> Option<([u8; 6 + frame::MAX_CONTROL_PAYLOAD], usize)> {
        if !self.is_open() {
            return None;
        }
        let payload = payload.payload();
        let mask = self.mask();
        let mut wire = [0u8; 6 + frame::MAX_CONTROL_PAYLOAD];
        wire[0] = 0x80 | frame::OP_PONG;
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
        Some((wire, end))
    }

    /// Server: `on_websocket_connect` let the upgrade through. The 101 answer (with the extra
    /// headers and the messages held back), or `None` when the handshake was refused meanwhile.
    /// `deflate`: the worker offers permessage-deflate.
    pub(crate) fn accept_upgrade(
        &mut self,
        request: &Request,
        accept: &str,
        deflate: bool,
    ) -> Option<Vec<u8>> {
        if self.phase != Phase::Handshake {
            return None;
        }
        self.phase = Phase::Open;
        let mut pending = self.handshake.take().unwrap_or_default();
        if deflate {
            if let Some(line) = negotiate_deflate(self, request) {
                pending.headers.extend_from_slice(line.as_bytes());
            }
        }
        let mut answer = Vec::with_capacity(160 + pending.headers.len() + pending.held_bytes);
        handshake::switching_protocols(accept, &pending.headers, &mut answer);
        pending.frame_held(self.framing(), &mut answer);
        Some(answer)
    }

    /// Client: the server's answer was checked; its extensions must match what was offered
    /// (`offered`: deflate). Opens, and gives the frames held back during the handshake.
    pub(crate) fn open_client(
        &mut self,
        offered: bool,
        response: &HandshakeResponse,
    ) -> Result<Vec<u8>, String> {
        client_deflate(self, offered, response.header("sec-websocket-extensions"))?;
        self.phase = Phase::Open;
        let framing = self.framing();
        Ok(self.handshake.take().map_or_else(Vec::new, |pending| {
            let mut frames = Vec::with_capacity(pending.held_bytes);
            pending.frame_held(framing, &mut frames);
            frames
        }))
    }

    /// Whether text and bytes go out as binary frames (Workerman's `websocketType`).
    pub(crate) fn binary(&self) -> bool {
        self.binary
    }

    /// Sets whether text and bytes go out as binary frames.
    pub(crate) fn set_binary(&mut self, binary: bool) {
        self.binary = binary;
    }

    /// Adds a header line to the 101 answer; `false` once the handshake is over or for a name
    /// or value that may not be sent.
    pub(crate) fn add_header(&mut self, name: &str, value: &str) -> bool {
        if self.phase != Phase::Handshake || !handshake::valid_extra_header(name, value) {
            return false;
        }
        let pending = self.handshake.get_or_insert_with(Box::default);
        for part in [name.as_bytes(), b": ", value.as_bytes(), b"\r\n"] {
            pending.headers.extend_from_slice(part);
        }
        true
    }
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
/// `max_queue`: the connection's `max_send_buffer_size`, which bounds the queue too.
pub(crate) fn encode(
    state: Option<&mut WebSocketState>,
    max_queue: usize,
    outbound: Outbound<'_>,
    out: &mut Vec<u8>,
) -> Encoded {
    let Some(state) = state else {
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
pub(crate) fn takes_shared_frames(state: Option<&WebSocketState>) -> bool {
    state.is_some_and(|state| state.phase == Phase::Open && !state.client)
}

/// `close()` on an open WebSocket connection: the close frame (1000) to send before closing
/// (masked on a client), and its length.
pub(crate) fn close_frame(state: Option<&mut WebSocketState>) -> Option<([u8; 8], usize)> {
    let state = state?;
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

    /// A masked client frame.
    fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frame::encode_frame(&mut out, true, opcode, payload, Some([1, 2, 3, 4]));
        out
    }

    #[test]
    fn the_codec_returns_the_handshake_control_frames_and_the_close_handshake() {
        // Bytes in, outputs out: no socket, no reactor.
        let mut state = WebSocketState::default();
        let mut http = http::HttpState::default();
        let upgrade = b"GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-WebSocket-Version: 13\r\n\r\n";
        let Output::Upgrade {
            length,
            request,
            accept,
        } = advance(&mut state, &mut http, 1 << 20, upgrade)
        else {
            panic!("an upgrade");
        };
        assert_eq!(length, upgrade.len());
        assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        // Sent before the 101: held, then framed after it.
        assert!(matches!(
            encode(Some(&mut state), 1 << 20, "early".into(), &mut Vec::new()),
            Encoded::Held
        ));
        let answer = state.accept_upgrade(&request, &accept, false).unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 101 "));
        assert!(answer.ends_with(b"\r\n\r\n\x81\x05early"));
        assert!(state.is_open());

        let ping = client_frame(frame::OP_PING, b"hi");
        let Output::Ping(consumed, payload) = advance(&mut state, &mut http, 1 << 20, &ping) else {
            panic!("a ping");
        };
        assert_eq!(consumed, ping.len());
        let (pong, length) = state.pong(&payload).unwrap();
        assert_eq!(&pong[..length], b"\x8a\x02hi");

        // A close we start: data after it is dropped, the peer's close frame ends it.
        let (close, length) = close_frame(Some(&mut state)).unwrap();
        assert_eq!(&close[..length], b"\x88\x02\x03\xe8");
        assert!(state.awaits_close());
        let text = client_frame(frame::OP_TEXT, b"late");
        assert!(matches!(
            advance(&mut state, &mut http, 1 << 20, &text),
            Output::Consumed(n) if n == text.len()
        ));
        let their_close = client_frame(frame::OP_CLOSE, b"\x03\xe8");
        assert!(matches!(
            advance(&mut state, &mut http, 1 << 20, &their_close),
            Output::Closed
        ));
        assert!(!state.awaits_close());
    }

    #[test]
    fn the_peers_close_is_answered_once_and_a_bad_upgrade_refused() {
        let mut state = WebSocketState {
            phase: Phase::Open,
            ..WebSocketState::default()
        };
        let mut http = http::HttpState::default();
        let close = client_frame(frame::OP_CLOSE, b"\x0f\xa1bye");
        let Output::PeerClose(payload) = advance(&mut state, &mut http, 1 << 20, &close) else {
            panic!("the peer's close");
        };
        assert_eq!(payload.close_code(), Some(4001));
        assert_eq!(
            state.answer_close(payload.close_code()).unwrap(),
            b"\x88\x02\x0f\xa1"
        );
        assert_eq!(state.answer_close(Some(1000)), None, "answered once");

        let mut fresh = WebSocketState::default();
        let plain = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(matches!(
            advance(&mut fresh, &mut http::HttpState::default(), 1 << 20, plain),
            Output::Refuse(..)
        ));
    }
}
