//! `TcpConnection`, the handle user code holds for one connection, and `SendResult`: plain
//! values that import nothing of the crate, so a codec can name them (the `Protocol` trait's
//! methods take a `&TcpConnection`) without reaching the driver. The methods are in `tcp.rs`.

use std::fmt;
use std::marker::PhantomData;

/// A cheap, cloneable handle to one connection of this worker thread (Workerman's `TcpConnection`).
///
/// It holds the connection's slot and id, never a reference: once the connection has closed, the
/// handle reports [`STATUS_CLOSED`](Self::STATUS_CLOSED) forever and sends nothing, even after its
/// slot is reused by a newer connection. Handles belong to the worker thread that made them (they
/// are not `Send`).
///
/// On a `udp://` worker, a handle stands for a *peer*: one remote address, kept while it sends
/// (see [`Worker::new`](crate::Worker::new)). `send` is one `sendto` to it, never queued
/// ([`SendResult::Written`] or [`SendResult::Refused`]); `close` ends the peer (its next datagram
/// starts a new one); the peer also ends after the keep-alive timeout without a datagram.
///
/// ```no_run
/// use workerman::{TcpConnection, Worker};
///
/// let mut worker = Worker::new("text://0.0.0.0:8000");
/// worker.on_message(|connection: &TcpConnection, line: String| {
///     connection.send(format!("you said: {line}"));
///     if line == "bye" {
///         connection.close();
///     }
/// });
/// Worker::run_all();
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TcpConnection {
    pub(super) key: u32,
    pub(super) id: u64,
    pub(super) _not_send: PhantomData<*const ()>,
}

/// What [`TcpConnection::send`] did with the data (Workerman's `true` / `null` / `false`).
///
/// ```
/// use workerman::SendResult;
/// assert!(SendResult::Written.is_accepted());
/// assert!(SendResult::Queued.is_accepted());
/// assert!(!SendResult::Refused.is_accepted());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendResult {
    /// Handed to the kernel whole (Workerman's `true`).
    Written,
    /// Accepted and queued; it goes out as the peer reads (Workerman's `null`).
    Queued,
    /// Dropped: the connection is closing or closed, or its send buffer is full (`false`).
    Refused,
}

impl SendResult {
    /// `true` unless the data was refused.
    ///
    /// ```
    /// assert!(workerman::SendResult::Queued.is_accepted());
    /// ```
    pub fn is_accepted(self) -> bool {
        self != SendResult::Refused
    }
}

impl fmt::Debug for TcpConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpConnection")
            .field("id", &self.id)
            .field("slot", &self.key)
            .finish()
    }
}
