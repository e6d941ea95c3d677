//! The worker's face of the blocking pool (`crate::blocking`): `spawn_blocking`, its ordered
//! variant and the pool's settings.

use crate::blocking::{self, BlockingError};
use crate::connection::TcpConnection;
use crate::worker::Worker;

/// The pool (see the module docs): `spawn_blocking`, its ordered variant and its settings.
impl Worker {
    /// Runs `job` on the worker process's blocking pool, then `callback` with its result on this
    /// (the reactor's) thread: the way to call a database driver, a file system or a password
    /// hash without freezing every connection of the process.
    ///
    /// The callback gets `Err(BlockingError::Panicked(..))` when the job panicked. Past
    /// [`blocking_queue_size`](Worker::blocking_queue_size) jobs in flight the submit is refused:
    /// this returns [`BlockingError::QueueFull`] at once and `callback` is dropped uncalled
    /// (answer `503`, say); refusals are counted in `status`. Callbacks run in the order jobs
    /// finish; [`spawn_blocking_ordered`](Worker::spawn_blocking_ordered) keeps a connection's in
    /// submission order. A connection captured in the callback that closed meanwhile makes its
    /// sends no-ops, as every stale handle.
    ///
    /// # Panics
    /// When no worker runs on this thread (call it from a callback).
    ///
    /// ```no_run
    /// use workerman::protocols::http::{Request, Response};
    /// use workerman::{TcpConnection, Worker};
    ///
    /// let mut worker = Worker::new("http://0.0.0.0:8080");
    /// worker.on_message(|connection: &TcpConnection, _request: Request| {
    ///     let connection = connection.clone();
    ///     let reply = connection.clone();
    ///     let submitted = Worker::spawn_blocking(
    ///         || std::fs::read_to_string("/etc/hostname").unwrap_or_default(),
    ///         move |result| match result {
    ///             Ok(name) => drop(reply.send(name)),
    ///             Err(error) => drop(reply.send(Response::new(500, [("X-Error", "job")], error.to_string()))),
    ///         },
    ///     );
    ///     if submitted.is_err() {
    ///         connection.send(Response::new(503, [("Retry-After", "1")], "busy"));
    ///     }
    /// });
    /// Worker::run_all();
    /// ```
    pub fn spawn_blocking<T, J, C>(job: J, callback: C) -> Result<(), BlockingError>
    where
        T: Send + 'static,
        J: FnOnce() -> T + Send + 'static,
        C: FnOnce(Result<T, BlockingError>) + 'static,
    {
        blocking::submit("Worker::spawn_blocking", None, job, callback)
    }

    /// [`spawn_blocking`](Worker::spawn_blocking) whose callback runs in submission order among
    /// the ordered jobs of `connection`: a job that finishes early waits for the callbacks of
    /// the ones submitted before it (the jobs themselves still run at the same time, on
    /// different threads). For answers that must leave in the order their requests came, as
    /// WebSocket or `text://` messages. Jobs of different connections never wait for each other.
    ///
    /// ```no_run
    /// use workerman::{TcpConnection, Worker};
    ///
    /// let mut worker = Worker::new("text://0.0.0.0:9000");
    /// worker.on_message(|connection: &TcpConnection, line: String| {
    ///     let reply = connection.clone();
    ///     let _ = Worker::spawn_blocking_ordered(
    ///         connection,
    ///         move || line.to_uppercase(),
    ///         move |result| {
    ///             if let Ok(upper) = result {
    ///                 reply.send(upper);
    ///             }
    ///         },
    ///     );
    /// });
    /// Worker::run_all();
    /// ```
    pub fn spawn_blocking_ordered<T, J, C>(
        connection: &TcpConnection,
        job: J,
        callback: C,
    ) -> Result<(), BlockingError>
    where
        T: Send + 'static,
        J: FnOnce() -> T + Send + 'static,
        C: FnOnce(Result<T, BlockingError>) + 'static,
    {
        let key = (connection.key(), connection.id());
        blocking::submit("Worker::spawn_blocking_ordered", Some(key), job, callback)
    }

    /// Sets how many threads each worker process's blocking pool may start (they start on first
    /// use). Default: four per core. Set it before [`Worker::run_all`]; a pool already running
    /// keeps its size. At least 1.
    ///
    /// ```
    /// workerman::Worker::set_blocking_threads(32);
    /// assert_eq!(workerman::Worker::blocking_threads(), 32);
    /// ```
    pub fn set_blocking_threads(threads: usize) {
        blocking::set_threads(threads);
    }

    /// The blocking pool's thread limit in effect (see
    /// [`set_blocking_threads`](Worker::set_blocking_threads)).
    ///
    /// ```
    /// assert!(workerman::Worker::blocking_threads() >= 1);
    /// ```
    pub fn blocking_threads() -> usize {
        blocking::threads()
    }

    /// Sets how many blocking jobs a worker process holds in flight at most (waiting, running,
    /// or finished with their callback not yet run); beyond it a submit is refused. Default
    /// 1024. At least 1.
    ///
    /// ```
    /// workerman::Worker::set_blocking_queue_size(64);
    /// assert_eq!(workerman::Worker::blocking_queue_size(), 64);
    /// ```
    pub fn set_blocking_queue_size(jobs: usize) {
        blocking::set_queue_size(jobs);
    }

    /// The in-flight limit in effect (see
    /// [`set_blocking_queue_size`](Worker::set_blocking_queue_size)).
    ///
    /// ```
    /// assert!(workerman::Worker::blocking_queue_size() >= 1);
    /// ```
    pub fn blocking_queue_size() -> usize {
        blocking::queue_size()
    }
}
