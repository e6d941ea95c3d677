//! The embedded relay: under `Worker::run_all` with several worker processes and no broker,
//! one more process (worker name `channel`) that every worker process attaches to over a Unix
//! socket. It gives every publish its id from one [`Store`] (so one total order), keeps the
//! bounded ring per event, sends each event to every attached process subscribed to it (the
//! publisher's included), and answers history queries.
//!
//! The master binds the socket before forking and starts the relay when the first worker
//! connects to it (a program that never uses `Channel` never runs it); a relay that dies is
//! started again when the workers reconnect. Its epoch (start time in ms) changes with each
//! life, so ids from an earlier one answer [`History::Gap`](super::History::Gap). The relay
//! is not reloaded by `reload` (its history would be lost) and is not listed by `status`.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::OnceLock;

use super::store::{self, Store};
use super::wire::{self, Request};
use super::{Choice, MAX_DATA, MAX_EVENT_NAME};
use crate::connection::TcpConnection;
use crate::connection::stream::BoundSocket;
use crate::protocols::Frame;
use crate::worker::Worker;

/// The relay's worker name.
pub(crate) const NAME: &str = "channel";
/// The longest package either side sends: one event at the size limit, or a history page.
pub(crate) const MAX_PACKAGE: usize = MAX_DATA + MAX_EVENT_NAME + 64;
/// A history answer holds at most this many bytes of data (at least one event): ask again
/// after its last id for more.
const MAX_HISTORY_BYTES: usize = MAX_DATA;
/// What the relay may queue for one worker process before it cuts it off (the worker then
/// re-attaches and is told it missed events, rather than missing them silently).
const MAX_QUEUED_PER_WORKER: usize = 64 << 20;

/// Under `run_all`, the relay's socket path, set by the master before forking.
static PATH: OnceLock<PathBuf> = OnceLock::new();
/// Set to false by [`Worker::set_channel_relay`].
static ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// The relay's socket path when this process should attach to a relay.
pub(crate) fn path() -> Option<&'static PathBuf> {
    PATH.get()
}

/// Where the socket goes: next to the pid file, or in the temporary directory when that path is
/// too long for a Unix socket address.
fn socket_path() -> PathBuf {
    let beside = crate::process::settings()
        .pid_file()
        .with_extension("channel.sock");
    if beside.as_os_str().len() < 100 {
        return beside;
    }
    std::env::temp_dir().join(format!(
        "workerman.{}.{}.channel.sock",
        crate::process::program_name(),
        std::process::id()
    ))
}

/// In the master, before forking: when `workers` make several processes and the channel's
/// transport is not Redis, binds the relay's socket and returns the relay's worker (run by
/// the master on demand, see [`listener_fd`]).
pub(crate) fn for_processes(workers: &[Worker]) -> std::io::Result<Option<Worker>> {
    let processes: usize = workers.iter().map(Worker::count).sum();
    let redis = matches!(super::chosen(), Some(Choice::Redis(_)));
    if processes < 2 || redis || !ENABLED.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(None);
    }
    let path = socket_path();
    let worker = relay_worker(&path);
    let listener = worker.shared().bind()?;
    *worker.shared().prebound.borrow_mut() = Some(listener);
    let _ = PATH.set(path);
    Ok(Some(worker))
}

/// The listening socket's fd in the master: readable when a worker waits for a relay.
pub(crate) fn listener_fd(relay: &Worker) -> Option<RawFd> {
    match relay.shared().prebound.borrow().as_ref() {
        Some(BoundSocket::Unix(listener, _)) => Some(listener.as_raw_fd()),
        _ => None,
    }
}

/// Whether `fd` has a connection waiting, within `timeout` (the master's wait for its signals
/// socket, `signals`, and the relay's listener at once). Returns whether the listener is ready.
pub(crate) fn wait_either(signals: RawFd, listener: RawFd, timeout: std::time::Duration) -> bool {
    let mut fds = [
        libc::pollfd {
            fd: signals,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: listener,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let millis = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: two valid `pollfd`s in a local array whose length we pass; EINTR is fine (the
    // caller looks again).
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, millis) };
    ready > 0 && fds[1].revents & libc::POLLIN != 0
}

/// Every attached process and what it subscribed to.
struct Relay {
    store: Store,
    subscribers: HashMap<String, Vec<TcpConnection>>,
    subscriptions: HashMap<u64, HashSet<String>>,
}

thread_local! {
    static RELAY: RefCell<Option<Relay>> = const { RefCell::new(None) };
}

fn relay_worker(path: &std::path::Path) -> Worker {
    let mut worker = Worker::with_protocol(&format!("unix://{}", path.display()), Frame);
    worker.set_name(NAME);
    worker.set_reloadable(false);
    worker.set_max_package_size(MAX_PACKAGE);
    worker.set_max_send_buffer_size(MAX_QUEUED_PER_WORKER);
    worker.on_worker_start(|_| {
        let history_size = super::Channel::history_size();
        RELAY.with(|relay| {
            *relay.borrow_mut() = Some(Relay {
                store: Store::new(store::now_epoch(), history_size),
                subscribers: HashMap::new(),
                subscriptions: HashMap::new(),
            })
        });
    });
    worker.on_message(|connection: &TcpConnection, payload: Vec<u8>| {
        let Some(request) = wire::decode_request(&payload) else {
            log::error!("workerman: the channel relay got a malformed message; closing that link");
            connection.close();
            return;
        };
        let sends = RELAY.with(|relay| {
            relay
                .borrow_mut()
                .as_mut()
                .map(|relay| relay.handle(connection, request))
                .unwrap_or_default()
        });
        for (to, package) in sends {
            if !to.send_raw(&package).is_accepted() {
                log::error!(
                    "workerman: the channel relay cannot keep up with a worker process (link {}: \
                     {} bytes queued, the limit is {MAX_QUEUED_PER_WORKER}); cutting it off so it \
                     re-attaches",
                    to.id(),
                    to.send_buffer_queue_size()
                );
                to.destroy();
            }
        }
    });
    worker.on_close(|connection: &TcpConnection| {
        RELAY.with(|relay| {
            if let Some(relay) = relay.borrow_mut().as_mut() {
                relay.detach(connection);
            }
        })
    });
    worker
}

impl Relay {
    /// Acts on one request; returns what to send to whom (sent once the state is released).
    fn handle(
        &mut self,
        from: &TcpConnection,
        request: Request<'_>,
    ) -> Vec<(TcpConnection, Vec<u8>)> {
        match request {
            Request::Subscribe(event) => {
                let list = self.subscribers.entry(event.to_owned()).or_default();
                if !list.iter().any(|connection| connection == from) {
                    list.push(from.clone());
                }
                self.subscriptions
                    .entry(from.id())
                    .or_default()
                    .insert(event.to_owned());
                Vec::new()
            }
            Request::Unsubscribe(event) => {
                self.remove(from, event);
                if let Some(events) = self.subscriptions.get_mut(&from.id()) {
                    events.remove(event);
                }
                Vec::new()
            }
            Request::Publish {
                request,
                event,
                data,
            } => {
                let entry = self.store.append(event, data.into());
                let package = wire::event(&entry);
                let mut sends: Vec<(TcpConnection, Vec<u8>)> = self
                    .subscribers
                    .get(event)
                    .into_iter()
                    .flatten()
                    .map(|to| (to.clone(), package.clone()))
                    .collect();
                sends.push((from.clone(), wire::published(request, &entry.id)));
                sends
            }
            Request::History {
                request,
                after,
                limit,
                event,
            } => {
                let mut history = self.store.history(event, &after, limit as usize);
                if let super::History::After(entries) = &mut history {
                    let mut bytes = 0;
                    let keep = entries
                        .iter()
                        .position(|entry| {
                            bytes += entry.data.len() + 32;
                            bytes > MAX_HISTORY_BYTES
                        })
                        .unwrap_or(entries.len())
                        .max(1);
                    entries.truncate(keep);
                }
                vec![(from.clone(), wire::history_answer(request, event, &history))]
            }
            Request::LastId { request, event } => {
                let id = self.store.last_id(event);
                vec![(from.clone(), wire::last_id_answer(request, id.as_ref()))]
            }
            Request::Configure { history_size } => {
                self.store
                    .set_capacity(usize::try_from(history_size).unwrap_or(usize::MAX));
                Vec::new()
            }
        }
    }

    fn remove(&mut self, connection: &TcpConnection, event: &str) {
        if let Some(list) = self.subscribers.get_mut(event) {
            list.retain(|other| other != connection);
            if list.is_empty() {
                self.subscribers.remove(event);
            }
        }
    }

    fn detach(&mut self, connection: &TcpConnection) {
        for event in self
            .subscriptions
            .remove(&connection.id())
            .unwrap_or_default()
        {
            self.remove(connection, &event);
        }
    }
}

/// The embedded relay's switch (no Workerman counterpart).
impl Worker {
    /// Whether `Worker::run_all` may run the channel relay (default: yes). With several worker
    /// processes and no `Channel::connect("redis://..")`, the master binds a Unix socket next to
    /// the pid file and, when a worker process first uses [`Channel`](crate::channel::Channel),
    /// starts one more process (named `channel`) that carries every publish to every process.
    /// Switch it off to keep each process's channel to itself. Set it before `run_all`.
    ///
    /// ```no_run
    /// workerman::Worker::set_channel_relay(false);
    /// ```
    pub fn set_channel_relay(enabled: bool) {
        ENABLED.store(enabled, std::sync::atomic::Ordering::Relaxed);
    }
}
