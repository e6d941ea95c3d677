//! The driver, the way in of a connection's bytes: accept, read → protocol → `on_message`
//! (through `output.rs`, which also holds the way out: `send` → encode → write or queue, flush
//! on writable, close / end / destroy).
//!
//! Every function here borrows the table only for short stretches and never while user code
//! runs; what must happen after a borrow (a callback, a destroy) is collected in `Actions` and
//! carried out by `output::run_actions`.

use std::io;
use std::time::Duration;

use super::http as http_conn;
use super::output::{
    awaits_close, deliver, describe, destroy, end, fire_error, flush, run_actions, send_raw,
};
use super::table::{READ_BUFFER_SIZE, Table, call_user, with};
use super::tls::looks_like_tls_client_hello;
use super::transport;
use super::websocket as websocket_conn;
use super::{Connection, TcpConnection};
use crate::protocols::http::{self, HttpError};
use crate::protocols::{ErasedProtocol, Input, Message, ProtocolKind, frame, text};

/// While a pipelined HTTP request waits for the one before it to be answered, reading stops once
/// this many bytes are buffered.
const PIPELINE_BUFFER_LIMIT: usize = 64 * 1024;
/// How long a TLS connection may take to finish its handshake (from the accept).
pub(crate) const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Accept and callbacks

pub(crate) fn on_accepted(handle: &TcpConnection) {
    let callback = with(|table| {
        let now = table.now;
        let connection = table.connection_mut(handle)?;
        let worker = connection.worker.clone();
        let layered = connection.layer.is_some();
        let protocol = worker.protocol.borrow();
        if matches!(*protocol, ProtocolKind::WebSocket) {
            connection.websocket = Some(Box::default());
        }
        // A WebSocket handshake is an HTTP request head, under the same timeout.
        if matches!(*protocol, ProtocolKind::Http | ProtocolKind::WebSocket) {
            connection.http.head_timer_running = true;
            let timeout = worker.http_settings.get().request_head_timeout;
            table.set_deadline(handle.key(), Some(now + timeout));
        }
        drop(protocol);
        // A TLS handshake has its own, shorter deadline: a client that connects and says
        // nothing costs little for long.
        if layered {
            table.set_deadline(handle.key(), Some(now + TLS_HANDSHAKE_TIMEOUT));
            if let Some(layered) = table
                .connection_mut(handle)
                .and_then(|connection| connection.layer.as_mut())
            {
                layered.handshake_deadline = true;
            }
        }
        worker.callbacks.on_connect.borrow().clone()
    });
    if let Some(callback) = callback {
        if call_user(&|| describe(handle, "on_connect"), || callback(handle)).is_none() {
            destroy(handle);
        }
    }
}

/// Whether the connection has a layer (TLS) between its socket and its codec.
pub(crate) fn has_layer(table: &Table, handle: &TcpConnection) -> bool {
    table
        .connection(handle)
        .is_some_and(|connection| connection.layer.is_some())
}

/// The connection's deadline (just set) is its TLS handshake's.
pub(crate) fn mark_handshake_deadline(table: &mut Table, handle: &TcpConnection) {
    if let Some(layered) = table
        .connection_mut(handle)
        .and_then(|connection| connection.layer.as_mut())
    {
        layered.handshake_deadline = true;
    }
}

/// A TLS connection's handshake deadline passed. Still handshaking: false (it is destroyed).
/// Done: true, and the protocol's deadline takes over (an HTTP head timer runs on to its full
/// length from the accept; other protocols have none).
pub(crate) fn outlived_handshake_deadline(handle: &TcpConnection) -> bool {
    with(|table| {
        let now = table.now;
        let Some(connection) = table.connection_mut(handle) else {
            return false;
        };
        let Some(layered) = connection.layer.as_mut() else {
            return false;
        };
        if !std::mem::take(&mut layered.handshake_deadline) {
            return false;
        }
        if super::transport::is_handshaking(connection.layer.as_deref()) {
            log::debug!("connection {}: TLS handshake timed out", handle.id());
            return false;
        }
        let head_timeout = connection.worker.http_settings.get().request_head_timeout;
        let rest = connection
            .http
            .head_timer_running
            .then(|| now + head_timeout.saturating_sub(TLS_HANDSHAKE_TIMEOUT));
        table.set_deadline(handle.key(), rest);
        true
    })
}

// ---------------------------------------------------------------------------------------------
// Reading

enum ReadOutcome {
    /// Bytes read; `drained`: fewer than asked came from a plain socket, so it has no more now
    /// (a layer may hold more plaintext than one read returns: read on to `WouldBlock`).
    Data {
        count: usize,
        drained: bool,
    },
    Discarded,
    Drained,
    Stopped,
    Eof,
    Failed(io::Error),
}

/// Whether the read path may take more bytes from the socket now.
fn may_read(connection: &Connection) -> bool {
    match connection.status {
        TcpConnection::STATUS_ESTABLISHED => {
            !connection.recv_paused
                && (!connection.http.awaiting_response
                    || connection.recv_buffer.len() < PIPELINE_BUFFER_LIMIT)
        }
        // Ending: keep reading (and discarding) to see the peer's FIN.
        TcpConnection::STATUS_ENDING => true,
        // Closing a WebSocket: keep reading for the peer's close frame.
        TcpConnection::STATUS_CLOSING => awaits_close(connection),
        _ => false,
    }
}

/// The socket is readable: read until it would block, feeding each read through the protocol.
/// `peer_closed`: the event said the peer shut its side, so read on to the end of the stream.
pub(crate) fn on_readable(handle: &TcpConnection, peer_closed: bool) {
    let mut buffer = with(|table| std::mem::take(&mut table.read_buffer));
    if buffer.len() < READ_BUFFER_SIZE {
        buffer.resize(READ_BUFFER_SIZE, 0);
    }
    loop {
        let outcome = with(|table| read_once(table, handle, &mut buffer));
        match outcome {
            ReadOutcome::Data { count, drained } => {
                consume(handle, &buffer[..count]);
                // epoll reports a new edge for every arrival after this read, so a short read
                // means the socket is drained: no need for one more read to see `WouldBlock`.
                // Not so for a FIN that came with the data: this event was its only edge.
                if drained && !peer_closed {
                    break;
                }
            }
            ReadOutcome::Discarded => {}
            ReadOutcome::Drained | ReadOutcome::Stopped => break,
            ReadOutcome::Eof => {
                destroy(handle);
                break;
            }
            ReadOutcome::Failed(error) => {
                log::debug!("read on connection {}: {error}", handle.id());
                // A client's failed TLS handshake (a refused certificate) is a connect failure
                // its on_error hears of, as a refused connect is.
                let tls_client = with(|table| {
                    table.connection(handle).is_some_and(|connection| {
                        connection.worker.client.is_some() && connection.layer.is_some()
                    })
                });
                if tls_client && error.kind() == io::ErrorKind::InvalidData {
                    fire_error(handle, TcpConnection::CONNECT_FAIL, &error.to_string());
                }
                destroy(handle);
                break;
            }
        }
    }
    with(|table| table.read_buffer = buffer);
}

fn read_once(table: &mut Table, handle: &TcpConnection, buffer: &mut [u8]) -> ReadOutcome {
    let Table {
        connections,
        metrics,
        ..
    } = table;
    let Some(connection) = connections
        .get_mut(handle.key())
        .filter(|connection| connection.id == handle.id())
    else {
        return ReadOutcome::Stopped;
    };
    if !may_read(connection) {
        connection.read_pending = true;
        return ReadOutcome::Stopped;
    }
    let Some(stream) = connection.stream.as_ref() else {
        return ReadOutcome::Stopped;
    };
    loop {
        let read = transport::read(stream, connection.layer.as_deref_mut(), buffer);
        if transport::wants_write(connection.layer.as_deref()) {
            // The layer wrote as it read (a handshake) and the socket pushed back.
            connection.waiting_writable = true;
        }
        match read {
            Ok(0) => return ReadOutcome::Eof,
            Ok(count) => {
                connection.bytes_read += count as u64;
                metrics.bytes_read += count as u64;
                connection.read_pending = false;
                if connection.status == TcpConnection::STATUS_ENDING {
                    return ReadOutcome::Discarded;
                }
                let drained = count < buffer.len() && connection.layer.is_none();
                return ReadOutcome::Data { count, drained };
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                connection.read_pending = false;
                return ReadOutcome::Drained;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return ReadOutcome::Failed(error),
        }
    }
}

/// Runs a connection again: what is buffered first, then the socket if reading stopped early.
pub(crate) fn resume(handle: &TcpConnection) {
    let (buffered, read_pending) = with(|table| {
        table
            .connection(handle)
            .map_or((false, false), |connection| {
                (!connection.recv_buffer.is_empty(), connection.read_pending)
            })
    });
    if buffered {
        consume(handle, &[]);
    }
    if read_pending {
        on_readable(handle, false);
    }
}

/// What the codec made of the start of the unread bytes: the one interface every protocol's
/// input goes through (see [`next_step`], where it is dispatched).
enum Step {
    /// Nothing more now (more bytes are needed, or the connection takes no messages at the
    /// moment), after taking this many bytes.
    Wait(usize),
    /// Bytes taken with no message yet (a WebSocket frame's payload, a streamed upload's body);
    /// `send_continue`: answer `100 Continue`.
    Took {
        consumed: usize,
        send_continue: bool,
    },
    /// A whole message, ending this many bytes in.
    Message(usize, Message),
    /// The connection is ending or refused: drop whatever else was received.
    DropRest,
    /// A package the protocol refuses: the connection closes.
    Invalid,
    /// An HTTP request the parser refuses: its 4xx answer, then the connection ends.
    HttpError(HttpError),
}

/// The bytes a [`consume`] works through: what was buffered with the fresh read appended, or
/// the fresh read alone; `position` is how far the codec has taken them.
struct Unread<'a> {
    fresh: &'a [u8],
    pending: Vec<u8>,
    from_pending: bool,
    position: usize,
}

impl Unread<'_> {
    #[inline(always)]
    fn total(&self) -> usize {
        if self.from_pending {
            self.pending.len()
        } else {
            self.fresh.len()
        }
    }

    #[inline(always)]
    fn rest(&self) -> &[u8] {
        if self.from_pending {
            &self.pending[self.position..]
        } else {
            &self.fresh[self.position..]
        }
    }
}

/// What the read path keeps for one batch of bytes: the worker's settings it reads once.
struct Batch {
    protocol: ProtocolKind,
    wants_bytes: bool,
    session_reads_later: bool,
    corked: bool,
    protocol_error: Option<Option<HttpError>>,
    send_continue: bool,
}

/// Feeds `fresh` bytes (after whatever was buffered) through the protocol, delivering each whole
/// message to `on_message`, and keeps the remainder for later: read → codec → deliver, the same
/// loop for every protocol.
fn consume(handle: &TcpConnection, fresh: &[u8]) {
    let Some((mut unread, mut batch)) = start_batch(handle, fresh) else {
        return;
    };
    while unread.position < unread.total() {
        let (consumed, message) = match next_step(handle, &batch, &mut unread) {
            Step::Wait(consumed) => {
                unread.position += consumed;
                break;
            }
            Step::Took {
                consumed,
                send_continue,
            } => {
                unread.position += consumed;
                batch.send_continue |= send_continue;
                continue;
            }
            Step::Message(consumed, message) => (consumed, message),
            Step::DropRest => {
                unread.position = unread.total();
                break;
            }
            Step::Invalid => {
                batch.protocol_error = Some(None);
                break;
            }
            Step::HttpError(error) => {
                batch.protocol_error = Some(Some(error));
                break;
            }
        };
        unread.position += consumed;
        let more_after = unread.position < unread.total();
        batch.corked |= more_after;
        with(|table| {
            table.statistics.total_request += 1;
            if let Some(connection) = table.connection_mut(handle) {
                connection.corked = more_after;
            }
        });
        // A session that is read later: the request waits for it (and the requests behind it
        // wait for its response, as ever).
        let message = if batch.session_reads_later {
            match http_conn::hold_for_session(handle, message) {
                Some(message) => message,
                None => continue,
            }
        } else {
            message
        };
        deliver(handle, message);
        if matches!(batch.protocol, ProtocolKind::Http) {
            super::session::after_on_message(handle);
        }
    }
    finish_batch(handle, unread, batch);
}

/// Takes the connection's buffered bytes and the worker's settings for one [`consume`].
#[inline(always)]
fn start_batch<'a>(handle: &TcpConnection, fresh: &'a [u8]) -> Option<(Unread<'a>, Batch)> {
    let (mut pending, batch) = with(|table| {
        let connection = table.connection_mut(handle)?;
        connection.dispatching = true;
        let batch = Batch {
            protocol: connection.worker.protocol.borrow().clone(),
            wants_bytes: connection.worker.text_as_bytes.get(),
            session_reads_later: connection.worker.session_reads_later.get(),
            corked: false,
            protocol_error: None,
            send_continue: false,
        };
        Some((std::mem::take(&mut connection.recv_buffer), batch))
    })?;
    let from_pending = !pending.is_empty();
    if from_pending {
        pending.extend_from_slice(fresh);
    }
    let unread = Unread {
        fresh,
        pending,
        from_pending,
        position: 0,
    };
    Some((unread, batch))
}

/// After a batch: keep the unread rest, write what corking held back, then act on a protocol
/// error (an invalid package closes; an HTTP error is answered, then the connection ends).
fn finish_batch(handle: &TcpConnection, unread: Unread<'_>, mut batch: Batch) {
    let actions = with(|table| {
        let connection = table.connection_mut(handle)?;
        connection.dispatching = false;
        connection.corked = false;
        if batch.protocol_error.is_none() && unread.position < unread.total() {
            let Unread {
                fresh,
                mut pending,
                from_pending,
                position,
            } = unread;
            if from_pending {
                pending.drain(..position);
                connection.recv_buffer = pending;
            } else {
                connection.recv_buffer = fresh[position..].to_vec();
            }
            if matches!(batch.protocol, ProtocolKind::Http) {
                batch.send_continue |= http_conn::note_partial_request(table, handle);
            }
        }
        let connection = table.connection_mut(handle)?;
        (batch.corked && connection.pending_send() > 0 && !connection.waiting_writable)
            .then(|| flush(table, handle.key()))
    });
    if let Some(actions) = actions {
        run_actions(handle, actions);
    }
    if batch.send_continue {
        send_raw(handle, http::CONTINUE);
    }
    match batch.protocol_error {
        None => {}
        Some(None) => {
            log::debug!("connection {}: invalid package, closing", handle.id());
            destroy(handle);
        }
        Some(Some(error)) => {
            log::debug!(
                "connection {}: {error}, answering {}",
                handle.id(),
                error.status()
            );
            send_raw(handle, error.response());
            end(handle);
        }
    }
}

/// The one place the read path dispatches on the protocol: built-in codecs keep their fast
/// paths behind [`Step`], a custom [`Protocol`](crate::protocols::Protocol) runs with the
/// reactor released (its `input` and `decode` are user code) under the same limits.
#[inline(always)]
fn next_step(handle: &TcpConnection, batch: &Batch, unread: &mut Unread<'_>) -> Step {
    match &batch.protocol {
        ProtocolKind::WebSocket => websocket_step(handle, unread.rest()),
        ProtocolKind::Http => http_step(handle, unread),
        ProtocolKind::Custom(custom) => custom_step(handle, custom.as_ref(), unread.rest()),
        builtin => builtin_step(handle, builtin, batch.wants_bytes, unread.rest()),
    }
}

/// WebSocket takes its bytes itself (a frame's payload as it arrives); it hands back whole
/// messages only.
#[inline(always)]
fn websocket_step(handle: &TcpConnection, data: &[u8]) -> Step {
    match websocket_conn::advance(handle, data) {
        websocket_conn::Advance::Wait(consumed) => Step::Wait(consumed),
        websocket_conn::Advance::Consumed(consumed) => Step::Took {
            consumed,
            send_continue: false,
        },
        websocket_conn::Advance::Message(length, message) => Step::Message(length, message),
        websocket_conn::Advance::Stop => Step::DropRest,
    }
}

/// `tcp://`, `text://`, `frame://`: framed and decoded within one borrow of the reactor.
#[inline(always)]
fn builtin_step(
    handle: &TcpConnection,
    protocol: &ProtocolKind,
    wants_bytes: bool,
    data: &[u8],
) -> Step {
    let input = with(|table| {
        let connection = table.connection(handle)?;
        if !takes_messages(connection) {
            return None;
        }
        Some(match protocol {
            ProtocolKind::Text => text::input(data, connection.max_package_size),
            ProtocolKind::Frame => frame::input(data, connection.max_package_size),
            _ => Input::Package(data.len()),
        })
    });
    let length = match input {
        Some(Input::Package(length)) if length <= data.len() => length,
        Some(Input::Invalid) => return Step::Invalid,
        _ => return Step::Wait(0),
    };
    let package = &data[..length];
    let message = match protocol {
        ProtocolKind::Text if wants_bytes => Message::Bytes(text::decode_bytes(package)),
        ProtocolKind::Text => Message::Text(text::decode(package)),
        ProtocolKind::Frame => Message::Bytes(frame::decode(package)),
        _ => Message::Bytes(package.to_vec()),
    };
    Step::Message(length, message)
}

/// `http://`: a request buffered whole, or a large multipart body streamed to disk.
#[inline(always)]
fn http_step(handle: &TcpConnection, unread: &mut Unread<'_>) -> Step {
    let mut tls_hello = false;
    let framed = with(|table| {
        let now = table.now;
        let connection = table.connection_mut(handle)?;
        if !takes_messages(connection) {
            return None;
        }
        let framed = http_conn::frame_request(connection, now, unread.rest());
        // A TLS ClientHello on a plain port: a clean close (a plain-text 400 would reach the
        // client as garbage).
        tls_hello = framed.is_err()
            && connection.layer.is_none()
            && looks_like_tls_client_hello(unread.rest());
        if let Ok(http_conn::Input::Consumed {
            deadline: Some(deadline),
            ..
        }) = &framed
        {
            table.set_deadline(handle.key(), Some(*deadline));
        }
        Some(framed)
    });
    if tls_hello {
        return Step::Invalid;
    }
    let length = match framed {
        None | Some(Ok(http_conn::Input::Wait)) => return Step::Wait(0),
        Some(Ok(http_conn::Input::Request(length))) if length <= unread.rest().len() => length,
        Some(Ok(http_conn::Input::Request(_))) => return Step::Wait(0),
        Some(Ok(http_conn::Input::Consumed {
            consumed,
            send_continue,
            ..
        })) => {
            return Step::Took {
                consumed,
                send_continue,
            };
        }
        Some(Ok(http_conn::Input::Uploaded(consumed, request))) => {
            return match with(|table| http_conn::begin_parsed_request(table, handle, *request)) {
                Some(request) => Step::Message(consumed, Message::Request(request)),
                None => Step::Wait(consumed),
            };
        }
        Some(Err(error)) => return Step::HttpError(error),
    };
    // The whole buffer is the request: it becomes the request's bytes, uncopied.
    let raw = if unread.from_pending && unread.position == 0 && length == unread.pending.len() {
        std::mem::take(&mut unread.pending)
    } else {
        let mut raw = http::take_buffer(length);
        raw.extend_from_slice(&unread.rest()[..length]);
        raw
    };
    match with(|table| http_conn::begin_request(table, handle, raw)) {
        Some(request) => Step::Message(length, Message::Request(request)),
        None => Step::Wait(0),
    }
}

/// A custom protocol: its `input` and `decode` run with the reactor released, and its packages
/// are held to `max_package_size` as the built-in ones are.
fn custom_step(handle: &TcpConnection, custom: &dyn ErasedProtocol, data: &[u8]) -> Step {
    let max = with(|table| {
        table
            .connection(handle)
            .filter(|connection| takes_messages(connection))
            .map(|connection| connection.max_package_size)
    });
    let Some(max) = max else {
        return Step::Wait(0);
    };
    let input = call_user(&|| describe(handle, "a custom protocol's input"), || {
        custom.input(data, handle)
    });
    let length = match custom_length(handle, input, data.len(), max) {
        Some(length) if length <= data.len() => length,
        Some(_) => return Step::Wait(0),
        None => return Step::Invalid,
    };
    match call_user(&|| describe(handle, "a custom protocol's decode"), || {
        custom.decode(&data[..length], handle)
    }) {
        Some(message) => Step::Message(length, Message::Custom(message)),
        None => Step::Invalid,
    }
}

/// A custom protocol's answer to `input`, under `max_package_size`: the package's length
/// (`usize::MAX`: not known yet, wait), or `None`: the connection goes (Workerman's "Error
/// package" rules, and a panic in `input`, logged by `call_user`).
fn custom_length(
    handle: &TcpConnection,
    input: Option<Input>,
    buffered: usize,
    max: usize,
) -> Option<usize> {
    match input {
        // Workerman's `0`: the length is not known yet.
        Some(Input::NeedMore | Input::Package(0)) if buffered < max => Some(usize::MAX),
        Some(Input::NeedMore | Input::Package(0)) => {
            // Beyond Workerman, which buffers without bound while `input` says 0.
            log::warn!(
                "Error package. package_length=0 with {buffered} bytes buffered, over max_package_size {max} (connection {})",
                handle.id()
            );
            None
        }
        Some(Input::Package(length)) if length <= max => Some(length),
        Some(Input::Package(length)) => {
            log::warn!(
                "Error package. package_length={length} (over max_package_size {max}, connection {})",
                handle.id()
            );
            None
        }
        Some(Input::Invalid) => {
            log::warn!(
                "Error package. package_length=false (connection {})",
                handle.id()
            );
            None
        }
        None => None,
    }
}

/// Whether the next package may be delivered now.
fn takes_messages(connection: &Connection) -> bool {
    connection.status == TcpConnection::STATUS_ESTABLISHED
        && !connection.recv_paused
        && !connection.http.awaiting_response
}
