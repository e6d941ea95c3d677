//! Publish/subscribe between the worker processes of a server and between machines, with
//! Workerman's `workerman/channel` names ([`Channel::on`], [`Channel::publish`],
//! [`Channel::unsubscribe`]) plus ids and history ([`Channel::publish_with`],
//! [`Channel::on_event`], [`Channel::history`]) for replay.
//!
//! The transport is chosen once per worker process (see [`Channel::connect`]):
//! - one process (`Worker::spawn`, or `run_all` with a single worker process): in-process, no
//!   I/O (`local.rs`);
//! - several worker processes under `Worker::run_all`: the embedded relay, a process of its own
//!   the master supervises, reached over a Unix socket in the pid file's directory (`relay.rs`,
//!   `relay_link.rs`, `wire.rs`);
//! - several machines: Redis (`Channel::connect("redis://..")`, `redis_link.rs`): a stream per
//!   event for history and pub/sub for live delivery, written in one atomic script.
//!
//! `store.rs` is the bounded ring per event the first two share; `registry.rs` holds this
//! process's handlers.
//!
//! ```
//! use workerman::channel::Channel;
//! use workerman::{Timer, Worker};
//!
//! let server = Worker::spawn(|| {
//!     let mut worker = Worker::new("tcp://127.0.0.1:0");
//!     worker.on_worker_start(|_| {
//!         Channel::on("news", |data: &[u8]| println!("news: {}", String::from_utf8_lossy(data)));
//!         Channel::publish("news", "hello");
//!     });
//!     worker
//! })
//! .unwrap();
//! # std::thread::sleep(std::time::Duration::from_millis(50));
//! server.stop();
//! ```

mod error;
mod event;
pub mod hub;
pub(crate) mod local;
pub(crate) mod redis_link;
pub(crate) mod registry;
pub(crate) mod relay;
pub(crate) mod relay_link;
pub(crate) mod store;
pub(crate) mod wire;

pub use error::Error;
pub use event::{ChannelEvent, EventId, History, ParseEventIdError};
pub use hub::{HubStatistics, SlowConsumerPolicy, SseHub};

use std::cell::RefCell;

use registry::Handler;

/// The longest event name, in bytes.
pub const MAX_EVENT_NAME: usize = 1024;
/// The most bytes one publish may carry.
pub const MAX_DATA: usize = 8 << 20;

/// How long a request (publish, history) to the relay or Redis may wait for its answer,
/// queued while the link is down included.
pub(crate) const REQUEST_TIMEOUT_SECONDS: f64 = 5.0;

/// Publish/subscribe across worker processes and machines (Workerman's `Channel\Client`). All
/// associated functions; the state is per worker process (per thread under `Worker::spawn`).
/// Call them from a running worker (`on_worker_start` or any callback).
///
/// ```no_run
/// use workerman::channel::Channel;
/// use workerman::Worker;
///
/// let mut worker = Worker::new("http://0.0.0.0:8080");
/// worker.set_count(4);
/// worker.on_worker_start(|worker| {
///     let id = worker.id();
///     Channel::on("broadcast", move |data: &[u8]| {
///         println!("process {id} got {}", String::from_utf8_lossy(data));
///     });
/// });
/// worker.on_message(|connection: &workerman::TcpConnection, _request: workerman::protocols::http::Request| {
///     // Reaches every process's "broadcast" handler, this one's included.
///     Channel::publish("broadcast", "hello");
///     connection.send("sent");
/// });
/// Worker::run_all();
/// ```
pub struct Channel {
    _private: (),
}

/// Which transport a process uses once it is chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Choice {
    Local,
    Redis(String),
}

/// Which transport this process runs, once created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Local,
    Relay,
    Redis,
}

struct State {
    choice: Option<Choice>,
    kind: Option<Kind>,
    local: Option<local::Local>,
    history_size: usize,
    failed_publishes: u64,
}

thread_local! {
    static STATE: RefCell<State> = const {
        RefCell::new(State {
            choice: None,
            kind: None,
            local: None,
            history_size: store::DEFAULT_HISTORY_SIZE,
            failed_publishes: 0,
        })
    };
}

type PublishDone = Box<dyn FnOnce(Result<EventId, Error>)>;
type HistoryDone = Box<dyn FnOnce(Result<History, Error>)>;
type LastIdDone = Box<dyn FnOnce(Result<Option<EventId>, Error>)>;

/// The transport chosen with [`Channel::connect`] on this thread, if any.
pub(crate) fn chosen() -> Option<Choice> {
    STATE.with(|state| state.borrow().choice.clone())
}

/// This process's transport, created on first use: Redis when chosen, else the relay when
/// `run_all` runs one (and a reactor runs here), else in-process.
fn kind() -> Kind {
    let (kind, start) = STATE.with(|state| {
        let mut state = state.borrow_mut();
        if let Some(kind) = state.kind {
            return (kind, None);
        }
        let choice = state.choice.clone().unwrap_or(Choice::Local);
        state.choice = Some(choice.clone());
        let on_reactor = crate::reactor::try_with(|_| ()).is_some();
        let kind = match (&choice, relay::path()) {
            (Choice::Redis(_), _) => Kind::Redis,
            (Choice::Local, Some(_)) if on_reactor => Kind::Relay,
            _ => Kind::Local,
        };
        if kind == Kind::Local {
            state.local = Some(local::Local::new(state.history_size));
        }
        state.kind = Some(kind);
        (kind, Some(choice))
    });
    match start {
        Some(Choice::Redis(url)) => redis_link::start(&url),
        Some(Choice::Local) if kind == Kind::Relay => {
            relay_link::start(relay::path().expect("checked in kind()"))
        }
        _ => {}
    }
    kind
}

/// Runs `f` on the in-process transport (created by `kind()`).
fn with_local<R>(f: impl FnOnce(&mut local::Local) -> R) -> R {
    STATE.with(|state| {
        f(state
            .borrow_mut()
            .local
            .as_mut()
            .expect("the local transport"))
    })
}

/// Why `event` and `data` cannot be published, if they cannot.
fn check(event: &str, data: &[u8]) -> Result<(), Error> {
    if event.is_empty() || event.len() > MAX_EVENT_NAME {
        return Err(Error::Rejected(format!(
            "an event name is 1 to {MAX_EVENT_NAME} bytes, not {}",
            event.len()
        )));
    }
    if data.len() > MAX_DATA {
        return Err(Error::Rejected(format!(
            "{} bytes is over the {MAX_DATA} bytes a publish may carry",
            data.len()
        )));
    }
    Ok(())
}

/// Logs and counts a failed fire-and-forget publish.
pub(crate) fn publish_failed(event: &str, error: &Error) {
    log::error!("workerman: Channel::publish({event:?}) failed: {error}");
    STATE.with(|state| state.borrow_mut().failed_publishes += 1);
}

impl Channel {
    /// Adds a handler for `event` in this process: it gets the bytes of every publish to
    /// `event`, from any process (this one included). Workerman's `Channel\Client::on`.
    ///
    /// ```no_run
    /// workerman::channel::Channel::on("news", |data: &[u8]| {
    ///     println!("{}", String::from_utf8_lossy(data));
    /// });
    /// ```
    pub fn on(event: &str, mut callback: impl FnMut(&[u8]) + 'static) {
        Channel::add_handler(
            event,
            Handler::new(move |event: &ChannelEvent| callback(&event.data)),
        );
    }

    /// Adds a handler for `event` that gets the whole [`ChannelEvent`]: id, name and bytes.
    ///
    /// ```no_run
    /// workerman::channel::Channel::on_event("news", |event| {
    ///     println!("{} {}", event.id, String::from_utf8_lossy(&event.data));
    /// });
    /// ```
    pub fn on_event(event: &str, callback: impl FnMut(&ChannelEvent) + 'static) {
        Channel::add_handler(event, Handler::new(callback));
    }

    fn add_handler(event: &str, handler: Handler) {
        if registry::add(event, handler) {
            match kind() {
                Kind::Local => {}
                Kind::Relay => relay_link::subscribe(event),
                Kind::Redis => redis_link::subscribe(event),
            }
        }
    }

    /// Removes every handler of `event` in this process (Workerman's `unsubscribe`).
    ///
    /// ```no_run
    /// workerman::channel::Channel::unsubscribe("news");
    /// ```
    pub fn unsubscribe(event: &str) {
        if registry::remove(event) {
            match kind() {
                Kind::Local => {}
                Kind::Relay => relay_link::unsubscribe(event),
                Kind::Redis => redis_link::unsubscribe(event),
            }
        }
    }

    /// Publishes `data` to `event`, fire and forget (Workerman's `publish`). A failure (broker
    /// down, no answer in time, refused) is logged at error level and counted in
    /// [`failed_publishes`](Self::failed_publishes); [`publish_with`](Self::publish_with) hands
    /// it to you instead.
    ///
    /// ```no_run
    /// workerman::channel::Channel::publish("news", "hello");
    /// ```
    pub fn publish(event: &str, data: impl AsRef<[u8]>) {
        let data = data.as_ref();
        if let Err(error) = check(event, data) {
            publish_failed(event, &error);
            return;
        }
        Channel::send(event, data, None);
    }

    /// Publishes `data` to `event`; `done` gets the id the transport gave it once every process
    /// has been sent it (in-process: delivered), or why it failed. It runs later, on the
    /// reactor, never inside this call.
    ///
    /// ```no_run
    /// workerman::channel::Channel::publish_with("news", "hello", |result| match result {
    ///     Ok(id) => println!("published as {id}"),
    ///     Err(error) => eprintln!("lost: {error}"),
    /// });
    /// ```
    pub fn publish_with(
        event: &str,
        data: impl AsRef<[u8]>,
        done: impl FnOnce(Result<EventId, Error>) + 'static,
    ) {
        let data = data.as_ref();
        if let Err(error) = check(event, data) {
            later(move || done(Err(error)));
            return;
        }
        Channel::send(event, data, Some(Box::new(done)));
    }

    /// The kept events of `event` published after `after`, oldest first, at most `limit`; or
    /// [`History::Gap`] when `after` is older than what is kept, from another epoch, or
    /// unknown. `done` runs later, on the reactor.
    ///
    /// ```no_run
    /// use workerman::channel::{Channel, History};
    /// let last_seen = "1700000000000-3".parse().unwrap();
    /// Channel::history("news", &last_seen, 100, |result| match result {
    ///     Ok(History::After(events)) => println!("{} missed", events.len()),
    ///     Ok(History::Gap) => println!("too old: start over"),
    ///     Err(error) => eprintln!("{error}"),
    /// });
    /// ```
    pub fn history(
        event: &str,
        after: &EventId,
        limit: usize,
        done: impl FnOnce(Result<History, Error>) + 'static,
    ) {
        let after = *after;
        let done: HistoryDone = Box::new(done);
        match kind() {
            Kind::Local => {
                with_local(|local| local.history(event, after, limit, done));
                local::drain_outside_reactor();
            }
            Kind::Relay => relay_link::history(event, after, limit, done),
            Kind::Redis => redis_link::history(event, after, limit, done),
        }
    }

    /// The id of the newest kept event of `event` (`None` when none is kept), or why it could
    /// not be asked. A position to start from: [`history`](Self::history) after it gives what
    /// is published from then on, so a subscriber that registers its handler first, then asks
    /// this, misses nothing (with Redis the question waits until this process's subscription
    /// to `event` is in effect; through the relay it goes after the subscription, in order).
    /// `EventId::new(0, 0)` is the position before every event: history
    /// after it is everything kept, or [`History::Gap`] once some was dropped. `done` runs
    /// later, on the reactor.
    ///
    /// ```no_run
    /// use workerman::channel::Channel;
    /// Channel::last_id("news", |result| match result {
    ///     Ok(Some(id)) => println!("newest kept: {id}"),
    ///     Ok(None) => println!("nothing kept yet"),
    ///     Err(error) => eprintln!("{error}"),
    /// });
    /// ```
    pub fn last_id(event: &str, done: impl FnOnce(Result<Option<EventId>, Error>) + 'static) {
        let done: LastIdDone = Box::new(done);
        match kind() {
            Kind::Local => {
                with_local(|local| local.last_id(event, done));
                local::drain_outside_reactor();
            }
            Kind::Relay => relay_link::last_id(event, done),
            Kind::Redis => redis_link::last_id(event, done),
        }
    }

    /// The ring length per event (default 1000): in-process and in the relay, the events kept
    /// for [`history`](Self::history); with Redis, `XADD MAXLEN ~ n`. Under `Worker::run_all`
    /// set it before `run_all` so the relay starts with it (a worker's later call reaches the
    /// relay too, for every process).
    ///
    /// ```
    /// workerman::channel::Channel::set_history_size(100);
    /// ```
    pub fn set_history_size(n: usize) {
        let kind = STATE.with(|state| {
            let mut state = state.borrow_mut();
            state.history_size = n;
            if let Some(local) = state.local.as_mut() {
                local.set_history_size(n);
            }
            state.kind
        });
        if kind == Some(Kind::Relay) {
            relay_link::set_history_size(n);
        }
    }

    /// The ring length per event in effect for this process.
    ///
    /// ```
    /// assert!(workerman::channel::Channel::history_size() > 0);
    /// ```
    pub fn history_size() -> usize {
        STATE.with(|state| state.borrow().history_size)
    }

    /// Chooses the transport, once per process, before the first use: `"local"` (the default:
    /// in-process, or the relay under `Worker::run_all` with several worker processes) or
    /// `"redis://host:port[/db]"` (every machine sharing that Redis). Call it before
    /// `Worker::run_all` (every worker process inherits it) or first thing in
    /// `on_worker_start`. Choosing another transport once one is in use is an
    /// [`Error::Address`].
    ///
    /// ```
    /// use workerman::channel::Channel;
    /// assert!(Channel::connect("ftp://nowhere").is_err());
    /// Channel::connect("local").unwrap();
    /// assert!(Channel::connect("redis://127.0.0.1:6379").is_err()); // already chosen
    /// ```
    pub fn connect(address: &str) -> Result<(), Error> {
        let choice = if address == "local" {
            Choice::Local
        } else {
            crate::redis::parse_address(address).map_err(Error::Address)?;
            Choice::Redis(address.to_owned())
        };
        STATE.with(|state| {
            let mut state = state.borrow_mut();
            match &state.choice {
                Some(chosen) if *chosen != choice => Err(Error::Address(format!(
                    "the transport is already chosen ({chosen:?}); Channel::connect({address:?}) \
                     comes too late"
                ))),
                _ => {
                    state.choice = Some(choice);
                    Ok(())
                }
            }
        })
    }

    /// Adds a callback told when the transport goes down (`false`: the relay or Redis is
    /// unreachable; events published meanwhile are missed here) and up again (`true`:
    /// re-attached and re-subscribed; ask [`history`](Self::history) for what was missed).
    /// Never called in-process.
    ///
    /// ```no_run
    /// workerman::channel::Channel::on_connection_state(|up| println!("channel up: {up}"));
    /// ```
    pub fn on_connection_state(callback: impl FnMut(bool) + 'static) {
        registry::add_state_callback(callback);
    }

    /// How many publishes failed in this process (fire-and-forget ones, which are also logged).
    ///
    /// ```
    /// println!("{}", workerman::channel::Channel::failed_publishes());
    /// ```
    pub fn failed_publishes() -> u64 {
        STATE.with(|state| state.borrow().failed_publishes)
    }
}

impl Channel {
    fn send(event: &str, data: &[u8], done: Option<PublishDone>) {
        match kind() {
            Kind::Local => {
                with_local(|local| local.publish(event, data, done));
                local::drain_outside_reactor();
            }
            Kind::Relay => relay_link::publish(event, data, done),
            Kind::Redis => redis_link::publish(event, data, done),
        }
    }
}

/// Runs `f` on the next reactor turn (at once when no reactor runs on this thread).
pub(crate) fn later(f: impl FnOnce() + 'static) {
    if crate::reactor::try_with(|_| ()).is_some() {
        crate::timer::Timer::once(0.0, f);
    } else {
        f();
    }
}
