//! # workerman
//!
//! [Workerman](https://github.com/walkor/workerman), the PHP event-loop framework, rebuilt in
//! Rust: one single-threaded `mio` reactor per worker drives sockets and timers, and the API is
//! Workerman's, so a PHP app ports line by line.
//!
//! Workerman's Server-Sent Events example, ported (`cargo run --release --example sse`):
//!
//! ```no_run
//! use workerman::protocols::http::{Request, Response, ServerSentEvents};
//! use workerman::{TcpConnection, Timer, Worker};
//!
//! let mut worker = Worker::new("http://0.0.0.0:8080");
//! worker.on_message(|connection: &TcpConnection, request: Request| {
//!     // An Accept header of text/event-stream marks an SSE request
//!     if request.header("accept") == Some("text/event-stream") {
//!         // First send a response with the Content-Type: text/event-stream header
//!         connection.send(Response::new(200, [("Content-Type", "text/event-stream")], "\r\n"));
//!         // Push data to the client every 2 seconds
//!         let connection = connection.clone();
//!         Timer::add(2.0, move |timer_id| {
//!             // Delete the timer once the connection is closed, or timers pile up and leak
//!             if connection.status() != TcpConnection::STATUS_ESTABLISHED {
//!                 Timer::del(timer_id);
//!                 return;
//!             }
//!             connection.send(ServerSentEvents::new().event("message").data("hello").id(1));
//!         });
//!         return;
//!     }
//!     connection.send("ok");
//! });
//! Worker::run_all();
//! ```
//!
//! ## Where things are
//! - [`Worker`]: a listen address with a protocol scheme and its callbacks (`on_connect`,
//!   `on_message`, `on_close`, ...); [`Worker::run_all`] runs them, [`Worker::spawn`] runs them
//!   on a thread (for tests).
//! - [`TcpConnection`]: the handle every callback gets: `send`, `close`, `status`, addresses,
//!   `pause_recv` / `resume_recv`, `pipe`, a typed context.
//! - [`Timer`]: `Timer::add`, `Timer::once`, `Timer::del`, `Timer::del_all`.
//! - [`protocols::SharedMessage`]: a message encoded once and sent to many connections, whose
//!   bytes they share (even queued on full sockets); [`TcpConnection::send_raw`] sends bytes as
//!   they are.
//! - [`protocols`]: `tcp://`, `text://`, `frame://`, `http://` ([`protocols::http`]: `Request`,
//!   `Response`, `ServerSentEvents`, `Chunk`), `websocket://` ([`protocols::websocket`]) and the
//!   [`protocols::Protocol`] trait for your own.
//! - Transports: `udp://` (each datagram a message; each sender a peer with its own
//!   [`TcpConnection`] handle, see [`Worker::new`]) and `unix://` (a Unix socket path; any
//!   protocol over it with [`Worker::set_transport`]); TLS under any protocol with
//!   `https://`, `wss://` or `set_transport("ssl")` and a [`connection::SslContext`]
//!   (`docs/tls.md`).
//! - [`AsyncTcpConnection`] (also [`connection::AsyncTcpConnection`]): connections to other servers (`tcp://`, `text://`,
//!   `frame://`, `ws://`, `wss://`, `ssl://`, `unix://`) on the same reactor; [`Worker::without_listener`] for a
//!   process that only runs clients and timers.
//! - [`Worker::spawn_blocking`]: a job on the worker process's thread pool, its callback back on
//!   the reactor (a database driver, a file, a password hash; see `examples/sse_db.rs`).
//! - [`EventLoop`]: your own fds (`on_readable`, `on_writable`, level-triggered) and signals
//!   (`on_signal`) on the reactor, as Workerman's `Worker::$globalEvent`.
//! - [`redis::Client`]: an asynchronous Redis client (commands, pipelining, pub/sub, RESP3)
//!   on the same reactor, as workerman/redis.
//! - [`channel::Channel`]: publish/subscribe between worker processes (an embedded relay under
//!   `run_all`) and machines (Redis), with ids and history for replay, as workerman/channel;
//!   [`channel::SseHub`] on top: topics, replay by `Last-Event-ID`, `event: reset` for gaps.
//! - Monitoring: `status` / `connections` (`--json` for scripts) on the command line of
//!   [`Worker::run_all`], and a Prometheus endpoint with [`Worker::set_metrics_listen`].
//!
//! ## Floors (docs/architecture.md; `cargo test --test layering` checks them)
//! `process` → `worker` → `reactor` (`timer` beside it) → `connection` (the connection table, the
//! one driver, its transport) → `protocols` (sans-I/O codecs) → nothing of ours; beside them:
//! `metrics`, `redis`, `channel`, `blocking`, `event_loop`. No import cycle but one in `redis`.
//!
//! ## Beyond Workerman
//! A panic in a callback is caught, logged and costs only its connection (an unanswered HTTP
//! request gets a 500). HTTP keep-alive follows RFC 9112, with head and idle timeouts. The SSE
//! head is chosen by media type. A repeating timer keeps its cadence. A handle to a closed
//! connection stays closed even when its slot is reused.
#![deny(missing_docs)]

// Listed by name (rustfmt sorts them). The floors, top to bottom, as the crate docs say:
// process, worker, reactor (timer beside it), connection, protocols; the rest sit beside them.
mod blocking;
pub mod channel;
pub mod connection;
mod event_loop;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod metrics;
mod process;
pub mod protocols;
mod reactor;
pub mod redis;
mod timer;
mod worker;

pub use blocking::BlockingError;
pub use connection::{AsyncTcpConnection, SendResult, TcpConnection};
pub use event_loop::EventLoop;
pub use metrics::statistics::Statistics;
pub use timer::{Timer, TimerId};
pub use worker::{RunningWorker, Worker};
