//! What a worker is, as its listener and connections see it: the settings and the connection
//! callbacks (`on_connect`, `on_message`, ...) that `Worker`'s setters fill in (`src/worker.rs`),
//! shared by the listener and every connection it accepts. The worker's own callbacks
//! (`on_worker_start`, ...) stay with the `Worker`.
//!
//! With it, the types it holds that hold it: a client's state (`ClientState`, the part of a
//! `WorkerShared` an [`AsyncTcpConnection`] has), which holds a pipe's destination
//! ([`PipeDestination`]), which may be a client ([`AsyncTcpConnection`], a `WorkerShared`).
//! Their methods are elsewhere: `async_tcp.rs` and `pipe.rs`.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::stream::{BoundSocket, ListenOptions, Transport};
use super::timer_queue::TimerId;
use super::transport::LayerFactory;
use super::{SslContext, TcpConnection};
use crate::protocols::http::{HttpSettings, Request, SessionConfig};
use crate::protocols::websocket::client::HandshakeResponse;
use crate::protocols::{Message, Outbound, ProtocolKind};

type ConnectionCallback = Rc<dyn Fn(&TcpConnection)>;
type MessageCallback = Rc<dyn Fn(&TcpConnection, Message)>;
type ErrorCallback = Rc<dyn Fn(&TcpConnection, i32, &str)>;
type HandshakeCallback = Rc<dyn Fn(&TcpConnection, &Request)>;
type PingCallback = Rc<dyn Fn(&TcpConnection, &[u8])>;
type CloseFrameCallback = Rc<dyn Fn(&TcpConnection, u16, &str)>;

#[derive(Default)]
pub(crate) struct Callbacks {
    pub(crate) on_connect: RefCell<Option<ConnectionCallback>>,
    pub(crate) on_message: RefCell<Option<MessageCallback>>,
    pub(crate) on_close: RefCell<Option<ConnectionCallback>>,
    pub(crate) on_error: RefCell<Option<ErrorCallback>>,
    pub(crate) on_buffer_full: RefCell<Option<ConnectionCallback>>,
    pub(crate) on_buffer_drain: RefCell<Option<ConnectionCallback>>,
    pub(crate) on_websocket_connect: RefCell<Option<HandshakeCallback>>,
    pub(crate) on_websocket_connected: RefCell<Option<HandshakeCallback>>,
    pub(crate) on_websocket_ping: RefCell<Option<PingCallback>>,
    pub(crate) on_websocket_pong: RefCell<Option<PingCallback>>,
    pub(crate) on_websocket_close: RefCell<Option<CloseFrameCallback>>,
}

/// What a worker is: shared by the user's `Worker` handle, the listener and every connection.
pub(crate) struct WorkerShared {
    /// The address as given, e.g. `http://0.0.0.0:8080`.
    pub(crate) address: String,
    /// The part after the scheme, e.g. `0.0.0.0:8080` (a path for `unix`).
    pub(crate) listen: String,
    /// `tcp`, `udp` or `unix`: from the scheme, or set with `Worker::set_transport`.
    pub(crate) transport: Cell<Transport>,
    pub(crate) protocol: RefCell<ProtocolKind>,
    /// `text://` with an `on_message` that takes `Vec<u8>`: deliver lines as bytes.
    pub(crate) text_as_bytes: Cell<bool>,
    pub(crate) name: RefCell<String>,
    pub(crate) count: Cell<usize>,
    pub(crate) reuse_port: Cell<bool>,
    /// Keepalive, backlog and `IPV6_V6ONLY` for the listen socket (its `reuse_port` is unused:
    /// the field above is).
    pub(crate) listen_options: Cell<ListenOptions>,
    pub(crate) user: RefCell<String>,
    /// Workerman's `$worker->group` (empty: the user's primary group).
    pub(crate) group: RefCell<String>,
    /// Workerman's `$worker->reloadable`: false, a reload only runs `on_worker_reload`.
    pub(crate) reloadable: Cell<bool>,
    pub(crate) id: Cell<usize>,
    pub(crate) max_send_buffer_size: Cell<usize>,
    pub(crate) max_package_size: Cell<usize>,
    pub(crate) http_settings: Cell<HttpSettings>,
    /// `set_session`; the default file store is made on first use.
    pub(crate) session: RefCell<Option<Rc<SessionConfig>>>,
    /// The session handler's reads complete later (Redis): a request with a session cookie is
    /// held until its session is read.
    pub(crate) session_reads_later: Cell<bool>,
    /// Where streamed uploads are written (`set_upload_directory`).
    pub(crate) upload_directory: RefCell<std::path::PathBuf>,
    /// `set_upload_threshold` and `set_max_upload_size`.
    pub(crate) upload_limits: Cell<(usize, usize)>,
    pub(crate) local_address: Cell<Option<SocketAddr>>,
    /// A listener the master bound before forking; [`WorkerShared::bind`] takes it first.
    pub(crate) prebound: RefCell<Option<BoundSocket>>,
    /// Connections open now on this worker, and the most it accepts (`usize::MAX`: no limit).
    pub(crate) connection_count: Cell<usize>,
    pub(crate) max_connections: Cell<usize>,
    pub(crate) callbacks: Callbacks,
    /// `websocket://` accepts (a `ws://` client offers) permessage-deflate.
    pub(crate) websocket_deflate: Cell<bool>,
    /// `websocket://`: ping every `.0` seconds; no pong within `.1` seconds closes.
    pub(crate) websocket_heartbeat: Cell<Option<(f64, f64)>>,
    /// Set for an [`AsyncTcpConnection`](crate::connection::AsyncTcpConnection)'s connections:
    /// where it connects, and what it does between connections.
    pub(crate) client: Option<ClientState>,
    /// A layer between each connection's socket and its codec (TLS); `None`: plain bytes.
    pub(crate) layer: RefCell<Option<LayerFactory>>,
    /// TLS on the listener (`set_transport("ssl")`, `https://`, `wss://`), with its context.
    pub(crate) ssl: RefCell<Option<SslContext>>,
}

impl WorkerShared {
    /// A worker's (or a client connection's) settings and callbacks, at their defaults.
    pub(crate) fn new(
        address: &str,
        listen: &str,
        transport: Transport,
        protocol: ProtocolKind,
    ) -> WorkerShared {
        WorkerShared {
            address: address.to_owned(),
            listen: listen.to_owned(),
            transport: Cell::new(transport),
            protocol: RefCell::new(protocol),
            text_as_bytes: Cell::new(false),
            name: RefCell::new("none".to_owned()),
            count: Cell::new(1),
            reuse_port: Cell::new(false),
            listen_options: Cell::new(ListenOptions::default()),
            user: RefCell::new(String::new()),
            group: RefCell::new(String::new()),
            reloadable: Cell::new(true),
            id: Cell::new(0),
            max_send_buffer_size: Cell::new(TcpConnection::DEFAULT_MAX_SEND_BUFFER_SIZE),
            max_package_size: Cell::new(TcpConnection::DEFAULT_MAX_PACKAGE_SIZE),
            http_settings: Cell::new(HttpSettings::default()),
            session: RefCell::new(None),
            session_reads_later: Cell::new(false),
            upload_directory: RefCell::new(std::env::temp_dir()),
            upload_limits: Cell::new(crate::protocols::http::DEFAULT_UPLOAD_LIMITS),
            local_address: Cell::new(None),
            prebound: RefCell::new(None),
            connection_count: Cell::new(0),
            max_connections: Cell::new(usize::MAX),
            callbacks: Callbacks::default(),
            websocket_deflate: Cell::new(false),
            websocket_heartbeat: Cell::new(None),
            client: None,
            layer: RefCell::new(None),
            ssl: RefCell::new(None),
        }
    }

    /// Sets `on_message`, checking `M` against the protocol's messages.
    ///
    /// # Panics
    /// If `M` is not what the protocol delivers.
    pub(crate) fn set_on_message<M: 'static>(
        &self,
        callback: impl Fn(&TcpConnection, M) + 'static,
    ) {
        let protocol = self.protocol.borrow().clone();
        if let Err(mismatch) = protocol.accepts::<M>() {
            panic!("{} (on {})", mismatch, self.address);
        }
        self.text_as_bytes.set(
            matches!(protocol, ProtocolKind::Text)
                && std::any::TypeId::of::<M>() == std::any::TypeId::of::<Vec<u8>>(),
        );
        let wrapped = move |connection: &TcpConnection, message: Message| {
            if let Some(message) = message.into_typed::<M>() {
                callback(connection, message);
            }
        };
        *self.callbacks.on_message.borrow_mut() = Some(Rc::new(wrapped));
    }
}

/// A `ws://` client's `on_websocket_connect`: the server's answer to its upgrade request.
pub(crate) type ClientHandshakeCallback = Rc<dyn Fn(&TcpConnection, &HandshakeResponse)>;

/// A client connection to another server, on this worker's reactor (Workerman's
/// `AsyncTcpConnection`).
///
/// The scheme picks the protocol: `tcp://` (raw bytes), `text://`, `frame://`, or `ws://` (a
/// WebSocket client: it sends the upgrade request, checks `Sec-WebSocket-Accept`, masks its
/// frames). [`with_protocol`](Self::with_protocol) takes a custom one. The callbacks receive the
/// same [`TcpConnection`] handle as a worker's, so `send`, `close`, `status` and the context
/// work as on any connection. Create it in a running worker (`on_worker_start` or any callback).
///
/// ```no_run
/// use workerman::connection::AsyncTcpConnection;
/// use workerman::{TcpConnection, Worker};
///
/// let mut worker = Worker::new("tcp://127.0.0.1:0");
/// worker.on_worker_start(|_worker| {
///     let mut upstream = AsyncTcpConnection::new("ws://127.0.0.1:8000/chat");
///     upstream.on_connect(|connection: &TcpConnection| {
///         connection.send("hello");
///     });
///     upstream.on_message(|_connection: &TcpConnection, text: String| {
///         println!("got {text}");
///     });
///     upstream.on_close(|connection: &TcpConnection| {
///         // Try again in a second.
///         connection.reconnect(1.0);
///     });
///     upstream.connect();
/// });
/// Worker::run_all();
/// ```
#[derive(Clone)]
pub struct AsyncTcpConnection {
    pub(crate) shared: Rc<WorkerShared>,
}

/// Where a client connects, and its state between connections (`WorkerShared::client`).
pub(crate) struct ClientState {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `unix://`: the socket's path (then `host` and `port` are unused).
    pub(crate) unix_path: Option<std::path::PathBuf>,
    /// `ws://` only: the request target (path and query) and the `Host` header's value.
    pub(crate) websocket_target: Option<(String, String)>,
    /// The connection made last, if any.
    pub(crate) current: RefCell<Option<TcpConnection>>,
    /// The status while no connection exists: `STATUS_INITIAL` or `STATUS_CLOSED`.
    pub(crate) status_without_connection: Cell<u8>,
    /// Sends made before `connect()` (or while a reconnect is pending), and their byte count.
    pub(crate) queued: RefCell<Vec<Outbound<'static>>>,
    pub(crate) queued_bytes: Cell<usize>,
    pub(crate) reconnect_timer: Cell<Option<TimerId>>,
    pub(crate) connect_timeout: Cell<Option<Duration>>,
    pub(crate) connect_started: Cell<Option<Instant>>,
    /// `ws://`: extra upgrade-request header lines, each ending in CRLF.
    pub(crate) websocket_headers: RefCell<Vec<u8>>,
    pub(crate) websocket_ping_interval: Cell<Option<f64>>,
    pub(crate) websocket_binary: Cell<bool>,
    pub(crate) on_websocket_connect: RefCell<Option<ClientHandshakeCallback>>,
    /// Each turn, the reactor reads this client's socket before any other event.
    pub(crate) read_first: Cell<bool>,
    /// `pipe()`: where this client's messages go, and the connection piped into it (whose
    /// reading it throttles): given to each connection it makes.
    pub(crate) pipe_to: RefCell<Option<PipeDestination>>,
    pub(crate) pipe_from: RefCell<Option<TcpConnection>>,
    /// TLS (`wss://`, `ssl://`, `set_transport("ssl")`): the context; its configuration is made
    /// at the first connect and kept (as the worker's layer factory) for reconnects.
    pub(crate) ssl: RefCell<Option<SslContext>>,
}

/// A pipe's destination (see [`PipeTarget`](crate::connection::PipeTarget)).
#[doc(hidden)]
#[derive(Clone)]
pub enum PipeDestination {
    /// A connection that exists.
    Connection(TcpConnection),
    /// A client, connected or not.
    Client(AsyncTcpConnection),
}
