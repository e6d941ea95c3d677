//! Metrics: a Prometheus endpoint with the `status` figures of every worker process, opt-in with
//! `Worker::set_metrics_listen` (in `endpoint.rs`).
//!
//! - [`counters`]: what each reactor counts, and its once-per-turn publication.
//! - [`slots`]: the region of memory the master shares with every worker process, one slot each.
//! - [`exposition`]: a scrape rendered as Prometheus text by the `prometheus-client` crate.
//! - [`endpoint`]: the `http://` worker that serves `GET /metrics`: under `Worker::run_all`, in
//!   a process of its own (worker name `metrics`) that reads every slot; under
//!   `Worker::spawn`, on the spawned thread's own reactor.
//!
//! The metric names are listed in `docs/metrics.md`.

pub(crate) mod counters;
pub(crate) mod endpoint;
mod exposition;
pub(crate) mod slots;
pub(crate) mod statistics;

use std::sync::Mutex;

use crate::connection::stream::Transport;
use crate::protocols::ProtocolKind;

/// `Worker::set_metrics_listen`'s address (`host:port`), if set.
static LISTEN: Mutex<Option<String>> = Mutex::new(None);

/// Sets the address `Worker::set_metrics_listen` was given.
fn set_listen(address: String) {
    *LISTEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(address);
}

fn listen() -> Option<String> {
    LISTEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}

/// The index in [`slots::PROTOCOLS`] of a connection of a worker with this `protocol` and
/// `transport`: its protocol, or for raw bytes (`tcp://`, `udp://`, `unix://`) its transport.
pub(crate) fn protocol_index(protocol: &ProtocolKind, transport: Transport) -> usize {
    match protocol {
        ProtocolKind::Raw => match transport {
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
