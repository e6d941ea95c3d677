//! The connection table of one worker thread, and the way every piece of code on that thread
//! reaches it.
//!
//! It holds what the connections and their driver share with the reactor: the `mio::Poll` they
//! register with, the slab of connections and the listeners, the timer queue, the connections'
//! deadlines, the queue of connections to run again, the shared read and write buffers, the
//! statistics. The reactor (`crate::reactor`) makes one, installs it for the length of its loop
//! and drives it; everything else reaches it through [`with`], which borrows it for one short,
//! non-reentrant operation. User code never holds a reference into it: a [`TcpConnection`] is a
//! slab key plus the connection's id. User callbacks run with no borrow held (through
//! [`call_user`]), so they may call anything.

use std::any::Any;
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use mio::{Poll, Waker};
use slab::Slab;

use super::resolutions::Resolutions;
use super::state::Connection;
use super::stream::Listen;
use super::timer_queue::{TimerCallback, TimerId, TimerQueue, interval_from_seconds};
use super::{TcpConnection, WorkerShared};
use crate::metrics::counters::ReactorMetrics;
use crate::metrics::statistics::Statistics;

/// The shared read buffer's size (Workerman reads 87,380 bytes at a time).
pub(crate) const READ_BUFFER_SIZE: usize = 64 * 1024;

thread_local! {
    static TABLE: RefCell<Option<Table>> = const { RefCell::new(None) };
}

/// A listening socket and its worker.
pub(crate) struct Listener {
    pub(crate) socket: Listen,
    pub(crate) worker: Rc<WorkerShared>,
    /// Set after `EMFILE`/`ENFILE`: accepting resumes at this instant.
    pub(crate) paused_until: Option<Instant>,
}

/// A worker thread's sockets, timers, deadlines and shared buffers (see the module docs).
pub(crate) struct Table {
    pub(crate) poll: Poll,
    pub(crate) connections: Slab<Connection>,
    pub(crate) listeners: Vec<Listener>,
    pub(crate) timers: TimerQueue,
    /// Connection deadlines (head timeout, keep-alive idle, linger), earliest first; see
    /// [`Table::set_deadline`].
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
    /// Set when a stop is asked for (from this thread or another: see `reactor::Stopper`).
    pub(crate) stop: Arc<AtomicBool>,
    /// Set once a stop has begun; the loop ends when every connection is gone or at the stop
    /// deadline.
    pub(crate) stopping: bool,
    /// The stop asked for is graceful: stop accepting, keep the connections, end with the last.
    pub(crate) graceful: bool,
    /// A listener's back-off ended, or a batch of accepts was cut short: accept again this turn.
    pub(crate) accept_again: bool,
    /// Client connections' resolved host names, handed over by resolver threads (which wake us).
    pub(crate) resolutions: Resolutions,
    /// Connections (key, id) whose events are handled first in each turn (a Redis client's):
    /// a broker is read before the connections it feeds. Gone ones are dropped each turn.
    pub(crate) read_first: Vec<(usize, u64)>,
    /// What the metrics count beyond `statistics`, and the slot they are published into.
    pub(crate) metrics: ReactorMetrics,
}

/// Runs `f` on this thread's table. Panics with `who` named when no worker runs here.
pub(crate) fn with_running<R>(who: &str, f: impl FnOnce(&mut Table) -> R) -> R {
    try_with(f).unwrap_or_else(|| not_running(who))
}

/// Panics: `who` was called on a thread that runs no worker.
pub(crate) fn not_running(who: &str) -> ! {
    panic!(
        "{who} needs a running worker on this thread: call it from on_worker_start, \
         on_message or another callback, after Worker::run_all() has started"
    )
}

/// Runs `f` on this thread's table, or returns `None` when no worker runs here.
pub(crate) fn try_with<R>(f: impl FnOnce(&mut Table) -> R) -> Option<R> {
    TABLE.with(|cell| cell.borrow_mut().as_mut().map(f))
}

/// Runs `f` on this thread's table; only for code that runs inside the loop.
pub(crate) fn with<R>(f: impl FnOnce(&mut Table) -> R) -> R {
    with_running("the reactor", f)
}

/// Whether a table is installed on this thread (a worker runs here).
pub(crate) fn is_installed() -> bool {
    TABLE.with(|cell| cell.borrow().is_some())
}

/// Installs `table` on this thread (the reactor does, before its loop).
pub(crate) fn install(table: Table) {
    TABLE.with(|cell| *cell.borrow_mut() = Some(table));
}

/// Takes this thread's table out (the reactor does, after its loop).
pub(crate) fn uninstall() -> Option<Table> {
    TABLE.with(|cell| cell.borrow_mut().take())
}

/// Calls user code, catching a panic: it is logged with `what`, counted, and reported as `None`.
pub(crate) fn call_user<R>(what: &dyn Fn() -> String, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) => {
            log::error!("panic in {}: {}", what(), panic_message(&payload));
            try_with(|table| table.statistics.panics += 1);
            None
        }
    }
}

/// A panic's message, when it has one.
pub(crate) fn panic_message(payload: &Box<dyn Any + Send>) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "(a non-string panic payload)"
    }
}

/// Adds a timer of `seconds` to this thread's queue; panics with `who` named when `seconds` is
/// negative or not finite, or no worker runs here.
pub(crate) fn add_timer(who: &str, seconds: f64, callback: TimerCallback) -> TimerId {
    let interval = interval_from_seconds(seconds, who);
    with_running(who, |table| table.timers.insert(interval, callback))
}

/// Deletes a timer; `false` when it was gone (or no worker runs here).
pub(crate) fn delete_timer(timer: TimerId) -> bool {
    try_with(|table| table.timers.remove(timer)).unwrap_or(false)
}

impl Table {
    /// A table around `poll`; `waker` wakes the reactor when a resolver thread is done.
    pub(crate) fn new(poll: Poll, waker: Arc<Waker>, stop: Arc<AtomicBool>) -> Table {
        Table {
            poll,
            connections: Slab::new(),
            listeners: Vec::new(),
            timers: TimerQueue::default(),
            deadlines: BinaryHeap::new(),
            ready: VecDeque::new(),
            next_connection_id: 0,
            read_buffer: vec![0; READ_BUFFER_SIZE],
            write_scratch: Vec::with_capacity(4096),
            now: Instant::now(),
            statistics: Statistics::default(),
            stop,
            stopping: false,
            graceful: false,
            accept_again: false,
            resolutions: Resolutions::new(waker),
            read_first: Vec::new(),
            metrics: ReactorMetrics::new(),
        }
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
    pub(crate) fn expired_connections(&mut self, now: Instant, expired: &mut Vec<TcpConnection>) {
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

    /// The earliest connection deadline queued (possibly a stale one, which only wakes early).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines
            .peek()
            .map(|&Reverse((deadline, _, _))| deadline)
    }

    /// Handles of every connection.
    pub(crate) fn all_handles(&self) -> Vec<TcpConnection> {
        self.connections
            .iter()
            .map(|(key, connection)| TcpConnection::new(key, connection.id))
            .collect()
    }
}
