//! Work that blocks, off the reactor: [`Worker::spawn_blocking`](crate::Worker::spawn_blocking) runs a job on a pool of threads
//! owned by the worker process and brings its result back to the reactor thread, where the
//! callback runs.
//!
//! - The pool starts its threads on first use, up to [`Worker::blocking_threads`](crate::Worker::blocking_threads) (default: four
//!   per core), so a process that never blocks has no extra thread, and a master process that
//!   forks has none either.
//! - At most [`Worker::blocking_queue_size`](crate::Worker::blocking_queue_size) jobs are in flight at once (waiting for a thread,
//!   running, or finished with their callback not yet run); past that a submit is refused at
//!   once: `spawn_blocking` returns [`BlockingError::QueueFull`], the callback is never called,
//!   and the refusal is counted in [`Statistics::blocking_refused`](crate::Statistics) (the
//!   `status` table's `refused` column).
//! - A finished job pushes its result to a list and wakes the reactor through its `mio::Waker`
//!   (once per batch: a flag says a wake is already on its way); the reactor drains the list in
//!   the turn it wakes.
//! - A panic in a job reaches its callback as [`BlockingError::Panicked`]; the thread goes on.
//! - A stop (`stop`, `reload`, [`RunningWorker::stop`](crate::RunningWorker::stop)) waits for the
//!   jobs in flight and their callbacks up to the stop timeout ([`Worker::stop_timeout`](crate::Worker::stop_timeout)), then
//!   goes: jobs still queued are dropped, threads still running a job end after it. In a worker
//!   process, a hard stop also keeps open the HTTP connections whose request has no answer yet
//!   while jobs are in flight ([`awaits_job`]), so a job that ends in time answers its request.

use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use mio::Waker;
use slab::Slab;

use crate::connection::Connection;
use crate::connection::table::{self, call_user, panic_message};
use crate::protocols::http::Streaming;

/// [`Worker::set_blocking_threads`](crate::Worker::set_blocking_threads)(crate::Worker::set_blocking_threads); 0: the default.
static THREADS: AtomicUsize = AtomicUsize::new(0);
/// [`Worker::set_blocking_queue_size`](crate::Worker::set_blocking_queue_size)(crate::Worker::set_blocking_queue_size); 0: the default.
static QUEUE_SIZE: AtomicUsize = AtomicUsize::new(0);
const DEFAULT_QUEUE_SIZE: usize = 1024;

/// Why a blocking job gave no result.
///
/// ```
/// use workerman::BlockingError;
/// let error = BlockingError::Panicked("disk on fire".to_owned());
/// assert_eq!(error.to_string(), "the blocking job panicked: disk on fire");
/// assert!(BlockingError::QueueFull { limit: 8 }.is_refused());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockingError {
    /// The submit was refused: `limit` jobs were in flight already. Returned by
    /// [`Worker::spawn_blocking`](crate::Worker::spawn_blocking); the callback is not called.
    QueueFull {
        /// [`Worker::blocking_queue_size`](crate::Worker::blocking_queue_size) at the time.
        limit: usize,
    },
    /// The job panicked, with this message; the callback gets this instead of a value.
    Panicked(String),
}

impl BlockingError {
    /// Whether this is a refused submit ([`BlockingError::QueueFull`]).
    ///
    /// ```
    /// assert!(!workerman::BlockingError::Panicked(String::new()).is_refused());
    /// ```
    pub fn is_refused(&self) -> bool {
        matches!(self, BlockingError::QueueFull { .. })
    }
}

impl fmt::Display for BlockingError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockingError::QueueFull { limit } => write!(
                formatter,
                "the blocking pool is full ({limit} jobs in flight): refused"
            ),
            BlockingError::Panicked(message) => {
                write!(formatter, "the blocking job panicked: {message}")
            }
        }
    }
}

impl std::error::Error for BlockingError {}

type Job = Box<dyn FnOnce() -> Box<dyn Any + Send> + Send>;
type Outcome = Result<Box<dyn Any + Send>, BlockingError>;
type Callback = Box<dyn FnOnce(Outcome)>;

struct Task {
    slot: usize,
    job: Job,
}

#[derive(Default)]
struct Queue {
    tasks: VecDeque<Task>,
    threads: usize,
    idle: usize,
    /// Threads asked for and not yet running: at most one at a time, the next one is started
    /// by the thread that needs it.
    starting: usize,
    closed: bool,
}

impl Queue {
    /// More jobs wait than threads are free, none is being started, and the limit allows one.
    fn needs_thread(&self) -> bool {
        self.tasks.len() > self.idle && self.starting == 0 && self.threads < threads()
    }
}

/// What the pool's threads and the reactor share.
struct Pool {
    queue: Mutex<Queue>,
    available: Condvar,
    finished: Mutex<Vec<(usize, Outcome)>>,
    /// Set by the first job to finish after the reactor's last drain: a wake is on its way.
    woken: AtomicBool,
    waker: Arc<Waker>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Jobs run outside every lock, so a poisoned lock only means a panic between two plain
    // pushes: the data is whole.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Pool {
    /// Starts one more thread, unless the pool has its limit.
    fn start_thread(self: &Arc<Pool>) {
        let pool = self.clone();
        let started = std::thread::Builder::new()
            .name("workerman-blocking".to_owned())
            .spawn(move || pool.work());
        if let Err(error) = started {
            let mut queue = lock(&self.queue);
            queue.threads -= 1;
            queue.starting -= 1;
            log::error!("could not start a blocking pool thread: {error}");
        }
    }

    fn work(self: Arc<Pool>) {
        lock(&self.queue).starting -= 1;
        loop {
            let (task, more) = {
                let mut queue = lock(&self.queue);
                loop {
                    if queue.closed {
                        queue.threads -= 1;
                        return;
                    }
                    if let Some(task) = queue.tasks.pop_front() {
                        // Threads start each other, so a burst never costs the reactor a
                        // `clone(2)` per job.
                        let more = queue.needs_thread();
                        if more {
                            queue.threads += 1;
                            queue.starting += 1;
                        }
                        break (task, more);
                    }
                    queue.idle += 1;
                    queue = self
                        .available
                        .wait(queue)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    queue.idle -= 1;
                }
            };
            if more {
                self.start_thread();
            }
            let outcome = catch_unwind(AssertUnwindSafe(task.job))
                .map_err(|payload| BlockingError::Panicked(panic_message(&payload).to_owned()));
            lock(&self.finished).push((task.slot, outcome));
            if !self.woken.swap(true, Ordering::AcqRel) {
                if let Err(error) = self.waker.wake() {
                    log::error!("could not wake the worker after a blocking job: {error}");
                }
            }
        }
    }
}

/// Where an ordered job's callback stands among its connection's.
#[derive(Default)]
struct Order {
    /// The ticket the next submit gets.
    next_ticket: u64,
    /// The ticket whose callback runs next.
    next_due: u64,
    /// Finished out of turn: ticket → (slot, outcome).
    parked: BTreeMap<u64, (usize, Outcome)>,
}

struct Pending {
    callback: Callback,
    /// For an ordered job: its connection's (key, id) and its ticket.
    order: Option<((usize, u64), u64)>,
}

/// The reactor's side of the pool: one per reactor (so one per worker process).
pub(crate) struct Blocking {
    waker: Arc<Waker>,
    pool: Option<Arc<Pool>>,
    pending: Slab<Pending>,
    orders: HashMap<(usize, u64), Order>,
}

impl Blocking {
    pub(crate) fn new(waker: Arc<Waker>) -> Blocking {
        Blocking {
            waker,
            pool: None,
            pending: Slab::new(),
            orders: HashMap::new(),
        }
    }

    /// Jobs submitted whose callback has not run yet.
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.len()
    }

    fn submit(
        &mut self,
        job: Job,
        callback: Callback,
        order: Option<(usize, u64)>,
    ) -> Result<(), BlockingError> {
        let limit = queue_size();
        if self.pending.len() >= limit {
            return Err(BlockingError::QueueFull { limit });
        }
        let order = order.map(|key| {
            let entry = self.orders.entry(key).or_default();
            entry.next_ticket += 1;
            (key, entry.next_ticket - 1)
        });
        let slot = self.pending.insert(Pending { callback, order });
        let waker = &self.waker;
        let pool = self.pool.get_or_insert_with(|| {
            Arc::new(Pool {
                queue: Mutex::default(),
                available: Condvar::new(),
                finished: Mutex::default(),
                woken: AtomicBool::new(false),
                waker: waker.clone(),
            })
        });
        let mut queue = lock(&pool.queue);
        queue.tasks.push_back(Task { slot, job });
        // Threads start one at a time, the next by the thread that took a job and saw more
        // waiting, so a burst of submits costs the reactor one `clone(2)`, not one per job.
        let start = queue.needs_thread();
        if start {
            queue.threads += 1;
            queue.starting += 1;
        }
        let notify = queue.idle > 0;
        drop(queue);
        if notify {
            pool.available.notify_one();
        }
        if start {
            pool.start_thread();
        }
        Ok(())
    }

    /// The finished jobs' callbacks to run now, in the order they may run.
    fn take_finished(&mut self) -> Vec<(Callback, Outcome)> {
        let Some(pool) = &self.pool else {
            return Vec::new();
        };
        // Cleared before the list is taken: a job finishing after the take wakes us again.
        pool.woken.store(false, Ordering::Release);
        let finished = std::mem::take(&mut *lock(&pool.finished));
        let mut ready = Vec::with_capacity(finished.len());
        for (slot, outcome) in finished {
            let Some(order) = self.pending.get(slot).and_then(|pending| pending.order) else {
                if let Some(pending) = self.pending.try_remove(slot) {
                    ready.push((pending.callback, outcome));
                }
                continue;
            };
            let (key, ticket) = order;
            let Some(entry) = self.orders.get_mut(&key) else {
                continue;
            };
            entry.parked.insert(ticket, (slot, outcome));
            while let Some((slot, outcome)) = entry.parked.remove(&entry.next_due) {
                entry.next_due += 1;
                if let Some(pending) = self.pending.try_remove(slot) {
                    ready.push((pending.callback, outcome));
                }
            }
            if entry.next_due == entry.next_ticket {
                self.orders.remove(&key);
            }
        }
        ready
    }
}

impl Drop for Blocking {
    fn drop(&mut self) {
        let Some(pool) = &self.pool else {
            return;
        };
        let mut queue = lock(&pool.queue);
        queue.closed = true;
        let dropped = queue.tasks.len();
        queue.tasks.clear();
        let busy = queue.threads - queue.idle;
        drop(queue);
        pool.available.notify_all();
        if dropped > 0 || self.pending.len() > dropped {
            log::warn!(
                "worker stopped with {} blocking jobs in flight: {dropped} not started were \
                 dropped, {busy} still running end on their own",
                self.pending.len()
            );
        }
    }
}

thread_local! {
    /// This thread's side of the pool, while a worker runs here (the reactor installs it).
    static BLOCKING: RefCell<Option<Blocking>> = const { RefCell::new(None) };
}

/// Gives this thread its side of the pool; finished jobs wake the reactor through `waker`.
pub(crate) fn install(waker: Arc<Waker>) {
    BLOCKING.with(|cell| *cell.borrow_mut() = Some(Blocking::new(waker)));
}

/// Drops this thread's side of the pool (the worker stopped).
pub(crate) fn uninstall() {
    let blocking = BLOCKING.with(|cell| cell.borrow_mut().take());
    drop(blocking);
}

/// Jobs submitted on this thread whose callback has not run yet.
pub(crate) fn in_flight() -> usize {
    BLOCKING.with(|cell| cell.borrow().as_ref().map_or(0, Blocking::in_flight))
}

/// Whether `connection` is an HTTP request whose answer has not started while blocking jobs are
/// in flight (its answer may be one of their callbacks).
pub(crate) fn awaits_job(connection: &Connection) -> bool {
    in_flight() > 0
        && connection.http.awaiting_response
        && connection.http.streaming == Streaming::None
}

/// The reactor was woken: run the callbacks of finished jobs (no borrow held).
pub(crate) fn on_woken() {
    let ready = BLOCKING.with(|cell| {
        cell.borrow_mut()
            .as_mut()
            .map(Blocking::take_finished)
            .unwrap_or_default()
    });
    for (callback, outcome) in ready {
        call_user(&|| "a spawn_blocking callback".to_owned(), move || {
            callback(outcome)
        });
    }
}

/// Submits `job` (`Worker::spawn_blocking`, or its ordered variant with the connection's
/// `order`); `who` is named in the panic when no worker runs on this thread.
pub(crate) fn submit<T, J, C>(
    who: &str,
    order: Option<(usize, u64)>,
    job: J,
    callback: C,
) -> Result<(), BlockingError>
where
    T: Send + 'static,
    J: FnOnce() -> T + Send + 'static,
    C: FnOnce(Result<T, BlockingError>) + 'static,
{
    let job: Job = Box::new(move || Box::new(job()) as Box<dyn Any + Send>);
    let callback: Callback = Box::new(move |outcome: Outcome| {
        callback(outcome.map(|value| match value.downcast::<T>() {
            Ok(value) => *value,
            Err(_) => unreachable!("a job's result has the type its callback takes"),
        }))
    });
    let submitted = BLOCKING
        .with(|cell| Some(cell.borrow_mut().as_mut()?.submit(job, callback, order)))
        .unwrap_or_else(|| table::not_running(who));
    if submitted.is_err() {
        table::with(|table| table.statistics.blocking_refused += 1);
    }
    submitted
}

/// Sets the pool's thread limit (`Worker::set_blocking_threads`); at least 1.
pub(crate) fn set_threads(threads: usize) {
    THREADS.store(threads.max(1), Ordering::Relaxed);
}

/// The pool's thread limit in effect: four per core unless set.
pub(crate) fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => 4 * std::thread::available_parallelism().map_or(1, |cores| cores.get()),
        threads => threads,
    }
}

/// Sets the most jobs in flight (`Worker::set_blocking_queue_size`); at least 1.
pub(crate) fn set_queue_size(jobs: usize) {
    QUEUE_SIZE.store(jobs.max(1), Ordering::Relaxed);
}

/// The in-flight limit in effect: 1024 unless set.
pub(crate) fn queue_size() -> usize {
    match QUEUE_SIZE.load(Ordering::Relaxed) {
        0 => DEFAULT_QUEUE_SIZE,
        jobs => jobs,
    }
}
