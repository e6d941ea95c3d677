//! The reactor: one `mio::Poll` per worker thread, and the loop that turns it.
//!
//! It makes the thread's connection table (`crate::connection::table`: every socket, listeners
//! and connections, the timers, the connection deadlines), installs it for the length of the loop
//! and drives it; it keeps for itself only the loop's own state (the signal socket, the stop's
//! deadline). The timers' public face (`crate::timer`), the blocking pool (`crate::blocking`) and
//! the user's fds (`crate::event_loop`) reach the table, never the reactor.
//!
//! One turn of the loop: wait for events (no longer than the next timer or deadline), handle them
//! (accept, write, read and dispatch), run connections queued for another go (`resume_recv`, a
//! pipelined request whose predecessor was answered later), fire due timers, close connections whose
//! deadline passed.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};

use crate::connection::WorkerShared;
use crate::connection::io as connection_io;
use crate::connection::output;
use crate::connection::stream::Listen;
use crate::connection::stream::Stream;
use crate::connection::table::{self, Listener, Table, with};
use crate::connection::timer_queue::{ScheduledTimer, TimerCallback};
use crate::connection::{Connection, TcpConnection};

// For the floors above and the modules beside (they reach the table through the reactor's name).
pub(crate) use crate::connection::table::{call_user, try_with};

/// The waker's token; listeners count down from just below it; connections are slab keys.
const WAKER: Token = Token(usize::MAX);
/// A worker process's signal socket (see `crate::process::child`).
const SIGNALS: Token = Token(usize::MAX - 1);
const LISTENER_BASE: usize = usize::MAX / 2;
/// How long accepting pauses after the process ran out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// The most connections one listener accepts in a row before other events get a turn.
const ACCEPT_BATCH: usize = 1024;

/// What only the loop itself keeps (the rest is in the thread's connection table, which it
/// installs and drives: `crate::connection::table`).
struct Reactor {
    /// The timers due this turn; kept to reuse its allocation.
    timer_batch: Vec<ScheduledTimer>,
    /// Past it, a hard stop destroys the connections left.
    stop_deadline: Option<Instant>,
    /// In a worker process: the socket its signal handlers write to, registered as [`SIGNALS`].
    signals: Option<mio::net::UnixStream>,
    /// In a worker process: how its signals are read and acted on (`crate::process::child`).
    signal_handler: Option<SignalHandler>,
    /// Hard stop in a worker process: until this instant, a connection that has not sent a byte
    /// yet is left open for the request its client is sending (see [`shut_down`]).
    first_request_grace: Option<Instant>,
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

impl Reactor {
    /// The loop's own state, the thread's table and the waker (shared by both, and by the
    /// blocking pool).
    fn new() -> io::Result<(Reactor, Table, Arc<Waker>, Stopper)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let flag = Arc::new(AtomicBool::new(false));
        let table = Table::new(poll, waker.clone(), flag.clone());
        let reactor = Reactor {
            timer_batch: Vec::new(),
            stop_deadline: None,
            signals: None,
            signal_handler: None,
            first_request_grace: None,
        };
        let stopper = Stopper {
            flag,
            waker: waker.clone(),
        };
        Ok((reactor, table, waker, stopper))
    }
}

/// How long the loop may wait for events: until the next timer, deadline or listener's back-off.
fn poll_timeout(table: &Table) -> Option<Duration> {
    if !table.ready.is_empty() || table.accept_again {
        return Some(Duration::ZERO);
    }
    if table.stop.load(Ordering::Relaxed) && !table.graceful {
        // Stopping: look again soon for the last connections to finish closing.
        return Some(Duration::from_millis(if table.stopping { 10 } else { 0 }));
    }
    let mut next = table.timers.next_wake();
    if let Some(deadline) = table.next_deadline() {
        next = Some(next.map_or(deadline, |timer| timer.min(deadline)));
    }
    for listener in &table.listeners {
        if let Some(until) = listener.paused_until {
            next = Some(next.map_or(until, |other| other.min(until)));
        }
    }
    next.map(|deadline| deadline.saturating_duration_since(Instant::now()))
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
/// the signal numbers waiting on the socket (the loop's own), `deliver` acts on
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
    try_with(|table| {
        let stopping = table.stop.load(Ordering::SeqCst);
        table.graceful = graceful && (!stopping || table.graceful);
        table.stop.store(true, Ordering::SeqCst);
        for listener in &mut table.listeners {
            let _ = table.poll.registry().deregister(&mut listener.socket);
        }
        table.listeners.clear();
    });
}

fn run_with(
    run: Run,
    started: Option<std::sync::mpsc::Sender<io::Result<Started>>>,
    signals: Option<(mio::net::UnixStream, SignalHandler)>,
) -> io::Result<()> {
    if table::is_installed() {
        let error = io::Error::other("a worker is already running on this thread");
        if let Some(started) = started {
            let _ = started.send(Err(io::Error::other(error.to_string())));
        }
        return Err(error);
    }
    let setup = Reactor::new().and_then(|(mut reactor, mut table, waker, stopper)| {
        let mut addresses = Vec::new();
        for worker in &run.workers {
            if worker.listen.is_empty() {
                // Keeps `addresses` in step with `workers` (for `Worker::spawn`).
                addresses.push(SocketAddr::from(([0, 0, 0, 0], 0)));
                continue;
            }
            let mut socket = Listen::new(worker.bind()?);
            table.poll.registry().register(
                &mut socket,
                Token(LISTENER_BASE - table.listeners.len()),
                Interest::READABLE,
            )?;
            let address = socket.local_addr()?;
            worker.local_address.set(Some(address));
            addresses.push(address);
            table.listeners.push(Listener {
                socket,
                worker: worker.clone(),
                paused_until: None,
            });
        }
        if let Some((mut signals, handler)) = signals {
            table
                .poll
                .registry()
                .register(&mut signals, SIGNALS, Interest::READABLE)?;
            reactor.signals = Some(signals);
            reactor.signal_handler = Some(handler);
        }
        Ok((reactor, table, waker, Started { addresses, stopper }))
    });
    let (mut reactor, table, waker) = match setup {
        Ok((reactor, table, waker, ready)) => {
            if let Some(started) = started {
                let _ = started.send(Ok(ready));
            }
            (reactor, table, waker)
        }
        Err(error) => {
            if let Some(started) = started {
                let _ = started.send(Err(io::Error::new(error.kind(), error.to_string())));
            }
            return Err(error);
        }
    };
    table::install(table);
    crate::blocking::install(waker);
    crate::event_loop::install();

    (run.on_start)();

    let mut events = Events::with_capacity(1024);
    // The first turn starts now (`on_worker_start` is no turn of the loop).
    with(|table| table.now = Instant::now());
    let result = loop {
        if let Err(error) = turn(&mut reactor, &mut events) {
            break Err(error);
        }
        if with(|table| table.stop.load(Ordering::Relaxed)) && shut_down(&mut reactor, &run) {
            break Ok(());
        }
    };
    // The last turn's figures, published before the process ends.
    with(|table| {
        let timers = table.timers.len();
        table
            .metrics
            .end_turn(table.now, &table.statistics, || timers);
    });
    drop(table::uninstall());
    crate::blocking::uninstall();
    crate::event_loop::uninstall();
    result
}

/// One turn of the event loop.
fn turn(reactor: &mut Reactor, events: &mut Events) -> io::Result<()> {
    let timeout = with(|table| {
        // The previous turn (which began at `now`) ends here, before the wait.
        let Table {
            metrics,
            now,
            statistics,
            timers,
            ..
        } = table;
        metrics.end_turn(*now, statistics, || timers.len());
        poll_timeout(table)
    });
    let polled = with(|table| table.poll.poll(events, timeout));
    if let Err(error) = polled {
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    let now = Instant::now();
    with(|table| table.now = now);

    // Connections marked read-first are handled before every other event of this turn.
    let read_first = with(|table| {
        let Table {
            read_first,
            connections,
            ..
        } = table;
        read_first.retain(|&(key, id)| connections.get(key).is_some_and(|c| c.id == id));
        !read_first.is_empty()
    });
    let is_first =
        |token: Token| with(|table| table.read_first.iter().any(|&(key, _)| key == token.0));
    if read_first {
        for event in events.iter().filter(|event| is_first(event.token())) {
            handle_event(reactor, event);
        }
    }
    for event in events.iter() {
        if read_first && is_first(event.token()) {
            continue;
        }
        handle_event(reactor, event);
    }

    run_ready();
    fire_timers(reactor);
    let mut expired = Vec::new();
    with(|table| {
        table.expired_connections(now, &mut expired);
        for listener in &mut table.listeners {
            if listener.paused_until.is_some_and(|until| until <= now) {
                listener.paused_until = None;
                table.accept_again = true;
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
            output::destroy(&handle);
        }
    }
    if with(|table| std::mem::take(&mut table.accept_again)) {
        let count = with(|table| table.listeners.len());
        for index in 0..count {
            accept(index);
        }
    }
    Ok(())
}

/// One event: the waker, the signal socket, a listener, or a connection's socket.
fn handle_event(reactor: &mut Reactor, event: &mio::event::Event) {
    let token = event.token();
    if token == WAKER {
        crate::connection::async_tcp::on_resolved();
        crate::blocking::on_woken();
        return;
    }
    if token == SIGNALS {
        let handler = reactor.signal_handler;
        if let (Some(handler), Some(signals)) = (handler, reactor.signals.as_mut()) {
            (handler.deliver)((handler.take)(signals));
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
    let Some((id, status)) = with(|table| table.connections.get(key).map(|c| (c.id, c.status)))
    else {
        return;
    };
    let handle = TcpConnection::new(key, id);
    if status == TcpConnection::STATUS_CONNECTING {
        crate::connection::async_tcp::on_connect_event(&handle);
        return;
    }
    if event.is_writable() {
        output::on_writable(&handle);
    }
    let peer_closed = event.is_read_closed() || event.is_error();
    if event.is_readable() || peer_closed {
        connection_io::on_readable(&handle, peer_closed);
    }
}

/// Runs every connection queued for another go this turn.
fn run_ready() {
    loop {
        let next = with(|table| table.ready.pop_front());
        let Some((key, id)) = next else {
            return;
        };
        connection_io::resume(&TcpConnection::new(key, id));
    }
}

/// Fires every due timer once; a repeating timer is re-armed unless its callback deleted it.
fn fire_timers(reactor: &mut Reactor) {
    let now = Instant::now();
    let mut batch = std::mem::take(&mut reactor.timer_batch);
    with(|table| table.timers.take_due(now, &mut batch));
    for mut timer in batch.drain(..) {
        if !with(|table| table.timers.is_live(timer.id)) {
            continue;
        }
        let id = timer.id;
        match timer.callback {
            TimerCallback::Repeat(ref mut callback) => {
                call_user(&|| format!("timer {id}"), || callback(id));
                // The clock after the callback, not the batch's start: a batch that ran long
                // (a slow callback, or thousands of timers) must not re-arm a missed tick that
                // is already past, which would fire it again at once (a burst).
                with(|table| table.timers.rearm(timer, Instant::now()));
            }
            TimerCallback::Once(mut callback) => {
                with(|table| table.timers.finish(id));
                call_user(&|| format!("timer {id}"), move || callback(id));
            }
        }
    }
    reactor.timer_batch = batch;
}

/// Accepts on listener `index` until it would block (or a batch is done), then calls `on_connect`.
/// A `udp://` worker's socket receives datagrams instead.
fn accept(index: usize) {
    if with(|table| {
        table
            .listeners
            .get(index)
            .is_some_and(|listener| listener.socket.is_datagram())
    }) {
        return crate::connection::udp::on_readable(index);
    }
    let mut accepted = Vec::new();
    let more = with(|table| {
        let Table {
            listeners,
            connections,
            poll,
            next_connection_id,
            statistics,
            now,
            metrics,
            ..
        } = table;
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
        with(|table| table.accept_again = true);
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
fn shut_down(reactor: &mut Reactor, run: &Run) -> bool {
    let first = with(|table| !std::mem::replace(&mut table.stopping, true));
    if first {
        (run.on_stop)();
        with(|table| {
            for listener in &mut table.listeners {
                let _ = table.poll.registry().deregister(&mut listener.socket);
            }
            table.listeners.clear();
            crate::connection::udp::end_all_peers(table);
        });
    }
    let close_all = with(|table| !table.graceful) && reactor.stop_deadline.is_none();
    if close_all {
        let handles = with(|table| {
            table.timers.clear();
            table.all_handles()
        });
        let stop_timeout = stop_timeout();
        let grace = reactor.signals.is_some().then(|| {
            // While blocking jobs are in flight, a request waiting for one is answered when it
            // ends in time: the grace is the whole stop timeout.
            let grace = if crate::blocking::in_flight() > 0 {
                stop_timeout
            } else {
                FIRST_REQUEST_GRACE.min(stop_timeout)
            };
            Instant::now() + grace
        });
        reactor.first_request_grace = grace;
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
            let keep = with(|table| {
                table.connection(&handle).is_some_and(|c| {
                    c.bytes_read == 0
                        || crate::connection::http::finishes_before_stop(c)
                        || crate::blocking::awaits_job(c)
                })
            });
            if !keep {
                handle.close();
            }
        }
        reactor.stop_deadline = Some(Instant::now() + stop_timeout);
    } else if let Some(grace) = reactor.first_request_grace {
        // Close the connections left open above once answered (or when the grace is over).
        let now = Instant::now();
        let answered = with(|table| {
            table
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
                                    && !crate::blocking::awaits_job(c))
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
    let empty = with(|table| table.connections.is_empty());
    let late = reactor.stop_deadline.is_some_and(|d| Instant::now() >= d);
    let jobs_done = crate::blocking::in_flight() == 0;
    if late && !(empty && jobs_done) {
        for handle in with(|table| table.all_handles()) {
            output::destroy(&handle);
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
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);
