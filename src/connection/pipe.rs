//! `pipe()`: where a connection's messages go, for a server connection or a client one, in both
//! directions (Workerman's `$connection->pipe($connection_to_80)` and
//! `$connection_to_80->pipe($connection)`).

use super::worker_shared::PipeDestination;
use super::{AsyncTcpConnection, TcpConnection};
use crate::protocols::Outbound;

/// What a connection can be piped into: a [`TcpConnection`] or an [`AsyncTcpConnection`] (which
/// may not be connected yet: what arrives meanwhile is queued until it is, as its `send` does).
///
/// ```no_run
/// use workerman::{AsyncTcpConnection, TcpConnection, Worker};
///
/// let mut worker = Worker::new("tcp://0.0.0.0:8483");
/// worker.on_connect(|connection: &TcpConnection| {
///     let connection_to_80 = AsyncTcpConnection::new("tcp://127.0.0.1:80");
///     connection.pipe(&connection_to_80);
///     connection_to_80.pipe(connection);
///     connection_to_80.connect();
/// });
/// Worker::run_all();
/// ```
pub trait PipeTarget {
    /// This target as a pipe's destination.
    #[doc(hidden)]
    fn pipe_destination(&self) -> PipeDestination;
}

impl PipeTarget for TcpConnection {
    fn pipe_destination(&self) -> PipeDestination {
        PipeDestination::Connection(self.clone())
    }
}

impl PipeTarget for AsyncTcpConnection {
    fn pipe_destination(&self) -> PipeDestination {
        PipeDestination::Client(self.clone())
    }
}

impl PipeTarget for PipeDestination {
    fn pipe_destination(&self) -> PipeDestination {
        self.clone()
    }
}

impl<T: PipeTarget> PipeTarget for &T {
    fn pipe_destination(&self) -> PipeDestination {
        (*self).pipe_destination()
    }
}

impl PipeDestination {
    pub(crate) fn send(&self, bytes: Vec<u8>) {
        let outbound = Outbound::Bytes(std::borrow::Cow::Owned(bytes));
        match self {
            PipeDestination::Connection(connection) => connection.send(outbound),
            PipeDestination::Client(client) => client.send(outbound),
        };
    }

    pub(crate) fn close(&self) {
        match self {
            PipeDestination::Connection(connection) => connection.close(),
            PipeDestination::Client(client) => client.close(),
        }
    }

    /// Makes `source` the connection whose reading this destination throttles.
    pub(crate) fn throttle(&self, source: &TcpConnection) {
        match self {
            PipeDestination::Connection(connection) => connection.set_pipe_from(source.clone()),
            PipeDestination::Client(client) => client.set_pipe_from(source.clone()),
        }
    }
}
