//! WebSocket frames (RFC 6455 §5): a push decoder and an encoder, with no sockets in sight.
//!
//! [`Decoder::next`] is fed everything received so far (from a frame boundary or from where the
//! previous call stopped) and streams data-frame payloads straight into the message being
//! assembled, unmasking them in place there, so a message costs one allocation (the `Vec` its
//! receiver gets) and a large frame is never buffered twice. It checks everything RFC 6455 asks
//! of a receiver: reserved bits and opcodes, masking (by [`Role`]), control frames (at most 125
//! bytes, never fragmented), continuation order, UTF-8 in text messages (failing as soon as a
//! byte cannot be UTF-8, even mid-frame), close payloads, and the message size limit.
//!
//! The same decoder and [`encode_frame`] serve both ends: a server expects masked frames and
//! sends unmasked ones; a client the reverse.
//!
//! ```
//! use workerman::protocols::websocket::frame::{encode_frame, Decoder, Event, Role, OP_TEXT};
//!
//! // A client masks what it sends; the server's decoder unmasks it.
//! let mut from_client = Vec::new();
//! encode_frame(&mut from_client, true, OP_TEXT, b"ping?", Some([7, 7, 7, 7]));
//! let mut server = Decoder::default();
//! let (used, event) = server.next(&from_client, Role::Server, 1 << 20);
//! assert_eq!((used, event), (from_client.len(), Event::Message(OP_TEXT)));
//! assert_eq!(server.take_message(), b"ping?");
//!
//! // The server answers unmasked; the client's decoder insists on that.
//! let mut from_server = Vec::new();
//! encode_frame(&mut from_server, true, OP_TEXT, b"pong!", None);
//! let mut client = Decoder::default();
//! assert_eq!(client.next(&from_server, Role::Client, 1 << 20).1, Event::Message(OP_TEXT));
//! assert_eq!(client.take_message(), b"pong!");
//! ```

/// Continuation of a fragmented message.
///
/// ```
/// use workerman::protocols::websocket::frame::{encode_frame, Decoder, Event, Role, OP_CONTINUATION, OP_TEXT};
/// // "hello" in two fragments, masked as a client sends them.
/// let mut wire = Vec::new();
/// encode_frame(&mut wire, false, OP_TEXT, b"hel", Some([1, 2, 3, 4]));
/// encode_frame(&mut wire, true, OP_CONTINUATION, b"lo", Some([5, 6, 7, 8]));
/// let mut decoder = Decoder::default();
/// let mut consumed = 0;
/// let mut event = Event::More;
/// while event == Event::More && consumed < wire.len() {
///     let (used, next) = decoder.next(&wire[consumed..], Role::Server, 1024);
///     consumed += used;
///     event = next;
/// }
/// assert_eq!(event, Event::Message(OP_TEXT));
/// assert_eq!(decoder.take_message(), b"hello");
/// ```
pub const OP_CONTINUATION: u8 = 0x0;
/// A text message (UTF-8).
///
/// ```
/// use workerman::protocols::websocket::frame::{encode_frame, parse_header, OP_TEXT};
/// let mut wire = Vec::new();
/// encode_frame(&mut wire, true, OP_TEXT, "héllo".as_bytes(), None);
/// assert_eq!(parse_header(&wire).unwrap().opcode, OP_TEXT);
/// ```
pub const OP_TEXT: u8 = 0x1;
/// A binary message.
///
/// ```
/// use workerman::protocols::websocket::frame::{encode_frame, parse_header, OP_BINARY};
/// let mut wire = Vec::new();
/// encode_frame(&mut wire, true, OP_BINARY, &[0, 159, 146, 150], None);
/// assert_eq!(wire[0], 0x80 | OP_BINARY); // FIN + opcode
/// assert_eq!(parse_header(&wire).unwrap().opcode, OP_BINARY);
/// ```
pub const OP_BINARY: u8 = 0x2;
/// Close.
///
/// ```
/// use workerman::protocols::websocket::frame::{encode_close, parse_header, OP_CLOSE};
/// let mut wire = Vec::new();
/// encode_close(&mut wire, Some(1000), "bye", None);
/// assert_eq!(parse_header(&wire).unwrap().opcode, OP_CLOSE);
/// ```
pub const OP_CLOSE: u8 = 0x8;
/// Ping.
///
/// ```
/// use workerman::protocols::websocket::frame::{encode_frame, Decoder, Event, Role, OP_PING};
/// let mut wire = Vec::new();
/// encode_frame(&mut wire, true, OP_PING, b"hb", None);
/// let (_, event) = Decoder::default().next(&wire, Role::Client, 1024);
/// let Event::Ping(payload) = event else { panic!("{event:?}") };
/// assert_eq!(payload.payload(), b"hb");
/// ```
pub const OP_PING: u8 = 0x9;
/// Pong.
///
/// ```
/// use workerman::protocols::websocket::frame::{encode_frame, Decoder, Event, Role, OP_PONG};
/// // The answer to a ping carries the ping's payload.
/// let mut wire = Vec::new();
/// encode_frame(&mut wire, true, OP_PONG, b"hb", Some([9, 9, 9, 9]));
/// let (_, event) = Decoder::default().next(&wire, Role::Server, 1024);
/// assert!(matches!(event, Event::Pong(payload) if payload.payload() == b"hb"));
/// ```
pub const OP_PONG: u8 = 0xA;

/// Close code: normal closure.
///
/// ```
/// use workerman::protocols::websocket::frame::{Control, CLOSE_NORMAL};
/// let close = Control::new(&[0x03, 0xe8]);
/// assert_eq!(close.close_code(), Some(CLOSE_NORMAL));
/// ```
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code: the endpoint is going away (server shutdown, page left).
///
/// ```no_run
/// use workerman::protocols::websocket::frame::CLOSE_GOING_AWAY;
/// # fn f(connection: &workerman::TcpConnection) {
/// // The server is shutting down: tell the browser to reconnect elsewhere.
/// connection.close_with_code(CLOSE_GOING_AWAY, "restarting");
/// # }
/// ```
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: protocol error.
///
/// ```
/// use workerman::protocols::websocket::frame::{Decoder, Event, Role, CLOSE_PROTOCOL_ERROR};
/// // A client's frames must be masked; this one is not.
/// let (_, event) = Decoder::default().next(&[0x81, 0x00], Role::Server, 1024);
/// assert_eq!(event, Event::Fail(CLOSE_PROTOCOL_ERROR));
/// ```
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// Close code: a data type the endpoint cannot accept.
///
/// ```no_run
/// use workerman::protocols::websocket::frame::CLOSE_UNSUPPORTED_DATA;
/// use workerman::protocols::websocket::Message;
/// # fn f(connection: &workerman::TcpConnection, message: Message) {
/// // This chat takes text only.
/// if let Message::Binary(_) = message {
///     connection.close_with_code(CLOSE_UNSUPPORTED_DATA, "text only");
/// }
/// # }
/// ```
pub const CLOSE_UNSUPPORTED_DATA: u16 = 1003;
/// Reported (never sent) when a close frame carried no code.
///
/// ```
/// use workerman::protocols::websocket::frame::{valid_close_code, CLOSE_NO_STATUS};
/// let mut worker = workerman::Worker::new("websocket://127.0.0.1:0");
/// worker.on_websocket_close(|_connection, code, _reason| {
///     if code == CLOSE_NO_STATUS {
///         println!("closed without a code");
///     }
/// });
/// assert!(!valid_close_code(CLOSE_NO_STATUS)); // reported, never sent
/// ```
pub const CLOSE_NO_STATUS: u16 = 1005;
/// Close code: a text message (or close reason) that is not UTF-8.
///
/// ```
/// use workerman::protocols::websocket::frame::{encode_frame, Decoder, Event, Role, CLOSE_INVALID_PAYLOAD, OP_TEXT};
/// let mut wire = Vec::new();
/// encode_frame(&mut wire, true, OP_TEXT, &[b'a', 0xff], Some([1, 2, 3, 4]));
/// let (_, event) = Decoder::default().next(&wire, Role::Server, 1024);
/// assert_eq!(event, Event::Fail(CLOSE_INVALID_PAYLOAD));
/// ```
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;
/// Close code: a policy violation.
///
/// ```no_run
/// use workerman::protocols::websocket::frame::CLOSE_POLICY_VIOLATION;
/// # fn f(connection: &workerman::TcpConnection, token_valid: bool) {
/// if !token_valid {
///     connection.close_with_code(CLOSE_POLICY_VIOLATION, "bad token");
/// }
/// # }
/// ```
pub const CLOSE_POLICY_VIOLATION: u16 = 1008;
/// Close code: a message over the size limit.
///
/// ```
/// use workerman::protocols::websocket::frame::{encode_frame, Decoder, Event, Role, CLOSE_MESSAGE_TOO_BIG, OP_BINARY};
/// let mut wire = Vec::new();
/// encode_frame(&mut wire, true, OP_BINARY, &[0; 100], Some([1, 2, 3, 4]));
/// // At most 64 bytes per message.
/// let (_, event) = Decoder::default().next(&wire, Role::Server, 64);
/// assert_eq!(event, Event::Fail(CLOSE_MESSAGE_TOO_BIG));
/// ```
pub const CLOSE_MESSAGE_TOO_BIG: u16 = 1009;
/// Close code: an unexpected condition on the server.
///
/// ```no_run
/// use workerman::protocols::websocket::frame::CLOSE_INTERNAL_ERROR;
/// # fn f(connection: &workerman::TcpConnection, database_up: bool) {
/// if !database_up {
///     connection.close_with_code(CLOSE_INTERNAL_ERROR, "try again later");
/// }
/// # }
/// ```
pub const CLOSE_INTERNAL_ERROR: u16 = 1011;

/// The largest control frame payload (RFC 6455 §5.5).
///
/// ```
/// use workerman::protocols::websocket::frame::{Control, MAX_CONTROL_PAYLOAD};
/// assert_eq!(Control::new(&[0; 500]).payload().len(), MAX_CONTROL_PAYLOAD);
/// ```
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Which end of the connection decodes: a server's peer must mask its frames, a client's must not.
///
/// ```
/// use workerman::protocols::websocket::frame::Role;
/// assert_ne!(Role::Server, Role::Client);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Incoming frames must be masked (RFC 6455 §5.1).
    Server,
    /// Incoming frames must not be masked.
    Client,
}

/// A frame header as it appears on the wire (not yet checked against the protocol's rules).
///
/// ```
/// use workerman::protocols::websocket::frame::{parse_header, Header};
/// // A final, unmasked binary frame of 3 bytes.
/// let header = parse_header(&[0x82, 0x03]).unwrap();
/// let expected = Header { fin: true, rsv: 0, opcode: 2, mask: None, payload_len: 3, header_len: 2 };
/// assert_eq!(header, expected);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The FIN bit: the last frame of a message.
    pub fin: bool,
    /// RSV1..RSV3, in the low three bits.
    pub rsv: u8,
    /// The opcode (low four bits of the first byte).
    pub opcode: u8,
    /// The masking key, if the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length as sent (up to 2^64 - 1 on the wire).
    pub payload_len: u64,
    /// The header's length in bytes: 2 to 14.
    pub header_len: usize,
}

/// Parses the header at the start of `buffer`; `None` until all of it has arrived.
///
/// ```
/// use workerman::protocols::websocket::frame::parse_header;
/// let header = parse_header(&[0x81, 0x85, 1, 2, 3, 4]).unwrap();
/// assert!(header.fin);
/// assert_eq!((header.opcode, header.payload_len, header.header_len), (1, 5, 6));
/// assert_eq!(header.mask, Some([1, 2, 3, 4]));
/// assert!(parse_header(&[0x81, 0xFE, 0]).is_none());
/// ```
pub fn parse_header(buffer: &[u8]) -> Option<Header> {
    let (&first, rest) = buffer.split_first()?;
    let &second = rest.first()?;
    let (payload_len, mut header_len) = match second & 0x7F {
        126 => (
            u64::from(u16::from_be_bytes([*buffer.get(2)?, *buffer.get(3)?])),
            4,
        ),
        127 => {
            let bytes = buffer.get(2..10)?;
            let mut word = [0u8; 8];
            word.copy_from_slice(bytes);
            (u64::from_be_bytes(word), 10)
        }
        length => (u64::from(length), 2),
    };
    let mask = if second & 0x80 != 0 {
        let bytes = buffer.get(header_len..header_len + 4)?;
        header_len += 4;
        Some([bytes[0], bytes[1], bytes[2], bytes[3]])
    } else {
        None
    };
    Some(Header {
        fin: first & 0x80 != 0,
        rsv: (first >> 4) & 0x07,
        opcode: first & 0x0F,
        mask,
        payload_len,
        header_len,
    })
}

/// XORs `data` with `mask` in place, as if `data` started at a multiple of four in the payload,
/// and returns the mask rotated for the bytes that follow `data`.
///
/// ```
/// use workerman::protocols::websocket::frame::apply_mask;
/// let mut data = *b"Hello";
/// let next = apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d]);
/// assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// assert_eq!(next, [0xfa, 0x21, 0x3d, 0x37]);
/// ```
pub fn apply_mask(data: &mut [u8], mask: [u8; 4]) -> [u8; 4] {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (index, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[index % 4];
    }
    let mut next = mask;
    next.rotate_left(data.len() % 4);
    next
}

/// Appends one frame to `out`: header, then `payload`, masked with `mask` if given (a client's
/// frames must be masked; a server's must not).
///
/// ```
/// use workerman::protocols::websocket::frame::{encode_frame, OP_TEXT};
/// let mut out = Vec::new();
/// encode_frame(&mut out, true, OP_TEXT, b"hi", None);
/// assert_eq!(out, [0x81, 2, b'h', b'i']);
/// ```
pub fn encode_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    out.reserve(payload.len() + 14);
    out.push(if fin { 0x80 } else { 0 } | (opcode & 0x0F));
    match payload.len() {
        length @ 0..=125 => out.push(mask_bit | length as u8),
        length @ 126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(length as u16).to_be_bytes());
        }
        length => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(length as u64).to_be_bytes());
        }
    }
    match mask {
        Some(mask) => {
            out.extend_from_slice(&mask);
            let start = out.len();
            out.extend_from_slice(payload);
            apply_mask(&mut out[start..], mask);
        }
        None => out.extend_from_slice(payload),
    }
}

/// Appends a close frame with `code` and `reason` (cut to fit 125 bytes on a character
/// boundary); `code` `None` sends an empty close frame.
///
/// ```
/// use workerman::protocols::websocket::frame::encode_close;
/// let mut out = Vec::new();
/// encode_close(&mut out, Some(1000), "", None);
/// assert_eq!(out, [0x88, 2, 0x03, 0xe8]);
/// ```
pub fn encode_close(out: &mut Vec<u8>, code: Option<u16>, reason: &str, mask: Option<[u8; 4]>) {
    let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
    let length = match code {
        None => 0,
        Some(code) => {
            payload[..2].copy_from_slice(&code.to_be_bytes());
            let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            payload[2..2 + end].copy_from_slice(&reason.as_bytes()[..end]);
            2 + end
        }
    };
    encode_frame(out, true, OP_CLOSE, &payload[..length], mask);
}

/// Whether `code` may appear in a close frame (RFC 6455 §7.4 and the IANA registry): 1000–1003,
/// 1007–1014, and 3000–4999 (registered and private codes). 1004–1006 and 1015 are reserved and
/// must never be sent.
///
/// ```
/// use workerman::protocols::websocket::frame::valid_close_code;
/// assert!(valid_close_code(1000) && valid_close_code(4999));
/// assert!(!valid_close_code(1005) && !valid_close_code(999) && !valid_close_code(5000));
/// ```
pub fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// An incremental UTF-8 validator: bytes may be split anywhere, and an invalid byte is reported
/// the moment it arrives (Autobahn's "fail fast"), not at the end of the message.
///
/// ```
/// use workerman::protocols::websocket::frame::Utf8Validator;
/// let mut utf8 = Utf8Validator::default();
/// assert!(utf8.feed(&[0xce, 0xba, 0xe1])); // "κ" and the first byte of "ό"
/// assert!(!utf8.is_complete());
/// assert!(utf8.feed(&[0xbd, 0xb9]));
/// assert!(utf8.is_complete());
/// assert!(!utf8.feed(&[0xc0])); // never valid
/// ```
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Utf8Validator {
    state: u8,
}

/// Validator states: 0 accepts; 1–3 want that many continuation bytes (80–BF); 4–7 want the
/// constrained first continuation after E0, ED, F0, F4; 8 has rejected.
const UTF8_ACCEPT: u8 = 0;
const UTF8_REJECT: u8 = 8;

fn utf8_step(state: u8, byte: u8) -> u8 {
    let continuation = |low: u8, high: u8, next: u8| {
        if (low..=high).contains(&byte) {
            next
        } else {
            UTF8_REJECT
        }
    };
    match state {
        0 => match byte {
            0x00..=0x7F => 0,
            0xC2..=0xDF => 1,
            0xE0 => 4,
            0xE1..=0xEC | 0xEE..=0xEF => 2,
            0xED => 5,
            0xF0 => 6,
            0xF1..=0xF3 => 3,
            0xF4 => 7,
            _ => UTF8_REJECT,
        },
        1 => continuation(0x80, 0xBF, 0),
        2 => continuation(0x80, 0xBF, 1),
        3 => continuation(0x80, 0xBF, 2),
        4 => continuation(0xA0, 0xBF, 1),
        5 => continuation(0x80, 0x9F, 1),
        6 => continuation(0x90, 0xBF, 2),
        7 => continuation(0x80, 0x8F, 2),
        _ => UTF8_REJECT,
    }
}

impl Utf8Validator {
    /// Takes the next bytes; `false` once the input cannot be UTF-8 (and from then on).
    ///
    /// ```
    /// use workerman::protocols::websocket::frame::Utf8Validator;
    /// let mut utf8 = Utf8Validator::default();
    /// assert!(utf8.feed("ünï".as_bytes()));
    /// assert!(!utf8.feed(&[0xff]));
    /// assert!(!utf8.feed(b"ascii")); // rejected for good
    /// ```
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        let mut index = 0;
        // Finish a character split by the previous call, byte by byte.
        while self.state != UTF8_ACCEPT && index < bytes.len() {
            self.state = utf8_step(self.state, bytes[index]);
            index += 1;
        }
        if self.state == UTF8_REJECT {
            return false;
        }
        let rest = &bytes[index..];
        if rest.is_empty() {
            return true;
        }
        // The bulk goes through the standard library's (fast) validator.
        match std::str::from_utf8(rest) {
            Ok(_) => true,
            Err(error) if error.error_len().is_some() => {
                self.state = UTF8_REJECT;
                false
            }
            Err(error) => {
                // A character cut off at the end: remember how far into it we are.
                for &byte in &rest[error.valid_up_to()..] {
                    self.state = utf8_step(self.state, byte);
                }
                self.state != UTF8_REJECT
            }
        }
    }

    /// Whether everything fed so far is whole, valid UTF-8.
    ///
    /// ```
    /// use workerman::protocols::websocket::frame::Utf8Validator;
    /// let mut utf8 = Utf8Validator::default();
    /// utf8.feed(&[0xe2, 0x9c]); // the first two of "✓"'s three bytes
    /// assert!(!utf8.is_complete());
    /// utf8.feed(&[0x93]);
    /// assert!(utf8.is_complete());
    /// ```
    pub fn is_complete(&self) -> bool {
        self.state == UTF8_ACCEPT
    }
}

/// A control frame's payload (at most 125 bytes), unmasked, held without allocating.
///
/// ```
/// use workerman::protocols::websocket::frame::Control;
/// let close = Control::new(&[0x03, 0xe8, b'b', b'y', b'e']);
/// assert_eq!(close.close_code(), Some(1000));
/// assert_eq!(close.close_reason(), "bye");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Control {
    length: u8,
    payload: [u8; MAX_CONTROL_PAYLOAD],
}

impl Control {
    /// A control payload from `bytes` (cut to 125 bytes).
    ///
    /// ```
    /// use workerman::protocols::websocket::frame::Control;
    /// assert_eq!(Control::new(&[7; 200]).payload().len(), 125);
    /// ```
    pub fn new(bytes: &[u8]) -> Control {
        let length = bytes.len().min(MAX_CONTROL_PAYLOAD);
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        payload[..length].copy_from_slice(&bytes[..length]);
        Control {
            length: length as u8,
            payload,
        }
    }

    /// The payload.
    ///
    /// ```
    /// use workerman::protocols::websocket::frame::Control;
    /// assert_eq!(Control::new(b"ping?").payload(), b"ping?");
    /// ```
    pub fn payload(&self) -> &[u8] {
        &self.payload[..usize::from(self.length)]
    }

    /// A close frame's status code, if it carried one.
    ///
    /// ```
    /// use workerman::protocols::websocket::frame::Control;
    /// assert_eq!(Control::new(&[0x03, 0xe9]).close_code(), Some(1001));
    /// assert_eq!(Control::new(&[]).close_code(), None);
    /// ```
    pub fn close_code(&self) -> Option<u16> {
        let payload = self.payload();
        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
    }

    /// A close frame's reason (empty if none, or if it is not UTF-8, which the decoder rejects).
    ///
    /// ```
    /// use workerman::protocols::websocket::frame::Control;
    /// assert_eq!(Control::new(b"\x03\xe8done").close_reason(), "done");
    /// assert_eq!(Control::new(b"\x03\xe8").close_reason(), "");
    /// ```
    pub fn close_reason(&self) -> &str {
        let payload = self.payload();
        if payload.len() <= 2 {
            return "";
        }
        std::str::from_utf8(&payload[2..]).unwrap_or_default()
    }
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Control").field(&self.payload()).finish()
    }
}

/// What [`Decoder::next`] found.
///
/// ```
/// use workerman::protocols::websocket::frame::{encode_frame, Decoder, Event, Role, OP_PING};
/// let mut wire = Vec::new();
/// encode_frame(&mut wire, true, OP_PING, b"are you there", Some([9, 8, 7, 6]));
/// let (_, event) = Decoder::default().next(&wire, Role::Server, 1024);
/// let Event::Ping(payload) = event else { panic!("{event:?}") };
/// assert_eq!(payload.payload(), b"are you there");
/// // A server's peer must mask its frames: an unmasked one is a protocol error (1002).
/// let (_, event) = Decoder::default().next(&[0x81, 0x00], Role::Server, 1024);
/// assert_eq!(event, Event::Fail(1002));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Nothing to report: the bytes it consumed (if any) went into the frame in progress. Call
    /// again with what follows them, or once more bytes arrive.
    More,
    /// A whole message, [`OP_TEXT`] (valid UTF-8) or [`OP_BINARY`]: take it with
    /// [`Decoder::take_message`].
    Message(u8),
    /// A ping and its payload (answer with a pong carrying the same payload).
    Ping(Control),
    /// A pong.
    Pong(Control),
    /// A close frame; its payload is valid (no code, or a valid code and a UTF-8 reason).
    Close(Control),
    /// The peer broke the protocol: close the connection with this code (1002, 1007 or 1009).
    Fail(u16),
}

/// RSV1 in [`Header::rsv`]: a compressed message (permessage-deflate).
const RSV1: u8 = 4;

/// Decoder flags.
const IN_FRAME: u8 = 1;
const FIN: u8 = 2;

/// The receiving side of a WebSocket connection: frames in, messages and control frames out.
///
/// ```
/// use workerman::protocols::websocket::frame::{encode_frame, Decoder, Event, Role, OP_TEXT};
/// let mut wire = Vec::new();
/// encode_frame(&mut wire, true, OP_TEXT, b"hello", Some([1, 2, 3, 4]));
/// let mut decoder = Decoder::default();
/// assert_eq!(decoder.next(&wire, Role::Server, 1024), (wire.len(), Event::Message(OP_TEXT)));
/// assert_eq!(decoder.take_message(), b"hello");
/// ```
#[derive(Debug, Default)]
pub struct Decoder {
    /// The message being assembled (unmasked payload so far).
    message: Vec<u8>,
    /// Payload bytes of the current data frame still to come.
    remaining: u64,
    /// The current frame's mask, rotated to line up with its next byte.
    mask: [u8; 4],
    /// [`OP_TEXT`] or [`OP_BINARY`] while a message is in progress, else 0.
    message_opcode: u8,
    flags: u8,
    utf8: Utf8Validator,
    /// permessage-deflate was negotiated: RSV1 may mark a message as compressed.
    deflate: bool,
    /// The message in progress (or the last one) came compressed (RSV1 on its first frame).
    compressed: bool,
}

impl Decoder {
    /// Decodes from the start of `data` (everything received after what earlier calls
    /// consumed). Returns how many bytes it consumed and what it found. `max_message` bounds a
    /// whole message (all its fragments); beyond it the event is `Fail(1009)`.
    ///
    /// A data frame's payload is consumed as it arrives; a header or a control frame is consumed
    /// only once complete (`(0, More)` until then). After `Fail` the decoder must not be used.
    ///
    /// ```
    /// use workerman::protocols::websocket::frame::{encode_frame, Decoder, Event, Role, OP_TEXT};
    /// let mut wire = Vec::new();
    /// encode_frame(&mut wire, true, OP_TEXT, b"hello", None);
    /// let mut decoder = Decoder::default();
    /// // Half a header: nothing consumed yet.
    /// assert_eq!(decoder.next(&wire[..1], Role::Client, 1024), (0, Event::More));
    /// // The header and 2 payload bytes: all consumed, the message not whole yet.
    /// assert_eq!(decoder.next(&wire[..4], Role::Client, 1024), (4, Event::More));
    /// assert_eq!(decoder.next(&wire[4..], Role::Client, 1024), (3, Event::Message(OP_TEXT)));
    /// assert_eq!(decoder.take_message(), b"hello");
    /// // Over the size limit: 1009.
    /// assert_eq!(Decoder::default().next(&wire, Role::Client, 4).1, Event::Fail(1009));
    /// ```
    pub fn next(&mut self, data: &[u8], role: Role, max_message: usize) -> (usize, Event) {
        let mut consumed = 0;
        if self.flags & IN_FRAME == 0 {
            let Some(header) = parse_header(data) else {
                return (0, Event::More);
            };
            if let Err(code) = self.check(&header, role) {
                return (0, Event::Fail(code));
            }
            if header.opcode >= OP_CLOSE {
                return self.control(data, &header);
            }
            let length = header.payload_len;
            if (self.message.len() as u64).saturating_add(length) > max_message as u64 {
                return (0, Event::Fail(CLOSE_MESSAGE_TOO_BIG));
            }
            if header.opcode != OP_CONTINUATION {
                self.message_opcode = header.opcode;
                self.utf8 = Utf8Validator::default();
                self.compressed = header.rsv & RSV1 != 0;
            }
            self.remaining = length;
            self.mask = header.mask.unwrap_or_default();
            self.flags = IN_FRAME | if header.fin { FIN } else { 0 };
            consumed = header.header_len;
            // A frame that has fully arrived gets exactly its size (no growth slack).
            let available = (data.len() - consumed) as u64;
            if length <= available {
                self.message.reserve_exact(length as usize);
            }
        }
        let take = self.remaining.min((data.len() - consumed) as u64) as usize;
        let start = self.message.len();
        self.message
            .extend_from_slice(&data[consumed..consumed + take]);
        if self.mask != [0; 4] {
            self.mask = apply_mask(&mut self.message[start..], self.mask);
        }
        consumed += take;
        self.remaining -= take as u64;
        // Compressed text is checked once inflated, by the receiver.
        if self.message_opcode == OP_TEXT
            && !self.compressed
            && !self.utf8.feed(&self.message[start..])
        {
            return (consumed, Event::Fail(CLOSE_INVALID_PAYLOAD));
        }
        if self.remaining > 0 {
            return (consumed, Event::More);
        }
        let fin = self.flags & FIN != 0;
        self.flags = 0;
        if !fin {
            return (consumed, Event::More);
        }
        let opcode = std::mem::take(&mut self.message_opcode);
        if opcode == OP_TEXT && !self.compressed && !self.utf8.is_complete() {
            return (consumed, Event::Fail(CLOSE_INVALID_PAYLOAD));
        }
        (consumed, Event::Message(opcode))
    }

    /// The message the last `Event::Message` reported (its buffer goes with it).
    ///
    /// ```
    /// use workerman::protocols::websocket::frame::{encode_frame, Decoder, Role, OP_BINARY};
    /// let mut wire = Vec::new();
    /// encode_frame(&mut wire, true, OP_BINARY, &[1, 2, 3], None);
    /// let mut decoder = Decoder::default();
    /// decoder.next(&wire, Role::Client, 1024);
    /// assert_eq!(decoder.take_message(), [1, 2, 3]);
    /// assert!(decoder.take_message().is_empty());
    /// ```
    pub fn take_message(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.message)
    }

    /// Allows RSV1 on a message's first frame, marking it compressed (permessage-deflate was
    /// negotiated).
    ///
    /// ```
    /// use workerman::protocols::websocket::frame::{Decoder, Event, Role};
    /// let mut decoder = Decoder::default();
    /// decoder.set_deflate(true);
    /// // "Hello" compressed (RFC 7692 §7.2.3.1), RSV1 set, unmasked: a client receiving.
    /// let frame = [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    /// assert_eq!(decoder.next(&frame, Role::Client, 100), (9, Event::Message(1)));
    /// assert!(decoder.compressed());
    /// ```
    pub fn set_deflate(&mut self, deflate: bool) {
        self.deflate = deflate;
    }

    /// Whether the last message came compressed: its bytes must be inflated (and a text
    /// message's UTF-8 checked) by the receiver.
    ///
    /// ```
    /// use workerman::protocols::websocket::frame::{encode_frame, Decoder, Role, OP_TEXT};
    /// let mut wire = Vec::new();
    /// encode_frame(&mut wire, true, OP_TEXT, b"plain", None);
    /// let mut decoder = Decoder::default();
    /// decoder.set_deflate(true);
    /// decoder.next(&wire, Role::Client, 1024);
    /// assert!(!decoder.compressed()); // no RSV1 on this frame
    /// ```
    pub fn compressed(&self) -> bool {
        self.compressed
    }

    /// Whether a fragmented message has started and not yet ended (or a frame is half read).
    ///
    /// ```
    /// use workerman::protocols::websocket::frame::{
    ///     encode_frame, Decoder, Role, OP_CONTINUATION, OP_TEXT,
    /// };
    /// let (mut first, mut last) = (Vec::new(), Vec::new());
    /// encode_frame(&mut first, false, OP_TEXT, b"hel", None);
    /// encode_frame(&mut last, true, OP_CONTINUATION, b"lo", None);
    /// let mut decoder = Decoder::default();
    /// decoder.next(&first, Role::Client, 1024);
    /// assert!(decoder.in_message());
    /// decoder.next(&last, Role::Client, 1024);
    /// assert!(!decoder.in_message());
    /// ```
    pub fn in_message(&self) -> bool {
        self.message_opcode != 0 || self.flags & IN_FRAME != 0
    }

    /// The header's rules: no extension is negotiated, so RSV bits must be 0; masking by role;
    /// known opcodes; control frames whole and short; continuations only inside a message.
    fn check(&self, header: &Header, role: Role) -> Result<(), u16> {
        let masked_ok = match role {
            Role::Server => header.mask.is_some(),
            Role::Client => header.mask.is_none(),
        };
        // RSV1 marks a compressed message: only with permessage-deflate, on a first data frame.
        let first_data_frame = matches!(header.opcode, OP_TEXT | OP_BINARY);
        let rsv_ok = header.rsv == 0 || (header.rsv == RSV1 && self.deflate && first_data_frame);
        if !rsv_ok || !masked_ok || header.payload_len >> 63 != 0 {
            return Err(CLOSE_PROTOCOL_ERROR);
        }
        let in_progress = self.message_opcode != 0;
        let valid = match header.opcode {
            OP_CONTINUATION => in_progress,
            OP_TEXT | OP_BINARY => !in_progress,
            OP_CLOSE | OP_PING | OP_PONG => {
                header.fin && header.payload_len <= MAX_CONTROL_PAYLOAD as u64
            }
            _ => false,
        };
        if valid {
            Ok(())
        } else {
            Err(CLOSE_PROTOCOL_ERROR)
        }
    }

    /// A control frame, once all of it has arrived.
    fn control(&mut self, data: &[u8], header: &Header) -> (usize, Event) {
        let total = header.header_len + header.payload_len as usize;
        let Some(payload) = data.get(header.header_len..total) else {
            return (0, Event::More);
        };
        let mut control = Control::new(payload);
        if let Some(mask) = header.mask {
            let length = usize::from(control.length);
            apply_mask(&mut control.payload[..length], mask);
        }
        let event = match header.opcode {
            OP_PING => Event::Ping(control),
            OP_PONG => Event::Pong(control),
            _ => match check_close(control.payload()) {
                Ok(()) => Event::Close(control),
                Err(code) => Event::Fail(code),
            },
        };
        (total, event)
    }
}

/// A close payload is empty, or a valid code optionally followed by a UTF-8 reason.
fn check_close(payload: &[u8]) -> Result<(), u16> {
    match payload {
        [] => Ok(()),
        [_] => Err(CLOSE_PROTOCOL_ERROR),
        [high, low, reason @ ..] => {
            if !valid_close_code(u16::from_be_bytes([*high, *low])) {
                Err(CLOSE_PROTOCOL_ERROR)
            } else if std::str::from_utf8(reason).is_err() {
                Err(CLOSE_INVALID_PAYLOAD)
            } else {
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(&mut out, fin, opcode, payload, Some(MASK));
        out
    }

    /// Decodes a whole stream, one event at a time.
    fn decode_all(wire: &[u8], max: usize) -> Vec<(Event, Vec<u8>)> {
        let mut decoder = Decoder::default();
        let mut position = 0;
        let mut events = Vec::new();
        loop {
            let (consumed, event) = decoder.next(&wire[position..], Role::Server, max);
            position += consumed;
            match event {
                Event::More if consumed == 0 || position == wire.len() => return events,
                Event::More => {}
                Event::Message(_) => events.push((event, decoder.take_message())),
                Event::Fail(_) => {
                    events.push((event, Vec::new()));
                    return events;
                }
                other => events.push((other, Vec::new())),
            }
        }
    }

    #[test]
    fn rfc_6455_examples() {
        // §5.7: a single-frame masked text message "Hello".
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(
            decode_all(&wire, 100),
            [(Event::Message(OP_TEXT), b"Hello".to_vec())]
        );
        assert_eq!(frame(true, OP_TEXT, b"Hello"), wire);
        // A fragmented unmasked text message, as a client decodes it.
        let mut decoder = Decoder::default();
        let first = [0x01, 0x03, 0x48, 0x65, 0x6c];
        let second = [0x80, 0x02, 0x6c, 0x6f];
        assert_eq!(decoder.next(&first, Role::Client, 100), (5, Event::More));
        assert_eq!(
            decoder.next(&second, Role::Client, 100),
            (4, Event::Message(OP_TEXT))
        );
        assert_eq!(decoder.take_message(), b"Hello");
        // Lengths: 256 bytes (16-bit) and 65536 bytes (64-bit).
        let mut out = Vec::new();
        encode_frame(&mut out, true, OP_BINARY, &[0; 256], None);
        assert_eq!(out[..4], [0x82, 0x7E, 0x01, 0x00]);
        out.clear();
        encode_frame(&mut out, true, OP_BINARY, &vec![0; 65536], None);
        assert_eq!(out[..10], [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let mut wire = frame(false, OP_TEXT, "héllo ".as_bytes());
        wire.extend(frame(true, OP_PING, b"ping"));
        wire.extend(frame(true, OP_CONTINUATION, "wörld".as_bytes()));
        wire.extend(frame(true, OP_BINARY, &[7; 300]));
        wire.extend(frame(true, OP_CLOSE, &[0x03, 0xe8, b'o', b'k']));
        let whole = decode_all(&wire, 1000);
        assert_eq!(whole.len(), 4);
        assert_eq!(whole[1], (Event::Message(OP_TEXT), "héllo wörld".into()));
        for split in 0..=wire.len() {
            // Feed the first part, keep the unconsumed remainder, then feed the rest after it.
            let mut decoder = Decoder::default();
            let mut events = Vec::new();
            let mut buffer = wire[..split].to_vec();
            let mut fed = split;
            loop {
                let (consumed, event) = decoder.next(&buffer, Role::Server, 1000);
                buffer.drain(..consumed);
                match event {
                    Event::More if consumed == 0 || buffer.is_empty() => {
                        if fed == wire.len() {
                            break;
                        }
                        buffer.extend_from_slice(&wire[fed..]);
                        fed = wire.len();
                    }
                    Event::More => {}
                    Event::Message(_) => events.push((event, decoder.take_message())),
                    other => events.push((other, Vec::new())),
                }
            }
            assert_eq!(events, whole, "split at {split}");
        }
    }

    #[test]
    fn protocol_violations_fail_with_1002() {
        let fails = |wire: &[u8]| decode_all(wire, 1000).last().map(|(event, _)| *event);
        let mut unmasked = Vec::new();
        encode_frame(&mut unmasked, true, OP_TEXT, b"x", None);
        assert_eq!(fails(&unmasked), Some(Event::Fail(1002)), "unmasked");
        let mut rsv = frame(true, OP_TEXT, b"x");
        rsv[0] |= 0x40;
        assert_eq!(fails(&rsv), Some(Event::Fail(1002)), "RSV1");
        for opcode in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(fails(&frame(true, opcode, b"")), Some(Event::Fail(1002)));
        }
        assert_eq!(fails(&frame(false, OP_PING, b"")), Some(Event::Fail(1002)));
        assert_eq!(
            fails(&frame(true, OP_PING, &[0; 126])),
            Some(Event::Fail(1002))
        );
        assert_eq!(
            fails(&frame(true, OP_CONTINUATION, b"x")),
            Some(Event::Fail(1002))
        );
        let mut twice = frame(false, OP_TEXT, b"a");
        twice.extend(frame(true, OP_TEXT, b"b"));
        assert_eq!(fails(&twice), Some(Event::Fail(1002)));
        assert_eq!(fails(&frame(true, OP_CLOSE, &[3])), Some(Event::Fail(1002)));
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            let close = frame(true, OP_CLOSE, &code.to_be_bytes());
            assert_eq!(fails(&close), Some(Event::Fail(1002)), "code {code}");
        }
        // A 64-bit length with its top bit set.
        let huge = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        assert_eq!(fails(&huge), Some(Event::Fail(1002)));
    }

    #[test]
    fn invalid_utf8_fails_with_1007_as_soon_as_it_arrives() {
        let fails = |wire: &[u8]| decode_all(wire, 1000).last().map(|(event, _)| *event);
        assert_eq!(
            fails(&frame(true, OP_TEXT, &[0xce, 0xba, 0xc0])),
            Some(Event::Fail(1007))
        );
        // Across fragments, and cut off at the end of the message.
        let mut split = frame(false, OP_TEXT, &[0xce]);
        split.extend(frame(true, OP_CONTINUATION, &[0xba]));
        assert_eq!(decode_all(&split, 1000)[0].1, "κ".as_bytes());
        let mut cut = frame(false, OP_TEXT, b"ok");
        cut.extend(frame(true, OP_CONTINUATION, &[0xce]));
        assert_eq!(fails(&cut), Some(Event::Fail(1007)));
        // Fail fast: the first bad byte of a frame whose end has not arrived.
        let wire = frame(true, OP_TEXT, &[b'a', 0xff, b'b', b'c', b'd']);
        let mut decoder = Decoder::default();
        let (_, event) = decoder.next(&wire[..wire.len() - 3], Role::Server, 1000);
        assert_eq!(event, Event::Fail(1007));
        // A close reason.
        assert_eq!(
            fails(&frame(true, OP_CLOSE, &[0x03, 0xe8, 0xff])),
            Some(Event::Fail(1007))
        );
        // Binary messages are not checked.
        assert_eq!(
            fails(&frame(true, OP_BINARY, &[0xff])),
            Some(Event::Message(OP_BINARY))
        );
    }

    #[test]
    fn utf8_validator_agrees_with_std_on_every_split() {
        let samples: [&[u8]; 8] = [
            "κόσμε".as_bytes(),
            &[0xed, 0xa0, 0x80],             // a surrogate
            &[0xf4, 0x90, 0x80, 0x80],       // above U+10FFFF
            &[0xe0, 0x80, 0xaf],             // overlong
            &[0xf0, 0x9f, 0x98, 0x80, b'x'], // an emoji
            &[0xef, 0xbf, 0xbf],             // U+FFFF
            &[0xc2],                         // cut off
            &[0x80, 0x80],                   // lone continuations
        ];
        for sample in samples {
            let valid = std::str::from_utf8(sample).is_ok();
            for split in 0..=sample.len() {
                let mut utf8 = Utf8Validator::default();
                let ok = utf8.feed(&sample[..split]) && utf8.feed(&sample[split..]);
                assert_eq!(
                    ok && utf8.is_complete(),
                    valid,
                    "{sample:x?} split at {split}"
                );
            }
            // Byte by byte, every prefix of a valid sample stays acceptable.
            let mut utf8 = Utf8Validator::default();
            let all = sample.iter().all(|byte| utf8.feed(&[*byte]));
            assert_eq!(all && utf8.is_complete(), valid, "{sample:x?} byte by byte");
        }
    }

    #[test]
    fn message_size_is_limited_across_fragments() {
        let mut wire = frame(false, OP_BINARY, &[1; 60]);
        wire.extend(frame(true, OP_CONTINUATION, &[2; 41]));
        let events = decode_all(&wire, 100);
        assert_eq!(
            events.last().map(|(event, _)| *event),
            Some(Event::Fail(1009))
        );
        let events = decode_all(&wire, 101);
        assert_eq!(events[0].1.len(), 101);
        // Decided from the header: no byte of the payload needs to arrive.
        let mut decoder = Decoder::default();
        let header = [0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4];
        assert_eq!(
            decoder.next(&header, Role::Server, 1 << 20),
            (0, Event::Fail(1009))
        );
    }

    #[test]
    fn control_frames_wait_until_whole_and_interleave() {
        let ping = frame(true, OP_PING, b"are you there");
        let mut decoder = Decoder::default();
        assert_eq!(
            decoder.next(&ping[..ping.len() - 1], Role::Server, 100),
            (0, Event::More)
        );
        let (consumed, event) = decoder.next(&ping, Role::Server, 100);
        assert_eq!(consumed, ping.len());
        let Event::Ping(payload) = event else {
            panic!("{event:?}")
        };
        assert_eq!(payload.payload(), b"are you there");
        let close = frame(true, OP_CLOSE, &[0x0f, 0xa0, b'h', b'i']);
        let (_, event) = decoder.next(&close, Role::Server, 100);
        let Event::Close(payload) = event else {
            panic!("{event:?}")
        };
        assert_eq!(
            (payload.close_code(), payload.close_reason()),
            (Some(4000), "hi")
        );
    }

    #[test]
    fn masking_is_its_own_inverse_at_any_offset() {
        let original: Vec<u8> = (0..=255).collect();
        for split in [0, 1, 3, 7, 8, 9, 100] {
            let mut data = original.clone();
            let next = apply_mask(&mut data[..split], MASK);
            apply_mask(&mut data[split..], next);
            let mut whole = original.clone();
            apply_mask(&mut whole, MASK);
            assert_eq!(data, whole, "split {split}");
            apply_mask(&mut data, MASK);
            assert_eq!(data, original);
        }
    }

    #[test]
    fn decoder_state_is_small() {
        assert!(std::mem::size_of::<Decoder>() <= 48);
    }
}
