//! `AsyncTcpConnection`: a connection this worker opens to another server (Workerman's
//! `AsyncTcpConnection`), driven by the same reactor as the worker's own connections.
//!
//! An `AsyncTcpConnection` is a recipe (an address, a protocol, callbacks) plus the connection it
//! made last. Each [`connect`](AsyncTcpConnection::connect) opens a new socket in the reactor's
//! slab, whose [`TcpConnection`] handle the callbacks receive; a handle from an earlier attempt
//! stays closed. What is sent before the connection is up is queued and goes out once it is.
//!
//! The path through the reactor: `connect` resolves the host (on a helper thread unless it is an
//! IP address: no blocking call on the reactor thread), creates the slot in `STATUS_CONNECTING`
//! and starts a non-blocking connect; the socket's first event lands in [`on_connect_event`],
//! which either establishes the connection (the queue is flushed, a `ws://` client sends its
//! upgrade request, `on_connect` runs) or fails it (`on_error` with `CONNECT_FAIL`, then
//! `on_close`).

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::{Interest, Token};

use super::WorkerShared;
use super::io::{self as connection_io, TLS_HANDSHAKE_TIMEOUT};
use super::output;
use super::stream::{Stream, Transport, UNSPECIFIED_ADDRESS};
use super::table::{self, call_user, with};
use super::timer_queue::TimerCallback;
use super::worker_shared::{AsyncTcpConnection, ClientState};
use super::{Connection, SendResult, SslContext, TcpConnection};
use crate::protocols::websocket::client::{self as websocket_client, HandshakeResponse};
use crate::protocols::{Outbound, Protocol, ProtocolKind};

impl AsyncTcpConnection {
    /// A client for `address`: `tcp://host:port`, `text://…`, `frame://…`,
    /// `ws://host[:port][/path]` (port 80 by default), `wss://…` (TLS, port 443 by default),
    /// `ssl://host:port` (bytes over TLS) or `unix:///path/to/socket` (bytes, as `tcp://`). Nothing happens until [`connect`](Self::connect).
    ///
    /// # Panics
    /// If the address has no scheme, names another scheme, or has no valid port.
    ///
    /// ```
    /// use workerman::connection::AsyncTcpConnection;
    /// let upstream = AsyncTcpConnection::new("text://127.0.0.1:9000");
    /// assert_eq!(upstream.status(), workerman::TcpConnection::STATUS_INITIAL);
    /// ```
    pub fn new(address: &str) -> AsyncTcpConnection {
        let (scheme, rest) = address.split_once("://").unwrap_or_else(|| {
            panic!("AsyncTcpConnection address {address:?} needs a scheme, as in tcp://host:port")
        });
        let tls = matches!(scheme.to_ascii_lowercase().as_str(), "wss" | "ssl");
        let protocol = match scheme.to_ascii_lowercase().as_str() {
            "ws" | "wss" => ProtocolKind::WebSocket,
            "unix" | "ssl" => ProtocolKind::Raw,
            other => match ProtocolKind::from_scheme(other) {
                Some(protocol @ (ProtocolKind::Raw | ProtocolKind::Text | ProtocolKind::Frame)) => {
                    protocol
                }
                _ => panic!(
                    "AsyncTcpConnection::new({address:?}): unsupported scheme {scheme}://; use \
                     tcp, text, frame, ws, wss, ssl or unix, or AsyncTcpConnection::with_protocol"
                ),
            },
        };
        let connection = AsyncTcpConnection::create(address, rest, protocol);
        if tls {
            connection.client().ssl.replace(Some(SslContext::new()));
        }
        connection
    }

    /// A client speaking a custom [`Protocol`] to a `tcp://host:port` (or `unix:///path`)
    /// address; `on_message` then receives `P::Message`.
    ///
    /// ```
    /// use workerman::connection::AsyncTcpConnection;
    /// use workerman::protocols::Text;
    /// let upstream = AsyncTcpConnection::with_protocol("tcp://127.0.0.1:9000", Text);
    /// # let _ = upstream;
    /// ```
    pub fn with_protocol<P: Protocol>(address: &str, protocol: P) -> AsyncTcpConnection {
        let rest = address.split_once("://").map_or(address, |(_, rest)| rest);
        AsyncTcpConnection::create(address, rest, ProtocolKind::Custom(Rc::new(protocol)))
    }

    fn create(address: &str, rest: &str, protocol: ProtocolKind) -> AsyncTcpConnection {
        let unix = address
            .split_once("://")
            .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("unix"));
        if unix {
            assert!(
                !rest.is_empty(),
                "AsyncTcpConnection address {address:?} needs a socket path"
            );
            return AsyncTcpConnection::with_client(
                address,
                rest,
                Transport::Unix,
                protocol,
                |client| {
                    client.unix_path = Some(rest.into());
                },
            );
        }
        let websocket = matches!(protocol, ProtocolKind::WebSocket);
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) if websocket => (&rest[..at], &rest[at..]),
            Some(at) => (&rest[..at], ""),
            None => (rest, ""),
        };
        let secure = address
            .split_once("://")
            .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("wss"));
        let default_port = websocket.then_some(if secure { 443 } else { 80 });
        let (host, port) = split_host_port(authority, default_port)
            .unwrap_or_else(|| panic!("AsyncTcpConnection address {address:?} needs host:port"));
        let websocket_target = websocket.then(|| {
            let path = if path.starts_with('/') {
                path.to_owned()
            } else {
                format!("/{path}")
            };
            (path, authority.to_owned())
        });
        AsyncTcpConnection::with_client(address, rest, Transport::Tcp, protocol, |client| {
            client.host = host;
            client.port = port;
            client.websocket_target = websocket_target;
        })
    }

    fn with_client(
        address: &str,
        rest: &str,
        transport: Transport,
        protocol: ProtocolKind,
        configure: impl FnOnce(&mut ClientState),
    ) -> AsyncTcpConnection {
        let mut shared = WorkerShared::new(address, rest, transport, protocol);
        *shared.name.get_mut() = "AsyncTcpConnection".to_owned();
        let mut client = ClientState {
            host: String::new(),
            port: 0,
            unix_path: None,
            websocket_target: None,
            current: RefCell::new(None),
            status_without_connection: Cell::new(TcpConnection::STATUS_INITIAL),
            queued: RefCell::new(Vec::new()),
            queued_bytes: Cell::new(0),
            reconnect_timer: Cell::new(None),
            connect_timeout: Cell::new(None),
            connect_started: Cell::new(None),
            websocket_headers: RefCell::new(Vec::new()),
            websocket_ping_interval: Cell::new(None),
            websocket_binary: Cell::new(false),
            on_websocket_connect: RefCell::new(None),
            read_first: Cell::new(false),
            pipe_to: RefCell::new(None),
            pipe_from: RefCell::new(None),
            ssl: RefCell::new(None),
        };
        configure(&mut client);
        shared.client = Some(client);
        AsyncTcpConnection {
            shared: Rc::new(shared),
        }
    }

    pub(crate) fn from_shared(shared: Rc<WorkerShared>) -> Option<AsyncTcpConnection> {
        shared
            .client
            .is_some()
            .then_some(AsyncTcpConnection { shared })
    }

    fn client(&self) -> &ClientState {
        self.shared
            .client
            .as_ref()
            .expect("an AsyncTcpConnection always has its client state")
    }

    /// The connection made last, while it is open (connecting, established or closing).
    ///
    /// ```no_run
    /// # let upstream = workerman::connection::AsyncTcpConnection::new("tcp://127.0.0.1:9000");
    /// if let Some(connection) = upstream.connection() {
    ///     println!("connection #{}", connection.id());
    /// }
    /// ```
    pub fn connection(&self) -> Option<TcpConnection> {
        self.client()
            .current
            .borrow()
            .clone()
            .filter(|connection| connection.status() != TcpConnection::STATUS_CLOSED)
    }

    /// One of the `TcpConnection::STATUS_*` constants: `STATUS_INITIAL` before `connect()` and
    /// while a reconnect is pending, then the connection's own.
    ///
    /// ```
    /// use workerman::TcpConnection;
    /// # let upstream = workerman::connection::AsyncTcpConnection::new("tcp://127.0.0.1:9000");
    /// assert_eq!(upstream.status(), TcpConnection::STATUS_INITIAL);
    /// ```
    pub fn status(&self) -> u8 {
        let client = self.client();
        match client.current.borrow().as_ref() {
            Some(connection) => connection.status(),
            None => client.status_without_connection.get(),
        }
    }

    /// Connects (Workerman's `connect()`): only from `STATUS_INITIAL`, `STATUS_CLOSING` or
    /// `STATUS_CLOSED`; otherwise nothing happens. Success runs `on_connect`; failure runs
    /// `on_error` with [`TcpConnection::CONNECT_FAIL`], then `on_close`.
    ///
    /// # Panics
    /// Outside a running worker.
    ///
    /// ```no_run
    /// # let upstream = workerman::connection::AsyncTcpConnection::new("tcp://127.0.0.1:9000");
    /// upstream.connect();
    /// ```
    pub fn connect(&self) {
        let client = self.client();
        let previous = client.current.borrow().clone();
        if let Some(previous) = previous {
            match previous.status() {
                TcpConnection::STATUS_CLOSED => {}
                TcpConnection::STATUS_CLOSING => previous.destroy(),
                _ => return,
            }
        }
        self.cancel_reconnect();
        let stopping = table::with_running("AsyncTcpConnection::connect", |table| {
            table.stop.load(std::sync::atomic::Ordering::Relaxed)
        });
        if stopping {
            log::debug!(
                "{}: not connecting, the worker is stopping",
                self.shared.address
            );
            return;
        }
        let handle = with(|table| {
            let entry = table.connections.vacant_entry();
            let key = entry.key();
            table.next_connection_id += 1;
            let id = table.next_connection_id;
            let mut connection = Connection::connecting(id, self.shared.clone());
            if let Some((path, host)) = &client.websocket_target {
                connection.websocket = Some(Box::new(websocket_client::start(
                    path,
                    host,
                    &client.websocket_headers.borrow(),
                    client.websocket_binary.get(),
                    self.shared.websocket_deflate.get(),
                )));
            }
            let pipe_to = client.pipe_to.borrow().clone();
            let pipe_from = client.pipe_from.borrow().clone();
            if pipe_to.is_some() || pipe_from.is_some() {
                let extras = connection.extras();
                extras.pipe_to = pipe_to;
                extras.pipe_from = pipe_from;
            }
            entry.insert(connection);
            table.statistics.connection_count += 1;
            table.metrics.opened(crate::metrics::protocol_index(
                &self.shared.protocol.borrow(),
                self.shared.transport.get(),
            ));
            let count = &self.shared.connection_count;
            count.set(count.get() + 1);
            if client.read_first.get() {
                table.read_first.push((key, id));
            }
            if let Some(timeout) = client.connect_timeout.get() {
                let deadline = table.now + timeout;
                table.set_deadline(key, Some(deadline));
            }
            TcpConnection::new(key, id)
        });
        *client.current.borrow_mut() = Some(handle.clone());
        // A connection piped from this client throttles the new connection's reading.
        if let Some(super::PipeDestination::Connection(destination)) = &*client.pipe_to.borrow() {
            destination.set_pipe_from(handle.clone());
        }
        client.connect_started.set(Some(Instant::now()));
        client.queued_bytes.set(0);
        let queued = std::mem::take(&mut *client.queued.borrow_mut());
        for outbound in queued {
            handle.send(outbound);
        }
        if let Some(path) = &client.unix_path {
            start_connecting_unix(&handle, path);
            return;
        }
        match client.host.parse::<IpAddr>() {
            Ok(ip) => start_connecting(&handle, Ok(vec![SocketAddr::new(ip, client.port)])),
            Err(_) => {
                let (host, port) = (client.host.clone(), client.port);
                let resolutions = with(|table| table.resolutions.clone());
                let (key, id) = (handle.key(), handle.id());
                let spawned = std::thread::Builder::new()
                    .name("workerman-resolve".into())
                    .spawn(move || {
                        let result = (host.as_str(), port)
                            .to_socket_addrs()
                            .map(|addresses| addresses.collect::<Vec<_>>());
                        resolutions.deliver(key, id, result);
                    });
                if let Err(error) = spawned {
                    start_connecting(&handle, Err(error));
                }
            }
        }
    }

    /// Connects again after `seconds` (at once for 0), closing the current connection first if
    /// it is still open (Workerman's `reconnect($after)`). Call it from `on_close` to keep a
    /// connection up; [`TcpConnection::reconnect`] does the same from a handle.
    ///
    /// # Panics
    /// If `seconds` is negative or not finite, or outside a running worker.
    ///
    /// ```no_run
    /// # let upstream = workerman::connection::AsyncTcpConnection::new("tcp://127.0.0.1:9000");
    /// upstream.reconnect(1.0);
    /// ```
    pub fn reconnect(&self, seconds: f64) {
        assert!(
            seconds.is_finite() && seconds >= 0.0,
            "reconnect: the delay must be a finite number of seconds >= 0, not {seconds}"
        );
        let client = self.client();
        let previous = client.current.borrow_mut().take();
        if let Some(previous) = previous {
            if previous.status() != TcpConnection::STATUS_CLOSED {
                previous.destroy();
            }
        }
        self.cancel_reconnect();
        client
            .status_without_connection
            .set(TcpConnection::STATUS_INITIAL);
        if seconds == 0.0 {
            self.connect();
            return;
        }
        let again = self.clone();
        let timer = table::add_timer(
            "Timer::once",
            seconds,
            TimerCallback::once(move || {
                again.client().reconnect_timer.set(None);
                again.connect();
            }),
        );
        client.reconnect_timer.set(Some(timer));
    }

    /// Cancels a reconnect scheduled by [`reconnect`](Self::reconnect) (Workerman's
    /// `cancelReconnect()`).
    ///
    /// ```no_run
    /// # let upstream = workerman::connection::AsyncTcpConnection::new("tcp://127.0.0.1:9000");
    /// upstream.cancel_reconnect();
    /// ```
    pub fn cancel_reconnect(&self) {
        if let Some(timer) = self.client().reconnect_timer.take() {
            table::delete_timer(timer);
        }
    }

    /// Sends on the current connection; before `connect()`, and while connecting or waiting to
    /// reconnect, the data is queued (Workerman's `null`) up to `max_send_buffer_size` bytes and
    /// goes out once connected. Refused once closed.
    ///
    /// ```no_run
    /// # let upstream = workerman::connection::AsyncTcpConnection::new("text://127.0.0.1:9000");
    /// upstream.send("queued until connected");
    /// upstream.connect();
    /// ```
    pub fn send<'a>(&self, data: impl Into<Outbound<'a>>) -> SendResult {
        let client = self.client();
        let current = client.current.borrow().clone();
        if let Some(connection) = current {
            return connection.send(data);
        }
        if client.status_without_connection.get() != TcpConnection::STATUS_INITIAL {
            return SendResult::Refused;
        }
        let outbound = data.into().into_owned();
        let size = outbound.size_hint();
        if client.queued_bytes.get() + size > self.shared.max_send_buffer_size.get() {
            return SendResult::Refused;
        }
        client.queued_bytes.set(client.queued_bytes.get() + size);
        client.queued.borrow_mut().push(outbound);
        SendResult::Queued
    }

    /// Forwards everything this client receives to `destination` (a [`TcpConnection`] or another
    /// client), closes it when this client's connection closes, and pauses reading here while
    /// its send buffer is full (Workerman's `$connection_to_80->pipe($connection)`). It holds for
    /// every connection this client makes, so it may be called before [`connect`](Self::connect).
    ///
    /// ```no_run
    /// use workerman::{AsyncTcpConnection, TcpConnection, Worker};
    ///
    /// let mut worker = Worker::new("tcp://0.0.0.0:8483");
    /// worker.on_connect(|connection: &TcpConnection| {
    ///     let connection_to_80 = AsyncTcpConnection::new("tcp://127.0.0.1:80");
    ///     connection.pipe(&connection_to_80);
    ///     connection_to_80.pipe(connection);
    ///     connection_to_80.connect();
    /// });
    /// Worker::run_all();
    /// ```
    pub fn pipe(&self, destination: &impl super::PipeTarget) {
        let destination = destination.pipe_destination();
        let client = self.client();
        *client.pipe_to.borrow_mut() = Some(destination.clone());
        if let Some(current) = self.connection() {
            current.pipe(&destination);
        }
    }

    /// Makes `source` the connection whose reading this client's full send buffer pauses.
    pub(crate) fn set_pipe_from(&self, source: TcpConnection) {
        *self.client().pipe_from.borrow_mut() = Some(source.clone());
        if let Some(current) = self.connection() {
            current.set_pipe_from(source);
        }
    }

    /// Closes the current connection after flushing it, and cancels a pending reconnect.
    ///
    /// ```no_run
    /// # let upstream = workerman::connection::AsyncTcpConnection::new("tcp://127.0.0.1:9000");
    /// upstream.close();
    /// ```
    pub fn close(&self) {
        self.cancel_reconnect();
        let client = self.client();
        client.queued.borrow_mut().clear();
        client.queued_bytes.set(0);
        client
            .status_without_connection
            .set(TcpConnection::STATUS_CLOSED);
        let current = client.current.borrow().clone();
        if let Some(connection) = current {
            connection.close();
        }
    }

    /// Gives up on connecting after this long (`on_error` with `CONNECT_FAIL`, then `on_close`).
    /// By default the kernel decides, as in Workerman (about two minutes when nothing answers).
    ///
    /// ```
    /// # let mut upstream = workerman::connection::AsyncTcpConnection::new("tcp://127.0.0.1:9000");
    /// upstream.set_connect_timeout(std::time::Duration::from_secs(5));
    /// ```
    pub fn set_connect_timeout(&mut self, timeout: Duration) {
        self.client().connect_timeout.set(Some(timeout));
    }

    /// Workerman's `$connection->transport = 'ssl'`: TLS over this client's connections
    /// (`wss://` and `ssl://` addresses have it already), verified against the system's roots
    /// unless [`set_ssl_context`](Self::set_ssl_context) says otherwise.
    ///
    /// # Panics
    /// For a transport other than `ssl` or `tcp` (`tcp` turns TLS off).
    ///
    /// ```
    /// # let mut upstream = workerman::connection::AsyncTcpConnection::new("ws://example.com/chat");
    /// upstream.set_transport("ssl"); // now as wss://example.com:80/chat
    /// ```
    pub fn set_transport(&mut self, transport: &str) {
        match transport.to_ascii_lowercase().as_str() {
            "ssl" => {
                let context = self.client().ssl.borrow().clone().unwrap_or_default();
                self.client().ssl.replace(Some(context));
            }
            "tcp" => {
                self.client().ssl.replace(None);
            }
            other => panic!("AsyncTcpConnection::set_transport({other:?}): use ssl or tcp"),
        }
        self.shared.layer.replace(None);
    }

    /// The `ssl` context of this client (`cafile` instead of the system's roots,
    /// `peer_name`, a client certificate with `local_cert`/`local_pk`, or the loudly named
    /// [`insecure_skip_verify`](SslContext::insecure_skip_verify)); turns TLS on. Its files are
    /// read at the first `connect()`; an error then is a connect failure (`on_error`).
    ///
    /// ```
    /// use workerman::connection::{AsyncTcpConnection, SslContext};
    /// let mut upstream = AsyncTcpConnection::new("wss://127.0.0.1:8443/chat");
    /// upstream.set_ssl_context(SslContext::new().cafile("ca.pem").peer_name("localhost"));
    /// ```
    pub fn set_ssl_context(&mut self, context: SslContext) {
        self.client().ssl.replace(Some(context));
        self.shared.layer.replace(None);
    }

    /// Has the reactor handle this client's socket events before any other in each turn (a
    /// broker's connection, read before the streams it feeds are written to).
    pub(crate) fn set_read_first(&mut self, first: bool) {
        self.client().read_first.set(first);
    }

    /// The most bytes queued for the server before sends are refused (1 MiB by default).
    ///
    /// ```
    /// # let mut upstream = workerman::connection::AsyncTcpConnection::new("tcp://127.0.0.1:9000");
    /// upstream.set_max_send_buffer_size(4 << 20);
    /// ```
    pub fn set_max_send_buffer_size(&mut self, bytes: usize) {
        self.shared.max_send_buffer_size.set(bytes);
    }

    /// The largest message accepted from the server (10 MiB by default).
    ///
    /// ```
    /// # let mut upstream = workerman::connection::AsyncTcpConnection::new("tcp://127.0.0.1:9000");
    /// upstream.set_max_package_size(64 * 1024);
    /// ```
    pub fn set_max_package_size(&mut self, bytes: usize) {
        self.shared.max_package_size.set(bytes);
    }

    /// Called once connected (before the WebSocket handshake on `ws://`).
    ///
    /// ```no_run
    /// # let mut upstream = workerman::connection::AsyncTcpConnection::new("tcp://127.0.0.1:9000");
    /// upstream.on_connect(|connection| println!("connected to {}", connection.remote_address()));
    /// ```
    pub fn on_connect(&mut self, callback: impl Fn(&TcpConnection) + 'static) {
        *self.shared.callbacks.on_connect.borrow_mut() = Some(Rc::new(callback));
    }

    /// Called for each whole message from the server, typed as on a worker of the same
    /// protocol: `Vec<u8>` for `tcp://` and `frame://`, `String` (or `Vec<u8>`) for `text://`,
    /// `String`, `Vec<u8>` or [`websocket::Message`](crate::protocols::websocket::Message) for
    /// `ws://`.
    ///
    /// # Panics
    /// If `M` is not what the protocol delivers.
    ///
    /// ```no_run
    /// # let mut upstream = workerman::connection::AsyncTcpConnection::new("text://127.0.0.1:9000");
    /// upstream.on_message(|_connection, line: String| println!("{line}"));
    /// ```
    pub fn on_message<M: 'static>(&mut self, callback: impl Fn(&TcpConnection, M) + 'static) {
        self.shared.set_on_message(callback);
    }

    /// Called once per connection when it closes, including after a failed connect.
    ///
    /// ```no_run
    /// # let mut upstream = workerman::connection::AsyncTcpConnection::new("tcp://127.0.0.1:9000");
    /// upstream.on_close(|connection| connection.reconnect(1.0));
    /// ```
    pub fn on_close(&mut self, callback: impl Fn(&TcpConnection) + 'static) {
        *self.shared.callbacks.on_close.borrow_mut() = Some(Rc::new(callback));
    }

    /// Called with [`TcpConnection::CONNECT_FAIL`] when connecting (or a `ws://` handshake)
    /// fails, and with [`TcpConnection::SEND_FAIL`] when data could not be sent.
    ///
    /// ```no_run
    /// # let mut upstream = workerman::connection::AsyncTcpConnection::new("tcp://127.0.0.1:9000");
    /// upstream.on_error(|_connection, code, message| eprintln!("error {code}: {message}"));
    /// ```
    pub fn on_error(&mut self, callback: impl Fn(&TcpConnection, i32, &str) + 'static) {
        *self.shared.callbacks.on_error.borrow_mut() = Some(Rc::new(callback));
    }

    /// Called when the send buffer reaches its limit.
    ///
    /// ```no_run
    /// # let mut upstream = workerman::connection::AsyncTcpConnection::new("tcp://127.0.0.1:9000");
    /// upstream.on_buffer_full(|connection| connection.pause_recv());
    /// ```
    pub fn on_buffer_full(&mut self, callback: impl Fn(&TcpConnection) + 'static) {
        *self.shared.callbacks.on_buffer_full.borrow_mut() = Some(Rc::new(callback));
    }

    /// Called when the send buffer has drained after `on_buffer_full`.
    ///
    /// ```no_run
    /// # let mut upstream = workerman::connection::AsyncTcpConnection::new("tcp://127.0.0.1:9000");
    /// upstream.on_buffer_drain(|connection| connection.resume_recv());
    /// ```
    pub fn on_buffer_drain(&mut self, callback: impl Fn(&TcpConnection) + 'static) {
        *self.shared.callbacks.on_buffer_drain.borrow_mut() = Some(Rc::new(callback));
    }

    /// `ws://`: called once the server's `101` answer has been checked (Workerman's client
    /// `onWebSocketConnect`); messages flow from here on.
    ///
    /// ```no_run
    /// # let mut upstream = workerman::connection::AsyncTcpConnection::new("ws://127.0.0.1:8000/");
    /// upstream.on_websocket_connect(|connection, response| {
    ///     println!("upgraded; protocol {:?}", response.header("sec-websocket-protocol"));
    ///     connection.send("hello");
    /// });
    /// ```
    pub fn on_websocket_connect(
        &mut self,
        callback: impl Fn(&TcpConnection, &HandshakeResponse) + 'static,
    ) {
        *self.client().on_websocket_connect.borrow_mut() = Some(Rc::new(callback));
    }

    /// `ws://`: called with each ping's payload from the server (the pong goes out anyway).
    ///
    /// ```no_run
    /// # let mut upstream = workerman::connection::AsyncTcpConnection::new("ws://127.0.0.1:8000/");
    /// upstream.on_websocket_ping(|_connection, payload| println!("ping {payload:?}"));
    /// ```
    pub fn on_websocket_ping(&mut self, callback: impl Fn(&TcpConnection, &[u8]) + 'static) {
        *self.shared.callbacks.on_websocket_ping.borrow_mut() = Some(Rc::new(callback));
    }

    /// `ws://`: called with each pong's payload from the server (Workerman's `onWebSocketPong`):
    /// the answers to `set_websocket_ping_interval`'s pings or a sent
    /// [`Ping`](crate::protocols::websocket::Ping).
    ///
    /// ```
    /// # let mut upstream = workerman::connection::AsyncTcpConnection::new("ws://127.0.0.1:8000/");
    /// upstream.on_websocket_pong(|_connection, payload| println!("pong {payload:?}"));
    /// ```
    pub fn on_websocket_pong(&mut self, callback: impl Fn(&TcpConnection, &[u8]) + 'static) {
        *self.shared.callbacks.on_websocket_pong.borrow_mut() = Some(Rc::new(callback));
    }

    /// `ws://`: called when the server sends a close frame, with its code and reason.
    ///
    /// ```no_run
    /// # let mut upstream = workerman::connection::AsyncTcpConnection::new("ws://127.0.0.1:8000/");
    /// upstream.on_websocket_close(|_connection, code, reason| println!("closed: {code} {reason}"));
    /// ```
    pub fn on_websocket_close(&mut self, callback: impl Fn(&TcpConnection, u16, &str) + 'static) {
        *self.shared.callbacks.on_websocket_close.borrow_mut() = Some(Rc::new(callback));
    }

    /// `ws://`: sends a ping every `seconds` once connected (Workerman's
    /// `websocketPingInterval`); 0 turns it off.
    ///
    /// ```
    /// # let mut upstream = workerman::connection::AsyncTcpConnection::new("ws://127.0.0.1:8000/");
    /// upstream.set_websocket_ping_interval(25.0);
    /// ```
    pub fn set_websocket_ping_interval(&mut self, seconds: f64) {
        let interval = (seconds.is_finite() && seconds > 0.0).then_some(seconds);
        self.client().websocket_ping_interval.set(interval);
    }

    /// `ws://`: sends text and bytes as binary frames instead of text frames (Workerman's
    /// `websocketType = BINARY_TYPE_ARRAYBUFFER`).
    ///
    /// ```
    /// # let mut upstream = workerman::connection::AsyncTcpConnection::new("ws://127.0.0.1:8000/");
    /// upstream.set_websocket_type(workerman::protocols::websocket::WebSocketType::Binary);
    /// ```
    pub fn set_websocket_type(
        &mut self,
        websocket_type: crate::protocols::websocket::WebSocketType,
    ) {
        self.client()
            .websocket_binary
            .set(websocket_type == crate::protocols::websocket::WebSocketType::Binary);
    }

    /// `ws://`: offers permessage-deflate (RFC 7692) in the upgrade request, without context
    /// takeover either way (see [`Worker::set_websocket_deflate`](crate::Worker::set_websocket_deflate));
    /// the server may decline. Off by default; needs the `deflate` feature (on by default).
    ///
    /// ```
    /// # let mut upstream = workerman::connection::AsyncTcpConnection::new("ws://127.0.0.1:8000/");
    /// upstream.set_websocket_deflate(true);
    /// ```
    pub fn set_websocket_deflate(&mut self, enabled: bool) {
        self.shared.websocket_deflate.set(enabled);
    }

    /// `ws://`: adds a header to the upgrade request (Workerman's `$connection->headers`), e.g.
    /// `Sec-WebSocket-Protocol` or a cookie. Returns `false` (adding nothing) when the name is not
    /// a token or the value holds CR, LF or NUL.
    ///
    /// ```
    /// # let mut upstream = workerman::connection::AsyncTcpConnection::new("ws://127.0.0.1:8000/");
    /// assert!(upstream.add_websocket_header("Sec-WebSocket-Protocol", "chat"));
    /// assert!(!upstream.add_websocket_header("Bad\r\nName", "x"));
    /// ```
    pub fn add_websocket_header(&mut self, name: &str, value: &str) -> bool {
        if !crate::protocols::websocket::valid_extra_header(name, value) {
            return false;
        }
        let mut headers = self.client().websocket_headers.borrow_mut();
        for part in [name.as_bytes(), b": ", value.as_bytes(), b"\r\n"] {
            headers.extend_from_slice(part);
        }
        true
    }
}

impl TcpConnection {
    /// On a connection made by an [`AsyncTcpConnection`]: connect again after `seconds` (see
    /// [`AsyncTcpConnection::reconnect`]); typically called in `on_close` or `on_error`. Does
    /// nothing (but log a warning) on a connection a worker accepted.
    ///
    /// ```no_run
    /// # let mut upstream = workerman::connection::AsyncTcpConnection::new("tcp://127.0.0.1:9000");
    /// upstream.on_close(|connection| {
    ///     connection.reconnect(2.0);
    /// });
    /// ```
    pub fn reconnect(&self, seconds: f64) {
        match self.client() {
            Some(client) => client.reconnect(seconds),
            None => log::warn!(
                "reconnect() on connection {}, which no AsyncTcpConnection made: ignored",
                self.id()
            ),
        }
    }

    /// The [`AsyncTcpConnection`] that made this connection, if one did.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// if let Some(client) = connection.client() {
    ///     client.cancel_reconnect();
    /// }
    /// # }
    /// ```
    pub fn client(&self) -> Option<AsyncTcpConnection> {
        let shared = table::try_with(|table| {
            table
                .connections
                .get(self.key())
                .filter(|connection| connection.id == self.id())
                .map(|connection| connection.worker.clone())
        })
        .flatten()?;
        AsyncTcpConnection::from_shared(shared)
    }
}

/// Splits `host:port` (`[v6]:port` too); `default_port` when there is no port.
fn split_host_port(authority: &str, default_port: Option<u16>) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(port) => port.parse().ok()?,
        None => default_port?,
    };
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

/// The reactor was woken: start connecting the clients whose names were resolved.
pub(crate) fn on_resolved() {
    let resolved = with(|table| table.resolutions.take());
    for (key, id, result) in resolved {
        start_connecting(&TcpConnection::new(key, id), result);
    }
}

/// Opens the socket and starts a non-blocking connect to the first address.
fn start_connecting(handle: &TcpConnection, addresses: io::Result<Vec<SocketAddr>>) {
    let started = with(|table| {
        let connection = table.connection(handle)?;
        if connection.status != TcpConnection::STATUS_CONNECTING {
            return None;
        }
        let outcome = addresses.and_then(|addresses| {
            let address = addresses
                .into_iter()
                .next()
                .ok_or_else(|| io::Error::other("the name resolved to no address"))?;
            let mut stream = mio::net::TcpStream::connect(address)?;
            table.poll.registry().register(
                &mut stream,
                Token(handle.key()),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok((stream, address))
        });
        let connection = table.connection_mut(handle)?;
        Some(match outcome {
            Ok((stream, address)) => {
                connection.stream = Some(Stream::Tcp(stream));
                connection.remote_address = address;
                // The transport: a layer (TLS) between this socket and the codec, if any.
                prepare_tls(&connection.worker).and_then(|()| connection.attach_transport())
            }
            Err(error) => Err(error),
        })
    });
    if let Some(Err(error)) = started {
        connect_failed(handle, &error.to_string());
    }
}

/// With TLS on and no layer factory yet, reads the context's files and makes one (kept for
/// reconnects). The server name is `peer_name`, else the address's host.
fn prepare_tls(shared: &WorkerShared) -> io::Result<()> {
    let Some(client) = shared.client.as_ref() else {
        return Ok(());
    };
    let Some(context) = client.ssl.borrow().clone() else {
        return Ok(());
    };
    if shared.layer.borrow().is_some() {
        return Ok(());
    }
    // wss:// speaks HTTP/1.1 in its upgrade: offer it by ALPN; raw ssl:// offers nothing.
    let alpn: &[&[u8]] = match client.websocket_target {
        Some(_) => &[b"http/1.1"],
        None => &[],
    };
    let config = context.client_config(alpn)?;
    let host = if client.unix_path.is_some() {
        "localhost"
    } else {
        client.host.as_str()
    };
    let name = context.client_server_name(host).to_owned();
    shared
        .layer
        .replace(Some(super::tls::client_layer_factory(config, name)));
    Ok(())
}

/// Starts a non-blocking connect to a Unix socket (which usually completes, or fails, at once).
fn start_connecting_unix(handle: &TcpConnection, path: &std::path::Path) {
    let outcome = with(|table| {
        let mut stream = Stream::Unix(mio::net::UnixStream::connect(path)?);
        table.poll.registry().register(
            &mut stream,
            Token(handle.key()),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        if let Some(connection) = table.connection_mut(handle) {
            connection.stream = Some(stream);
            prepare_tls(&connection.worker)?;
            connection.attach_transport()?;
        }
        Ok::<(), io::Error>(())
    });
    if let Err(error) = outcome {
        connect_failed(handle, &error.to_string());
    }
}

/// The first event on a connecting socket: connected, failed, or (rarely) not yet.
pub(crate) fn on_connect_event(handle: &TcpConnection) {
    let outcome = with(|table| {
        let stream = table.connection(handle)?.stream.as_ref()?;
        match stream.take_error() {
            Ok(Some(error)) | Err(error) => return Some(Err(error)),
            Ok(None) => {}
        }
        match stream.is_connected() {
            Ok(true) => Some(Ok(())),
            Ok(false) => None,
            Err(error) => Some(Err(error)),
        }
    });
    match outcome {
        None => {}
        Some(Ok(())) => connected(handle),
        Some(Err(error)) => connect_failed(handle, &error.to_string()),
    }
}

/// The connect deadline passed.
pub(crate) fn on_connect_timeout(handle: &TcpConnection) {
    connect_failed(handle, "timed out");
}

fn connected(handle: &TcpConnection) {
    let (websocket, callback) = match with(|table| {
        let now = table.now;
        let connection = table.connection_mut(handle)?;
        connection.status = TcpConnection::STATUS_ESTABLISHED;
        if let Some(stream) = &connection.stream {
            if let Err(error) = stream.set_nodelay() {
                log::debug!("TCP_NODELAY on a client connection: {error}");
            }
        }
        let worker = connection.worker.clone();
        let request = connection
            .websocket
            .as_deref_mut()
            .map(websocket_client::take_request);
        // The connect timeout ends; a WebSocket handshake answer gets the head timeout.
        let deadline = request
            .is_some()
            .then(|| now + worker.http_settings.get().request_head_timeout);
        table.set_deadline(handle.key(), deadline);
        // The TLS handshake has its own deadline from here (see `on_handshake_deadline`).
        if connection_io::has_layer(table, handle) {
            let timeout = handshake_timeout(&worker);
            table.set_deadline(handle.key(), Some(now + timeout));
            connection_io::mark_handshake_deadline(table, handle);
        }
        // A TLS client speaks first (its ClientHello), even with nothing queued.
        let queued = table
            .connection(handle)
            .is_some_and(|connection| connection.pending_send() > 0 || connection.layer.is_some());
        let actions = queued.then(|| output::flush(table, handle.key()));
        let callback = worker.callbacks.on_connect.borrow().clone();
        Some(((request, actions), callback))
    }) {
        Some(found) => found,
        None => return,
    };
    let (request, actions) = websocket;
    if let Some(request) = request.flatten() {
        output::send_raw(handle, &request);
    }
    if let Some(actions) = actions {
        output::run_actions(handle, actions);
    }
    if let Some(callback) = callback {
        if call_user(&|| output::describe(handle, "on_connect"), || {
            callback(handle)
        })
        .is_none()
        {
            output::destroy(handle);
        }
    }
}

/// How long a client's TLS handshake may take from the TCP connect: the server side's 10 s, or
/// the connect timeout if that is shorter.
fn handshake_timeout(shared: &WorkerShared) -> Duration {
    let connect_timeout = shared
        .client
        .as_ref()
        .and_then(|client| client.connect_timeout.get());
    connect_timeout.map_or(TLS_HANDSHAKE_TIMEOUT, |timeout| {
        timeout.min(TLS_HANDSHAKE_TIMEOUT)
    })
}

/// A client connection's deadline passed while it was its TLS handshake's. False: not a TLS
/// client's handshake deadline (the caller goes on). True: handled; still handshaking, the
/// connect failed (`on_error(CONNECT_FAIL, "TLS handshake with host:port timed out after N
/// seconds")`, then `on_close`); done, a `wss://` upgrade answer still awaited gets the rest
/// of the head timeout (counted from the TCP connect).
pub(crate) fn on_handshake_deadline(handle: &TcpConnection) -> bool {
    let outcome = with(|table| {
        let now = table.now;
        let connection = table.connection_mut(handle)?;
        connection.worker.client.as_ref()?;
        let layered = connection.layer.as_mut()?;
        if !std::mem::take(&mut layered.handshake_deadline) {
            return None;
        }
        let worker = connection.worker.clone();
        let timeout = handshake_timeout(&worker);
        if super::transport::is_handshaking(connection.layer.as_deref()) {
            return Some(Some(timeout));
        }
        let awaiting_upgrade =
            (connection.websocket.as_deref()).is_some_and(|websocket| websocket.in_handshake());
        let rest = awaiting_upgrade.then(|| {
            let head_timeout = worker.http_settings.get().request_head_timeout;
            now + head_timeout.saturating_sub(timeout)
        });
        table.set_deadline(handle.key(), rest);
        Some(None)
    });
    match outcome {
        None => false,
        Some(None) => true,
        Some(Some(timeout)) => {
            handshake_failed(handle, timeout);
            true
        }
    }
}

/// The TLS handshake did not finish in time: reported as a connect failure.
fn handshake_failed(handle: &TcpConnection, timeout: Duration) {
    let Some(worker) = with(|table| {
        table
            .connection(handle)
            .map(|connection| connection.worker.clone())
    }) else {
        return;
    };
    let message = format!(
        "TLS handshake with {} timed out after {} seconds",
        describe_target(&worker),
        timeout.as_secs_f64()
    );
    log::debug!("{message}");
    output::fire_error(handle, TcpConnection::CONNECT_FAIL, &message);
    output::destroy(handle);
}

fn describe_target(worker: &WorkerShared) -> String {
    worker
        .client
        .as_ref()
        .map_or_else(String::new, |client| match &client.unix_path {
            Some(path) => format!("unix://{}", path.display()),
            None => format_target(&client.host, client.port),
        })
}

/// Connecting failed: `on_error(CONNECT_FAIL, "connect host:port fail after N seconds: why")`,
/// then the connection is destroyed (`on_close`).
pub(crate) fn connect_failed(handle: &TcpConnection, why: &str) {
    let Some(worker) = with(|table| {
        table
            .connection(handle)
            .map(|connection| connection.worker.clone())
    }) else {
        return;
    };
    let elapsed = worker
        .client
        .as_ref()
        .and_then(|client| client.connect_started.get())
        .map_or(0.0, |started| started.elapsed().as_secs_f64());
    let target = describe_target(&worker);
    let message = format!("connect {target} fail after {elapsed:.4} seconds: {why}");
    log::debug!("{message}");
    output::fire_error(handle, TcpConnection::CONNECT_FAIL, &message);
    output::destroy(handle);
}

fn format_target(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl Connection {
    /// A client connection's slot before its socket exists: `STATUS_CONNECTING`, no stream.
    pub(crate) fn connecting(id: u64, worker: Rc<WorkerShared>) -> Connection {
        let mut connection = Connection::detached(id, UNSPECIFIED_ADDRESS, worker);
        connection.status = TcpConnection::STATUS_CONNECTING;
        connection
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port() {
        assert_eq!(
            split_host_port("127.0.0.1:80", None),
            Some(("127.0.0.1".into(), 80))
        );
        assert_eq!(
            split_host_port("example.com", Some(80)),
            Some(("example.com".into(), 80))
        );
        assert_eq!(split_host_port("example.com", None), None);
        assert_eq!(
            split_host_port("[::1]:9000", None),
            Some(("::1".into(), 9000))
        );
        assert_eq!(split_host_port("[::1]", Some(80)), Some(("::1".into(), 80)));
        assert_eq!(split_host_port("host:notaport", None), None);
        assert_eq!(split_host_port(":80", None), None);
    }

    #[test]
    fn websocket_targets() {
        let client = AsyncTcpConnection::new("ws://example.com:8000/chat?room=1");
        let state = client.client();
        assert_eq!((state.host.as_str(), state.port), ("example.com", 8000));
        assert_eq!(
            state.websocket_target,
            Some(("/chat?room=1".into(), "example.com:8000".into()))
        );
        let client = AsyncTcpConnection::new("ws://example.com");
        let state = client.client();
        assert_eq!(state.port, 80);
        assert_eq!(
            state.websocket_target,
            Some(("/".into(), "example.com".into()))
        );
        let client = AsyncTcpConnection::new("text://127.0.0.1:9000");
        assert_eq!(client.client().websocket_target, None);
    }

    #[test]
    #[should_panic(expected = "unsupported scheme")]
    fn http_scheme_is_refused() {
        AsyncTcpConnection::new("http://127.0.0.1:80");
    }

    #[test]
    fn sends_before_connect_are_queued_within_the_limit() {
        let mut client = AsyncTcpConnection::new("tcp://127.0.0.1:9");
        client.set_max_send_buffer_size(10);
        assert_eq!(client.send("12345"), SendResult::Queued);
        assert_eq!(client.send("12345"), SendResult::Queued);
        assert_eq!(client.send("1"), SendResult::Refused);
        client.close();
        assert_eq!(client.status(), TcpConnection::STATUS_CLOSED);
        assert_eq!(client.send("1"), SendResult::Refused);
    }
}
