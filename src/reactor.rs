//! The reactor: one `mio::Poll` per worker thread, reachable from every callback on that thread.
//!
//! It owns every socket (listeners and connections, the latter in a `slab`), the timers, the
//! connection deadlines and a waker for stopping. User code never holds a reference into it: a
//! [`TcpConnection`] is a slab key plus the connection's id, and every call goes through
//! [`with`], which borrows the reactor for the length of one short, non-reentrant operation. User
//! callbacks always run with no borrow held, so they may call anything.
//!
//! One turn of the loop: wait for events (no longer than the next timer or deadline), handle them
//! (accept, write, read and dispatch), run connections queued for another go (`resume_recv`, a
//! pipelined request whose predecessor was answered later), fire due timers, close connections whose
//! deadline passed.

use std::any::Any;
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::connection::WorkerShared;
use crate::connection::io as connection_io;
use crate::connection::stream::{Listen, Stream};
use crate::connection::{Connection, TcpConnection};
use crate::metrics::statistics::Statistics;
use crate::timer::{ScheduledTimer, TimerCallback, TimerQueue};

/// The waker's token; listeners count down from just below it; connections are slab keys.
const WAKER: Token = Token(usize::MAX);
/// A worker process's signal socket (see `crate::process::child`).
const SIGNALS: Token = Token(usize::MAX - 1);
const LISTENER_BASE: usize = usize::MAX / 2;
/// How long accepting pauses after the process ran out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// The most connections one listener accepts in a row before other events get a turn.
const ACCEPT_BATCH: usize = 1024;
/// The shared read buffer's size (Workerman reads 87,380 bytes at a time).
pub(crate) const READ_BUFFER_SIZE: usize = 64 * 1024;

thread_local! {
    static REACTOR: RefCell<Option<Reactor>> = const { RefCell::new(None) };
}

pub(crate) struct Listener {
    pub(crate) socket: Listen,
    pub(crate) worker: Rc<WorkerShared>,
    /// Set after `EMFILE`/`ENFILE`: accepting resumes at this instant.
    pub(crate) paused_until: Option<Instant>,
}

pub(crate) struct Reactor {
    pub(crate) poll: Poll,
    pub(crate) connections: Slab<Connection>,
    pub(crate) listeners: Vec<Listener>,
    pub(crate) timers: TimerQueue,
    /// The timers due this turn; kept to reuse its allocation.
    timer_batch: Vec<ScheduledTimer>,
    /// Connection deadlines (head timeout, keep-alive idle, linger), earliest first; see
    /// [`Reactor::set_deadline`].
    pub(crate) deadlines: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    /// Connections to run again at the end of this turn (key, id).
    pub(crate) ready: VecDeque<(usize, u64)>,
    pub(crate) next_connection_id: u64,
    /// The shared buffer every read lands in first; taken out while in use.
    pub(crate) read_buffer: Vec<u8>,
    /// Where `send` encodes before writing; taken out while in use.
    pub(crate) write_scratch: Vec<u8>,
    /// The time this turn started; cheap "now" for deadlines.
    pub(crate) now: Instant,
    pub(crate) statistics: Statistics,
    pub(crate) stop: Arc<AtomicBool>,
    /// Set once a stop has begun; the loop ends when every connection is gone or at `stop_deadline`.
    pub(crate) stopping: bool,
    pub(crate) stop_deadline: Option<Instant>,
    /// A listener's back-off ended, or a batch of accepts was cut short: accept again this turn.
    pub(crate) accept_again: bool,
    /// In a worker process: the socket its signal handlers write to, registered as [`SIGNALS`].
    signals: Option<mio::net::UnixStream>,
    /// In a worker process: how its signals are read and acted on (`crate::process::child`).
    signal_handler: Option<SignalHandler>,
    /// The stop asked for is graceful: stop accepting, keep the connections, end with the last.
    pub(crate) graceful: bool,
    /// Hard stop in a worker process: until this instant, a connection that has not sent a byte
    /// yet is left open for the request its client is sending (see [`shut_down`]).
    first_request_grace: Option<Instant>,
    /// Client connections' resolved host names, handed over by resolver threads (which wake us).
    pub(crate) resolutions: crate::connection::async_tcp::Resolutions,
    /// `Worker::spawn_blocking`'s jobs in flight; finished ones wake us (see `crate::blocking`).
    pub(crate) blocking: crate::blocking::Blocking,
    /// Raw fds and signals registered by the user (see `crate::event_loop`).
    pub(crate) sources: crate::event_loop::Sources,
    /// Connections (key, id) whose events are handled first in each turn (a Redis client's):
    /// a broker is read before the connections it feeds. Gone ones are dropped each turn.
    pub(crate) read_first: Vec<(usize, u64)>,
    /// What the metrics count beyond `statistics`, and the slot they are published into.
    pub(crate) metrics: crate::metrics::counters::ReactorMetrics,
}

/// Lets another thread stop a running reactor.
#[derive(Clone)]
pub(crate) struct Stopper {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl Stopper {
    pub(crate) fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Err(error) = self.waker.wake() {
            log::error!("could not wake the worker to stop it: {error}");
        }
    }
}

/// Runs `f` on this thread's reactor. Panics with `who` named when no worker runs here.
pub(crate) fn with_running<R>(who: &str, f: impl FnOnce(&mut Reactor) -> R) -> R {
    try_with(f).unwrap_or_else(|| {
        panic!(
            "{who} needs a running worker on this thread: call it from on_worker_start, \
             on_message or another callback, after Worker::run_all() has started"
        )
    })
}

/// Runs `f` on this thread's reactor, or returns `None` when no worker runs here.
pub(crate) fn try_with<R>(f: impl FnOnce(&mut Reactor) -> R) -> Option<R> {
    REACTOR.with(|cell| cell.borrow_mut().as_mut().map(f))
}

/// Runs `f` on this thread's reactor; only for code that runs inside the loop.
pub(crate) fn with<R>(f: impl FnOnce(&mut Reactor) -> R) -> R {
    with_running("the reactor", f)
}

/// Calls user code, catching a panic: it is logged with `what`, counted, and reported as `None`.
pub(crate) fn call_user<R>(what: &dyn Fn() -> String, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) => {
            log::error!("panic in {}: {}", what(), panic_message(&payload));
            try_with(|reactor| reactor.statistics.panics += 1);
            None
        }
    }
}

pub(crate) fn panic_message(payload: &Box<dyn Any + Send>) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "(a non-string panic payload)"
    }
}

impl Reactor {
    fn new() -> io::Result<(Reactor, Stopper)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let flag = Arc::new(AtomicBool::new(false));
        let reactor = Reactor {
            poll,
            connections: Slab::new(),
            listeners: Vec::new(),
            timers: TimerQueue::default(),
            timer_batch: Vec::new(),
            deadlines: BinaryHeap::new(),
            ready: VecDeque::new(),
            next_connection_id: 0,
            read_buffer: vec![0; READ_BUFFER_SIZE],
            write_scratch: Vec::with_capacity(4096),
            now: Instant::now(),
            statistics: Statistics::default(),
            stop: flag.clone(),
            stopping: false,
            stop_deadline: None,
            accept_again: false,
            signals: None,
            signal_handler: None,
            graceful: false,
            first_request_grace: None,
            resolutions: crate::connection::async_tcp::Resolutions::new(waker.clone()),
            blocking: crate::blocking::Blocking::new(waker.clone()),
            sources: crate::event_loop::Sources::default(),
            read_first: Vec::new(),
            metrics: crate::metrics::counters::ReactorMetrics::new(),
        };
        Ok((reactor, Stopper { flag, waker }))
    }

    /// The live connection behind a handle, or `None` when it is gone (a stale handle never
    /// reaches a later connection in the same slot: the ids differ).
    pub(crate) fn connection(&self, handle: &TcpConnection) -> Option<&Connection> {
        self.connections
            .get(handle.key())
            .filter(|connection| connection.id == handle.id())
    }

    pub(crate) fn connection_mut(&mut self, handle: &TcpConnection) -> Option<&mut Connection> {
        self.connections
            .get_mut(handle.key())
            .filter(|connection| connection.id == handle.id())
    }

    /// Sets (or clears) a connection's deadline; past it, the connection is destroyed.
    ///
    /// Each connection has at most one live entry in the heap, at `armed_at`; moving the deadline
    /// later costs nothing (the entry is re-pushed when it pops), moving it earlier pushes a new
    /// entry and leaves the old one to be skipped.
    pub(crate) fn set_deadline(&mut self, key: usize, deadline: Option<Instant>) {
        let Some(connection) = self.connections.get_mut(key) else {
            return;
        };
        connection.deadline = deadline;
        if let Some(layered) = connection.layer.as_mut() {
            layered.handshake_deadline = false;
        }
        if let Some(deadline) = deadline {
            if connection.armed_at.is_none_or(|armed| deadline < armed) {
                connection.armed_at = Some(deadline);
                self.deadlines.push(Reverse((deadline, key, connection.id)));
                self.compact_deadlines();
            }
        }
    }

    /// Drops heap entries of connections that are gone or re-armed, once they outnumber the
    /// live connections: under churn, every short-lived connection would otherwise leave its
    /// entry behind until its deadline (30 s for the head timeout). Amortized O(1) per push.
    fn compact_deadlines(&mut self) {
        if self.deadlines.len() <= 2 * self.connections.len() + 1024 {
            return;
        }
        let connections = &self.connections;
        self.deadlines.retain(|&Reverse((when, key, id))| {
            connections
                .get(key)
                .is_some_and(|connection| connection.id == id && connection.armed_at == Some(when))
        });
    }

    /// Handles of connections whose deadline has passed.
    fn expired_connections(&mut self, now: Instant, expired: &mut Vec<TcpConnection>) {
        while let Some(&Reverse((when, key, id))) = self.deadlines.peek() {
            if when > now {
                break;
            }
            self.deadlines.pop();
            let Some(connection) = self.connections.get_mut(key) else {
                continue;
            };
            if connection.id != id || connection.armed_at != Some(when) {
                continue;
            }
            connection.armed_at = None;
            match connection.deadline {
                None => {}
                Some(deadline) if deadline <= now => {
                    connection.deadline = None;
                    expired.push(TcpConnection::new(key, id));
                }
                Some(deadline) => {
                    connection.armed_at = Some(deadline);
                    self.deadlines.push(Reverse((deadline, key, id)));
                }
            }
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.ready.is_empty() || self.accept_again {
            return Some(Duration::ZERO);
        }
        if self.stop.load(Ordering::Relaxed) && !self.graceful {
            // Stopping: look again soon for the last connections to finish closing.
            return Some(Duration::from_millis(if self.stopping { 10 } else { 0 }));
        }
        let mut next = self.timers.next_wake();
        if let Some(&Reverse((deadline, _, _))) = self.deadlines.peek() {
            next = Some(next.map_or(deadline, |timer| timer.min(deadline)));
        }
        for listener in &self.listeners {
            if let Some(until) = listener.paused_until {
                next = Some(next.map_or(until, |other| other.min(until)));
            }
        }
        next.map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }
}

/// The workers' addresses once bound, and the way to stop them; sent by [`run`] to a spawner.
pub(crate) struct Started {
    pub(crate) addresses: Vec<SocketAddr>,
    pub(crate) stopper: Stopper,
}

/// The workers a reactor runs, as it sees them: each one's shared part (its listener's settings
/// and its connections' callbacks), and the worker floor's calls at the start and at the stop of
/// the loop (`on_worker_start` and `on_worker_stop`, made by `src/worker.rs`).
pub(crate) struct Run {
    pub(crate) workers: Vec<Rc<WorkerShared>>,
    /// Called once the reactor is installed, before the first turn.
    pub(crate) on_start: Box<dyn Fn()>,
    /// Called at the first turn of a stop, before the listeners close.
    pub(crate) on_stop: Box<dyn Fn()>,
}

/// Runs `workers` on this thread until stopped: binds their listeners, calls `on_worker_start`,
/// then turns the loop. `started` hears the bound addresses (or the error) before the first turn.
pub(crate) fn run(
    workers: Run,
    started: Option<std::sync::mpsc::Sender<io::Result<Started>>>,
) -> io::Result<()> {
    run_with(workers, started, None)
}

/// How a worker process's signals reach it (given by `crate::process::child`): `take` reads
/// the signal numbers waiting on the socket (with the reactor borrowed), `deliver` acts on
/// them (with no borrow held).
#[derive(Clone, Copy)]
pub(crate) struct SignalHandler {
    pub(crate) take: fn(&mut mio::net::UnixStream) -> Vec<libc::c_int>,
    pub(crate) deliver: fn(Vec<libc::c_int>),
}

/// [`run`] in a worker process: `signals` is its signal socket, read in the loop like any
/// other source; what arrives goes to `handler`.
pub(crate) fn run_process(
    workers: Run,
    signals: mio::net::UnixStream,
    handler: SignalHandler,
) -> io::Result<()> {
    run_with(workers, None, Some((signals, handler)))
}

/// Asks this thread's reactor to stop, gracefully or not; a hard stop overrides a graceful one
/// already under way. Accepting stops at once, so no connection is taken in this turn only to be
/// closed unanswered in the next.
pub(crate) fn request_stop(graceful: bool) {
    try_with(|reactor| {
        let stopping = reactor.stop.load(Ordering::SeqCst);
        reactor.graceful = graceful && (!stopping || reactor.graceful);
        reactor.stop.store(true, Ordering::SeqCst);
        for listener in &mut reactor.listeners {
            let _ = reactor.poll.registry().deregister(&mut listener.socket);
        }
        reactor.listeners.clear();
    });
}

fn run_with(
    run: Run,
    started: Option<std::sync::mpsc::Sender<io::Result<Started>>>,
    signals: Option<(mio::net::UnixStream, SignalHandler)>,
) -> io::Result<()> {
    let already_running = REACTOR.with(|cell| cell.borrow().is_some());
    if already_running {
        let error = io::Error::other("a worker is already running on this thread");
        if let Some(started) = started {
            let _ = started.send(Err(io::Error::other(error.to_string())));
        }
        return Err(error);
    }
    let setup = Reactor::new().and_then(|(mut reactor, stopper)| {
        let mut addresses = Vec::new();
        for worker in &run.workers {
            if worker.listen.is_empty() {
                // Keeps `addresses` in step with `workers` (for `Worker::spawn`).
                addresses.push(SocketAddr::from(([0, 0, 0, 0], 0)));
                continue;
            }
            let mut socket = Listen::new(worker.bind()?);
            reactor.poll.registry().register(
                &mut socket,
                Token(LISTENER_BASE - reactor.listeners.len()),
                Interest::READABLE,
            )?;
            let address = socket.local_addr()?;
            worker.local_address.set(Some(address));
            addresses.push(address);
            reactor.listeners.push(Listener {
                socket,
                worker: worker.clone(),
                paused_until: None,
            });
        }
        if let Some((mut signals, handler)) = signals {
            reactor
                .poll
                .registry()
                .register(&mut signals, SIGNALS, Interest::READABLE)?;
            reactor.signals = Some(signals);
            reactor.signal_handler = Some(handler);
        }
        Ok((reactor, Started { addresses, stopper }))
    });
    let reactor = match setup {
        Ok((reactor, ready)) => {
            if let Some(started) = started {
                let _ = started.send(Ok(ready));
            }
            reactor
        }
        Err(error) => {
            if let Some(started) = started {
                let _ = started.send(Err(io::Error::new(error.kind(), error.to_string())));
            }
            return Err(error);
        }
    };
    REACTOR.with(|cell| *cell.borrow_mut() = Some(reactor));

    (run.on_start)();

    let mut events = Events::with_capacity(1024);
    // The first turn starts now (`on_worker_start` is no turn of the loop).
    with(|reactor| reactor.now = Instant::now());
    let result = loop {
        if let Err(error) = turn(&mut events) {
            break Err(error);
        }
        if with(|reactor| reactor.stop.load(Ordering::Relaxed)) && shut_down(&run) {
            break Ok(());
        }
    };
    // The last turn's figures, published before the process ends.
    with(|reactor| {
        let timers = reactor.timers.len();
        reactor
            .metrics
            .end_turn(reactor.now, &reactor.statistics, || timers);
    });
    REACTOR.with(|cell| cell.borrow_mut().take());
    result
}

/// One turn of the event loop.
fn turn(events: &mut Events) -> io::Result<()> {
    let timeout = with(|reactor| {
        // The previous turn (which began at `now`) ends here, before the wait.
        let Reactor {
            metrics,
            now,
            statistics,
            timers,
            ..
        } = reactor;
        metrics.end_turn(*now, statistics, || timers.len());
        reactor.poll_timeout()
    });
    let polled = with(|reactor| reactor.poll.poll(events, timeout));
    if let Err(error) = polled {
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    let now = Instant::now();
    with(|reactor| reactor.now = now);

    // Connections marked read-first are handled before every other event of this turn.
    let read_first = with(|reactor| {
        let Reactor {
            read_first,
            connections,
            ..
        } = reactor;
        read_first.retain(|&(key, id)| connections.get(key).is_some_and(|c| c.id == id));
        !read_first.is_empty()
    });
    let is_first =
        |token: Token| with(|reactor| reactor.read_first.iter().any(|&(key, _)| key == token.0));
    if read_first {
        for event in events.iter().filter(|event| is_first(event.token())) {
            handle_event(event);
        }
    }
    for event in events.iter() {
        if read_first && is_first(event.token()) {
            continue;
        }
        handle_event(event);
    }

    run_ready();
    fire_timers();
    let mut expired = Vec::new();
    with(|reactor| {
        reactor.expired_connections(now, &mut expired);
        for listener in &mut reactor.listeners {
            if listener.paused_until.is_some_and(|until| until <= now) {
                listener.paused_until = None;
                reactor.accept_again = true;
            }
        }
    });
    for handle in expired {
        log::debug!("connection {} timed out", handle.id());
        if handle.status() == TcpConnection::STATUS_CONNECTING {
            crate::connection::async_tcp::on_connect_timeout(&handle);
        } else if crate::connection::async_tcp::on_handshake_deadline(&handle) {
            // A client's TLS handshake deadline: failed as a connect, or the protocol's runs on.
        } else if connection_io::outlived_handshake_deadline(&handle) {
            // The TLS handshake finished in time: the protocol's own deadline runs on.
        } else if !crate::connection::http::on_deadline(&handle) {
            connection_io::destroy(&handle);
        }
    }
    if with(|reactor| std::mem::take(&mut reactor.accept_again)) {
        let count = with(|reactor| reactor.listeners.len());
        for index in 0..count {
            accept(index);
        }
    }
    Ok(())
}

/// One event: the waker, the signal socket, a listener, or a connection's socket.
fn handle_event(event: &mio::event::Event) {
    let token = event.token();
    if token == WAKER {
        crate::connection::async_tcp::on_resolved();
        crate::blocking::on_woken();
        return;
    }
    if token == SIGNALS {
        let taken = with(|reactor| {
            let handler = reactor.signal_handler?;
            let received = reactor.signals.as_mut().map(handler.take)?;
            Some((handler.deliver, received))
        });
        if let Some((deliver, received)) = taken {
            deliver(received);
        }
        return;
    }
    if crate::event_loop::owns(token) {
        let closed = event.is_read_closed() || event.is_error();
        let readable = event.is_readable() || closed;
        crate::event_loop::on_event(token, readable, event.is_writable() || event.is_error());
        return;
    }
    if token.0 > LISTENER_BASE - 1024 && token.0 <= LISTENER_BASE {
        accept(LISTENER_BASE - token.0);
        return;
    }
    let key = token.0;
    let Some((id, status)) = with(|reactor| reactor.connections.get(key).map(|c| (c.id, c.status)))
    else {
        return;
    };
    let handle = TcpConnection::new(key, id);
    if status == TcpConnection::STATUS_CONNECTING {
        crate::connection::async_tcp::on_connect_event(&handle);
        return;
    }
    if event.is_writable() {
        connection_io::on_writable(&handle);
    }
    let peer_closed = event.is_read_closed() || event.is_error();
    if event.is_readable() || peer_closed {
        connection_io::on_readable(&handle, peer_closed);
    }
}

/// Runs every connection queued for another go this turn.
fn run_ready() {
    loop {
        let next = with(|reactor| reactor.ready.pop_front());
        let Some((key, id)) = next else {
            return;
        };
        connection_io::resume(&TcpConnection::new(key, id));
    }
}

/// Fires every due timer once; a repeating timer is re-armed unless its callback deleted it.
fn fire_timers() {
    let now = Instant::now();
    let mut batch = with(|reactor| {
        let mut batch = std::mem::take(&mut reactor.timer_batch);
        reactor.timers.take_due(now, &mut batch);
        batch
    });
    for mut timer in batch.drain(..) {
        if !with(|reactor| reactor.timers.is_live(timer.id)) {
            continue;
        }
        let id = timer.id;
        match timer.callback {
            TimerCallback::Repeat(ref mut callback) => {
                call_user(&|| format!("timer {id}"), || callback(id));
                // The clock after the callback, not the batch's start: a batch that ran long
                // (a slow callback, or thousands of timers) must not re-arm a missed tick that
                // is already past, which would fire it again at once (a burst).
                with(|reactor| reactor.timers.rearm(timer, Instant::now()));
            }
            TimerCallback::Once(mut callback) => {
                with(|reactor| reactor.timers.finish(id));
                call_user(&|| format!("timer {id}"), move || callback(id));
            }
        }
    }
    with(|reactor| reactor.timer_batch = batch);
}

/// Accepts on listener `index` until it would block (or a batch is done), then calls `on_connect`.
/// A `udp://` worker's socket receives datagrams instead.
fn accept(index: usize) {
    if with(|reactor| {
        reactor
            .listeners
            .get(index)
            .is_some_and(|listener| listener.socket.is_datagram())
    }) {
        return crate::connection::udp::on_readable(index);
    }
    let mut accepted = Vec::new();
    let more = with(|reactor| {
        let Reactor {
            listeners,
            connections,
            poll,
            next_connection_id,
            statistics,
            now,
            metrics,
            ..
        } = reactor;
        let Some(listener) = listeners.get_mut(index) else {
            return false;
        };
        if listener.paused_until.is_some() {
            return false;
        }
        while accepted.len() < ACCEPT_BATCH {
            match listener.socket.accept() {
                Ok((mut stream, remote_address)) => {
                    let worker = &listener.worker;
                    if worker.connection_count.get() >= worker.max_connections.get() {
                        refuse(&stream, worker);
                        continue;
                    }
                    if let Err(error) = stream.set_nodelay() {
                        log::debug!("TCP_NODELAY on a new connection: {error}");
                    }
                    let entry = connections.vacant_entry();
                    let key = entry.key();
                    if let Err(error) = poll.registry().register(
                        &mut stream,
                        Token(key),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        log::error!("could not register a new connection: {error}");
                        continue;
                    }
                    *next_connection_id += 1;
                    let id = *next_connection_id;
                    let mut connection =
                        Connection::new(id, stream, remote_address, listener.worker.clone());
                    // The transport: a layer (TLS) between this socket and the codec, if any.
                    if let Err(error) = connection.attach_transport() {
                        log::warn!("a new connection's transport failed: {error}");
                        if let Some(mut stream) = connection.stream.take() {
                            let _ = poll.registry().deregister(&mut stream);
                        }
                        continue;
                    }
                    entry.insert(connection);
                    statistics.connection_count += 1;
                    metrics.opened(crate::metrics::protocol_index(
                        &listener.worker.protocol.borrow(),
                        listener.worker.transport.get(),
                    ));
                    listener
                        .worker
                        .connection_count
                        .set(listener.worker.connection_count.get() + 1);
                    accepted.push(TcpConnection::new(key, id));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return false,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if out_of_descriptors(&error) => {
                    log::warn!(
                        "accept on {} failed ({error}): pausing accepts for {ACCEPT_BACKOFF:?}",
                        listener.worker.address
                    );
                    listener.paused_until = Some(*now + ACCEPT_BACKOFF);
                    return false;
                }
                Err(error) => {
                    log::debug!("accept on {}: {error}", listener.worker.address);
                }
            }
        }
        true
    });
    for handle in &accepted {
        connection_io::on_accepted(handle);
    }
    if more {
        with(|reactor| reactor.accept_again = true);
    }
}

/// Turns away a connection over `max_connections`: `503` on HTTP (and WebSocket, whose handshake
/// is HTTP), then close.
fn refuse(stream: &Stream, worker: &WorkerShared) {
    use std::io::Write;
    log::debug!(
        "worker {} holds max_connections ({}): refusing a connection",
        worker.name.borrow(),
        worker.max_connections.get()
    );
    if matches!(
        *worker.protocol.borrow(),
        crate::protocols::ProtocolKind::Http | crate::protocols::ProtocolKind::WebSocket
    ) {
        let mut stream = stream;
        let _ = stream.write(crate::protocols::http::SERVICE_UNAVAILABLE);
    }
}

fn out_of_descriptors(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}

/// The first turn after a stop was asked for: `on_worker_stop`, stop listening, close every
/// connection (flushing what is queued). Returns `true` once every connection is gone, or when
/// the stop timeout (`Worker::stop_timeout`, 2 s) has passed, destroying whatever is left.
///
/// A graceful stop (a worker process's SIGQUIT or SIGUSR2) only stops listening: connections and
/// timers go on, and the loop ends with the last connection. A hard stop asked for during a
/// graceful one closes what is left then.
fn shut_down(run: &Run) -> bool {
    let first = with(|reactor| !std::mem::replace(&mut reactor.stopping, true));
    if first {
        (run.on_stop)();
        with(|reactor| {
            for listener in &mut reactor.listeners {
                let _ = reactor.poll.registry().deregister(&mut listener.socket);
            }
            reactor.listeners.clear();
            crate::connection::udp::end_all_peers(reactor);
        });
    }
    let close_all = with(|reactor| !reactor.graceful && reactor.stop_deadline.is_none());
    if close_all {
        let handles = with(|reactor| {
            reactor.timers.clear();
            all_handles(reactor)
        });
        let stop_timeout = stop_timeout();
        let grace = with(|reactor| {
            let grace = reactor
                .signals
                .is_some()
                .then(|| Instant::now() + crate::blocking::stop_grace(reactor, stop_timeout));
            reactor.first_request_grace = grace;
            grace
        });
        for handle in handles {
            if grace.is_none() {
                handle.close();
                continue;
            }
            // In a worker process, requests already received are answered first (a fast handler
            // answers at once); closing with unread input would reset the connection instead.
            connection_io::on_readable(&handle, false);
            // HTTP connections are closed by their next response (`Connection: close`), or
            // below once idle past the grace: closing a keep-alive connection now would cut a
            // request already on its way. A connection waiting for a blocking job stays too.
            let keep = with(|reactor| {
                reactor.connection(&handle).is_some_and(|c| {
                    c.bytes_read == 0
                        || crate::connection::http::finishes_before_stop(c)
                        || crate::blocking::awaits_job(reactor, c)
                })
            });
            if !keep {
                handle.close();
            }
        }
        let deadline = Instant::now() + stop_timeout;
        with(|reactor| reactor.stop_deadline = Some(deadline));
    } else if let Some(grace) = with(|reactor| reactor.first_request_grace) {
        // Close the connections left open above once answered (or when the grace is over).
        let now = Instant::now();
        let answered = with(|reactor| {
            reactor
                .connections
                .iter()
                .filter(|(_, c)| {
                    c.status == TcpConnection::STATUS_ESTABLISHED
                        && if crate::connection::http::finishes_before_stop(c) {
                            // A request under way runs to the stop timeout.
                            now >= grace && crate::connection::http::between_requests(c)
                        } else {
                            now >= grace
                                || (c.bytes_read > 0
                                    && c.pending_send() == 0
                                    && !c.dispatching
                                    && !crate::blocking::awaits_job(reactor, c))
                        }
                })
                .map(|(key, c)| TcpConnection::new(key, c.id))
                .collect::<Vec<_>>()
        });
        for handle in answered {
            handle.close();
        }
    }
    // Blocking jobs in flight (and their callbacks) are waited for as connections are.
    let (empty, late, jobs_done) = with(|reactor| {
        (
            reactor.connections.is_empty(),
            reactor.stop_deadline.is_some_and(|d| Instant::now() >= d),
            reactor.blocking.in_flight() == 0,
        )
    });
    if late && !(empty && jobs_done) {
        for handle in with(all_handles) {
            connection_io::destroy(&handle);
        }
        return true;
    }
    empty && jobs_done
}

/// `Worker::stop_timeout` (set in `crate::process`), in nanoseconds: how long a hard stop
/// waits for connections to close before destroying them.
static STOP_TIMEOUT_NANOS: AtomicU64 = AtomicU64::new(2_000_000_000);

/// How long a hard stop waits for connections to close (`Worker::stop_timeout`, 2 s).
pub(crate) fn stop_timeout() -> Duration {
    Duration::from_nanos(STOP_TIMEOUT_NANOS.load(Ordering::Relaxed))
}

/// Sets [`stop_timeout`] (`Worker::set_stop_timeout`); past 584 years it saturates.
pub(crate) fn set_stop_timeout(timeout: Duration) {
    let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    STOP_TIMEOUT_NANOS.store(nanos, Ordering::Relaxed);
}

/// How long a worker process's hard stop (`stop`, `reload`) waits for the first request of a
/// connection accepted just before it (a client that connected expects an answer, not a
/// close), and for the next request of an idle HTTP keep-alive connection (answered with
/// `Connection: close`, so a client under load loses none).
pub(crate) const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

fn all_handles(reactor: &mut Reactor) -> Vec<TcpConnection> {
    reactor
        .connections
        .iter()
        .map(|(key, connection)| TcpConnection::new(key, connection.id))
        .collect()
}
