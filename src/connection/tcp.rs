//! `TcpConnection`'s methods: what user code does with a connection (send, close, addresses,
//! context, pause), each a call into the driver (`connection::io`) or a read of its state.

use std::any::Any;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::output;
use super::table;
use super::timer_queue::{TimerCallback, TimerId};
use super::{SendResult, TcpConnection};
use crate::protocols::Outbound;

impl TcpConnection {
    /// Not connected yet.
    ///
    /// ```
    /// use workerman::{AsyncTcpConnection, TcpConnection};
    /// let upstream = AsyncTcpConnection::new("tcp://127.0.0.1:9000");
    /// assert_eq!(upstream.status(), TcpConnection::STATUS_INITIAL); // connect() not called yet
    /// ```
    pub const STATUS_INITIAL: u8 = 0;
    /// A client connection that is connecting.
    ///
    /// ```no_run
    /// # use workerman::TcpConnection;
    /// # fn f(upstream: &workerman::AsyncTcpConnection) {
    /// if upstream.status() == TcpConnection::STATUS_CONNECTING {
    ///     println!("still connecting; sends are queued until it is up");
    /// }
    /// # }
    /// ```
    pub const STATUS_CONNECTING: u8 = 1;
    /// Open: messages flow both ways.
    ///
    /// ```no_run
    /// # use workerman::TcpConnection;
    /// # fn f(connection: &TcpConnection) {
    /// if connection.status() == TcpConnection::STATUS_ESTABLISHED {
    ///     connection.send("still there");
    /// }
    /// # }
    /// ```
    pub const STATUS_ESTABLISHED: u8 = 2;
    /// `end()` was called: flushing, then FIN.
    ///
    /// ```no_run
    /// # use workerman::TcpConnection;
    /// # fn f(connection: &TcpConnection) {
    /// connection.send("bye\n");
    /// connection.end();
    /// assert!(connection.status() >= TcpConnection::STATUS_ENDING);
    /// # }
    /// ```
    pub const STATUS_ENDING: u8 = 4;
    /// `close()` was called: flushing, then close.
    ///
    /// ```no_run
    /// # use workerman::TcpConnection;
    /// # fn f(connection: &TcpConnection) {
    /// connection.close();
    /// // Flushing what was queued, or already closed:
    /// assert!(connection.status() >= TcpConnection::STATUS_CLOSING);
    /// # }
    /// ```
    pub const STATUS_CLOSING: u8 = 8;
    /// Closed; a handle in this state stays in it.
    ///
    /// ```no_run
    /// # use workerman::TcpConnection;
    /// # fn f(connection: &TcpConnection) {
    /// if connection.status() == TcpConnection::STATUS_CLOSED {
    ///     println!("connection {} is gone", connection.id());
    /// }
    /// # }
    /// ```
    pub const STATUS_CLOSED: u8 = 16;
    /// `on_error` code: a client connection could not connect.
    ///
    /// ```no_run
    /// use workerman::{AsyncTcpConnection, TcpConnection};
    /// let mut upstream = AsyncTcpConnection::new("tcp://127.0.0.1:6379");
    /// upstream.on_error(|_connection, code, message| {
    ///     if code == TcpConnection::CONNECT_FAIL {
    ///         eprintln!("could not connect: {message}");
    ///     }
    /// });
    /// upstream.connect();
    /// ```
    pub const CONNECT_FAIL: i32 = 1;
    /// `on_error` code: data could not be sent (peer gone, or send buffer full).
    ///
    /// ```no_run
    /// use workerman::{TcpConnection, Worker};
    /// let mut worker = Worker::new("tcp://127.0.0.1:0");
    /// worker.on_error(|connection, code, message| {
    ///     if code == TcpConnection::SEND_FAIL {
    ///         eprintln!("connection {}: {message}", connection.id());
    ///     }
    /// });
    /// ```
    pub const SEND_FAIL: i32 = 2;
    /// Default [`max_send_buffer_size`](Self::max_send_buffer_size): 1 MiB.
    ///
    /// ```no_run
    /// # use workerman::TcpConnection;
    /// # fn f(connection: &TcpConnection) {
    /// // A connection that streams large files gets four times the default.
    /// connection.set_max_send_buffer_size(4 * TcpConnection::DEFAULT_MAX_SEND_BUFFER_SIZE);
    /// # }
    /// ```
    pub const DEFAULT_MAX_SEND_BUFFER_SIZE: usize = 1024 * 1024;
    /// Default [`max_package_size`](Self::max_package_size): 10 MiB.
    ///
    /// ```no_run
    /// # use workerman::TcpConnection;
    /// # fn f(connection: &TcpConnection) {
    /// // This client only ever sends short commands.
    /// connection.set_max_package_size(TcpConnection::DEFAULT_MAX_PACKAGE_SIZE / 1024);
    /// # }
    /// ```
    pub const DEFAULT_MAX_PACKAGE_SIZE: usize = 10 * 1024 * 1024;

    pub(crate) fn new(key: usize, id: u64) -> TcpConnection {
        TcpConnection {
            key: key as u32,
            id,
            _not_send: PhantomData,
        }
    }

    pub(crate) fn key(&self) -> usize {
        self.key as usize
    }

    /// The connection's id: unique within this worker thread, counting from 1.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// println!("connection #{}", connection.id());
    /// # }
    /// ```
    pub fn id(&self) -> u64 {
        self.id
    }

    /// One of the `STATUS_*` constants.
    ///
    /// ```no_run
    /// # use workerman::TcpConnection;
    /// # fn f(connection: &TcpConnection) {
    /// if connection.status() != TcpConnection::STATUS_ESTABLISHED {
    ///     return;
    /// }
    /// # }
    /// ```
    pub fn status(&self) -> u8 {
        self.read(|connection| connection.status)
            .unwrap_or(Self::STATUS_CLOSED)
    }

    /// Sends data, encoded by the connection's protocol: written to the kernel now if nothing is
    /// queued, else queued.
    ///
    /// Refused when the connection is ending, closing or closed, or when its queue already holds
    /// `max_send_buffer_size` bytes (then `on_error` gets [`SEND_FAIL`](Self::SEND_FAIL)). Reaching
    /// the limit fires `on_buffer_full`; emptying a queue fires `on_buffer_drain`. While pipelined
    /// input is being dispatched, sends are gathered and written together after it (`Queued`).
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// use workerman::SendResult;
    /// match connection.send("hello") {
    ///     SendResult::Written | SendResult::Queued => {}
    ///     SendResult::Refused => println!("dropped"),
    /// }
    /// # }
    /// ```
    pub fn send<'a>(&self, data: impl Into<Outbound<'a>>) -> SendResult {
        output::send(self, data.into())
    }

    /// Sends `bytes` as they are, with no encoding by the protocol (Workerman's
    /// `send($data, true)`): for a pre-encoded frame, or a protocol's bytes written by hand.
    /// Queued, limited and reported as [`send`](Self::send). To send the same bytes to many
    /// connections, share them: `send(&SharedMessage::raw(..))`
    /// ([`SharedMessage`](crate::protocols::SharedMessage)).
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// // A WebSocket ping written by hand, as Workerman's manual does it.
    /// connection.send_raw(b"\x89\x00");
    /// # }
    /// ```
    pub fn send_raw(&self, bytes: impl AsRef<[u8]>) -> SendResult {
        output::send(
            self,
            Outbound::Raw(std::borrow::Cow::Borrowed(bytes.as_ref())),
        )
    }

    /// Sends a typed message through the connection's custom protocol's
    /// [`Encode::encode_message`](crate::protocols::Encode::encode_message) (Workerman's
    /// `send(array(..))` on a JSON protocol). Refused (and logged) when the protocol sends no
    /// typed messages or takes another type.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// connection.send_message(serde_json::json!({"type": "message", "content": "hello"}));
    /// # }
    /// ```
    pub fn send_message<T: 'static>(&self, message: T) -> SendResult {
        output::send_message(self, Box::new(message), std::any::type_name::<T>())
    }

    /// Closes after flushing what is queued; with nothing queued, `on_close` runs before this
    /// returns. Reading stops at once.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// connection.close();
    /// # }
    /// ```
    pub fn close(&self) {
        output::close(self)
    }

    /// Sends `data`, then closes once it is flushed (Workerman's `close($data)`).
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// connection.close_with("bye");
    /// # }
    /// ```
    pub fn close_with<'a>(&self, data: impl Into<Outbound<'a>>) {
        self.send(data);
        self.close();
    }

    /// Stops delivering messages, flushes, sends FIN, and closes when the peer closes too (or
    /// after a one-second linger). HTTP error answers use this.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// connection.send("last words");
    /// connection.end();
    /// # }
    /// ```
    pub fn end(&self) {
        output::end(self)
    }

    /// Closes now, dropping whatever is queued; `on_close` runs before this returns.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// connection.destroy();
    /// # }
    /// ```
    pub fn destroy(&self) {
        output::destroy(self)
    }

    /// The peer's address: for a `udp://` peer, the address its datagrams come from and replies
    /// go to. `0.0.0.0:0` for a `unix://` connection (a Unix socket's peer has no IP address)
    /// and once the connection is gone; Workerman returns `''` there.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// println!("{} connected", connection.remote_address());
    /// # }
    /// ```
    pub fn remote_address(&self) -> SocketAddr {
        self.read(|connection| connection.remote_address)
            .unwrap_or(UNKNOWN_ADDRESS)
    }

    /// How this connection's bytes travel: `"tcp"`, `"unix"` or `"udp"` (Workerman's
    /// `$connection->transport`); `"tcp"` once the connection is gone.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// if connection.transport() == "unix" {
    ///     println!("a local client (no IP address)");
    /// }
    /// # }
    /// ```
    pub fn transport(&self) -> &'static str {
        self.read(|connection| connection.worker.transport.get().name())
            .unwrap_or("tcp")
    }

    /// The peer's IP address.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// println!("from {}", connection.remote_ip());
    /// # }
    /// ```
    pub fn remote_ip(&self) -> IpAddr {
        self.remote_address().ip()
    }

    /// The peer's port.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// println!("port {}", connection.remote_port());
    /// # }
    /// ```
    pub fn remote_port(&self) -> u16 {
        self.remote_address().port()
    }

    /// Our end's address: for a `udp://` peer, the worker's bound address; `0.0.0.0:0` for a
    /// `unix://` connection and once the connection is gone.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// println!("accepted on {}", connection.local_address());
    /// # }
    /// ```
    pub fn local_address(&self) -> SocketAddr {
        self.read(|connection| {
            connection
                .stream
                .as_ref()
                .and_then(|stream| stream.local_addr())
                .or_else(|| connection.worker.local_address.get())
        })
        .flatten()
        .unwrap_or(UNKNOWN_ADDRESS)
    }

    /// Our end's IP address.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// println!("{}", connection.local_ip());
    /// # }
    /// ```
    pub fn local_ip(&self) -> IpAddr {
        self.local_address().ip()
    }

    /// Our end's port.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// println!("{}", connection.local_port());
    /// # }
    /// ```
    pub fn local_port(&self) -> u16 {
        self.local_address().port()
    }

    /// Stops reading from the socket until [`resume_recv`](Self::resume_recv).
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// connection.pause_recv();
    /// # }
    /// ```
    pub fn pause_recv(&self) {
        self.write(|connection| connection.recv_paused = true);
    }

    /// Reads again: what arrived meanwhile is delivered in this turn of the event loop.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// connection.resume_recv();
    /// # }
    /// ```
    pub fn resume_recv(&self) {
        let queued = self.write(|connection| {
            let was_paused = std::mem::replace(&mut connection.recv_paused, false);
            was_paused && connection.status == Self::STATUS_ESTABLISHED
        });
        if queued == Some(true) {
            table::with(|table| table.ready.push_back((self.key(), self.id)));
        }
    }

    /// Forwards everything this connection receives to `destination`, closes `destination` when
    /// this one closes, and pauses reading here while `destination`'s send buffer is full
    /// (Workerman's `pipe`).
    ///
    /// `destination` is a [`TcpConnection`] or an
    /// [`AsyncTcpConnection`](crate::AsyncTcpConnection), connected or not (what arrives before
    /// it is connected is queued, as its `send` does).
    ///
    /// ```no_run
    /// # fn f(client: &workerman::TcpConnection, upstream: &workerman::TcpConnection) {
    /// client.pipe(upstream);
    /// upstream.pipe(client);
    /// # }
    /// ```
    pub fn pipe(&self, destination: &impl super::PipeTarget) {
        let destination = destination.pipe_destination();
        destination.throttle(self);
        self.write(move |connection| connection.extras().pipe_to = Some(destination));
    }

    /// Makes `source` the connection whose reading this one's full send buffer pauses.
    pub(crate) fn set_pipe_from(&self, source: TcpConnection) {
        self.write(move |connection| connection.extras().pipe_from = Some(source));
    }

    /// Calls `callback` every `seconds` seconds for as long as this connection is open: the timer
    /// is deleted when the connection closes, so a forgotten `Timer::del` cannot leak it. The
    /// callback gets the connection; [`Timer::del`](crate::Timer::del) also stops it early.
    ///
    /// Returns `None` (and schedules nothing) if the connection is already closed.
    ///
    /// # Panics
    /// If `seconds` is negative or not finite.
    ///
    /// ```no_run
    /// use workerman::protocols::http::ServerSentEvents;
    /// # fn f(connection: &workerman::TcpConnection) {
    /// connection.add_timer(2.0, |connection, _timer_id| {
    ///     connection.send(ServerSentEvents::new().data("tick"));
    /// });
    /// # }
    /// ```
    pub fn add_timer(
        &self,
        seconds: f64,
        mut callback: impl FnMut(&TcpConnection, TimerId) + 'static,
    ) -> Option<TimerId> {
        if self.status() == Self::STATUS_CLOSED {
            return None;
        }
        let connection = self.clone();
        let timer = table::add_timer(
            "Timer::add",
            seconds,
            TimerCallback::Repeat(Box::new(move |timer_id| callback(&connection, timer_id))),
        );
        let kept = table::with(|table| {
            let table::Table {
                connections,
                timers,
                ..
            } = table;
            let state = connections
                .get_mut(self.key())
                .filter(|state| state.id == self.id)?;
            // Forget timers deleted meanwhile, so a long-lived connection's list stays short.
            let owned = &mut state.extras().timers;
            owned.retain(|&id| timers.is_live(id));
            owned.push(timer);
            Some(())
        });
        if kept.is_none() {
            table::delete_timer(timer);
            return None;
        }
        Some(timer)
    }

    /// Stores a value of any type with the connection (Workerman's `$connection->context`),
    /// replacing what was there.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// struct Session { user: String }
    /// connection.set_context(Session { user: "ada".into() });
    /// let user = connection.with_context(|session: &mut Session| session.user.clone());
    /// assert_eq!(user.as_deref(), Some("ada"));
    /// # }
    /// ```
    pub fn set_context<T: 'static>(&self, value: T) {
        self.write(move |connection| connection.extras().context = Some(Box::new(value)));
    }

    /// Runs `f` on the context if one of type `T` is set; `None` otherwise (or when closed).
    ///
    /// The context is taken out while `f` runs, so `f` may use this connection freely.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// connection.set_context(0u32);
    /// connection.with_context(|count: &mut u32| *count += 1);
    /// # }
    /// ```
    pub fn with_context<T: 'static, R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut context: Box<dyn Any> = self.write(|connection| {
            connection
                .extras
                .as_mut()
                .and_then(|extras| extras.context.take())
        })??;
        let result = context.downcast_mut::<T>().map(f);
        self.write(|connection| {
            let extras = connection.extras();
            if extras.context.is_none() {
                extras.context = Some(context);
            }
        });
        result
    }

    /// Removes and returns the context if it is a `T`.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// connection.set_context(String::from("x"));
    /// assert_eq!(connection.take_context::<String>().as_deref(), Some("x"));
    /// # }
    /// ```
    pub fn take_context<T: 'static>(&self) -> Option<T> {
        self.write(|connection| {
            let extras = connection.extras.as_mut()?;
            if extras.context.as_ref()?.is::<T>() {
                let context = extras.context.take()?;
                context.downcast::<T>().ok().map(|boxed| *boxed)
            } else {
                None
            }
        })?
    }

    /// The most bytes `send` queues before it refuses (default 1 MiB).
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// connection.set_max_send_buffer_size(64 * 1024);
    /// assert_eq!(connection.max_send_buffer_size(), 64 * 1024);
    /// # }
    /// ```
    pub fn set_max_send_buffer_size(&self, bytes: usize) {
        self.write(|connection| connection.max_send_buffer_size = bytes);
    }

    /// See [`set_max_send_buffer_size`](Self::set_max_send_buffer_size); 0 once closed.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// // Stop reading from this client while its replies pile up past half the limit.
    /// if connection.send_buffer_queue_size() > connection.max_send_buffer_size() / 2 {
    ///     connection.pause_recv();
    /// }
    /// # }
    /// ```
    pub fn max_send_buffer_size(&self) -> usize {
        self.read(|connection| connection.max_send_buffer_size)
            .unwrap_or(0)
    }

    /// The largest package the protocol accepts (default 10 MiB); a larger one closes the
    /// connection (HTTP answers 413).
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// connection.set_max_package_size(1024 * 1024);
    /// # }
    /// ```
    pub fn set_max_package_size(&self, bytes: usize) {
        self.write(|connection| connection.max_package_size = bytes);
    }

    /// See [`set_max_package_size`](Self::set_max_package_size); 0 once closed.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// println!("packages up to {} bytes", connection.max_package_size());
    /// # }
    /// ```
    pub fn max_package_size(&self) -> usize {
        self.read(|connection| connection.max_package_size)
            .unwrap_or(0)
    }

    /// Bytes queued for the kernel (Workerman's `getSendBufferQueueSize`).
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// println!("{} bytes waiting", connection.send_buffer_queue_size());
    /// # }
    /// ```
    pub fn send_buffer_queue_size(&self) -> usize {
        self.read(|connection| connection.pending_send())
            .unwrap_or(0)
    }

    /// Bytes received but not yet a whole package.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// println!("{} bytes buffered", connection.recv_buffer_queue_size());
    /// # }
    /// ```
    pub fn recv_buffer_queue_size(&self) -> usize {
        self.read(|connection| connection.recv_buffer.len())
            .unwrap_or(0)
    }

    /// Bytes read from the socket so far.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// println!("{} in, {} out", connection.bytes_read(), connection.bytes_written());
    /// # }
    /// ```
    pub fn bytes_read(&self) -> u64 {
        self.read(|connection| connection.bytes_read).unwrap_or(0)
    }

    /// Bytes written to the socket so far.
    ///
    /// ```no_run
    /// # fn f(connection: &workerman::TcpConnection) {
    /// let queued = connection.send_buffer_queue_size();
    /// println!("{} bytes sent, {queued} more queued", connection.bytes_written());
    /// # }
    /// ```
    pub fn bytes_written(&self) -> u64 {
        self.read(|connection| connection.bytes_written)
            .unwrap_or(0)
    }

    fn read<R>(&self, f: impl FnOnce(&super::Connection) -> R) -> Option<R> {
        table::try_with(|table| table.connection(self).map(f)).flatten()
    }

    fn write<R>(&self, f: impl FnOnce(&mut super::Connection) -> R) -> Option<R> {
        table::try_with(|table| table.connection_mut(self).map(f)).flatten()
    }
}

const UNKNOWN_ADDRESS: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
