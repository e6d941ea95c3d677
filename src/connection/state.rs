//! What the reactor keeps for one accepted socket.

use std::any::Any;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use super::TcpConnection;
use super::WorkerShared;
use super::stream::Stream;
use super::transport::Layered;
use crate::protocols::http::HttpState;
use crate::protocols::websocket::WebSocketState;

/// One connection's state in the reactor's slab. Kept small: a push server holds 100,000 of these,
/// and most of them hold no buffered bytes at all (both buffers are empty `Vec`s, unallocated).
///
/// Laid out by hand (`repr(C)`) and cache-line aligned: what every `send` reads or writes (an
/// event pushed on a stream) is the first 64 bytes, then `http` and `max_send_buffer_size` in
/// the second line; the rest is read on other paths. A push server touches two lines of a
/// connection per event rather than four or five.
#[repr(C, align(64))]
pub(crate) struct Connection {
    /// Per-thread counter from 1; doubles as the slot's generation.
    pub(crate) id: u64,
    pub(crate) worker: Rc<WorkerShared>,
    /// Bytes accepted by `send` but not yet taken by the kernel, from `send_offset` on.
    pub(crate) send_buffer: Vec<u8>,
    pub(crate) send_offset: usize,
    /// `None` once destroyed (the slot lives on until `on_close` has returned).
    pub(crate) stream: Option<Stream>,
    pub(crate) status: u8,
    /// More pipelined input is being dispatched: `send` appends, one write follows at the end.
    pub(crate) corked: bool,
    /// The kernel refused bytes: the rest goes out when the socket is writable.
    pub(crate) waiting_writable: bool,
    /// `on_buffer_full` fired and the buffer has not drained since.
    pub(crate) buffer_full: bool,
    /// Written on every send too, but the first line is full (the `Stream` tag): its place is
    /// in the second, which an HTTP or SSE send reads anyway.
    pub(crate) bytes_written: u64,
    /// HTTP's per-connection state; inert on other protocols.
    pub(crate) http: HttpState,
    pub(crate) max_send_buffer_size: usize,
    /// `pause_recv` was called.
    pub(crate) recv_paused: bool,
    /// Reading stopped before the socket said `WouldBlock`: read again when allowed.
    pub(crate) read_pending: bool,
    /// The read path is delivering this connection's messages right now.
    pub(crate) dispatching: bool,
    pub(crate) remote_address: SocketAddr,
    /// Bytes received but not yet a whole package.
    pub(crate) recv_buffer: Vec<u8>,
    pub(crate) max_package_size: usize,
    pub(crate) bytes_read: u64,
    /// Past this instant the connection is destroyed (head timeout, keep-alive idle, linger).
    pub(crate) deadline: Option<Instant>,
    /// The instant of this connection's live entry in the reactor's deadline heap.
    pub(crate) armed_at: Option<Instant>,
    /// What few connections use (a context, a pipe, connection timers), allocated on first use.
    pub(crate) extras: Option<Box<Extras>>,
    /// `websocket://` only (set when accepted): handshake, frame decoder, message type.
    pub(crate) websocket: Option<Box<WebSocketState>>,
    /// A layer between the socket and the codec (TLS); `None`: plain bytes.
    pub(crate) layer: Option<Box<Layered>>,
}

impl Connection {
    pub(crate) fn new(
        id: u64,
        stream: Stream,
        remote_address: SocketAddr,
        worker: Rc<WorkerShared>,
    ) -> Connection {
        let mut connection = Connection::detached(id, remote_address, worker);
        connection.stream = Some(stream);
        connection
    }

    /// An established connection without a socket yet (the caller sets `stream` or `status`).
    pub(crate) fn detached(
        id: u64,
        remote_address: SocketAddr,
        worker: Rc<WorkerShared>,
    ) -> Connection {
        Connection {
            id,
            stream: None,
            status: TcpConnection::STATUS_ESTABLISHED,
            remote_address,
            recv_buffer: Vec::new(),
            send_buffer: Vec::new(),
            send_offset: 0,
            max_send_buffer_size: worker.max_send_buffer_size.get(),
            max_package_size: worker.max_package_size.get(),
            bytes_read: 0,
            bytes_written: 0,
            deadline: None,
            armed_at: None,
            recv_paused: false,
            read_pending: false,
            buffer_full: false,
            waiting_writable: false,
            corked: false,
            dispatching: false,
            extras: None,
            http: HttpState::default(),
            websocket: None,
            layer: None,
            worker,
        }
    }

    /// Gives this connection the layer its worker asks for (none: plain bytes). An error (bad
    /// TLS settings) is the connection's end: the caller drops it.
    pub(crate) fn attach_transport(&mut self) -> std::io::Result<()> {
        let factory = self.worker.layer.borrow().clone();
        if let Some(factory) = factory {
            self.layer = Some(Box::new(Layered::new(factory()?)));
        }
        Ok(())
    }

    /// The extras, created on first use.
    pub(crate) fn extras(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Box::default)
    }

    /// Where `pipe()` sends this connection's messages.
    pub(crate) fn pipe_to(&self) -> Option<&super::PipeDestination> {
        self.extras.as_ref()?.pipe_to.as_ref()
    }

    /// The connection piped into this one (whose reading this one throttles).
    pub(crate) fn pipe_from(&self) -> Option<&TcpConnection> {
        self.extras.as_ref()?.pipe_from.as_ref()
    }

    /// Bytes queued for the kernel: the send buffer's, then the shared messages queued by
    /// reference, then what a layer (TLS) holds: its ciphertext not yet written. The last two
    /// exist only while waiting for writable (the driver sets it whenever a layer is left
    /// holding bytes), so the common path reads no more.
    pub(crate) fn pending_send(&self) -> usize {
        let buffered = self.send_buffer.len() - self.send_offset;
        if self.waiting_writable {
            buffered + self.queued_by_reference() + self.layer_pending()
        } else {
            buffered
        }
    }

    /// Bytes a layer holds for the peer (TLS ciphertext not yet written).
    #[inline(never)]
    pub(crate) fn layer_pending(&self) -> usize {
        super::transport::pending(self.layer.as_deref())
    }

    /// Bytes of the queue that holds shared messages by reference.
    #[inline(never)]
    pub(crate) fn queued_by_reference(&self) -> usize {
        self.extras
            .as_ref()
            .and_then(|extras| extras.send_queue.as_ref())
            .map_or(0, |queue| queue.len())
    }
}

/// Per-connection state that few connections use: kept out of [`Connection`], so the common
/// connection (an event stream, a keep-alive client) stays small.
#[derive(Default)]
pub(crate) struct Extras {
    /// The per-connection context (`set_context`).
    pub(crate) context: Option<Box<dyn Any>>,
    /// `pipe()`: where this connection's messages go, and whose reading this one throttles.
    pub(crate) pipe_to: Option<super::PipeDestination>,
    pub(crate) pipe_from: Option<TcpConnection>,
    /// Timers added with `TcpConnection::add_timer`: deleted when the connection closes.
    pub(crate) timers: Vec<super::timer_queue::TimerId>,
    /// Workerman's `$connection->headers`: merged into the next HTTP response, then cleared.
    pub(crate) headers: Vec<crate::protocols::http::Header>,
    /// The session of the HTTP request being answered, once `request.session()` loaded it.
    pub(crate) session: Option<Box<crate::protocols::http::SessionState>>,
    /// The HTTP request held until its session is read (a handler that completes later).
    pub(crate) held_request: Option<Box<crate::protocols::http::Request>>,
    /// The HTTP request whose multipart body is being streamed to disk.
    pub(crate) upload: Option<Box<crate::protocols::http::Upload>>,
    /// Shared messages (and what was sent after them) waiting for a full socket, by reference:
    /// written after `send_buffer`; never holds anything unless `waiting_writable`.
    /// Boxed and made on first use: most connections never have a shared message wait.
    pub(crate) send_queue: Option<Box<super::send_queue::SendQueue>>,
}

impl Extras {
    /// The queue of shared messages waiting by reference, made on first use.
    pub(crate) fn send_queue(&mut self) -> &mut super::send_queue::SendQueue {
        self.send_queue.get_or_insert_with(Box::default)
    }
}

#[cfg(test)]
mod tests {
    use super::Connection;
    #[cfg(not(debug_assertions))]
    use std::mem::offset_of;
    use std::mem::{align_of, size_of};

    #[test]
    fn a_connection_is_four_cache_lines_with_the_send_path_in_the_first() {
        assert_eq!(align_of::<Connection>(), 64);
        // mio's sockets carry a selector id in debug builds only (16 more bytes a stream).
        let limit = if cfg!(debug_assertions) { 320 } else { 256 };
        assert!(
            size_of::<Connection>() <= limit,
            "{}",
            size_of::<Connection>()
        );
        #[cfg(not(debug_assertions))]
        {
            assert!(offset_of!(Connection, buffer_full) < 64);
            assert!(offset_of!(Connection, max_send_buffer_size) < 128);
        }
    }
}
