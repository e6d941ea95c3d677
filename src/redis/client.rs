//! [`Client`]: the asynchronous Redis client on the worker's reactor (workerman/redis).
//!
//! A client holds one connection for commands (a [`Link`]) and, on a RESP2 server that is
//! subscribed to something, a second one for pub/sub. Each link is an [`AsyncTcpConnection`]
//! speaking [`Resp`](super::protocol::Resp), so it reads, writes and reconnects through the same
//! machinery as every other client; the commands waiting on a link and the matching of replies
//! to them are the link's (`link.rs`). This file opens the links, does the handshake, routes each
//! reply (a command's answer to the link, a push frame to pub/sub, `pubsub.rs`) and reconnects.
//!
//! The handshake on every (re)connect: `HELLO 3` with `AUTH` and `SETNAME` in it; on a server
//! that refuses it, RESP2 with `AUTH` and `CLIENT SETNAME`; then `SELECT` when the database is
//! not 0. Only then are queued commands sent, subscriptions restored and `on_reconnect` called.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::address::{self, Address};
use super::link::{Callback, Expect, Link, LinkState, Pending, Role, defer, fail_all};
use super::protocol::{Reply, encode_command};
use super::subscriptions::Subscriptions;
use super::{Error, Value};
use crate::TcpConnection;
use crate::connection::{AsyncTcpConnection, SslContext};
use crate::reactor::call_user;
use crate::timer::{Timer, TimerId};

type ReconnectCallback = Rc<dyn Fn(&Client)>;

/// Commands `command` refuses: they change what the connection's replies are (pub/sub, the
/// protocol, `MONITOR`), which the client manages itself.
const CLIENT_OWNED: &[&[u8]] = &[
    b"SUBSCRIBE",
    b"PSUBSCRIBE",
    b"SSUBSCRIBE",
    b"UNSUBSCRIBE",
    b"PUNSUBSCRIBE",
    b"SUNSUBSCRIBE",
    b"HELLO",
    b"MONITOR",
    b"RESET",
];

/// The first reconnect delay; it doubles with each failed attempt up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// The longest wait between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3);

/// An asynchronous Redis client on this worker's reactor (workerman/redis's `Client`).
///
/// Every command takes a callback that receives `Result<Value, Error>`; commands pipeline on one
/// connection and their callbacks run in the order the commands were made. Nothing blocks: the
/// client connects, reconnects and answers on the worker's own loop. A handle is cheap to clone
/// and works from any callback of the worker that made it.
///
/// The client lives until [`close`](Self::close), like Workerman's: dropping every handle does
/// not disconnect it (its connection and subscriptions keep it alive).
///
/// ```no_run
/// use workerman::redis::Client;
/// use workerman::Worker;
///
/// let mut worker = Worker::without_listener();
/// worker.on_worker_start(|_| {
///     let redis = Client::new("redis://127.0.0.1:6379");
///     redis.set("greeting", "hello", |result| {
///         assert!(result.is_ok());
///     });
///     redis.get("greeting", |result| {
///         println!("{:?}", result.map(|value| value.to_text().map(|t| t.into_owned())));
///     });
///     redis.command(["XADD", "events", "*", "kind", "login"], |result| {
///         println!("stream entry {:?}", result);
///     });
/// });
/// Worker::run_all();
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Rc<Inner>,
}

pub(crate) struct Inner {
    address: Address,
    /// The database to select after each connect (`SELECT` through the client updates it).
    db: Cell<u32>,
    name: RefCell<Option<String>>,
    pub(crate) main: Link,
    /// RESP2 only: the connection that takes subscriptions.
    pub(crate) subscriber: Link,
    /// Replies are RESP3 on the main link: `None` until the first handshake says.
    pub(crate) resp3: Cell<Option<bool>>,
    pub(crate) subscriptions: RefCell<Subscriptions>,
    on_reconnect: RefCell<Option<ReconnectCallback>>,
    connect_timeout: Cell<Duration>,
    pub(crate) reply_timeout: Cell<Duration>,
    max_queue: Cell<usize>,
    max_reply_size: Cell<usize>,
    timer: Cell<Option<TimerId>>,
    pub(crate) closed: Cell<bool>,
    /// TLS (`rediss://` or [`Client::set_ssl_context`]): the context of both links.
    ssl: RefCell<Option<SslContext>>,
}

impl Client {
    /// A client for `url`: `redis://[user:password@]host[:port][/db]` (`rediss://` over TLS;
    /// port 6379 by default;
    /// `%XX` escapes in the credentials) or `unix:///path/to/redis.sock`. It connects at the end
    /// of the current callback (so the setters below apply to the first connect); commands made
    /// before it is connected are queued.
    ///
    /// # Panics
    /// On a malformed URL, or outside a running worker.
    ///
    /// ```no_run
    /// # workerman::Worker::without_listener().on_worker_start(|_| {
    /// let redis = workerman::redis::Client::new("redis://alice:secret@127.0.0.1:6379/2");
    /// # });
    /// ```
    pub fn new(url: &str) -> Client {
        let address = address::parse(url).unwrap_or_else(|why| panic!("redis::Client::new: {why}"));
        let db = address.db;
        let inner = Rc::new(Inner {
            main: Link::new(Role::Main, &address.target),
            subscriber: Link::new(Role::Subscriber, &address.target),
            db: Cell::new(db),
            name: RefCell::new(None),
            resp3: Cell::new(None),
            subscriptions: RefCell::new(Subscriptions::default()),
            on_reconnect: RefCell::new(None),
            connect_timeout: Cell::new(Duration::from_secs(5)),
            reply_timeout: Cell::new(Duration::from_secs(5)),
            max_queue: Cell::new(10_000),
            max_reply_size: Cell::new(512 << 20),
            timer: Cell::new(None),
            closed: Cell::new(false),
            ssl: RefCell::new(address.tls.then(SslContext::new)),
            address,
        });
        let client = Client { inner };
        let starting = client.clone();
        Timer::once(0.0, move || {
            if !starting.inner.closed.get() {
                starting.start(Role::Main);
            }
        });
        client.arm_timer();
        client
    }

    /// Runs `command` (any Redis command, its name first) and calls `callback` with the reply.
    /// The commands that would change what the connection's replies are (`SUBSCRIBE` and its
    /// kin, `HELLO`, `MONITOR`, `RESET`) are refused with an `ERR` error: use
    /// [`subscribe`](Self::subscribe) and its kin.
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.command(["HSET", "user:1", "name", "Ada"], |result| {
    ///     println!("{} fields added", result.ok().and_then(|v| v.as_int()).unwrap_or(0));
    /// });
    /// # }
    /// ```
    pub fn command<I, A>(&self, command: I, callback: impl FnOnce(Result<Value, Error>) + 'static)
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let arguments: Vec<A> = command.into_iter().collect();
        self.send(&arguments, Box::new(callback));
    }

    /// Sends a command whose arguments are already collected.
    pub(crate) fn send<A: AsRef<[u8]>>(&self, arguments: &[A], callback: Callback) {
        let Some(name) = arguments.first() else {
            defer(callback, Err(Error::server("ERR empty command")));
            return;
        };
        let name = name.as_ref();
        if CLIENT_OWNED
            .iter()
            .any(|owned| name.eq_ignore_ascii_case(owned))
        {
            let error = format!(
                "ERR {} is the client's own: use Client::subscribe and its kin",
                String::from_utf8_lossy(name)
            );
            defer(callback, Err(Error::server(&error)));
            return;
        }
        let callback = if name.eq_ignore_ascii_case(b"SELECT") {
            // Remember the database, to select it again after a reconnect.
            let selected = arguments
                .get(1)
                .and_then(|db| std::str::from_utf8(db.as_ref()).ok()?.parse::<u32>().ok());
            let inner = self.inner.clone();
            Box::new(move |result: Result<Value, Error>| {
                if let (Ok(_), Some(db)) = (&result, selected) {
                    inner.db.set(db);
                }
                callback(result)
            }) as Callback
        } else {
            callback
        };
        let allowance = blocking_allowance(arguments, self.inner.reply_timeout.get());
        let mut bytes = Vec::new();
        encode_command(arguments, &mut bytes);
        self.submit(
            Role::Main,
            bytes,
            Pending {
                expect: Expect::Reply,
                callback: Some(callback),
                allowance,
            },
        );
    }

    /// Sends a command on a link now when it is ready, else queues it (up to the client's
    /// bound); a closed client answers it with [`Error::Connection`].
    pub(crate) fn submit(&self, role: Role, command: Vec<u8>, pending: Pending) {
        let inner = &self.inner;
        if inner.closed.get() {
            if let Some(callback) = pending.callback {
                defer(
                    callback,
                    Err(Error::Connection("the client was closed".into())),
                );
            }
            return;
        }
        let link = inner.link(role);
        if link.submit(
            command,
            pending,
            inner.max_queue.get(),
            inner.reply_timeout.get(),
        ) {
            let client = self.clone();
            Timer::once(0.0, move || client.inner.link(role).flush());
        }
    }

    /// Closes the client: its connections close, a pending reconnect is cancelled, and every
    /// command still unanswered gets [`Error::Connection`].
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.close();
    /// # }
    /// ```
    pub fn close(&self) {
        if self.inner.closed.replace(true) {
            return;
        }
        if let Some(timer) = self.inner.timer.take() {
            Timer::del(timer);
        }
        for role in [Role::Main, Role::Subscriber] {
            let link = self.inner.link(role);
            link.state.set(LinkState::Closed);
            let connection = link.connection.borrow().clone();
            if let Some(connection) = connection {
                connection.close();
            }
            let lost = link.take_all();
            fail_all(lost, || Error::Connection("the client was closed".into()));
        }
    }

    /// Whether the command connection is up and through its handshake.
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// if !redis.connected() {
    ///     println!("Redis is down; commands are queued");
    /// }
    /// # }
    /// ```
    pub fn connected(&self) -> bool {
        self.inner.main.state.get() == LinkState::Ready
    }

    /// Called after each reconnect, once the connection is authenticated, the database
    /// selected and the subscriptions restored (not after the first connect).
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.on_reconnect(|_redis| println!("Redis is back"));
    /// # }
    /// ```
    pub fn on_reconnect(&self, callback: impl Fn(&Client) + 'static) {
        *self.inner.on_reconnect.borrow_mut() = Some(Rc::new(callback));
    }

    /// How long connecting may take before the attempt fails and a reconnect is scheduled
    /// (5 s by default).
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.set_connect_timeout(std::time::Duration::from_secs(2));
    /// # }
    /// ```
    pub fn set_connect_timeout(&self, timeout: Duration) {
        self.inner.connect_timeout.set(timeout);
    }

    /// The TLS context of the connections (as `rediss://` does, with `cafile` instead of the
    /// system's roots, a client certificate, `peer_name`...); set it right after
    /// [`Client::new`], before the first connect.
    ///
    /// ```no_run
    /// use workerman::connection::SslContext;
    /// # fn f() {
    /// let redis = workerman::redis::Client::new("rediss://cache.internal:6380");
    /// redis.set_ssl_context(SslContext::new().cafile("/etc/ssl/redis-ca.pem"));
    /// # }
    /// ```
    pub fn set_ssl_context(&self, context: SslContext) {
        self.inner.ssl.replace(Some(context));
    }

    /// How long a command waits for its reply once it is the oldest unanswered one, and how
    /// long a command made while disconnected waits in the queue (5 s by default). Past it the
    /// callback gets [`Error::Timeout`]; an overdue reply also closes the connection (the
    /// replies after it could no longer be matched), which then reconnects. Blocking commands
    /// (`BLPOP`, `XREAD BLOCK`...) get their own timeout on top.
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.set_reply_timeout(std::time::Duration::from_millis(500));
    /// # }
    /// ```
    pub fn set_reply_timeout(&self, timeout: Duration) {
        self.inner.reply_timeout.set(timeout);
        if let Some(timer) = self.inner.timer.take() {
            Timer::del(timer);
        }
        if !self.inner.closed.get() {
            self.arm_timer();
        }
    }

    /// The most commands held while disconnected (10,000 by default); past it a command's
    /// callback gets [`Error::Connection`] at once.
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.set_max_queue(1000);
    /// # }
    /// ```
    pub fn set_max_queue(&self, commands: usize) {
        self.inner.max_queue.set(commands);
    }

    /// The largest reply accepted (512 MiB by default, Redis's own limit for a string); a larger
    /// one closes the connection with a logged error, and its command gets
    /// [`Error::Connection`].
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.set_max_reply_size(16 << 20);
    /// # }
    /// ```
    pub fn set_max_reply_size(&self, bytes: usize) {
        self.inner.max_reply_size.set(bytes);
        for role in [Role::Main, Role::Subscriber] {
            self.inner.link(role).resp.max_reply_size.set(bytes);
        }
    }

    /// The connection name (`CLIENT SETNAME`, sent in `HELLO`), from the next connect on.
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.set_client_name("sse-worker-1");
    /// # }
    /// ```
    pub fn set_client_name(&self, name: &str) {
        *self.inner.name.borrow_mut() = Some(name.to_owned());
    }

    /// Checks the reply deadlines every so often (a fifth of the reply timeout, 10 to 250 ms).
    fn arm_timer(&self) {
        let tick = (self.inner.reply_timeout.get() / 5)
            .clamp(Duration::from_millis(10), Duration::from_millis(250));
        let client = self.clone();
        let timer = Timer::add(tick.as_secs_f64(), move |_| client.check_deadlines());
        self.inner.timer.set(Some(timer));
    }

    fn check_deadlines(&self) {
        let now = Instant::now();
        for role in [Role::Main, Role::Subscriber] {
            let link = self.inner.link(role);
            if link.is_overdue(now) {
                log::warn!(
                    "redis {}: no reply within {:?}, closing the connection",
                    self.inner.address.target,
                    self.inner.reply_timeout.get()
                );
                fail_all(link.take_waiting(), || Error::Timeout);
                let handle = link.handle.borrow().clone();
                if let Some(handle) = handle {
                    handle.destroy();
                }
            }
            fail_all(link.take_expired(now), || Error::Timeout);
        }
    }

    /// Opens a link's connection (once; later connects are the connection's reconnects).
    pub(crate) fn start(&self, role: Role) {
        let link = self.inner.link(role);
        if link.state.get() != LinkState::Idle || self.inner.closed.get() {
            return;
        }
        link.state.set(LinkState::Connecting);
        let mut connection =
            AsyncTcpConnection::with_protocol(&self.inner.address.target, link.resp.clone());
        connection.set_connect_timeout(self.inner.connect_timeout.get());
        if let Some(context) = self.inner.ssl.borrow().clone() {
            connection.set_ssl_context(context);
        }
        connection.set_max_package_size(self.inner.max_reply_size.get().saturating_add(1024));
        connection.set_max_send_buffer_size(64 << 20);
        connection.set_read_first(true);
        let client = self.clone();
        connection.on_connect(move |handle| client.on_connected(role, handle));
        let client = self.clone();
        connection.on_message(move |handle, reply: Reply| client.on_reply(role, handle, reply));
        let client = self.clone();
        connection.on_error(move |_, code, message| {
            log::warn!(
                "redis {} ({role:?} connection): error {code}: {message}",
                client.inner.address.target
            );
        });
        let client = self.clone();
        connection.on_close(move |handle| client.on_closed(role, handle));
        *link.connection.borrow_mut() = Some(connection.clone());
        connection.connect();
    }

    fn on_connected(&self, role: Role, handle: &TcpConnection) {
        let link = self.inner.link(role);
        if self.inner.closed.get() {
            handle.close();
            return;
        }
        *link.handle.borrow_mut() = Some(handle.clone());
        link.resp.scan.set(Default::default());
        link.state.set(LinkState::Handshaking);
        let user = self.inner.address.user.clone();
        let password = self.inner.address.password.clone();
        let name = self.inner.name.borrow().clone();
        if role == Role::Subscriber {
            // The main link found the server speaks RESP2 only.
            link.resp.resp3.set(false);
            self.handshake_rest(role, handle, false);
            return;
        }
        let mut hello: Vec<Vec<u8>> = vec![b"HELLO".to_vec(), b"3".to_vec()];
        if let Some(password) = &password {
            hello.push(b"AUTH".to_vec());
            hello.push(
                user.clone()
                    .unwrap_or_else(|| "default".into())
                    .into_bytes(),
            );
            hello.push(password.clone().into_bytes());
        }
        if let Some(name) = &name {
            hello.push(b"SETNAME".to_vec());
            hello.push(name.clone().into_bytes());
        }
        // HELLO's answer is a RESP3 map when it works; its refusal reads the same either way.
        link.resp.resp3.set(true);
        let client = self.clone();
        let connection = handle.clone();
        self.handshake_step(role, handle, &hello, move |result| match result {
            Ok(_) => {
                client.inner.resp3.set(Some(true));
                client.handshake_rest(role, &connection, true);
            }
            // A timeout or a lost connection: that connection is being closed anyway.
            Err(error) if !error.is_server() => {}
            Err(error) if is_auth_failure(&error) => {
                client.handshake_failed(role, &connection, &error)
            }
            Err(error) => {
                log::debug!(
                    "redis {}: HELLO 3 refused ({error}), speaking RESP2",
                    client.inner.address.target
                );
                client.inner.resp3.set(Some(false));
                client.inner.link(role).resp.resp3.set(false);
                client.handshake_rest(role, &connection, false);
            }
        });
    }

    /// After `HELLO` (or without it): `AUTH` and `CLIENT SETNAME` on RESP2, `SELECT`, then ready.
    fn handshake_rest(&self, role: Role, handle: &TcpConnection, resp3: bool) {
        let mut steps: Vec<Vec<Vec<u8>>> = Vec::new();
        if !resp3 {
            if let Some(password) = &self.inner.address.password {
                let mut auth = vec![b"AUTH".to_vec()];
                if let Some(user) = &self.inner.address.user {
                    auth.push(user.clone().into_bytes());
                }
                auth.push(password.clone().into_bytes());
                steps.push(auth);
            }
            if let Some(name) = self.inner.name.borrow().clone() {
                if role == Role::Main {
                    steps.push(vec![
                        b"CLIENT".to_vec(),
                        b"SETNAME".to_vec(),
                        name.into_bytes(),
                    ]);
                }
            }
        }
        let db = self.inner.db.get();
        if db != 0 && role == Role::Main {
            steps.push(vec![b"SELECT".to_vec(), db.to_string().into_bytes()]);
        }
        if steps.is_empty() {
            self.ready(role, handle);
            return;
        }
        let last = steps.len() - 1;
        for (index, step) in steps.into_iter().enumerate() {
            let client = self.clone();
            let connection = handle.clone();
            self.handshake_step(role, handle, &step, move |result| match result {
                Err(error) if error.is_server() => {
                    client.handshake_failed(role, &connection, &error)
                }
                Err(_) => {}
                Ok(_) if index == last => client.ready(role, &connection),
                Ok(_) => {}
            });
        }
    }

    /// Sends one handshake command straight on the connection (ahead of the queue).
    fn handshake_step(
        &self,
        role: Role,
        handle: &TcpConnection,
        command: &[Vec<u8>],
        then: impl FnOnce(Result<Value, Error>) + 'static,
    ) {
        let link = self.inner.link(role);
        let mut bytes = Vec::new();
        encode_command(command, &mut bytes);
        let connection = handle.clone();
        let pending = Pending {
            expect: Expect::Reply,
            // A reply to an older connection's handshake means nothing to this one.
            callback: Some(Box::new(move |result| {
                if connection.status() == TcpConnection::STATUS_ESTABLISHED {
                    then(result)
                }
            })),
            allowance: Some(self.inner.reply_timeout.get()),
        };
        link.push_waiting(pending);
        handle.send(bytes);
    }

    fn handshake_failed(&self, role: Role, handle: &TcpConnection, error: &Error) {
        log::error!(
            "redis {}: the handshake failed: {error}; reconnecting",
            self.inner.address.target
        );
        // Queued commands would meet the same refusal: they get it now.
        let link = self.inner.link(role);
        fail_all(link.take_queued(), || error.clone());
        handle.destroy();
    }

    fn ready(&self, role: Role, handle: &TcpConnection) {
        let link = self.inner.link(role);
        if link.state.get() != LinkState::Handshaking {
            return;
        }
        link.state.set(LinkState::Ready);
        link.failures.set(0);
        let reconnected = link.was_ready.replace(true);
        log::debug!(
            "redis {}: {role:?} connection ready ({})",
            self.inner.address.target,
            if link.resp.resp3.get() {
                "RESP3"
            } else {
                "RESP2"
            }
        );
        link.send_queued(handle);
        match role {
            Role::Main if self.inner.resp3.get() == Some(true) => self.resubscribe(Role::Main),
            Role::Main => {
                if !self.inner.subscriptions.borrow().is_empty() {
                    self.start(Role::Subscriber);
                }
            }
            Role::Subscriber => self.resubscribe(Role::Subscriber),
        }
        if reconnected && role == Role::Main {
            let callback = self.inner.on_reconnect.borrow().clone();
            if let Some(callback) = callback {
                call_user(&|| "redis on_reconnect".to_owned(), || callback(self));
            }
        }
    }

    fn on_reply(&self, role: Role, handle: &TcpConnection, reply: Reply) {
        let link = self.inner.link(role);
        let push = match reply {
            Reply::Malformed(why) => {
                log::error!(
                    "redis {}: malformed reply ({why}), closing the connection",
                    self.inner.address.target
                );
                handle.destroy();
                return;
            }
            Reply::Push(items) => Some(items),
            // On RESP2, a subscribed connection receives only pub/sub arrays.
            Reply::Value(Value::Array(items)) if role == Role::Subscriber => Some(items),
            Reply::Value(value) => return link.answer(handle, Ok(value)),
            Reply::Error(line) => return link.answer(handle, Err(Error::server(&line))),
        };
        if let Some(items) = push {
            self.on_push(link, handle, items);
        }
    }

    fn on_closed(&self, role: Role, handle: &TcpConnection) {
        let link = self.inner.link(role);
        let was_ready = link.state.get() == LinkState::Ready;
        let current = link.handle.borrow().clone();
        if current
            .as_ref()
            .is_some_and(|current| current.id() != handle.id())
        {
            return;
        }
        link.handle.borrow_mut().take();
        if self.inner.pubsub_role() == Some(role) {
            // No subscription is in effect until restored.
            self.inner.subscriptions.borrow_mut().lost();
        }
        fail_all(link.lost(), || {
            Error::Connection("the connection closed before the reply came".into())
        });
        if self.inner.closed.get() || link.state.get() == LinkState::Closed {
            link.state.set(LinkState::Closed);
            // The connection's callbacks hold this client: let both go.
            if let Some(mut connection) = link.connection.borrow_mut().take() {
                connection.on_connect(|_| {});
                connection.on_message(|_, _: Reply| {});
                connection.on_error(|_, _, _| {});
                connection.on_close(|_| {});
            }
            return;
        }
        let failures = if was_ready { 0 } else { link.failures.get() };
        link.failures.set(failures.saturating_add(1));
        let delay = backoff(failures);
        link.state.set(LinkState::Down);
        log::info!(
            "redis {}: {role:?} connection lost; reconnecting in {delay:?}",
            self.inner.address.target
        );
        let connection = link.connection.borrow().clone();
        if let Some(mut connection) = connection {
            connection.set_connect_timeout(self.inner.connect_timeout.get());
            let client = self.clone();
            Timer::once(delay.as_secs_f64(), move || {
                let link = client.inner.link(role);
                if link.state.get() == LinkState::Down && !client.inner.closed.get() {
                    link.state.set(LinkState::Connecting);
                    connection.connect();
                }
            });
        }
    }
}

impl Inner {
    pub(crate) fn link(&self, role: Role) -> &Link {
        match role {
            Role::Main => &self.main,
            Role::Subscriber => &self.subscriber,
        }
    }

    /// The link that carries subscriptions, once the protocol is known.
    pub(crate) fn pubsub_role(&self) -> Option<Role> {
        match self.resp3.get()? {
            true => Some(Role::Main),
            false => Some(Role::Subscriber),
        }
    }
}

/// The wait before reconnect attempt `failures + 1`: 50 ms, doubling, at most 3 s.
pub(crate) fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << failures.min(10))
        .min(MAX_BACKOFF)
}

fn is_auth_failure(error: &Error) -> bool {
    matches!(error.kind(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
}

/// How long a command's reply may take: the reply timeout, plus the command's own blocking
/// timeout (`BLPOP k 5`, `XREAD BLOCK 5000`); `None` when it blocks without one.
fn blocking_allowance<A: AsRef<[u8]>>(
    arguments: &[A],
    reply_timeout: Duration,
) -> Option<Duration> {
    let name = arguments
        .first()
        .map(|name| name.as_ref().to_ascii_uppercase())?;
    let text = |index: usize| -> Option<String> {
        arguments
            .get(index)
            .and_then(|argument| std::str::from_utf8(argument.as_ref()).ok())
            .map(str::to_owned)
    };
    let seconds = |index: usize| text(index).and_then(|value| value.parse::<f64>().ok());
    let blocks_for = match name.as_slice() {
        b"BLPOP" | b"BRPOP" | b"BRPOPLPUSH" | b"BLMOVE" | b"BZPOPMIN" | b"BZPOPMAX" => {
            seconds(arguments.len() - 1)
        }
        b"BLMPOP" | b"BZMPOP" => seconds(1),
        b"WAIT" | b"WAITAOF" => seconds(arguments.len() - 1).map(|ms| ms / 1000.0),
        b"XREAD" | b"XREADGROUP" => (1..arguments.len())
            .find(|&index| arguments[index].as_ref().eq_ignore_ascii_case(b"BLOCK"))
            .and_then(|index| seconds(index + 1))
            .map(|ms| ms / 1000.0),
        _ => return Some(reply_timeout),
    };
    match blocks_for {
        Some(seconds) if seconds > 0.0 && seconds.is_finite() => {
            Some(reply_timeout + Duration::from_secs_f64(seconds.min(1e9)))
        }
        Some(_) => None,
        None => Some(reply_timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_fast_and_is_capped() {
        assert_eq!(backoff(0), Duration::from_millis(50));
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(5), Duration::from_millis(1600));
        assert_eq!(backoff(6), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn blocking_commands_get_their_own_timeout() {
        let timeout = Duration::from_secs(5);
        assert_eq!(blocking_allowance(&["GET", "k"], timeout), Some(timeout));
        assert_eq!(blocking_allowance(&["BLPOP", "k", "0"], timeout), None);
        assert_eq!(
            blocking_allowance(&["BLPOP", "a", "b", "2"], timeout),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            blocking_allowance(&["XREAD", "BLOCK", "1500", "STREAMS", "s", "$"], timeout),
            Some(Duration::from_millis(6500))
        );
        assert_eq!(
            blocking_allowance(&["xread", "block", "0", "STREAMS", "s", "$"], timeout),
            None
        );
        assert_eq!(
            blocking_allowance(&["XREAD", "STREAMS", "s", "0"], timeout),
            Some(timeout)
        );
    }
}
