//! The worker that serves `GET /metrics`, and how each way of running gets its slots.

use std::io;
use std::sync::{Arc, OnceLock};

use super::exposition::{self, SlotLabel};
use super::slots::Region;
use super::{counters, listen};
use crate::connection::TcpConnection;
use crate::protocols::http::{Request, Response};
use crate::worker::Worker;

/// The worker name the endpoint's process has under `run_all`.
pub(crate) const NAME: &str = "metrics";
/// The most scrapers connected at once.
const MAX_CONNECTIONS: usize = 64;

/// Under `run_all`, the region the master mapped before forking (inherited by every child).
static PROCESS_REGION: OnceLock<Arc<Region>> = OnceLock::new();

/// In the master, before binding and forking: when metrics are on, maps one slot for each
/// process of `workers` (in the master's order: by worker, then by id) and returns the endpoint
/// worker, to be run as one more group after them.
pub(crate) fn for_processes(workers: &[Worker]) -> io::Result<Option<Worker>> {
    let Some(address) = listen() else {
        return Ok(None);
    };
    let labels: Vec<SlotLabel> = workers
        .iter()
        .flat_map(|worker| {
            let name = worker.name();
            (0..worker.count()).map(move |id| SlotLabel {
                worker: name.clone(),
                id,
            })
        })
        .collect();
    let region = Arc::new(Region::new(labels.len())?);
    let _ = PROCESS_REGION.set(region.clone());
    Ok(Some(endpoint(&address, region, labels)))
}

/// In a forked worker process, before its reactor starts: publish into slot `index` (the
/// master's slot number; the endpoint's own process, past the last slot, publishes nothing).
pub(crate) fn attach_process(index: usize) {
    if let Some(region) = PROCESS_REGION.get() {
        if index < region.len() {
            counters::attach(region.clone(), index);
        }
    }
}

/// On a `Worker::spawn` thread, before its reactor starts: when metrics are on, one slot for
/// this thread's reactor (labelled with `main`'s name, id 0) and the endpoint worker, which
/// this same reactor runs.
pub(crate) fn for_thread(main: &Worker) -> io::Result<Option<Worker>> {
    let Some(address) = listen() else {
        return Ok(None);
    };
    let labels = vec![SlotLabel {
        worker: main.name(),
        id: 0,
    }];
    let region = Arc::new(Region::new(1)?);
    counters::attach(region.clone(), 0);
    Ok(Some(endpoint(&address, region, labels)))
}

fn endpoint(address: &str, region: Arc<Region>, labels: Vec<SlotLabel>) -> Worker {
    let mut worker = Worker::new(&format!("http://{address}"));
    worker.set_name(NAME);
    worker.set_max_connections(MAX_CONNECTIONS);
    worker.on_message(move |connection: &TcpConnection, request: Request| {
        let text_plain = [("Content-Type", "text/plain; charset=utf-8")];
        if request.path() != "/metrics" {
            connection.send(Response::new(
                404,
                text_plain,
                "the metrics are at /metrics\n",
            ));
        } else if request.method() != "GET" {
            connection.send(Response::new(405, text_plain, "GET /metrics\n"));
        } else {
            let text = exposition::render(&region, &labels);
            connection.send(Response::new(
                200,
                [("Content-Type", exposition::CONTENT_TYPE)],
                text,
            ));
        }
    });
    worker
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
        super::set_listen(address.into());
        crate::worker::set_metrics_on_spawn(|main| {
            for_thread(main).map(|endpoint| endpoint.is_some())
        });
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
