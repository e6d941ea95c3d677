//! Connections: the user's [`TcpConnection`] handle and, inside the crate, the state the reactor
//! keeps for each socket and the paths that read, dispatch and write.
//!
//! A `text://` server whose callbacks use their connection handle (`send`, `close`), and a client
//! talking to it:
//!
//! ```
//! use std::io::{Read, Write};
//! use workerman::{TcpConnection, Worker};
//!
//! let server = Worker::spawn(|| {
//!     let mut worker = Worker::new("text://127.0.0.1:0");
//!     worker.on_connect(|connection: &TcpConnection| {
//!         connection.send("welcome");
//!     });
//!     worker.on_message(|connection: &TcpConnection, line: String| {
//!         if line == "quit" {
//!             connection.close(); // flushes what was sent, then closes
//!         } else {
//!             connection.send(line.to_uppercase());
//!         }
//!     });
//!     worker
//! })?;
//! let mut client = std::net::TcpStream::connect(server.local_address())?;
//! client.write_all(b"hello\nquit\n")?;
//! let mut transcript = String::new();
//! client.read_to_string(&mut transcript)?;
//! assert_eq!(transcript, "welcome\nHELLO\n");
//! server.stop();
//! # Ok::<(), std::io::Error>(())
//! ```

mod actions;
pub(crate) mod async_tcp;
mod handle;
mod headers;
pub(crate) mod http;
pub(crate) mod io;
pub(crate) mod output;
mod pipe;
mod resolutions;
mod response_end;
mod send_queue;
pub(crate) mod session;
pub(crate) mod session_redis;
mod session_save;
mod state;
pub(crate) mod stream;
pub(crate) mod table;
mod tcp;
pub(crate) mod timer_queue;
pub(crate) mod tls;
pub(crate) mod transport;
pub(crate) mod udp;
mod udp_listener;
mod udp_peer;
pub(crate) mod websocket;
mod worker_shared;

pub use handle::{SendResult, TcpConnection};
pub use pipe::PipeTarget;
pub(crate) use state::Connection;
pub use stream::TcpKeepalive;
pub use tls::{SslContext, SslContextError};
pub(crate) use worker_shared::WorkerShared;
pub use worker_shared::{AsyncTcpConnection, PipeDestination};
