//! Connections: the user's [`TcpConnection`] handle and, inside the crate, the state the reactor
//! keeps for each socket and the paths that read, dispatch and write.

pub(crate) mod async_tcp;
mod headers;
pub(crate) mod io;
mod pipe;
mod send_queue;
mod state;
pub(crate) mod stream;
mod tcp;
pub(crate) mod udp;

pub use async_tcp::AsyncTcpConnection;
pub use pipe::{PipeDestination, PipeTarget};
pub(crate) use state::Connection;
pub use stream::TcpKeepalive;
pub use tcp::{SendResult, TcpConnection};
