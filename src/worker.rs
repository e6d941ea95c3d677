//! `Worker`: a listening socket, its protocol, its callbacks, and how it runs.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

mod spawn_blocking;

use crate::connection::SslContext;
use crate::connection::TcpConnection;
use crate::connection::TcpKeepalive;
use crate::connection::WorkerShared;
use crate::connection::stream::{BoundSocket, ListenOptions, Transport};
use crate::connection::transport::LayerFactory;
use crate::metrics::statistics::Statistics;
use crate::protocols::http::{Request, SessionConfig};
use crate::protocols::{Protocol, ProtocolKind};
use crate::reactor::{self, Started, Stopper};

type WorkerCallback = Rc<dyn Fn(&Worker)>;
type WorkerExitCallback = Rc<dyn Fn(&Worker, i32, i32)>;

thread_local! {
    /// Every worker created on this thread and not yet run: `Worker::run_all` runs them.
    static CREATED: RefCell<Vec<Worker>> = const { RefCell::new(Vec::new()) };
}

/// Every worker created on this thread and not yet run, taken (for `Worker::run_all`, in
/// `src/process/mod.rs`).
pub(crate) fn take_created() -> Vec<Worker> {
    CREATED.with(|created| std::mem::take(&mut *created.borrow_mut()))
}

/// Set by `Worker::set_metrics_listen` (`src/metrics/endpoint.rs`): on a `Worker::spawn`
/// thread, before its reactor starts, adds the metrics endpoint worker (`Ok(true)` when it did).
static METRICS_ON_SPAWN: std::sync::OnceLock<fn(&Worker) -> io::Result<bool>> =
    std::sync::OnceLock::new();

/// Makes every later `Worker::spawn` call `add` first (the metrics endpoint's own worker).
pub(crate) fn set_metrics_on_spawn(add: fn(&Worker) -> io::Result<bool>) {
    let _ = METRICS_ON_SPAWN.set(add);
}

/// `workers` as a reactor runs them: their shared parts, and their `on_worker_start` and
/// `on_worker_stop` (a panic in one is caught, logged and counted).
pub(crate) fn for_reactor(workers: Vec<Worker>) -> reactor::Run {
    let shared = workers.iter().map(|worker| worker.shared.clone()).collect();
    let workers = Rc::new(workers);
    let stopping = workers.clone();
    reactor::Run {
        workers: shared,
        on_start: Box::new(move || {
            for worker in workers.iter() {
                let callback = worker.lifecycle.on_worker_start.borrow().clone();
                if let Some(callback) = callback {
                    let name = worker.name();
                    reactor::call_user(&|| format!("on_worker_start of worker {name}"), || {
                        callback(worker)
                    });
                }
            }
        }),
        on_stop: Box::new(move || {
            for worker in stopping.iter() {
                let callback = worker.lifecycle.on_worker_stop.borrow().clone();
                if let Some(callback) = callback {
                    let name = worker.name();
                    reactor::call_user(&|| format!("on_worker_stop of worker {name}"), || {
                        callback(worker)
                    });
                }
            }
        }),
    }
}

/// The worker's own callbacks (its connections' are in [`WorkerShared`]'s).
#[derive(Default)]
pub(crate) struct WorkerCallbacks {
    pub(crate) on_worker_start: RefCell<Option<WorkerCallback>>,
    pub(crate) on_worker_stop: RefCell<Option<WorkerCallback>>,
    pub(crate) on_worker_reload: RefCell<Option<WorkerCallback>>,
    /// Runs in the master when one of this worker's processes ended.
    pub(crate) on_worker_exit: RefCell<Option<WorkerExitCallback>>,
}

impl WorkerShared {
    /// Binds the listen socket: non-blocking, `SO_REUSEADDR` (and `SO_REUSEPORT` when asked),
    /// Workerman's backlog; a `unix` path's stale socket file is removed first. In a worker
    /// process, the listener the master bound (inherited through `fork`) is taken instead.
    pub(crate) fn bind(&self) -> io::Result<BoundSocket> {
        if self.layer.borrow().is_none() {
            self.load_tls()?;
        }
        if let Some(listener) = self.prebound.borrow_mut().take() {
            return Ok(listener);
        }
        let transport = self.transport.get();
        // SO_REUSEPORT means nothing for a Unix socket: the file is the one address.
        let options = ListenOptions {
            reuse_port: self.reuse_port.get() && transport != Transport::Unix,
            ..self.listen_options.get()
        };
        BoundSocket::bind(transport, &self.listen, options).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot listen on {}: {error}", self.address),
            )
        })
    }

    /// With TLS on, reads the context's files and makes the layer factory: in the master at
    /// `start`, before anything listens (an error is `start`'s end), and in a process without a
    /// master (`Worker::spawn`, a single-process run) when it binds. Worker processes inherit
    /// the master's configuration through `fork`; the master reads the files again on `reload`
    /// ([`reload_tls`](Self::reload_tls)).
    pub(crate) fn load_tls(&self) -> io::Result<()> {
        let Some(context) = self.ssl.borrow().clone() else {
            return Ok(());
        };
        let config = context.server_config().map_err(|error| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: {error}", self.address),
            )
        })?;
        self.layer
            .replace(Some(crate::connection::tls::server_layer_factory(config)));
        Ok(())
    }

    /// On `reload`, in the master: reads the certificate files again so the workers forked next
    /// serve the rotated certificate. When they no longer load (a half-written file, a key that
    /// does not match), the configuration last loaded stays (as nginx keeps its old workers on
    /// a bad `-s reload`) and the one-line error, naming the file, is returned for the log: the
    /// port is never left without a certificate.
    pub(crate) fn reload_tls(&self) -> Result<(), String> {
        if self.ssl.borrow().is_none() {
            return Ok(());
        }
        let had_one = self.layer.borrow().is_some();
        match self.load_tls() {
            Ok(()) => Ok(()),
            Err(error) if had_one => Err(format!(
                "{error} (still serving the certificate loaded before)"
            )),
            Err(error) => Err(error.to_string()),
        }
    }

    /// Whether the master binds this worker's socket before forking (else each process binds
    /// its own with `SO_REUSEPORT`). A Unix socket is always bound by the master.
    pub(crate) fn binds_in_master(&self) -> bool {
        !self.reuse_port.get() || self.transport.get() == Transport::Unix
    }
}

/// A listening socket and what to do with its connections (Workerman's `Worker`).
///
/// The address's scheme picks the protocol: `tcp://`, `text://`, `frame://`, `http://` or
/// `websocket://` (`Worker::with_protocol` takes a custom one); or the transport: `udp://` (each
/// datagram a message) and `unix://` (a Unix socket path, bytes as `tcp://`).
/// [`set_transport`](Self::set_transport) puts a protocol on `unix` or `udp`. Callbacks are
/// closures; they run on the worker's thread and need not be `Send`. `Worker` is a cheap handle:
/// clone it into a callback to reach its connections later.
///
/// ```no_run
/// use workerman::{TcpConnection, Worker};
///
/// let mut worker = Worker::new("text://0.0.0.0:8000");
/// worker.set_name("echo");
/// worker.on_connect(|connection: &TcpConnection| {
///     println!("{} joined", connection.remote_address());
/// });
/// worker.on_message(|connection: &TcpConnection, line: String| {
///     connection.send(line);
/// });
/// Worker::run_all();
/// ```
#[derive(Clone)]
pub struct Worker {
    shared: Rc<WorkerShared>,
    lifecycle: Rc<WorkerCallbacks>,
}

impl Worker {
    /// A worker listening on `address` (`scheme://host:port`, or `unix:///path/to.sock`).
    ///
    /// `udp://host:port` makes a datagram worker: `on_message` gets each datagram as a `Vec<u8>`
    /// and `connection.send` answers its sender (see [`TcpConnection`] for what a UDP peer's
    /// handle does). `unix:///path` listens on a Unix socket: a stale socket file there is
    /// removed first, and the file is removed when the worker stops.
    ///
    /// # Panics
    /// If the address has no `scheme://`, or the scheme is not one of `tcp`, `udp`, `unix`,
    /// `text`, `frame`, `http`, `websocket` (as Workerman throws on an unknown protocol).
    ///
    /// ```no_run
    /// use workerman::{TcpConnection, Worker};
    ///
    /// let web = Worker::new("http://0.0.0.0:8080");
    /// let local = Worker::new("unix:///tmp/app.sock");
    /// let mut echo = Worker::new("udp://0.0.0.0:9000");
    /// echo.on_message(|connection: &TcpConnection, datagram: Vec<u8>| {
    ///     connection.send(datagram);
    /// });
    /// Worker::run_all();
    /// ```
    pub fn new(address: &str) -> Worker {
        let (scheme, listen) = split_address(address);
        let (scheme, tls) = match scheme.to_ascii_lowercase().as_str() {
            "https" => ("http", true),
            "wss" => ("websocket", true),
            _ => (scheme, false),
        };
        let transport = Transport::from_name(scheme);
        let protocol = match transport {
            Some(_) => Some(ProtocolKind::Raw),
            None => ProtocolKind::from_scheme(scheme),
        };
        let protocol = protocol.unwrap_or_else(|| {
            panic!(
                "Worker::new({address:?}): unknown scheme {scheme}://; use tcp, udp, unix, text, \
                 frame, http or websocket, or Worker::with_protocol for a custom protocol"
            )
        });
        let worker = Worker::create(
            address,
            listen,
            transport.unwrap_or(Transport::Tcp),
            protocol,
        );
        if tls {
            worker.shared.ssl.replace(Some(SslContext::new()));
        }
        worker
    }

    /// A worker that listens on nothing (Workerman's `new Worker()`): a process for timers and
    /// client connections ([`AsyncTcpConnection`](crate::connection::AsyncTcpConnection)), set
    /// up in `on_worker_start`.
    ///
    /// ```no_run
    /// use workerman::connection::AsyncTcpConnection;
    /// use workerman::Worker;
    ///
    /// let mut worker = Worker::without_listener();
    /// worker.on_worker_start(|_| {
    ///     let upstream = AsyncTcpConnection::new("text://127.0.0.1:9000");
    ///     upstream.send("hello");
    ///     upstream.connect();
    /// });
    /// Worker::run_all();
    /// ```
    pub fn without_listener() -> Worker {
        Worker::create("", "", Transport::Tcp, ProtocolKind::Raw)
    }

    /// Whether this worker has a socket to listen on (see [`without_listener`](Self::without_listener)).
    pub(crate) fn listens(&self) -> bool {
        !self.shared.listen.is_empty()
    }

    /// A worker speaking a custom [`Protocol`] (Workerman's custom protocol classes);
    /// `on_message` then receives `P::Message`. The scheme picks the transport: `udp://` (each
    /// datagram holds whole packages), `unix://`, and `tcp://` for any other scheme.
    ///
    /// ```no_run
    /// use workerman::protocols::Text;
    /// let worker = workerman::Worker::with_protocol("tcp://0.0.0.0:8000", Text);
    /// let lines_over_udp = workerman::Worker::with_protocol("udp://0.0.0.0:9000", Text);
    /// ```
    pub fn with_protocol<P: Protocol>(address: &str, protocol: P) -> Worker {
        let (scheme, listen) = split_address(address);
        let transport = Transport::from_name(scheme).unwrap_or(Transport::Tcp);
        Worker::create(
            address,
            listen,
            transport,
            ProtocolKind::Custom(Rc::new(protocol)),
        )
    }

    fn create(address: &str, listen: &str, transport: Transport, protocol: ProtocolKind) -> Worker {
        let worker = Worker {
            shared: Rc::new(WorkerShared::new(address, listen, transport, protocol)),
            lifecycle: Rc::default(),
        };
        CREATED.with(|created| created.borrow_mut().push(worker.clone()));
        worker
    }

    pub(crate) fn shared(&self) -> &Rc<WorkerShared> {
        &self.shared
    }

    /// The worker's own callbacks (`on_worker_start`, `on_worker_stop`, ...).
    pub(crate) fn lifecycle(&self) -> &WorkerCallbacks {
        &self.lifecycle
    }

    /// Builds workers on a new thread and runs them there: the way to run a server inside a test
    /// or another program. `build` creates the workers (it runs on the new thread, so its
    /// closures need not be `Send`) and returns the one whose address
    /// [`RunningWorker::local_address`] reports. Listen on port 0 to get a free port.
    ///
    /// ```no_run
    /// use workerman::{TcpConnection, Worker};
    ///
    /// let server = Worker::spawn(|| {
    ///     let mut worker = Worker::new("text://127.0.0.1:0");
    ///     worker.on_message(|connection: &TcpConnection, line: String| {
    ///         connection.send(line);
    ///     });
    ///     worker
    /// })
    /// .expect("listen");
    /// println!("echoing on {}", server.local_address());
    /// server.stop();
    /// ```
    pub fn spawn<F>(build: F) -> io::Result<RunningWorker>
    where
        F: FnOnce() -> Worker + Send + 'static,
    {
        let (started_sender, started) = mpsc::channel();
        let (index_sender, index_receiver) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("workerman-worker".to_owned())
            .spawn(move || {
                let main = build();
                // The metrics endpoint, when set, is one more worker on this thread.
                let metrics = METRICS_ON_SPAWN.get().is_some_and(|add| {
                    add(&main).unwrap_or_else(|error| {
                        log::error!("workerman: metrics: {error}");
                        false
                    })
                });
                let workers = CREATED.with(|created| std::mem::take(&mut *created.borrow_mut()));
                let index = workers
                    .iter()
                    .position(|worker| Rc::ptr_eq(&worker.shared, &main.shared))
                    .unwrap_or(0);
                let metrics_index = metrics.then(|| workers.len() - 1);
                let _ = index_sender.send((index, metrics_index));
                drop(main);
                if let Err(error) = reactor::run(for_reactor(workers), Some(started_sender)) {
                    log::error!("workerman: {error}");
                }
            })?;
        let (index, metrics_index) = index_receiver
            .recv()
            .map_err(|_| io::Error::other("the worker's build closure panicked"))?;
        let Started { addresses, stopper } = started
            .recv()
            .map_err(|_| io::Error::other("the worker thread ended before listening"))??;
        let local_address = addresses
            .get(index)
            .copied()
            .ok_or_else(|| io::Error::other("the build closure created no worker"))?;
        Ok(RunningWorker {
            local_address,
            metrics_address: metrics_index.and_then(|index| addresses.get(index).copied()),
            addresses,
            stopper,
            thread: Some(thread),
        })
    }

    /// The counters of the worker running on this thread (zeros when none runs here).
    ///
    /// ```no_run
    /// println!("{:?}", workerman::Worker::statistics());
    /// ```
    pub fn statistics() -> Statistics {
        reactor::try_with(|reactor| reactor.statistics).unwrap_or_default()
    }

    /// Stops the workers running on this thread: `on_worker_stop`, stop listening, close every
    /// connection (Workerman's `Worker::stopAll()`).
    ///
    /// ```no_run
    /// workerman::Worker::stop_all();
    /// ```
    pub fn stop_all() {
        reactor::try_with(|reactor| {
            reactor
                .stop
                .store(true, std::sync::atomic::Ordering::SeqCst)
        });
    }

    /// This worker's open connections, in this process.
    ///
    /// ```no_run
    /// # fn f(worker: &workerman::Worker) {
    /// for connection in worker.connections() {
    ///     connection.send("broadcast");
    /// }
    /// # }
    /// ```
    pub fn connections(&self) -> Vec<TcpConnection> {
        reactor::try_with(|reactor| {
            reactor
                .connections
                .iter()
                .filter(|(_, connection)| {
                    Rc::ptr_eq(&connection.worker, &self.shared)
                        && connection.status == TcpConnection::STATUS_ESTABLISHED
                })
                .map(|(key, connection)| TcpConnection::new(key, connection.id))
                .collect()
        })
        .unwrap_or_default()
    }

    /// The address the worker listens on once running (with the real port when it asked for 0).
    ///
    /// ```no_run
    /// # fn f(worker: &workerman::Worker) {
    /// println!("{:?}", worker.local_address());
    /// # }
    /// ```
    pub fn local_address(&self) -> Option<SocketAddr> {
        self.shared.local_address.get()
    }

    /// The worker's name (default `"none"`).
    ///
    /// ```
    /// # let worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// assert_eq!(worker.name(), "none");
    /// ```
    pub fn name(&self) -> String {
        self.shared.name.borrow().clone()
    }

    /// Sets the name shown in logs and `status` (Workerman's `$worker->name`).
    ///
    /// ```
    /// # let mut worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// worker.set_name("chat");
    /// assert_eq!(worker.name(), "chat");
    /// ```
    pub fn set_name(&mut self, name: impl Into<String>) {
        *self.shared.name.borrow_mut() = name.into();
    }

    /// How many processes run this worker (Workerman's `$worker->count`, default 1).
    ///
    /// ```
    /// # let mut worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// worker.set_count(4);
    /// assert_eq!(worker.count(), 4);
    /// ```
    pub fn count(&self) -> usize {
        self.shared.count.get()
    }

    /// Sets [`count`](Self::count): [`Worker::run_all`] forks that many processes (ids 0 to
    /// count - 1); [`Worker::spawn`] ignores it.
    ///
    /// ```
    /// let mut worker = workerman::Worker::new("http://127.0.0.1:0");
    /// worker.set_count(0); // at least one process runs
    /// assert_eq!(worker.count(), 1);
    /// ```
    pub fn set_count(&mut self, count: usize) {
        self.shared.count.set(count.max(1));
    }

    /// Whether each process binds its own socket with `SO_REUSEPORT` (Workerman's `reusePort`).
    ///
    /// ```
    /// # let mut worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// worker.set_reuse_port(true);
    /// assert!(worker.reuse_port());
    /// ```
    pub fn reuse_port(&self) -> bool {
        self.shared.reuse_port.get()
    }

    /// Sets [`reuse_port`](Self::reuse_port). A `unix` worker ignores it: its master always
    /// binds the one socket file its processes share.
    ///
    /// ```
    /// // Four processes, each accepting on its own socket: the kernel spreads the connections.
    /// let mut worker = workerman::Worker::new("http://127.0.0.1:0");
    /// worker.set_count(4);
    /// worker.set_reuse_port(true);
    /// assert!(worker.reuse_port());
    /// ```
    pub fn set_reuse_port(&mut self, reuse_port: bool) {
        self.shared.reuse_port.set(reuse_port);
    }

    /// TCP keepalive on the connections this worker accepts: on by default with Workerman's
    /// timing ([`TcpKeepalive::default`]: 55 s idle, 55 s between probes, one probe), so a
    /// peer that vanished without a FIN is closed (with its `on_close`, timers and context) after
    /// about 110 s; `None` turns it off. Set it before the worker runs.
    ///
    /// ```
    /// use std::time::Duration;
    /// use workerman::connection::TcpKeepalive;
    /// let mut worker = workerman::Worker::new("websocket://127.0.0.1:0");
    /// worker.set_tcp_keepalive(Some(TcpKeepalive {
    ///     idle: Duration::from_secs(30),
    ///     interval: Duration::from_secs(10),
    ///     count: 3,
    /// }));
    /// assert_eq!(worker.tcp_keepalive().unwrap().count, 3);
    /// ```
    pub fn set_tcp_keepalive(&mut self, keepalive: Option<TcpKeepalive>) {
        self.update_listen_options(|options| options.keepalive = keepalive);
    }

    /// See [`set_tcp_keepalive`](Self::set_tcp_keepalive).
    ///
    /// ```
    /// use workerman::connection::TcpKeepalive;
    /// let worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// assert_eq!(worker.tcp_keepalive(), Some(TcpKeepalive::default()));
    /// ```
    pub fn tcp_keepalive(&self) -> Option<TcpKeepalive> {
        self.shared.listen_options.get().keepalive
    }

    /// The listen backlog (Workerman's context `socket.backlog`; default 102400, which the kernel
    /// caps at `net.core.somaxconn`). Set it before the worker runs.
    ///
    /// ```
    /// let mut worker = workerman::Worker::new("http://127.0.0.1:0");
    /// worker.set_backlog(1024);
    /// assert_eq!(worker.backlog(), 1024);
    /// ```
    pub fn set_backlog(&mut self, backlog: u32) {
        let backlog = i32::try_from(backlog.max(1)).unwrap_or(i32::MAX);
        self.update_listen_options(|options| options.backlog = backlog);
    }

    /// See [`set_backlog`](Self::set_backlog).
    ///
    /// ```
    /// let worker = workerman::Worker::new("http://127.0.0.1:0");
    /// assert_eq!(worker.backlog(), 102400); // Workerman's default
    /// ```
    pub fn backlog(&self) -> u32 {
        self.shared.listen_options.get().backlog as u32
    }

    /// `IPV6_V6ONLY` on an IPv6 listen address (Workerman's context `socket.ipv6_v6only`):
    /// `true` takes IPv6 only, `false` IPv4 too on `[::]`; unset, the system's default
    /// (`net.ipv6.bindv6only`). Ignored for IPv4 addresses. Set it before the worker runs.
    ///
    /// ```
    /// let mut worker = workerman::Worker::new("http://[::]:0");
    /// worker.set_ipv6_v6only(true);
    /// assert_eq!(worker.ipv6_v6only(), Some(true));
    /// ```
    pub fn set_ipv6_v6only(&mut self, only: bool) {
        self.update_listen_options(|options| options.ipv6_v6only = Some(only));
    }

    /// See [`set_ipv6_v6only`](Self::set_ipv6_v6only); `None` when unset.
    ///
    /// ```
    /// let worker = workerman::Worker::new("http://[::]:0");
    /// assert_eq!(worker.ipv6_v6only(), None); // the system's default applies
    /// ```
    pub fn ipv6_v6only(&self) -> Option<bool> {
        self.shared.listen_options.get().ipv6_v6only
    }

    fn update_listen_options(&mut self, change: impl FnOnce(&mut ListenOptions)) {
        let mut options = self.shared.listen_options.get();
        change(&mut options);
        self.shared.listen_options.set(options);
    }

    /// How the worker's sockets carry bytes: `"tcp"`, `"udp"` or `"unix"` (Workerman's
    /// `$worker->transport`), from the address's scheme unless set.
    ///
    /// ```
    /// # use workerman::Worker;
    /// assert_eq!(Worker::new("http://127.0.0.1:0").transport(), "tcp");
    /// assert_eq!(Worker::new("udp://127.0.0.1:0").transport(), "udp");
    /// ```
    pub fn transport(&self) -> &'static str {
        match self.shared.transport.get() {
            Transport::Tcp if self.shared.ssl.borrow().is_some() => "ssl",
            transport => transport.name(),
        }
    }

    /// Puts the address's protocol on another transport, as Workerman's `$worker->transport =
    /// 'unix'`: `Worker::new("http:///tmp/app.sock")` with `"unix"` serves HTTP on a Unix socket,
    /// `Worker::new("text://0.0.0.0:9000")` with `"udp"` takes lines in datagrams (each datagram
    /// holds whole lines; a rest without `\n` is dropped). Set it before the worker runs.
    ///
    /// # Panics
    /// If `transport` is not `tcp`, `udp` or `unix`, or for `udp` with `http://` or
    /// `websocket://` (both need a stream).
    ///
    /// ```
    /// # use workerman::Worker;
    /// let mut worker = Worker::new("http:///tmp/app.sock");
    /// worker.set_transport("unix");
    /// assert_eq!(worker.transport(), "unix");
    /// ```
    pub fn set_transport(&mut self, transport: &str) {
        if transport.eq_ignore_ascii_case("ssl") {
            if self.shared.transport.get() == Transport::Udp {
                panic!(
                    "Worker::set_transport(\"ssl\") on {}: TLS needs a stream (tcp or unix)",
                    self.shared.address
                );
            }
            let context = self.shared.ssl.borrow().clone().unwrap_or_default();
            self.shared.ssl.replace(Some(context));
            return;
        }
        let Some(transport) = Transport::from_name(transport) else {
            panic!(
                "Worker::set_transport({transport:?}) on {}: use tcp, udp, unix or ssl",
                self.shared.address
            );
        };
        if transport == Transport::Udp
            && matches!(
                *self.shared.protocol.borrow(),
                ProtocolKind::Http | ProtocolKind::WebSocket
            )
        {
            panic!(
                "Worker::set_transport(\"udp\") on {}: http and websocket need a stream \
                 (tcp or unix)",
                self.shared.address
            );
        }
        self.shared.transport.set(transport);
    }

    /// The `ssl` context of a TLS worker (Workerman's `new Worker($address, ['ssl' => [..]])`):
    /// `local_cert`, `local_pk`, `verify_peer`, `cafile`, SNI certificates. TLS is on with
    /// `set_transport("ssl")` or an `https://` / `wss://` address; the files are read when the
    /// worker starts, before it listens (an error stops `start`, naming the file), and again in
    /// every worker process started by a reload.
    ///
    /// ```no_run
    /// use workerman::connection::SslContext;
    /// use workerman::Worker;
    ///
    /// let mut worker = Worker::new("websocket://0.0.0.0:443");
    /// worker.set_transport("ssl");
    /// worker.set_ssl_context(
    ///     SslContext::new()
    ///         .local_cert("/etc/ssl/example.com.pem")
    ///         .local_pk("/etc/ssl/example.com.key"),
    /// );
    /// Worker::run_all();
    /// ```
    pub fn set_ssl_context(&mut self, context: SslContext) {
        self.shared.ssl.replace(Some(context));
    }

    /// Puts a layer (TLS) between each accepted socket and the codec; see
    /// `connection::transport`.
    #[allow(dead_code)] // the seam's tests use it
    pub(crate) fn set_transport_layer(&mut self, factory: LayerFactory) {
        self.shared.layer.replace(Some(factory));
    }

    /// The user the worker processes run as (Workerman's `$worker->user`; empty: unchanged).
    ///
    /// ```
    /// # let mut worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// worker.set_user("www-data");
    /// assert_eq!(worker.user(), "www-data");
    /// ```
    pub fn user(&self) -> String {
        self.shared.user.borrow().clone()
    }

    /// Sets [`user`](Self::user).
    ///
    /// ```
    /// // Started as root, the worker processes drop to an unprivileged user.
    /// let mut worker = workerman::Worker::new("http://127.0.0.1:0");
    /// worker.set_user("nobody");
    /// assert_eq!(worker.user(), "nobody");
    /// ```
    pub fn set_user(&mut self, user: impl Into<String>) {
        *self.shared.user.borrow_mut() = user.into();
    }

    /// This process's index among the worker's `count` processes, from 0.
    ///
    /// ```
    /// # let worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// assert_eq!(worker.id(), 0);
    /// ```
    pub fn id(&self) -> usize {
        self.shared.id.get()
    }

    /// The send buffer limit new connections start with (default 1 MiB).
    ///
    /// ```
    /// # let mut worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// worker.set_max_send_buffer_size(256 * 1024);
    /// ```
    pub fn set_max_send_buffer_size(&mut self, bytes: usize) {
        self.shared.max_send_buffer_size.set(bytes);
    }

    /// The most connections this worker holds at once in each process (default: no limit).
    ///
    /// A connection beyond it is accepted and closed at once, so the client learns right away
    /// instead of waiting in the listen backlog (an `http://` worker answers it `503` first).
    ///
    /// A `udp://` worker always has a limit on its peers (default 10,000), so a flood from
    /// spoofed addresses cannot grow its memory: a new address beyond it ends the peer idle
    /// the longest (its `on_close` runs) to make room.
    ///
    /// ```
    /// # let mut worker = workerman::Worker::new("http://127.0.0.1:0");
    /// worker.set_max_connections(10_000);
    /// ```
    pub fn set_max_connections(&mut self, limit: usize) {
        self.shared.max_connections.set(limit);
    }

    /// The package size limit new connections start with (default 10 MiB).
    ///
    /// ```
    /// # let mut worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// worker.set_max_package_size(1024 * 1024);
    /// ```
    pub fn set_max_package_size(&mut self, bytes: usize) {
        self.shared.max_package_size.set(bytes);
    }

    /// `http://` only: how long a connection may take to send a whole request head, counted from
    /// its first byte (or from the connect); default 30 s. Slow-header attacks end here.
    ///
    /// ```
    /// # let mut worker = workerman::Worker::new("http://127.0.0.1:0");
    /// worker.set_request_head_timeout(std::time::Duration::from_secs(10));
    /// ```
    pub fn set_request_head_timeout(&mut self, timeout: Duration) {
        let mut settings = self.shared.http_settings.get();
        settings.request_head_timeout = timeout;
        self.shared.http_settings.set(settings);
    }

    /// `http://` only: how long a request body may take to arrive whole, counted from the end
    /// of its head; default 60 s. A body slower than that is answered `408 Request Timeout` and
    /// the connection ends.
    ///
    /// ```
    /// # let mut worker = workerman::Worker::new("http://127.0.0.1:0");
    /// worker.set_request_body_timeout(std::time::Duration::from_secs(300)); // big uploads
    /// ```
    pub fn set_request_body_timeout(&mut self, timeout: Duration) {
        let mut settings = self.shared.http_settings.get();
        settings.request_body_timeout = timeout;
        self.shared.http_settings.set(settings);
    }

    /// `http://` only: a `multipart/form-data` body with a Content-Length over this is not
    /// buffered but streamed, its files to temporary files (see `UploadedFile::tmp_name`);
    /// default 1 MiB. Smaller bodies are buffered, files in memory.
    ///
    /// ```
    /// # let mut worker = workerman::Worker::new("http://127.0.0.1:0");
    /// worker.set_upload_threshold(256 * 1024);
    /// ```
    pub fn set_upload_threshold(&mut self, bytes: usize) {
        let (_, max) = self.shared.upload_limits.get();
        self.shared.upload_limits.set((bytes, max));
    }

    /// `http://` only: the largest streamed multipart body, answered `413` beyond (default
    /// 100 MiB, at most 4 GiB). It may exceed `max_package_size`, which bounds every other
    /// request, and a streamed body's plain fields.
    ///
    /// ```
    /// # let mut worker = workerman::Worker::new("http://127.0.0.1:0");
    /// worker.set_max_upload_size(2 * 1024 * 1024 * 1024);
    /// ```
    pub fn set_max_upload_size(&mut self, bytes: usize) {
        let (threshold, _) = self.shared.upload_limits.get();
        self.shared.upload_limits.set((threshold, bytes));
    }

    /// `http://` only: where streamed uploads are written (default the system's temporary
    /// directory, like PHP's `upload_tmp_dir`).
    ///
    /// ```
    /// # let mut worker = workerman::Worker::new("http://127.0.0.1:0");
    /// worker.set_upload_directory("/var/tmp/uploads");
    /// ```
    pub fn set_upload_directory(&mut self, directory: impl Into<std::path::PathBuf>) {
        *self.shared.upload_directory.borrow_mut() = directory.into();
    }

    /// `http://` only: where and how `request.session()` keeps sessions (Workerman's `Session`
    /// settings and `Session::handlerClass()`). Without it, sessions are files in the system's
    /// temporary directory, under Workerman's defaults.
    ///
    /// ```
    /// use workerman::protocols::http::{FileSessionHandler, SessionConfig};
    /// # let mut worker = workerman::Worker::new("http://127.0.0.1:0");
    /// let handler = FileSessionHandler::new(std::env::temp_dir().join("my-app-sessions"))?;
    /// worker.set_session(SessionConfig::new(handler).name("APPSID"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_session(&mut self, config: SessionConfig) {
        (self.shared.session_reads_later).set(config.handler.completes_later());
        *self.shared.session.borrow_mut() = Some(Rc::new(config));
    }

    /// How long an idle keep-alive connection is kept on `http://`, and an idle peer on `udp://`
    /// (a peer that sends nothing for this long is closed, and its handle with it); default 60 s.
    ///
    /// ```
    /// # let mut worker = workerman::Worker::new("http://127.0.0.1:0");
    /// worker.set_keep_alive_timeout(std::time::Duration::from_secs(5));
    /// ```
    pub fn set_keep_alive_timeout(&mut self, timeout: Duration) {
        let mut settings = self.shared.http_settings.get();
        settings.keep_alive_timeout = timeout;
        self.shared.http_settings.set(settings);
    }

    /// Called once the worker runs, before it accepts a connection (Workerman's `onWorkerStart`).
    ///
    /// ```no_run
    /// # let mut worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// worker.on_worker_start(|worker| println!("worker {} started", worker.id()));
    /// ```
    pub fn on_worker_start(&mut self, callback: impl Fn(&Worker) + 'static) {
        *self.lifecycle.on_worker_start.borrow_mut() = Some(Rc::new(callback));
    }

    /// Called when the worker stops, before its connections are closed.
    ///
    /// ```no_run
    /// # let mut worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// worker.on_worker_stop(|_worker| println!("bye"));
    /// ```
    pub fn on_worker_stop(&mut self, callback: impl Fn(&Worker) + 'static) {
        *self.lifecycle.on_worker_stop.borrow_mut() = Some(Rc::new(callback));
    }

    /// The group the worker processes run as (Workerman's `$worker->group`; empty: the
    /// [`user`](Self::user)'s primary group, or unchanged without a user). Needs root.
    ///
    /// ```
    /// # let mut worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// worker.set_group("www-data");
    /// assert_eq!(worker.group(), "www-data");
    /// ```
    pub fn set_group(&mut self, group: impl Into<String>) {
        *self.shared.group.borrow_mut() = group.into();
    }

    /// See [`set_group`](Self::set_group).
    ///
    /// ```
    /// let worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// assert_eq!(worker.group(), ""); // unset: the user's primary group
    /// ```
    pub fn group(&self) -> String {
        self.shared.group.borrow().clone()
    }

    /// Whether `reload` replaces this worker's processes (Workerman's `$worker->reloadable`,
    /// default `true`). `false`: a reload only runs [`on_worker_reload`](Self::on_worker_reload)
    /// in them, and they keep running (and their connections).
    ///
    /// ```
    /// # let mut worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// worker.set_reloadable(false);
    /// assert!(!worker.reloadable());
    /// ```
    pub fn set_reloadable(&mut self, reloadable: bool) {
        self.shared.reloadable.set(reloadable);
    }

    /// See [`set_reloadable`](Self::set_reloadable).
    ///
    /// ```
    /// let worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// assert!(worker.reloadable()); // replaced on reload by default
    /// ```
    pub fn reloadable(&self) -> bool {
        self.shared.reloadable.get()
    }

    /// Called in the master each time one of this worker's processes ends (Workerman's
    /// `onWorkerExit($worker, $status, $pid)`), with the raw wait status (`waitpid`'s: an exit
    /// code `N` is `N << 8`, a signal its number) and the pid, before it is re-forked.
    ///
    /// ```no_run
    /// # let mut worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// worker.on_worker_exit(|worker, status, pid| {
    ///     workerman::Worker::log(format!("{} process {pid} ended: status {status}", worker.name()));
    /// });
    /// ```
    pub fn on_worker_exit(&mut self, callback: impl Fn(&Worker, i32, i32) + 'static) {
        *self.lifecycle.on_worker_exit.borrow_mut() = Some(Rc::new(callback));
    }

    /// Called in a worker process on `reload` (SIGUSR1 or SIGUSR2), before it stops and the
    /// master forks its replacement (Workerman's `onWorkerReload`); a worker that is not
    /// [`reloadable`](Self::set_reloadable) only runs this.
    ///
    /// ```no_run
    /// # let mut worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// worker.on_worker_reload(|worker| println!("worker {} reloading", worker.id()));
    /// ```
    pub fn on_worker_reload(&mut self, callback: impl Fn(&Worker) + 'static) {
        *self.lifecycle.on_worker_reload.borrow_mut() = Some(Rc::new(callback));
    }

    /// Called for each new connection; on `udp://`, for each new peer, when its first datagram
    /// arrives and before `on_message` (Workerman calls it for no UDP datagram).
    ///
    /// ```no_run
    /// # let mut worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// worker.on_connect(|connection| println!("{} connected", connection.remote_address()));
    /// ```
    pub fn on_connect(&mut self, callback: impl Fn(&TcpConnection) + 'static) {
        *self.shared.callbacks.on_connect.borrow_mut() = Some(Rc::new(callback));
    }

    /// Called for each whole message; its type is the protocol's (see
    /// [`protocols`](crate::protocols)): `Request` for `http://`, `String` for `text://`,
    /// `Vec<u8>` for `frame://`, `tcp://`, `unix://` and `udp://` (one datagram, possibly empty);
    /// for `websocket://`, `String` (text messages), `Vec<u8>` (any message's bytes) or
    /// [`websocket::Message`](crate::protocols::websocket::Message).
    ///
    /// # Panics
    /// If `M` is not what this worker's protocol delivers (caught here, not at the first message).
    ///
    /// ```no_run
    /// # let mut worker = workerman::Worker::new("text://127.0.0.1:0");
    /// worker.on_message(|connection, line: String| {
    ///     connection.send(line.to_uppercase());
    /// });
    /// ```
    pub fn on_message<M: 'static>(&mut self, callback: impl Fn(&TcpConnection, M) + 'static) {
        self.shared.set_on_message(callback);
    }

    /// Called once per connection when it closes, whoever closed it; on `udp://`, when a peer
    /// ends: `close()`, idle for the keep-alive timeout, evicted at the peer limit, or the worker
    /// stopped (Workerman has no UDP `onClose`).
    ///
    /// ```no_run
    /// # let mut worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// worker.on_close(|connection| println!("{} left", connection.id()));
    /// ```
    pub fn on_close(&mut self, callback: impl Fn(&TcpConnection) + 'static) {
        *self.shared.callbacks.on_close.borrow_mut() = Some(Rc::new(callback));
    }

    /// Called with [`TcpConnection::SEND_FAIL`] (and a message) when data could not be sent.
    ///
    /// ```no_run
    /// # let mut worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// worker.on_error(|connection, code, message| {
    ///     eprintln!("connection {}: error {code}: {message}", connection.id());
    /// });
    /// ```
    pub fn on_error(&mut self, callback: impl Fn(&TcpConnection, i32, &str) + 'static) {
        *self.shared.callbacks.on_error.borrow_mut() = Some(Rc::new(callback));
    }

    /// Called when a connection's send buffer reaches its limit: stop sending to it.
    ///
    /// ```no_run
    /// # let mut worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// worker.on_buffer_full(|connection| println!("{} is slow", connection.id()));
    /// ```
    pub fn on_buffer_full(&mut self, callback: impl Fn(&TcpConnection) + 'static) {
        *self.shared.callbacks.on_buffer_full.borrow_mut() = Some(Rc::new(callback));
    }

    /// Called when a connection's queued bytes have all been written: sending may resume.
    ///
    /// ```no_run
    /// # let mut worker = workerman::Worker::new("tcp://127.0.0.1:0");
    /// worker.on_buffer_drain(|connection| println!("{} caught up", connection.id()));
    /// ```
    pub fn on_buffer_drain(&mut self, callback: impl Fn(&TcpConnection) + 'static) {
        *self.shared.callbacks.on_buffer_drain.borrow_mut() = Some(Rc::new(callback));
    }

    /// `websocket://`: called with the upgrade request once it is valid, before the `101` answer
    /// (Workerman's `onWebSocketConnect`). To refuse, close the connection here:
    /// `connection.close()` drops it unanswered, `connection.close_with(Response::new(403, ..))`
    /// answers with that response instead of the 101. Messages sent here are queued and follow
    /// the 101; [`TcpConnection::add_websocket_header`] adds a header to it.
    ///
    /// ```no_run
    /// use workerman::protocols::http::Response;
    /// # let mut worker = workerman::Worker::new("websocket://127.0.0.1:0");
    /// worker.on_websocket_connect(|connection, request| {
    ///     if request.header("origin") != Some("https://example.com") {
    ///         connection.close_with(Response::new(403, [("Content-Type", "text/plain")], "no"));
    ///     }
    /// });
    /// ```
    pub fn on_websocket_connect(&mut self, callback: impl Fn(&TcpConnection, &Request) + 'static) {
        *self.shared.callbacks.on_websocket_connect.borrow_mut() = Some(Rc::new(callback));
    }

    /// `websocket://`: called right after the `101` answer went out (Workerman's
    /// `onWebSocketConnected`), with the upgrade request.
    ///
    /// ```no_run
    /// # let mut worker = workerman::Worker::new("websocket://127.0.0.1:0");
    /// worker.on_websocket_connected(|connection, request| {
    ///     connection.send(format!("welcome to {}", request.path()));
    /// });
    /// ```
    pub fn on_websocket_connected(
        &mut self,
        callback: impl Fn(&TcpConnection, &Request) + 'static,
    ) {
        *self.shared.callbacks.on_websocket_connected.borrow_mut() = Some(Rc::new(callback));
    }

    /// `websocket://`: accept permessage-deflate (RFC 7692) when a client offers it, as every
    /// browser does (Workerman's `websocketType = BINARY_TYPE_BLOB_DEFLATE`). Off by default.
    ///
    /// Each message is compressed on its own (no context takeover either way), by one compressor
    /// per worker process shared by all connections, so a connection costs no extra memory;
    /// messages under 64 bytes, and those that do not shrink, go out as they are. A compressed
    /// message from a client is limited to `max_package_size` once inflated (close 1009 beyond).
    /// Needs the `deflate` feature (on by default).
    ///
    /// ```no_run
    /// let mut worker = workerman::Worker::new("websocket://0.0.0.0:8000");
    /// worker.set_websocket_deflate(true);
    /// ```
    pub fn set_websocket_deflate(&mut self, enabled: bool) {
        self.shared.websocket_deflate.set(enabled);
    }

    /// `websocket://`: called with each ping's payload. The pong is sent anyway, after it
    /// (Workerman sends none when `onWebSocketPing` is set; RFC 6455 requires one).
    ///
    /// ```no_run
    /// # let mut worker = workerman::Worker::new("websocket://127.0.0.1:0");
    /// worker.on_websocket_ping(|connection, _payload| {
    ///     connection.set_context(std::time::Instant::now());
    /// });
    /// ```
    pub fn on_websocket_ping(&mut self, callback: impl Fn(&TcpConnection, &[u8]) + 'static) {
        *self.shared.callbacks.on_websocket_ping.borrow_mut() = Some(Rc::new(callback));
    }

    /// `websocket://`: called with each pong's payload (Workerman's `onWebSocketPong`): the
    /// answer to a [`Ping`](crate::protocols::websocket::Ping) sent, or a heartbeat's.
    ///
    /// ```no_run
    /// # let mut worker = workerman::Worker::new("websocket://127.0.0.1:0");
    /// worker.on_websocket_pong(|connection, payload| println!("{} pong {payload:?}", connection.id()));
    /// ```
    pub fn on_websocket_pong(&mut self, callback: impl Fn(&TcpConnection, &[u8]) + 'static) {
        *self.shared.callbacks.on_websocket_pong.borrow_mut() = Some(Rc::new(callback));
    }

    /// `websocket://`: pings every open connection every `seconds`; one that has not answered
    /// with a pong by the pong deadline ([`set_websocket_pong_timeout`](Self::set_websocket_pong_timeout),
    /// by default the same interval) is closed as dead (`on_close` runs). 0 turns it off (the
    /// default). Set it before connections arrive.
    ///
    /// ```
    /// # let mut worker = workerman::Worker::new("websocket://127.0.0.1:0");
    /// worker.set_websocket_ping_interval(25.0);
    /// ```
    pub fn set_websocket_ping_interval(&mut self, seconds: f64) {
        let heartbeat = (seconds.is_finite() && seconds > 0.0).then(|| {
            let timeout = self
                .shared
                .websocket_heartbeat
                .get()
                .map_or(seconds, |(_, t)| t);
            (seconds, timeout)
        });
        self.shared.websocket_heartbeat.set(heartbeat);
    }

    /// `websocket://`: how long after a heartbeat ping its pong may take before the connection
    /// is closed (see [`set_websocket_ping_interval`](Self::set_websocket_ping_interval)).
    ///
    /// ```
    /// # let mut worker = workerman::Worker::new("websocket://127.0.0.1:0");
    /// worker.set_websocket_ping_interval(25.0);
    /// worker.set_websocket_pong_timeout(10.0);
    /// ```
    pub fn set_websocket_pong_timeout(&mut self, seconds: f64) {
        if let Some((interval, _)) = self.shared.websocket_heartbeat.get() {
            if seconds.is_finite() && seconds > 0.0 {
                self.shared
                    .websocket_heartbeat
                    .set(Some((interval, seconds)));
            }
        }
    }

    /// `websocket://`: called when the client sends a close frame, with its code (1005 when it
    /// had none) and reason. The close frame is answered (echoing the code) after it, and the
    /// connection ends; `on_close` follows when the socket closes. (Workerman's
    /// `onWebSocketClose` replaces the answer; here it only observes.)
    ///
    /// ```no_run
    /// # let mut worker = workerman::Worker::new("websocket://127.0.0.1:0");
    /// worker.on_websocket_close(|connection, code, reason| {
    ///     println!("{} said goodbye: {code} {reason}", connection.id());
    /// });
    /// ```
    pub fn on_websocket_close(&mut self, callback: impl Fn(&TcpConnection, u16, &str) + 'static) {
        *self.shared.callbacks.on_websocket_close.borrow_mut() = Some(Rc::new(callback));
    }
}

fn split_address(address: &str) -> (&str, &str) {
    address.split_once("://").unwrap_or_else(|| {
        panic!("Worker address {address:?} needs a scheme, as in tcp://0.0.0.0:8000")
    })
}

/// Workers running on their own thread, from [`Worker::spawn`]. Dropping it stops them.
///
/// ```no_run
/// # use workerman::Worker;
/// let server = Worker::spawn(|| Worker::new("tcp://127.0.0.1:0")).unwrap();
/// let address = server.local_address();
/// server.stop();
/// ```
pub struct RunningWorker {
    local_address: SocketAddr,
    metrics_address: Option<SocketAddr>,
    addresses: Vec<SocketAddr>,
    stopper: Stopper,
    thread: Option<JoinHandle<()>>,
}

impl RunningWorker {
    /// The bound address of the worker `build` returned.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use workerman::{TcpConnection, Worker};
    ///
    /// let server = Worker::spawn(|| {
    ///     let mut worker = Worker::new("text://127.0.0.1:0");
    ///     worker.on_message(|connection: &TcpConnection, line: String| {
    ///         connection.send(line);
    ///     });
    ///     worker
    /// })?;
    /// let mut client = std::net::TcpStream::connect(server.local_address())?;
    /// client.write_all(b"ping\n")?;
    /// let mut echo = [0; 5];
    /// client.read_exact(&mut echo)?;
    /// assert_eq!(&echo, b"ping\n");
    /// server.stop();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    /// The bound addresses of every worker `build` created, in creation order (the metrics
    /// endpoint, when on, last).
    ///
    /// ```
    /// use workerman::Worker;
    ///
    /// let server = Worker::spawn(|| {
    ///     let _admin = Worker::new("http://127.0.0.1:0");
    ///     Worker::new("websocket://127.0.0.1:0")
    /// })?;
    /// let addresses = server.local_addresses();
    /// assert_eq!(addresses.len(), 2);
    /// assert_eq!(addresses[1], server.local_address()); // the worker `build` returned
    /// server.stop();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addresses(&self) -> &[SocketAddr] {
        &self.addresses
    }

    /// Where the metrics endpoint listens, when [`Worker::set_metrics_listen`] is set.
    ///
    /// ```no_run
    /// # use workerman::Worker;
    /// Worker::set_metrics_listen("127.0.0.1:0");
    /// let server = Worker::spawn(|| Worker::new("http://127.0.0.1:0")).unwrap();
    /// println!("curl http://{}/metrics", server.metrics_address().unwrap());
    /// ```
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_address
    }

    /// Stops the workers (as [`Worker::stop_all`]) and waits for their thread to end.
    ///
    /// ```
    /// use workerman::Worker;
    ///
    /// let server = Worker::spawn(|| Worker::new("tcp://127.0.0.1:0"))?;
    /// let address = server.local_address();
    /// std::net::TcpStream::connect(address)?;
    /// server.stop(); // returns once the worker's thread has ended and its socket is closed
    /// assert!(std::net::TcpStream::connect(address).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stopper.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
