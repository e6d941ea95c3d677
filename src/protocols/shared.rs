//! [`SharedMessage`]: a message encoded once for a protocol and sent to many connections, whose
//! bytes every connection shares (a broadcast to thousands costs one copy, even while their
//! sockets are full).

use std::rc::Rc;

use super::http::{Chunk, ServerSentEvents};
use super::websocket::{self, frame};

/// A message encoded once and shared, not copied, by every connection it is sent to: a
/// Server-Sent Event for `http://` event streams, a chunk for chunked responses, a WebSocket
/// frame for `websocket://` connections, or raw bytes for any connection (Workerman's
/// `send($data, true)` to many). Cloning it is a reference count.
///
/// When a connection's socket is full, its send queue keeps a reference to these bytes, not a
/// copy: 2,000 stuck subscribers holding the same 3,000 events hold them once.
///
/// `send` refuses (`SendResult::Refused`) a message made for another protocol, or an event on a
/// stream that is not `text/event-stream`. A client connection (`ws://`, whose frames must be
/// masked) gets its own masked copy.
///
/// ```no_run
/// use workerman::protocols::SharedMessage;
/// use workerman::protocols::http::ServerSentEvents;
/// # fn f(subscribers: &[workerman::TcpConnection]) {
/// let event = SharedMessage::event(&ServerSentEvents::new().event("price").data("42"));
/// for subscriber in subscribers {
///     subscriber.send(&event);
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct SharedMessage {
    pub(crate) bytes: Rc<[u8]>,
    pub(crate) kind: SharedKind,
}

/// What a [`SharedMessage`] was encoded for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SharedKind {
    /// Bytes written as they are, on any connection.
    Raw,
    /// A Server-Sent Event (unframed, for `text/event-stream` streams).
    Event,
    /// One chunk (never the last one) of a chunked response.
    Chunk,
    /// An unmasked WebSocket frame; the payload starts `payload_start` bytes in.
    WebSocket { opcode: u8, payload_start: u8 },
}

impl SharedMessage {
    /// Bytes sent as they are, with no encoding, on any connection.
    ///
    /// ```
    /// use workerman::protocols::SharedMessage;
    /// assert_eq!(SharedMessage::raw("ping\n").as_bytes(), b"ping\n");
    /// ```
    pub fn raw(bytes: impl AsRef<[u8]>) -> SharedMessage {
        SharedMessage {
            bytes: Rc::from(bytes.as_ref()),
            kind: SharedKind::Raw,
        }
    }

    /// A Server-Sent Event, for `http://` connections streaming `text/event-stream`.
    ///
    /// ```
    /// use workerman::protocols::SharedMessage;
    /// use workerman::protocols::http::ServerSentEvents;
    /// let shared = SharedMessage::event(&ServerSentEvents::new().data("hello"));
    /// assert_eq!(shared.as_bytes(), b"data: hello\n\n");
    /// ```
    pub fn event(event: &ServerSentEvents) -> SharedMessage {
        SharedMessage {
            bytes: Rc::from(event.to_bytes()),
            kind: SharedKind::Event,
        }
    }

    /// A chunk of a `Transfer-Encoding: chunked` response. The last (empty) chunk ends a
    /// response, so it is not shared: send [`Chunk::last`] itself.
    ///
    /// # Panics
    /// If `chunk` is the empty last chunk.
    ///
    /// ```
    /// use workerman::protocols::SharedMessage;
    /// use workerman::protocols::http::Chunk;
    /// assert_eq!(SharedMessage::chunk(&Chunk::new("hi")).as_bytes(), b"2\r\nhi\r\n");
    /// ```
    pub fn chunk(chunk: &Chunk) -> SharedMessage {
        assert!(
            !chunk.is_last(),
            "the last chunk ends a response: send Chunk::last()"
        );
        SharedMessage {
            bytes: Rc::from(chunk.to_bytes()),
            kind: SharedKind::Chunk,
        }
    }

    /// A WebSocket message as one unmasked frame, for `websocket://` connections.
    ///
    /// ```
    /// use workerman::protocols::SharedMessage;
    /// use workerman::protocols::websocket::Message;
    /// let shared = SharedMessage::websocket(&Message::Text("hi".into()));
    /// assert_eq!(shared.as_bytes(), [0x81, 2, b'h', b'i']);
    /// ```
    pub fn websocket(message: &websocket::Message) -> SharedMessage {
        let (opcode, payload) = match message {
            websocket::Message::Text(text) => (frame::OP_TEXT, text.as_bytes()),
            websocket::Message::Binary(bytes) => (frame::OP_BINARY, bytes.as_slice()),
        };
        let mut wire = Vec::with_capacity(payload.len() + 10);
        frame::encode_frame(&mut wire, true, opcode, payload, None);
        let payload_start = (wire.len() - payload.len()) as u8;
        SharedMessage {
            bytes: Rc::from(wire),
            kind: SharedKind::WebSocket {
                opcode,
                payload_start,
            },
        }
    }

    /// The encoded bytes every connection is sent.
    ///
    /// ```
    /// use workerman::protocols::SharedMessage;
    /// assert_eq!(SharedMessage::raw([1u8, 2]).as_bytes(), [1, 2]);
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// How many connections hold this message now (queued on full sockets, or held by you),
    /// counting this one.
    ///
    /// ```
    /// use workerman::protocols::SharedMessage;
    /// let shared = SharedMessage::raw("x");
    /// let copy = shared.clone();
    /// assert_eq!(copy.holders(), 2);
    /// ```
    pub fn holders(&self) -> usize {
        Rc::strong_count(&self.bytes)
    }

    /// A WebSocket message's payload (for a client's masked copy, or a queue before the
    /// handshake).
    pub(crate) fn websocket_payload(&self) -> Option<(u8, &[u8])> {
        match self.kind {
            SharedKind::WebSocket {
                opcode,
                payload_start,
            } => Some((opcode, &self.bytes[payload_start as usize..])),
            _ => None,
        }
    }
}

impl std::fmt::Debug for SharedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMessage")
            .field("kind", &self.kind)
            .field("len", &self.bytes.len())
            .finish()
    }
}
