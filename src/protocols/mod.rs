//! Protocols: how bytes on a connection become messages and messages become bytes.
//!
//! Workerman's contract, kept as is: [`Protocol::input`] says how long the next package is (or that
//! more bytes are needed, or that the stream is invalid), [`Protocol::decode`] turns one whole package
//! into the value `on_message` receives, and [`Protocol::encode`] turns what `send` was given into bytes.
//!
//! Built in, chosen by the listen address's scheme:
//!
//! | scheme | `on_message` receives | framing |
//! | --- | --- | --- |
//! | `tcp://` | `Vec<u8>` | none: each read is one message |
//! | `text://` | `String` (or `Vec<u8>`) | a line ending in `\n` |
//! | `frame://` | `Vec<u8>` | a 4-byte big-endian length that includes itself |
//! | `http://` | [`http::Request`] | HTTP/1.1 |
//! | `websocket://` | `String`, `Vec<u8>` or [`websocket::Message`] | RFC 6455 ([`websocket`]) |
//! | `unix://` | `Vec<u8>` | none, as `tcp://`, over a Unix socket |
//! | `udp://` | `Vec<u8>` | one datagram is one message |
//!
//! `Worker::set_transport("unix")` puts any of these protocols on a Unix socket path, and
//! `set_transport("udp")` puts `text`, `frame` or a custom protocol on datagrams (each datagram
//! holds whole packages).
//!
//! The scheme picks the protocol; here `frame://`, whose `on_message` gets each payload without
//! its length prefix and whose `send` adds it back:
//!
//! ```
//! use std::io::{Read, Write};
//! use workerman::{TcpConnection, Worker};
//!
//! let server = Worker::spawn(|| {
//!     let mut worker = Worker::new("frame://127.0.0.1:0");
//!     worker.on_message(|connection: &TcpConnection, payload: Vec<u8>| {
//!         connection.send(payload.len().to_string());
//!     });
//!     worker
//! })?;
//! let mut client = std::net::TcpStream::connect(server.local_address())?;
//! client.write_all(b"\x00\x00\x00\x09hello")?; // 4 + 5 bytes
//! let mut reply = [0; 5];
//! client.read_exact(&mut reply)?;
//! assert_eq!(&reply, b"\x00\x00\x00\x05\x35"); // length 4 + 1, then "5"
//! server.stop();
//! # Ok::<(), std::io::Error>(())
//! ```

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::rc::Rc;

use crate::connection::TcpConnection;

pub mod frame;
pub mod http;
pub(crate) mod shared;
pub mod text;
pub mod websocket;

pub use frame::Frame;
pub use shared::SharedMessage;
pub use text::Text;

/// What [`Protocol::input`] found at the start of the receive buffer.
///
/// ```
/// use workerman::protocols::Input;
/// assert_eq!(Input::Package(5), Input::Package(5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// No whole package yet: wait for more bytes (Workerman's `0`).
    NeedMore,
    /// The next package is this many bytes long (it may not have fully arrived yet). `0` means
    /// the same as [`NeedMore`](Self::NeedMore), as Workerman's `0`; a length over
    /// `max_package_size` closes the connection, logging `Error package. package_length=..`.
    /// While the length is not known, at most `max_package_size` bytes are buffered.
    Package(usize),
    /// The stream is not this protocol: the connection is closed (Workerman's `-1`).
    Invalid,
}

/// A custom protocol, as a Workerman protocol class: `input`, `decode`, `encode`.
///
/// Use it with [`Worker::with_protocol`](crate::Worker::with_protocol); `on_message` then receives
/// `Self::Message`.
///
/// ```
/// use workerman::protocols::{Input, Protocol};
/// use workerman::TcpConnection;
///
/// /// Packages end in a NUL byte.
/// struct NulTerminated;
///
/// impl Protocol for NulTerminated {
///     type Message = Vec<u8>;
///     fn input(&self, buffer: &[u8], _connection: &TcpConnection) -> Input {
///         match buffer.iter().position(|&b| b == 0) {
///             Some(end) => Input::Package(end + 1),
///             None if buffer.len() > 4096 => Input::Invalid,
///             None => Input::NeedMore,
///         }
///     }
///     fn decode(&self, package: &[u8], _connection: &TcpConnection) -> Vec<u8> {
///         package[..package.len() - 1].to_vec()
///     }
///     fn encode(&self, data: &[u8], _connection: &TcpConnection, out: &mut Vec<u8>) {
///         out.extend_from_slice(data);
///         out.push(0);
///     }
/// }
/// ```
pub trait Protocol: 'static {
    /// What `on_message` receives.
    type Message: 'static;
    /// How many bytes the package at the start of `buffer` takes; see [`Input`].
    ///
    /// ```
    /// use std::io::Read;
    /// use workerman::protocols::{Input, Protocol, Text};
    /// use workerman::{TcpConnection, Worker};
    ///
    /// let server = Worker::spawn(|| {
    ///     let mut worker = Worker::new("tcp://127.0.0.1:0");
    ///     worker.on_connect(|connection: &TcpConnection| {
    ///         // A text:// package is one line: 3 bytes here; "rest" waits for its line end.
    ///         assert_eq!(Text.input(b"hi\nrest", connection), Input::Package(3));
    ///         assert_eq!(Text.input(b"rest", connection), Input::NeedMore);
    ///         connection.close_with("checked"); // not reached if an assertion panics
    ///     });
    ///     worker
    /// })
    /// .unwrap();
    /// let mut client = std::net::TcpStream::connect(server.local_address()).unwrap();
    /// let mut answer = String::new();
    /// client.read_to_string(&mut answer).unwrap();
    /// assert_eq!(answer, "checked");
    /// server.stop();
    /// ```
    fn input(&self, buffer: &[u8], connection: &TcpConnection) -> Input;
    /// Turns one whole package (exactly the length `input` reported) into a message.
    ///
    /// ```
    /// use std::io::Read;
    /// use workerman::protocols::{Protocol, Text};
    /// use workerman::{TcpConnection, Worker};
    ///
    /// let server = Worker::spawn(|| {
    ///     let mut worker = Worker::new("tcp://127.0.0.1:0");
    ///     worker.on_connect(|connection: &TcpConnection| {
    ///         // text:// strips the line end.
    ///         assert_eq!(Text.decode(b"hi\r\n", connection), "hi");
    ///         connection.close_with("checked"); // not reached if an assertion panics
    ///     });
    ///     worker
    /// })
    /// .unwrap();
    /// let mut client = std::net::TcpStream::connect(server.local_address()).unwrap();
    /// let mut answer = String::new();
    /// client.read_to_string(&mut answer).unwrap();
    /// assert_eq!(answer, "checked");
    /// server.stop();
    /// ```
    fn decode(&self, package: &[u8], connection: &TcpConnection) -> Self::Message;
    /// Appends the wire form of `data` to `out`.
    ///
    /// ```
    /// use std::io::Read;
    /// use workerman::protocols::{Protocol, Text};
    /// use workerman::{TcpConnection, Worker};
    ///
    /// let server = Worker::spawn(|| {
    ///     let mut worker = Worker::new("tcp://127.0.0.1:0");
    ///     worker.on_connect(|connection: &TcpConnection| {
    ///         // text:// adds the line end.
    ///         let mut out = Vec::new();
    ///         Text.encode(b"hi", connection, &mut out);
    ///         assert_eq!(out, b"hi\n");
    ///         connection.close_with("checked"); // not reached if an assertion panics
    ///     });
    ///     worker
    /// })
    /// .unwrap();
    /// let mut client = std::net::TcpStream::connect(server.local_address()).unwrap();
    /// let mut answer = String::new();
    /// client.read_to_string(&mut answer).unwrap();
    /// assert_eq!(answer, "checked");
    /// server.stop();
    /// ```
    fn encode(&self, data: &[u8], connection: &TcpConnection, out: &mut Vec<u8>);
    /// The protocol's typed sends, if it has them: return `Some(self)` from a protocol that
    /// implements [`Encode`], and [`TcpConnection::send_message`] encodes its
    /// [`Outgoing`](Encode::Outgoing) values (Workerman's `send(array(..))` through a JSON
    /// protocol). `None` (the default): only bytes and text are sent.
    ///
    /// ```
    /// use workerman::protocols::{Encode, EncodeOutgoing, Input, Protocol};
    /// use workerman::TcpConnection;
    ///
    /// /// Numbers, one per line.
    /// struct Numbers;
    ///
    /// impl Protocol for Numbers {
    ///     type Message = String;
    ///     fn input(&self, buffer: &[u8], _connection: &TcpConnection) -> Input {
    ///         match buffer.iter().position(|&byte| byte == b'\n') {
    ///             Some(end) => Input::Package(end + 1),
    ///             None => Input::NeedMore,
    ///         }
    ///     }
    ///     fn decode(&self, package: &[u8], _connection: &TcpConnection) -> String {
    ///         String::from_utf8_lossy(package).trim_end().to_owned()
    ///     }
    ///     fn encode(&self, data: &[u8], _connection: &TcpConnection, out: &mut Vec<u8>) {
    ///         out.extend_from_slice(data);
    ///         out.push(b'\n');
    ///     }
    ///     fn outgoing(&self) -> Option<&dyn EncodeOutgoing> {
    ///         Some(self) // connection.send_message(42u64) works
    ///     }
    /// }
    ///
    /// impl Encode for Numbers {
    ///     type Outgoing = u64;
    ///     fn encode_message(&self, number: u64, connection: &TcpConnection, out: &mut Vec<u8>) {
    ///         self.encode(number.to_string().as_bytes(), connection, out);
    ///     }
    /// }
    ///
    /// assert!(Numbers.outgoing().is_some());
    /// ```
    fn outgoing(&self) -> Option<&dyn EncodeOutgoing> {
        None
    }
}

/// A [`Protocol`] whose sends are typed: `connection.send_message(value)` hands `encode_message`
/// a `Self::Outgoing` (a JSON value, a struct...), as Workerman's `encode($data)` gets whatever
/// `send` was given. Also return `Some(self)` from [`Protocol::outgoing`].
///
/// ```
/// use workerman::protocols::{Encode, EncodeOutgoing, Input, Protocol};
/// use workerman::TcpConnection;
///
/// /// Workerman's manual's JsonInt: a 4-byte big-endian total length, then JSON.
/// struct JsonInt;
///
/// impl Protocol for JsonInt {
///     type Message = serde_json::Value;
///     fn input(&self, buffer: &[u8], _connection: &TcpConnection) -> Input {
///         match buffer.get(..4) {
///             None => Input::NeedMore,
///             Some(head) => Input::Package(u32::from_be_bytes(head.try_into().unwrap()) as usize),
///         }
///     }
///     fn decode(&self, package: &[u8], _connection: &TcpConnection) -> serde_json::Value {
///         serde_json::from_slice(&package[4..]).unwrap_or_default()
///     }
///     fn encode(&self, data: &[u8], _connection: &TcpConnection, out: &mut Vec<u8>) {
///         out.extend_from_slice(&(4 + data.len() as u32).to_be_bytes());
///         out.extend_from_slice(data);
///     }
///     fn outgoing(&self) -> Option<&dyn EncodeOutgoing> {
///         Some(self)
///     }
/// }
///
/// impl Encode for JsonInt {
///     type Outgoing = serde_json::Value;
///     fn encode_message(&self, message: serde_json::Value, connection: &TcpConnection, out: &mut Vec<u8>) {
///         self.encode(message.to_string().as_bytes(), connection, out);
///     }
/// }
/// ```
pub trait Encode: Protocol {
    /// What `send_message` takes.
    type Outgoing: 'static;
    /// Appends the wire form of `message` to `out`.
    ///
    /// ```no_run
    /// # use workerman::protocols::{Encode, EncodeOutgoing, Input, Protocol};
    /// # use workerman::TcpConnection;
    /// #
    /// # /// Numbers, one per line.
    /// # struct Numbers;
    /// #
    /// # impl Protocol for Numbers {
    /// #     type Message = String;
    /// #     fn input(&self, buffer: &[u8], _connection: &TcpConnection) -> Input {
    /// #         match buffer.iter().position(|&byte| byte == b'\n') {
    /// #             Some(end) => Input::Package(end + 1),
    /// #             None => Input::NeedMore,
    /// #         }
    /// #     }
    /// #     fn decode(&self, package: &[u8], _connection: &TcpConnection) -> String {
    /// #         String::from_utf8_lossy(package).trim_end().to_owned()
    /// #     }
    /// #     fn encode(&self, data: &[u8], _connection: &TcpConnection, out: &mut Vec<u8>) {
    /// #         out.extend_from_slice(data);
    /// #         out.push(b'\n');
    /// #     }
    /// #     fn outgoing(&self) -> Option<&dyn EncodeOutgoing> {
    /// #         Some(self) // connection.send_message(42u64) works
    /// #     }
    /// # }
    /// #
    /// # impl Encode for Numbers {
    /// #     type Outgoing = u64;
    /// #     fn encode_message(&self, number: u64, connection: &TcpConnection, out: &mut Vec<u8>) {
    /// #         self.encode(number.to_string().as_bytes(), connection, out);
    /// #     }
    /// # }
    /// #
    /// # fn f(connection: &TcpConnection) {
    /// // Numbers::encode_message writes "42\n".
    /// connection.send_message(42u64);
    /// # }
    /// ```
    fn encode_message(
        &self,
        message: Self::Outgoing,
        connection: &TcpConnection,
        out: &mut Vec<u8>,
    );
}

/// [`Encode`] with its message type erased (what [`Protocol::outgoing`] returns); implemented
/// for every `Encode` protocol.
///
/// ```
/// # use workerman::protocols::{Encode, EncodeOutgoing, Input, Protocol};
/// # use workerman::TcpConnection;
/// #
/// # /// Numbers, one per line.
/// # struct Numbers;
/// #
/// # impl Protocol for Numbers {
/// #     type Message = String;
/// #     fn input(&self, buffer: &[u8], _connection: &TcpConnection) -> Input {
/// #         match buffer.iter().position(|&byte| byte == b'\n') {
/// #             Some(end) => Input::Package(end + 1),
/// #             None => Input::NeedMore,
/// #         }
/// #     }
/// #     fn decode(&self, package: &[u8], _connection: &TcpConnection) -> String {
/// #         String::from_utf8_lossy(package).trim_end().to_owned()
/// #     }
/// #     fn encode(&self, data: &[u8], _connection: &TcpConnection, out: &mut Vec<u8>) {
/// #         out.extend_from_slice(data);
/// #         out.push(b'\n');
/// #     }
/// #     fn outgoing(&self) -> Option<&dyn EncodeOutgoing> {
/// #         Some(self) // connection.send_message(42u64) works
/// #     }
/// # }
/// #
/// # impl Encode for Numbers {
/// #     type Outgoing = u64;
/// #     fn encode_message(&self, number: u64, connection: &TcpConnection, out: &mut Vec<u8>) {
/// #         self.encode(number.to_string().as_bytes(), connection, out);
/// #     }
/// # }
/// #
/// let typed: Option<&dyn EncodeOutgoing> = Numbers.outgoing();
/// assert!(typed.is_some());
/// ```
pub trait EncodeOutgoing {
    /// Encodes `message` if it is this protocol's `Outgoing` type, else gives it back.
    #[doc(hidden)]
    fn encode_any(
        &self,
        message: Box<dyn Any>,
        connection: &TcpConnection,
        out: &mut Vec<u8>,
    ) -> Result<(), Box<dyn Any>>;
    /// The `Outgoing` type's name, for the log line of a refused send.
    #[doc(hidden)]
    fn outgoing_type(&self) -> &'static str;
}

impl<P: Encode> EncodeOutgoing for P {
    fn encode_any(
        &self,
        message: Box<dyn Any>,
        connection: &TcpConnection,
        out: &mut Vec<u8>,
    ) -> Result<(), Box<dyn Any>> {
        let message = message.downcast::<P::Outgoing>()?;
        self.encode_message(*message, connection, out);
        Ok(())
    }
    fn outgoing_type(&self) -> &'static str {
        std::any::type_name::<P::Outgoing>()
    }
}

/// A [`Protocol`] with its message type erased, so a worker can hold any of them.
pub(crate) trait ErasedProtocol {
    fn input(&self, buffer: &[u8], connection: &TcpConnection) -> Input;
    fn decode(&self, package: &[u8], connection: &TcpConnection) -> Box<dyn Any>;
    fn encode(&self, data: &[u8], connection: &TcpConnection, out: &mut Vec<u8>);
    fn message_type(&self) -> (TypeId, &'static str);
    fn outgoing(&self) -> Option<&dyn EncodeOutgoing>;
}

impl<P: Protocol> ErasedProtocol for P {
    fn input(&self, buffer: &[u8], connection: &TcpConnection) -> Input {
        Protocol::input(self, buffer, connection)
    }
    fn decode(&self, package: &[u8], connection: &TcpConnection) -> Box<dyn Any> {
        Box::new(Protocol::decode(self, package, connection))
    }
    fn encode(&self, data: &[u8], connection: &TcpConnection, out: &mut Vec<u8>) {
        Protocol::encode(self, data, connection, out)
    }
    fn message_type(&self) -> (TypeId, &'static str) {
        (
            TypeId::of::<P::Message>(),
            std::any::type_name::<P::Message>(),
        )
    }
    fn outgoing(&self) -> Option<&dyn EncodeOutgoing> {
        Protocol::outgoing(self)
    }
}

/// The protocol a worker speaks: the built-in ones are matched directly on the hot path.
#[derive(Clone)]
pub(crate) enum ProtocolKind {
    Raw,
    Text,
    Frame,
    Http,
    WebSocket,
    Custom(Rc<dyn ErasedProtocol>),
}

impl ProtocolKind {
    /// The protocol a listen scheme names, or `None` for an unknown scheme.
    pub(crate) fn from_scheme(scheme: &str) -> Option<ProtocolKind> {
        match scheme.to_ascii_lowercase().as_str() {
            "tcp" => Some(ProtocolKind::Raw),
            "text" => Some(ProtocolKind::Text),
            "frame" => Some(ProtocolKind::Frame),
            "http" => Some(ProtocolKind::Http),
            "websocket" => Some(ProtocolKind::WebSocket),
            _ => None,
        }
    }

    /// Whether an `on_message` closure taking `M` can receive this protocol's messages.
    pub(crate) fn accepts<M: 'static>(&self) -> Result<(), String> {
        let wanted = TypeId::of::<M>();
        let (ok, expected) = match self {
            ProtocolKind::Raw | ProtocolKind::Frame => {
                (wanted == TypeId::of::<Vec<u8>>(), "Vec<u8>")
            }
            ProtocolKind::Text => (
                wanted == TypeId::of::<String>() || wanted == TypeId::of::<Vec<u8>>(),
                "String (or Vec<u8>)",
            ),
            ProtocolKind::Http => (
                wanted == TypeId::of::<http::Request>(),
                "workerman::protocols::http::Request",
            ),
            ProtocolKind::WebSocket => (
                wanted == TypeId::of::<String>()
                    || wanted == TypeId::of::<Vec<u8>>()
                    || wanted == TypeId::of::<websocket::Message>(),
                "String, Vec<u8> or workerman::protocols::websocket::Message",
            ),
            ProtocolKind::Custom(protocol) => {
                let (type_id, name) = protocol.message_type();
                (wanted == type_id, name)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "on_message takes {expected} on this worker, not {}",
                std::any::type_name::<M>()
            ))
        }
    }
}

/// A decoded package on its way to `on_message`.
pub(crate) enum Message {
    Bytes(Vec<u8>),
    Text(String),
    Request(http::Request),
    WebSocket(websocket::Message),
    Custom(Box<dyn Any>),
}

impl Message {
    /// The message's bytes, for a pipe (`None` for a custom protocol's message).
    pub(crate) fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            Message::Bytes(bytes) => Some(bytes),
            Message::Text(text) => Some(text.into_bytes()),
            Message::Request(request) => Some(request.into_raw()),
            Message::WebSocket(message) => Some(message.into_bytes()),
            Message::Custom(_) => None,
        }
    }

    /// The message as the type the user's closure takes (checked when the closure was set).
    #[inline]
    pub(crate) fn into_typed<M: 'static>(self) -> Option<M> {
        match self {
            Message::Bytes(bytes) => cast(bytes),
            Message::Text(text) => {
                if TypeId::of::<M>() == TypeId::of::<Vec<u8>>() {
                    cast(text.into_bytes())
                } else {
                    cast(text)
                }
            }
            Message::Request(request) => cast(request),
            Message::WebSocket(message) => {
                if TypeId::of::<M>() == TypeId::of::<Vec<u8>>() {
                    cast(message.into_bytes())
                } else if TypeId::of::<M>() == TypeId::of::<String>() {
                    cast(message.into_text_lossy())
                } else {
                    cast(message)
                }
            }
            Message::Custom(boxed) => boxed.downcast::<M>().ok().map(|boxed| *boxed),
        }
    }
}

/// Moves `value` out as an `M` when `T` and `M` are the same type, without allocating.
fn cast<T: 'static, M: 'static>(value: T) -> Option<M> {
    let mut slot = Some(value);
    (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<M>>()
        .and_then(Option::take)
}

/// What [`TcpConnection::send`] accepts: bytes or text, or an HTTP value.
///
/// On an `http://` connection, bytes or text become a `200` response (as in Workerman); a
/// [`Response`](http::Response), [`ServerSentEvents`](http::ServerSentEvents) or
/// [`Chunk`](http::Chunk) is encoded as itself. On a `websocket://` connection, bytes and text
/// become a frame of the connection's [`WebSocketType`](websocket::WebSocketType), a
/// [`websocket::Message`] a frame of its own type. On other protocols everything is sent as its
/// bytes through the protocol's `encode`.
///
/// ```
/// use workerman::protocols::Outbound;
/// let outbound: Outbound = "hello".into();
/// assert!(matches!(outbound, Outbound::Bytes(_)));
/// ```
pub enum Outbound<'a> {
    /// Raw bytes or text.
    Bytes(Cow<'a, [u8]>),
    /// An HTTP response.
    Response(http::Response),
    /// One Server-Sent Event.
    Event(http::ServerSentEvents),
    /// One chunk of a `Transfer-Encoding: chunked` response.
    Chunk(http::Chunk),
    /// A WebSocket message: a text or binary frame whatever the connection's type.
    WebSocket(websocket::Message),
    /// Bytes written as they are, around the protocol (Workerman's `send($data, true)`; see
    /// [`TcpConnection::send_raw`]).
    Raw(Cow<'a, [u8]>),
    /// A message encoded once and shared by every connection it is sent to.
    Shared(SharedMessage),
    /// A WebSocket ping (`websocket://` and `ws://` only).
    Ping(websocket::Ping),
    /// A WebSocket pong (`websocket://` and `ws://` only).
    Pong(websocket::Pong),
}

impl Outbound<'_> {
    /// The same data, owning its bytes (to keep it past the borrow).
    pub(crate) fn into_owned(self) -> Outbound<'static> {
        match self {
            Outbound::Bytes(bytes) => Outbound::Bytes(Cow::Owned(bytes.into_owned())),
            Outbound::Response(response) => Outbound::Response(response),
            Outbound::Event(event) => Outbound::Event(event),
            Outbound::Chunk(chunk) => Outbound::Chunk(chunk),
            Outbound::WebSocket(message) => Outbound::WebSocket(message),
            Outbound::Raw(bytes) => Outbound::Raw(Cow::Owned(bytes.into_owned())),
            Outbound::Shared(shared) => Outbound::Shared(shared),
            Outbound::Ping(ping) => Outbound::Ping(ping),
            Outbound::Pong(pong) => Outbound::Pong(pong),
        }
    }

    /// Roughly how many bytes this sends (exact for bytes and WebSocket messages), for limits
    /// on what is queued before a connection exists.
    pub(crate) fn size_hint(&self) -> usize {
        match self {
            Outbound::Bytes(bytes) => bytes.len(),
            Outbound::WebSocket(message) => message.as_bytes().len(),
            Outbound::Event(event) => event.to_bytes().len(),
            Outbound::Chunk(chunk) => chunk.to_bytes().len(),
            Outbound::Response(_) => 256,
            Outbound::Raw(bytes) => bytes.len(),
            Outbound::Shared(shared) => shared.as_bytes().len(),
            Outbound::Ping(ping) => ping.payload().len() + 6,
            Outbound::Pong(pong) => pong.payload().len() + 6,
        }
    }
}

impl<'a> From<&'a str> for Outbound<'a> {
    fn from(text: &'a str) -> Self {
        Outbound::Bytes(Cow::Borrowed(text.as_bytes()))
    }
}
impl<'a> From<&'a String> for Outbound<'a> {
    fn from(text: &'a String) -> Self {
        Outbound::Bytes(Cow::Borrowed(text.as_bytes()))
    }
}
impl From<String> for Outbound<'static> {
    fn from(text: String) -> Self {
        Outbound::Bytes(Cow::Owned(text.into_bytes()))
    }
}
impl<'a> From<&'a [u8]> for Outbound<'a> {
    fn from(bytes: &'a [u8]) -> Self {
        Outbound::Bytes(Cow::Borrowed(bytes))
    }
}
impl<'a, const N: usize> From<&'a [u8; N]> for Outbound<'a> {
    fn from(bytes: &'a [u8; N]) -> Self {
        Outbound::Bytes(Cow::Borrowed(bytes))
    }
}
impl<'a> From<&'a Vec<u8>> for Outbound<'a> {
    fn from(bytes: &'a Vec<u8>) -> Self {
        Outbound::Bytes(Cow::Borrowed(bytes))
    }
}
impl From<Vec<u8>> for Outbound<'static> {
    fn from(bytes: Vec<u8>) -> Self {
        Outbound::Bytes(Cow::Owned(bytes))
    }
}
impl From<http::Response> for Outbound<'static> {
    fn from(response: http::Response) -> Self {
        Outbound::Response(response)
    }
}
impl From<http::ServerSentEvents> for Outbound<'static> {
    fn from(event: http::ServerSentEvents) -> Self {
        Outbound::Event(event)
    }
}
impl From<http::Chunk> for Outbound<'static> {
    fn from(chunk: http::Chunk) -> Self {
        Outbound::Chunk(chunk)
    }
}
impl From<websocket::Message> for Outbound<'static> {
    fn from(message: websocket::Message) -> Self {
        Outbound::WebSocket(message)
    }
}
impl From<SharedMessage> for Outbound<'static> {
    fn from(shared: SharedMessage) -> Self {
        Outbound::Shared(shared)
    }
}
impl From<&SharedMessage> for Outbound<'static> {
    fn from(shared: &SharedMessage) -> Self {
        Outbound::Shared(shared.clone())
    }
}
impl From<websocket::Ping> for Outbound<'static> {
    fn from(ping: websocket::Ping) -> Self {
        Outbound::Ping(ping)
    }
}
impl From<websocket::Pong> for Outbound<'static> {
    fn from(pong: websocket::Pong) -> Self {
        Outbound::Pong(pong)
    }
}

/// A number is sent as its decimal text, as PHP's `send(time())` converts it: `send(42)` sends
/// `"42"`, `send(1.5)` sends `"1.5"`.
///
/// ```
/// use workerman::protocols::Outbound;
/// let Outbound::Bytes(bytes) = Outbound::from(1_700_000_000u64) else { unreachable!() };
/// assert_eq!(&*bytes, b"1700000000");
/// ```
macro_rules! outbound_from_number {
    ($($number:ty),*) => {$(
        impl From<$number> for Outbound<'static> {
            fn from(number: $number) -> Self {
                Outbound::Bytes(Cow::Owned(number.to_string().into_bytes()))
            }
        }
    )*};
}
outbound_from_number!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, f32, f64
);
