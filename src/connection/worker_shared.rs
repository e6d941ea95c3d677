//! What a worker is, as its listener and connections see it: the settings and the connection
//! callbacks (`on_connect`, `on_message`, ...) that `Worker`'s setters fill in (`src/worker.rs`),
//! shared by the listener and every connection it accepts. The worker's own callbacks
//! (`on_worker_start`, ...) stay with the `Worker`.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;

use super::stream::{BoundSocket, ListenOptions, Transport};
use super::transport::LayerFactory;
use super::{SslContext, TcpConnection};
use crate::protocols::http::{HttpSettings, Request, SessionConfig};
use crate::protocols::{Message, ProtocolKind};

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
    pub(crate) client: Option<crate::connection::async_tcp::ClientState>,
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
