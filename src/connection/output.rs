//! What leaves the driver: messages delivered to the callbacks (`on_message`, a pipe), bytes
//! sent and written to the socket (encode, write what the kernel takes, queue the rest, flush
//! when writable), the buffer events, and the connection's end (close, end, destroy). The
//! protocol sides (`http.rs`, `websocket.rs`, `session.rs`) write through it; the driver
//! (`io.rs`) reads and dispatches above it.

use std::borrow::Cow;
use std::io;
use std::net::Shutdown;
use std::rc::Rc;
use std::time::Duration;

use super::actions::Actions;
use super::stream::Stream;
use super::table::{self, Table, call_user, with};
use super::transport;
use super::{Connection, SendResult, TcpConnection};
use crate::protocols::http::{self, Streaming};
use crate::protocols::shared::SharedKind;
use crate::protocols::{
    ErasedProtocol, Message, Outbound, ProtocolKind, SharedMessage, frame, text, websocket,
};

/// While corked (dispatching pipelined input), sends are written once this many bytes are queued.
const CORK_LIMIT: usize = 64 * 1024;
/// A send buffer larger than this is freed once it drains, so an idle connection holds nothing.
const KEEP_BUFFER_CAPACITY: usize = 16 * 1024;
/// How much of a large file is read into the send buffer at a time.
const FILE_PIECE: usize = 256 * 1024;
/// How long a WebSocket whose close frame went out first reads on for the peer's close frame
/// before it closes anyway (see `connection/websocket.rs`).
const CLOSE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// `end()`: how long to wait for the peer's FIN after ours (Workerman's `lingerTimeout`).
const LINGER: Duration = Duration::from_secs(1);

/// Carries out what a borrow gathered, in this order: the session's save, `on_error`, the
/// buffer events, close, destroy.
pub(crate) fn run_actions(handle: &TcpConnection, actions: Actions) {
    if actions.save_session {
        super::session_save::save(handle);
    }
    if let Some((code, message)) = actions.error {
        fire_error(handle, code, message);
    }
    if actions.buffer_full {
        fire_buffer_event(handle, true);
    }
    if actions.buffer_drain {
        fire_buffer_event(handle, false);
    }
    if actions.close {
        close(handle);
    }
    if actions.destroy {
        destroy(handle);
    }
}

pub(crate) fn describe(handle: &TcpConnection, callback: &str) -> String {
    let worker = table::try_with(|table| {
        table
            .connection(handle)
            .map(|connection| connection.worker.name.borrow().clone())
    })
    .flatten()
    .unwrap_or_default();
    format!("{callback} of worker {worker}, connection {}", handle.id())
}

pub(crate) fn fire_error(handle: &TcpConnection, code: i32, message: &str) {
    let callback = with(|table| {
        table
            .connection(handle)
            .and_then(|connection| connection.worker.callbacks.on_error.borrow().clone())
    });
    if let Some(callback) = callback {
        call_user(&|| describe(handle, "on_error"), || {
            callback(handle, code, message)
        });
    }
}

/// `on_buffer_full` (`full`) or `on_buffer_drain`; a pipe's destination throttles its source.
fn fire_buffer_event(handle: &TcpConnection, full: bool) {
    let (source, callback) = with(|table| {
        let Some(connection) = table.connection(handle) else {
            return (None, None);
        };
        let callbacks = &connection.worker.callbacks;
        let callback = if full {
            callbacks.on_buffer_full.borrow().clone()
        } else {
            callbacks.on_buffer_drain.borrow().clone()
        };
        (connection.pipe_from().cloned(), callback)
    });
    if let Some(source) = source {
        if full {
            source.pause_recv();
        } else {
            source.resume_recv();
        }
        return;
    }
    if let Some(callback) = callback {
        let name = if full {
            "on_buffer_full"
        } else {
            "on_buffer_drain"
        };
        if call_user(&|| describe(handle, name), || callback(handle)).is_none() {
            destroy(handle);
        }
    }
}

/// Whether the connection is a WebSocket whose close frame went out first, waiting for the
/// peer's: it reads on, and its socket stays open until then (or its deadline).
pub(crate) fn awaits_close(connection: &Connection) -> bool {
    connection
        .websocket
        .as_ref()
        .is_some_and(|state| state.awaits_close())
}

pub(crate) fn deliver(handle: &TcpConnection, message: Message) {
    let (callback, pipe_to) = with(|table| match table.connection(handle) {
        Some(connection) => (
            connection.worker.callbacks.on_message.borrow().clone(),
            connection.pipe_to().cloned(),
        ),
        None => (None, None),
    });
    if let Some(destination) = pipe_to {
        if let Some(bytes) = message.into_bytes() {
            destination.send(bytes);
        }
        return;
    }
    let Some(callback) = callback else {
        return;
    };
    if call_user(&|| describe(handle, "on_message"), || {
        callback(handle, message)
    })
    .is_none()
    {
        after_message_panic(handle);
    }
}

/// A panic in `on_message` costs its connection: an HTTP request still unanswered gets a 500.
fn after_message_panic(handle: &TcpConnection) {
    let unanswered = with(|table| {
        table.connection(handle).is_some_and(|connection| {
            connection.http.awaiting_response && connection.http.streaming == Streaming::None
        })
    });
    if unanswered {
        send_raw(handle, http::INTERNAL_SERVER_ERROR);
        with(|table| {
            if let Some(connection) = table.connection_mut(handle) {
                connection.http.awaiting_response = false;
            }
        });
        close(handle);
    } else {
        destroy(handle);
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// `TcpConnection::send`: encode with the connection's protocol, then write or queue.
///
/// The built-in protocols encode and write within one borrow of the reactor; a custom protocol's
/// `encode` is user code, so it runs with the reactor released.
pub(crate) fn send(handle: &TcpConnection, outbound: Outbound<'_>) -> SendResult {
    // Raw and shared bytes go around the protocol; a ping or pong is WebSocket only: their own
    // path (the message moves there only when it is one), so the common one stays as it was.
    if matches!(
        outbound,
        Outbound::Raw(_) | Outbound::Shared(_) | Outbound::Ping(_) | Outbound::Pong(_)
    ) {
        return send_around(handle, outbound);
    }
    send_encoded(handle, outbound)
}

/// `send` through the connection's protocol.
#[inline(always)]
fn send_encoded(handle: &TcpConnection, outbound: Outbound<'_>) -> SendResult {
    enum Plan {
        Done(SendResult, Actions),
        Custom(Rc<dyn ErasedProtocol>),
    }
    // The message stays here unless the built-in protocol takes it, so the plan the reactor
    // borrow returns is small (no 128-byte message copied through it).
    let mut outbound = Some(outbound);
    let plan = with(|table| {
        // Refused before encoding: a slow client costs no work per dropped message.
        let protocol = match admit(table, handle) {
            Ok(protocol) => protocol,
            Err((result, actions)) => return Plan::Done(result, actions),
        };
        if let ProtocolKind::Custom(custom) = protocol {
            return Plan::Custom(custom);
        }
        let Some(outbound) = outbound.take() else {
            return Plan::Done(SendResult::Refused, Actions::default());
        };
        let mut out = std::mem::take(&mut table.write_scratch);
        out.clear();
        let (result, actions) = encode_and_write(table, handle, &protocol, outbound, &mut out);
        table.write_scratch = recycle(out);
        Plan::Done(result, actions)
    });
    let (result, actions) = match (plan, outbound) {
        (Plan::Done(result, actions), _) => (result, actions),
        (Plan::Custom(_), None) => (SendResult::Refused, Actions::default()),
        (Plan::Custom(custom), Some(outbound)) => {
            let mut out = with(|table| std::mem::take(&mut table.write_scratch));
            out.clear();
            let bytes = outbound_bytes(outbound);
            let encoded = call_user(&|| describe(handle, "a custom protocol's encode"), || {
                custom.encode(&bytes, handle, &mut out)
            });
            let outcome = match encoded {
                Some(()) => with(|table| write_or_queue(table, handle, &out)),
                None => (
                    SendResult::Refused,
                    Actions {
                        destroy: true,
                        ..Actions::default()
                    },
                ),
            };
            with(|table| table.write_scratch = recycle(out));
            outcome
        }
    };
    run_actions(handle, actions);
    result
}

/// The one check before every send: the connection's protocol, or the refusal when the
/// connection is gone or closing, or its send buffer is full (counted in `send_fail`, and
/// reported to `on_error` as Workerman's "send buffer full and drop package").
#[inline(always)]
fn admit(table: &mut Table, handle: &TcpConnection) -> Result<ProtocolKind, (SendResult, Actions)> {
    let Some(connection) = table
        .connection(handle)
        .filter(|connection| connection.status <= TcpConnection::STATUS_ESTABLISHED)
    else {
        return Err((SendResult::Refused, Actions::default()));
    };
    if is_full(connection) {
        table.statistics.send_fail += 1;
        let actions = Actions {
            error: Some((TcpConnection::SEND_FAIL, BUFFER_FULL_DROP)),
            ..Actions::default()
        };
        return Err((SendResult::Refused, actions));
    }
    Ok(connection.worker.protocol.borrow().clone())
}

/// `TcpConnection::send_message`: a custom protocol's typed send.
pub(crate) fn send_message(
    handle: &TcpConnection,
    message: Box<dyn std::any::Any>,
    type_name: &str,
) -> SendResult {
    let protocol = match with(|table| admit(table, handle)) {
        Ok(protocol) => protocol,
        Err((result, actions)) => {
            run_actions(handle, actions);
            return result;
        }
    };
    let ProtocolKind::Custom(custom) = protocol else {
        log::warn!(
            "connection {}: send_message({type_name}) needs a custom protocol that implements Encode",
            handle.id()
        );
        return SendResult::Refused;
    };
    let Some(encoder) = custom.outgoing() else {
        log::warn!(
            "connection {}: send_message({type_name}): the protocol's `outgoing` returns None",
            handle.id()
        );
        return SendResult::Refused;
    };
    let mut out = with(|table| std::mem::take(&mut table.write_scratch));
    out.clear();
    let encoded = call_user(
        &|| describe(handle, "a custom protocol's encode_message"),
        || encoder.encode_any(message, handle, &mut out).is_ok(),
    );
    let (result, actions) = match encoded {
        Some(true) => with(|table| write_or_queue(table, handle, &out)),
        Some(false) => {
            log::warn!(
                "connection {}: send_message({type_name}): the protocol sends {}",
                handle.id(),
                encoder.outgoing_type()
            );
            (SendResult::Refused, Actions::default())
        }
        None => (
            SendResult::Refused,
            Actions {
                destroy: true,
                ..Actions::default()
            },
        ),
    };
    with(|table| table.write_scratch = recycle(out));
    run_actions(handle, actions);
    result
}

/// `send` of raw or shared bytes (around the protocol), or of a ping or pong (WebSocket only).
#[inline(never)]
#[cold]
fn send_around(handle: &TcpConnection, outbound: Outbound<'_>) -> SendResult {
    enum Around<'a> {
        Done(SendResult, Actions),
        /// A ping or pong on a WebSocket connection: the protocol frames it.
        Frame(Outbound<'a>),
    }
    let outcome = with(|table| {
        let protocol = match admit(table, handle) {
            Ok(protocol) => protocol,
            Err((result, actions)) => return Around::Done(result, actions),
        };
        match outbound {
            Outbound::Raw(bytes) => {
                let (result, actions) = write_or_queue(table, handle, &bytes);
                Around::Done(result, actions)
            }
            Outbound::Shared(shared) => {
                let (result, actions) = send_shared(table, handle, &protocol, &shared);
                Around::Done(result, actions)
            }
            Outbound::Ping(_) | Outbound::Pong(_)
                if !matches!(protocol, ProtocolKind::WebSocket) =>
            {
                log::debug!(
                    "connection {}: a ping or pong is WebSocket only",
                    handle.id()
                );
                Around::Done(SendResult::Refused, Actions::default())
            }
            control => Around::Frame(control),
        }
    });
    match outcome {
        Around::Done(result, actions) => {
            run_actions(handle, actions);
            result
        }
        Around::Frame(control) => send_encoded(handle, control),
    }
}

/// Keeps the scratch buffer from holding on to a huge allocation after a huge send.
#[inline(always)]
fn recycle(mut out: Vec<u8>) -> Vec<u8> {
    if out.capacity() > 1024 * 1024 {
        out = Vec::with_capacity(4096);
    }
    out
}

fn outbound_bytes(outbound: Outbound<'_>) -> Cow<'_, [u8]> {
    match outbound {
        Outbound::Bytes(bytes) => bytes,
        Outbound::Response(response) => {
            let mut out = Vec::new();
            http::encode_standalone(response, &mut out);
            Cow::Owned(out)
        }
        Outbound::Event(event) => Cow::Owned(event.to_bytes()),
        Outbound::Chunk(chunk) => Cow::Owned(chunk.to_bytes()),
        Outbound::WebSocket(message) => Cow::Owned(message.into_bytes()),
        Outbound::Raw(bytes) => bytes,
        Outbound::Shared(shared) => Cow::Owned(shared.as_bytes().to_vec()),
        Outbound::Ping(ping) => Cow::Owned(ping.into_payload()),
        Outbound::Pong(pong) => Cow::Owned(pong.into_payload()),
    }
}

/// Sends a [`SharedMessage`]: its bytes by reference when the connection's protocol and state
/// take them as they are, else a copy encoded for this connection (a `ws://` client masks its
/// frames; a WebSocket handshake holds messages back), or refused when it was made for another
/// protocol.
fn send_shared(
    table: &mut Table,
    handle: &TcpConnection,
    protocol: &ProtocolKind,
    shared: &SharedMessage,
) -> (SendResult, Actions) {
    let Some(connection) = table.connection(handle) else {
        return (SendResult::Refused, Actions::default());
    };
    enum Route {
        Shared,
        Encode(Outbound<'static>),
        Refuse(&'static str),
    }
    let route = match (shared.kind, protocol) {
        (SharedKind::Raw, _) => Route::Shared,
        (SharedKind::Event, ProtocolKind::Http) => match connection.http.streaming {
            Streaming::EventStream => Route::Shared,
            // Each event becomes a chunk of its own: framed for this connection.
            Streaming::Chunked => {
                Route::Encode(Outbound::Bytes(Cow::Owned(shared.as_bytes().to_vec())))
            }
            _ => Route::Refuse("an event needs a text/event-stream response first"),
        },
        (SharedKind::Chunk, ProtocolKind::Http) => match connection.http.streaming {
            Streaming::Chunked => Route::Shared,
            _ => Route::Refuse("a chunk needs a chunked response first"),
        },
        (SharedKind::WebSocket { .. }, ProtocolKind::WebSocket) => {
            if websocket::takes_shared_frames(connection.websocket.as_deref()) {
                Route::Shared
            } else {
                let (opcode, payload) = shared.websocket_payload().unwrap_or_default();
                let message = if opcode == websocket::frame::OP_TEXT {
                    websocket::Message::Text(String::from_utf8_lossy(payload).into_owned())
                } else {
                    websocket::Message::Binary(payload.to_vec())
                };
                Route::Encode(Outbound::WebSocket(message))
            }
        }
        _ => Route::Refuse("the shared message was made for another protocol"),
    };
    match route {
        Route::Shared => write_shared(table, handle, &shared.bytes),
        Route::Encode(outbound) => {
            let mut out = std::mem::take(&mut table.write_scratch);
            out.clear();
            let outcome = encode_and_write(table, handle, protocol, outbound, &mut out);
            table.write_scratch = recycle(out);
            outcome
        }
        Route::Refuse(reason) => {
            log::debug!("connection {}: send refused: {reason}", handle.id());
            (SendResult::Refused, Actions::default())
        }
    }
}

/// A write the socket failed: the send is refused, and the connection reports
/// `SEND_FAIL` and ends.
fn refused(
    table: &mut Table,
    handle: &TcpConnection,
    error: &std::io::Error,
) -> (SendResult, Actions) {
    log::debug!("write on connection {}: {error}", handle.id());
    table.statistics.send_fail += 1;
    let actions = Actions {
        error: Some((TcpConnection::SEND_FAIL, "client closed")),
        destroy: true,
        ..Actions::default()
    };
    (SendResult::Refused, actions)
}

/// Writes shared bytes now if nothing is queued; what the kernel does not take waits in the
/// send queue as a reference to them, not a copy. Where a reference cannot wait (a connection
/// not up yet, pipelined input being answered, a file being sent, a UDP peer), the bytes are
/// copied as any send's.
fn write_shared(
    table: &mut Table,
    handle: &TcpConnection,
    bytes: &Rc<[u8]>,
) -> (SendResult, Actions) {
    let Some(connection) = table.connection_mut(handle) else {
        return (SendResult::Refused, Actions::default());
    };
    let by_reference = matches!(connection.stream, Some(Stream::Tcp(_) | Stream::Unix(_)))
        && connection.layer.is_none()
        && connection.status == TcpConnection::STATUS_ESTABLISHED
        && !connection.corked
        && connection.http.file.is_none();
    let pending = connection.pending_send();
    if !by_reference || (pending > 0 && !connection.waiting_writable) {
        return write_or_queue(table, handle, bytes);
    }
    let mut actions = Actions::default();
    if pending == 0 {
        match write_some(connection, bytes) {
            Ok(written) if written == bytes.len() => return (SendResult::Written, actions),
            Ok(written) => {
                connection
                    .extras()
                    .send_queue()
                    .push_shared(bytes.clone(), written);
                connection.waiting_writable = true;
            }
            Err(error) => return refused(table, handle, &error),
        }
    } else {
        connection
            .extras()
            .send_queue()
            .push_shared(bytes.clone(), 0);
    }
    if connection.pending_send() >= connection.max_send_buffer_size && !connection.buffer_full {
        connection.buffer_full = true;
        actions.buffer_full = true;
    }
    (SendResult::Queued, actions)
}

fn encode_and_write(
    table: &mut Table,
    handle: &TcpConnection,
    protocol: &ProtocolKind,
    outbound: Outbound<'_>,
    out: &mut Vec<u8>,
) -> (SendResult, Actions) {
    let Some(connection) = table.connection_mut(handle) else {
        return (SendResult::Refused, Actions::default());
    };
    let mut completion = None;
    let mut stream_started = false;
    match protocol {
        ProtocolKind::Http => {
            // Only a response can start an event stream; an event on one changes nothing.
            let head = matches!(outbound, Outbound::Response(_));
            let pending = (connection.extras.as_mut())
                .map(|extras| &mut extras.headers)
                .filter(|headers| !headers.is_empty());
            match http::encode(&mut connection.http, outbound, pending, out) {
                Ok(done) => completion = done,
                Err(reason) => {
                    log::warn!("connection {}: send refused: {reason}", handle.id());
                    return (SendResult::Refused, Actions::default());
                }
            }
            stream_started = head && connection.http.streaming == Streaming::EventStream;
        }
        ProtocolKind::WebSocket => match websocket::encode(
            connection.websocket.as_deref_mut(),
            connection.max_send_buffer_size,
            outbound,
            out,
        ) {
            websocket::Encoded::Write => {}
            websocket::Encoded::Held => return (SendResult::Queued, Actions::default()),
            websocket::Encoded::Refused(reason) => {
                log::debug!("connection {}: send refused: {reason}", handle.id());
                return (SendResult::Refused, Actions::default());
            }
        },
        ProtocolKind::Text => text::encode(&outbound_bytes(outbound), out),
        ProtocolKind::Frame => frame::encode(&outbound_bytes(outbound), out),
        ProtocolKind::Raw | ProtocolKind::Custom(_) => {
            out.extend_from_slice(&outbound_bytes(outbound))
        }
    }
    if stream_started {
        table.metrics.sse_streams += 1;
    }
    let (result, mut actions) = write_or_queue(table, handle, out);
    if let Some(close_after) = completion {
        actions.merge(super::response_end::response_complete(
            table,
            handle,
            close_after,
        ));
    }
    (result, actions)
}

/// Bytes that bypass the protocol (HTTP error answers, the 500 after a panic).
pub(crate) fn send_raw(handle: &TcpConnection, bytes: &[u8]) {
    let actions = with(|table| {
        let established = table
            .connection(handle)
            .is_some_and(|connection| connection.status <= TcpConnection::STATUS_ESTABLISHED);
        established.then(|| write_or_queue(table, handle, bytes).1)
    });
    if let Some(actions) = actions {
        run_actions(handle, actions);
    }
}

/// Workerman's `onError` message for a send dropped because the queue is at its limit.
const BUFFER_FULL_DROP: &str = "send buffer full and drop package";

/// The queue is at its limit: further sends are dropped until it drains below it (Workerman's
/// rule; the send that crossed the limit was still queued whole).
fn is_full(connection: &Connection) -> bool {
    let pending = connection.pending_send();
    pending > 0 && pending >= connection.max_send_buffer_size
}

/// Writes `bytes` now if nothing is queued (Workerman's `send`), else queues them, within the
/// send buffer's limit.
fn write_or_queue(
    table: &mut Table,
    handle: &TcpConnection,
    bytes: &[u8],
) -> (SendResult, Actions) {
    let key = handle.key();
    let Some(connection) = table.connection_mut(handle) else {
        return (SendResult::Refused, Actions::default());
    };
    if let Some(Stream::Datagram(listener)) = connection.stream {
        return super::udp_peer::send_to(table, handle, listener as usize, bytes);
    }
    let pending = connection.pending_send();
    let written_before = connection.bytes_written;
    if is_full(connection) {
        table.statistics.send_fail += 1;
        let actions = Actions {
            error: Some((TcpConnection::SEND_FAIL, BUFFER_FULL_DROP)),
            ..Actions::default()
        };
        return (SendResult::Refused, actions);
    }
    let mut actions = Actions::default();
    if connection.status == TcpConnection::STATUS_CONNECTING {
        // A client connection that is not up yet: everything waits for `flush` once it is.
        connection.send_buffer.extend_from_slice(bytes);
        table.metrics.queued(pending, pending + bytes.len());
        return (SendResult::Queued, actions);
    }
    if pending == 0 && !connection.corked && connection.http.file.is_none() {
        match write_some(connection, bytes) {
            // All of it reached the socket (a layer may hold some of its ciphertext: then it
            // counts as queued, and writable events finish it).
            Ok(written)
                if written == bytes.len()
                    && !transport::wants_write(connection.layer.as_deref()) =>
            {
                table.metrics.bytes_written += written as u64;
                return (SendResult::Written, actions);
            }
            Ok(written) => {
                connection.send_buffer.extend_from_slice(&bytes[written..]);
                connection.waiting_writable = true;
            }
            Err(error) => return refused(table, handle, &error),
        }
    } else {
        if connection.waiting_writable && connection.queued_by_reference() > 0 {
            // Behind shared messages waiting by reference: in order, after them.
            connection.extras().send_queue().push_owned(bytes);
        } else {
            connection.send_buffer.extend_from_slice(bytes);
        }
        let over_cork = connection.corked && connection.pending_send() >= CORK_LIMIT;
        if !connection.waiting_writable && (!connection.corked || over_cork) {
            actions.merge(flush_buffer(table, key));
        }
    }
    queued_result(table, handle, pending, written_before, actions)
}

/// After bytes were queued (and maybe partly written): `Written` if nothing is left, else
/// `Queued`, with `on_buffer_full` when the queue reached `max_send_buffer_size`; the metrics
/// count what moved.
#[inline(always)]
fn queued_result(
    table: &mut Table,
    handle: &TcpConnection,
    pending: usize,
    written_before: u64,
    mut actions: Actions,
) -> (SendResult, Actions) {
    let Some(connection) = table.connection_mut(handle) else {
        return (SendResult::Refused, actions);
    };
    let queued = connection.pending_send();
    let written = connection.bytes_written - written_before;
    let result = if queued == 0 {
        SendResult::Written
    } else {
        if queued >= connection.max_send_buffer_size && !connection.buffer_full {
            connection.buffer_full = true;
            actions.buffer_full = true;
        }
        SendResult::Queued
    };
    table.metrics.queued(pending, queued);
    table.metrics.bytes_written += written;
    (result, actions)
}

/// Writes as much of `bytes` as the kernel takes now.
fn write_some(connection: &mut Connection, bytes: &[u8]) -> io::Result<usize> {
    let Some(stream) = connection.stream.as_ref() else {
        return Err(io::ErrorKind::NotConnected.into());
    };
    let mut written = 0;
    while written < bytes.len() {
        match transport::write(stream, connection.layer.as_deref_mut(), &bytes[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(count) => written += count,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    connection.bytes_written += written as u64;
    Ok(written)
}

/// Writes the send buffer until it is empty or the kernel is full, pulling more of a streamed
/// file as it goes; once empty: `on_buffer_drain` (if the kernel had pushed back), then finish a
/// pending close or end.
pub(crate) fn flush(table: &mut Table, key: usize) -> Actions {
    let before = table
        .connections
        .get(key)
        .map(|connection| (connection.pending_send(), connection.bytes_written));
    let actions = flush_buffer(table, key);
    if let (Some((queued, written)), Some(connection)) = (before, table.connections.get(key)) {
        let now = (connection.pending_send(), connection.bytes_written);
        table.metrics.queued(queued, now.0);
        table.metrics.bytes_written += now.1 - written;
    }
    actions
}

/// [`flush`] without the metrics' accounting (for callers that do their own).
fn flush_buffer(table: &mut Table, key: usize) -> Actions {
    let mut actions = Actions::default();
    loop {
        if !write_pending(table, key, &mut actions) {
            return actions;
        }
        let Some(connection) = table.connections.get_mut(key) else {
            return actions;
        };
        // The buffer is empty: free a large one, and pull the next piece of a streamed file.
        connection.send_buffer.clear();
        connection.send_offset = 0;
        if connection.send_buffer.capacity() > KEEP_BUFFER_CAPACITY {
            connection.send_buffer = Vec::new();
        }
        let id = connection.id;
        match http::pump_file(
            &mut connection.http,
            &mut connection.send_buffer,
            FILE_PIECE,
        ) {
            Ok(http::Pumped::Nothing) => break,
            Ok(http::Pumped::More) => {}
            Ok(http::Pumped::Finished { close_after }) => {
                let handle = TcpConnection::new(key, id);
                actions.merge(super::response_end::response_complete(
                    table,
                    &handle,
                    close_after,
                ));
            }
            Err(error) => {
                log::warn!("reading a file for connection {id}: {error}");
                actions.destroy = true;
                return actions;
            }
        }
    }
    flushed(table, key, actions)
}

/// Writes the send buffer, then what waits by reference behind it: `true` once all of it is
/// written; `false` when the kernel pushes back, or the write failed (`actions` then destroy).
#[inline(always)]
fn write_pending(table: &mut Table, key: usize, actions: &mut Actions) -> bool {
    let Some(connection) = table.connections.get_mut(key) else {
        return false;
    };
    let written = match write_buffered(connection) {
        Ok(true) if connection.waiting_writable && connection.queued_by_reference() > 0 => {
            write_queue(connection)
        }
        Ok(false) => {
            connection.waiting_writable = true;
            return false;
        }
        other => other,
    };
    match written {
        Ok(done) => done,
        Err(error) => {
            log::debug!("write on connection {}: {error}", connection.id);
            table.statistics.send_fail += 1;
            actions.destroy = true;
            false
        }
    }
}

/// Everything is written: `on_buffer_drain` (if the kernel had pushed back), then a pending
/// `close` destroys, a pending `end` sends FIN (after the transport's orderly close).
fn flushed(table: &mut Table, key: usize, mut actions: Actions) -> Actions {
    let now = table.now;
    let Some(connection) = table.connections.get_mut(key) else {
        return actions;
    };
    // A WebSocket's close handshake: the socket stays until the peer's close frame (or the
    // deadline).
    let awaiting = awaits_close(connection);
    if matches!(
        connection.status,
        TcpConnection::STATUS_CLOSING | TcpConnection::STATUS_ENDING
    ) && !awaiting
        && !close_layer(connection)
    {
        // The layer's orderly close (TLS close_notify) waits for writable, before our FIN.
        return actions;
    }
    if std::mem::take(&mut connection.waiting_writable) {
        actions.buffer_drain = true;
    }
    connection.buffer_full = false;
    match connection.status {
        TcpConnection::STATUS_CLOSING if !awaiting => actions.destroy = true,
        TcpConnection::STATUS_ENDING => {
            if let Some(stream) = &connection.stream {
                let _ = stream.shutdown(Shutdown::Write);
            }
            table.set_deadline(key, Some(now + LINGER));
        }
        _ => {}
    }
    actions
}

/// A layer's orderly close, written: `true` once done (at once without a layer); `false` while
/// the socket pushes back (then the connection waits for writable). A failed write: done.
fn close_layer(connection: &mut Connection) -> bool {
    let Some(stream) = connection.stream.as_ref() else {
        return true;
    };
    match transport::close(stream, connection.layer.as_deref_mut()) {
        Ok(true) => true,
        Ok(false) => {
            connection.waiting_writable = true;
            false
        }
        Err(error) => {
            log::debug!("closing the layer of connection {}: {error}", connection.id);
            true
        }
    }
}

/// Writes the send buffer from its offset: `Ok(true)` once it is all written, `Ok(false)` when
/// the kernel would block.
fn write_buffered(connection: &mut Connection) -> io::Result<bool> {
    let Connection {
        stream,
        layer,
        send_buffer,
        send_offset,
        bytes_written,
        ..
    } = connection;
    let Some(stream) = stream.as_ref() else {
        return Err(io::ErrorKind::NotConnected.into());
    };
    // What a layer holds goes first (a handshake's messages, a record the socket cut short).
    if !transport::flush(stream, layer.as_deref_mut())? {
        return Ok(false);
    }
    while *send_offset < send_buffer.len() {
        match transport::write(stream, layer.as_deref_mut(), &send_buffer[*send_offset..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(count) => {
                *send_offset += count;
                *bytes_written += count as u64;
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    // Written only once the layer's ciphertext of it has left too (then `on_buffer_drain`).
    transport::flush(stream, layer.as_deref_mut())
}

/// Writes the queue of shared messages: `Ok(true)` once it is empty.
fn write_queue(connection: &mut Connection) -> io::Result<bool> {
    let Connection {
        stream,
        extras,
        bytes_written,
        ..
    } = connection;
    let (Some(stream), Some(extras)) = (stream.as_ref(), extras.as_mut()) else {
        return Err(io::ErrorKind::NotConnected.into());
    };
    let Some(queue) = extras.send_queue.as_mut() else {
        return Ok(true);
    };
    let emptied = queue.write_to(stream, bytes_written)?;
    if emptied {
        // Nothing waits by reference any more: free the queue (a long stall grew it).
        extras.send_queue = None;
    }
    Ok(emptied)
}

/// The socket is writable: if bytes were waiting for it, write them.
pub(crate) fn on_writable(handle: &TcpConnection) {
    let actions = with(|table| {
        let waiting = table
            .connection(handle)
            .is_some_and(|connection| connection.waiting_writable);
        waiting.then(|| flush(table, handle.key()))
    });
    if let Some(actions) = actions {
        run_actions(handle, actions);
    }
}

// ---------------------------------------------------------------------------------------------
// Closing

/// `close()`: stop reading, flush what is queued, then destroy (at once when nothing is queued,
/// so `on_close` runs inside the call, as in Workerman).
pub(crate) fn close(handle: &TcpConnection) {
    let actions = with(|table| {
        let connection = table.connection_mut(handle)?;
        match connection.status {
            TcpConnection::STATUS_CLOSING | TcpConnection::STATUS_CLOSED => None,
            TcpConnection::STATUS_INITIAL | TcpConnection::STATUS_CONNECTING => Some(Actions {
                destroy: true,
                ..Actions::default()
            }),
            _ => {
                // An open WebSocket says goodbye with a close frame (1000) first.
                let goodbye = websocket::close_frame(connection.websocket.as_deref_mut());
                let mut actions = Actions::default();
                if let Some((goodbye, length)) = goodbye {
                    connection.corked = false;
                    actions = write_or_queue(table, handle, &goodbye[..length]).1;
                }
                let connection = table.connection_mut(handle)?;
                connection.status = TcpConnection::STATUS_CLOSING;
                connection.corked = false;
                // A WebSocket whose close frame went out reads on for the peer's (bounded).
                connection.recv_paused = !awaits_close(connection);
                if !connection.recv_paused {
                    let deadline = table.now + CLOSE_HANDSHAKE_TIMEOUT;
                    table.set_deadline(handle.key(), Some(deadline));
                }
                if let Some(finish) = finish_when_flushed(table, handle) {
                    actions.merge(finish);
                }
                Some(actions)
            }
        }
    });
    if let Some(actions) = actions {
        run_actions(handle, actions);
    }
}

/// After `close` or `end` set the status: `flush` finishes them once the queue is empty (at once if
/// it is empty now); while the kernel pushes back, the writable event's flush will.
pub(crate) fn finish_when_flushed(table: &mut Table, handle: &TcpConnection) -> Option<Actions> {
    let waiting = table
        .connection(handle)
        .is_some_and(|connection| connection.waiting_writable);
    (!waiting).then(|| flush(table, handle.key()))
}

/// `end()`: no more messages are delivered; once the queue is flushed our side sends FIN, and
/// the connection is destroyed when the peer closes too, or after a linger of one second.
pub(crate) fn end(handle: &TcpConnection) {
    let mut datagram = false;
    let actions = with(|table| {
        let connection = table.connection_mut(handle)?;
        if connection.status != TcpConnection::STATUS_ESTABLISHED {
            return None;
        }
        // A UDP peer has no FIN to send: ending is closing.
        datagram = matches!(connection.stream, Some(Stream::Datagram(_)));
        if datagram {
            return None;
        }
        connection.status = TcpConnection::STATUS_ENDING;
        connection.corked = false;
        connection.recv_buffer = Vec::new();
        finish_when_flushed(table, handle)
    });
    if datagram {
        close(handle);
    }
    if let Some(actions) = actions {
        run_actions(handle, actions);
    }
}

/// `destroy()`: close the socket now, whatever is queued; `on_close` runs once, then the slot is
/// freed. Idempotent.
pub(crate) fn destroy(handle: &TcpConnection) {
    let closed = with(|table| {
        let connection = table.connection_mut(handle)?;
        if connection.status == TcpConnection::STATUS_CLOSED {
            return None;
        }
        connection.status = TcpConnection::STATUS_CLOSED;
        connection.deadline = None;
        let queued = connection.pending_send();
        let streaming = std::mem::take(&mut connection.http.streaming) == Streaming::EventStream;
        let protocol = crate::metrics::protocol_index(
            &connection.worker.protocol.borrow(),
            connection.worker.transport.get(),
        );
        connection.http.file = None;
        connection.recv_buffer = Vec::new();
        connection.send_buffer = Vec::new();
        connection.send_offset = 0;
        let stream = connection.stream.take();
        connection.layer = None;
        let callback = connection.worker.callbacks.on_close.borrow().clone();
        // The context stays until the slot goes: `on_close` may read it.
        let (pipe_to, timers) = match connection.extras.as_mut() {
            Some(extras) => {
                extras.send_queue = None;
                (extras.pipe_to.take(), std::mem::take(&mut extras.timers))
            }
            None => (None, Vec::new()),
        };
        let worker = &connection.worker;
        worker
            .connection_count
            .set(worker.connection_count.get() - 1);
        match stream {
            Some(Stream::Datagram(listener)) => {
                super::udp_peer::forget(table, listener as usize, handle.key())
            }
            Some(mut stream) => {
                let _ = table.poll.registry().deregister(&mut stream);
            }
            None => {}
        }
        table.statistics.connection_count -= 1;
        table.metrics.closed(protocol, queued, streaming);
        for timer in timers {
            table.timers.remove(timer);
        }
        Some((callback, pipe_to))
    });
    let Some((callback, pipe_to)) = closed else {
        return;
    };
    if let Some(callback) = callback {
        call_user(&|| describe(handle, "on_close"), || callback(handle));
    }
    if let Some(destination) = pipe_to {
        destination.close();
    }
    with(|table| {
        if table.connection(handle).is_some() {
            table.connections.remove(handle.key());
        }
    });
}
