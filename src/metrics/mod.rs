//! Metrics: a Prometheus endpoint with the `status` figures of every worker process, opt-in with
//! [`Worker::set_metrics_listen`].
//!
//! - [`counters`]: what each reactor counts, and its once-per-turn publication.
//! - [`slots`]: the region of memory the master shares with every worker process, one slot each.
//! - [`exposition`]: a scrape rendered as Prometheus text by the `prometheus-client` crate.
//! - [`endpoint`]: the `http://` worker that serves `GET /metrics`: under `Worker::run_all`, in
//!   a process of its own (worker name `metrics`) that reads every slot; under
//!   [`Worker::spawn`], on the spawned thread's own reactor.
//!
//! The metric names are listed in `docs/metrics.md`.

pub(crate) mod counters;
pub(crate) mod endpoint;
mod exposition;
pub(crate) mod slots;

use std::sync::Mutex;

use crate::connection::WorkerShared;
use crate::connection::stream::Transport;
use crate::protocols::ProtocolKind;
use crate::worker::Worker;

/// `Worker::set_metrics_listen`'s address (`host:port`), if set.
static LISTEN: Mutex<Option<String>> = Mutex::new(None);

fn listen() -> Option<String> {
    LISTEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}

/// The index in [`slots::PROTOCOLS`] of a connection of `worker`: its protocol, or for raw
/// bytes (`tcp://`, `udp://`, `unix://`) its transport.
pub(crate) fn protocol_index(worker: &WorkerShared) -> usize {
    match &*worker.protocol.borrow() {
        ProtocolKind::Raw => match worker.transport.get() {
            Transport::Tcp => 0,
            Transport::Udp => 5,
            Transport::Unix => 6,
        },
        ProtocolKind::Text => 1,
        ProtocolKind::Frame => 2,
        ProtocolKind::Http => 3,
        ProtocolKind::WebSocket => 4,
        ProtocolKind::Custom(_) => 7,
    }
}

/// The metrics endpoint's setting (no Workerman counterpart).
impl Worker {
    /// Serves Prometheus metrics at `http://<address>/metrics` (off unless set): connections by
    /// protocol, requests, send failures, panics, bytes read and written, timers, bytes queued
    /// for sending, open SSE streams and a histogram of the time per reactor turn, summed over
    /// every worker process (`workerman_*`) and per process (`workerman_process_*`, labelled
    /// `worker`, `id`, `pid`). See `docs/metrics.md` for the names.
    ///
    /// A process-wide setting, like [`Worker::set_pid_file`]: one endpoint for the whole server.
    /// Under [`Worker::run_all`] the master binds it (an address in use ends `start`) and runs
    /// it in one more worker process, named `metrics`, that reads every other process's figures
    /// from memory they share: a scrape never waits for a busy worker, and adds nothing to the
    /// figures of the others. Under [`Worker::spawn`], the spawned thread serves it itself (port
    /// 0 picks a free port: see [`RunningWorker::metrics_address`](crate::RunningWorker::metrics_address)).
    ///
    /// Bind it to a loopback or private address: the figures are for your monitoring, not the
    /// world.
    ///
    /// ```no_run
    /// use workerman::Worker;
    ///
    /// Worker::set_metrics_listen("127.0.0.1:9090");
    /// let mut worker = Worker::new("http://0.0.0.0:8080");
    /// worker.set_count(4);
    /// Worker::run_all();
    /// // curl http://127.0.0.1:9090/metrics
    /// ```
    pub fn set_metrics_listen(address: impl Into<String>) {
        *LISTEN
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(address.into());
    }

    /// The metrics endpoint's address, if [`set_metrics_listen`](Self::set_metrics_listen) set one.
    ///
    /// ```
    /// workerman::Worker::set_metrics_listen("127.0.0.1:9090");
    /// assert_eq!(workerman::Worker::metrics_listen().as_deref(), Some("127.0.0.1:9090"));
    /// ```
    pub fn metrics_listen() -> Option<String> {
        listen()
    }
}
